"""Churn and scale: tens of thousands of connections come and go (clean closes and abrupt
resets, across endpoints, while broadcasts run) and nothing stays behind; ten thousand stay
open at once and every one answers. The figures land in out/soak/summary.md."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator

import pytest
from conftest import ROOT, stats, until_stats
from wire import BINARY, CLOSE, TEXT, RawClient, close_payload

APP = "limits"
SUMMARY = ROOT / "out" / "soak" / "summary.md"
CYCLES = 20_000
HELD = 10_000

pytestmark = pytest.mark.soak


def batched(items: Iterable, size: int) -> Iterator[list]:
    """`itertools.batched` (Python 3.12+), for 3.11."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def record(line: str) -> None:
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    with SUMMARY.open("a") as summary:
        summary.write(line + "\n")


async def one_cycle(port: int, n: int) -> None:
    """Connects, maybe talks, then leaves one of four ways."""
    path = ("/echo", "/broadcast", "/watch")[n % 3]
    client = await RawClient.connect(port, path)
    if n % 4 == 0:  # a message first, and its answer, through the Python side
        await client.send(TEXT if path != "/broadcast" else BINARY, f"cycle {n}".encode())
        await client.frame_of(TEXT, BINARY)
    if n % 2 == 0:  # a clean close handshake
        await client.send(CLOSE, close_payload(1000))
        assert await client.closed_by_server() == 1000
    elif n % 4 == 1:  # a TCP reset, no Close frame
        client.reset()
    else:  # a FIN without a Close frame
        client.close()


async def churn(port: int, cycles: int, start: int = 0, concurrency: int = 48) -> None:
    numbers = iter(range(start, start + cycles))

    async def worker() -> None:
        for n in numbers:
            await one_cycle(port, n)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def test_churn_leaves_nothing_behind(start_server):
    server = start_server(APP, "--stats-path", "/__stats", "--ping-interval", "0")
    port = server.port
    SUMMARY.unlink(missing_ok=True)
    # Broadcasts run all along: one talker, two listeners that read everything.
    listeners = [await RawClient.connect(port, "/broadcast") for _ in range(2)]
    talker = await RawClient.connect(port, "/broadcast")
    stop = asyncio.Event()

    async def talk() -> int:
        sent = 0
        while not stop.is_set():
            await talker.send(TEXT, b"news %d" % sent)
            sent += 1
            await talker.frame_of(TEXT)  # its own copy: pace to the server
        # Each client gets one sender's messages in order: the marker comes after all news.
        await talker.send(TEXT, b"end")
        return sent

    async def listen(client: RawClient) -> int:
        heard = 0
        while (await client.frame_of(TEXT, timeout=60)).payload != b"end":
            heard += 1
        return heard

    talking = asyncio.create_task(talk())
    listening = [asyncio.create_task(listen(client)) for client in listeners]

    await churn(port, 1_000)  # warm up allocators and caches before taking the baseline
    await until_stats(server, connections=3, interpreter_connections=3)
    baseline = stats(server)["rss_kib"]
    began = time.monotonic()
    await churn(port, CYCLES, start=1_000)
    elapsed = time.monotonic() - began
    stop.set()
    sent = await talking
    heard = [await task for task in listening]
    assert heard == [sent] * 2, "a listener lost broadcasts during the churn"

    after = await until_stats(server, connections=3, interpreter_connections=3)
    for client in (*listeners, talker):
        await client.send(CLOSE, close_payload(1000))
        assert await client.closed_by_server() == 1000
    empty = await until_stats(server, connections=0, interpreter_connections=0)
    assert set(empty["endpoints"].values()) == {0}
    growth = after["rss_kib"] - baseline
    record(
        f"- churn: {CYCLES} connect/disconnect cycles in {elapsed:.1f} s ({CYCLES / elapsed:.0f}/s; "
        f"clean closes, resets and FINs across 3 endpoints, {sent} broadcasts meanwhile); "
        f"registry and interpreter side empty afterwards; RSS {baseline} KiB before, "
        f"{after['rss_kib']} KiB after ({growth:+} KiB)"
    )
    assert growth < 10 * 1024, f"RSS grew by {growth} KiB over {CYCLES} cycles"


async def test_ten_thousand_connections_held_at_once_all_answer(start_server):
    server = start_server(APP, "--stats-path", "/__stats", "--ping-interval", "0")
    before = stats(server)["rss_kib"]
    clients: list[RawClient] = []
    began = time.monotonic()
    for batch in batched(range(HELD), 500):
        clients += await asyncio.gather(*(RawClient.connect(server.port, "/echo") for _ in batch))
    opened = time.monotonic() - began
    held = await until_stats(server, connections=HELD, interpreter_connections=HELD)

    async def answers(n: int, client: RawClient) -> None:
        await client.send(TEXT, b"%d" % n)
        assert (await client.frame_of(TEXT, timeout=60)).payload == b"%d" % n

    for batch in batched(enumerate(clients), 1000):
        await asyncio.gather(*(answers(n, client) for n, client in batch))
    per_connection = (held["rss_kib"] - before) / HELD
    record(
        f"- held {HELD} connections at once (opened in {opened:.1f} s), every one answered its own message; "
        f"RSS {before} -> {held['rss_kib']} KiB, {per_connection:.1f} KiB per connection"
    )
    for client in clients:
        client.reset()
    await until_stats(server, connections=0, interpreter_connections=0)
