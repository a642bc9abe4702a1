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
TIMES = "\u00d7"

Round = dict[str, Any]
Summary = dict[str, dict[str, float | None]]

METRICS = [
    # key, label, unit, higher is better
    ("echo", "echo, 50 connections", "msg/s", True),
    ("echo_in_flight_10", f"echo, 50 connections {TIMES} 10 in flight", "msg/s", True),
    ("p50_us", "latency, 1 connection, p50 (one core)", "µs", False),
    ("p99_us", "latency, 1 connection, p99 (one core)", "µs", False),
    ("p50_us_two_cores", "latency, 1 connection, p50 (two cores)", "µs", False),
    ("fanout", "fan-out to 1,000 subscribers", "deliveries/s", True),
    ("idle_kib_per_connection", "idle memory per connection (5,000)", "KiB", False),
    ("held", "connections held, each answering", "", True),
]

CPU_ROWS = [
    ("echo_server_cores", "echo, 50 connections: server"),
    ("echo_generator_cores", "echo, 50 connections: generator"),
    ("fanout_server_cores", "fan-out: server"),
    ("fanout_generator_cores", "fan-out: generator"),
]


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


def results(scale: dict[str, Any], made_on: dict[str, Any], rounds: dict[str, list[Round]]) -> dict[str, Any]:
    """What results.json holds: the loads' scale, the machine, every round and the medians."""
    return {"scale": scale, "machine": made_on, "rounds": rounds, "medians": summarize(rounds)}


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
            if name != OURS and ours is not None and value:
                cell += f" ({ours / value:.2f}{TIMES})"
            cells.append(cell)
        rows.append(f"| {label}{f' ({unit})' if unit else ''} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def cpu_table(summary: Summary) -> str:
    """Cores each side used: a generator near 1.0 (it has one thread) set the pace itself."""
    names = list(summary)
    rows = ["| cores used (of 2) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in CPU_ROWS:
        cells = []
        for name in names:
            value = summary[name].get(key)
            mark = " (generator-bound)" if key.endswith("generator_cores") and value and value >= 0.9 else ""
            cells.append("n/a" if value is None else f"{value:.2f}{mark}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def conditions(scale: dict[str, Any], made_on: dict[str, Any]) -> str:
    return (
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores "
        f"({made_on['processor']}), Linux {made_on['linux']}; "
        f"medians of {scale['rounds']} interleaved round(s), 32-byte text messages. Server and load "
        f"generator (`ws-loadgen`, Rust, one thread) share the cores: neither is pinned (both may run "
        f"on cores {', '.join(map(str, made_on['affinity']))}), except for the one-core latency, where the "
        "server's threads and the generator are all pinned to core 0. Ratios in brackets are "
        "ours/peer (for latency and memory, lower is better)."
    )


# --- files ---------------------------------------------------------------------------------


def write(measured: dict[str, Any], out: Path) -> tuple[str, str]:
    """results.json, then the report rendered from it (see `render`)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(measured, indent=2) + "\n")
    return render(measured, out)


def render(measured: dict[str, Any], out: Path) -> tuple[str, str]:
    """Writes results.md and chart.png into `out`; returns README's headline (conditions and
    table) and the CPU table, for the terminal."""
    scale, made_on, summary = measured["scale"], measured["machine"], measured["medians"]
    report = table(summary, scale)
    stated = conditions(scale, made_on)
    cpu = cpu_table(summary)
    (out / "results.md").write_text(
        f"# Benchmark\n\n{stated}\n\n{report}\n\n![chart](chart.png)\n\n"
        f"## Who set the pace\n\nCPU used during the loads, medians:\n\n{cpu}\n\n"
        "Made by `just bench` (bench/run.py); raw rounds in results.json.\n"
    )
    chart(summary, made_on["date"], out / "chart.png")
    return f"{stated}\n\n{report}", cpu


def chart(summary: Summary, day: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [metric for metric in METRICS if metric[0] not in ("p99_us", "p50_us_two_cores")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    names = list(summary)
    colours = ["#d1495b" if name == OURS else "#8d99ae" for name in names]
    for axis, (key, label, unit, higher) in zip(axes.flat, shown, strict=False):
        values = [summary[name].get(key) or 0 for name in names]
        bars = axis.bar(range(len(names)), values, color=colours)
        axis.set_title(f"{label}\n({unit or 'count'}, {'higher' if higher else 'lower'} is better)", fontsize=10)
        axis.set_xticks(range(len(names)), [name.replace(" ", "\n", 1) for name in names], fontsize=8)
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
