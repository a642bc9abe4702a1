"""No unbounded buffer anywhere: a send waits for a slow client, the server stops reading from
a client whose handler is behind, and a slow broadcast reader is dropped (1013) without
anyone else losing a message."""

from __future__ import annotations

import asyncio
import secrets
import socket

import pytest
from conftest import messages_until_close, receive, stats, until_stats

APP = "limits"
MiB = 1024
# Payloads are random: compression must not shrink them below the socket buffers.
LAYERS = pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])


def random_text(size: int, prefix: str = "") -> str:
    return prefix + secrets.token_hex(size)[: size - len(prefix)]


def small_buffers(server) -> socket.socket:
    """A connected socket whose kernel buffers stay at 64 KiB. Linux would otherwise grow a
    receive buffer up to net.ipv4.tcp_rmem's maximum (32 MiB here) and hide the backpressure
    behind it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


@LAYERS
async def test_send_waits_for_a_client_that_does_not_read(start_server, compression):
    server = start_server(APP, "--send-queue", "8", "--stats-path", "/__stats")
    baseline = stats(server)["rss_kib"]
    count, size = 1000, 32 * 1024
    # max_queue=1: the client library stops reading after one unread message, so the
    # server's queue for it fills once the kernel's socket buffers are full.
    connection = server.connect(
        "/flood", max_size=None, max_queue=1, sock=small_buffers(server), compression=compression
    )
    async with connection as ws:
        await ws.send(f"{count} {size}")
        await server.until("send waited for the client")
        # 32 MiB were sent to a client reading nothing; the server held on to little of it.
        assert stats(server)["rss_kib"] - baseline < 20 * MiB
        for n in range(count):
            message = await receive(ws)
            assert message.startswith(f"{n}:") and len(message) == size
        assert await receive(ws) == "done"


@LAYERS
async def test_the_server_stops_reading_a_client_whose_handler_is_behind(start_server, compression):
    server = start_server(APP, "--stats-path", "/__stats")
    baseline = stats(server)["rss_kib"]
    count, size = 4000, 10 * 1024
    async with server.connect("/hoard", max_size=None, sock=small_buffers(server), compression=compression) as hoarder:
        assert await receive(hoarder) == "hoarding"

        async def send_all() -> None:
            for n in range(1, count + 1):
                await hoarder.send(random_text(size, f"{n}:"))
            await hoarder.send("end")

        sender = asyncio.create_task(send_all())
        # 40 MiB cannot all go out: once the socket buffers are full the sends wait, because
        # the server stopped reading after --receive-buffer (1 MiB) went unreceived.
        done, _ = await asyncio.wait({sender}, timeout=3)
        assert not done, "every message was accepted although the handler took none"
        assert stats(server)["rss_kib"] - baseline < 20 * MiB
        async with server.connect("/release") as release:
            assert await receive(release) == "released"
            # Nothing was lost while reading was paused: all arrive, in order.
            assert await receive(hoarder, timeout=60) == f"received {count} in order"
        await sender


@LAYERS
async def test_a_slow_broadcast_reader_is_dropped_and_nobody_else_loses_a_message(start_server, compression):
    server = start_server(APP, "--send-queue", "16", "--stats-path", "/__stats")
    count, size = 4000, 8 * 1024
    readers = [
        await server.connect("/broadcast", max_size=None, compression=compression).__aenter__() for _ in range(3)
    ]
    sleeper = server.connect(
        "/broadcast", max_size=None, max_queue=1, sock=small_buffers(server), compression=compression
    )
    sleeper = await sleeper.__aenter__()
    everyone = [*readers, sleeper]
    # Every handler has joined the endpoint once each client has seen a broadcast.
    await readers[0].send("joined?")
    for ws in everyone:
        assert await receive(ws) == "joined?"
    await until_stats(server, connections=4)

    received = [0] * len(readers)
    progress = asyncio.Condition()

    async def read_all(index: int, ws) -> list[int]:
        numbers = []
        for _ in range(count):
            numbers.append(int((await receive(ws, timeout=60)).split(":")[0]))
            async with progress:
                received[index] += 1
                progress.notify_all()
        return numbers

    async def sleeper_dropped() -> list[str | bytes]:
        # From the moment the server gives up on it, the sleeper has the close timeout to read
        # what reached it and the Close frame: it reads now, while the others still receive.
        await server.until("broadcast client left with 1013", timeout=60)
        return await messages_until_close(sleeper, timeout=60)

    dropping = asyncio.create_task(sleeper_dropped())
    reading = [asyncio.create_task(read_all(i, ws)) for i, ws in enumerate(readers)]
    for n in range(count):
        # The readers keep up (this process is both sender and readers: pace the sender to
        # at most 8 messages ahead of the slowest, well inside their queue of 16).
        async with progress:
            await progress.wait_for(lambda n=n: min(received) >= n - 8)
        await readers[0].send(random_text(size, f"{n}:"))
    for task in reading:
        assert await task == list(range(count))

    # The sleeper's queue filled: it was closed with 1013 after what had reached it.
    leftovers = await dropping
    assert len(leftovers) < count
    assert (sleeper.protocol.close_rcvd.code, sleeper.protocol.close_rcvd.reason) == (1013, "slow consumer")
    for ws in readers:
        await ws.close()
