"""History and recovery (`@app.websocket(path, history=N, history_ttl=S)`): every kept
broadcast gets an offset, consecutive per room from 1 in an epoch, and reaches every client
in offset order; a client that comes back catches up on exactly what it missed (`recover`,
`missed`), or is told it cannot (`HistoryGap`), never given part of it. In one process, in the
workers of `--processes` (the supervisor keeps the history), and on instances sharing a real
redis-server (`--broker`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import APPS, Server, still_serves, with_io_threads
from redis_server import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

APP = "history_app"
# The app's history=N of /h and /ttl, and history_ttl of /ttl.
KEPT = 60
TTL = 2.0
TIMEOUT = 10.0
# `until_offset` without a room: the messages of any.
ANY_ROOM = object()


def fresh_room() -> str:
    """A room no other test used: the module's servers are shared."""
    return f"room-{uuid.uuid4().hex[:8]}"


class Client:
    """A client of the history app: the broadcasts it got (decoded, in arrival order), and
    the replies to its commands by `ref`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.hello: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []
        self.replies: dict[int, dict[str, Any]] = {}
        self._refs = itertools.count(1)
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Client:
        ws = await connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_queue=None)
        client = cls(ws)
        async with client._changed:
            await asyncio.wait_for(
                client._changed.wait_for(lambda: client.hello is not None or client._reader.done()), TIMEOUT
            )
        assert client.hello is not None, "closed before its hello"
        return client

    @property
    def id(self) -> str:
        assert self.hello is not None
        return self.hello["id"]

    @property
    def pid(self) -> int:
        assert self.hello is not None
        return self.hello["pid"]

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                assert isinstance(text, str), text
                received = json.loads(text)
                async with self._changed:
                    if "hello" in received:
                        assert self.hello is None, f"a second hello: {received}"
                        self.hello = received["hello"]
                    elif "ref" in received:
                        self.replies[received.pop("ref")] = received
                    else:
                        assert "o" in received, received
                        self.messages.append(received)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        async with self._changed:
            self._changed.notify_all()

    async def send(self, op: str, **command: Any) -> int:
        """Sends a command; its ref, for `answer`."""
        ref = next(self._refs)
        await self.ws.send(json.dumps({"op": op, "ref": ref, **command}))
        return ref

    async def answer(self, ref: int, timeout: float = TIMEOUT) -> dict[str, Any]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: ref in self.replies or self._reader.done()), timeout)
            assert ref in self.replies, f"the connection closed before the reply to command {ref}"
            return self.replies.pop(ref)

    async def ask(self, op: str, **command: Any) -> dict[str, Any]:
        return await self.answer(await self.send(op, **command))

    async def join(self, room: str) -> None:
        assert await self.ask("join", room=room) == {"joined": room}

    async def say(self, room: str | None, text: str = "") -> int:
        """A broadcast made by a function of its offset; its offset (checked: the function was
        called exactly once, with it)."""
        reply = await self.ask("say", room=room, text=text)
        assert reply["calls"] == [reply["said"]], reply
        return reply["said"]

    async def burst(self, room: str | None, count: int, text: str = "burst", **extra: Any) -> list[int]:
        return (await self.ask("burst", room=room, count=count, text=text, **extra))["offsets"]

    async def position(self, room: str | None) -> tuple[str, int]:
        reply = await self.ask("position", room=room)
        assert reply["type"], f"not a robyn.HistoryPosition: {reply}"
        return reply["epoch"], reply["offset"]

    async def until(self, have: Callable[[list[dict[str, Any]]], bool], timeout: float = TIMEOUT) -> list[dict]:
        """The broadcasts received, once they satisfy `have`."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: have(self.messages)), timeout)
            except TimeoutError:
                raise AssertionError(f"waited {timeout}s; received only {self.messages}") from None
            return list(self.messages)

    async def until_offset(self, offset: int, timeout: float = TIMEOUT, room: object = ANY_ROOM) -> list[int | None]:
        """The offsets received (of `room`, if given), once `offset` is among them."""

        def of_room(messages: list[dict[str, Any]]) -> list[int | None]:
            return [m["o"] for m in messages if room is ANY_ROOM or m["room"] == room]

        return of_room(await self.until(lambda messages: offset in of_room(messages), timeout))

    def offsets(self, room: str | None = None) -> list[int | None]:
        return [m["o"] for m in self.messages if m["room"] == room]

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def open_all(url: str, count: int) -> list[Client]:
    return list(await asyncio.gather(*(Client.open(url) for _ in range(count))))


