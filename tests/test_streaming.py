"""Streamed responses (StreamingResponse, SSEResponse) and multipart bodies, through the real
binary on tests/apps/streaming.py with real clients (http.client over sockets we control,
requests, websockets): chunks reach the client as the generator makes them, a client that does
not read holds the generator (not the server's memory), a client that goes away, shutdown and
HEAD all stop the generator (its ``finally`` runs), an idle event stream is kept alive, the
``Last-Event-ID`` header reaches the handler, one coroutine feeds SSE and WebSocket clients
alike, a generator that fails midway cuts the body off, and multipart uploads come apart into
``request.files`` and ``request.form_data`` (a malformed one is a 400, a big one a 413)."""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import APPS, TIMEOUT, Server, receive, still_serves

APP = "streaming"
BLOCK = 64 * 1024
KEEPALIVE = b": keep-alive\n\n"
MAX_BODY = 256 * 1024
# How long the server's side of a stream gets to react (a finally to run, a count to settle).
PROMPTLY = 5.0


@pytest.fixture(scope="module")
def server(binary: Path, io_threads: str) -> Iterator[Server]:
    """One server for the module, with a short SSE keep-alive and a small body limit."""
    args = [
        *("--app", APP, "--host", "127.0.0.1", "--port", "0", "--io-threads", io_threads),
        *("--sse-keepalive", "0.2", "--max-body-size", str(MAX_BODY)),
    ]
    server = Server(binary, args, None, APPS).started()
    yield server
    assert server.stop() == 0, server.output
    assert "panicked" not in server.output, f"the server panicked:\n{server.output}"


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def fresh_key() -> str:
    return uuid.uuid4().hex[:12]


