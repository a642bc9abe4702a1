"""The demo chat of pyapp (pyapp/demo.py) as a program other than its page sees it: the login
over HTTP, then the JSON protocol of /rooms with the `websockets` client. The page itself is
driven in a browser by tests/test_demo_chat.py."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import Any

import pytest
from conftest import ROOT, Server, receive
from websockets.exceptions import InvalidStatus


@pytest.fixture
def chat(start_server) -> Server:
    return start_server("pyapp.main", cwd=ROOT)


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


async def entered(ws, user: str) -> None:
    """What a new connection gets first: the welcome, its own arrival in the lobby (when no
    other page of the user is there already), and its rooms."""
    assert await next_json(ws) == {"type": "welcome", "user": user}
    message = await next_json(ws)
    if message["type"] == "joined":
        assert message == {"type": "joined", "room": "lobby", "user": user}
        message = await next_json(ws)
    assert message == {"type": "rooms", "rooms": ["lobby"]}


async def send(ws, **message: str) -> None:
    await ws.send(json.dumps(message))


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
        await entered(ws, "ann")


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
    async with (
        chat.connect("/rooms", additional_headers=ann_login) as ann,
        chat.connect("/rooms", additional_headers=bob_login) as bob,
    ):
        await entered(ann, "ann")
        await entered(bob, "bob")
        assert await next_json(ann) == {"type": "joined", "room": "lobby", "user": "bob"}

        await send(ann, type="say", room="lobby", text="hi <b>bob</b>")
        said = {"type": "message", "room": "lobby", "from": "ann", "text": "hi <b>bob</b>"}
        assert await next_json(ann) == said
        assert await next_json(bob) == said

        await send(bob, type="join", room="rust")
        assert await next_json(bob) == {"type": "joined", "room": "rust", "user": "bob"}
        assert await next_json(bob) == {"type": "rooms", "rooms": ["lobby", "rust"]}
        await send(ann, type="say", room="rust", text="may I?")
        assert await next_json(ann) == {"type": "notice", "text": "join #rust to talk there"}
        await send(bob, type="say", room="rust", text="borrowed")
        assert await next_json(bob) == {"type": "message", "room": "rust", "from": "bob", "text": "borrowed"}

        await send(ann, type="private", to="cy", text="are you there?")
        assert await next_json(ann) == {"type": "notice", "text": "cy is not online"}

        async with chat.connect("/rooms", additional_headers=cy_login) as cy:
            await entered(cy, "cy")
            for ws in (ann, bob):
                assert await next_json(ws) == {"type": "joined", "room": "lobby", "user": "cy"}
            await send(ann, type="private", to="bob", text="psst")
            private = {"type": "private", "from": "ann", "to": "bob", "text": "psst"}
            assert await next_json(bob) == private
            assert await next_json(ann) == private  # the sender's copy
            # cy heard nothing of it: the next thing cy gets is the lobby's next line.
            await send(bob, type="say", room="lobby", text="thanks")
            for ws in (ann, bob, cy):
                assert await next_json(ws) == {"type": "message", "room": "lobby", "from": "bob", "text": "thanks"}

        # cy closed its page: the lobby hears it left.
        for ws in (ann, bob):
            assert await next_json(ws) == {"type": "left", "room": "lobby", "user": "cy"}
        await send(bob, type="leave", room="lobby")
        assert await next_json(bob) == {"type": "rooms", "rooms": ["rust"]}
        assert await next_json(ann) == {"type": "left", "room": "lobby", "user": "bob"}

        await ann.send("not json")
        assert await next_json(ann) == {"type": "notice", "text": "not understood: send a JSON object"}
        await send(ann, type="join", room="no spaces")
        assert await next_json(ann) == {"type": "notice", "text": "a room's name is 1 to 20 letters, digits, - or _"}


async def test_a_user_with_two_pages_is_one_member(chat):
    """Two pages of bob's: a private message reaches both, and the lobby hears bob arrive and
    leave once (when the first page opens, and when the last one closes)."""
    ann_login, bob_login = await log_in(chat, "ann"), await log_in(chat, "bob")
    async with chat.connect("/rooms", additional_headers=ann_login) as ann:
        await entered(ann, "ann")
        async with chat.connect("/rooms", additional_headers=bob_login) as bob1:
            await entered(bob1, "bob")
            assert await next_json(ann) == {"type": "joined", "room": "lobby", "user": "bob"}
            async with chat.connect("/rooms", additional_headers=bob_login) as bob2:
                await entered(bob2, "bob")
                await send(ann, type="private", to="bob", text="both of you")
                private = {"type": "private", "from": "ann", "to": "bob", "text": "both of you"}
                for ws in (bob1, bob2, ann):
                    assert await next_json(ws) == private
            # One page of bob's is left: nobody hears that bob left; the next line is ann's.
            await send(ann, type="say", room="lobby", text="still here?")
            said = {"type": "message", "room": "lobby", "from": "ann", "text": "still here?"}
            assert await next_json(ann) == said
            assert await next_json(bob1) == said
        assert await next_json(ann) == {"type": "left", "room": "lobby", "user": "bob"}


async def test_the_page_and_health_come_from_the_same_app(chat):
    status, headers, page = await asyncio.to_thread(http, chat, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert '<script src="/demo.js" defer></script>' in page
    status, headers, script = await asyncio.to_thread(http, chat, "/demo.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript"
    assert "`${scheme}://${location.host}/rooms`" in script
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
