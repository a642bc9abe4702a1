"""`app.worker` and `@app.startup_handler(once="host" | "cluster")`: a background task runs in
exactly one process of the host (`--processes 2`) or of the cluster (two instances on a real
redis-server), every client gets each of its ticks once, and when the process running it is
killed another one takes it over."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TIMEOUT, Server
from redis_server import Redis
from websockets.asyncio.client import ClientConnection, connect

APP = "once_app"
# A cluster lease lasts 6 s unrenewed (crates/server/src/cluster/lease.rs), then another
# process takes it within a second.
TAKEOVER = 15.0


class Listener:
    """A client of /ticks, keeping the ticks it receives."""

    def __init__(self, ws: ClientConnection, pid: int) -> None:
        self.ws = ws
        self.pid = pid
        self.ticks: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())
        self._changed = asyncio.Event()

    @classmethod
    async def open(cls, server: Server) -> Listener:
        ws = await connect(server.url("/ticks"), open_timeout=TIMEOUT, max_queue=None)
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        return cls(ws, hello["hello"])

    async def _read(self) -> None:
        async for message in self.ws:
            self.ticks.append(json.loads(message))
            self._changed.set()

    def of(self, scope: str) -> list[dict[str, Any]]:
        return [tick for tick in self.ticks if tick["scope"] == scope]

    async def until(self, check, timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not check(self):
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


async def spread_over(server: Server, processes: int, most: int = 60) -> list[Listener]:
    """Listeners until every one of `processes` processes serves at least one."""
    opened: list[Listener] = []
    while len({listener.pid for listener in opened}) < processes:
        assert len(opened) < most, "the kernel kept choosing the same process"
        opened.append(await Listener.open(server))
    return opened


def ran_once(listeners: list[Listener], scope: str) -> int:
    """Checks that every listener got the ticks of `scope` from one process, each once and in
    order; returns that process."""
    runners = {tick["pid"] for listener in listeners for tick in listener.of(scope)}
    assert len(runners) == 1, f"{scope} ticks came from {runners}"
    for listener in listeners:
        numbers = [tick["n"] for tick in listener.of(scope)]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    return runners.pop()


async def taken_over(listeners: list[Listener], scope: str, before: set[int]) -> int:
    """Waits until every listener gets ticks of `scope` from a process not in `before`; checks
    that one process took over, each listener getting its ticks once and in order, and nothing
    from the earlier runners after the first of them (a tick already on its way when a runner
    stopped may arrive just before). Returns the new runner."""

    def new(listener: Listener) -> list[dict[str, Any]]:
        return [tick for tick in listener.of(scope) if tick["pid"] not in before]

    for listener in listeners:
        await listener.until(lambda it: len(new(it)) >= 3, timeout=TAKEOVER)
    runners = {tick["pid"] for listener in listeners for tick in new(listener)}
    assert len(runners) == 1, f"{scope} was taken over by {runners}"
    for listener in listeners:
        ticks = listener.of(scope)
        first = next(at for at, tick in enumerate(ticks) if tick["pid"] not in before)
        assert all(tick["pid"] not in before for tick in ticks[first:]), "two runners at once"
        numbers = [tick["n"] for tick in ticks[first:]]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    return runners.pop()


def worker_of(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/worker", timeout=TIMEOUT) as response:
        return json.load(response)


async def test_a_server_alone_is_worker_0_of_1_and_runs_both(start_server):
    server = start_server(APP)
    place = worker_of(server)
    assert (place["index"], place["count"]) == (0, 1)
    assert len(place["node"]) == 8
    listener = await Listener.open(server)
    await listener.until(lambda it: len(it.of("host")) >= 3 and len(it.of("cluster")) >= 3)
    assert ran_once([listener], "host") == ran_once([listener], "cluster") == listener.pid
    await listener.close()


async def test_once_per_host_runs_in_one_worker_and_moves_when_it_is_killed(start_server):
    server = start_server(APP, "--processes", "2")
    places = {}
    while len(places) < 2:
        place = worker_of(server)
        places[place["pid"]] = place
    assert sorted(place["index"] for place in places.values()) == [0, 1]
    assert {place["count"] for place in places.values()} == {2}
    assert len({place["node"] for place in places.values()}) == 2

    listeners = await spread_over(server, 2)
    for listener in listeners:
        await listener.until(lambda it: len(it.of("host")) >= 5 and len(it.of("cluster")) >= 5)
    runner = ran_once(listeners, "host")
    # Without a broker the host is the cluster: its task runs once too.
    ran_once(listeners, "cluster")

    os.kill(runner, signal.SIGKILL)
    survivors = [listener for listener in listeners if listener.pid != runner]
    await taken_over(survivors, "host", {runner})
    await server.until(r"worker \d \(pid \d+\) exited")
    for listener in listeners:
        await listener.close()


@pytest.fixture
def redis() -> Iterator[Redis]:
    server = Redis().start()
    yield server
    server.close()


async def test_once_per_cluster_runs_in_one_instance_and_moves_when_it_is_killed(start_server, redis):
    instances = [start_server(APP, "--broker", redis.url, "--processes", "2") for _ in range(2)]
    by_instance = [await spread_over(instance, 2) for instance in instances]
    listeners = [listener for opened in by_instance for listener in opened]
    for listener in listeners:
        await listener.until(lambda it: len(it.of("cluster")) >= 5 and len(it.of("host")) >= 10)
    runner = ran_once(listeners, "cluster")
    # Each instance runs its own once-per-host task, in one of its workers; everyone hears both.
    host_runners = {tick["pid"] for listener in listeners for tick in listener.of("host")}
    assert len(host_runners) == 2
    for opened in by_instance:
        assert len(host_runners & {listener.pid for listener in opened}) == 1

    # Killed without a chance to hand over: another process takes the lease once it expires.
    os.kill(runner, signal.SIGKILL)
    survivors = [listener for listener in listeners if listener.pid != runner]
    successor = await taken_over(survivors, "cluster", {runner})

    # Stopped cleanly, the holder hands the lease over as it goes.
    holder = next(i for i, opened in enumerate(by_instance) if successor in {listener.pid for listener in opened})
    assert instances[holder].stop() == 0
    remaining = [listener for listener in by_instance[1 - holder] if listener.pid != runner]
    await taken_over(remaining, "cluster", {runner, successor})
    for listener in listeners:
        await listener.close()
