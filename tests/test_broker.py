"""`--broker redis://...`: servers reach each other's clients through a real redis-server,
started here. Every broadcast, room message and send_to reaches its targets once, in each
sender's order; channels follow interest; and the faults (Redis restarted, subscriptions
killed, Redis not there at start, a slow client elsewhere, a worker killed) leave every node
serving its own clients and coming back on its own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from cluster import Client, clients, scrape, spread_over, until_metric
from conftest import ROOT, messages_until_close
from redis_server import Redis, free_port, until_subscribers
from websockets.asyncio.client import connect

CHAT = "robyn:0:/chat"


@pytest.fixture
def redis() -> Iterator[Redis]:
    server = Redis().start()
    yield server
    server.close()


async def send_to_when_known(sender: Client, target: Client, text: str, timeout: float = 10.0) -> None:
    """send_to across nodes answers False until the sender's node has seen the target's among
    the live nodes (within two seconds of its start): ask until it is True, then it is sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await sender.command(op="send_to", to=target.id, text=text)
        if await sender.reply("sent"):
            return
        assert loop.time() < deadline, f"{target.id} was never reachable"
        await asyncio.sleep(0.1)


def ready(server) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/ready", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def until_ready(server, status: int) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        code, body = await asyncio.to_thread(ready, server)
        if code == status:
            return body
        assert loop.time() < deadline, f"/ready stayed {code} {body!r}"
        await asyncio.sleep(0.1)


def record(line: str) -> None:
    """Keeps a measured figure for the run's summary (out/broker/summary.md)."""
    out = ROOT / "out" / "broker"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "summary.md").open("a") as summary:
        summary.write(f"- {line}\n")


async def test_instances_and_processes_reach_each_other_once_in_order(start_server, redis):
    instances = [start_server("cluster", "--broker", redis.url) for _ in range(3)]
    multi = start_server("cluster", "--broker", redis.url, "--processes", "4", "--expose-metrics")
    group = []
    for instance in instances:
        group += await clients([instance.url("/chat")] * 2)
    group += await spread_over(multi.url("/chat"), 4, at_least=8)
    nodes = {client.pid for client in group}
    assert len(nodes) == 7
    # Every node has a /chat client, so every node subscribes to its channel.
    await until_subscribers(redis, CHAT, 7)

    for round_ in range(3):
        await asyncio.gather(*(client.command(op="broadcast", text=f"{client.id} {round_}") for client in group))
    for client in group:
        texts = await client.until(lambda texts: len(texts) >= 3 * len(group))
        assert len(texts) == 3 * len(group)
        for sender in group:
            assert [text for text in texts if text.startswith(sender.id)] == [f"{sender.id} {n}" for n in range(3)]
        client.texts.clear()

    # A room's channel has the nodes with members as subscribers, and only while they have.
    members = [group[0], group[2], group[-1], group[-2]]
    for member in members:
        await member.command(op="join", room="blue")
        await member.reply("joined")
    await until_subscribers(redis, f"{CHAT} room:blue", len({member.pid for member in members}))
    await group[1].command(op="room", room="blue", text="to blue")
    await group[1].command(op="broadcast", text="to all")
    for client in group:
        texts = await client.until(lambda texts: "to all" in texts)
        assert texts == (["to blue", "to all"] if client in members else ["to all"])
        client.texts.clear()
    for member in members:
        await member.command(op="leave", room="blue")
        await member.reply("left")
    await until_subscribers(redis, f"{CHAT} room:blue", 0)

    # send_to reaches a connection on any node, once; an unknown id is not sent.
    sender = group[0]
    for target in group[1:]:
        await send_to_when_known(sender, target, f"for {target.id}")
    for target in group[1:]:
        assert await target.until(lambda texts: bool(texts)) == [f"for {target.id}"]
    await sender.command(op="send_to", to="0badc0de-0000-4000-8000-000000000000", text="nobody")
    assert await sender.reply("sent") is False

    # A worker killed outright is started again; its clients come back and are reached again.
    victim = next(client.pid for client in group if client.pid not in {c.pid for c in group[:6]})
    os.kill(victim, signal.SIGKILL)
    await multi.until(r"worker \d serves again")
    lost = [client for client in group if client.pid == victim]
    for client in lost:
        await client.until_closed()
    everyone = [client for client in group if client.pid != victim] + await clients([multi.url("/chat")] * len(lost))
    for client in everyone:
        client.texts.clear()
    await everyone[0].command(op="broadcast", text="after the kill")
    for client in everyone:
        assert await client.until(lambda texts: "after the kill" in texts) == ["after the kill"]

    for client in everyone:
        await client.close()
    await until_subscribers(redis, CHAT, 0)
    values = await until_metric(f"http://127.0.0.1:{multi.port}/metrics", 'robyn_ws_connections{path="/chat"}', 0)
    assert values["robyn_ws_broker_publishes_total"] > 0
    assert values["robyn_ws_broker_receives_total"] > 0, values
    assert values["robyn_ws_broker_lag_seconds_count"] == values["robyn_ws_broker_receives_total"]
    for server in [*instances, multi]:
        assert server.stop() == 0, server.output


