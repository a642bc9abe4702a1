"""The benchmark's report, from the rounds bench/run.py measured: medians, the tables,
docs/bench/ (results.json, results.md, chart.png) and README's short headline table (`readme_table`).

Everything the report says is in results.json (the loads' scale, the machine, every round), so
`bench/run.py --report-only` renders the same report again from it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "bench"
OURS = "robyn-ws-server"
# The same server in its other mode (`--io-threads 1`).
OURS_THREADED = "robyn-ws-server --io-threads 1"
# The same server as two worker processes (the HTTP loads).
OURS_PROCESSES = "robyn-ws-server --processes 2"
TIMES = "\u00d7"
DIVIDED = "\u00f7"

Round = dict[str, Any]
Summary = dict[str, dict[str, float | None]]

METRICS = [
    # key, label, unit, higher is better
    ("echo", "echo, 50 connections", "msg/s", True),
    ("echo_server_us_per_message", "echo, 50 connections: server CPU per message", "µs", False),
    ("echo_generator_cores", "echo, 50 connections: generator CPU", "cores", False),
    ("echo_in_flight_10", f"echo, 50 connections {TIMES} 10 in flight", "msg/s", True),
    ("echo_in_flight_10_server_us_per_message", f"echo {TIMES} 10 in flight: server CPU per message", "µs", False),
    ("echo_in_flight_10_generator_cores", f"echo {TIMES} 10 in flight: generator CPU", "cores", False),
    ("p50_us", "latency, 1 connection, p50 (one core)", "µs", False),
    ("p99_us", "latency, 1 connection, p99 (one core)", "µs", False),
    ("p50_us_two_cores", "latency, 1 connection, p50 (two cores)", "µs", False),
    ("fanout", "fan-out to 1,000 subscribers", "deliveries/s", True),
    ("fanout_server_us_per_message", "fan-out: server CPU per delivery", "µs", False),
    ("fanout_generator_cores", "fan-out: generator CPU", "cores", False),
    ("idle_kib_per_connection", "idle memory per connection (5,000)", "KiB", False),
    ("held", "connections held, each answering", "", True),
]

# The loads whose CPU use results.md's "who set the pace" lists, and the chart's panels.
LOADS = [("echo", "echo, 50 connections"), ("echo_in_flight_10", f"echo {TIMES} 10 in flight"), ("fanout", "fan-out")]
CHARTED = [
    "echo",
    "echo_in_flight_10",
    "fanout",
    "echo_server_us_per_message",
    "echo_in_flight_10_server_us_per_message",
    "fanout_server_us_per_message",
    "p50_us",
    "idle_kib_per_connection",
    "held",
]
# A generator (one thread) that used this much of a core may have set the pace itself.
BOUND = 0.9


def machine() -> dict[str, Any]:
    """When and on what this run was made, for the report's first sentence."""
    return {
        "date": date.today().isoformat(),
        "host": platform.node() or "this machine",
        "cores": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "linux": platform.release(),
        # The cores server and generator may run on (neither is pinned, but for one load).
        "affinity": sorted(os.sched_getaffinity(0)),
    }


