"""Sits next to a directory named `robyn`: the server's own package must still win."""

import robyn
from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/which")
async def which(websocket):
    await websocket.send_text(robyn.__file__)
    await websocket.receive_text()
