"""The app's HTTP routes, served beside its WebSockets: what a client sees of returns,
routing, HTTP/1.1 (keep-alive, pipelining, chunked bodies, 100-continue, HEAD), the limits,
the app's served folders, and that a slow sync handler holds up nobody else."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket

import pytest
from conftest import receive

APP = "http_app"


def exchange(port: int, request: bytes, *, until_closed: bool = True, timeout: float = 5.0) -> bytes:
    """Sends raw bytes; returns what came back until the server closed the connection (or, with
    `until_closed` false, until it went quiet)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except TimeoutError:
            if until_closed:
                raise
    return data


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response, payload


def test_the_apps_routes_answer_with_what_they_return(module_server):
    response, body = request(module_server.port, "GET", "/")
    assert (response.status, body) == (200, b"<h1>chat</h1>")
    response, body = request(module_server.port, "GET", "/items/42?q=x")
    assert response.status == 200
    assert "application/json" in response.getheader("content-type")
    assert json.loads(body) == {"id": "42", "q": "x"}
    response, body = request(module_server.port, "GET", "/sync")
    assert (response.status, body) == (200, b"sync")


def test_an_apps_route_wins_over_the_servers_own_health_probe(module_server):
    response, body = request(module_server.port, "GET", "/health")
    assert json.loads(body) == {"status": "app's own"}
    # /ready is not the app's: the server's probe answers it.
    response, body = request(module_server.port, "GET", "/ready")
    assert (response.status, body) == (200, b"ready\n")


async def test_start_up_says_where_the_health_probe_went(module_server):
    (line,) = await module_server.until(r"/health answered by the app's own route")
    assert "--metrics-port" in line.string


def test_a_trailing_slash_routes_as_without_it(module_server):
    response, body = request(module_server.port, "GET", "/sync/")
    assert (response.status, body) == (200, b"sync")


def test_no_route_is_404_and_an_unknown_method_405(module_server):
    response, body = request(module_server.port, "GET", "/nowhere")
    assert (response.status, body) == (404, b"Not found")
    assert response.getheader("content-type").startswith("text/plain")
    response, _ = request(module_server.port, "PUT", "/sync")
    assert response.status == 404
    response, _ = request(module_server.port, "NONSTANDARD", "/sync")
    assert response.status == 405


def test_head_answers_the_get_route_without_a_body(module_server):
    response, body = request(module_server.port, "HEAD", "/sync")
    assert response.status == 200
    assert body == b""
    assert response.getheader("content-length") == "4"


def test_a_handler_that_raises_is_a_500_and_the_log_names_the_route(module_server):
    response, _ = request(module_server.port, "GET", "/raise")
    assert response.status == 500
    module_server.wait_for(r"/raise")
    assert request(module_server.port, "GET", "/sync")[1] == b"sync"


def test_a_const_route_runs_once(module_server):
    bodies = {request(module_server.port, "GET", "/counted")[1] for _ in range(3)}
    assert bodies == {b"call 1"}


