"""A pytest plugin for the run of Robyn's integration suite (loaded with `-p deviations` by
tests/robyn_suite/run.py), so that Robyn's files stay byte for byte as Robyn ships them:

- the cases deviations.toml lists become xfail(strict=True), each with its reason;
- Robyn's `benchmark` marker (pytest-codspeed's, in Robyn's CI) is registered.

Entries that name no collected case are written to --robyn-unmatched (the runner fails the
run on them) and shown at the end of the output."""

from __future__ import annotations

import importlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

DEFAULT = Path(__file__).resolve().with_name("deviations.toml")


@dataclass(frozen=True)
class Deviation:
    id: str
    reason: str
    raises: str = "AssertionError"

    def matches(self, nodeid: str) -> bool:
        return nodeid == self.id or ("[" not in self.id and nodeid.split("[", 1)[0] == self.id)

    @property
    def file(self) -> str:
        return self.id.split("::", 1)[0]

    def exception(self) -> type[BaseException] | tuple[type[BaseException], ...] | None:
        if self.raises == "any":
            return None
        module, _, name = self.raises.rpartition(".")
        found = getattr(importlib.import_module(module or "builtins"), name)
        if not (isinstance(found, type) and issubclass(found, BaseException)):
            raise pytest.UsageError(f"deviation {self.id}: raises = {self.raises!r} is no exception class")
        return found


def load(path: Path) -> list[Deviation]:
    with path.open("rb") as file:
        entries = tomllib.load(file).get("deviation", [])
    deviations = []
    for entry in entries:
        unknown = set(entry) - {"id", "reason", "raises"}
        if unknown or not entry.get("id") or not entry.get("reason"):
            raise pytest.UsageError(f"{path}: each [[deviation]] has an id and a reason (and may have raises): {entry}")
        deviations.append(Deviation(**entry))
    return deviations


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robyn-suite")
    group.addoption("--robyn-deviations", default=str(DEFAULT), help="the expected deviations (TOML); empty: none")
    group.addoption("--robyn-unmatched", default=None, help="write the entries that matched no case here (JSON)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "benchmark: Robyn's benchmark marker (pytest-codspeed in Robyn's CI)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = config.getoption("robyn_deviations")
    deviations = load(Path(path)) if path else []
    used: set[Deviation] = set()
    for item in items:
        for deviation in deviations:
            if deviation.matches(item.nodeid):
                item.add_marker(
                    pytest.mark.xfail(
                        strict=True, raises=deviation.exception(), reason=f"deviation: {deviation.reason}"
                    )
                )
                used.add(deviation)
                break
    collected_files = {item.nodeid.split("::", 1)[0] for item in items}
    unmatched = [d.id for d in deviations if d not in used and d.file in collected_files]
    config.stash[UNMATCHED] = unmatched
    target = config.getoption("robyn_unmatched")
    if target:
        Path(target).write_text(json.dumps(unmatched))


UNMATCHED = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    unmatched = config.stash.get(UNMATCHED, [])
    if unmatched:
        terminalreporter.write_sep("=", "deviations.toml entries that match no collected case", red=True)
        for nodeid in unmatched:
            terminalreporter.write_line(nodeid)
