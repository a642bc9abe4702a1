"""The demo chat of pyapp (pyapp/demo.py) as a program other than its page sees it: the login
over HTTP, then the JSON protocol of /rooms with the `websockets` client. The page itself is
driven in a browser by tests/test_demo_chat.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Server, receive
from websockets.exceptions import InvalidStatus

# A user whose last page closed is gone after this long (a test that waits for a "left").
GRACE = "0.2"


@pytest.fixture
def chat(start_server) -> Server:
    return start_server("pyapp.main", "--presence-grace", GRACE, cwd=ROOT)


def http(
    server: Server, path: str, form: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Message, str]:
    """GET, or POST of a form when `form` is given: status, headers (any case) and body."""
    data = None if form is None else form.encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http://, the server under test)
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


async def log_in(server: Server, name: str) -> dict[str, str]:
    """The handshake headers of a client logged in as `name`: its session cookie."""
    status, headers, body = await asyncio.to_thread(http, server, "/login", f"name={name}")
    assert (status, json.loads(body)) == (200, {"user": name})
    return {"Cookie": headers["Set-Cookie"].split(";")[0]}


async def next_json(ws) -> dict[str, Any]:
    return json.loads(await receive(ws))


def plain(message: dict[str, Any]) -> dict[str, Any]:
    """A message without its offset (which says where in its room's history it is)."""
    return {key: value for key, value in message.items() if key != "offset"}


async def said(ws) -> dict[str, Any]:
    """The next message, which is one of a room's (it has an offset), without its offset."""
    message = await next_json(ws)
    assert isinstance(message.get("offset"), int), message
    return plain(message)


async def entered(ws, user: str, present: list[str], arrives: bool = True) -> tuple[str, int]:
    """What a new connection gets first: the welcome, where the lobby's history stands, then who
    is in the lobby and its rooms, and (when no other page of the user is there already) its
    own arrival, which on_presence announces whenever it runs. Where the lobby stood."""
    assert await next_json(ws) == {"type": "welcome", "user": user}
    position = await next_json(ws)
    assert position.keys() == {"type", "room", "epoch", "offset"}
    assert (position["type"], position["room"]) == ("position", "lobby")
    expected = [
        {"type": "present", "room": "lobby", "users": present},
        {"type": "rooms", "rooms": ["lobby"]},
        *([{"type": "joined", "room": "lobby", "user": user, "offset": position["offset"] + 1}] if arrives else []),
    ]
    got = [await next_json(ws) for _ in expected]
    assert sorted(got, key=json.dumps) == sorted(expected, key=json.dumps)
    # Who is there, and then the rooms, in this order; the arrival may come before, between or after.
    assert [message for message in got if message["type"] != "joined"] == expected[:2]
    return position["epoch"], position["offset"]


async def send(ws, **message: str) -> None:
    await ws.send(json.dumps(message))


def resuming(positions: dict[str, tuple[str, int]]) -> str:
    """/rooms for a page that comes back to these rooms, at these positions."""
    return "/rooms?resume=" + urllib.parse.quote(json.dumps(positions))


async def test_without_a_login_the_handshake_is_refused_with_401(chat):
    with pytest.raises(InvalidStatus) as refused:
        async with chat.connect("/rooms"):
            pass
    assert refused.value.response.status_code == 401
    # A cookie that was not signed with the app's key is no login either.
    with pytest.raises(InvalidStatus) as forged:
        async with chat.connect("/rooms", additional_headers={"Cookie": "session=eyJ1c2VyIjoiYW5uIn0.forged"}):
            pass
    assert forged.value.response.status_code == 401


async def test_a_page_of_another_site_is_refused_with_403(chat):
    """A WebSocket handshake carries the browser's cookies whichever site's page opens it; the
    app checks the Origin."""
    ann = await log_in(chat, "ann")
    with pytest.raises(InvalidStatus) as refused:
        async with chat.connect("/rooms", additional_headers=ann, origin="http://elsewhere.example"):
            pass
    assert refused.value.response.status_code == 403
    async with chat.connect("/rooms", additional_headers=ann, origin=f"http://127.0.0.1:{chat.port}") as ws:
        await entered(ws, "ann", ["ann"])


@pytest.mark.parametrize("name", ["", "a b", "<b>", "x" * 21])
async def test_a_name_must_be_short_and_plain(chat, name):
    status, headers, body = await asyncio.to_thread(http, chat, "/login", f"name={urllib.parse.quote(name)}")
    assert status == 400
    assert json.loads(body) == {"error": "a name is 1 to 20 letters, digits, - or _"}
    assert "Set-Cookie" not in headers


async def test_me_and_logout(chat):
    status, _, body = await asyncio.to_thread(http, chat, "/me")
    assert (status, json.loads(body)) == (200, {"user": None})
    ann = await log_in(chat, "ann")
    status, _, body = await asyncio.to_thread(http, chat, "/me", headers=ann)
    assert (status, json.loads(body)) == (200, {"user": "ann"})
    status, headers, body = await asyncio.to_thread(http, chat, "/logout", "", ann)
    assert (status, json.loads(body)) == (200, {"user": None})
    # The session's cookie is deleted: the browser forgets the login.
    assert headers["Set-Cookie"].startswith("session=;")
    assert "Max-Age=0" in headers["Set-Cookie"]


async def test_rooms_private_messages_and_system_lines(chat):
    ann_login, bob_login, cy_login = [await log_in(chat, name) for name in ("ann", "bob", "cy")]
    async with chat.connect("/rooms", additional_headers=ann_login) as ann:
        epoch, start = await entered(ann, "ann", ["ann"])
        # bob comes once ann's arrival is said: the lobby's offsets are then known.
        async with chat.connect("/rooms", additional_headers=bob_login) as bob:
            assert await entered(bob, "bob", ["ann", "bob"]) == (epoch, start + 1)
            assert await next_json(ann) == {"type": "joined", "room": "lobby", "user": "bob", "offset": start + 2}

            await send(ann, type="say", room="lobby", text="hi <b>bob</b>")
            line = {"type": "message", "room": "lobby", "from": "ann", "text": "hi <b>bob</b>", "offset": start + 3}
            assert await next_json(ann) == line
            assert await next_json(bob) == line

            await send(bob, type="join", room="rust")
            position = await next_json(bob)
            # Each room's history has an epoch of its own.
            assert position == {"type": "position", "room": "rust", "epoch": position["epoch"], "offset": 0}
            assert await next_json(bob) == {"type": "present", "room": "rust", "users": ["bob"]}
            # The arrival in #rust comes from on_presence, the room list from the join: either first.
            got = [await next_json(bob), await next_json(bob)]
            assert sorted(got, key=json.dumps) == [
                {"type": "joined", "room": "rust", "user": "bob", "offset": 1},
                {"type": "rooms", "rooms": ["lobby", "rust"]},
            ]
            await send(ann, type="say", room="rust", text="may I?")
            assert await next_json(ann) == {"type": "notice", "text": "join #rust to talk there"}
            await send(bob, type="say", room="rust", text="borrowed")
            assert await said(bob) == {"type": "message", "room": "rust", "from": "bob", "text": "borrowed"}

            await send(ann, type="private", to="cy", text="are you there?")
            assert await next_json(ann) == {"type": "notice", "text": "cy is not online"}

            async with chat.connect("/rooms", additional_headers=cy_login) as cy:
                await entered(cy, "cy", ["ann", "bob", "cy"])
                for ws in (ann, bob):
                    assert await said(ws) == {"type": "joined", "room": "lobby", "user": "cy"}
                await send(ann, type="private", to="bob", text="psst")
                private = {"type": "private", "from": "ann", "to": "bob", "text": "psst"}
                assert await next_json(bob) == private
                assert await next_json(ann) == private  # the sender's copy
                # cy heard nothing of it: the next thing cy gets is the lobby's next line.
                await send(bob, type="say", room="lobby", text="thanks")
                for ws in (ann, bob, cy):
                    assert await said(ws) == {"type": "message", "room": "lobby", "from": "bob", "text": "thanks"}

            # cy closed its page: once the grace is over, the lobby hears it left.
            for ws in (ann, bob):
                assert await said(ws) == {"type": "left", "room": "lobby", "user": "cy"}
            await send(bob, type="leave", room="lobby")
            assert await next_json(bob) == {"type": "rooms", "rooms": ["rust"]}
            assert await said(ann) == {"type": "left", "room": "lobby", "user": "bob"}

            await ann.send("not json")
            assert await next_json(ann) == {"type": "notice", "text": "not understood: send a JSON object"}
            await send(ann, type="join", room="no spaces")
            assert await next_json(ann) == {
                "type": "notice",
                "text": "a room's name is 1 to 20 letters, digits, - or _",
            }


async def test_a_user_with_two_pages_is_one_member(chat):
    """Two pages of bob's: a private message reaches both, and the lobby hears bob arrive and
    leave once (when the first page opens, and when the last one has been closed for the grace)."""
    ann_login, bob_login = await log_in(chat, "ann"), await log_in(chat, "bob")
    async with chat.connect("/rooms", additional_headers=ann_login) as ann:
        await entered(ann, "ann", ["ann"])
        async with chat.connect("/rooms", additional_headers=bob_login) as bob1:
            await entered(bob1, "bob", ["ann", "bob"])
            assert await said(ann) == {"type": "joined", "room": "lobby", "user": "bob"}
            async with chat.connect("/rooms", additional_headers=bob_login) as bob2:
                await entered(bob2, "bob", ["ann", "bob"], arrives=False)
                await send(ann, type="private", to="bob", text="both of you")
                private = {"type": "private", "from": "ann", "to": "bob", "text": "both of you"}
                for ws in (bob1, bob2, ann):
                    assert await next_json(ws) == private
                # bob writes to himself: each of his pages gets it once.
                await send(bob1, type="private", to="bob", text="note to self")
                for ws in (bob1, bob2):
                    assert await next_json(ws) == {
                        "type": "private",
                        "from": "bob",
                        "to": "bob",
                        "text": "note to self",
                    }
            # One page of bob's is left: nobody hears that bob left; the next line is ann's.
            await asyncio.sleep(2 * float(GRACE))
            await send(ann, type="say", room="lobby", text="still here?")
            line = {"type": "message", "room": "lobby", "from": "ann", "text": "still here?"}
            assert await said(ann) == line
            assert await said(bob1) == line
        assert await said(ann) == {"type": "left", "room": "lobby", "user": "bob"}


async def test_a_page_that_comes_back_gets_what_it_missed_once_in_order(chat):
    """A connection that names where it was in its rooms (`?resume=`) is put back in them and
    gets what was said there since, then what follows; a position the history cannot go on
    from puts it at the room's current position instead, telling it to reset."""
    ann_login, bob_login = await log_in(chat, "ann"), await log_in(chat, "bob")
    async with chat.connect("/rooms", additional_headers=bob_login) as bob:
        epoch, _ = await entered(bob, "bob", ["bob"])
        async with chat.connect("/rooms", additional_headers=ann_login) as ann:
            await entered(ann, "ann", ["ann", "bob"])
            await send(ann, type="join", room="rust")
            rust = await next_json(ann)
            assert (rust["type"], rust["offset"]) == ("position", 0)
            while (await next_json(ann))["type"] != "rooms":
                pass
            assert await said(bob) == {"type": "joined", "room": "lobby", "user": "ann"}
            await send(bob, type="say", room="lobby", text="before")
            seen = await next_json(bob)
            while (await next_json(ann)) != seen:
                pass
        # ann is away (less than the grace: no "left" when she is back soon enough).
        for n in range(3):
            await send(bob, type="say", room="lobby", text=f"missed {n}")
        missed = [await next_json(bob) for _ in range(3)]
        assert [message["offset"] for message in missed] == [seen["offset"] + 1 + n for n in range(3)]
        back = resuming({"lobby": (epoch, seen["offset"]), "rust": (rust["epoch"], 1)})
        async with chat.connect(back, additional_headers=ann_login) as ann:
            assert await next_json(ann) == {"type": "welcome", "user": "ann"}
            assert [await next_json(ann) for _ in range(3)] == missed
            assert await next_json(ann) == {"type": "present", "room": "lobby", "users": ["ann", "bob"]}
            assert await next_json(ann) == {"type": "present", "room": "rust", "users": ["ann"]}
            assert await next_json(ann) == {"type": "rooms", "rooms": ["lobby", "rust"]}
            await send(bob, type="say", room="lobby", text="after")
            assert await next_json(ann) == await next_json(bob)

        # An epoch of another history (a server restarted since, say), and an offset the
        # history has not reached: the room starts again at its current position.
        now = missed[-1]["offset"] + 1
        for position in [("another epoch", 2), (epoch, now + 50)]:
            async with chat.connect(resuming({"lobby": position}), additional_headers=ann_login) as ann:
                assert await next_json(ann) == {"type": "welcome", "user": "ann"}
                reset = {"type": "position", "room": "lobby", "epoch": epoch, "offset": now, "reset": True}
                assert await next_json(ann) == reset
                assert await next_json(ann) == {"type": "present", "room": "lobby", "users": ["ann", "bob"]}
                assert await next_json(ann) == {"type": "rooms", "rooms": ["lobby"]}

        # Nothing usable to come back to: no rooms at all (the page had left them all).
        async with chat.connect("/rooms?resume=nonsense", additional_headers=ann_login) as ann:
            assert await next_json(ann) == {"type": "welcome", "user": "ann"}
            assert await next_json(ann) == {"type": "rooms", "rooms": []}


def serving_process(server: Server, ws) -> int:
    """The pid of the worker (a child of the server's supervisor) that holds the server's end
    of this client connection: the socket's inode from /proc/net/tcp, then whose fd it is."""
    port = ws.local_address[1]
    inode = None
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local, remote) == (server.port, port):
            inode = fields[9]
    assert inode is not None, f"no server socket for client port {port}"
    for child in Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split():
        for fd in Path(f"/proc/{child}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == f"socket:[{inode}]":
                    return int(child)
    raise AssertionError(f"no worker holds socket {inode}")


async def quiet(ws, after: float = 0.5) -> list[dict[str, Any]]:
    """Every message until none has come for `after` seconds."""
    messages = []
    with contextlib.suppress(TimeoutError):
        while True:
            messages.append(json.loads(await receive(ws, after)))
    return messages


async def test_private_messages_and_presence_span_worker_processes(start_server):
    """With --processes 2, ann's and bob's connections on different workers: a private message
    finds the other's (a dict of one process's connections said "not online"), and each is in
    the other's presence, announced once by on_presence."""
    server = start_server("pyapp.main", "--processes", "2", "--presence-grace", GRACE, cwd=ROOT)
    ann_login, bob_login = await log_in(server, "ann"), await log_in(server, "bob")
    async with server.connect("/rooms", additional_headers=ann_login) as ann:
        await entered(ann, "ann", ["ann"])
        ann_worker = serving_process(server, ann)
        # The kernel picks a worker for each connection: bob's until one is on the other worker.
        for _ in range(50):
            bob = await server.connect("/rooms", additional_headers=bob_login)
            if serving_process(server, bob) != ann_worker:
                break
            await bob.close()
        else:
            raise AssertionError("50 connections in a row went to ann's worker")
        async with bob:
            # bob's pages that came and went meanwhile are one arrival: settled, it is said once.
            await asyncio.sleep(3 * float(GRACE))
            assert [plain(message) for message in await quiet(ann)] == [
                {"type": "joined", "room": "lobby", "user": "bob"}
            ]
            await quiet(bob)

            await send(ann, type="private", to="bob", text="over there?")
            private = {"type": "private", "from": "ann", "to": "bob", "text": "over there?"}
            assert await next_json(bob) == private
            assert await next_json(ann) == private
            await send(bob, type="private", to="ann", text="yes")
            private = {"type": "private", "from": "bob", "to": "ann", "text": "yes"}
            assert await next_json(ann) == private
            assert await next_json(bob) == private

            await send(ann, type="join", room="rust")
            assert sorted(message["type"] for message in await quiet(ann)) == ["joined", "position", "present", "rooms"]
            await send(bob, type="join", room="rust")
            got = await quiet(bob)
            assert {"type": "present", "room": "rust", "users": ["ann", "bob"]} in got
            assert {"type": "joined", "room": "rust", "user": "bob"} in [plain(message) for message in got]
            assert await said(ann) == {"type": "joined", "room": "rust", "user": "bob"}
            await send(bob, type="say", room="rust", text="across")
            assert await said(ann) == {"type": "message", "room": "rust", "from": "bob", "text": "across"}
            assert await said(bob) == {"type": "message", "room": "rust", "from": "bob", "text": "across"}
        left = sorted([await said(ann), await said(ann)], key=json.dumps)
        assert left == [{"type": "left", "room": room, "user": "bob"} for room in ("lobby", "rust")]
        await send(ann, type="private", to="bob", text="gone?")
        assert await next_json(ann) == {"type": "notice", "text": "bob is not online"}


async def test_the_page_and_health_come_from_the_same_app(chat):
    status, headers, page = await asyncio.to_thread(http, chat, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert '<script src="/demo.js" defer></script>' in page
    status, headers, script = await asyncio.to_thread(http, chat, "/demo.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript"
    assert "`${scheme}://${location.host}/rooms${resume}`" in script
    # The seed's own chat example is still at /chat, and /health counts its clients.
    async with chat.connect("/chat") as ws:
        assert (await receive(ws)).startswith("Welcome, ")
        status, _, health = await asyncio.to_thread(http, chat, "/health")
    assert json.loads(health) == {"status": "ok", "chatting": 1}


async def test_served_as_a_file_from_another_folder_the_demo_is_there_too(start_server, tmp_path):
    """`--app path/to/pyapp/main.py` from elsewhere: `pyapp` is no package on the path then,
    and main.py finds the demo beside itself."""
    server = start_server(str(ROOT / "pyapp" / "main.py"), cwd=tmp_path)
    status, _, page = await asyncio.to_thread(http, server, "/")
    assert status == 200
    assert '<script src="/demo.js" defer></script>' in page
    with pytest.raises(InvalidStatus) as refused:
        async with server.connect("/rooms"):
            pass
    assert refused.value.response.status_code == 401
