"""The server-sent events part of `just bench`: 1,000 subscribers of one event stream that a
loop in the app feeds, on our server and its peers, rounds interleaved across servers as the
other parts' are. bench/run.py runs it after the HTTP loads (or alone: `--part sse`) and puts
what it measured into results.json (under "sse"), which bench/report.py renders as results.md's
server-sent events section and README's table.

The apps: bench/apps/robyn_sse_app.py (Robyn's API: an `SSEResponse` over an async generator
yielding `SSEMessage`s) for ours and Robyn, bench/apps/starlette_sse_app.py (sse-starlette's
`EventSourceResponse`) for uvicorn and granian; both keep a bounded queue per subscriber and a
feeder task that puts each event (`{"seq": n, "pad": ...}`) into every queue, at most a few
events ahead of the subscriber furthest along. The generator is bench/sse_client.py (Python,
uvloop, raw protocols), which checks every stream and counts the events it parses.

Each round, on a fresh server: every subscriber connects and gets its first events (each one's
first 20 checked by a full parser), then a warm-up, then the measured span: events the clients
parsed per second, the server's CPU per event delivered (its processes' CPU time, every thread,
over the span, divided by the events the clients parsed in it), and the cores each side used.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict

import report
from report import OURS
from rounds import interleaved
from run import (
    ROOT,
    SERVER,
    VENV,
    Generated,
    Peer,
    Running,
    Scale,
    generate_against,
    process_tree,
)

CLIENT = ROOT / "bench" / "sse_client.py"
ROBYN_APP = "bench/apps/robyn_sse_app.py"
STARLETTE_APP = "bench.apps.starlette_sse_app:app"
# The settings the HTTP part runs these two with (bench/http_loads.py): uvicorn's documented
# fast setup named, granian with the flags of its own benchmarks (but --no-ws, which is for
# WebSocket-free apps and changes nothing here).
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
GRANIAN_FLAGS = ["--http", "1", "--loop", "uvloop", "--log-level", "warning", "--backlog", "2048"]
# The CPU figure that must settle (report.unsettled) before a run's figures stand.
SETTLING = ["sse_server_us_per_event"]


def peers() -> list[Peer]:
    python = str(VENV / "bin" / "python")
    granian = [str(VENV / "bin" / "granian"), "--interface", "asgi", STARLETTE_APP, "--host", "127.0.0.1"]
    return [
        Peer(OURS, [str(SERVER), "--app", "bench.apps.robyn_sse_app", "--log-level", "warn"], takes_port_flag=True),
        Peer("Robyn 0.88.0", [python, ROBYN_APP, "--log-level", "WARN"]),
        Peer(
            "Starlette/uvicorn",
            [python, "-m", "uvicorn", STARLETTE_APP, "--host", "127.0.0.1", *UVICORN_FLAGS],
            takes_port_flag=True,
        ),
        Peer("Starlette/granian", [*granian, *GRANIAN_FLAGS], takes_port_flag=True),
    ]


def peer_settings() -> dict[str, str]:
    """How each server runs the server-sent events load, for the report. Runs in the benchmark's venv."""
    from importlib.metadata import version

    sse = f"sse-starlette {version('sse-starlette')}'s `EventSourceResponse` at its defaults"
    return {
        OURS: "`robyn-ws-server --app bench.apps.robyn_sse_app --log-level warn`: one process, its defaults",
        "Robyn 0.88.0": "`python robyn_sse_app.py --log-level WARN`: `app.start()` at its defaults, 1 process "
        "with 1 worker; the async generator driven as Robyn drives one (`robyn.responses.AsyncGeneratorWrapper`: "
        "each event fetched from a thread that waits for the handler's event loop)",
        "Starlette/uvicorn": f"Starlette {version('starlette')} with {sse} on uvicorn {version('uvicorn')}, one "
        f"process, as in the HTTP part: `--loop uvloop` (uvloop {version('uvloop')}), `--http httptools` "
        f"(httptools {version('httptools')}), `--no-access-log --log-level warning`",
        "Starlette/granian": f"the same Starlette app on granian {version('granian')} with the flags of its own "
        "benchmarks, as in the HTTP part: `--interface asgi --http 1 --loop uvloop --log-level warning --backlog "
        "2048`, 1 worker, 1 runtime thread (runtime mode auto: single-threaded), asyncio task implementation",
    }


def client_args(server: Running, scale: Scale) -> list[str]:
    url = f"http://127.0.0.1:{server.port}/events"
    span = ["--seconds", str(scale.sse_seconds), "--warmup", str(scale.sse_warmup)]
    return [url, "--subscribers", str(scale.sse_subscribers), *span, "--timeout", str(scale.sse_timeout)]


def sse_round(peer: Peer, scale: Scale) -> dict:
    """The load on a fresh server: its figures, or {"missing": why}."""
    os.environ["BENCH_SSE_SUBSCRIBERS"] = str(scale.sse_subscribers)
    try:
        server = Running(peer)
    except RuntimeError as error:
        print(f"  {error}", flush=True)
        return {"missing": str(error)}
    try:
        program = [str(VENV / "bin" / "python"), str(CLIENT)]
        load: Generated = generate_against(
            process_tree(server.process.pid), peer.name, client_args(server, scale), program=program
        )
        measured = load.report
        return {
            "sse": measured["rate"],
            "sse_server_us_per_event": load.server_us_per(measured["deliveries"]),
            "sse_server_cores": load.server_cores(),
            "sse_generator_cores": load.generator_cores(),
            "sse_other_cores": load.other_cores(),
            "sse_lost": measured["lost"],
            "sse_fewest_per_subscriber": measured["fewest_per_subscriber"],
            "sse_most_per_subscriber": measured["most_per_subscriber"],
            "sse_connect_seconds": measured["connect_seconds"],
        }
    except RuntimeError as error:
        why = str(error)
        print(f"  {why}", flush=True)
        return {"missing": why}
    finally:
        server.stop()
        os.environ.pop("BENCH_SSE_SUBSCRIBERS", None)


def measure(chosen_names: list[str] | None, scale: Scale, quiet: bool) -> dict:
    """The load on every chosen server, rounds interleaved, and more rounds (up to
    MOST_EXTRA_ROUNDS) while a server's CPU per event has no two rounds that agree within
    AGREE. Returns what results.json keeps under "sse"."""
    chosen = [peer for peer in peers() if not chosen_names or peer.name in chosen_names]
    rounds = interleaved(
        chosen,
        scale.sse_rounds,
        lambda peer, _index: sse_round(peer, scale),
        SETTLING,
        "SSE ",
        quiet,
        what="CPU per event",
    )
    return {
        "machine": report.machine(),
        "scale": {key: value for key, value in asdict(scale).items() if key.startswith("sse_")},
        "generator": generator_version(),
        "settings": {name: how for name, how in peer_settings().items() if name in rounds},
        "rounds": rounds,
        "unsettled": report.unsettled(rounds, SETTLING),
    }


def generator_version() -> str:
    """The client runs on the benchmark's venv's Python, which runs this too."""
    from importlib.metadata import version

    return f"bench/sse_client.py on Python {sys.version.split()[0]} with uvloop {version('uvloop')}"


if __name__ == "__main__":
    # Quick manual use: `.bench/venv/bin/python bench/sse_loads.py` measures one round at full scale.
    from run import FULL

    started = time.monotonic()
    print(json.dumps(measure(None, FULL, quiet=False)["rounds"], indent=1))
    print(f"{time.monotonic() - started:.0f} s")
