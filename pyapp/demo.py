"""The demo chat: a page at / (pyapp/static, no build step) that logs in, joins rooms and sends
private messages over a WebSocket of the same server, and picks up what it missed when it
comes back (a reload, a dropped connection).

HTTP:
  POST /login  (form: name=ann)  puts the name in the signed session cookie: {"user": "ann"}
  POST /logout                   forgets it
  GET  /me                       {"user": "ann"}, or {"user": null} before a login

WebSocket /rooms, refused without a login (401) or from another site's page (403), JSON both
ways. The connection is its user's (`websocket.identify`): who is in a room and private
messages are the server's business, across every worker (--processes) and host (--broker).

A page that comes back names where it was in each of its rooms, as the query parameter
`resume`: a JSON object room -> [epoch, offset], e.g.
  /rooms?resume={"lobby":["3f2a...",17],"rust":["3f2a...",4]}
and is put back in those rooms (at most 20) and sent what it missed there; without `resume`
a connection starts in "lobby".

The client sends
  {"type": "say", "room": "lobby", "text": "hi"}      to a room it is in
  {"type": "join", "room": "rust"} / {"type": "leave", "room": "rust"}
  {"type": "private", "to": "bob", "text": "psst"}    to every open page of bob's
(text is cut at 2,000 characters), and gets
  {"type": "welcome", "user": "ann"}                  first
  {"type": "position", "room", "epoch", "offset"}    when it enters a room afresh: what the
      room's messages from here on follow; with "reset": true when what it missed there could
      not be told (the history no longer keeps it, or the server lost it): the page forgets
      that room's lines and starts it again from here
  {"type": "present", "room", "users": ["ann", ...]}  who is in a room it entered or came back to
  {"type": "rooms", "rooms": [...]}                   its rooms, after each change
  {"type": "message", "room", "from", "text", "offset"}
  {"type": "joined" | "left", "room", "user", "offset"}  someone's first page entered the room,
      or their last one has been gone for --presence-grace seconds (a reload is neither)
  {"type": "private", "from", "to", "text"}           also a copy to the sender's own pages
  {"type": "notice", "text"}                          what went wrong: bob is not online, say
A room's messages, "joined" and "left" carry the room's offset: consecutive numbers, the same
on every page, which the page keeps (with the epoch) to name in `resume`, and by which it drops
a message it has had already. The room keeps its last 200 of them (`history=200`).

There are no passwords: anyone may take any name, which is all a demo needs.
"""

import json
import os
import re
from collections.abc import Callable
from typing import Any, Optional, cast

from robyn import HistoryGap, PresenceChange, Request, Response, SubRouter, WebSocket

router = SubRouter(__file__)
# The session cookie is signed, not encrypted: the browser can read the name, not change it.
# One key for every worker process and every restart, so a login outlives both; the default
# is in this repository, so anything facing other people sets its own.
SECRET = os.environ.get("PYAPP_SESSION_SECRET", "pyapp demo key: set PYAPP_SESSION_SECRET")
router.configure_sessions(secret_key=SECRET)
router.serve_directory("/", os.path.join(os.path.dirname(__file__), "static"), index_file="index.html")

PATH = "/rooms"
LOBBY = "lobby"
# Names go into JSON and the page shows them as text, so any characters would be safe; the
# limits keep the page readable and `/msg name text` unambiguous.
NAME = re.compile(r"[A-Za-z0-9_-]{1,20}")
MAX_TEXT = 2000
MOST_ROOMS = 20  # that a page may come back to at once
KEPT = 200  # messages each room keeps for pages that come back


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


def resumed(websocket: WebSocket) -> Optional[dict[str, tuple[str, int]]]:
    """The rooms a page comes back to, and where it was in each (`?resume=`), or None for a
    page that names none. What does not make sense is left out."""
    given = websocket.query_params.get("resume")
    if given is None:
        return None
    try:
        positions: Any = json.loads(given)
    except ValueError:
        return {}
    if not isinstance(positions, dict):
        return {}
    rooms: dict[str, tuple[str, int]] = {}
    for room, position in cast("dict[object, object]", positions).items():
        if len(rooms) == MOST_ROOMS:
            break
        if not (isinstance(room, str) and NAME.fullmatch(room) and isinstance(position, list)):
            continue
        pair = cast("list[object]", position)
        if len(pair) != 2:
            continue
        epoch, offset = pair
        if isinstance(epoch, str) and type(offset) is int and offset >= 0:
            rooms[room] = (epoch, offset)
    return rooms


def system_line(kind: str, room: str, user: str) -> Callable[[int], str]:
    """A "joined" or "left" line for a room's history: a function of the offset it gets."""

    def line(offset: int) -> str:
        return json.dumps({"type": kind, "room": room, "user": user, "offset": offset})

    return line


