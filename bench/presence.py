"""The presence and history part of `just bench` (`just bench-presence` alone): our server as
one process, as `--processes 2`, and as two instances joined by a real redis-server, on this
machine's two cores (shared by the servers, Redis and the load generator).

- `send_to_user` latency (p50, p99): ws-loadgen's relay load, from a sender to a recipient
  user placed beside it, on the other process, or on the other instance; the same load over a
  broadcast (`exclude_self`) beside it, as the baseline.
- A presence query (`await websocket.presence(room)`, 1,000 users present, spread over the
  processes or instances): timed inside the app, p50 and p99 of 2,000 queries.
- A join seen elsewhere: from a user's connection being accepted on one process (or instance)
  to another one's `presence()` listing it (p50, p99 of 100 joins; polled by a client, one
  round trip per look).
- Fan-out with a history against without: ws-loadgen's fan-out load (1,000 subscribers,
  bursts of 100 broadcasts) to a route without history, to one with `history=100`, and to one
  whose messages are made by a function of the offset; the ratio to the plain route. The
  broadcasts come from one publisher, then from ten taking turns: a kept broadcast waits for
  its offset, so one publisher's broadcasts go one at a time through the history's keeper
  (the supervisor, or Redis), each delivered on its own.

Only our server runs here: none of the peers (Robyn, Starlette, socketify.py, picows) has
presence, user addressing or a history to measure beside it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import report
from run import SERVER, SMOKE, Scale, figures, generate_against, run_part, use_built, wait_for_quiet
from scaleout import Setup, instances, median, running

APP = [str(SERVER), "--app", "bench.apps.people_app", "--log-level", "warn"]
CROWD = 1000
PROBES = 2000
JOINS = 100
ROUTES = {"plain": "/broadcast", "history": "/kept", "history, offset in the message": "/kept_offset"}
# One publisher: each kept broadcast waits for its offset before the next is read. Ten: as many
# in flight, as in a room where many people talk.
PUBLISHERS = (1, 10)


def one_process() -> Iterator[Setup]:
    return running("1 process", [APP])


def two_processes() -> Iterator[Setup]:
    return running("--processes 2", [[*APP, "--processes", "2"]])


def two_instances() -> Iterator[Setup]:
    return instances(2, APP)


def relay(setup: Setup, route: str, place: str, scale: Scale, to: int) -> dict:
    """ws-loadgen's relay from the first server to a subscriber placed `same` or `other`."""
    if route == "/relay_user":
        sender, recipient = f"{setup.url()}{route}?as=pub", f"{setup.url(to)}{route}?as=sub"
    else:
        sender, recipient = f"{setup.url()}{route}", f"{setup.url(to)}{route}"
    args = ["relay", sender, recipient, "--place", place]
    args += ["--seconds", str(scale.latency_seconds), "--warmup", str(scale.warmup)]
    load = generate_against(setup.pids(), setup.name, args)
    return {"p50_us": load.report["p50_us"], "p99_us": load.report["p99_us"]}


def fanout(setup: Setup, route: str, publishers: int, scale: Scale) -> dict:
    subscribers = ["--subscribers", str(scale.subscribers), "--messages", str(scale.broadcasts)]
    subscribers += ["--publishers", str(publishers)]
    args = ["fanout", f"{setup.url()}{route}", *subscribers, "--repeat", str(scale.bursts), "--timeout", "600"]
    return figures("fanout", generate_against(setup.pids(), setup.name, args))


