"""What an operator and an app's author see: the per-connection access line, the client's
address through a trusted proxy, the log level in any case, and the one-line warnings for
mistakes an app can make."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request

from conftest import messages_until_close, receive, run_to_exit

APP = "reach"


async def test_the_access_line_says_who_what_how_it_ended_and_how_much(start_server):
    server = start_server(APP, "--access-log")
    async with server.connect("/graphql", subprotocols=["graphql-ws"]) as ws:
        assert await receive(ws) == "speaking graphql-ws"
    (line,) = await server.until(
        r"access: 127\.0\.0\.1:\d+ /graphql subprotocol=graphql-ws closed (\d+) after [0-9.]+ s, (\d+) in, (\d+) out"
    )
    assert line.groups() == ("1000", "0", "1")


async def test_without_the_flag_the_access_line_is_at_debug_after_the_opening(start_server):
    quiet = start_server(APP)
    async with quiet.connect("/graphql"):
        pass
    loud = start_server(APP, "--log-level", "DEBUG")
    async with loud.connect("/graphql"):
        await loud.until(r"DEBUG robyn_ws_server::access: 127\.0\.0\.1:\d+ /graphql opened$")
    await loud.until(r"DEBUG robyn_ws_server::access: .* /graphql subprotocol=- closed ")
    assert quiet.count("robyn_ws_server::access") == 0


async def test_a_trusted_proxy_names_the_client(start_server):
    forwarded = {"X-Forwarded-For": "203.0.113.9, 10.0.0.2", "X-Forwarded-Proto": "https"}
    trusting = start_server(APP, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8")
    async with trusting.connect("/whoami", additional_headers=forwarded) as ws:
        seen = json.loads(await receive(ws))
    assert seen["client"] == ["203.0.113.9", 0]
    assert seen["url"][0] == "wss"
    # Without --proxy-headers (or from a peer that is not a trusted proxy) the headers are
    # only headers.
    plain = start_server(APP)
    async with plain.connect("/whoami", additional_headers=forwarded) as ws:
        seen = json.loads(await receive(ws))
    assert seen["client"][0] == "127.0.0.1"
    assert seen["url"][0] == "ws"


async def test_a_handler_that_is_not_async_or_returns_a_value_is_named_once(start_server):
    server = start_server("noisy")
    await server.until(r"the handler of /sync \(\S+noisy\.py:\d+\) is not async")
    async with server.connect("/returns") as ws:
        assert await messages_until_close(ws) == ["sent"]
    async with server.connect("/returns") as ws:
        await messages_until_close(ws)
    await server.until(r"the handler of /returns \(\S+noisy\.py:\d+\) returned \{'not': 'sent'\}, which is not sent")
    assert server.count("returned {'not': 'sent'}") == 1, "once per route"
    async with server.connect("/echo") as ws:
        await ws.send("the others still work")
        assert await receive(ws) == "the others still work"


def test_robyns_older_websocket_api_gets_one_line_saying_what_to_write(binary):
    result = run_to_exit(binary, "--app", "startup.old_api", "--port", "0")
    assert result.returncode == 1
    assert re.search(
        r"error: running 'startup.old_api' raised TypeError: WebSocket\(app, path\) is Robyn's older WebSocket API, "
        r"which this server does not serve: write `@app.websocket\(\"/path\"\)`",
        result.stderr,
    ), result.stderr


def test_the_log_level_is_read_in_any_case(binary):
    result = run_to_exit(binary, "--help")
    assert "--log-level" in result.stdout
    for level in ("WARN", "Debug", "info"):
        result = run_to_exit(binary, "--app", "startup.no_app", "--log-level", level, "--port", "0")
        assert "invalid value" not in result.stderr, result.stderr
        assert "defines no Robyn app" in result.stderr


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers.get("content-type", "")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("content-type", "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_main_port_keeps_metrics_to_itself_unless_asked(start_server):
    server = start_server(APP)
    assert probe(server.port, "/health")[0] == 200
    assert probe(server.port, "/ready")[0] == 200
    assert probe(server.port, "/metrics")[0] == 404
    exposed = start_server(APP, "--expose-metrics")
    status, content_type = probe(exposed.port, "/metrics")
    assert (status, content_type.split(";")[0]) == (200, "application/openmetrics-text")


async def test_a_metrics_port_takes_every_probe_off_the_main_port(start_server):
    port = free_port()
    server = start_server(APP, "--metrics-port", str(port))
    for path in ("/health", "/ready", "/metrics"):
        assert probe(server.port, path)[0] == 404
        assert probe(port, path)[0] == 200


def test_expose_metrics_beside_a_metrics_port_is_a_usage_error(binary):
    result = run_to_exit(binary, "--app", APP, "--metrics-port", "0", "--expose-metrics")
    assert result.returncode == 2
    assert "--expose-metrics" in result.stderr and "--metrics-port" in result.stderr
