"""Starting the server: finding the app, where it listens, and every start-up mistake giving
one clear line (plus the Python traceback where there is one) and a non-zero exit."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APPS, EMBEDDED_ONLY, Server, receive, run_to_exit, with_io_threads


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def assert_no_panic(result: subprocess.CompletedProcess[str]) -> None:
    assert "panicked" not in result.stderr and "RUST_BACKTRACE" not in result.stderr, result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("app", "message", "traceback_shows"),
    [
        (
            "not_a_module",
            r"error: no module named 'not_a_module' in .*: run from the directory that holds it, or pass --app-dir",
            None,
        ),
        ("startup.syntax_error", r"error: syntax error in .*syntax_error\.py, line 5: .*", "def broken(:"),
        (
            "startup.raises_at_import",
            r"error: running 'startup.raises_at_import' raised KeyError: 'port'",
            'port = settings["port"]',
        ),
        (
            "startup.imports_missing",
            r"error: running 'startup.imports_missing' raised ModuleNotFoundError: "
            r"No module named 'a_dependency_that_is_not_installed'",
            "import a_dependency_that_is_not_installed",
        ),
        (
            "startup.no_app",
            r"error: module 'startup.no_app' defines no Robyn app: create one with `app = Robyn\(__file__\)`",
            None,
        ),
        (
            "startup.two_apps",
            r"error: module 'startup.two_apps' defines several Robyn apps \(first, second\): "
            r"name one with --app startup.two_apps:NAME",
            None,
        ),
        (
            "startup.two_apps:third",
            r"error: module 'startup.two_apps' has no attribute 'third' \(its Robyn apps: first, second\)",
            None,
        ),
        # The module calls app.start() itself: the wrong name is still an error, not that app served.
        (
            "startup/run_as_main.py:application",
            r"error: module 'run_as_main' has no attribute 'application' \(its Robyn apps: app\)",
            None,
        ),
        ("startup.no_app:VALUE", r"error: startup.no_app:VALUE is an int, not a Robyn app", None),
        ("startup/nothing_here.py", r"error: no such file: .*nothing_here\.py", None),
        (
            "startup.clashing_routes",
            r"error: the WebSocket route /user/:name clashes with /user/:id: a path could match both; "
            r"make them differ by a fixed segment",
            None,
        ),
        (
            "startup.failing_startup",
            r"error: a startup handler raised ConnectionRefusedError: "
            r"database at 127.0.0.1:5432 refused the connection",
            "ConnectionRefusedError: database at 127.0.0.1:5432 refused the connection",
        ),
    ],
)
def test_start_up_mistakes_explain_themselves_and_exit_non_zero(binary, app, message, traceback_shows):
    result = run_to_exit(binary, "--app", app, "--host", "127.0.0.1", "--port", "0")
    assert result.returncode == 1, result.stderr
    assert re.fullmatch(message, error_line(result)), result.stderr
    if traceback_shows:
        assert "Traceback (most recent call last)" in result.stderr or "SyntaxError" in result.stderr
        assert traceback_shows in result.stderr
        # The import machinery's own frames are left out; the user's file is there.
        assert "<frozen importlib" not in result.stderr
    else:
        assert "Traceback" not in result.stderr
    assert_no_panic(result)


def test_a_port_in_use_is_one_clear_line(binary):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit(binary, "--app", "seed.request", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert line.endswith("another process is listening there; stop it or pick another --port")
    assert_no_panic(result)


def test_unknown_flags_are_usage_errors(binary):
    result = run_to_exit(binary, "--app", "seed.request", "--frobnicate")
    assert result.returncode == 2
    assert "--frobnicate" in result.stderr


def test_help_documents_every_flag(binary):
    result = run_to_exit(binary, "--help")
    assert result.returncode == 0
    for flag in (
        "--app",
        "--app-dir",
        "--host",
        "--port",
        "--log-level",
        "--io-threads",
        "--max-message-size",
        "--send-queue",
        "--shutdown-timeout",
    ):
        assert flag in result.stdout
    for variable in ("ROBYN_HOST", "ROBYN_PORT", "ROBYN_IO_THREADS"):
        assert variable in result.stdout


async def test_module_attr_names_the_app(start_server):
    server = start_server("startup.two_apps:second")
    async with server.connect("/second") as ws:
        assert await receive(ws) == "served by second"


async def test_an_app_built_in_a_factory_is_found(start_server):
    server = start_server("startup.built_by_factory")
    async with server.connect("/factory") as ws:
        assert await receive(ws) == "from the factory"


async def test_a_file_path_works_as_the_app(start_server):
    server = start_server("seed/request.py")
    async with server.connect("/web_socket") as ws:
        await ws.send("by path")
        assert await receive(ws) == "Echo: by path"


async def test_the_app_may_be_named_without_the_flag(binary, io_threads):
    """`robyn-ws-server app.py`, as `python app.py` reads; it wins over ROBYN_APP."""
    args = with_io_threads(["seed/request.py", "--host", "127.0.0.1", "--port", "0"], io_threads)
    server = Server(binary, args, {"ROBYN_APP": "no_such_module"}, APPS).started()
    try:
        async with server.connect("/web_socket") as ws:
            await ws.send("no flag")
            assert await receive(ws) == "Echo: no flag"
    finally:
        assert server.stop() == 0, server.output


def test_the_app_is_named_once(binary):
    twice = run_to_exit(binary, "--app", "seed.request", "seed/request.py")
    assert twice.returncode == 2
    assert "error: the app is named twice: give `--app APP` or `APP`" in twice.stderr
    none = run_to_exit(binary, "--port", "0")
    assert none.returncode == 2
    assert "error: no app to serve: name it (`robyn-ws-server app.py`, or `--app pyapp.main`" in none.stderr


async def test_app_start_sets_the_address_and_returns_after_shutdown(start_server):
    port = free_port()
    server = start_server("startup.start_address", env={"START_PORT": str(port)}, loopback=False)
    assert server.port == port
    async with server.connect("/here") as ws:
        assert await receive(ws) == "listening where app.start asked"
    assert server.count("app.start returned") == 0, "app.start serves until shutdown"
    assert server.stop() == 0
    assert server.count("app.start returned") == 1


async def test_the_module_runs_as_main_with_its_path_as_argv(start_server):
    server = start_server("startup/run_as_main.py")
    path = str(APPS / "startup" / "run_as_main.py")
    async with server.connect("/always") as ws:
        assert await receive(ws) == f"name=__main__ argv={[path]}"
    async with server.connect("/late/ws") as ws:
        assert await receive(ws) == "registered under __main__"
    assert server.count("after app.start") == 0, "app.start serves until shutdown"
    assert server.stop() == 0
    assert server.count("after app.start: the server has stopped") == 1


async def test_flags_win_over_app_start(start_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        asked = taken.getsockname()[1]
        # app.start asks for a port that is in use; --port must win, so start-up succeeds.
        server = start_server("startup.start_address", env={"START_PORT": str(asked)})
    assert server.port != asked
    async with server.connect("/here") as ws:
        assert await receive(ws) == "listening where app.start asked"


async def test_robyn_host_and_port_come_from_the_environment(start_server):
    server = start_server("seed.request", env={"ROBYN_HOST": "127.0.0.1", "ROBYN_PORT": "0"}, loopback=False)
    async with server.connect("/web_socket") as ws:
        await ws.send("env")
        assert await receive(ws) == "Echo: env"


async def test_the_servers_own_robyn_wins_over_any_other(start_server):
    server = start_server("app", "--app-dir", str(APPS / "shadow"))
    async with server.connect("/which") as ws:
        assert await receive(ws) == "robyn-ws-server/robyn/__init__.py"


async def test_the_apps_own_directory_is_importable(start_server):
    server = start_server("siblings.app")
    async with server.connect("/hello") as ws:
        assert await receive(ws) == "hello from a sibling module"


def make_virtualenv(python: str, where: Path) -> Path:
    """A virtualenv of `python` holding a module only it has."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(where)], check=True)
    (site_packages,) = (where / "lib").glob("python3.*/site-packages")
    (site_packages / "venv_only_module.py").write_text('WHERE = "from the virtualenv"\n')
    return where


