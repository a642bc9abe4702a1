"""The Autobahn TestSuite's 517 cases, run natively by kosoku in fuzzingclient mode, against
an endpoint that echoes text as text and binary as binary through `websocket.receive()`.
Every case must end OK, NON-STRICT or INFORMATIONAL with a clean closing handshake; the HTML
report lands in out/autobahn/index.html and the summary is printed at the end of the run."""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

REPORTS = ROOT / "out" / "autobahn"
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}

pytestmark = pytest.mark.autobahn


def run_kosoku(url: str, outdir: Path, *include: str) -> dict[str, dict[str, object]]:
    shutil.rmtree(outdir, ignore_errors=True)
    kosoku = Path(sys.executable).parent / "kosoku"
    selection = [arg for case in include for arg in ("--include", case)]
    # kosoku exits 1 when a case fails; the verdicts are read from its report either way.
    command = [str(kosoku), url, "--parallelism", "4", "--outdir", str(outdir), *selection]
    subprocess.run(command, timeout=1200, check=False)
    (cases,) = json.loads((outdir / "index.json").read_text()).values()
    return cases


def summarize(cases: dict[str, dict[str, object]]) -> str:
    counts = collections.Counter((case["behavior"], case["behaviorClose"]) for case in cases.values())
    lines = ["| behavior | closing handshake | cases |", "|---|---|---|"]
    lines += [f"| {behavior} | {close} | {n} |" for (behavior, close), n in sorted(counts.items())]
    return "\n".join(lines)


def test_every_autobahn_case_passes_with_a_clean_close(start_server):
    server = start_server("api")
    cases = run_kosoku(server.url("/echo"), REPORTS)
    summary = summarize(cases)
    (REPORTS / "summary.md").write_text(
        f"Autobahn TestSuite, {len(cases)} cases (kosoku); full report: {REPORTS / 'index.html'}\n\n{summary}\n"
    )
    assert len(cases) == 517
    bad = {
        case_id: (case["behavior"], case["behaviorClose"])
        for case_id, case in cases.items()
        if case["behavior"] not in ACCEPTED or case["behaviorClose"] not in {"OK", "INFORMATIONAL"}
    }
    assert not bad, f"cases not passing: {bad}\n{summary}"


def test_without_deflate_compression_is_declined_cleanly(start_server, tmp_path):
    server = start_server("api", "--no-deflate")
    cases = run_kosoku(server.url("/echo"), tmp_path, "12.1.*", "13.1.*", "13.7.*")
    assert {(case["behavior"], case["behaviorClose"]) for case in cases.values()} == {("UNIMPLEMENTED", "OK")}
