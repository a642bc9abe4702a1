"""docker-compose.yml cannot be run here (no Docker engine), so its steps are run here instead:
the redis service's command, then each app service as the Dockerfile's CMD with the image's
ENV and the service's environment (their addresses moved onto 127.0.0.1), each waited for
by the service's own healthcheck; then the two instances reach each other's clients."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import yaml
from conftest import ROOT, Server, receive
from redis_server import Redis, until_subscribers
from test_dockerfile import instruction

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APPS = [name for name, service in SERVICES.items() if service.get("build") == "."]


def test_the_services_are_redis_and_two_instances_of_the_demo_app():
    assert SERVICES["redis"]["image"].startswith("redis:")
    assert APPS == ["app1", "app2"]
    published = [service["ports"] for service in (SERVICES[name] for name in APPS)]
    assert published == [["8081:8080"], ["8082:8080"]]
    for name in APPS:
        assert SERVICES[name]["depends_on"] == {"redis": {"condition": "service_healthy"}}


async def test_the_services_run_and_their_instances_reach_each_other(binary, tmp_path):
    redis_command = SERVICES["redis"]["command"]
    assert redis_command[0] == "redis-server"
    redis = Redis(extra=tuple(redis_command[1:])).start()
    servers: list[Server] = []
    try:
        # The redis healthcheck: `redis-cli ping`, as the services wait for.
        assert redis.client().ping()
        for name in APPS:
            servers.append(start_service(name, binary, redis.port))
        for name, server in zip(APPS, servers, strict=True):
            run_healthcheck(SERVICES[name]["healthcheck"]["test"], server.port)

        first, second = servers
        async with first.connect("/broadcast") as one, second.connect("/broadcast") as other:
            # Each instance subscribes to the route's channel once it has a client there.
            await until_subscribers(redis, "robyn:0:/broadcast", 2)
            await one.send("across instances")
            for ws in (one, other):
                assert (await receive(ws)).endswith(": across instances")
    finally:
        for server in servers:
            assert server.stop() == 0, server.output
        redis.close()


def start_service(name: str, binary, redis_port: int) -> Server:
    """One app service: the image's CMD from its WORKDIR with its ENV, the service's
    environment on top; the broker's host `redis` is this machine's Redis."""
    command = json.loads(instruction("CMD")[0])
    environment = dict(pair.split("=", 1) for pair in instruction("ENV")[0].split())
    environment |= SERVICES[name]["environment"]
    assert environment["ROBYN_BROKER"] == "redis://redis:6379/0"
    environment["ROBYN_BROKER"] = f"redis://127.0.0.1:{redis_port}/0"
    # Loopback only on this machine: the address comes from the same variables, other values.
    environment |= {"ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": "0"}
    return Server(binary, command[1:], environment, ROOT).started()


def run_healthcheck(test: list[str], port: int) -> None:
    """The service's healthcheck command, run here against the instance's port."""
    kind, program, *args = test
    assert (kind, program) == ("CMD", "python3")
    args = [arg.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for arg in args]
    subprocess.run([sys.executable, *args], check=True, timeout=10)
