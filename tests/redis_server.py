"""A real redis-server (Debian's package, installed by .ci/run), started and stopped by the
tests, on a port of its own, keeping nothing on disk."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile

import redis

TIMEOUT = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Redis:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
        also: tuple[str, ...] = (),
        extra: tuple[str, ...] = (),
    ) -> None:
        executable = shutil.which("redis-server")
        assert executable, "redis-server is not installed: .ci/run installs Debian's redis-server"
        self.host = host
        self.port = port or free_port(host)
        self.netns = netns
        # Further addresses it listens on (the test's own veth links, say): never 0.0.0.0.
        self.also = also
        # Further redis-server options (a compose service's command, say).
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None
        self._dir = tempfile.mkdtemp(prefix="robyn-redis-")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> Redis:
        assert self.process is None
        command = [
            "redis-server",
            "--bind",
            self.host,
            *self.also,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir,
            "--protected-mode",
            "no",
            *self.extra,
        ]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "Ready to accept connections" in line:
                return self
        raise AssertionError(f"redis-server did not start (exit {self.process.wait()})")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(TIMEOUT)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=TIMEOUT, decode_responses=True)

    def subscribers(self, channel: str) -> int:
        """How many connections subscribe to `channel` (PUBSUB NUMSUB)."""
        with self.client() as client:
            return int(dict(client.pubsub_numsub(channel))[channel])


async def until_subscribers(redis: Redis, channel: str, count: int, timeout: float = 10.0) -> None:
    """Waits until `count` connections subscribe to `channel` (asked of Redis, which has no
    way to tell us when that changes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (current := await asyncio.to_thread(redis.subscribers, channel)) != count:
        assert loop.time() < deadline, f"{channel} has {current} subscribers, not {count}"
        await asyncio.sleep(0.05)
