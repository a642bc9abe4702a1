"""The demo chat: a page at / (pyapp/static, no build step) that logs in, joins rooms and sends
private messages over a WebSocket of the same server.

HTTP:
  POST /login  (form: name=ann)  puts the name in the signed session cookie: {"user": "ann"}
  POST /logout                   forgets it
  GET  /me                       {"user": "ann"}, or {"user": null} before a login

WebSocket /rooms, refused without a login (401) or from another site's page (403), JSON both
ways. The client sends
  {"type": "say", "room": "lobby", "text": "hi"}      to a room it is in
  {"type": "join", "room": "rust"} / {"type": "leave", "room": "rust"}
  {"type": "private", "to": "bob", "text": "psst"}    to every open page of bob's
(text is cut at 2,000 characters), and gets {"type": "welcome", "user"} first, then "rooms"
(its rooms, after each change), "message", "private" (also a copy of its own), "joined" /
"left" (system lines of its rooms) and "notice" (what went wrong: bob is not online, say).
Every connection starts in "lobby".

There are no passwords: anyone may take any name, which is all a demo needs.
"""

import json
import os
import re
from collections import Counter
from typing import Any, Optional, cast

from robyn import Request, Response, SubRouter, WebSocket

router = SubRouter(__file__)
# The session cookie is signed, not encrypted: the browser can read the name, not change it.
# One key for every worker process and every restart, so a login outlives both; the default
# is in this repository, so anything facing other people sets its own.
SECRET = os.environ.get("PYAPP_SESSION_SECRET", "pyapp demo key: set PYAPP_SESSION_SECRET")
router.configure_sessions(secret_key=SECRET)
router.serve_directory("/", os.path.join(os.path.dirname(__file__), "static"), index_file="index.html")

LOBBY = "lobby"
# Names go into JSON and the page shows them as text, so any characters would be safe; the
# limits keep the page readable and `/msg name text` unambiguous.
NAME = re.compile(r"[A-Za-z0-9_-]{1,20}")
MAX_TEXT = 2000

# Who is online: user name -> the ids of their open connections (a user may have several
# pages open; a private message reaches them all). Like `present`, this is one process's
# view: with --processes N (or hosts joined by --broker) a user connected to another worker
# is "not online" here. Rooms and their broadcasts are cluster-wide; issue 21 adds
# cluster-wide identity for the rest.
online: dict[str, set[str]] = {}
# (room, user) -> how many of the user's connections are in the room: "joined" and "left" are
# said when the first one joins and the last one leaves, not for every page.
present: Counter[tuple[str, str]] = Counter()


def json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(body))


def notice(text: str) -> dict[str, str]:
    return {"type": "notice", "text": text}


@router.post("/login")
def login(request: Request) -> Response:
    name = request.form_data.get("name", "").strip()
    if not NAME.fullmatch(name):
        return json_response(400, {"error": "a name is 1 to 20 letters, digits, - or _"})
    request.session["user"] = name
    return json_response(200, {"user": name})


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return json_response(200, {"user": None})


@router.get("/me")
def me(request: Request) -> Response:
    return json_response(200, {"user": request.session.get("user")})


def user_of(websocket: WebSocket) -> Optional[str]:
    session = websocket.session
    return None if session is None else session.get("user")


class Member:
    """One open connection of a logged-in user, and the rooms it is in. The rooms are kept here
    as well as by the server because the server's membership ends with the connection, and
    the rooms must still hear that it left."""

    def __init__(self, websocket: WebSocket, user: str) -> None:
        self.websocket, self.user = websocket, user
        self.rooms: set[str] = set()

    async def tell(self, message: dict[str, Any]) -> None:
        await self.websocket.send_json(message)

    async def join(self, room: str) -> None:
        if room in self.rooms:
            return
        self.rooms.add(room)
        self.websocket.join(room)
        present[room, self.user] += 1
        if present[room, self.user] == 1:
            await self.websocket.broadcast(json.dumps({"type": "joined", "room": room, "user": self.user}), room=room)

    async def leave(self, room: str, gone: bool = False) -> None:
        if room not in self.rooms:
            return
        self.rooms.discard(room)
        if not gone:
            self.websocket.leave(room)
        present[room, self.user] -= 1
        if present[room, self.user] == 0:
            del present[room, self.user]
            # After leaving, so the others hear it and this connection does not.
            await self.websocket.broadcast(json.dumps({"type": "left", "room": room, "user": self.user}), room=room)

    async def say(self, room: str, text: str) -> None:
        if room not in self.rooms:
            await self.tell(notice(f"join #{room} to talk there"))
            return
        line = json.dumps({"type": "message", "room": room, "from": self.user, "text": text})
        await self.websocket.broadcast(line, room=room)

    async def send_private(self, to: str, text: str) -> None:
        recipients = online.get(to, set())
        if not recipients:
            await self.tell(notice(f"{to} is not online"))
            return
        line = json.dumps({"type": "private", "from": self.user, "to": to, "text": text})
        # The sender's own pages get a copy too, so each of them shows the conversation.
        for connection in recipients | online.get(self.user, set()):
            await self.websocket.send_to(connection, line)

    async def handle(self, request: dict[str, Any]) -> None:
        kind, room = request.get("type"), str(request.get("room", ""))
        text = str(request.get("text", "")).strip()[:MAX_TEXT]
        if kind in ("join", "leave"):
            if not NAME.fullmatch(room):
                await self.tell(notice("a room's name is 1 to 20 letters, digits, - or _"))
                return
            await (self.join if kind == "join" else self.leave)(room)
            await self.tell({"type": "rooms", "rooms": sorted(self.rooms)})
        elif kind == "say" and text:
            await self.say(room, text)
        elif kind == "private" and text:
            await self.send_private(str(request.get("to", "")), text)
        else:
            await self.tell(notice("not understood"))


@router.websocket("/rooms")
async def rooms(websocket: WebSocket) -> None:
    user = user_of(websocket)
    if user is None:  # on_connect has refused the handshake already; this is for the checker
        return
    member = Member(websocket, user)
    # Online from here (the socket is open) to the end of the handler, which always comes.
    online.setdefault(user, set()).add(websocket.id)
    try:
        await member.join(LOBBY)
        await member.tell({"type": "rooms", "rooms": sorted(member.rooms)})
        async for message in websocket:
            try:
                request: Any = json.loads(message)
            except ValueError:
                request = None
            if isinstance(request, dict):
                await member.handle(cast("dict[str, Any]", request))
            else:
                await member.tell(notice("not understood: send a JSON object"))
    finally:
        pages = online[user]
        pages.discard(websocket.id)
        if not pages:
            del online[user]
        # Gone (or failed): its rooms hear it left, once no other page of the user is there.
        for room in sorted(member.rooms):
            await member.leave(room, gone=True)


@rooms.on_connect
def log_in(websocket: WebSocket) -> Any:
    user = user_of(websocket)
    if user is None:
        # Before the handshake is answered: a page without a login gets no socket at all.
        return Response(401, {"WWW-Authenticate": "Cookie"}, "log in first")
    # A page of another site could open this socket with the browser's cookie; a WebSocket
    # handshake is not held to the same-origin policy, so the origin is checked here.
    origin = websocket.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != websocket.headers.get("host"):
        return Response(403, {}, "not from this site")
    return {"type": "welcome", "user": user}
