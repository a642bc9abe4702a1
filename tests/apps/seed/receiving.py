"""The seed's "Receiving Messages" example, verbatim below the imports it assumes."""

from robyn import Robyn, WebSocketDisconnect  # noqa: F401

app = Robyn(__file__)

@app.websocket("/ws")
async def handler(websocket):
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"Got: {msg}")
    except WebSocketDisconnect:
        print(f"Client {websocket.id} disconnected")
