"""The server as a real browser sees it: Debian's Chromium, driven by Playwright, opens
WebSockets from a page's JavaScript and reports what the page saw (messages, and the
CloseEvent's code, reason and wasClean). Every case runs twice: with permessage-deflate, which
Chromium always offers and the server accepts, and on a server started with `--no-deflate`;
each test checks the page's `ws.extensions` to prove which of the two it ran on."""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from conftest import APPS, TIMEOUT, Server
from playwright.async_api import Browser, ConsoleMessage, JSHandle, Page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

APP = "browser"
SERVER_FLAGS = {"compressed": [], "uncompressed": ["--no-deflate"]}

# Opens a WebSocket and resolves, once it is open, to an object whose next() resolves to the
# next thing the page saw: {text}, {binary: [byte, ...]} or {close: {code, reason, wasClean}}.
OPEN_SOCKET = """
(url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const events = [];
  const waiting = [];
  const record = (event) => (waiting.length ? waiting.shift()(event) : events.push(event));
  ws.onmessage = ({ data }) =>
    record(data instanceof ArrayBuffer ? { binary: Array.from(new Uint8Array(data)) } : { text: data });
  ws.onclose = ({ code, reason, wasClean }) => {
    record({ close: { code, reason, wasClean } });
    reject(new Error(`closed before it opened: ${code}`));
  };
  ws.onopen = () =>
    resolve({
      ws,
      next: () => (events.length ? Promise.resolve(events.shift()) : new Promise((r) => waiting.push(r))),
    });
})
"""

# Opens a WebSocket that the server may refuse; resolves to what the page saw of it:
# {opened: true} or {opened: false, code, wasClean}.
TRY_SOCKET = """
(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => { resolve({ opened: true }); ws.close(1000); };
  ws.onclose = ({ code, wasClean }) => resolve({ opened: false, code, wasClean });
})
"""

Event = dict[str, Any]


class PageSocket:
    """A WebSocket living in the page; every method runs JavaScript there. `console` collects
    what Chromium logged about the page's WebSockets (why it failed one, say)."""

    def __init__(self, handle: JSHandle, console: list[str]) -> None:
        self.handle = handle
        self.console = console

    async def _run(self, script: str, arg: object = None) -> Any:
        return await asyncio.wait_for(self.handle.evaluate(script, arg), TIMEOUT)

    async def extensions(self) -> str:
        return await self._run("s => s.ws.extensions")

    async def send_text(self, text: str) -> None:
        await self._run("(s, text) => s.ws.send(text)", text)

    async def send_bytes(self, data: bytes) -> None:
        await self._run("(s, bytes) => s.ws.send(new Uint8Array(bytes).buffer)", list(data))

    async def close(self, code: int, reason: str) -> None:
        await self._run("(s, [code, reason]) => s.ws.close(code, reason)", [code, reason])

    async def next(self) -> Event:
        return await self._run("s => s.next()")

    async def events_until_close(self) -> list[Event]:
        """Everything the page sees from now on, up to and including the close event."""
        events = [await self.next()]
        while "close" not in events[-1]:
            events.append(await self.next())
        return events