async def test_a_redis_restart_is_survived_and_counted(start_server, redis):
    first, second = (start_server("cluster", "--broker", redis.url, "--expose-metrics") for _ in range(2))
    a1, a2 = await clients([first.url("/chat")] * 2)
    b1 = await Client.open(second.url("/chat"))
    await until_subscribers(redis, CHAT, 2)
    await until_ready(first, 200)

    redis.stop()
    await first.until("lost the broker subscription")
    assert "not connected to the other processes" in await until_ready(first, 503)
    # Without Redis, a node still serves its own clients.
    await a1.command(op="broadcast", text="while down")
    assert await a2.until(lambda texts: "while down" in texts) == ["while down"]

    began = time.monotonic()
    redis.start()
    for server in (first, second):
        await server.until(r"subscribed to the broker again after [\d.]+ s", timeout=15)
        await server.until(r"on_broker_reconnect in \d+")
    recovery = time.monotonic() - began
    record(f"Redis restarted: both nodes subscribed again {recovery:.2f} s after it was back (jittered backoff)")
    await until_ready(first, 200)

    # What was broadcast while Redis was down is not replayed (at most once); what comes after arrives.
    await a1.command(op="broadcast", text="back")
    assert await b1.until(lambda texts: "back" in texts) == ["back"]
    assert await a2.until(lambda texts: "back" in texts) == ["while down", "back"]
    values = scrape(f"http://127.0.0.1:{first.port}/metrics")
    assert values["robyn_ws_broker_reconnects_total"] == 1
    assert values["robyn_ws_broker_gap_seconds_total"] > 0
    for client in (a1, a2, b1):
        await client.close()


async def test_killed_subscriptions_come_back(start_server, redis):
    first, second = (start_server("cluster", "--broker", redis.url, "--expose-metrics") for _ in range(2))
    a = await Client.open(first.url("/chat"))
    b = await Client.open(second.url("/chat"))
    await until_subscribers(redis, CHAT, 2)
    with redis.client() as client:
        client.client_kill_filter(_type="pubsub")
    for server in (first, second):
        await server.until("lost the broker subscription")
        await server.until(r"subscribed to the broker again after")
    await until_subscribers(redis, CHAT, 2)
    await a.command(op="broadcast", text="heard again")
    assert await b.until(lambda texts: bool(texts)) == ["heard again"]
    await a.close()
    await b.close()


async def test_redis_not_there_at_start_is_waited_for_while_serving(start_server):
    redis = Redis(port=free_port())
    try:
        server = start_server("cluster", "--broker", redis.url)
        await server.until("cannot subscribe to the broker")
        assert "not connected" in await until_ready(server, 503)
        a1, a2 = await clients([server.url("/chat")] * 2)
        await a1.command(op="broadcast", text="alone")
        assert await a2.until(lambda texts: bool(texts)) == ["alone"]
        redis.start()
        await server.until(r"subscribed to the broker again after", timeout=15)
        await until_ready(server, 200)
        await until_subscribers(redis, CHAT, 1)
        await a1.close()
        await a2.close()
    finally:
        redis.close()


async def test_a_slow_client_on_another_node_is_closed_without_slowing_the_rest(start_server, redis):
    # Room for 32 of the 64 KiB broadcasts per client: the slow one, which takes none, still
    # overflows it long before the 200th, while a busy machine pausing the fast one for a few
    # frames does not (with 8 it did, now and then).
    first = start_server("cluster", "--broker", redis.url, "--send-queue", "32")
    second = start_server("cluster", "--broker", redis.url, "--send-queue", "32", "--expose-metrics")
    sender = await Client.open(first.url("/chat"))
    fast = await Client.open(second.url("/chat"))
    # Reads its greeting, then nothing: the client library stops reading the socket, whose
    # receive buffer is kept small, so the server's queue for it fills. Without compression,
    # which would shrink the repetitive broadcasts below what the buffers hold.
    tight = socket.socket()
    tight.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tight.connect(("127.0.0.1", second.port))
    slow = await connect(second.url("/chat"), max_queue=1, sock=tight, compression=None)
    await slow.recv()
    await until_subscribers(redis, CHAT, 2)
    count, size = 200, 64 * 1024
    for n in range(count):
        await sender.command(op="broadcast", text=f"{n} " + "x" * size)
    texts = await fast.until(lambda texts: len(texts) == count, timeout=30)
    assert [text.split()[0] for text in texts] == [str(n) for n in range(count)]
    received = await messages_until_close(slow, timeout=30)
    assert len(received) < count
    assert slow.close_code == 1013
    values = await until_metric(f"http://127.0.0.1:{second.port}/metrics", "robyn_ws_slow_consumer_closes_total", 1)
    assert values['robyn_ws_closes_total{code="1013"}'] == 1
    await sender.close()
    await fast.close()
