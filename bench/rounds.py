"""The rounds loop of `just bench`'s parts: every server measured once per round, rounds
interleaved across servers (each round starts with a different one, so drift over the run
spreads evenly), and more rounds, up to report.MOST_EXTRA_ROUNDS, while some server's CPU
figure has no two rounds that agree within report.AGREE."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import report
from run import wait_for_quiet


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


def interleaved(
    chosen: Sequence[T],
    rounds: int,
    measure: Callable[[T, int], dict],
    settling: list[str],
    label: str,
    quiet: bool,
    what: str = "CPU figures",
    retry_failed: bool = False,
) -> dict[str, list[dict]]:
    """`measure(server, round_index)` for each server in each round; returns each server's
    rounds, in the order they ran. A server whose every round so far answered
    {"missing": why} is not tried again, unless `retry_failed`; `quiet`: each server's round
    starts once the rest of the machine is idle. `label` starts what is printed of each
    round ("TLS " for "TLS round 2/3: ..."), `what` the figures that must settle ("CPU per request")."""
    measured: dict[str, list[dict]] = {server.name: [] for server in chosen}
    planned, index = rounds, 0
    while index < planned:
        order = [*chosen[index % len(chosen) :], *chosen[: index % len(chosen)]]
        for server in order:
            failed = measured[server.name] and all("missing" in r for r in measured[server.name])
            if index and failed and not retry_failed:
                continue  # a server that could not take the load once is not tried again
            print(f"{label}round {index + 1}/{planned}: {server.name}", flush=True)
            if quiet:
                wait_for_quiet()
            result = measure(server, index)
            print(f"  {json.dumps(result)}", flush=True)
            measured[server.name].append(result)
        index += 1
        if index == planned and rounds > 1 and planned < rounds + report.MOST_EXTRA_ROUNDS:
            pending = report.unsettled(measured, settling)
            if pending:
                print(f"{what} not yet within {report.AGREE:.2f}x of another round: {', '.join(pending)}")
                planned += 1
    return measured
