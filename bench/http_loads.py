"""The HTTP part of `just bench`: the same four routes on our server and its peers, loaded by
Debian's `wrk` (one thread), rounds interleaved across servers as the WebSocket part's are.
bench/run.py runs it after the WebSocket loads and puts what it measured into results.json
(under "http"), which bench/report.py renders as results.md's HTTP section.

The routes (bench/apps/robyn_http_app.py for ours and Robyn, starlette_http_app.py for uvicorn
and granian, socketify_http_app.py): `GET /plaintext` answers a short text, `GET /json/:id` a
JSON object holding the path parameter, `POST /echo` the 1 KiB JSON body it was sent, and
`GET /middleware` a text, behind a before middleware that sets a request header and an after
middleware that sets a response header. Each server's answers are checked before it is
loaded; one that answers wrongly (our server before it served HTTP routes: 404) gets no
figures, and the report says why.

Every load (wrk's figures, and CPU read around wrk's run):
- throughput: 50 keep-alive connections, after a warm-up run → requests/s, the server's CPU per
  request (its processes' CPU time, every thread, summed over the process tree for the
  multi-process servers, over wrk's run, divided by the requests answered), and the cores the
  server, wrk and the rest of the machine used meanwhile;
- latency: one connection, one request at a time → p50 and p99, with the server's threads and
  wrk all on core 0 ("one core"), and unpinned; the unpinned run's server CPU per request too
  (the cost of a request with nothing to batch).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import report
from report import OURS, OURS_PROCESSES
from rounds import interleaved
from run import (
    ROOT,
    SERVER,
    VENV,
    Peer,
    Running,
    Scale,
    cpu_seconds,
    machine_busy_seconds,
    process_tree,
    wait_for_quiet,
)

LUA = ROOT / "bench" / "wrk.lua"
BODY = ROOT / "out" / "bench" / "echo-body.json"
ROBYN_APP = "bench/apps/robyn_http_app.py"
STARLETTE_APP = "bench.apps.starlette_http_app:app"
ROBYN_FAST = "Robyn 0.88.0 --fast"
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]

# key, path, whether it posts the 1 KiB body
LOADS = [
    ("plaintext", "/plaintext", False),
    ("json", "/json/12345", False),
    ("echo", "/echo", True),
    ("middleware", "/middleware", False),
]
# The CPU figures that must settle (report.unsettled) before a run's figures stand.
SETTLING = [f"{key}_server_us_per_request" for key, _, _ in LOADS]


def peers() -> list[Peer]:
    python = str(VENV / "bin" / "python")
    ours = [str(SERVER), "--app", "bench.apps.robyn_http_app", "--log-level", "warn"]
    granian = [str(VENV / "bin" / "granian"), "--interface", "asgi", STARLETTE_APP, "--host", "127.0.0.1"]
    return [
        Peer(OURS, ours, takes_port_flag=True),
        Peer(OURS_PROCESSES, [*ours, "--processes", "2"], takes_port_flag=True),
        Peer("Robyn 0.88.0", [python, ROBYN_APP, "--log-level", "WARN"]),
        # Its documented production mode (`--fast`: processes, workers and log level chosen for it).
        Peer(ROBYN_FAST, [python, ROBYN_APP, "--fast"]),
        Peer(
            "Starlette/uvicorn",
            [python, "-m", "uvicorn", STARLETTE_APP, "--host", "127.0.0.1", *UVICORN_FLAGS],
            takes_port_flag=True,
        ),
        # The flags granian's own benchmarks run its ASGI server with (benchmarks/benchmarks.py
        # in its repository: --no-ws, --log-level warning, --backlog 2048, one worker), HTTP/1
        # only (no HTTP/2 detection on each connection) and uvloop named rather than found.
        Peer(
            "Starlette/granian",
            [*granian, "--http", "1", "--no-ws", "--loop", "uvloop", "--log-level", "warning", "--backlog", "2048"],
            takes_port_flag=True,
        ),
        Peer("socketify.py", [python, "bench/apps/socketify_http_app.py"]),
    ]


def peer_settings() -> dict[str, str]:
    """How each server runs the HTTP loads, for the report. Runs in the benchmark's venv."""
    from importlib.metadata import version

    cores = os.cpu_count() or 1
    uvloop = f"uvloop {version('uvloop')}"
    return {
        OURS: "`robyn-ws-server --app bench.apps.robyn_http_app --log-level warn`: one process, its defaults",
        OURS_PROCESSES: "the same with `--processes 2`: two worker processes sharing the port (SO_REUSEPORT) "
        "under a supervisor",
        "Robyn 0.88.0": "`python robyn_http_app.py --log-level WARN`: `app.start()` at its defaults, 1 process "
        "with 1 worker; plain (sync) handlers, which ran faster on Robyn than `async def` ones here",
        ROBYN_FAST: f"`python robyn_http_app.py --fast`, its documented production mode: {2 * cores + 1} "
        "processes (twice the cores, plus one) of 2 workers each, log level WARNING",
        "Starlette/uvicorn": f"Starlette {version('starlette')} on uvicorn {version('uvicorn')}, one process, its "
        f"documented fast setup named: `--loop uvloop` ({uvloop}), `--http httptools` (httptools "
        f"{version('httptools')}), `--no-access-log --log-level warning`; the middlewares pure ASGI ones",
        "Starlette/granian": f"the same Starlette app on granian {version('granian')} with the flags of its own "
        "benchmarks: `--interface asgi --http 1 --no-ws --loop uvloop --log-level warning --backlog 2048`, 1 "
        "worker, 1 runtime thread (runtime mode auto: single-threaded), asyncio task implementation",
        "socketify.py": f"socketify {version('socketify')}, `App()` at its defaults, its own callback API: "
        "the POST body read with `res.on_data` as its upload example does, each response kept in a set until "
        "its body is in (socketify keeps none itself, and one the garbage collector freed aborted the process); "
        "the before and after steps a `socketify.middleware` chain (it has no request headers to set)",
    }