@EMBEDDED_ONLY
async def test_an_active_virtualenv_is_importable(start_server, tmp_path):
    venv = make_virtualenv(sys.executable, tmp_path / "venv")
    server = start_server("startup.uses_venv", env={"VIRTUAL_ENV": str(venv)})
    async with server.connect("/venv") as ws:
        assert await receive(ws) == "from the virtualenv"


@EMBEDDED_ONLY
async def test_a_virtualenv_that_is_only_on_path_is_found(start_server, tmp_path):
    # The container layout: the virtualenv's bin/ first on PATH, nothing activated.
    venv = make_virtualenv(sys.executable, tmp_path / "venv")
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": ""}
    server = start_server("startup.uses_venv", env=env)
    async with server.connect("/venv") as ws:
        assert await receive(ws) == "from the virtualenv"


def other_python() -> str | None:
    """A CPython of another minor version than the one running the tests, if installed
    (pyenv's, or on PATH)."""
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
    for minor in (12, 13, 10, 9):
        if minor == sys.version_info.minor:
            continue
        candidates = [*sorted(root.glob(f"3.{minor}.*/bin/python3.{minor}")), shutil.which(f"python3.{minor}")]
        for candidate in filter(None, candidates):
            if subprocess.run([str(candidate), "-c", "pass"], capture_output=True).returncode == 0:
                return str(candidate)
    return None


OTHER_PYTHON = other_python()


@EMBEDDED_ONLY
@pytest.mark.skipif(OTHER_PYTHON is None, reason="no Python of another minor version on this machine")
def test_a_virtualenv_of_another_python_version_is_named_in_one_line(binary, tmp_path):
    assert OTHER_PYTHON is not None
    venv = make_virtualenv(OTHER_PYTHON, tmp_path / "venv")
    other = subprocess.run(
        [OTHER_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    result = run_to_exit(
        binary, "--app", "startup.uses_venv", "--port", "0", env={**os.environ, "VIRTUAL_ENV": str(venv)}
    )
    assert (
        f"the server embeds Python {ours}; this virtualenv ({venv}, from VIRTUAL_ENV) is Python {other}"
        in result.stderr
    )
    # Its packages are not used, so the app's import of one fails, clearly.
    assert "No module named 'venv_only_module'" in result.stderr
    assert result.returncode == 1


async def test_startup_handlers_run_before_the_first_connection(start_server):
    server = start_server("startup.lifecycle_handlers")
    # The server says it is serving only after the startup handler finished.
    startup = server.output.index("startup handler ran")
    assert startup < server.output.index("serving ")
    async with server.connect("/ws") as ws:
        assert await receive(ws) == "started=True"


async def test_log_level_applies_to_python_logging(start_server):
    default = start_server("startup.lifecycle_handlers")
    assert "import info marker" in default.output
    assert "import debug marker" not in default.output
    verbose = start_server("startup.lifecycle_handlers", "--log-level", "debug")
    assert "import debug marker" in verbose.output
