"""The benchmark's smoke run: `bench/run.py --smoke` (peers installed into .bench/venv, tiny
loads, one round) must measure every figure on every server. Speed is never asserted here;
only that the benchmark still runs from a clean checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVERS = [
    "robyn-ws-server",
    "robyn-ws-server --io-threads 1",
    "Robyn 0.88.0",
    "Starlette/uvicorn",
    "Starlette/granian",
    "socketify.py",
    "picows raw",
]
LOADS = ["echo", "echo_in_flight_10", "fanout"]
FIGURES = [*LOADS, "p50_us", "p99_us", "p50_us_two_cores", "idle_kib_per_connection"]
# CPU use over what each load measured. A smoke fan-out lasts a few ms, less than the
# scheduler tick to which a running thread's CPU time is counted: these may be 0, never missing.
CPU_FIGURES = [
    f"{load}_{figure}" for load in LOADS for figure in ("server_us_per_message", "server_cores", "generator_cores")
]
# The HTTP loads (bench/http_loads.py), on their own list of servers; a smoke run measures
# latency on one connection, and wrk's ceiling, on the JSON GET only.
HTTP_SERVERS = [
    "robyn-ws-server",
    "robyn-ws-server --processes 2",
    "Robyn 0.88.0",
    "Robyn 0.88.0 --fast",
    "Starlette/uvicorn",
    "Starlette/granian",
    "socketify.py",
]
HTTP_LOADS = ["plaintext", "json", "echo", "middleware"]
HTTP_FIGURES = [
    f"{load}{figure}"
    for load in HTTP_LOADS
    for figure in ("", "_server_us_per_request", "_server_cores", "_generator_cores")
] + [f"json_{figure}" for figure in ("p50_us", "p99_us", "p50_us_unpinned", "p99_us_unpinned")]
# The server-sent events load (bench/sse_loads.py), on its own list of servers.
SSE_SERVERS = ["robyn-ws-server", "Robyn 0.88.0", "Starlette/uvicorn", "Starlette/granian"]
SSE_FIGURES = ["sse", "sse_server_us_per_event", "sse_server_cores", "sse_generator_cores"]

# The TLS part (bench/tls_loads.py): ours, uvicorn and granian over TLS with one certificate,
# and ours over plain TCP too (the cost of TLS); a smoke run leaves out ours with `--io-threads 1`.
TLS_SERVERS = ["robyn-ws-server", "Starlette/uvicorn", "Starlette/granian"]
TLS_PLAIN = ["robyn-ws-server (plain)"]
TLS_FIGURES = ["echo", "echo_in_flight_10", "get"]
TLS_CPU_FIGURES = ["echo_server_us_per_message", "echo_in_flight_10_server_us_per_message", "get_server_us_per_request"]


@pytest.mark.bench
def test_the_benchmark_measures_every_figure_on_every_server(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["medians"]) == SERVERS
    for server in SERVERS:
        medians = results["medians"][server]
        missing = [figure for figure in FIGURES if not medians.get(figure)]
        assert not missing, f"{server}: no figure for {missing}"
        unmeasured = [figure for figure in CPU_FIGURES if medians.get(figure) is None]
        assert not unmeasured, f"{server}: no CPU figure for {unmeasured}"
        assert medians["held"] == results["scale"]["held_connections"], f"{server} did not hold every connection"
    assert list(results["peers"]) == SERVERS, "the report must say how each server ran"
    assert set(results["generator_ceiling"]) == set(LOADS), "the generator's ceiling must be measured for every load"
    report = (tmp_path / "results.md").read_text()
    assert "| echo, 50 connections (msg/s) | " in report
    assert "| echo, 50 connections: server CPU per message (µs) | " in report
    assert (tmp_path / "chart.png").stat().st_size > 10_000
    # The scale-out part: every setup measured, every latency placed where it should be.
    scaleout = json.loads((tmp_path / "scaleout.json").read_text())
    (measured,) = scaleout["rounds"]
    assert set(measured) == {"1 process", "--processes 2", "1 instance + Redis", "2 instances + Redis"}
    for setup, figures in measured.items():
        assert figures.get("fanout"), f"{setup}: no fan-out figure"
    for setup in ("1 process", "--processes 2"):
        assert measured[setup].get("echo"), f"{setup}: no echo figure"
    for setup, relay in [
        ("1 process", "relay_same"),
        ("--processes 2", "relay_same"),
        ("--processes 2", "relay_other"),
        ("2 instances + Redis", "relay_other"),
    ]:
        assert measured[setup][relay]["p50_us"], f"{setup}: no {relay} latency"
    assert "| another node (2 instances, through Redis) | " in (tmp_path / "scaleout.md").read_text()
    # The presence part: every figure in every setup.
    presence = json.loads((tmp_path / "presence.json").read_text())
    (measured,) = presence["rounds"]
    assert set(measured) == {"1 process", "--processes 2", "2 instances + Redis"}
    for setup, figures in measured.items():
        for relay in ("send_to_user", "broadcast"):
            assert figures[relay]["p50_us"], f"{setup}: no {relay} latency"
        assert figures["presence_users"] == 50, f"{setup}: presence() did not list every user"
        assert figures["presence_query_p50_us"], f"{setup}: no presence query figure"
        for route in ("plain", "history", "history, offset in the message"):
            for publishers in ("", ", 10 publishers"):
                assert figures[f"fanout {route}{publishers}"]["fanout"], f"{setup}: no fan-out to {route}{publishers}"
    assert "| fan-out, history, one publisher, against plain | " in (tmp_path / "presence.md").read_text()
    # The HTTP part: every figure on every server, checked answers first.
    http = results["http"]
    assert list(http["rounds"]) == HTTP_SERVERS
    assert list(http["settings"]) == HTTP_SERVERS, "the report must say how each server ran the HTTP loads"
    for server in HTTP_SERVERS:
        why = http["missing"].get(server, "")
        if server.startswith("robyn-ws-server") and "serves its WebSocket routes only" in why:
            # A server built before it served HTTP routes answers them 404, naming them.
            continue
        assert server not in http["missing"], f"{server}: {http['missing'].get(server)}"
        medians = http["medians"][server]
        missing = [figure for figure in HTTP_FIGURES if not medians.get(figure)]
        assert not missing, f"{server}: no HTTP figure for {missing}"
    assert set(http["generator_ceiling"]) == {"json"}, "wrk's ceiling must be measured"
    assert "| JSON GET with a path parameter: 50 connections (req/s) | " in report
    # The server-sent events part: every server's streams checked and counted.
    sse = results["sse"]
    assert list(sse["rounds"]) == SSE_SERVERS
    assert list(sse["settings"]) == SSE_SERVERS, "the report must say how each server ran the SSE load"
    for server in SSE_SERVERS:
        assert server not in sse["missing"], f"{server}: {sse['missing'].get(server)}"
        medians = sse["medians"][server]
        missing = [figure for figure in SSE_FIGURES if not medians.get(figure)]
        assert not missing, f"{server}: no SSE figure for {missing}"
    assert "subscribers: events delivered (deliveries/s) | " in report
    # The TLS part: every figure on every server, and every server's handshakes negotiated alike
    # with each generator.
    tls = results["tls"]
    assert list(tls["rounds"]) == TLS_SERVERS + TLS_PLAIN
    assert list(tls["settings"]) == TLS_SERVERS, "the report must say how each server ran over TLS"
    for server in TLS_SERVERS + TLS_PLAIN:
        assert server not in tls["missing"], f"{server}: {tls['missing'].get(server)}"
        medians = tls["medians"][server]
        missing = [figure for figure in TLS_FIGURES if not medians.get(figure)]
        assert not missing, f"{server}: no TLS-part figure for {missing}"
        unmeasured = [figure for figure in TLS_CPU_FIGURES if medians.get(figure) is None]
        assert not unmeasured, f"{server}: no CPU figure for {unmeasured}"
    for key in ("echo_negotiated", "echo_in_flight_10_negotiated", "get_negotiated"):
        negotiated = {measured.get(key) for server in TLS_SERVERS for measured in tls["rounds"][server]}
        assert len(negotiated) == 1, f"the servers negotiated differently ({key}): {negotiated}"
        assert str(next(iter(negotiated))).startswith("TLS 1.3"), f"{key}: {negotiated}"
    tls_report = (tmp_path / "tls.md").read_text()
    assert "| wss:// echo, 50 connections (msg/s) | " in tls_report
    assert "| HTTPS GET /plaintext, 50 connections (req/s) | " in tls_report
    assert "| the cost of TLS | " in tls_report
