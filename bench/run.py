"""`just bench`: the same loads against robyn-ws-server and its peers, one server at a time,
interleaved over rounds, on this machine. Writes docs/bench/ (results.md, results.json,
chart.png) and the headline table in README.md, through bench/report.py. `--smoke` is the
half-minute run the test suite makes; `--report-only` renders the report again from results.json.

Server and load generator share the machine's cores; the report says which cores each may
use and how much CPU each took, so a reader can tell when the generator is the limit.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import report
from report import OURS

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "venv"
REQUIREMENTS = ROOT / "bench" / "requirements.txt"
SERVER = ROOT / "target" / "release" / "robyn-ws-server"
LOADGEN = ROOT / "target" / "release" / "ws-loadgen"
# Set once `setup` has run, for the process that re-executes in the benchmark's venv.
SET_UP = "ROBYN_WS_BENCH_SET_UP"


@dataclass(frozen=True)
class Scale:
    rounds: int
    echo_seconds: float
    warmup: float
    latency_seconds: float
    subscribers: int
    broadcasts: int
    bursts: int
    idle_connections: int
    held_connections: int


FULL = Scale(
    rounds=3,
    echo_seconds=4,
    warmup=0.5,
    latency_seconds=2,
    subscribers=1000,
    broadcasts=100,
    bursts=5,
    idle_connections=5000,
    held_connections=19000,
)
SMOKE = Scale(
    rounds=1,
    echo_seconds=0.5,
    warmup=0.1,
    latency_seconds=0.5,
    subscribers=50,
    broadcasts=10,
    bursts=2,
    idle_connections=200,
    held_connections=300,
)


@dataclass(frozen=True)
class Peer:
    name: str
    command: list[str]
    # The peers read their port from PORT; ours takes --port.
    takes_port_flag: bool = False


UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--ws", "websockets", "--log-level", "warning"]
UVICORN_FLAGS += ["--host", "127.0.0.1"]


def peers() -> list[Peer]:
    python = str(VENV / "bin" / "python")
    return [
        Peer(OURS, [str(SERVER), "--app", "bench.apps.robyn_app", "--log-level", "warn"], takes_port_flag=True),
        Peer("Robyn 0.88.0", [python, "bench/apps/robyn_app.py"]),
        Peer(
            "Starlette/uvicorn",
            [python, "-m", "uvicorn", "bench.apps.starlette_app:app", *UVICORN_FLAGS],
            takes_port_flag=True,
        ),
        Peer("picows raw", [python, "bench/apps/picows_app.py"]),
    ]


# --- setting up ------------------------------------------------------------------------


def setup() -> None:
    """Builds both binaries and installs the peers into .bench/venv (once per requirements)."""
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--quiet", "-p", "robyn-ws-server", "-p", "ws-loadgen"],
        cwd=ROOT,
        check=True,
    )
    stamp = VENV / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(wanted)


# --- one server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_tree(root: int) -> list[int]:
    """The server's pid and its descendants' (Robyn and uvicorn may fork workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class Running:
    """A server process started for one series of loads."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.port = free_port()
        command = peer.command + (["--port", str(self.port)] if peer.takes_port_flag else [])
        env = {**os.environ, "PORT": str(self.port), "VIRTUAL_ENV": str(VENV), "PYTHONUNBUFFERED": "1"}
        self.log = open(ROOT / "out" / "bench" / "server.log", "ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"ws://127.0.0.1:{self.port}"
        self._wait_listening()

    def _wait_listening(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.peer.name} exited with {self.process.returncode}; see out/bench/server.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.peer.name} did not listen on {self.port} within {timeout} s")

    def rss_kib(self) -> int:
        total = 0
        for pid in process_tree(self.process.pid):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in process_tree(self.process.pid):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def cores(self) -> list[int]:
        return sorted(os.sched_getaffinity(self.process.pid))

    def pin(self, cores: set[int]) -> None:
        """Moves every thread of the server's processes onto `cores`."""
        for pid in process_tree(self.process.pid):
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.sched_setaffinity(int(task.name), cores)

    def stop(self) -> None:
        self.process.terminate()
        try:
            # Graceful shutdown is not what is measured; Robyn 0.88.0 may not exit on SIGTERM.
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- the load generator ----------------------------------------------------------------


@dataclass
class Generated:
    report: dict
    cpu_seconds: float
    server_cpu_seconds: float
    wall_seconds: float


def generate(server: Running, args: list[str], cores: set[int] | None = None) -> Generated:
    """Runs one load to completion; CPU use of generator and server over the same span."""
    server_cpu = server.cpu_seconds()
    children_cpu = reaped_children_cpu()
    started = time.monotonic()
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    process = subprocess.run([str(LOADGEN), *args], stdout=subprocess.PIPE, text=True, preexec_fn=pin)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"ws-loadgen {' '.join(args)} failed against {server.peer.name}")
    report = json.loads(process.stdout.splitlines()[-1])
    # The generator is the only child reaped in between.
    generator_cpu = reaped_children_cpu() - children_cpu
    return Generated(report, generator_cpu, server.cpu_seconds() - server_cpu, wall)