Connect = Callable[[Server, str], Awaitable[PageSocket]]


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page (own context) per test; closing it drops its WebSockets."""
    context = await browser.new_context()
    yield await context.new_page()
    await context.close()


@pytest.fixture(scope="module", params=list(SERVER_FLAGS))
def mode(request: pytest.FixtureRequest) -> str:
    """compressed: started normally, so Chromium's permessage-deflate offer is accepted;
    uncompressed: started with --no-deflate."""
    return request.param


@pytest.fixture(scope="module")
def server(binary: Path, mode: str, io_threads: str) -> Iterator[Server]:
    """One server per mode for the module; it must exit 0 on SIGTERM at the end."""
    args = ["--app", APP, "--host", "127.0.0.1", "--port", "0", "--io-threads", io_threads, *SERVER_FLAGS[mode]]
    server = Server(binary, args, None, APPS).started()
    yield server
    assert server.stop() == 0, server.output
    assert "panicked" not in server.output, f"the server panicked:\n{server.output}"


@pytest.fixture
def connect(page: Page, mode: str) -> Connect:
    """connect(server, path): a WebSocket opened by the page, checked to have negotiated
    permessage-deflate exactly when the mode says so."""
    console: list[str] = []

    def log(message: ConsoleMessage) -> None:
        if "WebSocket" in message.text:
            console.append(message.text)

    page.on("console", log)

    async def open_socket(server: Server, path: str) -> PageSocket:
        await load_page(page, server)
        handle = await asyncio.wait_for(page.evaluate_handle(OPEN_SOCKET, server.url(path)), TIMEOUT)
        socket = PageSocket(handle, console)
        extensions = await socket.extensions()
        if mode == "compressed":
            assert extensions.startswith("permessage-deflate"), extensions
        else:
            assert extensions == ""
        return socket

    return open_socket


async def load_page(page: Page, server: Server) -> None:
    """Chromium's Local Network Access checks refuse a WebSocket to 127.0.0.1 from a page with
    an opaque origin (about:blank, data:), as from a public site. So the page is loaded from
    the server's own origin: its plain-HTTP answer (a 404) is the page."""
    origin = f"http://127.0.0.1:{server.port}"
    if not page.url.startswith(origin):
        await page.goto(f"{origin}/", timeout=TIMEOUT * 1000)


def greeted_id(event: Event) -> str:
    """The connection id from on_connect's greeting, `hello <id>`."""
    assert event.get("text", "").startswith("hello "), event
    return event["text"].removeprefix("hello ")


async def test_a_text_message_is_echoed(server: Server, connect: Connect) -> None:
    """A text frame from the page comes back as the same text."""
    ws = await connect(server, "/echo")
    await ws.send_text("héllo, wörld €")
    assert await ws.next() == {"text": "héllo, wörld €"}


async def test_a_1_mib_message_is_echoed_intact(server: Server, connect: Connect) -> None:
    """A 1 MiB text message (as large as the default --receive-buffer) comes back intact."""
    message = "".join(random.Random(1).choices(string.ascii_letters + string.digits + " ", k=1 << 20))
    ws = await connect(server, "/echo")
    await ws.send_text(message)
    echoed = (await ws.next())["text"]
    assert len(echoed) == len(message)
    assert echoed == message


async def test_binary_round_trips_as_an_arraybuffer(server: Server, connect: Connect) -> None:
    """Every byte value, sent as an ArrayBuffer, comes back as an ArrayBuffer with the same bytes."""
    data = bytes(range(256)) * 16 + random.Random(2).randbytes(4096)
    ws = await connect(server, "/echo")
    await ws.send_bytes(data)
    assert bytes((await ws.next())["binary"]) == data


async def test_server_close_delivers_the_farewell_then_a_clean_4001(server: Server, connect: Connect) -> None:
    """websocket.close(4001, "some reason") in the handler: the page gets on_close's farewell,
    then a clean close with that code and reason."""
    ws = await connect(server, "/server-closes")
    await ws.send_text("close please")
    assert await ws.events_until_close() == [
        {"text": "farewell"},
        {"close": {"code": 4001, "reason": "some reason", "wasClean": True}},
    ], ws.console


async def test_client_close_reaches_the_handler_with_its_code(server: Server, connect: Connect) -> None:
    """ws.close(4321, "bye") in the page: the handler sees WebSocketDisconnect(4321, "bye"), and
    the page's close is clean, the server having answered with the same code and reason."""
    ws = await connect(server, "/lifecycle")
    conn_id = greeted_id(await ws.next())
    assert await ws.next() == {"text": "handler started"}
    await ws.close(4321, "bye")
    assert await ws.events_until_close() == [{"close": {"code": 4321, "reason": "bye", "wasClean": True}}], ws.console
    await server.until(rf"disconnect {conn_id} 4321 'bye'$")


