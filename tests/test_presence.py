"""Identity, send_to_user and presence (`websocket.identify`, `send_to_user`, `presence`,
`@handler.on_presence`, `--presence-grace`), in one process, across `--processes` and across
instances on a real redis-server (`--broker`). The app (tests/apps/presence_app.py) identifies
each client from `?user=` and answers JSON commands; its on_presence prints every change it is
called with, which the tests read from the servers' output."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from cluster import Client
from conftest import Server, run_to_exit, still_serves
from redis_server import Redis
from websockets.exceptions import InvalidStatus

APP = "presence_app"
TIMEOUT = 10.0
# The grace of the one-process tests: long enough for a client to reconnect well within it
# and for the tests to see a user listed with 0 during it.
GRACE = 1.0
# The grace of the tests with several processes or instances.
SHORT_GRACE = 0.5


class User(Client):
    """A client of the presence app: keeps binary messages apart, and asks one command at a
    time (`ask`), taking the reply it gets whatever it holds."""

    def __init__(self, ws: Any, hello: dict[str, Any]) -> None:
        self.user: str | None = hello["user"]
        self.binaries: list[bytes] = []
        super().__init__(ws, hello)

    def _take(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.binaries.append(message)
        else:
            super()._take(message)

    async def ask(self, **command: Any) -> dict[str, Any]:
        await self.command(**command)
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: bool(self.replies) or self._reader.done()), TIMEOUT)
            assert self.replies, f"the connection closed before answering {command}"
            return self.replies.pop(0)

    async def until_binaries(self, count: int) -> list[bytes]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.binaries) >= count), TIMEOUT)
            return list(self.binaries)


def address(server: Server, path: str = "/chat", user: str | None = None, **query: str) -> str:
    params = {"user": user, **query} if user is not None else query
    return server.url(path + ("?" + urllib.parse.urlencode(params) if params else ""))


async def connect(server: Server, user: str | None = None, path: str = "/chat", **query: str) -> User:
    client = await User.open(address(server, path, user, **query))
    assert client.user == user, f"hello says user {client.user!r}, not {user!r}"
    return client


async def spread(server: Server, processes: int, user: str | None = None, most: int = 200) -> list[User]:
    """One connection (as `user`) on each of the server's `processes` processes: connections
    are opened until every process serves one (the kernel picks), the extras closed."""
    kept: dict[int, User] = {}
    extras: list[User] = []
    while len(kept) < processes:
        assert len(kept) + len(extras) < most, f"{most} connections reached only {len(kept)} processes"
        client = await connect(server, user)
        if client.pid in kept:
            extras.append(client)
        else:
            kept[client.pid] = client
    for client in extras:
        await client.close()
    return list(kept.values())


async def send_to_user(client: User, user: Any, text: str, via: str = "websocket", binary: bool = False) -> int:
    reply = await client.ask(op="send_to_user", user=user, text=text, via=via, binary=binary)
    assert "sent" in reply, reply
    assert type(reply["sent"]) is int, reply
    return reply["sent"]


async def presence(client: User, path: str | None = None, room: str | None = None) -> dict[str, int]:
    """`app.presence(path, room)` with a path, else `websocket.presence(room)`."""
    command: dict[str, Any] = {"op": "presence"}
    if path is not None:
        command["path"] = path
    if room is not None:
        command["room"] = room
    reply = await client.ask(**command)
    assert "presence" in reply, reply
    assert reply["types"] in ([], ["int"]), f"presence() counts are {reply['types']}, not int"
    return reply["presence"]


async def until_presence(
    client: User,
    expected: dict[str, int],
    path: str | None = None,
    room: str | None = None,
    timeout: float = TIMEOUT,
) -> float:
    """Asks until presence() is `expected`; returns how long that took."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while (found := await presence(client, path, room)) != expected:
        assert loop.time() - began < timeout, f"presence({path}, {room}) is {found}, not {expected}, after {timeout} s"
        await asyncio.sleep(0.02)
    return loop.time() - began


async def identify(client: User, user: Any) -> dict[str, Any]:
    return await client.ask(op="identify", user=user)


