"""The scale-out part of `just bench`: our server as one process, as `--processes 2`, and as
two instances joined by a real redis-server, on this machine's two cores. Echo and fan-out
with one process against two; fan-out to 1,000 subscribers over two instances against one;
and what a delivery to another process or another node adds to its latency (p50, p99), from
a publisher to a subscriber placed there. Writes docs/bench/scaleout.md and scaleout.json.

Only our server runs here: none of the peers delivers a broadcast across processes (Robyn's
`--processes` keeps each broadcast inside its process), so there is nothing to set beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import report
from run import (
    SERVER,
    Peer,
    Running,
    Scale,
    figures,
    free_port,
    generate_against,
    load_args,
    process_tree,
    run_part,
    wait_for_quiet,
)

APP = [str(SERVER), "--app", "bench.apps.robyn_app", "--log-level", "warn"]


@dataclass
class Setup:
    """One way of running the server: its processes, and the URLs loads connect to."""

    name: str
    servers: list[Running]
    broker: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        pids = [pid for server in self.servers for pid in process_tree(server.process.pid)]
        return pids + ([self.broker.pid] if self.broker else [])

    def url(self, index: int = 0) -> str:
        return self.servers[index % len(self.servers)].url


@contextmanager
def redis_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A redis-server of its own on a free port, keeping nothing on disk."""
    if shutil.which("redis-server") is None:
        raise SystemExit("the scale-out loads need Debian's redis-server: apt-get install redis-server")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", folder], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for line in process.stdout or []:
            if b"Ready to accept connections" in line:
                break
        else:
            raise RuntimeError(f"redis-server exited with {process.wait()}")
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def running(name: str, commands: list[list[str]]) -> Iterator[Setup]:
    servers: list[Running] = []
    try:
        for command in commands:
            servers.append(Running(Peer(name, command, takes_port_flag=True)))
        yield Setup(name, servers)
    finally:
        for server in servers:
            server.stop()


def one_process() -> Iterator[Setup]:
    return running("1 process", [APP])


def two_processes() -> Iterator[Setup]:
    return running("--processes 2", [[*APP, "--processes", "2"]])


@contextmanager
def instances(count: int, app: list[str] = APP) -> Iterator[Setup]:
    name = f"{count} instance(s) + Redis"
    with redis_server() as (broker, url), running(name, [[*app, "--broker", url]] * count) as setup:
        setup.broker = broker
        yield setup


def relay(setup: Setup, place: str, scale: Scale, to: int = 0) -> dict:
    """The latency from a publisher on the setup's first server to a subscriber `place`d
    beside it (`same`) or on another process (`other`), on server `to`."""
    args = ["relay", f"{setup.url()}/relay", f"{setup.url(to)}/relay", "--place", place]
    args += ["--seconds", str(scale.latency_seconds), "--warmup", str(scale.warmup)]
    load = generate_against(setup.pids(), setup.name, args)
    messages = load.report["messages"]
    return {
        "p50_us": load.report["p50_us"],
        "p99_us": load.report["p99_us"],
        "messages": messages,
        # Every process that carried it, the broker included: what one delivery there costs.
        "server_us_per_message": load.server_us_per(messages),
    }


def fanout(setup: Setup, scale: Scale, spread: bool) -> dict:
    args = load_args("fanout", setup.servers[0], scale)
    if spread:
        args += ["--also", f"{setup.url(1)}/broadcast"]
    return figures("fanout", generate_against(setup.pids(), setup.name, args))


def echo(setup: Setup, scale: Scale) -> dict:
    return figures("echo", generate_against(setup.pids(), setup.name, load_args("echo", setup.servers[0], scale)))


def measure_round(scale: Scale, quiet: bool) -> dict[str, dict]:
    """Every setup once; each load on a fresh server (or servers)."""
    results: dict[str, dict] = {}

    def settle() -> None:
        if quiet:
            wait_for_quiet()

    settle()
    with one_process() as setup:
        results["1 process"] = echo(setup, scale) | fanout(setup, scale, spread=False)
        results["1 process"] |= {"relay_same": relay(setup, "same", scale)}
    settle()
    with two_processes() as setup:
        results["--processes 2"] = echo(setup, scale) | fanout(setup, scale, spread=False)
        results["--processes 2"] |= {
            "relay_same": relay(setup, "same", scale),
            "relay_other": relay(setup, "other", scale),
        }
    settle()
    with instances(1) as setup:
        results["1 instance + Redis"] = fanout(setup, scale, spread=False)
    settle()
    with instances(2) as setup:
        results["2 instances + Redis"] = fanout(setup, scale, spread=True)
        results["2 instances + Redis"] |= {"relay_other": relay(setup, "other", scale, to=1)}
    return results