async def spread(url: str, processes: int, at_least: int, most: int = 100) -> list[Client]:
    """Clients of one address until `processes` different processes serve them."""
    opened: list[Client] = []
    while len(opened) < at_least or len({client.pid for client in opened}) < processes:
        assert len(opened) < most, f"{most} clients reached only {len({c.pid for c in opened})} processes"
        opened.append(await Client.open(url))
    return opened


async def on_other_process(url: str, pid: int, most: int = 100) -> Client:
    """A client of `url` served by another process than `pid` (others opened meanwhile closed)."""
    spare: list[Client] = []
    try:
        for _ in range(most):
            client = await Client.open(url)
            if client.pid != pid:
                return client
            spare.append(client)
        raise AssertionError(f"{most} clients all served by {pid}")
    finally:
        for client in spare:
            await client.close()


async def close_all(clients: list[Client]) -> None:
    for client in clients:
        await client.close()


def started(binary, io_threads: str, *flags: str) -> Server:
    args = ["--app", APP, "--host", "127.0.0.1", "--port", "0", *flags]
    return Server(binary, with_io_threads(args, io_threads), None, APPS).started()


def stopped(server: Server) -> None:
    assert server.stop() == 0, server.output
    assert "panicked" not in server.output, f"the server panicked:\n{server.output}"


@pytest.fixture(scope="module")
def one(binary, io_threads: str) -> Iterator[Server]:
    """One process, shared by the module's one-process tests (each uses rooms of its own)."""
    server = started(binary, io_threads)
    yield server
    stopped(server)


@pytest.fixture(scope="module")
def workers(binary, io_threads: str) -> Iterator[Server]:
    """`--processes 2`, shared by the module's worker tests."""
    server = started(binary, io_threads, "--processes", "2")
    yield server
    stopped(server)


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    server = Redis().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def pair(binary, io_threads: str, redis: Redis) -> Iterator[list[Server]]:
    """Two instances on one redis-server."""
    servers = [started(binary, io_threads, "--broker", redis.url) for _ in range(2)]
    yield servers
    for server in servers:
        stopped(server)


async def recovery_amid_broadcasts(url: str, sender: Client, room: str) -> Client:
    """A client of `url` recovers while `sender` (elsewhere, perhaps) is broadcasting: it gets
    what it missed, then the rest, each once, in order."""
    await sender.join(room)
    assert await sender.burst(room, 20) == list(range(1, 21))
    epoch, _ = await sender.position(room)
    back = await Client.open(url)
    # The burst yields between broadcasts; the recovery starts once a few of it went out.
    burst = await sender.send("burst", room=room, count=30, text="meanwhile", pause=0.002)
    await sender.until_offset(25, room=room)
    recovered = await back.ask("recover", room=room, since=5, epoch=epoch)
    assert (await sender.answer(burst))["offsets"] == list(range(21, 51))
    assert await sender.say(room, "last") == 51
    assert await back.until_offset(51) == list(range(6, 52))
    # At least 6..25 were missed; the rest came live (held while it recovered, if need be).
    assert recovered["count"] >= 20, recovered
    return back


async def given_up_and_gaps(url: str) -> None:
    """A function that raises gives its offset up without holding the next one back; what is
    older than the history, or of another epoch, is a gap."""
    room = fresh_room()
    a, b = await open_all(url, 2)
    await b.join(room)
    assert await a.say(room, "one") == 1
    assert await a.ask("raise", room=room) == {"error": "ValueError", "message": "no message for 2"}
    began = time.monotonic()
    assert await a.say(room, "three") == 3
    assert await b.until_offset(3, timeout=1.0) == [1, 3]
    assert time.monotonic() - began < 1.0
    assert await a.burst(room, KEPT) == list(range(4, KEPT + 4))
    epoch, offset = await b.position(room)
    assert offset == KEPT + 3
    gap = await b.ask("missed", room=room, since=2, epoch=epoch)
    assert (gap["gap"], gap["epoch"], gap["offset"]) == ("too old", epoch, KEPT + 3), gap
    kept = await b.ask("missed", room=room, since=3, epoch=epoch)
    assert [m["o"] for m in kept["messages"]] == list(range(4, KEPT + 4))
    gap = await b.ask("recover", room=room, since=1, epoch="not-" + epoch)
    assert (gap["gap"], gap["epoch"], gap["offset"]) == ("epoch", epoch, KEPT + 3), gap
    await close_all([a, b])


