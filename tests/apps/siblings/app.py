"""Imports a module that sits next to it, as `python siblings/app.py` would allow."""

from helper import GREETING
from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/hello")
async def hello(websocket):
    await websocket.send_text(GREETING)
    await websocket.receive_text()
