"""The benchmark's report, from the rounds bench/run.py measured: medians, the tables,
docs/bench/ (results.json, results.md, chart.png) and the headline table in README.md.

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
    if unit in ("msg/s", "deliveries/s"):
        return f"{value / 1000:,.1f}k" if value < 1e6 else f"{value / 1e6:,.2f}M"
    if unit == "":
        return f"{value:,.0f}"
    if unit == "cores":
        return f"{value:.2f}" + (" (generator-bound)" if value >= BOUND else "")
    if unit == "µs" and value < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}"


# --- text ----------------------------------------------------------------------------------


def table(summary: Summary, scale: dict[str, Any]) -> str:
    names = list(summary)
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
                ratio = ours / value
                cell += f" ({ratio:.2f}{TIMES})" if ratio >= 0.1 else f" ({ratio:.2g}{TIMES})"
            cells.append(cell)
        rows.append(f"| {label}{f' ({unit})' if unit else ''} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def cpu_table(summary: Summary) -> str:
    """Cores each side used over what each load measured: a generator near 1.0 (it has one
    thread) set the pace itself."""
    names = list(summary)
    rows = ["| cores used (of 2) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in LOADS:
        for side in ("server", "generator", "other"):
            cells = []
            for name in names:
                value = summary[name].get(f"{key}_{side}_cores")
                if value is None:
                    cells.append("n/a")
                else:
                    cells.append(figure(value, "cores") if side == "generator" else f"{value:.2f}")
            rows.append(f"| {label}: {'other processes' if side == 'other' else side} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ceiling_table(ceiling: dict[str, dict[str, Any]], scale: dict[str, Any]) -> str:
    rows = [
        "| load | against | rate | generator CPU (cores) | server CPU (cores) | generator's ceiling, measured "
        f"| extrapolated (rate {DIVIDED} generator CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in LOADS:
        if key not in ceiling:
            continue
        measured = ceiling[key]
        unit = "deliveries/s" if key == "fanout" else "msg/s"
        rate = figure(measured["rate"], unit)
        reading = rate
        if measured["generator_cores"] < BOUND:
            reading = f"above {rate} (the server, on one core, set the pace)"
        cores = measured["generator_cores"]
        extrapolated = figure(measured["rate"] / cores, unit) if cores else "n/a"
        label = label.replace("fan-out", f"fan-out to {scale['subscribers']:,}")
        rows.append(
            f"| {label} | {measured['server']} | {rate} {unit} | {measured['generator_cores']:.2f} | "
            f"{measured['server_cores']:.2f} | {reading} | {extrapolated} |"
        )
    return "\n".join(rows)


def conditions(scale: dict[str, Any], made_on: dict[str, Any]) -> str:
    return (
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores "
        f"({made_on['processor']}), Linux {made_on['linux']}; "
        f"medians of {scale['rounds']} interleaved round(s), 32-byte text messages. Server and load "
        f"generator (`ws-loadgen`, Rust, one thread) share the cores: neither is pinned (both may run "
        f"on cores {', '.join(map(str, made_on['affinity']))}), except for the one-core latency, where the "
        "server's threads and the generator are all pinned to core 0. Server CPU per message is the CPU "
        "time of the server's processes (every thread, user and system) over the span the load measures, "
        "divided by the messages handled in it: echoes, or deliveries to the subscribers for fan-out (the "
        "publisher's own copy of each broadcast is not counted). Generator CPU is the generator's CPU "
        f"time over that span divided by its length, in cores: from {BOUND:.2f} on (its one thread nearly "
        "busy) the load is marked generator-bound. Ratios in brackets are ours/peer (for CPU, latency and "
        "memory, lower is better)."
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
    """Writes results.md and chart.png into `out`; returns README's headline (conditions, how
    each server ran, the table) and the CPU table, for the terminal."""
    scale, made_on, summary = measured["scale"], measured["machine"], measured["medians"]
    report = table(summary, scale)
    stated = conditions(scale, made_on)
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
        "Made by `just bench` (bench/run.py); raw rounds in results.json.\n"
    )
    chart(summary, made_on["date"], out / "chart.png")
    return f"{stated}\n\n{report}", cpu


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


def update_readme(headline: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        readme.write_text(before + start + "\n" + headline + "\n" + end + rest.split(end, 1)[1])
