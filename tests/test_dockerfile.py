"""The Dockerfile cannot be built here (no Docker engine), so its commands are run here
instead: the builder's wheel build (the very build CI's wheel tests use), the image's
`pip install` of that wheel into its Python, then the container's CMD with its ENV from its
WORKDIR layout."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, Server, receive
from pip_package import BUILD, build_wheel, install, pythons

DOCKERFILE = (ROOT / "Dockerfile").read_text()
REQUIREMENTS = (ROOT / "tests" / "requirements.txt").read_text()

pytestmark = pytest.mark.wheel


def instruction(name: str, stage: int = -1) -> list[str]:
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    return re.findall(rf"^{name} (.+)$", stages[stage], flags=re.M)


def image(stage: int = -1) -> str:
    return re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.M)[stage]


def test_the_builder_builds_the_wheel_the_way_ci_does():
    runs = instruction("RUN", stage=0)
    assert " ".join(BUILD) in runs
    # The same maturin and zig as the suite's own build.
    (tools,) = [run for run in runs if run.startswith("pip install")]
    for tool in tools.split()[-2:]:
        assert f"{tool}\n" in REQUIREMENTS, f"{tool} is not what tests/requirements.txt pins"
    assert build_wheel().is_file()


async def test_the_image_installs_the_wheel_and_its_command_serves_pyapp(tmp_path):
    (install_run,) = instruction("RUN")
    assert install_run.startswith("pip install --no-cache-dir /tmp/dist/*.whl")
    # The image's Python, as this machine has it: not the builder's.
    version = re.fullmatch(r"python:(3\.\d+)-slim-bookworm", image()).group(1)
    assert version != re.fullmatch(r"python:(3\.\d+)-slim-bookworm", image(stage=0)).group(1)
    script = install(build_wheel(), pythons()[version], tmp_path / "python")

    (workdir,) = instruction("WORKDIR")
    (copy_app,) = [line for line in instruction("COPY") if not line.startswith("--from")]
    source, target = copy_app.split()
    command = json.loads(instruction("CMD")[0])
    environment = dict(pair.split("=", 1) for pair in instruction("ENV")[0].split())
    assert command[0] == script.name
    # A container listens on all its interfaces: the value under test, not a bind here.
    assert environment == {"ROBYN_HOST": "0.0.0.0", "ROBYN_PORT": "8080"}  # noqa: S104

    # The image's layout, in a scratch folder: the command on PATH, the app under WORKDIR.
    app_dir = tmp_path / workdir.lstrip("/")
    shutil.copytree(ROOT / source, app_dir / target, ignore=shutil.ignore_patterns("__pycache__"))
    # Loopback only on this machine: the address comes from the same variables, other values.
    env = {**environment, "ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": "0", "PATH": f"{script.parent}:/usr/bin:/bin"}
    server = Server(Path(shutil.which(command[0], path=env["PATH"])), command[1:], env, app_dir).started()
    try:
        async with server.connect("/web_socket") as ws:
            await ws.send("from the container")
            assert await receive(ws) == "Echo: from the container"
    finally:
        assert server.stop() == 0