# --- one wrk run -------------------------------------------------------------------------


@dataclass
class Measured:
    """wrk's figures for one run, and the CPU each side used over it."""

    report: dict
    server_cpu_seconds: float
    generator_cpu_seconds: float
    other_cpu_seconds: float
    wall_seconds: float

    def rate(self) -> float:
        return self.report["requests"] / (self.report["duration_us"] / 1e6)

    def server_us_per_request(self) -> float | None:
        requests = self.report["requests"]
        return self.server_cpu_seconds / requests * 1e6 if requests else None


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit("the HTTP loads need Debian's wrk: apt-get install wrk")
    return found


def wrk(server_pids: list[int], url: str, connections: int, seconds: int, post: bool, cores: set[int] | None = None):
    """Runs wrk (one thread) against `url` and reads the CPU time of the server's processes,
    of wrk (its rusage once it has exited) and of the whole machine around the run."""
    command = [wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA), url]
    env = {**os.environ, "BENCH_WRK_BODY": str(BODY) if post else ""}
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    start, server_before, busy_before = time.monotonic(), cpu_seconds(server_pids), machine_busy_seconds()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=pin)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    end, server_after, busy_after = time.monotonic(), cpu_seconds(server_pids), machine_busy_seconds()
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in output.splitlines() if line.startswith("BENCH ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk against {url} failed ({process.returncode}): {output[-500:]}")
    report = json.loads(lines[-1].removeprefix("BENCH "))
    if report["status_errors"] or not report["requests"]:
        raise RuntimeError(f"{url}: {report['status_errors']} of {report['requests']} answers were not 2xx/3xx")
    server = server_after - server_before
    generator = usage.ru_utime + usage.ru_stime
    other = max(0.0, busy_after - busy_before - server - generator)
    return Measured(report, server, generator, other, end - start)


# --- the routes' answers -------------------------------------------------------------------


