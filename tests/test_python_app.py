"""`python app.py`, the way Robyn apps are run, with the wheel installed into a fresh
virtualenv: without Robyn, `import robyn` is the package's own copy and `app.start()` runs this
server in that process (the module runs once); beside a real or another `robyn`
distribution, ours never takes its name."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import Server
from pip_package import ROOT, build_wheel, install, pythons

pytestmark = pytest.mark.wheel

FOUND = pythons()


def _minor(version: str) -> int:
    return int(version.split(".")[1])


# The oldest and the newest: namespace packages' specs changed between them (3.11).
EDGES = sorted({min(FOUND, key=_minor), max(FOUND, key=_minor)}, key=_minor) if FOUND else []

APP = """\
from robyn import Robyn

app = Robyn(__file__)
print("module ran", flush=True)


@app.get("/")
def index():
    return "hello over http"


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(f"echo {message}")


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=0)
    print("after start", flush=True)
"""


@pytest.fixture(scope="module")
def wheel() -> Path:
    return build_wheel()


@pytest.fixture(scope="module")
def venvs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A virtualenv per edge Python with only the wheel in it: its python."""
    made = {}
    for version in EDGES:
        venv = tmp_path_factory.mktemp(f"only-ours-{version}") / "venv"
        install(wheel, FOUND[version], venv)
        made[version] = venv / "bin" / "python"
    return made


def app_dir(tmp_path: Path, source: str = APP) -> Path:
    (tmp_path / "app.py").write_text(source)
    return tmp_path


