"""The Python package: how CI builds its wheel (the same command the Dockerfile's builder
runs), the CPythons on this machine it is installed into, and installing it into a fresh
virtualenv of one of them."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
# maturin through zig links against glibc 2.17, so one wheel runs on every manylinux2014
# system; `pip install .` builds the same package for this machine only.
BUILD = ["maturin", "build", "--release", "--locked", "--zig", "--compatibility", "manylinux2014", "--out", "dist"]
# The CPythons the wheel must run on.
MINORS = range(9, 14)


@functools.cache
def build_wheel() -> Path:
    """Builds the wheel into dist/ (once per test run) and returns it."""
    shutil.rmtree(DIST, ignore_errors=True)
    # maturin finds zig (the `ziglang` package) through the Python on PATH: the suite's venv.
    scripts = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(scripts / BUILD[0]), *BUILD[1:]], cwd=ROOT, env=env, check=True)
    (wheel,) = DIST.glob("*.whl")
    return wheel


def pythons() -> dict[str, Path]:
    """Every CPython 3.9-3.13 installed by pyenv or found on PATH (as python3.X) that runs."""
    found = {}
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for minor in MINORS:
        version = f"3.{minor}"
        candidates = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)
        # pyenv's shims are on PATH too, and fail for a version that is not selected.
        on_path = shutil.which(f"python{version}")
        candidates += [Path(on_path)] if on_path else []
        for candidate in candidates:
            if subprocess.run([str(candidate), "-c", ""], capture_output=True).returncode == 0:
                found[version] = candidate
                break
    return found


def install(wheel: Path, python: Path, venv: Path, *app_requirements: str) -> Path:
    """A fresh virtualenv of `python` with the wheel installed (and what the apps served from
    it need, from the index, as pinned in tests/requirements.txt); returns its console script."""
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-index", str(wheel)], check=True)
    if app_requirements:
        subprocess.run([*pip, *map(pinned, app_requirements)], check=True)
    return venv / "bin" / "robyn-ws-server"


def pinned(name: str) -> str:
    """`name==version` as tests/requirements.txt pins it."""
    for line in (ROOT / "tests" / "requirements.txt").read_text().splitlines():
        if line.lower().startswith(f"{name.lower()}=="):
            return line.strip()
    raise LookupError(f"{name} is not pinned in tests/requirements.txt")