async def crowd(setup: Setup, users: int, probes: int, joins: int, elsewhere: bool) -> dict:
    """Presence queries with `users` present, and how soon a join shows on another process
    (`elsewhere`; else on its own)."""
    from websockets.asyncio.client import connect

    async def greeted(url: str) -> tuple[object, str]:
        ws = await connect(url, max_queue=None)
        return ws, str(await ws.recv()).removeprefix("pid ")

    crowd = await asyncio.gather(*(greeted(f"{setup.url(n)}/crowd?user=u{n}") for n in range(users)))
    watcher, watcher_pid = crowd[0]
    await watcher.send(f"probe {probes}")
    query = json.loads(await watcher.recv())
    seen = []
    for n in range(joins):
        # The joiner on another process (or instance) than the watcher's.
        for _ in range(64):
            joiner, pid = await greeted(f"{setup.url(n + 1)}/crowd?user=j{n}")
            if not elsewhere or pid != watcher_pid or len(setup.servers) > 1:
                break
            await joiner.close()
        accepted = time.perf_counter()
        while True:
            await watcher.send(f"has j{n}")
            if await watcher.recv() == "yes":
                break
        seen.append((time.perf_counter() - accepted) * 1e6)
        await joiner.close()
    for ws, _ in crowd:
        await ws.close()
    seen.sort()
    return {
        "presence_users": query["users"],
        "presence_query_p50_us": query["p50_us"],
        "presence_query_p99_us": query["p99_us"],
        "join_seen_p50_us": seen[len(seen) // 2],
        "join_seen_p99_us": seen[min(len(seen) - 1, len(seen) * 99 // 100)],
    }


def measure_round(scale: Scale, quiet: bool, smoke: bool) -> dict[str, dict]:
    results: dict[str, dict] = {}
    users, probes, joins = (50, 100, 10) if smoke else (CROWD, PROBES, JOINS)
    for name, start in (
        ("1 process", one_process),
        ("--processes 2", two_processes),
        ("2 instances + Redis", two_instances),
    ):
        if quiet:
            wait_for_quiet()
        with start() as setup:
            to = 1 if len(setup.servers) > 1 else 0
            place = "same" if name == "1 process" else "other"
            figures_here: dict = {
                "send_to_user": relay(setup, "/relay_user", place, scale, to),
                "broadcast": relay(setup, "/relay", place, scale, to),
            }
            figures_here |= asyncio.run(crowd(setup, users, probes, joins, elsewhere=place == "other"))
            for publishers in PUBLISHERS:
                for label, route in ROUTES.items():
                    figures_here[fanout_key(label, publishers)] = fanout(setup, route, publishers, scale)
            results[name] = figures_here
    return results


def run(scale: Scale, out: Path, quiet: bool) -> str:
    rounds = []
    smoke = scale == SMOKE
    for index in range(scale.rounds):
        print(f"presence round {index + 1}/{scale.rounds}", flush=True)
        rounds.append(measure_round(scale, quiet, smoke))
        print(f"  {json.dumps(rounds[-1])}", flush=True)
    measured = {"machine": report.machine(), "scale": asdict(scale), "rounds": rounds}
    out.mkdir(parents=True, exist_ok=True)
    (out / "presence.json").write_text(json.dumps(measured, indent=1) + "\n")
    text = render(measured)
    (out / "presence.md").write_text(text)
    return text


def fanout_key(label: str, publishers: int) -> str:
    return f"fanout {label}" + ("" if publishers == 1 else f", {publishers} publishers")


def render(measured: dict) -> str:
    rounds = measured["rounds"]
    made_on = measured["machine"]
    setups = list(rounds[0])

    def cell(setup: str, *keys: str, unit: str = "µs") -> str:
        value = median(rounds, setup, *keys)
        return "n/a" if value is None else f"{value:,.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"

    lines = [
        "# Presence, send_to_user and history",
        "",
        f"{made_on['date']}, {made_on['host']}: {made_on['cores']} cores ({made_on['processor']}), Linux "
        f"{made_on['linux']}, shared by the servers, Redis and the load generator; medians of {len(rounds)} "
        "round(s), each setup on fresh servers. Our server only: no peer has presence, user addressing or a "
        "history. bench/presence.py says how each figure is taken.",
        "",
        "A kept broadcast waits for its offset, so one publisher's broadcasts go one at a time through "
        "the history's keeper (the supervisor, or Redis) and reach each client one frame per write; "
        "alone, the history is in the process and a broadcast waits for nothing. Ten publishers taking "
        "turns keep ten in flight.",
        "",
        "| | " + " | ".join(setups) + " |",
        "|---|" + "---|" * len(setups),
        "| `send_to_user` latency p50 (the recipient beside the sender; on the other process; "
        + "on the other instance) | "
        + " | ".join(cell(setup, "send_to_user", "p50_us") for setup in setups)
        + " |",
        "| `send_to_user` latency p99 | "
        + " | ".join(cell(setup, "send_to_user", "p99_us") for setup in setups)
        + " |",
        "| the same over a broadcast (`exclude_self`), p50 | "
        + " | ".join(cell(setup, "broadcast", "p50_us") for setup in setups)
        + " |",
        "| the same over a broadcast, p99 | "
        + " | ".join(cell(setup, "broadcast", "p99_us") for setup in setups)
        + " |",
        f"| `presence(room)` query p50, {CROWD:,} users present | "
        + " | ".join(cell(setup, "presence_query_p50_us") for setup in setups)
        + " |",
        "| `presence(room)` query p99 | " + " | ".join(cell(setup, "presence_query_p99_us") for setup in setups) + " |",
        "| a join listed by `presence()` (on another process or instance than the join's), p50 | "
        + " | ".join(cell(setup, "join_seen_p50_us") for setup in setups)
        + " |",
        "| the same, p99 | " + " | ".join(cell(setup, "join_seen_p99_us") for setup in setups) + " |",
    ]
    for publishers in PUBLISHERS:
        who = "one publisher" if publishers == 1 else f"{publishers} publishers"
        for label in ROUTES:
            key = fanout_key(label, publishers)
            lines.append(
                f"| fan-out, {label}, {who} (deliveries/s) | "
                + " | ".join(report.figure(median(rounds, setup, key, "fanout"), "/s") for setup in setups)
                + " |"
            )
        for label in list(ROUTES)[1:]:
            ratios = []
            for setup in setups:
                kept = median(rounds, setup, fanout_key(label, publishers), "fanout")
                plain = median(rounds, setup, fanout_key("plain", publishers), "fanout")
                ratios.append(f"{kept / plain:.2f}{report.TIMES}" if kept and plain else "n/a")
            lines.append(f"| fan-out, {label}, {who}, against plain | " + " | ".join(ratios) + " |")
        for label in ROUTES:
            key = fanout_key(label, publishers)
            lines.append(
                f"| server CPU per delivery, {label}, {who} (µs) | "
                + " | ".join(
                    f"{value:.2f}" if (value := median(rounds, setup, key, "fanout_server_us_per_message")) else "n/a"
                    for setup in setups
                )
                + " |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # Alone (`just bench-presence`), it takes the binaries cargo just built; within `just
    # bench`, the run copied them already.
    use_built()
    run_part(__doc__.splitlines()[0], run)
