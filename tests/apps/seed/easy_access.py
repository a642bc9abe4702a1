"""The seed's "Easy Access Query Parameters" example, verbatim below the imports it assumes."""

from robyn import Robyn, WebSocketDisconnect  # noqa: F401

app = Robyn(__file__)

@app.websocket("/ws")
async def handler(websocket, room: str = "default", page: int = 1):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"room={room} page={page} msg={msg}")
    except WebSocketDisconnect:
        pass
