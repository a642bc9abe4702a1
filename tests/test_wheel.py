"""`pip install robyn-ws-server`: the wheel CI builds (one abi3 wheel for CPython 3.9 and later,
manylinux2014), checked as a package index would, then installed into a fresh virtualenv of
every CPython 3.9-3.13 on this machine, where the seed examples and a shutdown run through
the installed `robyn-ws-server` command; and the whole suite once more against that command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pip_package import ROOT, build_wheel, install, pythons

pytestmark = pytest.mark.wheel

FOUND = pythons()


@pytest.fixture(scope="module")
def wheel() -> Path:
    return build_wheel()


def test_one_abi3_wheel_for_every_cpython_from_3_9_on(wheel: Path) -> None:
    assert re.fullmatch(r"robyn_ws_server-[\d.]+-cp39-abi3-manylinux2014_x86_64\..*\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    # The real Robyn distribution owns the top-level `robyn`: ours stays inside our package, and
    # only the .pth that finds it when nothing else is `robyn` sits beside it.
    assert {top for top in tops if not top.endswith(".dist-info")} == {"robyn_ws_server", "robyn_ws_server.pth"}
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("robyn_ws_server.pth").decode() == "import robyn_ws_server._finder\n"
    shipped_files = ("_server.abi3.so", "_finder.py", "py.typed", "_server.pyi", "api/robyn/py.typed")
    for shipped in (*shipped_files, "api/robyn/_native.pyi"):
        assert f"robyn_ws_server/{shipped}" in names, f"the wheel lacks robyn_ws_server/{shipped}"
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        scripts = archive.read(entry_points).decode().replace(" ", "")
    assert "robyn-ws-server=robyn_ws_server:main" in scripts, scripts


def test_the_extension_links_no_libpython_and_keeps_to_the_stable_abi(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        extension = Path(archive.extract("robyn_ws_server/_server.abi3.so", tmp_path))
    dynamic = subprocess.run(["readelf", "-d", str(extension)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
    assert needed, dynamic
    assert not [library for library in needed if "python" in library], needed
    # abi3audit: every CPython symbol the extension uses is in the limited API of 3.9.
    audit = Path(sys.executable).parent / "abi3audit"
    result = subprocess.run([str(audit), "--strict", "--verbose", str(wheel)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_cpython_from_3_9_to_3_13_is_on_this_machine() -> None:
    # CI's machines have them all (pyenv); say so rather than quietly test fewer.
    assert list(FOUND) == [f"3.{minor}" for minor in range(9, 14)], FOUND


def suite(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This suite (or part of it) against `script` instead of the binary (`ROBYN_WS_SERVER`)."""
    env = {**os.environ, "ROBYN_WS_SERVER": str(script), "ROBYN_WS_SERVER_KIND": "package"}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("version", list(FOUND))
def test_the_installed_command_serves_the_seed_examples_and_shuts_down(version: str, wheel: Path, tmp_path: Path):
    script = install(wheel, FOUND[version], tmp_path / "venv")
    shown = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.startswith("robyn-ws-server ")
    # `python -m robyn_ws_server` is the same command.
    python = tmp_path / "venv" / "bin" / "python"
    assert subprocess.run([str(python), "-m", "robyn_ws_server", "--version"], capture_output=True, text=True).stdout
    run = suite(script, "tests/test_seed_examples.py", "tests/test_shutdown.py", "tests/test_processes.py")
    assert run.returncode == 0, f"Python {version}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"


def test_the_whole_suite_passes_against_the_installed_command(wheel: Path, tmp_path: Path) -> None:
    """Once, in the default mode (`--io-threads 0`): everything but the benchmark (which runs
    its own copy of the binary) and this module. The test apps' own dependencies (jinja2 for
    their templates, pydantic for their request bodies) are installed beside the package, as
    an app's would be."""
    script = install(wheel, Path(sys.executable), tmp_path / "venv", "jinja2", "pydantic")
    run = suite(script, "-m", "not bench and not wheel", "-k", "not io-thread")
    assert run.returncode == 0, f"{run.stdout[-8000:]}\n{run.stderr[-2000:]}"
    summary = run.stdout.strip().splitlines()[-1]
    out = ROOT / "out" / "wheel"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(f"- the whole suite against the installed command: {summary}\n")
