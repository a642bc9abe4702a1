"""The seed's "Closing Connections" example, verbatim below the imports it assumes."""

from robyn import Robyn, WebSocketDisconnect  # noqa: F401

app = Robyn(__file__)

@app.websocket("/ws")
async def handler(websocket):
    while True:
        msg = await websocket.receive_text()
        if msg == "quit":
            await websocket.close()
            break
        await websocket.send_text(f"Got: {msg}")
