"""Asks for its address through app.start(), as Robyn apps do."""

import os

from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/here")
async def here(websocket):
    await websocket.send_text("listening where app.start asked")
    await websocket.receive_text()


app.start(host="127.0.0.1", port=int(os.environ["START_PORT"]), _check_port=False)
print("app.start returned", flush=True)