class Member:
    """One open connection of a logged-in user."""

    def __init__(self, websocket: WebSocket, user: str) -> None:
        self.websocket, self.user = websocket, user

    async def tell(self, message: dict[str, Any]) -> None:
        await self.websocket.send_json(message)

    def rooms(self) -> list[str]:
        return sorted(self.websocket.rooms)

    async def enter(self, room: str, reset: bool = False) -> None:
        """Into a room afresh: the page hears where the room's messages stand, then every
        message after that, in order and once each (`recover` from that very offset)."""
        for _ in range(3):
            position = await self.websocket.position(room)
            told = {"type": "position", "room": room, "epoch": position.epoch, "offset": position.offset}
            await self.tell({**told, "reset": True} if reset else told)
            try:
                await self.websocket.recover(room, since=position.offset, epoch=position.epoch)
                return
            except HistoryGap:
                # The history began again in between (a Redis flushed, say): once more.
                self.websocket.leave(room)
                reset = True
        raise RuntimeError(f"the history of #{room} keeps beginning again")

    async def come_back(self, room: str, epoch: str, offset: int) -> None:
        """Into a room the page was in: what it missed since `offset`, then what follows; or,
        when that cannot be told, the room afresh, the page told to forget what it showed."""
        try:
            await self.websocket.recover(room, since=offset, epoch=epoch)
        except HistoryGap:
            # recover joined the room all the same, and what is broadcast meanwhile is on its
            # way: out again, so that everything after the new position comes through one
            # recover, in order, after the page has heard that position.
            self.websocket.leave(room)
            await self.enter(room, reset=True)

    async def show_present(self, room: str) -> None:
        users = sorted(await self.websocket.presence(room))
        await self.tell({"type": "present", "room": room, "users": users})

    async def join(self, room: str) -> None:
        if room in self.websocket.rooms:
            return
        await self.enter(room)
        await self.show_present(room)

    async def leave(self, room: str) -> None:
        # The others hear it in "left" from on_presence, once no page of the user is there.
        self.websocket.leave(room)

    async def say(self, room: str, text: str) -> None:
        if room not in self.websocket.rooms:
            await self.tell(notice(f"join #{room} to talk there"))
            return
        await self.websocket.broadcast(
            lambda offset: json.dumps(
                {"type": "message", "room": room, "from": self.user, "text": text, "offset": offset}
            ),
            room=room,
        )

    async def send_private(self, to: str, text: str) -> None:
        line = json.dumps({"type": "private", "from": self.user, "to": to, "text": text})
        # Every page of the recipient's, on whichever worker or host it is.
        if await self.websocket.send_to_user(to, line) == 0:
            await self.tell(notice(f"{to} is not online"))
            return
        # The sender's own pages get a copy too (this one included), so each of them shows
        # the conversation.
        if to != self.user:
            await self.websocket.send_to_user(self.user, line)

    async def handle(self, request: dict[str, Any]) -> None:
        kind, room = request.get("type"), str(request.get("room", ""))
        text = str(request.get("text", "")).strip()[:MAX_TEXT]
        if kind in ("join", "leave"):
            if not NAME.fullmatch(room):
                await self.tell(notice("a room's name is 1 to 20 letters, digits, - or _"))
                return
            await (self.join if kind == "join" else self.leave)(room)
            await self.tell({"type": "rooms", "rooms": self.rooms()})
        elif kind == "say" and text:
            await self.say(room, text)
        elif kind == "private" and text:
            await self.send_private(str(request.get("to", "")), text)
        else:
            await self.tell(notice("not understood"))


@router.websocket(PATH, history=KEPT)
async def rooms(websocket: WebSocket) -> None:
    user = websocket.user
    if user is None:  # on_connect has refused the handshake already; this is for the checker
        return
    member = Member(websocket, user)
    positions = resumed(websocket)
    if positions is None:
        await member.enter(LOBBY)
        await member.show_present(LOBBY)
    else:
        for room, (epoch, offset) in positions.items():
            await member.come_back(room, epoch, offset)
            await member.show_present(room)
    await member.tell({"type": "rooms", "rooms": member.rooms()})
    async for message in websocket:
        try:
            request: Any = json.loads(message)
        except ValueError:
            request = None
        if isinstance(request, dict):
            await member.handle(cast("dict[str, Any]", request))
        else:
            await member.tell(notice("not understood: send a JSON object"))


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
    # The connection is the user's from here: presence, and send_to_user, count it.
    websocket.identify(user)
    return {"type": "welcome", "user": user}


@rooms.on_presence
async def arrivals_and_departures(change: PresenceChange) -> None:
    """Once per change for the whole cluster (in one process): the room hears who came and
    who went, as lines of its history, so that a page that comes back hears them too."""
    if change.room is None:  # the endpoint as a whole: the rooms say it all
        return
    for kind, users in (("joined", change.joined), ("left", change.left)):
        for user in users:
            await router.broadcast(PATH, system_line(kind, change.room, user), room=change.room)
