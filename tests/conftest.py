"""Runs the real robyn-ws-server binary on test apps and drives it with the `websockets`
client. Nothing here stands in for the server: every test talks to the built binary over a
real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
TIMEOUT = 10.0


def run_to_exit(
    binary: Path, *args: str, env: dict[str, str] | None = None, cwd: Path = APPS
) -> subprocess.CompletedProcess[str]:
    """Runs the server to its end (for start-up errors and --help), without the ROBYN_*
    settings of the environment the tests run in (but ROBYN_WS_SERVER_API_DIR, which says
    where the server reads its robyn package from)."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ROBYN_") or key == "ROBYN_WS_SERVER_API_DIR"
    }
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=30, cwd=cwd, env={**clean, **(env or {})}
    )


# The server under test is the standalone binary unless ROBYN_WS_SERVER names the installed
# package's command (tests/test_wheel.py runs the suite so, with ROBYN_WS_SERVER_KIND=package).
# Only the binary starts CPython itself, and so chooses which virtualenv's packages it sees;
# the package runs in whichever Python runs it.
EMBEDDED_ONLY = pytest.mark.skipif(
    os.environ.get("ROBYN_WS_SERVER_KIND") == "package",
    reason="the binary picks a virtualenv; the installed package runs in the Python that runs it",
)


@pytest.fixture(scope="session")
def binary() -> Path:
    """The release binary; built here (a no-op when up to date) unless ROBYN_WS_SERVER names one."""
    configured = os.environ.get("ROBYN_WS_SERVER")
    if configured:
        return Path(configured)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "robyn-ws-server"], cwd=ROOT, check=True)
    return ROOT / "target" / "release" / "robyn-ws-server"


