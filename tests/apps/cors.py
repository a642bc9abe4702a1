"""ALLOW_CORS with two origins, beside a WebSocket route (tests/test_cors.py)."""

from robyn import ALLOW_CORS, Robyn

app = Robyn(__file__)
ALLOW_CORS(app, origins=["https://front.example", "http://localhost:3000"])


@app.get("/data")
def data():
    return "data"


@app.websocket("/echo")
async def echo(websocket):
    while True:
        message = await websocket.receive_text()
        await websocket.send_text(message)
