"""`--reload` (and Robyn's `--dev`): a save restarts the workers through the supervisor. Each
test copies tests/apps/reload_app.py into its own folder and edits the copy under a live
server: open WebSockets get Close 1012 and streams end complete, the new code serves the next
client, code that does not import leaves the old code serving and names the file and line, and
the server never waits on a socket to restart or to stop. Every wait is for an event (a log
line, a frame, the end of a body), never a fixed sleep."""

from __future__ import annotations

import asyncio
import http.client
import re
import shutil
import signal
import socket
import ssl
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import trustme
from conftest import APPS, TIMEOUT, Server, closed_with, receive, run_to_exit
from websockets.asyncio.client import ClientConnection, connect

RELOADED = r"reloaded: the new code serves"
CHANGED = r"changed: starting workers with the new code"
DID_NOT_START = r"the new code did not start"
OLD_GONE = r"the old workers have exited: only the new code serves"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    shutil.copy(APPS / "reload_app.py", tmp_path / "app.py")
    return tmp_path


def save(path: Path, text: str) -> None:
    """Writes the file as an editor does: the whole file at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def set_version(app_dir: Path, version: str) -> None:
    app = app_dir / "app.py"
    save(app, re.sub(r'^VERSION = ".*"$', f'VERSION = "{version}"', app.read_text(), flags=re.M))


def get(server: Server, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=TIMEOUT) as response:
        return response.read().decode()


async def echo(ws: ClientConnection, text: str = "hi") -> str:
    await ws.send(text)
    reply = await receive(ws)
    assert isinstance(reply, str)
    return reply


async def version_of_a_new_client(server: Server) -> str:
    async with server.connect("/echo") as ws:
        return (await echo(ws)).split(":")[0]


class EventStream:
    """`GET /events` on a socket of our own, read with http.client, which decodes the chunked
    body and raises IncompleteRead when it is cut off rather than ended."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        self.sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        self.response = http.client.HTTPResponse(self.sock, method="GET")
        self.response.begin()
        assert self.response.status == 200

    def first_event(self) -> bytes:
        data = b""
        while b"\n\n" not in data:
            chunk = self.response.read1(1 << 16)
            assert chunk, "the stream ended before its first event"
            data += chunk
        return data

    def rest(self) -> bytes:
        return self.response.read()

    def close(self) -> None:
        self.response.close()
        self.sock.close()


def start(start_server, app_dir: Path, *flags: str) -> Server:
    return start_server("app", "--reload", "--shutdown-timeout", "5", *flags, cwd=app_dir)


async def test_a_save_restarts_under_live_connections_and_the_new_code_serves(start_server, app_dir):
    server = start(start_server, app_dir)
    assert get(server, "/version") == "one"
    async with server.connect("/echo") as ws:
        assert await echo(ws) == "one:hi"
        stream = EventStream(server)
        try:
            assert b"data: one" in stream.first_event()
            saved = time.monotonic()
            set_version(app_dir, "two")

            # The open WebSocket is told the server restarts (1012), not that it went away.
            code, reason = await closed_with(ws)
            assert (code, reason) == (1012, "server restarting with new code")
            # The event stream ends as a complete chunked body (IncompleteRead otherwise).
            assert await asyncio.to_thread(stream.rest) == b""
            handed_over = time.monotonic() - saved
        finally:
            stream.close()
    await server.until(RELOADED)
    assert await version_of_a_new_client(server) == "two"
    assert get(server, "/version") == "two"
    assert server.count(r"app\.py changed: starting workers with the new code") == 1
    # How long it took, for the record (never asserted: the machine decides).
    print(f"save -> old connections closed with 1012: {handed_over * 1000:.0f} ms")
    assert server.stop() == 0, server.output


async def test_code_that_does_not_import_leaves_the_old_code_serving_until_a_good_save(start_server, app_dir):
    server = start(start_server, app_dir)
    async with server.connect("/echo") as ws:
        assert await echo(ws) == "one:hi"
        good = (app_dir / "app.py").read_text()
        broken = good.replace('VERSION = "one"', 'VERSION = "two"\n\n\ndef broken(:\n    pass')
        save(app_dir / "app.py", broken)
        await server.until(DID_NOT_START)
        # The worker's own error names the file and the line (line 13: `def broken(:`).
        line = good.splitlines().index('VERSION = "one"') + 4
        assert re.search(rf'File ".*app\.py", line {line}', server.output), server.output
        assert "SyntaxError" in server.output
        # The old worker still serves: the open connection, and a new one.
        assert await echo(ws, "still") == "one:still"
        assert await version_of_a_new_client(server) == "one"

        set_version(app_dir, "three")
        save(app_dir / "app.py", good.replace('VERSION = "one"', 'VERSION = "three"'))
        assert (await closed_with(ws))[0] == 1012
    await server.until(RELOADED)
    assert await version_of_a_new_client(server) == "three"
    assert server.count(RELOADED) == 1
    assert server.stop() == 0, server.output


