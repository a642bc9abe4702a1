"""The chat with login, rooms and private messages in pyapp/main.py (/rooms), as its comment
describes it."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from conftest import ROOT, receive
from websockets.exceptions import InvalidStatus


@pytest.fixture
def chat(start_server):
    return start_server("pyapp.main", cwd=ROOT)


def session(name: str) -> dict[str, str]:
    return {"Cookie": f"session={name}-session"}


async def next_json(ws) -> dict:
    return json.loads(await receive(ws))


async def test_without_a_session_the_handshake_is_refused_with_401(chat):
    with pytest.raises(InvalidStatus) as refused:
        async with chat.connect("/rooms"):
            pass
    assert refused.value.response.status_code == 401


async def test_users_log_in_chat_in_rooms_and_send_private_messages(chat):
    async with (
        chat.connect("/rooms", additional_headers=session("ann")) as ann,
        chat.connect("/rooms?room=games", additional_headers=session("bob")) as bob,
    ):
        assert await next_json(ann) == {"welcome": "ann"}
        assert await next_json(ann) == {"room": "lobby", "joined": "ann"}
        assert await next_json(bob) == {"welcome": "bob"}
        assert await next_json(bob) == {"room": "games", "joined": "bob"}
        await ann.send(json.dumps({"say": "anyone in games?", "room": "games"}))
        assert await next_json(bob) == {"room": "games", "from": "ann", "say": "anyone in games?"}
        await bob.send(json.dumps({"to": "ann", "say": "psst"}))
        assert await next_json(ann) == {"from": "bob", "private": "psst"}
        await bob.send(json.dumps({"to": "cy", "say": "hello?"}))
        assert await next_json(bob) == {"error": "cy is not online"}
        await ann.send(json.dumps({"join": "games"}))
        assert await next_json(ann) == {"rooms": ["games", "lobby"]}
        await bob.send(json.dumps({"say": "welcome, ann"}))
        assert await next_json(ann) == {"room": "games", "from": "bob", "say": "welcome, ann"}
        assert await next_json(bob) == {"room": "games", "from": "bob", "say": "welcome, ann"}


async def test_the_chat_page_and_health_come_from_the_same_app(chat):
    def get(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{chat.port}{path}", timeout=10) as response:
            return response.status, response.read().decode()

    status, page = await asyncio.to_thread(get, "/")
    assert status == 200
    assert "new WebSocket(`${scheme}://${location.host}/chat`)" in page
    async with chat.connect("/chat") as ws:
        assert (await receive(ws)).startswith("Welcome, ")
        status, health = await asyncio.to_thread(get, "/health")
    assert json.loads(health) == {"status": "ok", "chatting": 1}
