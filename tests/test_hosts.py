"""Servers on separate hosts: each in a network namespace of its own (made here with Debian's
iproute2: `ip netns`, a veth pair per host), with its own address, reaching Redis and its
clients over its link. Cutting one host's link leaves the others serving each other; the cut
host notices that its subscription went deaf (no FIN ever comes), and once the link is back
it subscribes again, without replaying what it missed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Client
from conftest import APPS, Server, with_io_threads
from redis_server import Redis, until_subscribers

HOSTS = {"robyn-h1": 1, "robyn-h2": 2}


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def gateway(host: str) -> str:
    return f"10.77.{HOSTS[host]}.1"


def address(host: str) -> str:
    return f"10.77.{HOSTS[host]}.2"


def link(host: str) -> str:
    return f"rb{HOSTS[host]}"


@pytest.fixture
def hosts() -> Iterator[list[str]]:
    """Two hosts: namespace `robyn-hN`, address 10.77.N.2, reaching this (root) namespace at
    10.77.N.1 over the veth pair rbN."""
    for host in HOSTS:
        subprocess.run(["ip", "netns", "del", host], capture_output=True)
    try:
        for host in HOSTS:
            ip("netns", "add", host)
            ip("link", "add", link(host), "type", "veth", "peer", "name", "eth0", "netns", host)
            ip("addr", "add", f"{gateway(host)}/24", "dev", link(host))
            ip("link", "set", link(host), "up")
            ip("-n", host, "addr", "add", f"{address(host)}/24", "dev", "eth0")
            ip("-n", host, "link", "set", "eth0", "up")
            ip("-n", host, "link", "set", "lo", "up")
        yield list(HOSTS)
    finally:
        for host in HOSTS:
            subprocess.run(["ip", "netns", "del", host], capture_output=True)


def start_on(host: str, binary: Path, io_threads: str, broker: str) -> Server:
    args = ["--app", "cluster", "--host", address(host), "--port", "0", "--broker", broker]
    command = ["netns", "exec", host, str(binary), *with_io_threads(args, io_threads)]
    return Server(Path("/usr/sbin/ip"), command, None, APPS).started()


async def test_a_host_cut_off_goes_deaf_then_comes_back_without_replay(binary, io_threads, hosts, start_server):
    redis = Redis(also=tuple(gateway(host) for host in hosts)).start()
    servers: list[Server] = []
    try:
        for host in hosts:
            servers.append(start_on(host, binary, io_threads, f"redis://{gateway(host)}:{redis.port}/0"))
        local = start_server("cluster", "--broker", f"redis://127.0.0.1:{redis.port}/0")
        servers.append(local)
        (h1, h2) = [
            await Client.open(f"ws://{address(host)}:{server.port}/chat")
            for host, server in zip(hosts, servers, strict=False)
        ]
        here = await Client.open(local.url("/chat"))
        everyone = [h1, h2, here]
        assert len({client.pid for client in everyone}) == 3

        async def reaches(sender: Client, text: str, receivers: list[Client]) -> None:
            await sender.command(op="broadcast", text=text)
            for client in receivers:
                await client.until(lambda texts: text in texts, timeout=15)

        await until_subscribers(redis, "robyn:0:/chat", 3)
        await reaches(h1, "all three", everyone)

        ip("link", "set", link(hosts[1]), "down")
        await servers[1].until(r"lost the broker subscription \(its probes stopped coming back", timeout=15)
        # The other hosts still reach each other; what they say now never reaches the cut host.
        await reaches(h1, "while cut", [h1, here])
        await reaches(here, "still while cut", [h1, here])

        ip("link", "set", link(hosts[1]), "up")
        await servers[1].until(r"subscribed to the broker again after", timeout=30)
        await servers[1].until(r"on_broker_reconnect in \d+")
        await reaches(here, "together again", everyone)
        assert "while cut" not in h2.texts and "still while cut" not in h2.texts
        assert h2.texts == ["all three", "together again"]
        for client in everyone:
            await client.close()
    finally:
        for server in servers:
            server.kill()
        redis.close()