def results(
    scale: dict[str, Any],
    made_on: dict[str, Any],
    peers: dict[str, str],
    rounds: dict[str, list[Round]],
    ceiling: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """What results.json holds: the loads' scale, the machine, how each server ran, every
    round, the medians, and the generator's ceiling measured after the rounds."""
    return {
        "scale": scale,
        "machine": made_on,
        "peers": peers,
        "rounds": rounds,
        "medians": summarize(rounds),
        "generator_ceiling": ceiling,
    }


def http_results(http: dict[str, Any]) -> dict[str, Any]:
    """What results.json holds under "http" (bench/http_loads.py's measure): the same, with the
    medians over the rounds each server answered and why a server that answered none did not."""
    answered = {name: [r for r in each if "missing" not in r] for name, each in http["rounds"].items()}
    missing = {name: each[0]["missing"] for name, each in http["rounds"].items() if each and not answered[name]}
    return {**http, "medians": summarize(answered), "missing": missing}


# --- figures -------------------------------------------------------------------------------


def median(values: list[Any]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(rounds: dict[str, list[Round]]) -> Summary:
    summary = {}
    for name, measured in rounds.items():
        keys = {key for result in measured for key in result if not isinstance(result[key], (list, str))}
        summary[name] = {key: median([result.get(key) for result in measured]) for key in sorted(keys)}
    return summary


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "failed"
    if unit in ("msg/s", "deliveries/s", "req/s"):
        return f"{value / 1000:,.1f}k" if value < 1e6 else f"{value / 1e6:,.2f}M"
    if unit == "":
        return f"{value:,.0f}"
    if unit == "cores":
        return f"{value:.2f}" + (" (generator-bound)" if value >= BOUND else "")
    if unit == "µs" and value < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}"


def ratio_spread(ours: list[Round], peer: list[Round], key: str) -> tuple[float, float] | None:
    """The lowest and highest of the per-round ratios ours/peer (rounds paired in the order
    they were measured, which interleaves the servers), where both have a figure."""
    ratios = [
        mine[key] / theirs[key] for mine, theirs in zip(ours, peer, strict=False) if mine.get(key) and theirs.get(key)
    ]
    return (min(ratios), max(ratios)) if len(ratios) > 1 else None


def ratio_text(ratio: float, spread: tuple[float, float] | None) -> str:
    text = f"{ratio:.2f}{TIMES}" if ratio >= 0.1 else f"{ratio:.2g}{TIMES}"
    if spread:
        text += f", rounds {spread[0]:.2f}-{spread[1]:.2f}"
    return text


# A server's CPU per message (or request) on a load must agree with another round's within
# this factor for a run's table to stand; otherwise bench/run.py (and http_loads.py) measure
# more rounds, up to MOST_EXTRA_ROUNDS.
AGREE = 1.25
MOST_EXTRA_ROUNDS = 3
# The WebSocket loads' CPU figures that must settle.
SETTLING = [f"{key}_server_us_per_message" for key, _ in LOADS]


def unsettled(rounds: dict[str, list[Round]], fields: list[str]) -> list[str]:
    """The "server: figure" pairs whose median round no other round agrees with within AGREE."""
    found = []
    for name, measured in rounds.items():
        for field in fields:
            values = sorted(result[field] for result in measured if result.get(field))
            if len(values) < 2:
                continue
            middle = (len(values) - 1) // 2
            others = values[:middle] + values[middle + 1 :]
            if not any(max(values[middle], other) / min(values[middle], other) <= AGREE for other in others):
                found.append(f"{name}: {field}")
    return found


# --- text ----------------------------------------------------------------------------------


def table(summary: Summary, scale: dict[str, Any], rounds: dict[str, list[Round]] | None = None) -> str:
    names = list(summary)
    rounds = rounds or {}
    rows = [
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, label, unit, _ in METRICS:
        label = label.replace("1,000", f"{scale['subscribers']:,}").replace("5,000", f"{scale['idle_connections']:,}")
        ours = summary.get(OURS, {}).get(key)
        cells = []
        for name in names:
            value = summary[name].get(key)
            cell = figure(value, unit)
            if name != OURS and ours is not None and value and unit != "cores":
                spread = ratio_spread(rounds.get(OURS, []), rounds.get(name, []), key)
                cell += f" ({ratio_text(ours / value, spread)})"
            cells.append(cell)
        rows.append(f"| {label}{f' ({unit})' if unit else ''} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def cpu_table(summary: Summary) -> str:
    """Cores each side used over what each load measured: a generator near 1.0 (it has one
    thread) set the pace itself."""
    sides = (("server", "server"), ("generator", "generator"), ("other", "other processes"))
    return cores_table(summary, list(summary), "cores used (of 2)", LOADS, sides)


def cores_table(summary: Summary, names: list[str], title: str, loads: Any, sides: tuple[tuple[str, str], ...]) -> str:
    """One row per load and side (server, generator, the rest of the machine), in cores."""
    rows = [f"| {title} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in loads:
        for side, what in sides:
            cells = []
            for name in names:
                value = summary[name].get(f"{key}_{side}_cores")
                if value is None:
                    cells.append("n/a")
                else:
                    cells.append(figure(value, "cores") if side == "generator" else f"{value:.2f}")
            rows.append(f"| {label}: {what} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ceiling_table(
    ceiling: dict[str, dict[str, Any]],
    scale: dict[str, Any],
    loads: list[tuple[str, str]] = LOADS,
    units: dict[str, str] | None = None,
) -> str:
    units = units or {"fanout": "deliveries/s"}
    rows = [
        "| load | against | rate | generator CPU (cores) | server CPU (cores) | generator's ceiling, measured "
        f"| extrapolated (rate {DIVIDED} generator CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in loads:
        if key not in ceiling:
            continue
        measured = ceiling[key]
        unit = units.get(key, units.get("", "msg/s"))
        rate = figure(measured["rate"], unit)
        reading = rate
        if measured["generator_cores"] < BOUND:
            reading = f"above {rate} (the server, on one core, set the pace)"
        cores = measured["generator_cores"]
        extrapolated = figure(measured["rate"] / cores, unit) if cores else "n/a"
        if key == "fanout":
            label = label.replace("fan-out", f"fan-out to {scale['subscribers']:,}")
        rows.append(
            f"| {label} | {measured['server']} | {rate} {unit} | {measured['generator_cores']:.2f} | "
            f"{measured['server_cores']:.2f} | {reading} | {extrapolated} |"
        )
    return "\n".join(rows)


def conditions(scale: dict[str, Any], made_on: dict[str, Any], done: int | None = None) -> str:
    """`done`: the rounds measured, where more than planned were (CPU had not settled)."""
    done = done or scale["rounds"]
    extra = ""
    if done > scale["rounds"]:
        extra = f" ({scale['rounds']} planned, {done - scale['rounds']} more while CPU had not settled)"
    return (
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores "
        f"({made_on['processor']}), Linux {made_on['linux']}; "
        f"medians of {done} interleaved round(s){extra}, 32-byte text messages. Server and load "
        f"generator (`ws-loadgen`, Rust, one thread) share the cores: neither is pinned (both may run "
        f"on cores {', '.join(map(str, made_on['affinity']))}), except for the one-core latency, where the "
        "server's threads and the generator are all pinned to core 0. Server CPU per message is the CPU "
        "time of the server's processes (every thread, user and system) over the span the load measures, "
        "divided by the messages handled in it: echoes, or deliveries to the subscribers for fan-out (the "
        "publisher's own copy of each broadcast is not counted). Generator CPU is the generator's CPU "
        f"time over that span divided by its length, in cores: from {BOUND:.2f} on (its one thread nearly "
        "busy) the load is marked generator-bound. Ratios in brackets are ours/peer (for CPU, latency and "
        "memory, lower is better), and where there were several rounds, the lowest and highest of the "
        "per-round ratios (rounds paired in the order they ran). A table stands once every server's CPU per "
        f"message on each load agrees with another round's within {AGREE - 1:.0%}."
    )


def settings(peers: dict[str, str]) -> str:
    return "How each server ran:\n\n" + "\n".join(f"- **{name}**: {how}." for name, how in peers.items())


# --- files ---------------------------------------------------------------------------------


def write(measured: dict[str, Any], out: Path) -> tuple[str, str]:
    """results.json, then the report rendered from it (see `render`)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(measured, indent=2) + "\n")
    return render(measured, out)


def render(measured: dict[str, Any], out: Path) -> tuple[str, str]:
    """Writes results.md and chart.png into `out`; returns its headline (conditions, how each
    server ran, the table) and the CPU table, for the terminal (README's is `readme_table`). A run of the HTTP loads
    alone (`--part http`) has no WebSocket part: results.md then holds the HTTP section only."""
    scale, made_on, summary = measured["scale"], measured["machine"], measured["medians"]
    http = http_section(measured["http"]) if measured.get("http") else ""
    http += sse_section(measured["sse"]) if measured.get("sse") else ""
    if measured.get("tls"):
        (out / "tls.md").write_text(tls_document(measured["tls"]))
        http += (
            "## TLS\n\nwss:// echo and an HTTPS GET against uvicorn and granian with the same certificate, and "
            "what TLS costs us: [tls.md](tls.md).\n\n"
        )
    if not summary:
        (out / "results.md").write_text(
            f"# Benchmark\n\n{http}Made by `just bench --part http` (bench/run.py); raw rounds in results.json.\n"
        )
        return http, ""
    report = table(summary, scale, measured["rounds"])
    done = max((len(each) for each in measured["rounds"].values()), default=None)
    stated = conditions(scale, made_on, done)
    # Worked out from the rounds, so a run made before the rule is held to it too.
    pending = unsettled(measured["rounds"], SETTLING)
    if pending:
        stated += (
            f" **This table does not stand**: these CPU figures agree with no other round's within "
            f"{AGREE - 1:.0%}: {', '.join(pending)}."
        )
    if measured.get("peers"):
        stated += "\n\n" + settings(measured["peers"])
    cpu = cpu_table(summary)
    ceiling = ""
    if measured.get("generator_ceiling"):
        ceiling = (
            "## The generator's ceiling\n\nAfter the rounds, each throughput load once more against the server "
            "fastest at it, with that server's threads pinned to one core and the generator alone on the other. "
            f"A generator that then used {BOUND:.2f} of its core or more ran at its ceiling; one that used less "
            "was held back by the server, and its rate is only a floor under the ceiling. The last column "
            "divides the rate by the generator's CPU: the rate one busy generator thread would drive at the "
            "CPU per message it spent here (a busier generator batches more, so if anything this is low).\n\n"
            f"{ceiling_table(measured['generator_ceiling'], scale)}\n\n"
        )
    (out / "results.md").write_text(
        f"# Benchmark\n\n{stated}\n\n{report}\n\n![chart](chart.png)\n\n"
        "## Who set the pace\n\nCPU used over what each load measured, medians (other processes: the rest "
        f"of the machine's busy time meanwhile, which an otherwise idle machine keeps near 0):\n\n{cpu}\n\n{ceiling}"
        f"{http}Made by `just bench` (bench/run.py); raw rounds in results.json.\n"
    )
    chart(summary, made_on["date"], out / "chart.png")
    return f"{stated}\n\n{report}", cpu


# --- the HTTP loads (bench/http_loads.py) ----------------------------------------------------

HTTP_LOADS = [
    ("plaintext", "plaintext GET"),
    ("json", "JSON GET with a path parameter"),
    ("echo", "POST of 1 KiB JSON, echoed"),
    ("middleware", "GET behind a before and an after middleware"),
]
# suffix of the key, label, unit
HTTP_METRICS = [
    ("", "50 connections", "req/s"),
    ("_server_us_per_request", "server CPU per request", "µs"),
    ("_p50_us", "p50, 1 connection, one core", "µs"),
    ("_p99_us", "p99, 1 connection, one core", "µs"),
    ("_p50_us_unpinned", "p50, 1 connection, unpinned", "µs"),
    ("_p99_us_unpinned", "p99, 1 connection, unpinned", "µs"),
    ("_one_connection_server_us_per_request", "server CPU per request, 1 connection, unpinned", "µs"),
    ("_generator_cores", "50 connections: wrk's CPU", "cores"),
]
ROBYN = "Robyn 0.88.0"
ROBYN_FAST = "Robyn 0.88.0 --fast"
UVICORN = "Starlette/uvicorn"
SOCKETIFY = "socketify.py"


def peer_cells(part: dict[str, Any], names: list[str], field: str, unit: str) -> list[str]:
    """One row's cells of a part's table: each server's median, a peer's with ours over it and
    the spread of the per-round ratios; "no figures" for a server that has none."""
    summary, rounds = part["medians"], part["rounds"]
    ours = summary.get(OURS, {}).get(field)
    cells = []
    for name in names:
        if name in part["missing"]:
            cells.append("no figures")
            continue
        value = summary[name].get(field)
        cell = figure(value, unit)
        if name != OURS and ours and value and unit != "cores":
            cell += f" ({ratio_text(ours / value, ratio_spread(rounds[OURS], rounds[name], field))})"
        cells.append(cell)
    return cells


def http_table(http: dict[str, Any]) -> str:
    summary, rounds = http["medians"], http["rounds"]
    names = list(rounds)
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in HTTP_LOADS:
        for suffix, what, unit in HTTP_METRICS:
            field = key + suffix
            if not any(summary.get(name, {}).get(field) for name in names):
                continue
            cells = peer_cells(http, names, field, unit)
            rows.append(f"| {label}: {what} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def http_targets(http: dict[str, Any]) -> str:
    """Issue 18's targets, judged on the medians, with each ratio's spread over the rounds."""
    summary, rounds = http["medians"], http["rounds"]
    if not summary.get(OURS):
        return ""
    peers = [name for name in summary if name not in (OURS, OURS_PROCESSES) and summary[name]]

    def judged(ours: str, peer: str, field: str, at_least: float | None, below: float | None) -> str:
        mine, theirs = summary.get(ours, {}).get(field), summary.get(peer, {}).get(field)
        if not mine or not theirs:
            return "not measured"
        ratio = mine / theirs
        met = ratio >= at_least if at_least is not None else ratio < below if below is not None else False
        return f"{ratio_text(ratio, ratio_spread(rounds[ours], rounds[peer], field))}: {'met' if met else 'missed'}"

    def worst(field: str, strictly: bool) -> str:
        """Ours against the peer it is closest to (or behind) on a lower-is-better figure."""
        mine = summary[OURS].get(field)
        present = [peer for peer in peers if summary[peer].get(field)]
        if not mine or not present:
            return "not measured"
        peer = max(present, key=lambda name: mine / summary[name][field])
        ratio = mine / summary[peer][field]
        met = ratio < 1 if strictly else ratio <= 1
        spread = ratio_spread(rounds[OURS], rounds[peer], field)
        return f"{ratio_text(ratio, spread)} {peer}'s: {'met' if met else 'missed'}"

    targets = [
        (f"req/s, one process, {TIMES}2 {ROBYN}'s", lambda key: judged(OURS, ROBYN, key, 2.0, None)),
        (f"req/s, one process, {TIMES}2 {UVICORN}'s", lambda key: judged(OURS, UVICORN, key, 2.0, None)),
        (f"req/s, one process, at or above {SOCKETIFY}'s", lambda key: judged(OURS, SOCKETIFY, key, 1.0, None)),
        (
            f"req/s, `--processes 2`, {TIMES}1.5 {ROBYN_FAST}'s",
            lambda key: judged(OURS_PROCESSES, ROBYN_FAST, key, 1.5, None),
        ),
        ("server CPU per request below every peer's", lambda key: worst(f"{key}_server_us_per_request", True)),
        ("p50, one core, at or below every peer's", lambda key: worst(f"{key}_p50_us", False)),
        ("p50, unpinned, at or below every peer's", lambda key: worst(f"{key}_p50_us_unpinned", False)),
    ]
    rows = ["| target | " + " | ".join(label for _, label in HTTP_LOADS) + " |", "|---|" + "---|" * len(HTTP_LOADS)]
    for what, judge in targets:
        rows.append(f"| {what} | " + " | ".join(judge(key) for key, _ in HTTP_LOADS) + " |")
    return "\n".join(rows)


def http_cpu_table(http: dict[str, Any]) -> str:
    summary = http["medians"]
    names = [name for name in summary if summary[name]]
    sides = (("server", "server"), ("generator", "wrk"), ("other", "other processes"))
    return cores_table(summary, names, "cores used (of 2), 50 connections", HTTP_LOADS, sides)


def http_section(http: dict[str, Any]) -> str:
    scale, made_on = http["scale"], http["machine"]
    done = max((len(each) for each in http["rounds"].values()), default=0)
    extra = done - scale["rounds"]
    detailed = scale["http_detailed_loads"].split(",")
    latency = "every load" if len(detailed) == len(HTTP_LOADS) else f"{', '.join(detailed)} only"
    stated = (
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores ({made_on['processor']}), Linux "
        f"{made_on['linux']}, shared by the server and the load generator in every figure. Generator: "
        f"{http['generator']} (Debian's `wrk`, one thread, `-t1`; "
        "bench/wrk.lua reads its figures out), "
        f"medians of {done} interleaved round(s)"
        + (f" ({scale['rounds']} planned, {extra} more while CPU per request had not settled)" if extra > 0 else "")
        + f". Throughput: 50 keep-alive connections for {scale['http_seconds']} s"
        + (f" after a {scale['http_warmup']} s warm-up" if scale["http_warmup"] else "")
        + f". Latency ({latency}): one connection, one request at a time, for {scale['http_latency_seconds']} s, "
        "wrk's p50 and p99 (1 µs steps); \"one core\": every thread of the server's processes and wrk pinned to "
        'core 0; "unpinned": both free on cores '
        f"{', '.join(map(str, made_on['affinity']))}. Server CPU per request: the CPU time of the server's "
        "processes (every thread, user and system, summed over the process tree of the multi-process servers) "
        "over wrk's run, divided by the requests answered. Ratios in brackets are robyn-ws-server (one process) "
        "over the peer, and the lowest and highest of the per-round ratios. A run's figures stand once every "
        f"server's CPU per request on every load agrees with another round's within {AGREE - 1:.0%}"
        + (f"; **not settled in this run**: {', '.join(http['unsettled'])}" if http.get("unsettled") else "")
        + "."
    )
    how = "How each server ran:\n\n" + "\n".join(f"- **{name}**: {text}." for name, text in http["settings"].items())
    missing = ""
    if http["missing"]:
        missing = "No figures (each server's answers on the four routes are checked before its loads):\n\n" + "\n".join(
            f"- **{name}**: {why}" for name, why in http["missing"].items()
        )
        missing += "\n\n"
    targets = http_targets(http)
    if targets:
        targets = f"### Targets\n\nissue 18's targets, on the medians:\n\n{targets}\n\n"
    ceiling = ""
    if http.get("generator_ceiling"):
        ceiling = (
            "### wrk's ceiling\n\nAfter the rounds, each load once more against the server fastest at it, that "
            "server's threads on one core and wrk alone on the other; wrk using "
            f"{BOUND:.2f} of its core or more ran at its ceiling, less and the server set the pace (the rate is a "
            "floor under wrk's ceiling; the last column extrapolates from wrk's CPU per request).\n\n"
            f"{ceiling_table(http['generator_ceiling'], scale, HTTP_LOADS, {'': 'req/s'})}\n\n"
        )
    return (
        f"## HTTP\n\n{stated}\n\n{how}\n\n{missing}{http_table(http)}\n\n{targets}"
        f"### Who set the pace (HTTP)\n\n{http_cpu_table(http)}\n\n{ceiling}"
    )


# --- the server-sent events load (bench/sse_loads.py) ---------------------------------------

# key, label, unit
SSE_METRICS = [
    ("sse", "events delivered", "deliveries/s"),
    ("sse_server_us_per_event", "server CPU per event delivered", "µs"),
    ("sse_server_cores", "server CPU", "cores"),
    ("sse_generator_cores", "generator CPU", "cores"),
    ("sse_other_cores", "other processes' CPU", "cores"),
]
# issue 19's target for our server: this many times every peer's deliveries/s.
SSE_TARGET = 1.5


def sse_table(sse: dict[str, Any]) -> str:
    summary, rounds = sse["medians"], sse["rounds"]
    names = list(rounds)
    subscribers = sse["scale"]["sse_subscribers"]
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for field, label, unit in SSE_METRICS:
        ours = summary.get(OURS, {}).get(field)
        cells = []
        for name in names:
            if name in sse["missing"]:
                cells.append("no figures")
                continue
            value = summary[name].get(field)
            # Only the generator can be bound by its own one thread.
            cell = f"{value:.2f}" if unit == "cores" and value is not None and "generator" not in field else None
            cell = cell or figure(value, unit)
            if name != OURS and ours and value and unit != "cores":
                cell += f" ({ratio_text(ours / value, ratio_spread(rounds[OURS], rounds[name], field))})"
            cells.append(cell)
        rows.append(f"| {subscribers:,} subscribers: {label} ({unit}) | " + " | ".join(cells) + " |")
    cells = []
    for name in names:
        answered = [r for r in rounds[name] if "missing" not in r]
        if not answered:
            cells.append("no figures")
            continue
        lost = sum(r["sse_lost"] for r in answered)
        uneven = max(r["sse_most_per_subscriber"] / max(r["sse_fewest_per_subscriber"], 1) for r in answered)
        cells.append(f"{lost:,} lost; {uneven:.2f}{TIMES}")
    rows.append(
        "| events lost (all rounds); most events one subscriber got over fewest another did, in the most uneven "
        "round | " + " | ".join(cells) + " |"
    )
    return "\n".join(rows)


def sse_target(sse: dict[str, Any]) -> str:
    """issue 19's target, judged on the medians: our deliveries/s at least SSE_TARGET x each peer's."""
    summary, rounds = sse["medians"], sse["rounds"]
    mine = summary.get(OURS, {}).get("sse")
    if not mine:
        why = sse["missing"].get(OURS, "not measured")
        return f"Target ({SSE_TARGET}{TIMES} every peer's deliveries/s): not measured for {OURS} ({why})."
    judged = []
    for name in rounds:
        theirs = summary.get(name, {}).get("sse")
        if name == OURS:
            continue
        if not theirs:
            judged.append(f"{name}: no figures, so none to beat")
            continue
        ratio = mine / theirs
        spread = ratio_spread(rounds[OURS], rounds[name], "sse")
        judged.append(f"{name} {ratio_text(ratio, spread)} ({'met' if ratio >= SSE_TARGET else 'missed'})")
    return f"Target ({SSE_TARGET}{TIMES} every peer's deliveries/s), on the medians: " + "; ".join(judged) + "."


def sse_conditions(sse: dict[str, Any]) -> str:
    scale, made_on = sse["scale"], sse["machine"]
    done = max((len(each) for each in sse["rounds"].values()), default=0)
    extra = done - scale["sse_rounds"]
    return (
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores ({made_on['processor']}), Linux "
        f"{made_on['linux']}, shared by the server and the load generator in every figure (neither pinned). "
        f"{scale['sse_subscribers']:,} subscribers (HTTP/1.1 GETs with `Accept: text/event-stream`) of one "
        'stream that a loop in the app feeds: a small JSON event (`{"seq": n, "pad": ...}`, some 40 bytes of data) '
        "put into a bounded queue (128 events) per subscriber, at most 32 events ahead of the subscriber "
        "furthest along; a subscriber more than 128 events behind the feeder loses the oldest (the client "
        "sees the gap and counts it lost, never delivered). The feeder starts once every subscriber has "
        f"joined. Generator: {sse['generator']} (one thread), which checks each answer (200, "
        "`text/event-stream`), parses each subscriber's first 20 events in full (chunked coding, SSE fields, "
        "JSON, rising sequence numbers) and then counts the `data:` fields it reads, each read's last sequence "
        f"number holding the count to account. Medians of {done} interleaved round(s)"
        + (f" ({scale['sse_rounds']} planned, {extra} more while CPU per event had not settled)" if extra > 0 else "")
        + f", each on a fresh server: {scale['sse_seconds']:g} s measured after {scale['sse_warmup']:g} s of "
        "warm-up. Server CPU per event: the CPU time of the server's processes (every thread, user and "
        "system) over the span measured, divided by the events the clients parsed in it. Ratios in brackets "
        "are robyn-ws-server over the peer, and the lowest and highest of the per-round ratios. A run's "
        f"figures stand once every server's CPU per event agrees with another round's within {AGREE - 1:.0%}"
        + (f"; **not settled in this run**: {', '.join(sse['unsettled'])}" if sse.get("unsettled") else "")
        + "."
    )


def how_each_ran(part: dict[str, Any]) -> str:
    """A part's list of how each server ran, then the servers without figures and why."""
    how = "How each server ran:\n\n" + "\n".join(f"- **{name}**: {text}." for name, text in part["settings"].items())
    if not part["missing"]:
        return how + "\n\n"
    missing = "\n".join(f"- **{name}**: {why}" for name, why in part["missing"].items())
    return f"{how}\n\nNo figures:\n\n{missing}\n\n"


def sse_summary(sse: dict[str, Any]) -> str:
    """results.md's server-sent events section: conditions, how each server ran, the table, the target."""
    return f"{sse_conditions(sse)}\n\n{how_each_ran(sse)}{sse_table(sse)}\n\n{sse_target(sse)}"


def sse_section(sse: dict[str, Any]) -> str:
    return f"## Server-sent events\n\n{sse_summary(sse)}\n\n"


# --- the TLS loads (bench/tls_loads.py) -----------------------------------------------------

# A column of ours over plain TCP (tls_loads.PLAIN).
PLAIN = " (plain)"
# key, label, unit; each label follows the protocol's name (wss:// or HTTPS).
TLS_METRICS = [
    ("echo", "echo, 50 connections", "msg/s"),
    ("echo_server_us_per_message", "echo, 50 connections: server CPU per message", "µs"),
    ("echo_generator_cores", "echo, 50 connections: generator CPU", "cores"),
    ("echo_in_flight_10", f"echo, 50 connections {TIMES} 10 in flight", "msg/s"),
    ("echo_in_flight_10_server_us_per_message", f"echo {TIMES} 10 in flight: server CPU per message", "µs"),
    ("echo_in_flight_10_generator_cores", f"echo {TIMES} 10 in flight: generator CPU", "cores"),
    ("get", "GET /plaintext, 50 connections", "req/s"),
    ("get_server_us_per_request", "GET /plaintext: server CPU per request", "µs"),
    ("get_generator_cores", "GET /plaintext: wrk's CPU", "cores"),
]
TLS_LOADS = [("echo", "echo"), ("echo_in_flight_10", f"echo {TIMES} 10"), ("get", "GET")]


def tls_protocol(key: str, tls: bool) -> str:
    if key.startswith("get"):
        return "HTTPS" if tls else "HTTP"
    return "wss://" if tls else "ws://"


def negotiated(rounds: list[Round], key: str) -> str:
    """What a load's handshakes negotiated over the rounds (one text unless they differed)."""
    seen = list(dict.fromkeys(r[key] for r in rounds if r.get(key)))
    return " / ".join(seen) if seen else "not checked"


def tls_table(tls: dict[str, Any]) -> str:
    """The servers over TLS, ratios ours/peer, and what each one's handshakes negotiated."""
    rounds = tls["rounds"]
    names = [name for name in rounds if not name.endswith(PLAIN)]
    rows = ["| over TLS | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for field, label, unit in TLS_METRICS:
        cells = peer_cells(tls, names, field, unit)
        rows.append(f"| {tls_protocol(field, True)} {label} ({unit}) | " + " | ".join(cells) + " |")
    for key, what in (("echo_negotiated", "wss://, ws-loadgen"), ("get_negotiated", "HTTPS, OpenSSL's client")):
        cells = [negotiated(rounds[name], key) for name in names]
        rows.append(f"| negotiated ({what}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def tls_cost_table(tls: dict[str, Any]) -> str:
    """Ours over plain TCP and over TLS, in the same rounds: what TLS costs, as plain/TLS for
    throughput and TLS/plain for CPU (above 1: TLS costs that much), with the per-round spread."""
    summary, rounds = tls["medians"], tls["rounds"]
    pairs = [(name.removesuffix(PLAIN), name) for name in rounds if name.endswith(PLAIN)]
    pairs = [(secure, plain) for secure, plain in pairs if secure in rounds]
    if not pairs:
        return ""
    header, rule = ["| the cost of TLS"], ["|---"]
    for secure, _ in pairs:
        header += [f"{secure}: plain", "TLS", "cost"]
        rule += ["---", "---", "---"]
    rows = [" | ".join(header) + " |", "|".join(rule) + "|"]
    for field, label, unit in TLS_METRICS:
        cells = []
        for secure, plain in pairs:
            if secure in tls["missing"] or plain in tls["missing"]:
                cells += ["no figures", "no figures", ""]
                continue
            clear, encrypted = summary[plain].get(field), summary[secure].get(field)
            cells += [figure(clear, unit), figure(encrypted, unit)]
            if unit == "cores" or not clear or not encrypted:
                cells.append("")
            elif unit == "µs":
                spread = ratio_spread(rounds[secure], rounds[plain], field)
                cells.append(ratio_text(encrypted / clear, spread))
            else:
                spread = ratio_spread(rounds[plain], rounds[secure], field)
                cells.append(ratio_text(clear / encrypted, spread))
        rows.append(f"| {label} ({unit}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def tls_cpu_table(tls: dict[str, Any]) -> str:
    summary = tls["medians"]
    names = [name for name in tls["rounds"] if summary.get(name)]
    sides = (
        ("server", "server"),
        ("generator", "generator (ws-loadgen, or wrk for GET)"),
        ("other", "other processes"),
    )
    return cores_table(summary, names, "cores used (of 2)", TLS_LOADS, sides)


def tls_conditions(tls: dict[str, Any]) -> str:
    scale, made_on = tls["scale"], tls["machine"]
    done = max((len(each) for each in tls["rounds"].values()), default=0)
    extra = done - scale["rounds"]
    warmup = f" after a {scale['http_warmup']} s warm-up" if scale["http_warmup"] else ""
    return (
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores ({made_on['processor']}), Linux "
        f"{made_on['linux']}, shared by the server and the load generator in every figure (neither pinned: "
        f"both may run on cores {', '.join(map(str, made_on['affinity']))}). Every server gets the same "
        "certificate: an ECDSA P-256 leaf for 127.0.0.1 and localhost from a CA made for the run (trustme), its "
        "key in PKCS#8, and is otherwise at its own TLS defaults; the generators trust that CA and verify the "
        "certificate. The WebSocket generator is "
        f"{tls['generator']['websocket']}, offering TLS 1.3 and 1.2, ALPN `http/1.1` and X25519 alone for the "
        "key exchange; the HTTP one is "
        f"{tls['generator']['http']} (one thread, `-t1`), at OpenSSL's defaults. The *negotiated* rows say what "
        "each server's handshakes chose: ws-loadgen's own, and those of OpenSSL's `s_client` at its defaults "
        "(the library wrk uses, without its certificate check). Loads: ws-loadgen's echo as in the WebSocket "
        f"part, 50 connections with one 32-byte text message in flight, then ten, {scale['echo_seconds']:g} s "
        f"measured after {scale['warmup']:g} s of warm-up; and `GET /plaintext` (a 13-byte text) by wrk over 50 "
        f"keep-alive connections for {scale['http_seconds']} s{warmup}, as the HTTP part's plaintext load. Every "
        "connection's handshake comes before what is measured: these figures are TLS's record layer "
        "(encryption and decryption on both sides), not handshakes. Each server's WebSocket and HTTP loads run "
        "on a fresh server of the part's own app; ours runs both loads over plain TCP too, in the same rounds, "
        "for the cost of TLS. Server CPU per message (per request): the CPU time of the server's processes "
        "(every thread, user and system) over the span measured, divided by the echoes (requests) in it; "
        f"generator CPU in cores, from {BOUND:.2f} on marked generator-bound (TLS costs the generator too). "
        f"Medians of {done} interleaved round(s)"
        + (f" ({scale['rounds']} planned, {extra} more while CPU had not settled)" if extra > 0 else "")
        + ". Ratios in brackets are robyn-ws-server (its defaults) over the peer, with the lowest and highest "
        "of the per-round ratios. A run's figures stand once every server's CPU per message and per request "
        f"agrees with another round's within {AGREE - 1:.0%}"
        + (f"; **not settled in this run**: {', '.join(tls['unsettled'])}" if tls.get("unsettled") else "")
        + "."
    )


def tls_summary(tls: dict[str, Any]) -> str:
    """README's TLS table: conditions, how each server ran, the servers over TLS, the cost of TLS."""
    cost = tls_cost_table(tls)
    if cost:
        cost = (
            "\n\nThe cost of TLS for robyn-ws-server: the same loads over plain TCP (`ws://`, `http://`) in the "
            "same rounds. Its cost is plain over TLS for throughput (how many times faster plain is), TLS over "
            "plain for CPU per message or request (how many times the CPU TLS takes): above 1, TLS costs that "
            f"much; lowest and highest of the per-round ratios in brackets.\n\n{cost}"
        )
    return f"{tls_conditions(tls)}\n\n{how_each_ran(tls)}{tls_table(tls)}{cost}"


def tls_document(tls: dict[str, Any]) -> str:
    """docs/bench/tls.md."""
    return (
        f"# TLS\n\n{tls_summary(tls)}\n\n## Who set the pace (TLS)\n\nCores used over what each load measured, "
        f"medians:\n\n{tls_cpu_table(tls)}\n\nMade by `just bench --part tls` (bench/run.py, bench/tls_loads.py); "
        "raw rounds in results.json (under `tls`).\n"
    )


def chart(summary: Summary, day: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [metric for key in CHARTED for metric in METRICS if metric[0] == key]
    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
    names = list(summary)
    colours = ["#d1495b" if name in (OURS, OURS_THREADED) else "#8d99ae" for name in names]
    for axis, (key, label, unit, higher) in zip(axes.flat, shown, strict=True):
        values = [summary[name].get(key) or 0 for name in names]
        bars = axis.bar(range(len(names)), values, color=colours)
        axis.set_title(f"{label}\n({unit or 'count'}, {'higher' if higher else 'lower'} is better)", fontsize=10)
        ticks = [name.replace(" ", "\n", 1).replace("/", "/\n") for name in names]
        axis.set_xticks(range(len(names)), ticks, fontsize=8)
        for bar, value in zip(bars, values, strict=True):
            axis.annotate(figure(value, unit), (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
        axis.margins(y=0.15)
    fig.suptitle(f"robyn-ws-server and its peers, {day}, 2 shared cores")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# README's headline: (part, key, label, unit, higher is better); the rest is in results.md.
HEADLINE = [
    ("ws", "echo", "WebSocket echo, 50 connections", "msg/s", True),
    ("ws", "echo_server_us_per_message", "WebSocket echo: server CPU per message", "µs", False),
    ("ws", "p50_us", "WebSocket latency, 1 connection, p50 (one core)", "µs", False),
    ("ws", "fanout", "WebSocket fan-out to {subscribers:,} subscribers", "deliveries/s", True),
    ("ws", "idle_kib_per_connection", "idle memory per WebSocket ({idle_connections:,} open)", "KiB", False),
    ("http", "plaintext", "HTTP plaintext GET, 50 connections", "req/s", True),
    ("http", "json", "HTTP JSON GET with a path parameter, 50 connections", "req/s", True),
    ("sse", "sse", "server-sent events to {sse_subscribers:,} subscribers", "deliveries/s", True),
    ("tls", "echo", "wss:// echo, 50 connections", "msg/s", True),
    ("tls", "get", "HTTPS plaintext GET, 50 connections", "req/s", True),
]


def better(ours: float, theirs: float, higher: bool) -> str:
    """How many times better ours is than the peer's figure (below 1: the peer's is better)."""
    times = ours / theirs if higher else theirs / ours
    return f"{times:,.0f}{TIMES}" if times >= 10 else f"{times:.2g}{TIMES}"


def readme_table(measured: dict[str, Any]) -> str:
    """README's headline: a line on when and where, then one row per headline figure, our
    server's (one process, its defaults) against each peer's, with how many times better ours
    is. Conditions, how each ran, the spreads and every other figure: results.md."""
    parts = {"ws": measured.get("medians") or {}}
    for part in ("http", "sse", "tls"):
        if measured.get(part):
            missing = measured[part].get("missing", {})
            parts[part] = {name: each for name, each in measured[part]["medians"].items() if name not in missing}
    others = (OURS_THREADED, OURS_PROCESSES, ROBYN_FAST)
    names = [OURS]
    for summary in parts.values():
        # Our plain runs of the TLS part are its baseline, not a peer.
        names += [name for name in summary if name not in names and name not in others and not name.endswith(PLAIN)]
    scale = {**(measured.get("sse") or {}).get("scale", {}), **measured.get("scale", {})}
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for part, key, label, unit, higher in HEADLINE:
        summary = parts.get(part, {})
        ours = summary.get(OURS, {}).get(key)
        if not ours:
            continue
        cells = [figure(ours, unit)]
        for name in names[1:]:
            theirs = summary.get(name, {}).get(key)
            cells.append(f"{figure(theirs, unit)} ({better(ours, theirs, higher)})" if theirs else "n/a")
        rows.append(f"| {label.format(**scale)} ({unit}) | " + " | ".join(cells) + " |")
    made_on = measured.get("machine") or (measured.get("sse") or {}).get("machine", {})
    counted = []
    for part, what in (("ws", "WebSocket"), ("http", "HTTP"), ("sse", "server-sent events"), ("tls", "TLS")):
        source = measured if part == "ws" else measured.get(part) or {}
        done = max((len(each) for each in source.get("rounds", {}).values()), default=0)
        day = (source.get("machine") or {}).get("date", "")
        if done:
            counted.append(f"{what} {done}" + (f" ({day})" if day and day != made_on.get("date") else ""))
    stated = (
        f"{made_on.get('date', 'undated')}, one {made_on.get('cores', '?')}-core {made_on.get('processor', '')} "
        f"machine shared by each server and its load generator; medians of interleaved rounds ("
        f"{', '.join(counted)}). In brackets: how many times better ours is (higher throughput, less CPU, "
        f"lower latency, less memory; below 1{TIMES}, the peer's figure is better); n/a: not measured on that "
        "peer."
    )
    return f"{stated}\n\n" + "\n".join(rows)


def update_readme(measured: dict[str, Any]) -> None:
    """README's headline table (`readme_table`), between its bench markers."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + start + "\n" + readme_table(measured) + "\n" + end + rest.split(end, 1)[1]
    readme.write_text(text)