async def forgets_after_ttl(url: str) -> None:
    """/ttl keeps its broadcasts TTL s at most: asking from before the oldest kept is then "too
    old" while the room goes on; a room idle for TTL s is forgotten and begins a new epoch
    (README, "Users, presence and history")."""
    room = fresh_room()
    a = await Client.open(url)
    try:
        await forgotten_after_ttl(a, room)
    finally:
        await a.close()


async def forgotten_after_ttl(a: Client, room: str) -> None:
    began = time.monotonic()
    assert await a.say(room, "soon old") == 1
    epoch, _ = await a.position(room)
    assert [m["o"] for m in (await a.ask("missed", room=room, since=0, epoch=epoch))["messages"]] == [1]
    # No event says when a broadcast expires, so ask until it has, broadcasting meanwhile (a
    # room quiet for TTL would be forgotten instead).
    last, quiet_since = 1, began
    while "gap" not in (reply := await a.ask("missed", room=room, since=0, epoch=epoch)):
        assert reply["messages"][0]["o"] == 1, reply
        assert time.monotonic() - began < TTL + 4, f"still kept after {TTL + 4} s"
        await asyncio.sleep(0.1)
        quiet_since = time.monotonic()  # the room is active at least from here
        last = await a.say(room, "keeps the room alive")
    assert time.monotonic() - began >= TTL
    assert (reply["gap"], reply["epoch"], reply["offset"]) == ("too old", epoch, last), reply
    recent = await a.ask("missed", room=room, since=last - 1, epoch=epoch)
    assert [m["o"] for m in recent["messages"]] == [last]
    # Idle for history_ttl: forgotten; a client that was up to date is told to reload.
    while "gap" not in (reply := await a.ask("missed", room=room, since=last, epoch=epoch)):
        assert reply == {"messages": []}
        assert time.monotonic() - quiet_since < TTL + 4, f"an idle room still kept after {TTL + 4} s"
        await asyncio.sleep(0.1)
    assert time.monotonic() - quiet_since >= TTL
    assert (reply["gap"], reply["offset"]) == ("epoch", 0) and reply["epoch"] != epoch, reply
    assert await a.position(room) == (reply["epoch"], 0)


async def endpoint_recovery_elsewhere(url: str, sender: Client) -> Client:
    """A client connecting with `?since=&epoch=` recovers the endpoint's broadcasts in
    on_connect, on another process than the sender's: what it missed, then the live ones."""
    epoch, start = await sender.position(None)
    assert await sender.burst(None, 3, "to all") == [start + 1, start + 2, start + 3]
    back = await on_other_process(f"{url}?since={start + 1}&epoch={epoch}", sender.pid)
    assert back.hello is not None and back.hello["recovered"] == {"count": 2}, back.hello
    assert await sender.say(None, "to all, live") == start + 4
    assert await back.until_offset(start + 4, room=None) == [start + 2, start + 3, start + 4]
    return back


# -- One process ------------------------------------------------------------------------