def exchange(server: Server) -> tuple[str, str]:
    """One HTTP request and one WebSocket message through the running app."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as response:
        body = response.read().decode()

    async def talk() -> str:
        async with server.connect("/echo") as ws:
            await ws.send("hi")
            return str(await ws.recv())

    return body, asyncio.run(talk())


@pytest.mark.parametrize("version", EDGES)
def test_python_app_py_serves_the_app_once_and_exits_0_on_sigterm(
    version: str, venvs: dict[str, Path], tmp_path: Path
) -> None:
    server = Server(venvs[version], ["app.py"], None, app_dir(tmp_path)).started()
    try:
        assert exchange(server) == ("hello over http", "echo hi")
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, server.output
    # The server served the app object the script built: the module ran once, not again.
    assert server.count(r"^module ran$") == 1, server.output
    # app.start() returned after shutdown, and the script went on.
    assert server.count(r"^after start$") == 1, server.output
    assert "Traceback" not in server.output


def test_with_processes_this_process_supervises_workers_that_run_the_script(
    venvs: dict[str, Path], tmp_path: Path
) -> None:
    env = {"ROBYN_PROCESSES": "2"}
    server = Server(venvs[EDGES[-1]], ["app.py"], env, app_dir(tmp_path)).started()
    try:
        assert exchange(server) == ("hello over http", "echo hi")
    finally:
        status = server.stop(signal.SIGTERM)
    assert status == 0, server.output
    assert "with 2 processes" in server.output
    # Once here, before app.start(), and once in each worker, which runs it as
    # `robyn-ws-server app.py` would (their lines share one pipe, so may run together).
    assert server.output.count("module ran") == 3, server.output


def test_ctrl_c_stops_it_cleanly_too(venvs: dict[str, Path], tmp_path: Path) -> None:
    server = Server(venvs[EDGES[-1]], ["app.py"], None, app_dir(tmp_path)).started()
    status = server.stop(signal.SIGINT)
    assert status == 0, server.output
    assert "KeyboardInterrupt" not in server.output
    assert server.count(r"^after start$") == 1, server.output


def test_a_start_up_failure_exits_with_the_servers_status(venvs: dict[str, Path], tmp_path: Path) -> None:
    broken = APP.replace("async def echo", "async def echo_twice").replace('"/echo"', '"/user-:id"')
    run = subprocess.run(
        [str(venvs[EDGES[-1]]), "app.py"], cwd=app_dir(tmp_path, broken), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "error: " in run.stderr
    assert "Traceback" not in run.stderr
    assert "after start" not in run.stdout


def imported_robyn(python: Path, cwd: Path) -> str:
    """Where `import robyn` comes from for a script in `cwd`."""
    probe = "import robyn; print(robyn.__file__)"
    return subprocess.run([str(python), "-c", probe], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("version", EDGES)
def test_ours_only_when_nothing_else_is_robyn(version: str, venvs: dict[str, Path], tmp_path: Path) -> None:
    python = venvs[version]
    assert "/site-packages/robyn_ws_server/api/robyn/__init__.py" in imported_robyn(python, tmp_path)
    # A stray `robyn/` folder (no __init__.py) would import as an empty namespace package: ours wins.
    (tmp_path / "robyn").mkdir()
    assert "/robyn_ws_server/api/robyn/" in imported_robyn(python, tmp_path)
    # A robyn.py of the app's own keeps its name.
    (tmp_path / "robyn.py").write_text("")
    assert imported_robyn(python, tmp_path).strip() == str(tmp_path / "robyn.py")


def test_start_up_loads_nothing_but_the_finder(venvs: dict[str, Path], tmp_path: Path) -> None:
    """The .pth runs at every start of that Python: beside a virtualenv of the same Python
    without the package (but with a .pth file of its own, whose reading loads what reading
    any .pth does), it may add our two modules (and __future__), nothing else."""
    version = EDGES[0]
    plain = tmp_path / "plain"
    subprocess.run([str(FOUND[version]), "-m", "venv", "--without-pip", str(plain)], check=True)
    (site_packages,) = plain.glob("lib/python*/site-packages")
    (site_packages / "empty.pth").write_text("# nothing\n")
    probe = "import sys; print(' '.join(sorted(sys.modules)))"

    def loaded(python: Path) -> set[str]:
        return set(
            subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
        )

    with_ours = loaded(venvs[version])
    added = with_ours - loaded(plain / "bin" / "python")
    assert "robyn_ws_server._finder" in added, added
    assert added <= {"robyn_ws_server", "robyn_ws_server._finder", "__future__"}, added


def fake_robyn_wheel(folder: Path) -> Path:
    """A minimal wheel of a distribution named robyn whose `robyn` says it is not ours."""
    wheel = folder / "robyn-0.0.1-py3-none-any.whl"
    files = {
        "robyn/__init__.py": "NOT_OURS = True\n",
        "robyn-0.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: robyn\nVersion: 0.0.1\n",
        "robyn-0.0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "robyn-0.0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in {**files, "robyn-0.0.1.dist-info/RECORD": record}.items():
            archive.writestr(name, text)
    return wheel


def test_another_robyn_distribution_keeps_its_name(wheel: Path, tmp_path: Path) -> None:
    python = Path(sys.executable)
    venv = tmp_path / "venv"
    install(wheel, python, venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-index", str(fake_robyn_wheel(tmp_path))], check=True)
    probe = "import robyn; print(robyn.NOT_OURS, robyn.__file__)"
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert shown.stdout.startswith("True "), shown.stdout + shown.stderr
    assert "/site-packages/robyn/__init__.py" in shown.stdout


def test_beside_real_robyn_python_app_py_is_robyns_and_the_command_is_ours(wheel: Path, tmp_path: Path) -> None:
    """Robyn 0.88.0 itself (from the index, at bench/requirements.txt's pin) in the same
    virtualenv: `python app.py` imports it, and `robyn-ws-server app.py` still serves the app
    on this server."""
    pin = next(
        line.strip()
        for line in (ROOT / "bench" / "requirements.txt").read_text().splitlines()
        if line.startswith("robyn==")
    )
    venv = tmp_path / "venv"
    script = install(wheel, Path(sys.executable), venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, pin], check=True)
    shown = imported_robyn(venv / "bin" / "python", tmp_path)
    assert "/site-packages/robyn/__init__.py" in shown and "robyn_ws_server" not in shown, shown
    server = Server(script, ["app.py", "--port", "0"], None, app_dir(tmp_path)).started()
    try:
        assert exchange(server) == ("hello over http", "echo hi")
    finally:
        assert server.stop() == 0, server.output