# What on_presence was called with, one line per call: `PRESENCE <pid> <path> <json>`.
CALL = re.compile(r"PRESENCE (\d+) (/\S*) (\{.*\})\s*$")


@dataclass(frozen=True)
class Event:
    pid: int
    path: str
    room: str | None
    kind: str  # "joined" or "left"
    user: str


def calls(servers: Sequence[Server]) -> list[tuple[int, str, dict[str, Any]]]:
    found = []
    for server in servers:
        for match in filter(None, map(CALL.search, server.output.splitlines())):
            change = json.loads(match.group(3))
            assert change["ok"], f"on_presence got a malformed change: {match.group(0)}"
            assert change["joined"] or change["left"], f"on_presence was called with no change: {match.group(0)}"
            found.append((int(match.group(1)), match.group(2), change))
    return found


def events(servers: Sequence[Server]) -> list[Event]:
    return [
        Event(pid, path, change["room"], kind, user)
        for pid, path, change in calls(servers)
        for kind in ("joined", "left")
        for user in change[kind]
    ]


def history(servers: Sequence[Server], user: str, path: str = "/chat", room: str | None = None) -> list[str]:
    """The joins and leaves on_presence reported for `user` in one scope, in order."""
    return [e.kind for e in events(servers) if e.user == user and e.path == path and e.room == room]


