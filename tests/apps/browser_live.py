"""A live page for the real-browser tests (tests/test_browser_live.py): a login form, a stream
of server-sent events and a chat over a WebSocket, all on one server and one session.

- `POST /login` (the form, URL-encoded) puts a known user's name in the signed session and
  sends the browser back to `/` (303); an unknown or empty name is answered 401.
- `GET /events` (`auth_required`: 401 without a login) streams a hello, the ticks of a
  background task started at start-up, and every chat line; each event has an id, and a
  reconnecting browser's `Last-Event-ID` is named in its hello.
- `/chat`, a WebSocket whose on_connect refuses the handshake (401) without a login in
  `websocket.session`; each message is broadcast prefixed with the user's name, and the same
  coroutine hands the line to the event streams.
- `POST /drop` ends every event stream (the browser's EventSource then reconnects)."""

import asyncio
import html as html_text
import itertools

from robyn import Request, Response, Robyn, html
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity
from robyn.responses import SSEMessage, SSEResponse

app = Robyn(__file__)
app.configure_sessions(secret_key="a test secret for the live page", cookie_name="live")  # noqa: S106

USERS = {"ann", "bob"}
TICK_SECONDS = 0.2
RETRY_MS = 200  # how soon a dropped EventSource comes back


def say(*parts: object) -> None:
    print(*parts, flush=True)


class SessionUser(AuthenticationHandler):
    def authenticate(self, request: Request) -> Identity | None:
        user = request.session.get("user")
        return Identity(claims={"user": user}) if user in USERS else None


app.configure_authentication(SessionUser(BearerGetter()))


class Hub:
    """The event streams' subscribers: one queue each, of finished SSE messages (None ends
    the stream). A subscriber too far behind loses messages rather than holding up the rest."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue] = set()
        self.ids = itertools.count(1)
        self.streams = itertools.count(1)

    def publish(self, event: str, data: str) -> None:
        message = SSEMessage(data, event=event, id=str(next(self.ids)))
        for queue in self.queues:
            if queue.qsize() < 1000:
                queue.put_nowait(message)

    def drop_all(self) -> int:
        for queue in self.queues:
            queue.put_nowait(None)
        return len(self.queues)


hub = Hub()
background: set[asyncio.Task] = set()


async def ticker() -> None:
    for n in itertools.count(1):
        await asyncio.sleep(TICK_SECONDS)
        hub.publish("tick", f"tick {n}")


@app.startup_handler
async def start_ticking() -> None:
    background.add(asyncio.get_running_loop().create_task(ticker()))


@app.shutdown_handler
async def stop_ticking() -> None:
    for task in background:
        task.cancel()


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>live</title></head>
<body data-sse="connecting" data-chat="connecting" data-sse-opens="0">
<p id="who">%(who)s</p>
<p id="error">%(error)s</p>
<form id="login" method="post" action="/login">
  <input name="name" id="name" autocomplete="off"><button id="sign-in">sign in</button>
</form>
<p>latest: <output id="tick"></output></p>
<ul id="news"></ul>
<ul id="chat-log"></ul>
<form id="say"><input id="line" autocomplete="off"><button id="send">send</button></form>
<script>
  const state = (key, value) => { document.body.dataset[key] = value; };
  const add = (list, text) => {
    const item = document.createElement("li");
    item.textContent = text;
    document.getElementById(list).append(item);
  };

  const events = new EventSource("/events");
  let opens = 0;
  events.onopen = () => { opens += 1; state("sseOpens", opens); state("sse", "open"); };
  events.onerror = () => {
    // A refused stream (401) is given up (CLOSED); a dropped one is retried (CONNECTING).
    state("sse", events.readyState === EventSource.CLOSED ? "refused" : "reconnecting");
    state("lastIdAtError", lastId);
  };
  // The id of the last event seen (EventSource keeps it to itself, for its reconnection).
  let lastId = "";
  const seen = (handle) => (event) => { lastId = event.lastEventId; handle(event.data); };
  events.addEventListener("hello", seen((data) => add("news", data)));
  events.addEventListener("chat", seen((data) => add("news", data)));
  events.addEventListener("tick", seen((data) => {
    document.getElementById("tick").textContent = data;
    state("ticks", Number(document.body.dataset.ticks || 0) + 1);
  }));

  const ws = new WebSocket(`ws://${location.host}/chat`);
  let opened = false;
  ws.onopen = () => { opened = true; state("chat", "open"); };
  ws.onclose = ({ code }) => state("chat", opened ? `closed ${code}` : `refused ${code}`);
  ws.onmessage = ({ data }) => add("chat-log", data);
  document.getElementById("say").onsubmit = (event) => {
    event.preventDefault();
    const line = document.getElementById("line");
    ws.send(line.value);
    line.value = "";
  };
</script>
</body></html>
"""


def page(user: str | None, error: str = "") -> str:
    who = f"signed in as {html_text.escape(user)}" if user else "not signed in"
    return PAGE % {"who": who, "error": html_text.escape(error)}


@app.get("/")
def index(request: Request) -> Response:
    return html(page(request.session.get("user")))


@app.post("/login")
def login(request: Request) -> Response:
    name = request.form_data.get("name", "").strip()
    if name not in USERS:
        say(f"refused a login as {name!r}")
        return Response(401, {"Content-Type": "text/html"}, page(None, f"unknown user {name!r}"))
    request.session["user"] = name
    say(f"logged in {name}")
    return Response(303, {"Location": "/"}, "")


@app.get("/events", auth_required=True)
async def events(request: Request):
    user = request.identity.claims["user"]
    last_id = request.headers.get("last-event-id")

    async def stream():
        queue: asyncio.Queue = asyncio.Queue()
        hub.queues.add(queue)
        number = next(hub.streams)
        say(f"stream {number} for {user} after {last_id}")
        try:
            resumed = f" (resumed after {last_id})" if last_id else ""
            yield SSEMessage(f"hello {user}{resumed}", event="hello", retry=RETRY_MS)
            while (message := await queue.get()) is not None:
                yield message
        finally:
            hub.queues.discard(queue)
            say(f"stream {number} ended")

    return SSEResponse(stream())


@app.post("/drop")
async def drop() -> str:
    return f"dropped {hub.drop_all()}"


@app.websocket("/chat")
async def chat(websocket):
    user = websocket.session["user"]
    async for message in websocket:
        line = f"{user}: {message}"
        await websocket.broadcast(line)
        hub.publish("chat", line)


@chat.on_connect
def chat_login(websocket):
    user = websocket.session.get("user")
    if user not in USERS:
        say("refused a chat without a login")
        return Response(401, {"WWW-Authenticate": "Cookie"}, "log in first")
    return f"welcome {user}"
