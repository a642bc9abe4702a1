"""`just bench`: the same loads against robyn-ws-server and its peers, one server at a time,
interleaved over rounds, on this machine. Writes docs/bench/ (results.md, results.json,
chart.png) and the headline table in README.md, through bench/report.py. `--smoke` is the
half-minute run the test suite makes; `--report-only` renders the report again from results.json.

Server and load generator share the machine's cores; the report says which cores each may
use, how much CPU each took over what it measured (the server's per message handled), and
how fast the generator itself can go, so a reader can tell when the generator is the limit.
Every peer runs at its defaults (or its own documented fast setup); `peer_settings` says how,
as the installed versions resolve their `auto` choices, and the report repeats it.
"""

from __future__ import annotations

import argparse
import ctypes.util
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import report
from report import OURS, OURS_THREADED

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "venv"
REQUIREMENTS = ROOT / "bench" / "requirements.txt"
BUILT = ROOT / "target" / "release"
# What cargo built, copied once it has: a rebuild in the same tree during the run (another
# cargo command) then cannot change the server or the generator between rounds.
BINARIES = ROOT / ".bench" / "bin"
SERVER = BINARIES / "robyn-ws-server"
LOADGEN = BINARIES / "ws-loadgen"
# A folder holding both binaries already built (another worktree's target/release, say): the
# benchmark copies them from there and runs no cargo build.
PREBUILT = "ROBYN_WS_BENCH_BUILT"
# Set for a part run by `main`, which has copied the binaries already.
COPIED = "ROBYN_WS_BENCH_COPIED"
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
    # The HTTP loads (bench/http_loads.py); wrk runs for whole seconds.
    http_seconds: int
    http_warmup: int
    http_latency_seconds: int
    # The HTTP loads (comma-separated) whose latency on one connection and wrk's ceiling are
    # measured: every one, or (a smoke run) the JSON GET only.
    http_detailed_loads: str
    # The server-sent events load (bench/sse_loads.py): subscribers, the span measured after a
    # warm-up, how long every subscriber may take to get its first events, and rounds.
    sse_subscribers: int
    sse_seconds: float
    sse_warmup: float
    sse_timeout: float
    sse_rounds: int
    # The TLS loads (bench/tls_loads.py): our server in both modes (`--io-threads` 0 and 1), or
    # (a smoke run) in its default one only.
    tls_both_modes: bool


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
    http_seconds=3,
    http_warmup=1,
    http_latency_seconds=1,
    http_detailed_loads="plaintext,json,echo,middleware",
    sse_subscribers=1000,
    sse_seconds=3,
    sse_warmup=1,
    sse_timeout=20,
    sse_rounds=3,
    tls_both_modes=True,
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
    http_seconds=1,
    http_warmup=0,
    http_latency_seconds=1,
    http_detailed_loads="json",
    sse_subscribers=50,
    sse_seconds=0.5,
    sse_warmup=0.2,
    sse_timeout=20,
    sse_rounds=1,
    tls_both_modes=False,
)


@dataclass(frozen=True)
class Peer:
    name: str
    command: list[str]
    # The peers read their port from PORT; ours and uvicorn and granian take --port.
    takes_port_flag: bool = False


APP = "bench.apps.starlette_app:app"