def echo_body() -> bytes:
    """The 1 KiB JSON object `POST /echo` is sent: a small order, its note padded to 1024 bytes."""
    order: dict = {
        "user": {"id": 12345, "name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"sku": f"SKU-{i:04d}", "qty": i % 5 + 1, "price": round(9.99 + i, 2)} for i in range(12)],
        "note": "",
    }
    order["note"] = "x" * (1024 - len(json.dumps(order, separators=(",", ":"))))
    return json.dumps(order, separators=(",", ":")).encode()


def wrong_answer(port: int) -> str | None:
    """What is wrong with the server's answers on the four routes, or None if nothing is."""
    expected_body = json.loads(BODY.read_bytes())
    checks = [
        ("GET", "/plaintext", None, lambda body, _: body == b"Hello, World!"),
        ("GET", "/json/12345", None, lambda body, _: json.loads(body) == {"id": "12345", "status": "ok"}),
        ("POST", "/echo", BODY.read_bytes(), lambda body, _: json.loads(body) == expected_body),
        ("GET", "/middleware", None, lambda body, headers: body == b"before" and headers.get("x-after") == "after"),
    ]
    for method, path, body, right in checks:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            fine = response.status == 200 and right(answer, {k.lower(): v for k, v in response.getheaders()})
        except (OSError, ValueError, http.client.HTTPException) as error:
            return f"{method} {path}: {error!r}"
        finally:
            connection.close()
        if not fine:
            return f"{method} {path} answered {response.status}: {answer[:120]!r}"
    return None


def settle(server: Running, most: float = 60.0) -> list[int]:
    """Waits until the server's process tree has stopped changing and is idle (Robyn's `--fast`
    and our `--processes` start their workers after the first of them listens; a load started
    earlier would find fewer of them accepting), and returns its pids."""
    deadline = time.monotonic() + most
    tree = process_tree(server.process.pid)
    while time.monotonic() < deadline:
        before = cpu_seconds(tree)
        time.sleep(0.5)
        now = process_tree(server.process.pid)
        if sorted(now) == sorted(tree) and cpu_seconds(now) - before < 0.05:
            return now
        tree = now
    return tree


# --- one server's round --------------------------------------------------------------------


def http_round(peer: Peer, scale: Scale) -> dict:
    """Every HTTP load on a fresh server: a figure per key, or {"missing": why}."""
    try:
        server = Running(peer)
    except RuntimeError as error:
        print(f"  {error}", flush=True)
        return {"missing": str(error)}
    try:
        pids = settle(server)
        wrong = wrong_answer(server.port)
        if wrong:
            return {"missing": wrong}
        result: dict = {"server_processes": len(pids)}
        base = f"http://127.0.0.1:{server.port}"
        all_cores = set(server.cores())
        for key, path, post in LOADS:
            url = base + path
            if scale.http_warmup:
                wrk(pids, url, 50, scale.http_warmup, post)
            load = wrk(pids, url, 50, scale.http_seconds, post)
            result |= {
                key: load.rate(),
                f"{key}_server_us_per_request": load.server_us_per_request(),
                f"{key}_server_cores": load.server_cpu_seconds / load.wall_seconds,
                f"{key}_generator_cores": load.generator_cpu_seconds / load.wall_seconds,
                f"{key}_other_cores": load.other_cpu_seconds / load.wall_seconds,
                f"{key}_socket_errors": sum(
                    load.report[error] for error in ("connect_errors", "read_errors", "write_errors", "timeouts")
                ),
            }
            # wrk runs for whole seconds: a smoke run measures latency on one load only.
            if key not in scale.http_detailed_loads.split(","):
                continue
            unpinned = wrk(pids, url, 1, scale.http_latency_seconds, post)
            # On this VM a wake-up across cores costs some 40 µs: with server and wrk on one
            # core, what the server itself adds shows.
            server.pin({0})
            pinned = wrk(pids, url, 1, scale.http_latency_seconds, post, cores={0})
            server.pin(all_cores)
            result |= {
                f"{key}_p50_us": pinned.report["p50_us"],
                f"{key}_p99_us": pinned.report["p99_us"],
                f"{key}_p50_us_unpinned": unpinned.report["p50_us"],
                f"{key}_p99_us_unpinned": unpinned.report["p99_us"],
                f"{key}_one_connection_server_us_per_request": unpinned.server_us_per_request(),
            }
        return result
    except RuntimeError as error:
        print(f"  {error}", flush=True)
        return {"missing": str(error)}
    finally:
        server.stop()


# --- the rounds ------------------------------------------------------------------------------


def measure(chosen_names: list[str] | None, scale: Scale, quiet: bool) -> dict:
    """Every HTTP load on every chosen server, rounds interleaved, and more rounds (up to
    MOST_EXTRA_ROUNDS) while a server's CPU per request on some load has no two rounds that
    agree within AGREE. Returns what results.json keeps under "http"."""
    BODY.parent.mkdir(parents=True, exist_ok=True)
    BODY.write_bytes(echo_body())
    wrk_binary()
    chosen = [peer for peer in peers() if not chosen_names or peer.name in chosen_names]
    rounds = interleaved(
        chosen,
        scale.rounds,
        lambda peer, _index: http_round(peer, scale),
        SETTLING,
        "HTTP ",
        quiet,
        what="CPU per request",
        retry_failed=True,
    )
    ceiling = wrk_ceiling(chosen, rounds, scale, quiet)
    return {
        "machine": report.machine(),
        "scale": {key: value for key, value in asdict(scale).items() if key == "rounds" or key.startswith("http_")},
        "generator": wrk_version(),
        "settings": {name: how for name, how in peer_settings().items() if name in rounds},
        "rounds": rounds,
        "unsettled": report.unsettled(rounds, SETTLING),
        "generator_ceiling": ceiling,
    }


def wrk_version() -> str:
    run = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True, check=False)
    # "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
    return (run.stdout or run.stderr).splitlines()[0].split(" [", 1)[0].strip()


