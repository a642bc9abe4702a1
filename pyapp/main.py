"""Every example of Robyn's WebSocket chapter, each on its own path, the chat's own page at
/ (an HTTP route of the same app), and beyond the seed a chat with login, rooms and private
messages (/rooms).

Run it with `robyn-ws-server --app pyapp.main`, open http://127.0.0.1:8080/ in a browser, or
connect to ws://127.0.0.1:8080/<path>.
"""

import json
from typing import Optional, Union

from robyn import Response, Robyn, WebSocket, WebSocketDisconnect, html

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


# The chat's page, served by the same app as its WebSocket.
CHAT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>robyn-ws-server chat</title></head>
<body>
<h1>chat</h1>
<ul id="log"></ul>
<form id="say"><input id="line" autocomplete="off" autofocus><button>send</button></form>
<script>
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/chat`);
  const log = document.getElementById("log");
  ws.onmessage = ({ data }) => {
    const item = document.createElement("li");
    item.textContent = data;
    log.append(item);
  };
  document.getElementById("say").onsubmit = (event) => {
    event.preventDefault();
    const line = document.getElementById("line");
    ws.send(line.value);
    line.value = "";
  };
</script>
</body></html>
"""


@app.get("/")
def chat_page() -> Response:
    return html(CHAT_PAGE)


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


# Beyond the seed: a chat with login, rooms and private messages. The session cookie is
# checked before the handshake is answered (a browser without one gets no connection); the
# client joins `?room=...` (default lobby) and sends JSON:
#   {"say": "hi"}                       to its room (or {"say": "hi", "room": "other"})
#   {"join": "games"} / {"leave": "games"}
#   {"to": "bob", "say": "psst"}        a private message, by user name
SESSIONS = {"ann-session": "ann", "bob-session": "bob", "cy-session": "cy"}  # your session store
online: dict[str, str] = {}  # user name -> connection id


def user_of(websocket: WebSocket) -> Optional[str]:
    return SESSIONS.get(websocket.cookies.get("session", ""))


@app.websocket("/rooms")
async def rooms(websocket: WebSocket, room: str = "lobby") -> None:
    user = user_of(websocket)
    websocket.join(room)
    await websocket.broadcast(json.dumps({"room": room, "joined": user}), room=room)
    async for message in websocket:
        request = json.loads(message)
        if "to" in request:
            private = json.dumps({"from": user, "private": request["say"]})
            if not await websocket.send_to(online.get(request["to"], ""), private):
                await websocket.send_json({"error": f"{request['to']} is not online"})
        elif "join" in request:
            websocket.join(request["join"])
            await websocket.send_json({"rooms": sorted(websocket.rooms)})
        elif "leave" in request:
            websocket.leave(request["leave"])
            await websocket.send_json({"rooms": sorted(websocket.rooms)})
        else:
            to = request.get("room", room)
            await websocket.broadcast(json.dumps({"room": to, "from": user, "say": request["say"]}), room=to)


@rooms.on_connect
def log_in(websocket: WebSocket) -> Union[Response, dict[str, str]]:
    user = user_of(websocket)
    if user is None:
        return Response(status_code=401, headers={"WWW-Authenticate": "Cookie"}, description="log in first")
    online[user] = websocket.id
    return {"welcome": user}


@rooms.on_close
def log_out(websocket: WebSocket) -> None:
    user = user_of(websocket)
    if user is not None and online.get(user) == websocket.id:
        del online[user]


app.start()