async def test_offsets_are_consecutive_per_room_and_for_the_endpoint(one):
    red, blue = fresh_room(), fresh_room()
    a, b = await open_all(one.url("/h"), 2)
    await a.join(red)
    await a.join(blue)
    await b.join(red)

    assert [await a.say(red, f"red {n}") for n in range(3)] == [1, 2, 3]
    assert await a.say(blue, "blue 0") == 1
    assert await b.say(red, "red 3") == 4
    # app.broadcast returns the offset too, and calls the function once.
    reply = await a.ask("app_say", room=red, text="from the app")
    assert (reply["said"], reply["calls"]) == (5, [5])
    # A plain str is kept and gets the next offset.
    assert await a.ask("plain", room=red, text="plain") == {"said": 6}
    # exclude_self: kept with the next offset, not sent back to its sender.
    reply = await a.ask("say", room=red, text="not to a", exclude_self=True)
    assert (reply["said"], reply["calls"]) == (7, [7])
    assert await b.say(red, "to both") == 8
    assert await a.until_offset(8, room=red) == [1, 2, 3, 4, 5, None, 8]
    assert await b.until_offset(8, room=red) == [1, 2, 3, 4, 5, None, 7, 8]

    texts = [*(f"red {n}" for n in range(4)), "from the app", "plain", "not to a", "to both"]
    assert [m["text"] for m in a.messages if m["room"] == red] == texts[:6] + texts[7:]
    assert [m["text"] for m in b.messages if m["room"] == red] == texts
    assert a.offsets(blue) == [1]
    assert b.offsets(blue) == []

    red_epoch, red_offset = await a.position(red)
    assert red_offset == 8 and red_epoch
    assert await b.position(red) == (red_epoch, 8)
    assert (await a.ask("app_position", room=red)) == {"epoch": red_epoch, "offset": 8, "type": True}
    assert (await a.position(blue))[1] == 1
    assert (await a.position(fresh_room()))[1] == 0, "offset 0 before any broadcast"

    # The endpoint (room None) counts on its own, and its broadcasts reach every client.
    epoch, before = await a.position(None)
    assert await a.say(None, "all 1") == before + 1
    assert await b.say(None, "all 2") == before + 2
    assert await a.position(None) == (epoch, before + 2)
    for client in (a, b):
        await client.until(lambda messages: len([m for m in messages if m["room"] is None]) == 2)
        assert client.offsets(None) == [before + 1, before + 2]
    assert a.offsets(red) == [1, 2, 3, 4, 5, None, 8], "nothing more in the room"
    await close_all([a, b])


async def test_without_history_broadcast_returns_none_and_refuses_a_function(one):
    a, b = await open_all(one.url("/plain"), 2)
    assert await a.ask("plain", text="first") == {"said": None}
    reply = await a.ask("say", text="made")
    assert reply["error"] == "TypeError" and reply["calls"] == [], reply
    assert await a.ask("plain", text="after") == {"said": None}
    for client in (a, b):
        got = await client.until(lambda messages: len(messages) >= 2)
        assert [m["text"] for m in got] == ["first", "after"]
    await close_all([a, b])


async def test_a_function_that_raises_gives_up_its_offset_and_holds_nothing_back(one):
    room = fresh_room()
    a, b = await open_all(one.url("/h"), 2)
    for client in (a, b):
        await client.join(room)
    assert await a.say(room, "one") == 1
    raised = await a.ask("raise", room=room)
    assert raised == {"error": "ValueError", "message": "no message for 2"}
    # Given up at once: the next one is not held back (a forgotten offset waits 2 s).
    began = time.monotonic()
    assert await a.say(room, "three") == 3
    await b.until_offset(3, timeout=1.0)
    assert time.monotonic() - began < 1.0
    # A function that returns neither str nor bytes: TypeError, its offset given up too.
    not_text = await a.ask("not_text", room=room)
    assert not_text["error"] == "TypeError", not_text
    assert await a.say(room, "five") == 5
    for client in (a, b):
        assert await client.until_offset(5, timeout=1.0) == [1, 3, 5]
    epoch, offset = await a.position(room)
    assert offset == 5
    missed = await b.ask("missed", room=room, since=0, epoch=epoch)
    assert [m["o"] for m in missed["messages"]] == [1, 3, 5]
    await close_all([a, b])


async def test_a_client_that_comes_back_recovers_exactly_what_it_missed(one):
    room = fresh_room()
    a, b = await open_all(one.url("/h"), 2)
    for client in (a, b):
        await client.join(room)
    await b.burst(room, 2)
    assert await a.until_offset(2) == [1, 2]
    epoch, _ = await a.position(room)
    last = a.messages[-1]["o"]
    await a.close()

    assert await b.burst(room, 50, "while away") == list(range(3, 53))
    # missed: exactly those 50, in order.
    missed = await b.ask("missed", room=room, since=last, epoch=epoch)
    assert [m["o"] for m in missed["messages"]] == list(range(3, 53))
    assert [m["text"] for m in missed["messages"]] == [f"while away {n}" for n in range(50)]
    assert await b.ask("app_missed", room=room, since=last, epoch=epoch) == missed

    back = await Client.open(one.url("/h"))
    recovered = await back.ask("recover", room=room, since=last, epoch=epoch)
    assert recovered == {"count": 50, "rooms": [room]}
    assert await b.say(room, "live") == 53
    assert await back.until_offset(53) == list(range(3, 54))
    assert [m["text"] for m in back.messages[:50]] == [f"while away {n}" for n in range(50)]
    await close_all([b, back])


