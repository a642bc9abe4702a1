"""The Dockerfile cannot be built here (no Docker engine), so its commands are run here
instead: the build command, then the container's CMD with its ENV from its WORKDIR layout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from conftest import ROOT, Server, receive

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instruction(name: str, stage: int = -1) -> list[str]:
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    return re.findall(rf"^{name} (.+)$", stages[stage], flags=re.M)


def test_the_builder_stage_builds_the_binary_the_way_ci_does():
    (build,) = [run for run in instruction("RUN", stage=0) if run.startswith("cargo ")]
    assert build == "cargo build --release --locked -p robyn-ws-server"
    subprocess.run(build.split(), cwd=ROOT, check=True)
    assert (ROOT / "target" / "release" / "robyn-ws-server").is_file()


async def test_the_container_command_serves_pyapp(tmp_path, binary):
    (copy_binary,) = instruction("COPY", stage=-1)[:1]
    installed = copy_binary.split()[-1]
    (workdir,) = instruction("WORKDIR")
    (copy_app,) = [line for line in instruction("COPY") if not line.startswith("--from")]
    source, target = copy_app.split()
    command = json.loads(instruction("CMD")[0])
    environment = dict(pair.split("=", 1) for pair in instruction("ENV")[0].split())
    assert command[0] == installed.rsplit("/", 1)[-1]
    # A container listens on all its interfaces: the value under test, not a bind here.
    assert environment == {"ROBYN_HOST": "0.0.0.0", "ROBYN_PORT": "8080"}  # noqa: S104

    # The image's layout, in a scratch folder: the binary on PATH, the app under WORKDIR.
    app_dir = tmp_path / workdir.lstrip("/")
    shutil.copytree(ROOT / source, app_dir / target, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "bin").mkdir()
    shutil.copy(binary, tmp_path / "bin" / command[0])
    # Loopback only on this machine: the address comes from the same variables, other values.
    env = {**environment, "ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": "0", "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    server = Server(tmp_path / "bin" / command[0], command[1:], env, app_dir).started()
    try:
        async with server.connect("/web_socket") as ws:
            await ws.send("from the container")
            assert await receive(ws) == "Echo: from the container"
    finally:
        assert server.stop() == 0
