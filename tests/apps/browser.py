"""Endpoints for the real-browser tests (tests/test_browser.py). Every callback prints what it
did, so tests can wait for those lines."""

from robyn import Response, Robyn, WebSocketDisconnect, html

app = Robyn(__file__)


def say(*parts: object) -> None:
    print(*parts, flush=True)


# A page served by the app itself that chats over a WebSocket to the same server.
CHAT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>chat</title></head>
<body>
<ul id="log"></ul>
<form id="say"><input id="line" autocomplete="off"><button>send</button></form>
<script>
  const ws = new WebSocket(`ws://${location.host}/echo`);
  const log = document.getElementById("log");
  ws.onopen = () => document.body.dataset.state = "open";
  ws.onmessage = ({ data }) => {
    const item = document.createElement("li");
    item.textContent = data;
    log.append(item);
  };
  document.getElementById("say").onsubmit = (event) => {
    event.preventDefault();
    ws.send(document.getElementById("line").value);
  };
</script>
</body></html>
"""


@app.get("/page")
def chat_page():
    return html(CHAT_PAGE)


@app.websocket("/echo")
async def echo(websocket):
    """Text as text, binary as binary."""
    while True:
        message = await websocket.receive()
        if isinstance(message, str):
            await websocket.send_text(message)
        else:
            await websocket.send_bytes(message)


@app.websocket("/lifecycle")
async def lifecycle(websocket):
    """Echoes until the client leaves, then prints the code it left with."""
    say("handler started", websocket.id)
    await websocket.send_text("handler started")
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(f"echo {message}")
    except WebSocketDisconnect as gone:
        say("disconnect", websocket.id, gone.code, repr(gone.reason))
        raise


@lifecycle.on_connect
def lifecycle_connect(websocket):
    say("on_connect", websocket.id)
    return f"hello {websocket.id}"


@lifecycle.on_close
def lifecycle_close(websocket):
    say("on_close", websocket.id)
    return "farewell"


@app.websocket("/server-closes")
async def server_closes(websocket):
    """Closes with 4001 as soon as the client says anything."""
    await websocket.receive_text()
    await websocket.close(4001, "some reason")


@server_closes.on_close
def server_closes_close(websocket):
    say("on_close", websocket.id)
    return "farewell"


# A chat that lets in only pages with a session cookie, in rooms.
SESSIONS = {"ann-session": "ann", "bob-session": "bob"}


@app.websocket("/chat")
async def chat(websocket, room: str = "lobby"):
    user = SESSIONS[websocket.cookies["session"]]
    websocket.join(room)
    async for message in websocket:
        await websocket.broadcast(f"[{room}] {user}: {message}", room=room)


@chat.on_connect
def log_in(websocket):
    user = SESSIONS.get(websocket.cookies.get("session", ""))
    if user is None:
        say("refused a page without a session")
        return Response(status_code=401, description="log in first")
    return f"welcome {user}"
