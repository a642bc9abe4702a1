"""`--processes N`: workers share the port, a supervisor restarts the one that dies and stops
them all on a signal, and broadcasts, rooms and send_to reach the clients of every worker,
once each, in each sender's order."""

from __future__ import annotations

import asyncio
import os
import signal

from cluster import Client, clients, scrape, spread_over, until_metric
from conftest import run_to_exit

PROCESSES = 4


def metrics_url(server) -> str:
    return f"http://127.0.0.1:{server.port}/metrics"


async def test_broadcasts_rooms_and_send_to_reach_every_process_once_in_order(start_server):
    server = start_server("cluster", "--processes", str(PROCESSES))
    assert server.count(r"serving cluster on ws://127\.0\.0\.1:\d+ with 4 processes") == 1
    group = await spread_over(server.url("/chat"), PROCESSES, at_least=12)
    assert len({client.pid for client in group}) == PROCESSES

    # Every client broadcasts three numbered messages at once: each client gets each exactly
    # once, and each sender's in the order sent.
    for round_ in range(3):
        await asyncio.gather(*(client.command(op="broadcast", text=f"{client.id} {round_}") for client in group))
    expected = 3 * len(group)
    for client in group:
        texts = await client.until(lambda texts: len(texts) >= expected)
        assert len(texts) == expected, texts
        for sender in group:
            assert [text for text in texts if text.startswith(sender.id)] == [f"{sender.id} {n}" for n in range(3)]
        client.texts.clear()

    # A room spans processes; its messages reach its members only.
    members = [*[client for client in group if client.pid != group[0].pid][:3], group[0]]
    for member in members:
        await member.command(op="join", room="blue")
        assert await member.reply("joined") == "blue"
    await group[0].command(op="room", room="blue", text="to blue")
    for member in members:
        assert await member.until(lambda texts: "to blue" in texts) == ["to blue"]
    outsiders = [client for client in group if client not in members]
    await group[0].command(op="broadcast", text="after blue")
    for client in group:
        texts = await client.until(lambda texts: "after blue" in texts)
        assert texts == (["to blue", "after blue"] if client in members else ["after blue"])
        client.texts.clear()
    assert outsiders

    # send_to finds the connection whichever process holds it.
    sender = group[0]
    for target in group[1:]:
        await sender.command(op="send_to", to=target.id, text=f"for {target.id}")
        assert await sender.reply("sent") is True
        assert await target.until(lambda texts: bool(texts)) == [f"for {target.id}"]
    await sender.command(op="send_to", to="0badc0de-0000-4000-8000-000000000000", text="nobody")
    assert await sender.reply("sent") is False

    for client in group:
        await client.close()
    assert server.stop() == 0, server.output


async def test_metrics_are_summed_over_the_workers(start_server):
    server = start_server("cluster", "--processes", str(PROCESSES), "--expose-metrics")
    group = await spread_over(server.url("/chat"), PROCESSES, at_least=8)
    values = await until_metric(metrics_url(server), 'robyn_ws_connections{path="/chat"}', len(group))
    assert values['robyn_ws_handshakes_total{status="101"}'] >= len(group)
    await group[0].command(op="broadcast", text="hello all")
    for client in group:
        await client.until(lambda texts: texts == ["hello all"])
    await until_metric(metrics_url(server), "robyn_ws_broadcasts_total", 1)
    # The broadcast and the hello: two messages out per client, summed over every process.
    await until_metric(metrics_url(server), "robyn_ws_messages_out_total", 2 * len(group))
    for client in group:
        await client.close()
    values = await until_metric(metrics_url(server), 'robyn_ws_connections{path="/chat"}', 0)
    assert values['robyn_ws_closes_total{code="1000"}'] == len(group)
    assert server.stop() == 0, server.output


async def test_a_killed_worker_is_started_again_and_its_clients_can_reconnect(start_server):
    server = start_server("cluster", "--processes", "2")
    group = await spread_over(server.url("/chat"), 2, at_least=4)
    victim = group[0].pid
    os.kill(victim, signal.SIGKILL)
    await server.until(rf"worker \d \(pid {victim}\) exited \(signal: 9 \(SIGKILL\)\): starting it again")
    await server.until(r"worker \d serves again")
    for client in group:
        if client.pid == victim:
            await client.until_closed()
            assert client.ws.close_code == 1006
    survivors = [client for client in group if client.pid != victim]
    assert survivors
    # The clients that lost their worker come back, to either process, and are reached again.
    returning = await clients(server.url("/chat") for client in group if client.pid == victim)
    everyone = survivors + returning
    await survivors[0].command(op="broadcast", text="still here")
    for client in everyone:
        await client.until(lambda texts: texts == ["still here"])
    for client in everyone:
        await client.close()
    assert server.stop() == 0, server.output


async def test_a_signal_to_the_supervisor_closes_every_client_of_every_worker_with_1001(start_server):
    server = start_server("cluster", "--processes", str(PROCESSES))
    group = await spread_over(server.url("/chat"), PROCESSES, at_least=8)
    server.process.send_signal(signal.SIGTERM)
    for client in group:
        await client.until_closed()
        assert client.ws.close_code == 1001
    assert await asyncio.to_thread(server.process.wait, 30) == 0
    pids = {client.pid for client in group}
    for pid in pids:
        assert server.count(f"on_close in {pid}") == sum(1 for client in group if client.pid == pid)


async def test_a_broadcast_over_the_limit_raises_in_the_handler(start_server):
    server = start_server("cluster", "--processes", "2", "--max-broadcast-size", "64K")
    client = await Client.open(server.url("/chat"))
    await client.command(op="big", size=64 * 1024)
    assert await client.reply("refused") is None
    await client.command(op="big", size=64 * 1024 + 1)
    refused = await client.reply("refused")
    assert "65537 bytes, over --max-broadcast-size (65536 bytes)" in refused
    # The connection and the server carry on.
    await client.command(op="broadcast", text="small")
    await client.until(lambda texts: texts[-1:] == ["small"])
    await client.close()
    assert server.stop() == 0, server.output


def test_a_worker_that_cannot_start_fails_the_start(binary):
    result = run_to_exit(binary, "--app", "startup.raises_at_import", "--processes", "2", "--port", "0")
    assert result.returncode == 1, result.stderr
    assert "before it served" in result.stderr
    assert "Traceback" in result.stderr


def test_scrape_parses_a_single_process_too(start_server):
    server = start_server("cluster", "--expose-metrics")
    values = scrape(metrics_url(server))
    assert values['robyn_ws_connections{path="/chat"}'] == 0
