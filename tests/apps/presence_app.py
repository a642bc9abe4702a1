"""Identity, send_to_user and presence (tests/test_presence.py), run as one process, several
(--processes) or several instances (--broker).

`/chat` and `/other` (the same handler on two endpoints): on_connect identifies the client
from the query (`?user=ann`; none: the connection stays anonymous; `&refuse=1`: identifies,
then refuses the handshake with 403). The handler first sends a hello, {"id", "pid", "user"},
then answers JSON commands with a JSON reply: join/leave a room, send_to_user (replying with
the count), presence of an endpoint or a room (replying with the dict), identify. What a
command raises is the reply {"error": "ValueError", "message": "..."}.

Each endpoint's on_presence prints every change it is called with as one line,
`PRESENCE <pid> <path> <json>`, which the tests read from the server's output: in which
process, how often, and what (/chat's handler is async, /other's not)."""

import json
import os

import robyn
from robyn import Response, Robyn

app = Robyn(__file__)


def hello(websocket) -> dict:
    return {"id": websocket.id, "pid": os.getpid(), "user": websocket.user}


def data(command: dict) -> str | bytes:
    return command["text"].encode() if command.get("binary") else command["text"]


async def converse(websocket) -> None:
    await websocket.send_json(hello(websocket))
    async for message in websocket:
        command = json.loads(message)
        op = command["op"]
        try:
            if op == "join":
                websocket.join(command["room"])
                reply = {"joined": command["room"]}
            elif op == "leave":
                websocket.leave(command["room"])
                reply = {"left": command["room"]}
            elif op == "send_to_user":
                sender = app if command.get("via") == "app" else websocket
                reply = {"sent": await sender.send_to_user(command["user"], data(command))}
            elif op == "presence":
                if "path" in command:
                    found = await app.presence(command["path"], command.get("room"))
                else:
                    found = await websocket.presence(command.get("room"))
                reply = {"presence": found, "types": sorted({type(v).__name__ for v in found.values()})}
            elif op == "identify":
                websocket.identify(command["user"])
                reply = {"user": websocket.user}
            elif op == "whoami":
                reply = {"user": websocket.user}
            else:
                reply = {"error": "unknown op", "message": op}
        except Exception as error:  # the test reads what was raised
            reply = {"error": type(error).__name__, "message": str(error)}
        await websocket.send_json(reply)


def identify_from_query(websocket):
    user = websocket.query_params.get("user")
    if user is not None:
        websocket.identify(user)
    if websocket.query_params.get("refuse"):
        return Response(status_code=403, description="refused")
    return None


def record(path: str, change) -> None:
    well_formed = (
        isinstance(change, robyn.PresenceChange)
        and (change.room is None or isinstance(change.room, str))
        and isinstance(change.joined, list)
        and isinstance(change.left, list)
        and all(isinstance(user, str) for user in [*change.joined, *change.left])
    )
    line = {"room": change.room, "joined": list(change.joined), "left": list(change.left), "ok": well_formed}
    print(f"PRESENCE {os.getpid()} {path} {json.dumps(line)}", flush=True)


@app.websocket("/chat")
async def chat(websocket):
    await converse(websocket)


@chat.on_connect
def chat_connect(websocket):
    return identify_from_query(websocket)


@chat.on_presence
async def chat_presence(change):
    record("/chat", change)


@app.websocket("/other")
async def other(websocket):
    await converse(websocket)


@other.on_connect
def other_connect(websocket):
    return identify_from_query(websocket)


@other.on_presence
def other_presence(change):
    record("/other", change)


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)