def test_keep_alive_and_pipelined_requests_are_answered_in_order(module_server):
    pipelined = (
        b"".join(f"GET /items/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in range(5))
        + b"GET /sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    data = exchange(module_server.port, pipelined)
    assert data.count(b"HTTP/1.1 200") == 6
    positions = [data.index(f'"id":"{n}"'.encode()) for n in range(5)]
    assert positions == sorted(positions)
    assert data.endswith(b"sync")


def test_a_chunked_body_arrives_whole(module_server):
    chunked = (
        b"POST /echo_body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    data = exchange(module_server.port, chunked)
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"\r\n\r\nhello world")


def test_expect_100_continue_gets_its_go_ahead(module_server):
    with socket.create_connection(("127.0.0.1", module_server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo_body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"abc")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b"abc")


def test_a_body_over_the_limit_is_413_and_the_server_serves_on(start_server):
    server = start_server(APP, "--max-body-size", "1KiB")
    declared = b"POST /echo_body HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    assert exchange(server.port, declared).startswith(b"HTTP/1.1 413")
    chunked = (
        b"POST /echo_body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"400\r\n" + b"y" * 1024 + b"\r\n") * 3
        + b"0\r\n\r\n"
    )
    assert exchange(server.port, chunked).startswith(b"HTTP/1.1 413")
    response, body = request(server.port, "POST", "/echo_body", body=b"z" * 1024)
    assert (response.status, body) == (200, b"z" * 1024)


def test_two_different_lengths_are_400(module_server):
    lengths = b"POST /echo_body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    assert exchange(module_server.port, lengths).startswith(b"HTTP/1.1 400")
    assert request(module_server.port, "GET", "/sync")[1] == b"sync"


def test_a_request_hidden_behind_a_length_and_chunked_body_is_never_served(module_server):
    # CL.TE smuggling: a proxy that trusts Content-Length forwards the whole of it; read as
    # chunked it ends early, and the rest would be a second request. The server reads the body
    # as chunked (RFC 9112 section 6.3), answers, and closes: the rest is never read.
    smuggled = b"GET /sync HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    head = f"POST /echo_body HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = exchange(module_server.port, head.encode() + body)
    assert data.count(b"HTTP/1.1 ") == 1
    assert data.startswith(b"HTTP/1.1 200")
    assert b"sync" not in data


def test_too_many_headers_are_431(module_server):
    headers = b"".join(f"X-H{n}: v\r\n".encode() for n in range(150))
    data = exchange(module_server.port, b"GET /sync HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert data.startswith(b"HTTP/1.1 431")


def test_a_served_folder_gives_its_files_and_index(module_server):
    response, body = request(module_server.port, "GET", "/files/hello.txt")
    assert (response.status, body) == (200, b"hello file\n")
    assert response.getheader("content-type").startswith("text/plain")
    response, body = request(module_server.port, "GET", "/files/sub")
    assert (response.status, body) == (200, b"<p>sub index</p>\n")


@pytest.mark.parametrize(
    "path",
    [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/sub/..%2f..%2fsecret.txt",
        "/files/..%5csecret.txt",
        "/files/%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/leak.txt",
    ],
)
def test_nothing_outside_a_served_folder_is_reachable(module_server, path):
    data = exchange(module_server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert data.startswith(b"HTTP/1.1 404"), data[:200]
    assert b"top secret" not in data


async def test_a_blocked_sync_handler_does_not_hold_up_a_websocket_echo(module_server):
    slow = asyncio.create_task(asyncio.to_thread(request, module_server.port, "GET", "/slow"))
    await module_server.until("the slow handler is waiting")
    # Were the handler on the event loop, this echo would wait for it (and time out).
    async with module_server.connect("/echo") as ws:
        await ws.send("quick")
        assert await receive(ws) == "quick"
    assert not slow.done()
    assert (await asyncio.to_thread(request, module_server.port, "GET", "/release"))[1] == b"released"
    _, body = await slow
    assert body == b"slow done"


def test_an_idle_keep_alive_connection_is_closed_after_the_handshake_timeout(start_server):
    server = start_server(APP, "--handshake-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /sync HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"sync"):
            data += sock.recv(65536)
        # Kept alive, then closed by the server (EOF), well before the client's own timeout.
        assert sock.recv(65536) == b""
    assert request(server.port, "GET", "/sync")[1] == b"sync"


async def test_an_answer_later_than_the_request_timeout_is_a_503(start_server):
    server = start_server(APP, "--request-timeout", "0.5")
    response, body = await asyncio.to_thread(request, server.port, "GET", "/slow")
    assert response.status == 503
    assert body == b"the app did not answer in time\n"
    await server.until(r"GET /slow did not answer within --request-timeout")
    assert (await asyncio.to_thread(request, server.port, "GET", "/release"))[1] == b"released"