def peers() -> list[Peer]:
    python = str(VENV / "bin" / "python")
    return [
        Peer(OURS, [str(SERVER), "--app", "bench.apps.robyn_app", "--log-level", "warn"], takes_port_flag=True),
        # The same server with its network side on a thread of its own: the other mode.
        Peer(
            OURS_THREADED,
            [str(SERVER), "--app", "bench.apps.robyn_app", "--log-level", "warn", "--io-threads", "1"],
            takes_port_flag=True,
        ),
        # Its production log level, as its startup line advises; otherwise its defaults.
        Peer("Robyn 0.88.0", [python, "bench/apps/robyn_app.py", "--log-level", "WARN"]),
        # Its defaults: --loop auto, --http auto and --ws auto pick uvloop, httptools and
        # (with websockets installed) the sans-I/O websockets implementation; see peer_settings.
        Peer(
            "Starlette/uvicorn",
            [python, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--log-level", "warning"],
            takes_port_flag=True,
        ),
        # Its defaults: one worker, one runtime thread, --loop auto (uvloop here).
        Peer(
            "Starlette/granian",
            [str(VENV / "bin" / "granian"), "--interface", "asgi", APP, "--host", "127.0.0.1"],
            takes_port_flag=True,
        ),
        Peer("socketify.py", [python, "bench/apps/socketify_app.py"]),
        Peer("picows raw", [python, "bench/apps/picows_app.py"]),
    ]


def peer_settings() -> dict[str, str]:
    """How each server runs, for the report: versions as installed, and what the peers'
    `auto` settings resolve to with what is installed. Runs in the benchmark's venv."""
    version = importlib.metadata.version
    # uvicorn's own resolution of --ws/--http/--loop auto (uvicorn/protocols/.../auto.py).
    from uvicorn.config import WS_PROTOCOLS
    from uvicorn.loops.auto import auto_loop_factory
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

    ws = next(
        name
        for name, target in WS_PROTOCOLS.items()
        if name != "auto" and target and target.split(":")[0] == AutoWebSocketsProtocol.__module__
    )
    http = "httptools" if "httptools" in AutoHTTPProtocol.__module__ else "h11"
    loop = "uvloop" if auto_loop_factory().__module__ == "uvloop" else "asyncio"
    # granian's --loop auto takes rloop if installed, else uvloop, else asyncio (granian/_loops.py).
    granian_loop = next(name for name in ("rloop", "uvloop", "asyncio") if importlib.util.find_spec(name))
    uvloop = f"uvloop {version('uvloop')}"
    return {
        OURS: f"its defaults ({our_defaults()}) but `--log-level warn`",
        OURS_THREADED: "the same, with the network side on one thread of its own beside the Python loop thread "
        "(`--io-threads 1`)",
        "Robyn 0.88.0": "`python robyn_app.py --log-level WARN` (its production log level, as its startup line "
        "advises), `app.start()` at its defaults: 1 process, 1 worker (its `--fast` would start "
        f"{2 * (os.cpu_count() or 1) + 1} processes here, and a broadcast would then reach only the clients of "
        "one process)",
        "Starlette/uvicorn": f"Starlette {version('starlette')} on uvicorn {version('uvicorn')} at its defaults "
        f"(`uvicorn {APP}`, one process), with its documented fast setup installed: `--ws auto` picks `{ws}` "
        f"(websockets {version('websockets')}), `--http auto` picks {http} {version('httptools')}, `--loop auto` "
        f"picks {uvloop if loop == 'uvloop' else loop}; `--log-level warning` (no log line per connection)",
        "Starlette/granian": f"the same Starlette app on granian {version('granian')} at its defaults "
        f"(`granian --interface asgi {APP}`): 1 worker, 1 runtime thread (single-threaded runtime), "
        f"asyncio task implementation, `--loop auto` picks {uvloop if granian_loop == 'uvloop' else granian_loop}",
        "socketify.py": f"socketify {version('socketify')} at its defaults (`App()`; its `ws()` behaviours set "
        "only the handlers: no compression); broadcast by its built-in pub/sub (`app.publish` to a topic "
        "every connection subscribes to on open)",
        "picows raw": f"picows {version('picows')} on {uvloop}: one `WSListener` per endpoint, no framework",
    }


def our_defaults() -> str:
    """Where our server runs its network side by default, as its --help says."""
    help_text = subprocess.run([str(SERVER), "--help"], capture_output=True, text=True, check=True).stdout
    lines = help_text.splitlines()
    for at, line in enumerate(lines):
        if line.strip().startswith("--io-threads"):
            # The option's text: its line and the ones after it, up to the next option.
            text = line
            for more in lines[at + 1 :]:
                if more.strip().startswith("-"):
                    break
                text += " " + more.strip()
            default = text.split("[default: ", 1)[1].split("]", 1)[0] if "[default: " in text else "?"
            where = "on the Python loop thread" if default == "0" else f"on {default} thread(s) of its own"
            return f"`--io-threads {default}`: the network side {where}"
    return "see `robyn-ws-server --help`"


# --- setting up ------------------------------------------------------------------------


def use_built() -> None:
    """Copies the server and the generator from where they were built (`ROBYN_WS_BENCH_BUILT`,
    or target/release) to where every load takes them from (unless `main` has)."""
    if os.environ.get(COPIED):
        return
    built = Path(os.environ.get(PREBUILT, "") or BUILT)
    BINARIES.mkdir(parents=True, exist_ok=True)
    for binary in (SERVER, LOADGEN):
        shutil.copy2(built / binary.name, binary)


def setup() -> None:
    """Builds both binaries and installs the peers into .bench/venv (once per requirements),
    and Debian's wrk for the HTTP loads."""
    install_libuv()
    install_wrk()
    if not os.environ.get(PREBUILT):
        subprocess.run(
            ["cargo", "build", "--release", "--locked", "--quiet", "-p", "robyn-ws-server", "-p", "ws-loadgen"],
            cwd=ROOT,
            check=True,
        )
    use_built()
    stamp = VENV / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(wanted)


def install_libuv() -> None:
    """socketify's native library links libuv.so.1: Debian's libuv1, installed with apt if missing."""
    if ctypes.util.find_library("uv"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        sys.exit("socketify needs libuv (libuv.so.1) and there is no apt-get: install your system's libuv package")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("installing Debian's libuv1 for socketify (apt-get)", flush=True)
    update = subprocess.run([*sudo, apt, "update", "-qq"], check=False)
    install = subprocess.run([*sudo, apt, "install", "-y", "-qq", "libuv1"], check=False)
    if update.returncode or install.returncode or not ctypes.util.find_library("uv"):
        sys.exit("socketify needs libuv (libuv.so.1): `apt-get install libuv1` failed; install it as root and rerun")


def install_wrk() -> None:
    """The HTTP loads' generator: Debian's wrk, installed with apt if missing; and the `openssl`
    command, with which the TLS loads check what OpenSSL's client (wrk's) negotiates."""
    if shutil.which("wrk") and shutil.which("openssl"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        sys.exit("the HTTP and TLS loads need wrk and openssl and there is no apt-get: install your system's packages")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("installing Debian's wrk and openssl for the HTTP and TLS loads (apt-get)", flush=True)
    update = subprocess.run([*sudo, apt, "update", "-qq"], check=False)
    install = subprocess.run([*sudo, apt, "install", "-y", "-qq", "wrk", "openssl"], check=False)
    if update.returncode or install.returncode or not shutil.which("wrk") or not shutil.which("openssl"):
        sys.exit("the HTTP and TLS loads need wrk and openssl: `apt-get install wrk openssl` failed; run it as root")


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

    def cores(self) -> list[int]:
        return sorted(os.sched_getaffinity(self.process.pid))

    def pin(self, cores: set[int]) -> None:
        """Moves every thread of the server's processes onto `cores`."""
        for pid in process_tree(self.process.pid):
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.sched_setaffinity(int(task.name), cores)

    def stop(self) -> None:
        tree = process_tree(self.process.pid)
        self.process.terminate()
        try:
            # Graceful shutdown is not what is measured; Robyn 0.88.0 may not exit on SIGTERM.
            self.process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # A worker its parent left behind (granian's, after a kill) would hold the machine.
        for pid in tree[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


# --- the load generator ----------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user and system, every thread) the processes have used, read from each one's
    CPU-time clock, the clock clock_getcpuclockid(3) names: exact for a thread that has gone to
    sleep, counted to the last scheduler tick (a few ms) for one still running, where /proc's
    counts are in 10 ms ticks. That matters only for spans of a few ms (the smoke run's)."""
    total = 0.0
    for pid in pids:
        try:
            total += time.clock_gettime((~pid << 3) | 2)  # CPUCLOCK_SCHED of the whole process
        except OSError:  # it has exited
            pass
    return total


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy, from /proc/stat (in ticks)."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(most: float = 600.0) -> None:
    """Waits, up to `most` seconds, until the rest of the machine has been nearly idle for a
    second: work of another user of these two cores would skew the next server's figures
    (the report's "other processes" rows show what was left)."""
    deadline = time.monotonic() + most
    said = False
    while time.monotonic() < deadline:
        before = machine_busy_seconds()
        time.sleep(1)
        busy = machine_busy_seconds() - before
        if busy < 0.1:
            return
        if not said:
            print(f"  waiting for the machine to quiet down (other processes use {busy:.2f} cores)", flush=True)
            said = True
    print(f"  the machine stayed busy for {most:.0f} s: measuring anyway", flush=True)


@dataclass
class Generated:
    """One load's report, and CPU use between its marks: the span it measured (echo: after
    the warm-up; fan-out: the bursts, with every subscriber already connected)."""

    report: dict
    server_cpu_seconds: float
    generator_cpu_seconds: float
    # Everything else the machine did meanwhile (this script's reading included): a run on
    # a machine that was not otherwise idle shows here.
    other_cpu_seconds: float
    wall_seconds: float

    def server_us_per(self, messages: float) -> float | None:
        return self.server_cpu_seconds / messages * 1e6 if messages else None

    def generator_cores(self) -> float:
        return self.generator_cpu_seconds / self.wall_seconds

    def server_cores(self) -> float:
        return self.server_cpu_seconds / self.wall_seconds

    def other_cores(self) -> float:
        return self.other_cpu_seconds / self.wall_seconds


def generate(server: Running, args: list[str], cores: set[int] | None = None) -> Generated:
    """Runs one load to completion, reading the CPU time of server and generator at its marks."""
    # The servers start their processes and threads before they listen, none during a load.
    return generate_against(process_tree(server.process.pid), server.peer.name, args, cores)


def generate_against(
    server_pids: list[int],
    name: str,
    args: list[str],
    cores: set[int] | None = None,
    program: list[str] | None = None,
) -> Generated:
    """`generate`, for whatever processes serve the load (several servers and a broker, say);
    `program`: a generator other than ws-loadgen that prints the same marks and report
    (bench/sse_client.py)."""
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    process = subprocess.Popen(
        [*(program or [str(LOADGEN)]), "--marks", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pin,
    )
    marks: list[tuple[float, float, float, float]] = []
    report = None
    for line in process.stdout:
        message = json.loads(line)
        if "mark" not in message:
            report = message
            continue
        now = time.monotonic()
        marks.append((now, cpu_seconds(server_pids), cpu_seconds([process.pid]), machine_busy_seconds()))
        if message["wait"]:
            process.stdin.write("go\n")
            process.stdin.flush()
    process.stdin.close()
    if process.wait() != 0 or report is None or len(marks) != 2:
        said = f": {report['error']}" if report and report.get("error") else ""
        raise RuntimeError(f"{Path((program or [str(LOADGEN)])[-1]).name} {' '.join(args)} failed against {name}{said}")
    (start, *before), (end, *after) = marks
    server, generator, busy = (later - earlier for earlier, later in zip(before, after, strict=True))
    return Generated(report, server, generator, max(0.0, busy - server - generator), end - start)


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
        echo = generate(server, load_args("echo", server, scale))
        echo10 = generate(server, load_args("echo_in_flight_10", server, scale))
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
        try:
            fanout = generate(server, load_args("fanout", server, scale))
        except RuntimeError as error:
            # A server that loses broadcasts gets no figure rather than ending the run.
            print(f"  {error}", flush=True)
            fanout = None
        return (
            {
                "p50_us": latency.report["p50_us"],
                "p99_us": latency.report["p99_us"],
                "p50_us_two_cores": spread.report["p50_us"],
                "server_affinity": server.cores(),
            }
            | figures("echo", echo)
            | figures("echo_in_flight_10", echo10)
            | figures("fanout", fanout)
        )
    finally:
        server.stop()


THROUGHPUT_LOADS = ["echo", "echo_in_flight_10", "fanout"]


def load_args(key: str, server: Running, scale: Scale) -> list[str]:
    """ws-loadgen's arguments for one of THROUGHPUT_LOADS."""
    if key == "fanout":
        # A burst of 100 broadcasts is over in well under a second: the median of several
        # over the same subscribers, so one unlucky context switch does not decide it.
        subscribers = ["--subscribers", str(scale.subscribers), "--messages", str(scale.broadcasts)]
        # The slowest peer's first, cold burst (Starlette on granian: some 1,100 deliveries/s)
        # takes 90 s of what would be ws-loadgen's default 120 s for all five: no figure then.
        bursts = ["--repeat", str(scale.bursts), "--timeout", "600"]
        return ["fanout", f"{server.url}/broadcast", *subscribers, *bursts]
    in_flight = ["--in-flight", "10"] if key == "echo_in_flight_10" else []
    seconds = ["--seconds", str(scale.echo_seconds), "--warmup", str(scale.warmup)]
    return ["echo", f"{server.url}/echo", "--connections", "50", *in_flight, *seconds]


def handled(load: Generated) -> int:
    """Messages the server handled in the span measured: echoes, or deliveries to the
    subscribers (the publisher's own copy of each broadcast is not counted)."""
    report = load.report
    if report["load"] == "echo":
        return report["messages"]
    return report["subscribers"] * report["messages"] * len(report["bursts"])


def figures(key: str, load: Generated | None) -> dict:
    """A throughput load's rate and what it cost: the server's CPU per message handled, and
    the cores server and generator used over the span measured."""
    if load is None:
        return {key: None, f"{key}_bursts": []} if key == "fanout" else {key: None}
    result = {
        key: load.report["rate"],
        f"{key}_server_us_per_message": load.server_us_per(handled(load)),
        f"{key}_server_cores": load.server_cores(),
        f"{key}_generator_cores": load.generator_cores(),
        f"{key}_other_cores": load.other_cores(),
    }
    if key == "fanout":
        result["fanout_bursts"] = load.report["bursts"]
    return result


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


def generator_ceiling(chosen: list[Peer], rounds: dict[str, list[dict]], scale: Scale, quiet: bool) -> dict:
    """The generator's own ceiling, measured directly: each throughput load once more against
    the server that was fastest at it in this run, with the server's threads on one core and
    the generator alone on the other. A generator that then uses >= 0.9 of its core (it has one
    thread) ran at its ceiling; one that used less was held back by the server, so the rate is
    only a floor under that ceiling."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return {}
    summary = report.summarize(rounds)
    ceiling = {}
    for key in THROUGHPUT_LOADS:
        rates = {name: figures[key] for name, figures in summary.items() if figures.get(key)}
        if not rates:
            continue
        fastest = max(rates, key=rates.__getitem__)
        print(f"generator's ceiling, {key}: against {fastest}, generator alone on core {cores[1]}", flush=True)
        if quiet:
            wait_for_quiet()
        server = Running(next(peer for peer in chosen if peer.name == fastest))
        try:
            server.pin({cores[0]})
            load = generate(server, load_args(key, server, scale), cores={cores[1]})
        except RuntimeError as error:
            print(f"  {error}", flush=True)
            continue
        finally:
            server.stop()
        ceiling[key] = {
            "server": fastest,
            "rate": load.report["rate"],
            "generator_cores": load.generator_cores(),
            "server_cores": load.server_cores(),
        }
        print(f"  {json.dumps(ceiling[key])}", flush=True)
    return ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny loads, one round: checks that everything runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--only", action="append", help="run only this server (repeatable); with ours, the scale-out loads run too"
    )
    parser.add_argument(
        "--part",
        choices=["all", "ws", "http", "sse", "tls"],
        default="all",
        help="the WebSocket loads (with the scale-out and binary-against-package parts), the HTTP loads, the "
        "server-sent events load, the TLS loads (wss:// echo and an HTTPS GET), or all four",
    )
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
    websocket = options.part in ("all", "ws")
    chosen = [peer for peer in peers() if websocket and (not options.only or peer.name in options.only)]
    from rounds import interleaved

    def ws_round(peer: Peer, index: int) -> dict:
        # Holding many connections is a capacity check, measured in the first round only.
        return throughput_round(peer, scale) | memory_round(peer, scale, most=index == 0)

    rounds = interleaved(
        chosen, scale.rounds if chosen else 0, ws_round, report.SETTLING, "", not options.smoke, what="CPU per message"
    )

    ceiling = generator_ceiling(chosen, rounds, scale, quiet=not options.smoke) if chosen else {}
    settings = peer_settings()
    measured = report.results(
        asdict(scale), report.machine(), {peer.name: settings[peer.name] for peer in chosen}, rounds, ceiling
    )
    measured["unsettled"] = report.unsettled(rounds, report.SETTLING)
    # A run of one part keeps the other part's figures from the report it rewrites (each part
    # states its own date and machine).
    earlier = options.out / "results.json"
    earlier_run = json.loads(earlier.read_text()) if options.part != "all" and earlier.is_file() else {}
    if options.part in ("http", "sse", "tls") and earlier_run.get("machine"):
        measured = earlier_run
    # The HTTP loads, on their own list of servers (bench/http_loads.py).
    if options.part in ("all", "http"):
        import http_loads

        measured["http"] = report.http_results(http_loads.measure(options.only, scale, quiet=not options.smoke))
    elif earlier_run.get("http"):
        measured["http"] = earlier_run["http"]
    # The server-sent events load (bench/sse_loads.py), on its own list of servers.
    if options.part in ("all", "sse"):
        import sse_loads

        measured["sse"] = report.http_results(sse_loads.measure(options.only, scale, quiet=not options.smoke))
    elif earlier_run.get("sse"):
        measured["sse"] = earlier_run["sse"]
    # The TLS loads (bench/tls_loads.py): ours, uvicorn and granian over TLS, ours over plain too.
    if options.part in ("all", "tls"):
        import tls_loads

        measured["tls"] = report.http_results(tls_loads.measure(options.only, scale, quiet=not options.smoke))
    elif earlier_run.get("tls"):
        measured["tls"] = earlier_run["tls"]
    headline, cpu = report.write(measured, options.out)
    if options.part == "tls":
        print(f"\n{report.tls_summary(measured['tls'])}\n")
    else:
        print(f"\n{headline}\n\n{cpu}\n")
    if not options.smoke and not options.only and options.part != "http" and options.out == report.DOCS:
        if measured["medians"]:
            report.update_readme(measured)
    if OURS in rounds:
        # Our server alone, as several processes and instances (bench/scaleout.py).
        smoke = ["--smoke"] if options.smoke else []
        rounds_flag = ["--rounds", str(options.rounds)] if options.rounds else []
        scaleout = [sys.executable, str(ROOT / "bench" / "scaleout.py"), *smoke, *rounds_flag]
        subprocess.run([*scaleout, "--out", str(options.out)], cwd=ROOT, check=True)
        # Presence, send_to_user and history, our server alone (bench/presence.py); its clients
        # use `websockets`, which the tests' virtualenv has.
        python = ROOT / ".venv" / "bin" / "python"
        presence = [str(python if python.exists() else sys.executable), str(ROOT / "bench" / "presence.py")]
        copied = {**os.environ, COPIED: "1"}
        subprocess.run([*presence, *smoke, *rounds_flag, "--out", str(options.out)], cwd=ROOT, env=copied, check=True)
        # The binary against the pip package (bench/two_ways.py); a full run only, since
        # installing the package builds it (minutes), which a smoke run need not check.
        if not options.smoke:
            two_ways = [sys.executable, str(ROOT / "bench" / "two_ways.py"), *rounds_flag]
            subprocess.run([*two_ways, "--out", str(options.out)], cwd=ROOT, check=True)


def run_part(description: str, measure: Callable[[Scale, Path, bool], str]) -> None:
    """The command line of a part of `just bench` that measures our server alone
    (bench/scaleout.py, bench/two_ways.py), run by `main` once the binaries are built:
    `measure(scale, out, quiet)` writes its report to `out` and returns it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny loads, one round: checks that everything runs")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--out", type=Path, default=report.DOCS)
    options = parser.parse_args()
    scale = SMOKE if options.smoke else FULL
    if options.rounds:
        scale = Scale(**{**asdict(scale), "rounds": options.rounds})
    (ROOT / "out" / "bench").mkdir(parents=True, exist_ok=True)
    print(measure(scale, options.out, not options.smoke))


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
        report.update_readme(measured)


def is_full_run(measured: dict) -> bool:
    """A run README's table shows: the full loads (in any number of rounds) on every server."""
    scale = {**measured["scale"], "rounds": FULL.rounds}
    # A run made before the HTTP loads has no HTTP scale: its WebSocket loads decide.
    full = {key: value for key, value in asdict(FULL).items() if key in scale}
    return scale == full and list(measured["medians"]) == [peer.name for peer in peers()]


if __name__ == "__main__":
    main()