def limit_open_files(limit: int) -> None:
    """In the child before it runs the server: both open-file limits (the server raises its
    soft limit to the hard one)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


class Server:
    """One server process. Its output is collected line by line so tests can wait for an
    event (a line) instead of sleeping."""

    def __init__(
        self, binary: Path, args: list[str], env: dict[str, str] | None, cwd: Path, open_files: int | None = None
    ) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [str(binary), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=cwd,
            preexec_fn=None if open_files is None else lambda: limit_open_files(open_files),
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._collect, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()
        self.port = 0

    def _collect(self, stream) -> None:
        for line in stream:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._lines.append("")  # wakes waiters at end of output
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT, count: int = 1) -> list[re.Match[str]]:
        """Blocks until `count` output lines match `pattern`; fails if the process ends or the
        time runs out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [m for m in map(regex.search, self._lines) if m]
                if len(matches) >= count:
                    return matches
                if self.process.poll() is not None and all(not r.is_alive() for r in self._readers):
                    raise AssertionError(
                        f"server exited ({self.process.returncode}) before {pattern!r}:\n{self.output}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {count} line(s) matching {pattern!r} within {timeout}s:\n{self.output}")
                self._changed.wait(min(remaining, 0.5))

    async def until(self, pattern: str, timeout: float = TIMEOUT, count: int = 1) -> list[re.Match[str]]:
        return await asyncio.to_thread(self.wait_for, pattern, timeout, count)

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._changed:
            return sum(1 for line in self._lines if regex.search(line))

    def started(self) -> Server:
        match = self.wait_for(r"serving \S+ on wss?://(\S+):(\d+)")[0]
        self.port = int(match.group(2))
        return self

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def connect(self, path: str, **kwargs) -> connect:
        return connect(self.url(path), open_timeout=TIMEOUT, close_timeout=TIMEOUT, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            for reader in self._readers:
                reader.join(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# Every server the suite starts runs in each place the network side can run (`--io-threads`):
# on the Python loop thread itself (0), and on a thread of its own beside it (1). The whole
# suite runs once per mode; a test that passes `--io-threads` itself keeps its own.
IO_MODES = {"one-thread": "0", "io-thread": "1"}


@pytest.fixture(scope="session", params=list(IO_MODES))
def io_threads(request: pytest.FixtureRequest) -> str:
    """The `--io-threads` value of this run of the suite."""
    return IO_MODES[request.param]


def with_io_threads(args: list[str], io_threads: str) -> list[str]:
    return args if "--io-threads" in args else [*args, "--io-threads", io_threads]


@pytest.fixture
def start_server(binary: Path, io_threads: str) -> Iterator[Callable[..., Server]]:
    """start_server("app_module", "--flag", ..., env={...}, ready=True) -> Server"""
    servers: list[Server] = []

    def start(
        app: str,
        *flags: str,
        env: dict[str, str] | None = None,
        ready: bool = True,
        cwd: Path = APPS,
        loopback: bool = True,
        open_files: int | None = None,
    ) -> Server:
        """`loopback` adds `--host 127.0.0.1 --port 0` unless the flags set them; `open_files`
        lowers the process's open-file limit."""
        args = ["--app", app, *flags]
        if loopback and "--host" not in flags:
            args += ["--host", "127.0.0.1"]
        if loopback and "--port" not in flags:
            args += ["--port", "0"]
        server = Server(binary, with_io_threads(args, io_threads), env, cwd, open_files)
        servers.append(server)
        return server.started() if ready else server

    yield start
    for server in servers:
        server.kill()
        assert "panicked" not in server.output, f"the server panicked:\n{server.output}"


@pytest.fixture(scope="module")
def module_server(binary: Path, io_threads: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """One server for a whole test module, on the app named by the module's `APP`."""
    args = ["--app", request.module.APP, "--host", "127.0.0.1", "--port", "0", "--io-threads", io_threads]
    server = Server(binary, args, None, APPS).started()
    yield server
    assert server.stop() == 0, server.output
    assert "panicked" not in server.output, f"the server panicked:\n{server.output}"


async def receive(ws: ClientConnection, timeout: float = TIMEOUT) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def still_serves(server: Server) -> None:
    """Fails unless a new client on `/echo` (every test app's echo) is answered."""
    async with server.connect("/echo") as ws:
        await ws.send("still there?")
        assert await receive(ws) == "still there?"


async def closed_with(ws: ClientConnection, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Waits for the server's Close frame; returns its (code, reason). Fails on 1006 (no
    Close frame at all)."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    assert ws.protocol.close_rcvd is not None, "the connection ended without a Close frame from the server"
    return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


async def messages_until_close(ws: ClientConnection, timeout: float = TIMEOUT) -> list[str | bytes]:
    """Every message the server sends before its Close frame."""
    received: list[str | bytes] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                received.append(await ws.recv())
        except ConnectionClosed:
            return received


# Where the tests that read the server's live counts put them (`--stats-path`).
STATS_PATH = "/__stats"
# How long `until_stats` has the server wait for the counts.
STATS_WAIT = 10
STATS_COUNTS = ("connections", "interpreter_connections", "handshakes")


def stats(server: Server, query: str = "", timeout: float = 5.0) -> dict[str, Any]:
    """The server's stats JSON, from a server started with `--stats-path /__stats`."""
    url = f"http://127.0.0.1:{server.port}{STATS_PATH}{'?' if query else ''}{query}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


async def until_stats(server: Server, **expected: int) -> dict[str, Any]:
    """The stats once the live counts equal `expected` (`connections=`,
    `interpreter_connections=`: they follow closes by microseconds). One request: the server
    answers `?wait=SECONDS&connections=N...` as soon as every named count has its value, or
    after SECONDS with the counts as they are then. The counts per path, under "endpoints",
    are not waited for."""
    unknown = set(expected) - set(STATS_COUNTS)
    if unknown:
        raise TypeError(f"until_stats waits for {', '.join(STATS_COUNTS)}, not {', '.join(sorted(unknown))}")
    query = urllib.parse.urlencode({"wait": STATS_WAIT, **expected})
    current = await asyncio.to_thread(stats, server, query, STATS_WAIT + 5)
    reached = {key: current.get(key) for key in expected}
    assert reached == expected, f"waited up to {STATS_WAIT} s for {expected}, the stats say {current}"
    return current


SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Prints the summaries (Autobahn, soak) that this run wrote under out/."""
    for summary in sorted((ROOT / "out").glob("*/summary.md")):
        if summary.stat().st_mtime >= SESSION_STARTED:
            terminalreporter.write_sep("=", f"out/{summary.parent.name}")
            terminalreporter.write_line(summary.read_text().rstrip())