def reaped_children_cpu() -> float:
    """CPU seconds of all child processes this process has reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def hold(server: Running, connections: int) -> dict:
    """Opens `connections`, has each echo one message, and returns the server's RSS then."""
    process = subprocess.Popen(
        [str(LOADGEN), "hold", f"{server.url}/echo", "--connections", str(connections)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    opened = json.loads(process.stdout.readline())
    process.stdin.write("check\n")
    process.stdin.flush()
    checked = json.loads(process.stdout.readline())
    rss = server.rss_kib()
    process.stdin.close()
    process.wait(timeout=60)
    return {"opened": opened["opened"], "answered": checked["answered"], "error": opened["error"], "rss_kib": rss}


# --- the loads -------------------------------------------------------------------------


def throughput_round(peer: Peer, scale: Scale) -> dict:
    server = Running(peer)
    try:
        seconds = ["--seconds", str(scale.echo_seconds), "--warmup", str(scale.warmup)]
        echo = generate(server, ["echo", f"{server.url}/echo", "--connections", "50", *seconds])
        echo10 = generate(server, ["echo", f"{server.url}/echo", "--connections", "50", "--in-flight", "10", *seconds])
        one_connection = ["echo", f"{server.url}/echo", "--connections", "1"]
        one_connection += ["--seconds", str(scale.latency_seconds), "--warmup", str(scale.warmup)]
        spread = generate(server, one_connection)
        # On this VM a wake-up across cores costs some 40 µs (a bare TCP ping-pong between
        # two processes: 82 µs p50 across cores, 8 µs on one), which would swamp what the
        # servers themselves add; so latency is also measured with everything on one core.
        all_cores = set(server.cores())
        server.pin({0})
        latency = generate(server, one_connection, cores={0})
        server.pin(all_cores)
        # A burst of 100 broadcasts is over in well under a second: the median of several
        # over the same subscribers, so one unlucky context switch does not decide it.
        subscribers = ["--subscribers", str(scale.subscribers), "--messages", str(scale.broadcasts)]
        subscribers += ["--repeat", str(scale.bursts)]
        try:
            fanout = generate(server, ["fanout", f"{server.url}/broadcast", *subscribers])
        except RuntimeError as error:
            # A server that loses broadcasts gets no figure rather than ending the run.
            print(f"  {error}", flush=True)
            fanout = Generated({"rate": None, "bursts": []}, 0.0, 0.0, 1.0)
        return {
            "echo": echo.report["rate"],
            "echo_in_flight_10": echo10.report["rate"],
            "p50_us": latency.report["p50_us"],
            "p99_us": latency.report["p99_us"],
            "p50_us_two_cores": spread.report["p50_us"],
            "fanout": fanout.report["rate"],
            "fanout_bursts": fanout.report["bursts"],
            "echo_server_cores": echo.server_cpu_seconds / echo.wall_seconds,
            "echo_generator_cores": echo.cpu_seconds / echo.wall_seconds,
            "fanout_server_cores": fanout.server_cpu_seconds / fanout.wall_seconds,
            "fanout_generator_cores": fanout.cpu_seconds / fanout.wall_seconds,
            "server_affinity": server.cores(),
        }
    finally:
        server.stop()


def memory_round(peer: Peer, scale: Scale, most: bool) -> dict:
    """Idle memory on a fresh server; then, if `most`, the most connections it holds."""
    server = Running(peer)
    try:
        hold(server, 10)  # imports and first-connection allocations out of the baseline
        before = server.rss_kib()
        idle = hold(server, scale.idle_connections)
        result: dict = {"idle_kib_per_connection": None, "idle_answered": idle["answered"]}
        if idle["answered"] == scale.idle_connections:
            result["idle_kib_per_connection"] = (idle["rss_kib"] - before) / scale.idle_connections
        if most:
            held = hold(server, scale.held_connections)
            result |= {"held": held["answered"], "held_opened": held["opened"], "held_error": held["error"]}
        return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny loads, one round: checks that everything runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--only", action="append", help="run only this server (repeatable)")
    parser.add_argument("--out", type=Path, default=report.DOCS, help="where the report goes")
    parser.add_argument(
        "--report-only", action="store_true", help="measure nothing: render the report again from OUT/results.json"
    )
    options = parser.parse_args()
    if options.report_only:
        report_only(parser, options.out)
        return
    scale = SMOKE if options.smoke else FULL
    if options.rounds:
        scale = Scale(**{**asdict(scale), "rounds": options.rounds})

    if os.environ.get(SET_UP) != str(VENV):
        setup()
        # The rest (the chart's matplotlib) runs in the benchmark's own environment, which
        # the marker tells not to build and install again.
        os.environ[SET_UP] = str(VENV)
        os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])
    (ROOT / "out" / "bench").mkdir(parents=True, exist_ok=True)
    chosen = [peer for peer in peers() if not options.only or peer.name in options.only]
    rounds: dict[str, list[dict]] = {peer.name: [] for peer in chosen}
    for index in range(scale.rounds):
        # Each round starts with a different server, so drift over the run spreads evenly.
        order = chosen[index % len(chosen) :] + chosen[: index % len(chosen)]
        for peer in order:
            print(f"round {index + 1}/{scale.rounds}: {peer.name}", flush=True)
            # Holding many connections is a capacity check, measured in the first round only.
            result = throughput_round(peer, scale) | memory_round(peer, scale, most=index == 0)
            print(f"  {json.dumps(result)}", flush=True)
            rounds[peer.name].append(result)

    headline, cpu = report.write(report.results(asdict(scale), report.machine(), rounds), options.out)
    print(f"\n{headline}\n\n{cpu}\n")
    if not options.smoke and not options.only and options.out == report.DOCS:
        report.update_readme(headline)