async def test_recovery_while_another_client_keeps_broadcasting(one):
    sender = await Client.open(one.url("/h"))
    back = await recovery_amid_broadcasts(one.url("/h"), sender, fresh_room())
    await close_all([sender, back])


async def test_a_gap_older_than_the_history_is_reported_never_filled(one):
    room = fresh_room()
    sender = await Client.open(one.url("/h"))
    assert await sender.burst(room, KEPT + 1) == list(range(1, KEPT + 2))
    epoch, offset = await sender.position(room)
    assert offset == KEPT + 1

    gap = await sender.ask("missed", room=room, since=0, epoch=epoch)
    assert (gap["gap"], gap["epoch"], gap["offset"]) == ("too old", epoch, KEPT + 1), gap
    # From the oldest kept one on, it is all there.
    missed = await sender.ask("missed", room=room, since=1, epoch=epoch)
    assert [m["o"] for m in missed["messages"]] == list(range(2, KEPT + 2))
    assert (await sender.ask("missed", room=room, since=KEPT + 1, epoch=epoch)) == {"messages": []}

    late = await Client.open(one.url("/h"))
    recovered = await late.ask("recover", room=room, since=0, epoch=epoch)
    assert (recovered["gap"], recovered["offset"], recovered["rooms"]) == ("too old", KEPT + 1, [room]), recovered
    # The room is joined all the same: what follows arrives, and nothing of the old.
    assert await sender.say(room, "next") == KEPT + 2
    assert await late.until_offset(KEPT + 2) == [KEPT + 2]
    await close_all([sender, late])


async def test_a_wrong_epoch_is_a_gap(one):
    room = fresh_room()
    a = await Client.open(one.url("/h"))
    await a.burst(room, 3)
    epoch, _ = await a.position(room)
    for ask in ("missed", "app_missed", "recover"):
        gap = await a.ask(ask, room=room, since=1, epoch="not-" + epoch)
        assert (gap["gap"], gap["epoch"], gap["offset"]) == ("epoch", epoch, 3), (ask, gap)
    # An offset this epoch never reached cannot be caught up from either.
    beyond = await a.ask("missed", room=room, since=4, epoch=epoch)
    assert beyond["gap"] == "epoch", beyond
    await a.close()


async def test_history_ttl_forgets_older_broadcasts(one):
    await forgets_after_ttl(one.url("/ttl"))


async def test_bad_positions_are_type_errors_and_the_server_serves_on(one):
    room = fresh_room()
    a, b = await open_all(one.url("/h"), 2)
    await a.join(room)
    epoch, _ = await a.position(room)
    for ask in ("missed", "recover"):
        for since, bad_epoch in (("3", epoch), (-1, epoch), (True, epoch), (1.5, epoch), (None, epoch), (0, 7)):
            reply = await a.ask(ask, room=room, since=since, epoch=bad_epoch)
            assert reply["error"] == "TypeError", (ask, since, bad_epoch, reply)
    # Both connections, and new ones, are served.
    assert await b.say(room, "fine") == 1
    assert await a.until_offset(1) == [1]
    await still_serves(one)
    # Each bad declaration of history was refused with ValueError at import.
    assert one.count(r"^refused history") == 4, one.output
    assert one.count(r"^accepted history") == 0, one.output
    await close_all([a, b])


async def test_the_epoch_changes_when_the_server_restarts(binary, io_threads):
    server = started(binary, io_threads)
    try:
        a = await Client.open(server.url("/h"))
        epoch, offset = await a.position(None)
        assert offset == 0
        assert [await a.say(None, f"all {n}") for n in range(3)] == [1, 2, 3]
        # Recovering the endpoint's broadcasts in on_connect (before the handler runs).
        back = await Client.open(server.url(f"/h?since=1&epoch={epoch}"))
        assert back.hello is not None and back.hello["recovered"] == {"count": 2}
        assert await a.say(None, "all 3") == 4
        assert await back.until_offset(4) == [2, 3, 4]
        await close_all([a, back])
    finally:
        stopped(server)

    server = started(binary, io_threads)
    try:
        a = await Client.open(server.url("/h"))
        new_epoch, offset = await a.position(None)
        assert new_epoch != epoch and offset == 0
        gap = await a.ask("missed", since=4, epoch=epoch)
        assert (gap["gap"], gap["epoch"], gap["offset"]) == ("epoch", new_epoch, 0), gap
        back = await Client.open(server.url(f"/h?since=4&epoch={epoch}"))
        assert back.hello is not None
        assert back.hello["recovered"]["gap"] == "epoch", back.hello
        # It gets what follows, from the new epoch's first.
        assert await a.say(None, "new") == 1
        assert await back.until_offset(1) == [1]
        await close_all([a, back])
    finally:
        stopped(server)