def state(server: Server) -> dict[str, Any]:
    reply = requests.get(url(server, "/state"), timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    return reply.json()


def until_state(
    server: Server, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = PROMPTLY
) -> dict[str, Any]:
    """Polls /state until `check` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        current = state(server)
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout} s: {current}\n{server.output[-3000:]}")
        time.sleep(0.02)


def count(current: dict[str, Any], kind: str, key: str) -> int:
    return current[kind].get(key, 0)


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{server.process.pid}/status has no VmRSS")


class Stream:
    """One request on a socket of our own, its response read with http.client (which decodes
    the chunked body) as slowly as the test likes."""

    def __init__(
        self,
        server: Server,
        path: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        receive_buffer: int | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", server.port))
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.response = http.client.HTTPResponse(self.sock, method=method)
        self.response.begin()

    def read_some(self) -> bytes:
        """What arrives next (at most the rest of one chunk); fails if nothing does in time."""
        data = self.response.read1(1 << 20)
        assert data, "the body ended"
        return data

    def read_until(self, wanted: Callable[[bytes], bool]) -> bytes:
        data = b""
        while not wanted(data):
            data += self.read_some()
        return data

    def read_exactly(self, expected: bytes) -> None:
        data = self.read_until(lambda data: len(data) >= len(expected))
        assert data == expected

    def rest(self) -> bytes:
        """The rest of the body, to its end; http.client raises IncompleteRead if it is cut off."""
        return self.response.read()

    def hang_up(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.close()

    def close(self) -> None:
        self.response.close()
        self.sock.close()


def sse_events(text: str) -> list[dict[str, str]]:
    """The events of an event stream (comments left out), each as its fields."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if fields:
            events.append(fields)
    return events


# -- chunks as they are produced --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_each_chunk_reaches_the_client_as_it_is_produced(server, kind):
    key = fresh_key()
    stream = Stream(server, f"/{kind}-release?key={key}")
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("transfer-encoding") == "chunked"
        assert stream.response.getheader("content-type", "").startswith("text/plain")
        # The generator now waits for /release, which only the test sends: the first chunk is
        # here before the generator has gone on.
        stream.read_exactly(b"first\n")
        assert count(state(server), "closed", key) == 0
        assert requests.post(url(server, f"/release?key={key}"), timeout=TIMEOUT).text == "released"
        assert stream.rest() == b"second\nthird\n"
    finally:
        stream.close()
    until_state(server, lambda s: count(s, "closed", key) == 1, "the generator closed")


# -- backpressure ------------------------------------------------------------------------------


def test_a_client_that_does_not_read_holds_the_generator_not_the_servers_memory(server):
    key, total = fresh_key(), 1024  # 64 MiB in all
    send_buffer_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    bound = (send_buffer_max + 2 * 1024 * 1024) // BLOCK
    assert bound < total // 4, "the kernel's socket buffers would hide an unbounded buffer"
    # Warm up: one whole stream read, so the RSS before counts what any stream costs.
    warm = Stream(server, f"/flood?key={fresh_key()}&total=64")
    assert len(warm.rest()) == 64 * BLOCK
    warm.close()
    before = rss_kib(server)

    stream = Stream(server, f"/flood?key={key}&total={total}", receive_buffer=64 * 1024)
    try:
        # The generator stalls: its count is the same over several polls.
        last, same_since = -1, time.monotonic()
        deadline = time.monotonic() + PROMPTLY
        while True:
            now = count(state(server), "produced", key)
            if now != last:
                last, same_since = now, time.monotonic()
            elif now > 0 and time.monotonic() - same_since >= 0.5:
                break
            assert time.monotonic() < deadline, f"the generator did not stall: {now} blocks produced"
            time.sleep(0.05)
        # The server's socket send buffer (the kernel grows it up to tcp_wmem's maximum, 4 MiB by
        # default), the client's 64 KiB receive buffer, hyper's write buffer and the 64 KiB queue.
        assert last < bound, f"{last} blocks of 64 KiB produced for a client that reads nothing"
        grown = rss_kib(server) - before
        assert grown < 24 * 1024, f"the server's RSS grew by {grown} KiB while the client did not read"

        body = stream.rest()
    finally:
        stream.close()
    assert len(body) == total * BLOCK
    assert body == b"".join(struct.pack(">I", index) * (BLOCK // 4) for index in range(total))
    current = until_state(server, lambda s: count(s, "closed", key) == 1, "the generator closed")
    assert count(current, "produced", key) == total


# -- the client goes away ----------------------------------------------------------------------


@pytest.mark.parametrize("route", ["async-hang", "sync-ticks"])
def test_a_client_going_away_stops_the_generator(server, route):
    key = fresh_key()
    stream = Stream(server, f"/{route}?key={key}")
    stream.read_until(lambda data: data.startswith(b"ready\n"))
    assert count(state(server), "closed", key) == 0
    stream.hang_up()
    until_state(server, lambda s: count(s, "closed", key) == 1, "the generator's finally run")
    assert server.count(f"generator {key} finally ran") == 1
    # Still serving, streams too.
    reply = requests.get(url(server, "/events"), timeout=TIMEOUT)
    assert [event["id"] for event in sse_events(reply.text)] == ["1", "2", "3"]


# -- keep-alive --------------------------------------------------------------------------------


def test_an_idle_event_stream_gets_keepalive_comments_and_a_byte_stream_does_not(server):
    events_key, bytes_key = fresh_key(), fresh_key()
    plain = Stream(server, f"/idle?key={bytes_key}&type=application/octet-stream")
    events = Stream(server, f"/idle?key={events_key}")
    try:
        assert plain.response.getheader("content-type") == "application/octet-stream"
        assert events.response.getheader("content-type") == "text/event-stream"
        assert events.response.getheader("cache-control") == "no-cache, no-store, must-revalidate"
        plain.read_exactly(b"start\n")
        # Two keep-alives 0.2 s apart: both streams have been idle for longer than that.
        got = events.read_until(lambda data: data.count(KEEPALIVE) >= 2)
        assert got.startswith(b"data: start\n\n")
        assert got[len(b"data: start\n\n") :] == KEEPALIVE * got.count(KEEPALIVE)
        for key in (events_key, bytes_key):
            requests.post(url(server, f"/release?key={key}"), timeout=TIMEOUT)
        # The byte stream got nothing but what the app sent.
        assert plain.rest() == b"end\n"
        assert events.rest().replace(KEEPALIVE, b"") == b"data: end\n\n"
    finally:
        plain.close()
        events.close()


# -- Last-Event-ID -----------------------------------------------------------------------------


def test_the_handler_sees_last_event_id_and_resumes_after_it(server):
    fresh = requests.get(url(server, "/events"), timeout=TIMEOUT)
    assert fresh.headers["content-type"] == "text/event-stream"
    assert [(e["id"], e["event"], e["data"]) for e in sse_events(fresh.text)] == [
        ("1", "count", "event 1 (last seen None)"),
        ("2", "count", "event 2 (last seen None)"),
        ("3", "count", "event 3 (last seen None)"),
    ]
    resumed = requests.get(url(server, "/events"), headers={"Last-Event-ID": "41"}, timeout=TIMEOUT)
    assert [(e["id"], e["data"]) for e in sse_events(resumed.text)] == [
        ("42", "event 42 (last seen 41)"),
        ("43", "event 43 (last seen 41)"),
        ("44", "event 44 (last seen 41)"),
    ]


# -- one coroutine feeds SSE and WebSocket clients ---------------------------------------------


async def test_one_background_coroutine_feeds_sse_and_websocket_clients_alike(server):
    ticks = 20
    async with server.connect("/ticks") as ws:
        stream = await asyncio.to_thread(Stream, server, "/tick-stream")
        try:
            await asyncio.to_thread(stream.read_until, lambda data: b": subscribed\n\n" in data)
            await asyncio.to_thread(
                until_state,
                server,
                lambda s: s["subscribers"] == 1 and s["ws_clients"] == 1,
                "one subscriber of each kind",
            )
            reply = await asyncio.to_thread(requests.post, url(server, f"/tick?count={ticks}"), timeout=TIMEOUT)
            assert reply.text == "ok"
            by_websocket = [await receive(ws) for _ in range(ticks)]
            text = await asyncio.to_thread(
                stream.read_until, lambda data: data.endswith(b"\n\n") and len(sse_events(data.decode())) >= ticks
            )
        finally:
            stream.close()
    by_sse = [event["data"] for event in sse_events(text.decode())]
    assert by_sse == by_websocket
    numbers = [int(tick.split()[1]) for tick in by_sse]
    assert numbers == list(range(numbers[0], numbers[0] + ticks))
    await asyncio.to_thread(until_state, server, lambda s: s["subscribers"] == 0, "the subscriber gone")


# -- failures midway ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "logged"),
    [
        ("/raise", "RuntimeError: async stream boom midway"),
        ("/sync-raise", "ValueError: sync stream boom midway"),
        ("/yield-int", "generator yielded int: yield str or bytes"),
    ],
)
def test_a_generator_failing_midway_cuts_the_body_off_and_is_logged(server, route, logged):
    key = fresh_key()
    before = server.count(logged)
    reply = requests.get(url(server, f"{route}?key={key}"), stream=True, timeout=TIMEOUT)
    assert reply.status_code == 200
    chunks = reply.iter_content(None)
    assert next(chunks) == b"partial\n"
    requests.post(url(server, f"/release?key={key}"), timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        rest = b"".join(chunks)
        raise AssertionError(f"the body ended as if complete, after {rest!r}")
    server.wait_for(logged, count=before + 1)
    server.wait_for(f"the stream failed for request GET {route}", count=1)
    if route != "/yield-int":
        assert "Traceback" in server.output
    # Serving on, streams too.
    assert requests.get(url(server, "/events"), timeout=TIMEOUT).status_code == 200


def test_a_cut_off_body_has_no_last_chunk_on_the_wire(server):
    key = fresh_key()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET /sync-raise?key={key} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        data = b""
        while b"partial\n" not in data:
            data += sock.recv(65536)
        requests.post(url(server, f"/release?key={key}"), timeout=TIMEOUT)
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\n8\r\npartial\n\r\n"), data
    assert not data.endswith(b"0\r\n\r\n")


def test_a_generator_failing_right_after_its_first_chunk_still_sends_the_head_and_chunk(server):
    """The stream's queue keeps what the app sent before it failed, to go out before the body
    is cut off; so should a failure on the same turn of the loop as the first chunk."""
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(f"GET /raise-at-once HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 "), data
        assert data.endswith(b"\r\n\r\n8\r\npartial\n\r\n"), data


# -- shutdown ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        "async-hang",
        "sync-ticks",
    ],
)
def test_shutdown_ends_an_open_stream_completely_and_runs_its_finally(start_server, route):
    server = start_server(APP, "--shutdown-timeout", "3")
    stream = Stream(server, f"/{route}?key=shut")
    try:
        stream.read_until(lambda data: data.startswith(b"ready\n"))
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        # The body's end arrives: a complete response, not a reset (IncompleteRead otherwise).
        assert set(stream.rest()) <= {ord(".")}
    finally:
        stream.close()
    # stop() only waits (the signal was sent), then reads the output to its end.
    assert server.stop(timeout=10) == 0, server.output
    assert time.monotonic() - began < 3, "the server waited out --shutdown-timeout"
    assert server.count("generator shut finally ran") == 1, server.output


# -- HEAD --------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["async-hang", "sync-ticks"])
def test_head_on_a_streaming_route_leaves_no_generator_running(server, route):
    key = fresh_key()
    reply = requests.head(url(server, f"/{route}?key={key}"), timeout=TIMEOUT)
    assert reply.status_code == 200
    assert reply.content == b""
    current = until_state(
        server,
        lambda s: count(s, "started", key) == 1 and count(s, "closed", key) == 1,
        "the generator started and closed",
    )
    assert current["started"][key] == 1


# -- multipart ---------------------------------------------------------------------------------


def test_a_multipart_upload_comes_apart_into_files_and_fields(server):
    payload = bytes(range(256)) * 16 + b"\r\n--not-the-boundary\r\n" + b"\x00" * 100
    reply = requests.post(
        url(server, "/upload"),
        files={"upload": ("data.bin", payload, "application/octet-stream"), "other": ("b.txt", b"text file")},
        data={"title": "héllo wörld", "n": "1"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 200, reply.text
    seen = reply.json()
    assert seen["files"] == {"data.bin": payload.hex(), "b.txt": b"text file".hex()}
    assert seen["form"] == {"title": "héllo wörld", "n": "1"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # Cut short: no closing boundary.
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhel',
        ),
        # The body's boundary is not the one the header names.
        (
            "multipart/form-data; boundary=XyZ",
            b'--Other\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n--Other--\r\n',
        ),
        # No boundary at all.
        ("multipart/form-data", b"--XyZ--\r\n"),
    ],
)
def test_a_malformed_multipart_body_is_a_400_and_the_server_serves_on(server, content_type, body):
    reply = requests.post(url(server, "/upload"), data=body, headers={"Content-Type": content_type}, timeout=TIMEOUT)
    assert reply.status_code == 400
    assert "malformed" in reply.text
    assert requests.post(url(server, "/upload"), files={"f": ("f.bin", b"ok")}, timeout=TIMEOUT).json() == {
        "files": {"f.bin": b"ok".hex()},
        "form": {},
    }


def test_a_multipart_body_over_max_body_size_is_a_413(server):
    boundary = "XyZ"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n'.encode()
        + b"x" * (MAX_BODY + 1)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(part)}\r\n\r\n"
        )
        # The head and the body's start: the length alone is enough to refuse it.
        sock.sendall(head.encode() + part[:4096])
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert response.status == 413
        assert "--max-body-size" in response.read().decode()
    assert requests.post(url(server, "/upload"), data={"a": "b"}, files={"f": ("f", b"")}, timeout=TIMEOUT).ok


async def test_the_websocket_side_still_serves(server):
    await still_serves(server)