async def test_on_connect_greets_first_and_on_close_runs_last(server: Server, connect: Connect) -> None:
    """on_connect's return value is the page's first message; on_close runs once, after the
    handler has ended."""
    ws = await connect(server, "/lifecycle")
    conn_id = greeted_id(await ws.next())
    assert await ws.next() == {"text": "handler started"}
    await ws.send_text("ping")
    assert await ws.next() == {"text": "echo ping"}
    await ws.close(1000, "")
    await ws.events_until_close()

    await server.until(rf"on_close {conn_id}$")
    lines = [line.partition(f" {conn_id}")[0] for line in server.output.splitlines() if f" {conn_id}" in line]
    assert lines == [
        "on_connect",
        "handler started",
        "disconnect",
        "on_close",
    ]


async def test_sigterm_closes_the_page_cleanly_with_1001(
    start_server: Callable[..., Server], connect: Connect, mode: str
) -> None:
    """SIGTERM with a page connected: its handler sees 1001, on_close's farewell arrives, the
    page sees a clean 1001, and the server exits 0."""
    server = start_server(APP, *SERVER_FLAGS[mode])
    ws = await connect(server, "/lifecycle")
    conn_id = greeted_id(await ws.next())
    assert await ws.next() == {"text": "handler started"}

    assert await asyncio.to_thread(server.stop) == 0, server.output
    *messages, closed = await ws.events_until_close()
    assert messages == [{"text": "farewell"}]
    assert (closed["close"]["code"], closed["close"]["wasClean"]) == (1001, True), (closed, ws.console)
    assert server.count(rf"disconnect {conn_id} 1001 ") == 1


async def test_a_page_the_app_serves_chats_over_a_websocket_to_the_same_server(server: Server, page: Page) -> None:
    """`@app.get("/page")` serves the HTML; its own script connects to `/echo` on the origin it
    came from, and what the user sends comes back into the page."""
    await page.goto(f"http://127.0.0.1:{server.port}/page", timeout=TIMEOUT * 1000)
    await page.wait_for_selector("body[data-state=open]", timeout=TIMEOUT * 1000)
    await page.fill("#line", "hello from the page")
    await page.click("button")
    await page.wait_for_selector("#log li:has-text('hello from the page')", timeout=TIMEOUT * 1000)


async def test_a_page_without_a_session_cookie_is_refused(server: Server, page: Page) -> None:
    """on_connect answers the handshake with 401: a browser cannot read that status, the page
    only sees its WebSocket close (1006, not clean), and the handler never runs."""
    await load_page(page, server)
    seen = await asyncio.wait_for(page.evaluate(TRY_SOCKET, server.url("/chat")), TIMEOUT)
    assert seen == {"opened": False, "code": 1006, "wasClean": False}
    await server.until("refused a page without a session")


async def test_pages_that_logged_in_chat_in_their_rooms(server: Server, page: Page, connect: Connect) -> None:
    """Pages with a session cookie (set as a login would) are let in, and hear only their room."""
    await page.context.add_cookies(
        [{"name": "session", "value": "ann-session", "url": server.url("/").replace("ws", "http", 1)}]
    )
    red = await connect(server, "/chat?room=red")
    also_red = await connect(server, "/chat?room=red")
    blue = await connect(server, "/chat?room=blue")
    for ws in (red, also_red, blue):
        assert await ws.next() == {"text": "welcome ann"}
    await red.send_text("hello reds")
    assert await red.next() == {"text": "[red] ann: hello reds"}
    assert await also_red.next() == {"text": "[red] ann: hello reds"}
    await blue.send_text("hello blues")
    assert await blue.next() == {"text": "[blue] ann: hello blues"}
    # red heard nothing of blue: its next message is red's own.
    await also_red.send_text("again")
    assert await red.next() == {"text": "[red] ann: again"}