async def only_change_reported(server, path: str) -> None:
    """Waits for a change and the reload it causes; checks that the one burst reported names
    the file matching `path` alone."""
    await server.until(CHANGED)
    await server.until(RELOADED)
    changed = [line for line in server.output.splitlines() if re.search(CHANGED, line)]
    assert len(changed) == 1 and re.search(path + " changed", changed[0]), changed


async def test_changes_in_virtualenvs_caches_and_hidden_folders_restart_nothing(start_server, app_dir):
    # Robyn's --dev: --reload with debug logging.
    server = start_server("app", "--dev", cwd=app_dir)
    assert re.search(r"\bDEBUG\b", server.output), "--dev logs at debug"
    for ignored in [
        ".venv/lib/python3/site-packages/pkg.py",
        "venv/lib/pkg.py",
        "__pycache__/app.cpython-313.pyc",
        "__pycache__/app.py",
        ".hidden/app.py",
        "node_modules/x/y.py",
        "notes.txt",
        ".app.py.swp",
    ]:
        save(app_dir / ignored, "x = 1\n")
    # Then a change that counts: the one burst reported names it alone.
    save(app_dir / "other.py", "x = 1\n")
    await only_change_reported(server, r"/other\.py")
    assert server.stop() == 0, server.output


async def test_reload_include_and_exclude_are_honoured(start_server, app_dir):
    server = start(
        start_server, app_dir, "--reload-include", "*.html", "--reload-exclude", "skip_*.py", "--reload-exclude", "gen"
    )
    save(app_dir / "skip_me.py", "x = 1\n")
    save(app_dir / "gen" / "models.py", "x = 1\n")
    save(app_dir / "templates" / "page.html", "<p>hi</p>\n")
    await only_change_reported(server, r"/templates/page\.html")
    assert server.stop() == 0, server.output


async def test_reload_dir_watches_that_directory_only(start_server, app_dir):
    (app_dir / "watched").mkdir()
    server = start(start_server, app_dir, "--reload-dir", "watched")
    save(app_dir / "unwatched.py", "x = 1\n")
    save(app_dir / "watched" / "module.py", "x = 1\n")
    await server.until(CHANGED)
    changed = [line for line in server.output.splitlines() if re.search(CHANGED, line)]
    assert len(changed) == 1 and re.search(r"/watched/module\.py changed", changed[0]), changed
    assert server.stop() == 0, server.output


async def test_sigterm_while_new_code_starts_with_sockets_open_exits_promptly(start_server, app_dir):
    server = start(start_server, app_dir)
    good = (app_dir / "app.py").read_text()
    async with server.connect("/echo") as ws:
        assert await echo(ws) == "one:hi"
        stream = EventStream(server)
        try:
            stream.first_event()
            # New code that takes its time to import: the swap is under way when SIGTERM comes.
            slow = good.replace('VERSION = "one"', 'import time\n\ntime.sleep(30)\nVERSION = "two"')
            save(app_dir / "app.py", slow)
            await server.until(CHANGED)
            began = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert (await closed_with(ws))[0] == 1001
            assert await asyncio.to_thread(stream.rest) == b""
        finally:
            stream.close()
    assert await asyncio.to_thread(server.stop, signal.SIGTERM, 20) == 0, server.output
    assert time.monotonic() - began < 5, f"took {time.monotonic() - began:.1f} s:\n{server.output}"


def test_no_request_fails_while_new_code_takes_over(start_server, app_dir):
    """Clients connecting all along, a new connection per request, through three reloads: the
    port never refuses (the workers of every generation inherit one listening socket) and no
    request the old worker had accepted is dropped unanswered."""
    server = start(start_server, app_dir, "--port", "0")
    versions = ["one", "two", "three", "four"]
    seen = {version: threading.Event() for version in versions}
    stop = threading.Event()
    failures: list[str] = []

    def client() -> None:
        while not stop.is_set():
            try:
                seen[get(server, "/version")].set()
            except OSError as error:
                failures.append(repr(error))

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    try:
        assert seen["one"].wait(TIMEOUT)
        for version in versions[1:]:
            set_version(app_dir, version)
            # Each swap is over once a client got the new code's answer.
            assert seen[version].wait(TIMEOUT), server.output
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert failures == [], failures[:5]
    server.wait_for(RELOADED, count=3)
    assert server.stop() == 0, server.output


