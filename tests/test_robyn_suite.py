"""Robyn 0.88.0's own integration suite, unchanged, against the server (tests/robyn_suite/):
one pytest run of its 31 files per --io-threads mode. The counts per file are printed at the
end of the suite's output (out/robyn-suite-io-threads-N/summary.md); a failing case fails
the test, listed by Robyn's node id with the first lines of its failure. The cases where
Robyn is wrong and we are right are in tests/robyn_suite/deviations.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EMBEDDED_ONLY
from robyn_suite import run as robyn_suite

# The apps need jinja2 from the virtualenv the binary picks; the installed package's fresh
# virtualenv (tests/test_wheel.py) has none.
pytestmark = [pytest.mark.robyn_suite, EMBEDDED_ONLY]


def test_robyns_integration_suite_passes(binary: Path, io_threads: str) -> None:
    run = robyn_suite.run_suite(io_threads=io_threads, files=list(robyn_suite.ALL_FILES), binary=binary)
    if not run.ok:
        pytest.fail(run.report(), pytrace=False)