def run(scale: Scale, out: Path, quiet: bool) -> str:
    """Measures `scale.rounds` rounds and writes the report; returns its Markdown."""
    rounds = []
    for index in range(scale.rounds):
        print(f"scale-out round {index + 1}/{scale.rounds}", flush=True)
        rounds.append(measure_round(scale, quiet))
        print(f"  {json.dumps(rounds[-1])}", flush=True)
    measured = {"machine": report.machine(), "scale": asdict(scale), "rounds": rounds}
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaleout.json").write_text(json.dumps(measured, indent=1) + "\n")
    text = render(measured)
    (out / "scaleout.md").write_text(text)
    return text


def median(rounds: list[dict[str, dict]], setup: str, *keys: str) -> float | None:
    values = []
    for round_ in rounds:
        value = round_.get(setup)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return report.median(values)


def render(measured: dict) -> str:
    rounds = measured["rounds"]
    made_on = measured["machine"]
    scale = measured["scale"]

    def rate(setup: str, key: str, unit: str) -> str:
        return report.figure(median(rounds, setup, key), unit)

    def ratio(setup: str, base: str, key: str) -> str:
        ours, theirs = median(rounds, setup, key), median(rounds, base, key)
        return f"{ours / theirs:.2f}{report.TIMES}" if ours and theirs else "n/a"

    def latency(setup: str, key: str) -> str:
        p50, p99 = median(rounds, setup, key, "p50_us"), median(rounds, setup, key, "p99_us")
        cpu = median(rounds, setup, key, "server_us_per_message")
        return f"{report.figure(p50, 'µs')} / {report.figure(p99, 'µs')} | {report.figure(cpu, 'µs')}"

    lines = [
        "# Scale-out: processes and instances",
        "",
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores ({made_on['processor']}), Linux "
        f"{made_on['linux']}; medians of {len(rounds)} round(s), each load on fresh servers. Every server "
        "process, the load generator (`ws-loadgen`, one thread) and redis-server share the same two cores, "
        "unpinned: two processes or instances get no core the one process did not have. CPU per message is "
        "the CPU time of every server process (and redis-server, where there is one) over the span measured, "
        "per delivery or echo. Generated by `just bench` (bench/scaleout.py).",
        "",
        "| load | setup | result | against 1 process | server CPU per message (µs) |",
        "|---|---|---|---|---|",
    ]
    for setup in ("1 process", "--processes 2"):
        lines.append(
            f"| echo, 50 connections (msg/s) | {setup} | {rate(setup, 'echo', 'msg/s')} "
            f"| {ratio(setup, '1 process', 'echo')} | {rate(setup, 'echo_server_us_per_message', 'µs')} |"
        )
    subscribers = f"{scale['subscribers']:,}"
    for setup in ("1 process", "--processes 2", "1 instance + Redis", "2 instances + Redis"):
        lines.append(
            f"| fan-out to {subscribers} subscribers (deliveries/s) | {setup} "
            f"| {rate(setup, 'fanout', 'deliveries/s')} | {ratio(setup, '1 process', 'fanout')} "
            f"| {rate(setup, 'fanout_server_us_per_message', 'µs')} |"
        )
    lines += [
        "",
        "With two instances, every other subscriber is on the second one and the publisher on the first: half "
        "the deliveries cross Redis.",
        "",
        "| delivery from a publisher to one subscriber | p50 / p99 (µs) | CPU per message, all processes (µs) |",
        "|---|---|---|",
        f"| same process (1 process) | {latency('1 process', 'relay_same')} |",
        f"| same process (a worker of `--processes 2`) | {latency('--processes 2', 'relay_same')} |",
        "| another process (`--processes 2`, through the supervisor's bus) | "
        f"{latency('--processes 2', 'relay_other')} |",
        f"| another node (2 instances, through Redis) | {latency('2 instances + Redis', 'relay_other')} |",
        "",
        "One message in flight; the time from the publisher's send to the subscriber's receipt (the server "
        "broadcasts each message of `/relay` to the endpoint's other clients). The CPU is that of every server "
        "process (and redis-server) per message relayed: its growth from the first row is what the bus or the "
        "broker costs per message.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    run_part(__doc__, run)
