"""The seed's "Query Parameters" example, verbatim below the imports it assumes."""

from robyn import Robyn, WebSocketDisconnect  # noqa: F401

app = Robyn(__file__)

@app.websocket("/ws")
async def handler(websocket):
    name = websocket.query_params.get("name")
    role = websocket.query_params.get("role")

    if name == "gordon" and role == "commissioner":
        await websocket.broadcast("Gordon authorized!")

    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Hello {name}: {msg}")
