"""Every example of Robyn's WebSocket chapter, each on its own path, and beyond the seed the
demo: a chat page at / that logs in, joins rooms and sends private messages (pyapp/demo.py,
its WebSocket at /rooms).

Run it with `robyn-ws-server --app pyapp.main` from the repository's root, open
http://127.0.0.1:8080/ in a browser, or connect to ws://127.0.0.1:8080/<path>.
"""

from typing import TYPE_CHECKING

from robyn import Robyn, WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from pyapp import demo
else:
    try:
        from pyapp import demo
    except ModuleNotFoundError:  # served as a file (`--app pyapp/main.py`): its own folder is importable
        import demo

app = Robyn(__file__)


# "Request": echo every message.
@app.websocket("/web_socket")
async def handler(websocket: WebSocket) -> None:
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")


# "Receiving Messages": catch the disconnect explicitly.
@app.websocket("/receive")
async def receive_handler(websocket: WebSocket) -> None:
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"Got: {msg}")
    except WebSocketDisconnect:
        print(f"Client {websocket.id} disconnected")


# "Sending Messages".
@app.websocket("/send")
async def send_handler(websocket: WebSocket) -> None:
    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Echo: {msg}")


# "Broadcasting": everyone on /broadcast sees every message.
@app.websocket("/broadcast")
async def broadcast_handler(websocket: WebSocket) -> None:
    while True:
        msg = await websocket.receive_text()
        # Send to all connected clients
        await websocket.broadcast(f"User {websocket.id}: {msg}")
        # Also send a confirmation to this client only
        await websocket.send_text("Your message was sent")


# "Query Parameters": ws://127.0.0.1:8080/query?name=gordon&role=commissioner
@app.websocket("/query")
async def query_handler(websocket: WebSocket) -> None:
    name = websocket.query_params.get("name")
    role = websocket.query_params.get("role")

    if name == "gordon" and role == "commissioner":
        await websocket.broadcast("Gordon authorized!")

    while True:
        msg = await websocket.receive_text()
        await websocket.send_text(f"Hello {name}: {msg}")


# "Easy Access Query Parameters": ws://127.0.0.1:8080/easy?room=lobby&page=2
@app.websocket("/easy")
async def easy_handler(websocket: WebSocket, room: str = "default", page: int = 1) -> None:
    try:
        while True:
            msg = await websocket.receive_text()
            await websocket.send_text(f"room={room} page={page} msg={msg}")
    except WebSocketDisconnect:
        pass


# "Closing Connections": send "quit" to be closed by the server.
@app.websocket("/close")
async def close_handler(websocket: WebSocket) -> None:
    while True:
        msg = await websocket.receive_text()
        if msg == "quit":
            await websocket.close()
            break
        await websocket.send_text(f"Got: {msg}")


@app.get("/health")
async def health() -> dict[str, object]:
    return {"status": "ok", "chatting": len(app.connections("/chat"))}


# "Connect and Close Callbacks".
@app.websocket("/chat")
async def chat(websocket: WebSocket) -> None:
    while True:
        msg = await websocket.receive_text()
        await websocket.broadcast(msg)


@chat.on_connect
def on_connect(websocket: WebSocket) -> str:
    return f"Welcome, {websocket.id}!"


@chat.on_close
def on_close(websocket: WebSocket) -> str:
    return "Goodbye!"


# Beyond the seed, the demo: a chat page at / with login, rooms and private messages
# (pyapp/demo.py, its page in pyapp/static).
app.include_router(demo.router)

app.start()
