"""What a client can make the server hold, probed as an attacker would: one client at a time,
each probe on both WebSocket layers (compressed and not). Each asserts the server's memory
growth (its RSS, read here from /proc) against a generous bound, never a time, and that other
clients are answered meanwhile. The README's "Conformance and limits" table lists the bounds."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from pathlib import Path

import pytest
from conftest import STATS_PATH, Server, receive, still_serves, until_stats
from websockets.exceptions import InvalidStatus
from wire import BINARY, PING, TEXT, Attacker, frame

APP = "limits"
MiB = 1024  # RSS is read in KiB
LAYERS = pytest.mark.parametrize("layer", ["plain", "deflate"])
OFFER = {"plain": (), "deflate": ("Sec-WebSocket-Extensions: permessage-deflate",)}


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{server.process.pid}/status has no VmRSS")


async def memory_comes_back(server: Server, before: int, within: float = 60.0) -> None:
    """Once every client has gone, the server's RSS comes back within 20% of `before` (what it
    was before the peak) within `within` seconds."""
    await until_stats(server, connections=0)
    deadline = time.monotonic() + within
    while (now := rss_kib(server)) > before * 1.2 and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    assert now <= before * 1.2, f"RSS {now} KiB {within:.0f} s after the peak, {before} KiB before it"


async def attacked(server: Server, path: str, layer: str) -> tuple[int, Attacker]:
    """The server's RSS once it has served a client, and an attacker connected to `path`."""
    await still_serves(server)
    before = rss_kib(server)
    attacker = await asyncio.to_thread(Attacker, server.port, path, *OFFER[layer])
    assert attacker.status == 101
    return before, attacker


async def flood_held_back(server: Server, layer: str, data: bytes, rounds: int, most_kib: int) -> int:
    """An attacker on /echo sends `data` `rounds` times and reads nothing: the server stops
    reading from it first, grows by less than `most_kib` meanwhile, and answers others. Answers
    the server's RSS before."""
    before, attacker = await attacked(server, "/echo", layer)
    sent = await asyncio.to_thread(attacker.flood, data, rounds)
    grown = rss_kib(server) - before
    await still_serves(server)
    attacker.close()
    assert sent < rounds, f"the server took all {rounds} although the client read nothing it sent back"
    assert grown < most_kib, f"the server grew by {grown} KiB"
    return before


@LAYERS
async def test_a_ping_flood_from_a_client_that_never_reads_is_held_back(start_server, layer):
    server = start_server(APP)
    # 400,000 pings, 52 MB: a server that answered them all would hold 50 MB of pongs.
    await flood_held_back(server, layer, frame(PING, bytes(125)) * 1000, 400, most_kib=8 * MiB)


@LAYERS
async def test_echoes_to_a_client_that_never_reads_are_held_back(start_server, layer):
    server = start_server(APP, "--stats-path", STATS_PATH)
    message = frame(BINARY, os.urandom(4 * 1024 * 1024))
    before = await flood_held_back(server, layer, message, 40, most_kib=64 * MiB)  # 160 MiB
    await memory_comes_back(server, before)


@LAYERS
async def test_send_to_a_client_that_never_reads_closes_it_as_a_slow_consumer(start_server, layer):
    server = start_server(APP, "--stats-path", STATS_PATH)
    before, target = await attacked(server, "/idle", layer)
    opcode, target_id = target.read_frame()
    assert opcode == TEXT
    async with server.connect("/send-to") as sender:
        await sender.send(f"{target_id.decode()} 40 {10 * 1024 * 1024}")
        results = (await receive(sender, timeout=60)).split()
    grown = rss_kib(server) - before
    # The first went into the queue; once the queue was over its bound the target was dropped,
    # and send_to said so from then on.
    assert results[0] == "T" and "F" in results, results
    assert "T" not in results[results.index("F") :], results
    assert grown < 64 * MiB, f"the server grew by {grown} KiB"
    assert await asyncio.to_thread(target.close_code) == 1013
    target.close()
    await still_serves(server)
    await memory_comes_back(server, before)


async def test_handshake_headers_over_the_limit_get_431(start_server):
    server = start_server(APP)
    await still_serves(server)
    before = rss_kib(server)
    for _ in range(50):
        attacker = Attacker(server.port, "/echo", header_bytes=300_000)
        assert attacker.status in (431, 0), attacker.status  # 0: reset before the answer was read
        attacker.close()
    seen = Attacker(server.port, "/echo", header_bytes=40_000)
    assert seen.status == 431
    seen.close()
    assert rss_kib(server) - before < 8 * MiB
    await still_serves(server)


@LAYERS
async def test_idle_connections_keep_their_handshake_once(start_server, layer):
    server = start_server(APP, "--stats-path", STATS_PATH)
    await still_serves(server)
    held: list[Attacker] = []
    per_connection = {}
    for header_bytes in (0, 12_000):
        before = rss_kib(server)
        batch = [Attacker(server.port, "/idle", *OFFER[layer], header_bytes=header_bytes) for _ in range(300)]
        assert {attacker.status for attacker in batch} == {101}
        held += batch
        await until_stats(server, connections=len(held))
        per_connection[header_bytes] = (rss_kib(server) - before) / len(batch)
    await still_serves(server)
    for attacker in held:
        attacker.close()
    kept = per_connection[12_000] - per_connection[0]
    assert kept < 20, f"a 12 KB header costs {kept:.1f} KiB per idle connection ({per_connection})"


async def test_handshakes_in_progress_count_toward_max_connections(start_server):
    server = start_server(APP, "--max-connections", "20", "--stats-path", STATS_PATH)
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    await until_stats(server, handshakes=21)  # and the request for the stats
    with pytest.raises(InvalidStatus) as refused:
        async with server.connect("/echo"):
            pass
    assert refused.value.response.status_code == 503
    for sock in silent:
        sock.close()
    await until_stats(server, handshakes=1)
    await still_serves(server)


async def test_running_out_of_file_descriptors_is_logged_once_per_interval(start_server):
    server = start_server(APP, "--max-connections", "1000", open_files=128)
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    await server.until("Too many open files")
    for sock in silent:
        sock.close()
    await still_serves(server)
    assert server.count("Too many open files") <= 2, server.output


@LAYERS
async def test_memory_returns_after_a_burst_of_connections(start_server, layer):
    server = start_server(APP, "--stats-path", STATS_PATH)

    def burst(size: int) -> None:
        clients = [Attacker(server.port, "/echo", *OFFER[layer]) for _ in range(size)]
        for client in clients:
            client.sock.sendall(frame(TEXT, b"hello"))
        for client in clients:
            assert client.read_frame()[0] == TEXT
        for client in clients:
            client.close()

    # Before the peak: a server that has served a few clients (what a first client sets up
    # once, the compression pool say, is not the peak's).
    await asyncio.to_thread(burst, 50)
    await until_stats(server, connections=0)
    before = rss_kib(server)
    await asyncio.to_thread(burst, 2000)
    await memory_comes_back(server, before)


async def test_a_handler_that_fails_for_every_client_is_logged_in_full_a_few_times(start_server):
    server = start_server(APP)
    for _ in range(100):
        async with server.connect("/fail") as ws:
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.close_code == 1011
    assert server.stop() == 0
    assert server.output.count("Traceback (most recent call last)") <= 5, server.output
    counted = [int(n) for n in re.findall(r"(\d+) more time", server.output)]
    assert sum(counted) + server.output.count("Traceback (most recent call last)") == 100, server.output
