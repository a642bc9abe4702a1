"""Mistakes an app can make that the server names in one line: a handler that is not async,
one that returns a value (which goes nowhere)."""

from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/sync")
def sync_handler(websocket):
    return "nobody hears this"


@app.websocket("/returns")
async def returns(websocket):
    await websocket.send_text("sent")
    return {"not": "sent"}


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)