async def test_an_app_that_does_not_start_is_served_once_a_save_fixes_it(start_server, app_dir):
    good = (app_dir / "app.py").read_text()
    save(app_dir / "app.py", good.replace("from robyn import Robyn", "from robyn import Robyn, NoSuchThing"))
    server = start_server("app", "--reload", cwd=app_dir, ready=False)
    server.wait_for(r"the app did not start \(the error is above\): save a fix to try again")
    assert "ImportError" in server.output and server.process.poll() is None
    save(app_dir / "app.py", good)
    server.started()
    assert await version_of_a_new_client(server) == "one"
    assert server.stop() == 0, server.output


async def test_a_handler_that_never_ends_holds_up_neither_the_new_code_nor_the_exit(start_server, app_dir):
    server = start_server("app", "--reload", "--shutdown-timeout", "1", cwd=app_dir)
    async with server.connect("/stubborn") as stubborn:
        assert await receive(stubborn) == "one"
        set_version(app_dir, "two")
        # The new code serves while the old handler still sits on its connection.
        await server.until(RELOADED)
        await server.until(r"one ignores the disconnect \(1012\)")
        assert await version_of_a_new_client(server) == "two"
        # Its worker closes it anyway once --shutdown-timeout is over, with the same code.
        assert (await closed_with(stubborn))[0] == 1012
    await server.until(r"connection\(s\) still open after 1s: closing them now")
    began = time.monotonic()
    assert await asyncio.to_thread(server.stop) == 0, server.output
    assert time.monotonic() - began < 5


async def test_every_worker_of_processes_is_replaced_and_a_broken_save_replaces_none(start_server, app_dir):
    server = start(start_server, app_dir, "--processes", "2")
    assert server.count(r"serving app on ws://\S+ with 2 processes") == 1
    good = (app_dir / "app.py").read_text()
    save(app_dir / "app.py", good.replace('VERSION = "one"', 'VERSION = "two"\nraise RuntimeError("not today")'))
    await server.until(DID_NOT_START)
    assert "RuntimeError: not today" in server.output
    assert {await version_of_a_new_client(server) for _ in range(6)} == {"one"}

    set_version(app_dir, "three")
    save(app_dir / "app.py", good.replace('VERSION = "one"', 'VERSION = "three"'))
    await server.until(RELOADED)
    await server.until(OLD_GONE)
    assert {await version_of_a_new_client(server) for _ in range(6)} == {"three"}
    assert server.stop() == 0, server.output


def test_help_documents_the_reload_flags_and_hides_the_workers_own(binary):
    result = run_to_exit(binary, "--help")
    assert result.returncode == 0
    for flag in ("--reload", "--dev", "--reload-dir", "--reload-include", "--reload-exclude"):
        assert flag in result.stdout
    assert "--listen-fd" not in result.stdout and "--metrics-fd" not in result.stdout


async def test_over_tls_the_new_code_serves_wss_and_the_old_closes_with_1012(start_server, app_dir, tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    server = start(start_server, app_dir, "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile))
    url = f"wss://127.0.0.1:{server.port}/echo"
    async with connect(url, ssl=context, open_timeout=TIMEOUT) as ws:
        assert await echo(ws) == "one:hi"
        set_version(app_dir, "two")
        assert (await closed_with(ws))[0] == 1012
    async with connect(url, ssl=context, open_timeout=TIMEOUT) as ws:
        assert await echo(ws) == "two:hi"
    assert server.stop() == 0, server.output


async def test_a_directory_made_while_serving_is_watched_from_then_on(start_server, app_dir):
    server = start(start_server, app_dir)
    save(app_dir / "pkg" / "sub" / "module.py", "x = 1\n")
    await server.until(r"/pkg/sub/module\.py changed")
    await server.until(RELOADED)
    # A later save inside it is seen: the new directories got watches of their own.
    save(app_dir / "pkg" / "sub" / "module.py", "x = 2\n")
    await server.until(r"/pkg/sub/module\.py changed", count=2)
    await server.until(RELOADED, count=2)
    # And one moved in from elsewhere, with what it holds.
    outside = app_dir.parent / f"{app_dir.name}-elsewhere"
    save(outside / "moved.py", "x = 1\n")
    outside.rename(app_dir / "moved_in")
    await server.until(r"/moved_in/moved\.py changed")
    await server.until(RELOADED, count=3)
    save(app_dir / "moved_in" / "moved.py", "x = 2\n")
    await server.until(r"/moved_in/moved\.py changed", count=2)
    assert server.stop() == 0, server.output