async def until_history(
    servers: Sequence[Server],
    user: str,
    expected: list[str],
    path: str = "/chat",
    room: str | None = None,
    timeout: float = TIMEOUT,
) -> float:
    """Waits until on_presence has reported as many changes for `user` as `expected` has, and
    checks they are those; returns how long it waited."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while len(found := history(servers, user, path, room)) < len(expected):
        assert loop.time() - began < timeout, (
            f"on_presence reported {found} for {user} in {path} {room}, not {expected}, within {timeout} s"
        )
        await asyncio.sleep(0.02)
    assert found == expected, (
        f"on_presence reported {found} for {user} in {path} {room}, not {expected}; every call: {calls(servers)}"
    )
    return loop.time() - began


_fences = itertools.count()


async def fence(server: Server, servers: Sequence[Server], leave: bool = True) -> None:
    """A user of its own comes to /other (so /chat's presence is left alone) and goes: once
    on_presence has reported the join (with `leave`, the leave after the grace), what was due
    before it (a leave of a user who left earlier, say) has been reported too."""
    name = f"fence{next(_fences)}"
    client = await connect(server, name, path="/other")
    await until_history(servers, name, ["joined"], path="/other")
    await client.close()
    if leave:
        await until_history(servers, name, ["joined", "left"], path="/other")


def one_caller(servers: Sequence[Server]) -> int:
    """on_presence runs in one process of the cluster: the pid of every call."""
    pids = {pid for pid, _, _ in calls(servers)}
    assert len(pids) == 1, f"on_presence ran in processes {pids}, not in one"
    return pids.pop()


async def closed_all(clients: Sequence[User]) -> None:
    for client in clients:
        await client.close()


@pytest.fixture
def start(start_server) -> Iterator[Any]:
    """start_server, whose servers are also stopped by a signal to the supervisor at the end
    (a test that failed half-way included): a supervisor killed outright leaves its workers
    running."""
    started: list[Server] = []

    def run(*args: Any, **kwargs: Any) -> Server:
        server = start_server(*args, **kwargs, ready=False)
        started.append(server)
        return server.started()

    yield run
    for server in started:
        try:
            server.stop(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


# One process ------------------------------------------------------------------------------


@pytest.fixture
def one(start) -> Iterator[Server]:
    server = start(APP, "--presence-grace", str(GRACE))
    yield server
    assert server.stop() == 0, server.output


async def test_send_to_user_reaches_every_connection_of_the_user_once(one):
    ann = [await connect(one, "ann"), await connect(one, "ann"), await connect(one, "ann", path="/other")]
    bob = await connect(one, "bob")
    anonymous = await connect(one)

    # On any endpoint, each connection once; from the websocket and from the app; str as text,
    # bytes as binary.
    assert await send_to_user(bob, "ann", "hi ann") == 3
    assert await send_to_user(anonymous, "ann", "binary", via="app", binary=True) == 3
    for client in ann:
        assert await client.until(lambda texts: bool(texts)) == ["hi ann"]
        assert await client.until_binaries(1) == [b"binary"]
    assert await send_to_user(ann[0], "bob", "for bob", via="app") == 1
    assert await bob.until(lambda texts: bool(texts)) == ["for bob"]
    assert await send_to_user(bob, "nobody", "lost") == 0
    assert await send_to_user(bob, "Ann", "case matters") == 0

    # A connection identified in its handler is reached from then on (and was not before:
    # nothing else came to it).
    assert await identify(anonymous, "late") == {"user": "late"}
    assert await send_to_user(bob, "late", "for late") == 1
    assert await anonymous.until(lambda texts: bool(texts)) == ["for late"]
    assert anonymous.binaries == []

    # A closed connection is no longer counted (nor sent to).
    await ann[0].close()
    await until_presence(bob, {"ann": 1, "bob": 1, "late": 1})
    assert await send_to_user(bob, "ann", "two left") == 2
    for client in ann[1:]:
        assert await client.until(lambda texts: len(texts) >= 2) == ["hi ann", "two left"]
    await ann[1].close()
    await ann[2].close()
    # Listed with 0 during the grace, but no connection of hers is open.
    await until_presence(bob, {"ann": 0, "bob": 1, "late": 1})
    assert await send_to_user(bob, "ann", "nobody left") == 0
    await until_presence(bob, {"bob": 1, "late": 1}, timeout=GRACE + TIMEOUT)
    await until_presence(bob, {}, path="/other")
    assert ann[0].texts == ["hi ann"]
    await closed_all([bob, anonymous])


async def test_presence_counts_the_users_of_an_endpoint_and_of_its_rooms(one):
    a1, a2, bob = await connect(one, "ann"), await connect(one, "ann"), await connect(one, "bob")
    elsewhere = await connect(one, "ann", path="/other")
    anonymous = await connect(one)

    # Anonymous connections are not listed; each endpoint counts its own.
    for asker in (a1, bob, anonymous):
        assert await presence(asker) == {"ann": 2, "bob": 1}
        assert await presence(asker, path="/chat") == {"ann": 2, "bob": 1}
        assert await presence(asker, path="/other") == {"ann": 1}
    assert await presence(elsewhere) == {"ann": 1}
    assert await presence(elsewhere, path="/chat") == {"ann": 2, "bob": 1}
    assert await presence(anonymous, path="/echo") == {}

    # Rooms.
    for client, room in ((a1, "blue"), (bob, "blue"), (a2, "red"), (a1, "red")):
        assert await client.ask(op="join", room=room) == {"joined": room}
    assert await presence(a2, room="blue") == {"ann": 1, "bob": 1}
    assert await presence(anonymous, path="/chat", room="blue") == {"ann": 1, "bob": 1}
    assert await presence(bob, room="red") == {"ann": 2}
    assert await presence(bob, room="green") == {}
    assert await presence(elsewhere, room="blue") == {}, "a room of /chat is not one of /other"

    # A user who left is listed with 0 during the grace, then not at all.
    assert await bob.ask(op="leave", room="blue") == {"left": "blue"}
    assert await presence(bob, room="blue") == {"ann": 1, "bob": 0}
    await until_presence(bob, {"ann": 1}, room="blue", timeout=GRACE + TIMEOUT)
    assert await a1.ask(op="leave", room="red") == {"left": "red"}
    assert await presence(bob, room="red") == {"ann": 1}

    # Closing: the connection leaves the endpoint and its rooms.
    await a2.close()
    await until_presence(bob, {"ann": 1, "bob": 1})
    assert await presence(bob, room="red") == {"ann": 0}
    await bob.close()
    seen_zero = await until_presence(a1, {"ann": 1, "bob": 0})
    assert seen_zero < GRACE
    waited = await until_presence(a1, {"ann": 1}, timeout=GRACE + TIMEOUT)
    assert waited > GRACE / 2, f"bob was listed with 0 for {waited:.2f} s after that was seen, not the grace"
    assert await presence(a1, room="red") == {}
    assert await presence(a1, room="blue") == {"ann": 1}
    await closed_all([a1, elsewhere, anonymous])


async def test_on_presence_reports_joins_and_leaves_after_the_grace(one):
    servers = [one]
    a1 = await connect(one, "ann")
    await until_history(servers, "ann", ["joined"])
    a2 = await connect(one, "ann")
    assert await a1.ask(op="join", room="blue") == {"joined": "blue"}
    await until_history(servers, "ann", ["joined"], room="blue")
    assert await a2.ask(op="join", room="blue") == {"joined": "blue"}
    assert await a1.ask(op="leave", room="blue") == {"left": "blue"}
    await a1.close()
    await fence(one, servers)
    assert history(servers, "ann") == ["joined"], "a second connection is no second join, one closing no leave"
    assert history(servers, "ann", room="blue") == ["joined"]

    # The last connection closes: one leave, of the endpoint and of its room, once the grace is over.
    closed = time.monotonic()
    await a2.close()
    await until_history(servers, "ann", ["joined", "left"], timeout=GRACE + TIMEOUT)
    waited = time.monotonic() - closed
    assert waited >= GRACE * 0.9, f"the leave came {waited:.2f} s after the close, within the grace ({GRACE} s)"
    await until_history(servers, "ann", ["joined", "left"], room="blue")
    assert history(servers, "ann", path="/other") == []

    # A reconnect within the grace is neither a leave nor a join.
    bob = await connect(one, "bob")
    await until_history(servers, "bob", ["joined"])
    carol = await connect(one, "carol")
    await until_history(servers, "carol", ["joined"])
    await bob.close()
    bob = await connect(one, "bob")
    # Carol leaves after bob closed: once her leave is reported, a leave of bob would have been.
    await carol.close()
    await until_history(servers, "carol", ["joined", "left"], timeout=GRACE + TIMEOUT)
    assert history(servers, "bob") == ["joined"]
    assert await presence(bob) == {"bob": 1}

    # Each endpoint's handler hears about its own endpoint: sync on /other, async on /chat.
    other = await connect(one, "dan", path="/other")
    await until_history(servers, "dan", ["joined"], path="/other")
    await other.close()
    await until_history(servers, "dan", ["joined", "left"], path="/other", timeout=GRACE + TIMEOUT)
    assert history(servers, "dan") == []
    one_caller(servers)
    await bob.close()


async def test_identify_again_moves_the_connection_to_the_other_user(one):
    servers = [one]
    client = await connect(one, "ann")
    observer = await connect(one)
    assert await client.ask(op="join", room="blue") == {"joined": "blue"}
    await until_history(servers, "ann", ["joined"], room="blue")

    assert await identify(client, "bob") == {"user": "bob"}
    assert await client.ask(op="whoami") == {"user": "bob"}
    assert await send_to_user(observer, "ann", "for ann") == 0
    assert await send_to_user(observer, "bob", "for bob") == 1
    assert await client.until(lambda texts: bool(texts)) == ["for bob"]
    assert await presence(observer) == {"bob": 1, "ann": 0}
    assert await presence(observer, room="blue") == {"bob": 1, "ann": 0}
    await until_history(servers, "bob", ["joined"])
    await until_history(servers, "bob", ["joined"], room="blue")
    await until_history(servers, "ann", ["joined", "left"], timeout=GRACE + TIMEOUT)
    await until_history(servers, "ann", ["joined", "left"], room="blue")
    await until_presence(observer, {"bob": 1}, timeout=1)

    # The same user again changes nothing; and back again is a join of ann (after her leave).
    assert await identify(client, "bob") == {"user": "bob"}
    await fence(one, servers, leave=False)
    assert history(servers, "bob") == ["joined"]
    assert await identify(client, "ann") == {"user": "ann"}
    await until_history(servers, "ann", ["joined", "left", "joined"])
    await until_history(servers, "bob", ["joined", "left"], timeout=GRACE + TIMEOUT)
    await until_presence(observer, {"ann": 1}, timeout=1)
    await until_presence(observer, {"ann": 1}, room="blue", timeout=1)
    await closed_all([client, observer])


async def test_identify_refuses_what_is_not_a_user_and_the_server_serves_on(one):
    servers = [one]
    client = await connect(one, "ann")
    for bad, error in (
        ("", "ValueError"),
        ("x" * 257, "ValueError"),
        ("é" * 129, "ValueError"),
        (123, "TypeError"),
        (None, "TypeError"),
        (["ann"], "TypeError"),
    ):
        reply = await identify(client, bad)
        assert reply.get("error") == error, f"identify({bad!r}) answered {reply}"
        assert await client.ask(op="whoami") == {"user": "ann"}, f"identify({bad!r}) changed the user"
    # 256 UTF-8 bytes is a user.
    longest = "é" * 128
    assert await identify(client, longest) == {"user": longest}
    assert await send_to_user(client, longest, "to the longest") == 1
    assert await client.until(lambda texts: bool(texts)) == ["to the longest"]
    assert await identify(client, "ann") == {"user": "ann"}

    # A handshake refused after identifying never counts.
    with pytest.raises(InvalidStatus) as refused:
        await connect(one, "zed", refuse="1")
    assert refused.value.response.status_code == 403
    await fence(one, servers, leave=False)
    assert history(servers, "zed") == []
    assert await send_to_user(client, "zed", "nobody") == 0
    await until_presence(client, {"ann": 1}, timeout=GRACE + TIMEOUT)

    # The others are served all along.
    bob = await connect(one, "bob")
    assert await send_to_user(bob, "ann", "still here") == 1
    assert await client.until(lambda texts: texts[-1:] == ["still here"])
    await still_serves(one)
    await closed_all([client, bob])


async def test_the_grace_comes_from_the_environment_and_zero_is_at_once(start, binary):
    assert "--presence-grace" in run_to_exit(binary, "--help").stdout
    # The default grace is 5 s: a leave within 2 s is the environment's 0.
    server = start(APP, env={"ROBYN_PRESENCE_GRACE": "0"})
    ann, bob = await connect(server, "ann"), await connect(server, "bob")
    await until_history([server], "ann", ["joined"])
    closed = time.monotonic()
    await ann.close()
    await until_history([server], "ann", ["joined", "left"], timeout=2)
    assert time.monotonic() - closed < 2
    assert await presence(bob) == {"bob": 1}
    await bob.close()
    assert server.stop() == 0, server.output


# Several processes ------------------------------------------------------------------------


async def test_send_to_user_and_presence_span_processes(start):
    server = start(APP, "--processes", "2", "--presence-grace", str(SHORT_GRACE))
    servers = [server]
    ann = await spread(server, 2, "ann")
    bob = await spread(server, 2, "bob")
    askers = {client.pid: client for client in bob}
    assert len(askers) == 2

    # Every process sees everyone (within milliseconds).
    for asker in bob:
        await until_presence(asker, {"ann": 2, "bob": 2}, timeout=2)
    await until_history(servers, "ann", ["joined"])
    await until_history(servers, "bob", ["joined"])

    # send_to_user from either process: each connection once, counted.
    for number, asker in enumerate(bob):
        assert await send_to_user(asker, "ann", f"to ann {number}") == 2
    for client in ann:
        # Two senders in two processes: each message once, in no particular order.
        assert sorted(await client.until(lambda texts: len(texts) >= 2)) == ["to ann 0", "to ann 1"]
    assert await send_to_user(ann[0], "bob", "to bob", via="app") == 2
    for client in bob:
        assert await client.until(lambda texts: bool(texts)) == ["to bob"]

    # A room spans the processes.
    for client in ann:
        assert await client.ask(op="join", room="blue") == {"joined": "blue"}
    assert await bob[0].ask(op="join", room="blue") == {"joined": "blue"}
    for asker in bob:
        await until_presence(asker, {"ann": 2, "bob": 1}, room="blue", timeout=2)
    await until_history(servers, "ann", ["joined"], room="blue")

    # One ann goes: still present (the other process holds the other); both go: one leave.
    await ann[0].close()
    for asker in bob:
        await until_presence(asker, {"ann": 1, "bob": 2}, timeout=2)
    assert await send_to_user(bob[0], "ann", "one left") == 1
    assert (await ann[1].until(lambda texts: len(texts) >= 3))[2:] == ["one left"]
    await ann[1].close()
    await until_history(servers, "ann", ["joined", "left"])
    await until_history(servers, "ann", ["joined", "left"], room="blue")
    for asker in bob:
        await until_presence(asker, {"bob": 2}, timeout=2)
        assert await send_to_user(asker, "ann", "gone") == 0

    # once per change, whichever process it happened in, and in one process only.
    await fence(server, servers)
    assert history(servers, "bob") == ["joined"]
    assert history(servers, "ann") == ["joined", "left"]
    assert one_caller(servers) in askers
    await closed_all(bob)
    assert server.stop() == 0, server.output


async def test_a_user_on_three_processes_gets_each_message_once_per_connection(start):
    server = start(APP, "--processes", "3", "--presence-grace", str(SHORT_GRACE))
    ann = await spread(server, 3, "ann")
    sender = await connect(server, "bob")
    await until_presence(sender, {"ann": 3, "bob": 1}, timeout=2)
    for number in range(3):
        assert await send_to_user(sender, "ann", f"m{number}", via="app" if number % 2 else "websocket") == 3
    for client in ann:
        assert await client.until(lambda texts: len(texts) >= 3) == ["m0", "m1", "m2"]
    # And as binary.
    assert await send_to_user(sender, "ann", "bytes", binary=True) == 3
    for client in ann:
        assert await client.until_binaries(1) == [b"bytes"]
    await fence(server, [server], leave=False)
    assert history([server], "ann") == ["joined"]
    for client in ann:
        assert client.texts == ["m0", "m1", "m2"]
    await closed_all([*ann, sender])
    assert server.stop() == 0, server.output


async def test_the_users_of_a_killed_worker_leave_after_the_grace(start):
    server = start(APP, "--processes", "2", "--presence-grace", str(SHORT_GRACE))
    servers = [server]
    # Two anonymous connections on the two processes become ann and bob.
    ann, bob = await spread(server, 2)
    assert await identify(ann, "ann") == {"user": "ann"}
    assert await identify(bob, "bob") == {"user": "bob"}
    assert await ann.ask(op="join", room="blue") == {"joined": "blue"}
    await until_history(servers, "ann", ["joined"])
    await until_history(servers, "ann", ["joined"], room="blue")
    await until_history(servers, "bob", ["joined"])
    await until_presence(bob, {"ann": 1, "bob": 1}, timeout=2)

    killed = time.monotonic()
    os.kill(ann.pid, signal.SIGKILL)
    await ann.until_closed()
    await until_history(servers, "ann", ["joined", "left"], timeout=SHORT_GRACE + TIMEOUT)
    took = time.monotonic() - killed
    assert took < SHORT_GRACE + 3, f"ann left {took:.2f} s after her worker was killed"
    await until_history(servers, "ann", ["joined", "left"], room="blue")
    await until_presence(bob, {"bob": 1}, timeout=2)
    await until_presence(bob, {}, room="blue", timeout=2)
    assert await send_to_user(bob, "ann", "gone") == 0

    # The restarted worker counts again; nobody left twice, bob never.
    await server.until(r"worker \d serves again")
    back = await spread(server, 2, "ann")
    await until_history(servers, "ann", ["joined", "left", "joined"])
    await until_presence(bob, {"ann": 2, "bob": 1}, timeout=2)
    assert await send_to_user(bob, "ann", "welcome back") == 2
    for client in back:
        assert await client.until(lambda texts: bool(texts)) == ["welcome back"]
    await fence(server, servers)
    assert history(servers, "ann") == ["joined", "left", "joined"]
    assert history(servers, "bob") == ["joined"]
    await closed_all([*back, bob])
    assert server.stop() == 0, server.output


async def test_a_join_right_after_the_start_is_announced(start):
    # Whoever connects the moment the server is up (clients reconnecting after a deploy, say)
    # is announced like anyone else: once, not never.
    server = start(APP, "--processes", "2", "--presence-grace", str(SHORT_GRACE))
    ann = await connect(server, "ann")
    await until_history([server], "ann", ["joined"])
    await ann.close()
    await until_history([server], "ann", ["joined", "left"])
    assert server.stop() == 0, server.output


# Several instances on Redis ---------------------------------------------------------------


@pytest.fixture
def redis() -> Iterator[Redis]:
    server = Redis().start()
    yield server
    server.close()


def instance(start, redis: Redis, *flags: str) -> Server:
    return start(APP, "--broker", redis.url, "--presence-grace", str(SHORT_GRACE), *flags)


async def reachable(sender: User, user: str, count: int, timeout: float = TIMEOUT) -> None:
    """Sends to `user` (a probe, whose messages nobody reads) until all `count` of its
    connections are reached: the instances, just started, have heard each other."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (sent := await send_to_user(sender, user, "ping")) != count:
        assert loop.time() < deadline, f"send_to_user({user!r}) reached {sent}, not {count}, for {timeout} s"
        await asyncio.sleep(0.05)


async def test_send_to_user_agrees_with_presence_across_instances(start, redis):
    # Once presence() lists a user's connection on another instance, send_to_user reaches it.
    first, second = instance(start, redis), instance(start, redis)
    bob = await connect(first, "bob")
    ann = await connect(second, "ann")
    await until_presence(bob, {"ann": 1, "bob": 1})
    sent = await send_to_user(bob, "ann", "as soon as she is listed")
    assert sent == 1, f"presence() lists ann, but send_to_user found {sent} connections of hers"
    assert await ann.until(lambda texts: bool(texts)) == ["as soon as she is listed"]
    await closed_all([ann, bob])


async def test_send_to_user_and_presence_span_instances(start, redis):
    first = instance(start, redis)
    second = instance(start, redis, "--processes", "2")
    servers = [first, second]
    ann = [await connect(first, "ann"), *await spread(second, 2, "ann")]
    bob = await connect(first, "bob")
    carol = await connect(second, "carol")
    probes = [await connect(first, "probe"), *await spread(second, 2, "probe")]
    everyone = {"ann": 3, "bob": 1, "carol": 1, "probe": 3}
    for asker in (bob, carol, ann[1], ann[2]):
        await until_presence(asker, everyone)
    for user in everyone:
        await until_history(servers, user, ["joined"])
    for sender in (bob, carol, ann[1]):
        await reachable(sender, "probe", 3)

    assert await send_to_user(bob, "ann", "from first") == 3
    assert await send_to_user(carol, "ann", "from second", via="app") == 3
    for client in ann:
        assert sorted(await client.until(lambda texts: len(texts) >= 2)) == ["from first", "from second"]
    assert await send_to_user(ann[1], "bob", "to bob") == 1
    assert await bob.until(lambda texts: bool(texts)) == ["to bob"]

    # Rooms span the instances.
    assert await bob.ask(op="join", room="blue") == {"joined": "blue"}
    assert await carol.ask(op="join", room="blue") == {"joined": "blue"}
    for asker in (bob, carol):
        await until_presence(asker, {"bob": 1, "carol": 1}, room="blue")
    await until_history(servers, "carol", ["joined"], room="blue")

    # ann leaves once, when her last connection anywhere closes.
    await ann[0].close()
    await ann[1].close()
    await until_presence(bob, {"ann": 1, "bob": 1, "carol": 1, "probe": 3})
    assert await send_to_user(bob, "ann", "last one") == 1
    await ann[2].close()
    await until_history(servers, "ann", ["joined", "left"])
    for asker in (bob, carol):
        await until_presence(asker, {"bob": 1, "carol": 1, "probe": 3})
    assert await send_to_user(carol, "ann", "gone") == 0

    await closed_all(probes)
    await fence(first, servers)
    for user in ("bob", "carol"):
        assert history(servers, user) == ["joined"]
    assert history(servers, "ann") == ["joined", "left"]
    one_caller(servers)
    await closed_all([bob, carol])
    for server in servers:
        assert server.stop() == 0, server.output


async def test_the_users_of_a_killed_instance_leave_within_seconds(start, redis):
    # The instance killed is the older one, which (being the oldest) ran on_presence.
    older = instance(start, redis)
    younger = instance(start, redis)
    servers = [older, younger]
    bob = await connect(older, "bob")
    ann = await connect(younger, "ann")
    await until_presence(ann, {"ann": 1, "bob": 1})
    await until_presence(bob, {"ann": 1, "bob": 1})
    assert await bob.ask(op="join", room="blue") == {"joined": "blue"}
    await until_history(servers, "bob", ["joined"])
    await until_history(servers, "ann", ["joined"])
    await until_history(servers, "bob", ["joined"], room="blue")

    killed = time.monotonic()
    older.kill()
    await until_presence(ann, {"ann": 1}, timeout=15)
    took = time.monotonic() - killed
    assert took < 15
    await until_history(servers, "bob", ["joined", "left"], timeout=15)
    await until_history(servers, "bob", ["joined", "left"], room="blue")
    assert await send_to_user(ann, "bob", "gone") == 0
    await until_presence(ann, {}, path="/chat", room="blue", timeout=1)

    # The survivor carries on, on_presence with it.
    carol = await connect(younger, "carol")
    await until_history(servers, "carol", ["joined"])
    assert await send_to_user(carol, "ann", "still here") == 1
    assert await ann.until(lambda texts: bool(texts)) == ["still here"]
    assert history(servers, "ann") == ["joined"]
    await closed_all([ann, carol])


async def test_presence_stays_right_through_a_redis_restart(start, redis):
    first, second = instance(start, redis), instance(start, redis)
    servers = [first, second]
    ann = await connect(first, "ann")
    bob = await connect(second, "bob")
    assert await bob.ask(op="join", room="blue") == {"joined": "blue"}
    for asker in (ann, bob):
        await until_presence(asker, {"ann": 1, "bob": 1})
    await until_history(servers, "ann", ["joined"])
    await until_history(servers, "bob", ["joined"])

    redis.stop()
    for server in servers:
        await server.until("lost the broker subscription")
    redis.start()
    restarted = time.monotonic()
    for server in servers:
        await server.until(r"subscribed to the broker again after [\d.]+ s", timeout=15)

    # Someone comes the moment the instances are back (her join is checked at the end).
    carol = await connect(second, "carol")

    # What each instance knew is still known, everywhere, and send_to_user agrees.
    for asker in (ann, bob):
        await until_presence(asker, {"ann": 1, "bob": 1, "carol": 1})
        await until_presence(asker, {"bob": 1}, path="/chat", room="blue")
    # (Whether send_to_user agrees with presence() at once is checked at the end.)
    first_sent = await send_to_user(ann, "bob", "after the restart")
    probes = [await connect(first, "probe"), await connect(second, "probe")]
    await until_presence(ann, {"ann": 1, "bob": 1, "carol": 1, "probe": 2})
    await until_presence(bob, {"ann": 1, "bob": 1, "carol": 1, "probe": 2})
    for sender in (ann, bob):
        await reachable(sender, "probe", 2)
    await closed_all(probes)
    assert await send_to_user(ann, "bob", "after the restart, again") == 1
    assert await bob.until(lambda texts: texts[-1:] == ["after the restart, again"])

    # Changes after the restart go round.
    assert await send_to_user(ann, "carol", "to carol") == 1
    assert await carol.until(lambda texts: bool(texts)) == ["to carol"]
    await ann.close()
    await until_presence(bob, {"bob": 1, "carol": 1})
    await until_history(servers, "ann", ["joined", "left"])
    assert await send_to_user(carol, "ann", "gone") == 0

    # The restart itself was no leave and no join: nobody was away. Redis came back empty: a
    # node whose heartbeat it lost would be taken for dead once the heartbeat's 6 s were over
    # and the next check (every 2 s) came, so that absence is waited for past that.
    await asyncio.sleep(max(0.0, 9 - (time.monotonic() - restarted)))
    for asker in (bob, carol):
        assert await presence(asker) == {"bob": 1, "carol": 1}
    await fence(first, servers)
    assert history(servers, "bob") == ["joined"]
    assert history(servers, "bob", room="blue") == ["joined"]
    assert history(servers, "ann") == ["joined", "left"]
    wrong = []
    if history(servers, "carol") != ["joined"]:
        wrong.append(f"carol came right after the restart: on_presence heard {history(servers, 'carol')}")
    if first_sent != 1:
        wrong.append(f"right after the restart presence() listed bob, but send_to_user found {first_sent}")
    assert not wrong, "; ".join(wrong)
    await closed_all([bob, carol])
    for server in servers:
        assert server.stop() == 0, server.output