def report_only(parser: argparse.ArgumentParser, out: Path) -> None:
    """Renders results.md, chart.png and (for a full run in docs/bench) README's table again
    from `out`/results.json, in the benchmark's venv if there is one (for matplotlib)."""
    python = VENV / "bin" / "python"
    if python.exists() and Path(sys.prefix).resolve() != VENV.resolve():
        os.execv(python, [str(python), __file__, *sys.argv[1:]])
    if importlib.util.find_spec("matplotlib") is None:
        parser.error("the chart needs matplotlib: `just bench` installs it into .bench/venv, or pip install it")
    source = out / "results.json"
    if not source.is_file():
        parser.error(f"no {source} to render")
    measured = json.loads(source.read_text())
    if "machine" not in measured:
        parser.error(f"{source} does not say which machine it was measured on (made before --report-only)")
    headline, cpu = report.render(measured, out)
    print(f"\n{headline}\n\n{cpu}\n")
    if out.resolve() == report.DOCS and is_full_run(measured):
        report.update_readme(headline)


def is_full_run(measured: dict) -> bool:
    """A run README's table shows: the full loads (in any number of rounds) on every server."""
    scale = {**measured["scale"], "rounds": FULL.rounds}
    return scale == asdict(FULL) and list(measured["medians"]) == [peer.name for peer in peers()]


if __name__ == "__main__":
    main()
