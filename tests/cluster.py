"""Clients of the `cluster` test app, for the tests that run it as several processes or
several instances: each knows its id and the process serving it, and keeps everything it
receives so a test can wait for what it expects and then check that nothing came twice."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10.0


class Client:
    def __init__(self, ws: ClientConnection, hello: dict[str, Any]) -> None:
        self.ws = ws
        self.id: str = hello["id"]
        self.pid: int = hello["pid"]
        self.texts: list[str] = []
        self.replies: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Client:
        ws = await connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_queue=None)
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        return cls(ws, hello)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                async with self._changed:
                    self._take(message)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        async with self._changed:
            self._changed.notify_all()

    def _take(self, message: str | bytes) -> None:
        """Keeps a message: a JSON object as a reply, any other text as a text."""
        assert isinstance(message, str)
        if message.startswith("{"):
            self.replies.append(json.loads(message))
        else:
            self.texts.append(message)

    async def command(self, **command: Any) -> None:
        await self.ws.send(json.dumps(command))

    async def reply(self, key: str) -> Any:
        """The value of the next reply that has `key` (taken, so the next call waits for a new one)."""

        def found() -> dict[str, Any] | None:
            return next((reply for reply in self.replies if key in reply), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None or self._reader.done()), TIMEOUT)
            reply = found()
            assert reply is not None, f"the connection closed before a reply with {key!r}"
            self.replies.remove(reply)
            return reply[key]

    async def until(self, have: Callable[[list[str]], bool], timeout: float = TIMEOUT) -> list[str]:
        """Waits until the texts received so far satisfy `have`."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: have(self.texts)), timeout)
            return list(self.texts)

    async def until_closed(self) -> None:
        await asyncio.wait_for(asyncio.shield(self._reader), TIMEOUT)

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def clients(urls: Iterable[str]) -> list[Client]:
    return list(await asyncio.gather(*(Client.open(url) for url in urls)))


async def spread_over(url: str, processes: int, at_least: int, most: int = 200) -> list[Client]:
    """Opens clients on one address until they are served by `processes` different processes
    (the kernel picks one per connection) and there are at least `at_least` of them."""
    opened: list[Client] = []
    while len(opened) < at_least or len({client.pid for client in opened}) < processes:
        assert len(opened) < most, f"{most} clients reached only {len({c.pid for c in opened})} processes"
        opened.append(await Client.open(url))
    return opened


def scrape(url: str) -> dict[str, float]:
    """`/metrics`, parsed as Prometheus parses OpenMetrics text, as {'name{label="v"}': value}."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


async def until_metric(url: str, name: str, value: float, timeout: float = TIMEOUT) -> dict[str, float]:
    """Scrapes until `name` has `value`: the processes' sums are refreshed every second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        values = await asyncio.to_thread(scrape, url)
        if values.get(name) == value:
            return values
        assert loop.time() < deadline, f"{name} is {values.get(name)}, not {value}, after {timeout}s: {values}"
        await asyncio.sleep(0.2)
