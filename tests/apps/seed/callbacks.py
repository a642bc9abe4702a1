"""The seed's "Connect and Close Callbacks" example, verbatim below the imports it assumes."""

from robyn import Robyn, WebSocketDisconnect  # noqa: F401

app = Robyn(__file__)

@app.websocket("/chat")
async def chat(websocket):
    while True:
        msg = await websocket.receive_text()
        await websocket.broadcast(msg)

@chat.on_connect
def on_connect(websocket):
    return f"Welcome, {websocket.id}!"

@chat.on_close
def on_close(websocket):
    return "Goodbye!"
