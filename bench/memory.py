"""What a client can make our server hold, and what the server keeps after a peak, with each
memory allocator it could use (`just bench-memory`, or `python3 bench/memory.py`). Writes
docs/bench/memory.md and memory.json.

The server is built once per allocator under its Rust side (the crate's `alloc-mimalloc` and
`alloc-jemalloc` features; the default is glibc's malloc): Python's own allocations go through
glibc whichever it is. Each variant runs with and without the server's trimming thread
(`--memory-trim-interval`, glibc's malloc_trim where freed memory piled up). For each: the
probes of tests/test_abuse.py at an attacker's sizes, one fresh server each, with the RSS before,
at the peak and once back within 20% of before (or a minute after the clients left); then the
throughput loads of `just bench` with the server's CPU per message (interleaved rounds) and idle
memory per connection. `--before PATH` adds a binary built from an earlier commit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import report
from run import BINARIES, FULL, ROOT, THROUGHPUT_LOADS, Peer, Running, figures, generate, hold, load_args, setup

sys.path.insert(0, str(ROOT / "tests"))
from wire import BINARY, PING, TEXT, Attacker, frame  # the tests' raw client

MiB = 1024
BACK_WITHIN = 60.0
ROUNDS = 3
IDLE_CONNECTIONS = 5000
JEMALLOC_PURGING = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000"


@dataclass
class Variant:
    name: str
    feature: str | None = None
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    binary: Path | None = None


NO_TRIM = ["--memory-trim-interval", "0"]
VARIANTS = [
    Variant("glibc, never trimmed", None, NO_TRIM),
    Variant("glibc + trim (the default)", None),
    Variant("mimalloc", "alloc-mimalloc", NO_TRIM),
    Variant("mimalloc + trim", "alloc-mimalloc"),
    Variant("jemalloc, background purging", "alloc-jemalloc", NO_TRIM, {"_RJEM_MALLOC_CONF": JEMALLOC_PURGING}),
    Variant("jemalloc + trim", "alloc-jemalloc", [], {"_RJEM_MALLOC_CONF": JEMALLOC_PURGING}),
]


def build(variants: list[Variant]) -> None:
    for feature in dict.fromkeys(variant.feature for variant in variants if variant.binary is None):
        extra = ["--features", feature] if feature else []
        command = ["cargo", "build", "--release", "--locked", "--quiet", "-p", "robyn-ws-server", *extra]
        subprocess.run(command, cwd=ROOT, check=True)
        target = BINARIES / f"robyn-ws-server-{feature or 'glibc'}"
        shutil.copy2(ROOT / "target" / "release" / "robyn-ws-server", target)
        for variant in variants:
            if variant.feature == feature and variant.binary is None:
                variant.binary = target


def start(variant: Variant, app: list[str]) -> Running:
    saved = {key: os.environ.get(key) for key in variant.env}
    os.environ.update(variant.env)
    try:
        return Running(Peer(variant.name, [str(variant.binary), *app, "--log-level", "warn", *variant.flags], True))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the probes: each makes a peak; the clients leave; how much stays? ----------------
# Each answers what happened and the server's RSS at its peak (while its clients are there).


def ping_flood(server: Running) -> tuple[str, int]:
    attacker = Attacker(server.port, "/echo")
    sent = attacker.flood(frame(PING, bytes(125)) * 1000, 1000)
    peak = server.rss_kib()
    attacker.close()
    return f"{sent * 1000:,} of 1,000,000 pings taken", peak


def big_echoes(server: Running) -> tuple[str, int]:
    attacker = Attacker(server.port, "/echo")
    sent = attacker.flood(frame(BINARY, os.urandom(10 << 20)), 100)
    peak = server.rss_kib()
    attacker.close()
    return f"{sent} of 100 taken", peak


def send_to(server: Running) -> tuple[str, int]:
    target = Attacker(server.port, "/idle")
    _, target_id = target.read_frame()
    sender = Attacker(server.port, "/send-to")
    sender.sock.settimeout(120)
    sender.sock.sendall(frame(TEXT, f"{target_id.decode()} 40 {10 << 20}".encode()))
    results = sender.read_frame()[1].decode().split()
    peak = server.rss_kib()
    for client in (sender, target):
        client.close()
    return f"{results.count('T')} of 40 queued", peak


def big_headers(server: Running) -> tuple[str, int]:
    held = [Attacker(server.port, "/idle", header_bytes=300_000) for _ in range(300)]
    statuses = sorted({client.status for client in held})
    peak = server.rss_kib()
    for client in held:
        client.close()
    return f"answered {', '.join(map(str, statuses))}", peak


def burst(server: Running) -> tuple[str, int]:
    clients = [Attacker(server.port, "/echo") for _ in range(5000)]
    for client in clients:
        client.sock.sendall(frame(TEXT, b"hello"))
    answered = sum(client.read_frame()[0] == TEXT for client in clients)
    peak = server.rss_kib()
    for client in clients:
        client.close()
    return f"{answered:,} answered", peak


PROBES: list[tuple[str, Callable[[Running], tuple[str, int]]]] = [
    ("ping flood, never reading the pongs", ping_flood),
    ("10 MB echoes, never read", big_echoes),
    ("send_to 10 MB x 40, never read", send_to),
    ("300 idle connections, 300 KB header each", big_headers),
    ("5,000 connections, each echoes once, then all close", burst),
]


def probe(variant: Variant, name: str, make_peak: Callable[[Running], tuple[str, int]]) -> dict:
    server = start(variant, ["--app", "limits", "--app-dir", "tests/apps"])
    try:
        # Before the peak: a server that has served a few clients.
        warm = [Attacker(server.port, "/echo") for _ in range(50)]
        for client in warm:
            client.sock.sendall(frame(TEXT, b"warm"))
            client.read_frame()
            client.close()
        time.sleep(1)
        before = server.rss_kib()
        what, peak = make_peak(server)
        left = time.monotonic()
        while (now := server.rss_kib()) > before * 1.2 and time.monotonic() - left < BACK_WITHIN:
            time.sleep(0.25)
        back = time.monotonic() - left if now <= before * 1.2 else None
        answered = still_answers(server)
        return {"probe": name, "what": what, "before": before, "peak": peak, "after": now, "back_s": back} | answered
    finally:
        server.stop()


def still_answers(server: Running) -> dict:
    try:
        client = Attacker(server.port, "/echo")
        client.sock.sendall(frame(TEXT, b"still there?"))
        return {"still_answers": client.read_frame() == (TEXT, b"still there?")}
    except (OSError, AssertionError) as error:
        return {"still_answers": False, "error": str(error)}


# --- throughput and idle memory, as `just bench` measures them ------------------------


def throughput(variant: Variant) -> dict:
    server = start(variant, ["--app", "bench.apps.robyn_app"])
    try:
        result = {}
        for load in THROUGHPUT_LOADS:
            result |= figures(load, generate(server, load_args(load, server, FULL)))
        return result
    finally:
        server.stop()


def idle(variant: Variant) -> float:
    server = start(variant, ["--app", "bench.apps.robyn_app"])
    try:
        hold(server, 10)
        before = server.rss_kib()
        held = hold(server, IDLE_CONNECTIONS)
        return (held["rss_kib"] - before) / IDLE_CONNECTIONS
    finally:
        server.stop()


LOADS = [
    ("echo", "echo, 50 connections", "msg/s"),
    ("echo_in_flight_10", "echo, 50 connections x 10 in flight", "msg/s"),
    ("fanout", "fan-out to 1,000 subscribers", "deliveries/s"),
]


def render(measured: dict) -> str:
    made_on = measured["machine"]
    lines = [
        "# What a client can make the server hold, by allocator",
        "",
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores ({made_on['processor']}), "
        f"Linux {made_on['linux']}, shared by server and load generator. `python3 bench/memory.py`: "
        "each probe on a fresh server (the tests' limits app, no compression), RSS before, at the "
        f"peak, and once back within 20% of before (or {BACK_WITHIN:.0f} s after the clients left); "
        f"then `just bench`'s throughput loads (medians of {ROUNDS} interleaved rounds, server and "
        f"generator sharing the cores) and idle memory ({IDLE_CONNECTIONS:,} connections). The "
        "allocator named is the Rust side's; Python's allocations go through glibc in every "
        f"variant. jemalloc ran with `{JEMALLOC_PURGING}`; mimalloc at its defaults.",
        "",
    ]
    names = list(measured["variants"])
    lines += ["| probe | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for index, (probe_name, _) in enumerate(PROBES):
        cells = []
        for name in names:
            result = measured["variants"][name]["probes"][index]
            back = f"back in {result['back_s']:.0f} s" if result["back_s"] is not None else "not back in 60 s"
            answered = "" if result["still_answers"] else "; **others no longer answered**"
            cells.append(
                f"{result['before'] / MiB:.0f} → {result['peak'] / MiB:.0f} → {result['after'] / MiB:.0f} MiB, "
                f"{back} ({result['what']}){answered}"
            )
        lines.append(f"| {probe_name} | " + " | ".join(cells) + " |")
    for load, label, unit in LOADS:
        cells = []
        for name in names:
            rounds = measured["variants"][name]["throughput"]
            rate = statistics.median(r[load] for r in rounds)
            cpu = statistics.median(r[f"{load}_server_us_per_message"] for r in rounds)
            cells.append(f"{rate / 1000:,.1f}k {unit}, {cpu:.2f} µs CPU each")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{measured['variants'][name]['idle_kib']:.2f} KiB" for name in names]
    lines.append(f"| idle memory per connection ({IDLE_CONNECTIONS:,}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="also measure this binary (built from an earlier commit)")
    parser.add_argument("--out", type=Path, default=report.DOCS)
    parser.add_argument("--report-only", action="store_true", help="render OUT/memory.md again from memory.json")
    options = parser.parse_args()
    if options.report_only:
        text = render(json.loads((options.out / "memory.json").read_text()))
        (options.out / "memory.md").write_text(text)
        print(text)
        return
    setup()
    variants = [Variant(f"before ({options.before.name})", binary=options.before)] if options.before else []
    variants += VARIANTS
    build(variants)
    (ROOT / "out" / "bench").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {variant.name: {"probes": [], "throughput": []} for variant in variants}
    for variant in variants:
        for name, make_peak in PROBES:
            print(f"{variant.name}: {name}", flush=True)
            results[variant.name]["probes"].append(probe(variant, name, make_peak))
            print(f"  {json.dumps(results[variant.name]['probes'][-1])}", flush=True)
        results[variant.name]["idle_kib"] = idle(variant)
    for index in range(ROUNDS):
        for variant in variants[index % len(variants) :] + variants[: index % len(variants)]:
            results[variant.name]["throughput"].append(throughput(variant))
            print(f"throughput {variant.name}: {json.dumps(results[variant.name]['throughput'][-1])}", flush=True)
    measured = {"machine": report.machine(), "variants": results}
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "memory.json").write_text(json.dumps(measured, indent=1) + "\n")
    text = render(measured)
    (options.out / "memory.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
