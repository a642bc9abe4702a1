"""Two routes a path could match both of: the server refuses to start."""

from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/user/:id")
async def by_id(websocket):
    await websocket.receive()


@app.websocket("/user/:name")
async def by_name(websocket):
    await websocket.receive()