def wrk_ceiling(chosen: list[Peer], rounds: dict[str, list[dict]], scale: Scale, quiet: bool) -> dict:
    """wrk's own ceiling, as the WebSocket part measures its generator's: each load once more
    against the server fastest at it in this run, that server's threads on one core and wrk
    alone on the other. wrk (one thread) using >= 0.9 of its core then ran at its ceiling; less,
    and the server set the pace, so the rate is a floor under the ceiling."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return {}
    summary = report.summarize({name: [r for r in measured if "missing" not in r] for name, measured in rounds.items()})
    ceiling = {}
    for key, path, post in LOADS:
        rates = {name: figures[key] for name, figures in summary.items() if figures.get(key)}
        if not rates or key not in scale.http_detailed_loads.split(","):
            continue
        fastest = max(rates, key=rates.__getitem__)
        print(f"wrk's ceiling, {key}: against {fastest}, wrk alone on core {cores[1]}", flush=True)
        if quiet:
            wait_for_quiet()
        server = Running(next(peer for peer in chosen if peer.name == fastest))
        try:
            pids = settle(server)
            server.pin({cores[0]})
            url = f"http://127.0.0.1:{server.port}{path}"
            if scale.http_warmup:
                wrk(pids, url, 50, scale.http_warmup, post, cores={cores[1]})
            load = wrk(pids, url, 50, scale.http_seconds, post, cores={cores[1]})
        except RuntimeError as error:
            print(f"  {error}", flush=True)
            continue
        finally:
            server.stop()
        ceiling[key] = {
            "server": fastest,
            "rate": load.rate(),
            "generator_cores": load.generator_cpu_seconds / load.wall_seconds,
            "server_cores": load.server_cpu_seconds / load.wall_seconds,
        }
        print(f"  {json.dumps(ceiling[key])}", flush=True)
    return ceiling
