"""In-process tests of the embedded ``robyn`` package's pure-Python parts. ``import robyn``
here is the package's source in crates/pyhost/python/robyn_ws_server/api, not an installed Robyn, and nothing in
tests/unit starts the server: the parts that need ``robyn._native`` are not imported."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "crates" / "pyhost" / "python" / "robyn_ws_server" / "api"
sys.path.insert(0, str(PACKAGE_ROOT))

import robyn  # noqa: E402 (needs the path above)

if not Path(robyn.__file__).is_relative_to(PACKAGE_ROOT):
    raise RuntimeError(f"tests/unit imported robyn from {robyn.__file__}, not from {PACKAGE_ROOT}")