# -- --processes 2 ------------------------------------------------------------------------


async def concurrent_bursts_agree(clients: list[Client], room: str) -> None:
    """Every client bursts into `room` at once (as many as the history keeps, between them):
    every client sees the same order, offsets 1..n, no gap, no duplicate; each sender's own
    offsets rise."""
    for client in clients:
        await client.join(room)
    each = KEPT // len(clients)
    total = each * len(clients)
    assert each >= 5
    refs = [await client.send("burst", room=room, count=each, text=client.id) for client in clients]
    offsets = [(await client.answer(ref))["offsets"] for client, ref in zip(clients, refs, strict=True)]
    for own in offsets:
        assert own == sorted(own), own
    assert sorted(itertools.chain(*offsets)) == list(range(1, total + 1))
    seen = []
    for client in clients:
        await client.until(lambda messages: len(messages) >= total)
        seen.append([(m["o"], m["text"]) for m in client.messages])
    assert [o for o, _ in seen[0]] == list(range(1, total + 1))
    for other in seen[1:]:
        assert other == seen[0]
    # The history keeps them in the same order.
    epoch, offset = await clients[0].position(room)
    assert offset == total
    missed = await clients[-1].ask("missed", room=room, since=0, epoch=epoch)
    assert [(m["o"], m["text"]) for m in missed["messages"]] == seen[0]
    # Each sender's in the order it sent them.
    for client, own in zip(clients, offsets, strict=True):
        mine = [(o, text) for o, text in seen[0] if text.startswith(client.id)]
        assert mine == [(o, f"{client.id} {n}") for n, o in enumerate(own)]
    # Nothing more comes: a last one arrives right after.
    assert await clients[0].say(room, "end") == total + 1
    for client in clients:
        assert await client.until_offset(total + 1) == list(range(1, total + 2))


async def recovery_elsewhere(away: Client, url: str, sender: Client, room: str) -> Client:
    """`away` (a member of `room`) leaves, misses 50, and comes back on another process than
    its own: it recovers exactly those, then the live ones."""
    await away.join(room)
    start = (await sender.position(room))[1]
    await sender.burst(room, 2)
    await away.until_offset(start + 2)
    epoch, last = await away.position(room)
    assert last == start + 2
    await away.close()
    assert await sender.burst(room, 50, "while away") == list(range(last + 1, last + 51))
    back = await on_other_process(url, away.pid)
    recovered = await back.ask("recover", room=room, since=last, epoch=epoch)
    assert recovered == {"count": 50, "rooms": [room]}
    assert await sender.say(room, "live") == last + 51
    assert await back.until_offset(last + 51) == list(range(last + 1, last + 52))
    assert [m["text"] for m in back.messages[:50]] == [f"while away {n}" for n in range(50)]
    return back


async def test_offsets_are_consecutive_across_workers(workers):
    group = await spread(workers.url("/h"), 2, at_least=4)
    await concurrent_bursts_agree(group, fresh_room())
    await close_all(group)


async def test_recovery_across_workers(workers):
    url = workers.url("/h")
    away = await Client.open(url)
    sender = await on_other_process(url, away.pid)
    back = await recovery_elsewhere(away, url, sender, fresh_room())
    amid = await recovery_amid_broadcasts(url, back, fresh_room())
    everyone = await endpoint_recovery_elsewhere(url, sender)
    await close_all([sender, back, amid, everyone])


async def test_given_up_offsets_gaps_and_ttl_across_workers(workers):
    await given_up_and_gaps(workers.url("/h"))
    await forgets_after_ttl(workers.url("/ttl"))


