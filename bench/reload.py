"""How long `--reload` takes, as a developer sees it (`python3 bench/reload.py`, or
`just bench-reload`): the server runs tests/apps/reload_app.py from a temporary folder with
WebSockets and event streams open on it, and the script saves a new version of the file a
number of times. For each save it reports how long until

- the open WebSockets have all received Close 1012 and the event streams have all ended,
- a new client gets the new code's answer (a client asking over and over, a new connection
  each time: what a browser's refresh sees),
- the old workers have exited, from their being asked to (the server's own log, at debug),

and prints the medians. Only loopback is used; nothing here is asserted: the machine decides.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "apps" / "reload_app.py"
BINARY = ROOT / "target" / "release" / "robyn-ws-server"


class Server:
    def __init__(self, folder: Path, port: int, processes: int) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        flags = ["--app", "app", "--reload", "--port", str(port), "--log-level", "debug"]
        self.process = subprocess.Popen(
            [str(BINARY), *flags, "--processes", str(processes)],
            cwd=folder,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self.collect, daemon=True).start()

    def collect(self) -> None:
        for line in self.process.stderr or []:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30) -> list[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [line for line in self.lines if regex.search(line)]
                if len(found) >= count:
                    return found
                if time.monotonic() > deadline:
                    raise SystemExit(f"no {pattern!r} in the server's output:\n" + "\n".join(self.lines[-30:]))
                self.changed.wait(0.5)


def stamp(line: str) -> datetime:
    return datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))


def version(port: int) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        return data.rsplit(b"\r\n\r\n", 1)[-1].decode()
    except OSError:
        return None


async def event_stream_end(port: int, opened: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\n\n")
    opened.set()
    # The chunked body's last chunk ("0\r\n\r\n"), then the connection closes.
    rest = await reader.read()
    if not rest.endswith(b"0\r\n\r\n"):
        raise RuntimeError(f"an event stream was cut off: {rest[-40:]!r}")
    writer.close()


async def one_save(
    folder: Path, port: int, server: Server, n: int, sockets: int, streams: int, processes: int
) -> dict[str, float]:
    clients = [await connect(f"ws://127.0.0.1:{port}/echo", max_queue=None) for _ in range(sockets)]
    opened = [asyncio.Event() for _ in range(streams)]
    ends = [asyncio.create_task(event_stream_end(port, event)) for event in opened]
    for event in opened:
        await event.wait()

    async def closed(ws) -> None:
        try:
            await ws.recv()
        except ConnectionClosed:
            close = ws.protocol.close_rcvd
            if close is None or close.code != 1012:
                raise RuntimeError(f"a WebSocket was closed with {close} rather than 1012") from None

    waits = [asyncio.create_task(closed(ws)) for ws in clients]
    new = f"v{n}"
    app = folder / "app.py"
    saved = time.monotonic()
    app.write_text(re.sub(r'^VERSION = ".*"$', f'VERSION = "{new}"', app.read_text(), flags=re.M))
    while await asyncio.to_thread(version, port) != new:
        pass
    serving = time.monotonic() - saved
    await asyncio.gather(*waits, *ends)
    closed_all = time.monotonic() - saved
    # Each old worker of this save: from its being asked to its exit (the last of them).
    handed = stamp(server.wait_for(r"this one hands over", count=n * processes)[-processes])
    exited = stamp(server.wait_for(r"of the old code exited", count=n * processes)[-1])
    started = server.wait_for(r"reloaded: the new code serves \((\d+) ms", count=n)[-1]
    return {
        "started": float(re.search(r"\((\d+) ms", started).group(1)),
        "serving": serving * 1000,
        "closed": closed_all * 1000,
        "old_exit": (exited - handed).total_seconds() * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--sockets", type=int, default=100, help="WebSockets open at each save")
    parser.add_argument("--streams", type=int, default=10, help="event streams open at each save")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--port", type=int, default=8131)
    options = parser.parse_args()
    if not BINARY.exists():
        sys.exit(f"build the server first: {BINARY} is missing (just build)")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shutil.copy(APP, folder / "app.py")
        server = Server(folder, options.port, options.processes)
        server.wait_for(r"serving app on")
        rounds = []
        try:
            for n in range(1, options.saves + 1):
                rounds.append(
                    await one_save(folder, options.port, server, n, options.sockets, options.streams, options.processes)
                )
        finally:
            server.process.terminate()
            server.process.wait()
    print(
        f"{options.saves} saves, {options.sockets} WebSockets and {options.streams} event streams open, "
        f"--processes {options.processes}; median (min-max) in ms:"
    )
    for key, label in [
        ("started", "change seen -> every new worker serves (the server's log)"),
        ("serving", "save -> a new client gets the new code"),
        ("closed", "save -> every WebSocket got 1012 and every stream ended"),
        ("old_exit", "old worker asked to hand over -> exited"),
    ]:
        values = [round[key] for round in rounds]
        print(f"  {label}: {statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})")


if __name__ == "__main__":
    asyncio.run(main())