async def test_a_killed_worker_does_not_lose_the_history(workers):
    room = fresh_room()
    url = workers.url("/h")
    victim = await Client.open(url)
    other = await on_other_process(url, victim.pid)
    assert await victim.burst(room, 10) == list(range(1, 11))
    epoch, _ = await victim.position(room)
    restarted = workers.count(r"worker \d serves again")
    os.kill(victim.pid, signal.SIGKILL)
    await workers.until(rf"worker \d \(pid {victim.pid}\) exited")
    await workers.until(r"worker \d serves again", count=restarted + 1)
    assert await other.position(room) == (epoch, 10)
    missed = await other.ask("missed", room=room, since=0, epoch=epoch)
    assert [m["o"] for m in missed["messages"]] == list(range(1, 11))
    # Whichever worker a new client reaches, the restarted one included, carries on from there.
    group = await spread(url, 2, at_least=2)
    for client in group:
        assert (await client.ask("recover", room=room, since=0, epoch=epoch))["count"] == 10
    assert await group[0].say(room, "after") == 11
    for client in group:
        assert await client.until_offset(11) == list(range(1, 12))
    await close_all([other, *group])


# -- --broker: instances on one redis-server ---------------------------------------------


async def test_offsets_are_consecutive_across_instances(pair):
    group = [client for server in pair for client in await open_all(server.url("/h"), 2)]
    assert len({client.pid for client in group}) == 2
    await concurrent_bursts_agree(group, fresh_room())
    await close_all(group)


async def test_recovery_from_the_other_instance(pair):
    first, second = pair
    away = await Client.open(first.url("/h"))
    sender = await Client.open(first.url("/h"))
    back = await recovery_elsewhere(away, second.url("/h"), sender, fresh_room())
    assert back.pid != away.pid
    amid = await recovery_amid_broadcasts(second.url("/h"), sender, fresh_room())
    everyone = await endpoint_recovery_elsewhere(second.url("/h"), sender)
    await close_all([sender, back, amid, everyone])


async def test_given_up_offsets_and_gaps_across_instances(pair):
    await given_up_and_gaps(pair[0].url("/h"))


async def test_history_ttl_across_instances(pair):
    await forgets_after_ttl(pair[1].url("/ttl"))


async def test_a_stopped_instance_does_not_lose_the_history(pair, binary, io_threads, redis):
    room = fresh_room()
    third = started(binary, io_threads, "--broker", redis.url)
    try:
        sender = await Client.open(third.url("/h"))
        assert await sender.burst(room, 10) == list(range(1, 11))
        epoch, _ = await sender.position(room)
        await sender.close()
    finally:
        stopped(third)
    a = await Client.open(pair[0].url("/h"))
    assert await a.position(room) == (epoch, 10)
    missed = await a.ask("missed", room=room, since=0, epoch=epoch)
    assert [m["o"] for m in missed["messages"]] == list(range(1, 11))
    # A new instance carries on from it too.
    again = started(binary, io_threads, "--broker", redis.url)
    try:
        b = await Client.open(again.url("/h"))
        assert (await b.ask("recover", room=room, since=4, epoch=epoch))["count"] == 6
        assert await a.say(room, "after") == 11
        assert await b.until_offset(11) == list(range(5, 12))
        await b.close()
    finally:
        stopped(again)
    await a.close()


async def test_a_flushed_redis_is_a_new_epoch(pair, redis):
    room = fresh_room()
    a = await Client.open(pair[0].url("/h"))
    b = await Client.open(pair[1].url("/h"))
    await b.join(room)
    assert await a.burst(room, 5) == list(range(1, 6))
    epoch, _ = await a.position(room)
    await b.until_offset(5)
    with redis.client() as client:
        client.flushall()
    new_epoch, offset = await b.position(room)
    assert new_epoch != epoch and offset == 0
    for ask in ("missed", "recover"):
        gap = await b.ask(ask, room=room, since=5, epoch=epoch)
        assert (gap["gap"], gap["epoch"]) == ("epoch", new_epoch), gap
    # Broadcasts go on in the new epoch, from 1.
    assert await a.say(room, "new") == 1
    got = await b.until(lambda messages: len(messages) >= 6)
    assert [(m["o"], m["text"]) for m in got] == [*((o, f"burst {o - 1}") for o in range(1, 6)), (1, "new")]
    assert await a.position(room) == (new_epoch, 1)
    await close_all([a, b])
