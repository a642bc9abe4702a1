"""A live page in a real browser (Debian's Chromium, driven by Playwright, as in
tests/test_browser.py): it logs in through a form, receives server-sent events and chats over a
WebSocket, all on one server and one session (tests/apps/browser_live.py). What is checked is
what the page shows: its DOM, waited for with Playwright's expectations, never with sleeps."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from chromium import WAIT, NewPage
from conftest import Server
from playwright.async_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

APP = "browser_live"


@pytest.fixture(scope="module")
def server(module_server: Server) -> Iterator[Server]:
    """One server for the module (per --io-threads mode), on APP; nothing the app did may
    have failed (warnings are left alone: a loaded machine may have the loop's slow-callback
    watch speak up)."""
    yield module_server
    for trouble in (" ERROR ", "Traceback"):
        assert trouble not in module_server.output, module_server.output


def origin(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


async def sign_in(page: Page, server: Server, name: str) -> int:
    """Loads the page, submits the login form with `name`; the status the form's POST got."""
    await page.goto(f"{origin(server)}/", timeout=WAIT)
    await page.fill("#name", name)
    async with page.expect_response(lambda response: response.request.method == "POST", timeout=WAIT) as posted:
        await page.click("#sign-in")
    await page.wait_for_load_state(timeout=WAIT)
    return (await posted.value).status


async def signed_in(new_page: NewPage, server: Server, name: str) -> Page:
    """A page logged in as `name` whose event stream and chat socket are open, and on whose
    page at least one tick from the background task has arrived."""
    page = await new_page()
    assert await sign_in(page, server, name) == 303
    await expect(page.locator("#who")).to_have_text(f"signed in as {name}", timeout=WAIT)
    body = page.locator("body")
    await expect(body).to_have_attribute("data-sse", "open", timeout=WAIT)
    await expect(body).to_have_attribute("data-chat", "open", timeout=WAIT)
    await expect(page.locator("#news li").first).to_have_text(f"hello {name}", timeout=WAIT)
    await expect(page.locator("#chat-log li").first).to_have_text(f"welcome {name}", timeout=WAIT)
    await expect(page.locator("#tick")).to_have_text(re.compile(r"^tick \d+$"), timeout=WAIT)
    return page


async def say(page: Page, line: str) -> None:
    await page.fill("#line", line)
    await page.click("#send")


async def test_before_login_the_stream_and_the_socket_are_refused(server: Server, new_page: NewPage) -> None:
    """Without a login, `/events` answers 401: the page's EventSource errors and gives up
    (CLOSED); the chat's handshake is refused too, which the page sees as a close 1006 before
    it ever opened."""
    refusals = server.count("refused a chat without a login")
    page = await new_page()
    async with page.expect_response(lambda response: response.url.endswith("/events"), timeout=WAIT) as stream:
        await page.goto(f"{origin(server)}/", timeout=WAIT)
    assert (await stream.value).status == 401
    body = page.locator("body")
    await expect(body).to_have_attribute("data-sse", "refused", timeout=WAIT)
    await expect(body).to_have_attribute("data-chat", "refused 1006", timeout=WAIT)
    await expect(page.locator("#who")).to_have_text("not signed in", timeout=WAIT)
    await expect(page.locator("#tick")).to_have_text("", timeout=WAIT)
    assert await body.get_attribute("data-sse-opens") == "0"
    await server.until("refused a chat without a login", count=refusals + 1)


@pytest.mark.parametrize("name", ["mallory", ""])
async def test_an_unknown_or_empty_name_is_refused(server: Server, new_page: NewPage, name: str) -> None:
    """The form's POST is answered 401 with the page saying why; no session cookie is set, so
    the stream and the socket stay refused."""
    page = await new_page()
    assert await sign_in(page, server, name) == 401
    await expect(page.locator("#error")).to_have_text(f"unknown user {name!r}", timeout=WAIT)
    await expect(page.locator("#who")).to_have_text("not signed in", timeout=WAIT)
    body = page.locator("body")
    await expect(body).to_have_attribute("data-sse", "refused", timeout=WAIT)
    await expect(body).to_have_attribute("data-chat", "refused 1006", timeout=WAIT)
    assert await page.context.cookies() == []


async def test_after_login_the_page_gets_events_and_chats_with_another_browser(
    server: Server, new_page: NewPage
) -> None:
    """Logged in through the form, the page's EventSource opens and renders the background
    task's ticks; a line sent from the page over the WebSocket comes back, prefixed with the
    user's name, to the page itself and to a second browser (another context) logged in as
    someone else."""
    ann = await signed_in(new_page, server, "ann")
    bob = await signed_in(new_page, server, "bob")
    for page in (ann, bob):
        await page.wait_for_function("Number(document.body.dataset.ticks) >= 3", timeout=WAIT)

    await say(ann, "hello")
    await expect(ann.locator("#chat-log li")).to_have_text(["welcome ann", "ann: hello"], timeout=WAIT)
    await expect(bob.locator("#chat-log li")).to_have_text(["welcome bob", "ann: hello"], timeout=WAIT)


async def test_the_event_stream_carries_the_chat_too(server: Server, new_page: NewPage) -> None:
    """The WebSocket handler hands each line to the event streams as well as broadcasting it:
    every logged-in page's EventSource gets it as a `chat` event, after its hello."""
    ann = await signed_in(new_page, server, "ann")
    bob = await signed_in(new_page, server, "bob")

    await say(bob, "hi ann")
    await expect(ann.locator("#chat-log li").last).to_have_text("bob: hi ann", timeout=WAIT)
    await say(ann, "hi bob")
    for page, name in ((ann, "ann"), (bob, "bob")):
        await expect(page.locator("#news li")).to_have_text(
            [f"hello {name}", "bob: hi ann", "ann: hi bob"], timeout=WAIT
        )
        await expect(page.locator("#chat-log li")).to_have_text(
            [f"welcome {name}", "bob: hi ann", "ann: hi bob"], timeout=WAIT
        )


async def test_the_event_source_reconnects_after_the_server_ends_its_stream(server: Server, new_page: NewPage) -> None:
    """`POST /drop` ends every event stream. The page's EventSource errors, stays CONNECTING,
    and comes back after the stream's `retry` (200 ms) sending the id of the last event it
    had as Last-Event-ID, which the new stream's hello names; the ticks go on."""
    ann = await signed_in(new_page, server, "ann")
    await ann.wait_for_function("Number(document.body.dataset.ticks) >= 2", timeout=WAIT)

    dropped = await ann.request.post(f"{origin(server)}/drop", timeout=WAIT)
    assert dropped.status == 200
    assert re.fullmatch(r"dropped [1-9]\d*", await dropped.text())

    body = ann.locator("body")
    await expect(body).to_have_attribute("data-sse-opens", "2", timeout=WAIT)
    await expect(body).to_have_attribute("data-sse", "open", timeout=WAIT)
    last_id = await body.get_attribute("data-last-id-at-error")
    assert last_id and last_id.isdigit(), last_id
    await expect(ann.locator("#news li")).to_have_text(
        ["hello ann", f"hello ann (resumed after {last_id})"], timeout=WAIT
    )
    ticks = int(await body.get_attribute("data-ticks") or 0)
    await ann.wait_for_function(f"Number(document.body.dataset.ticks) > {ticks}", timeout=WAIT)
    # The socket was not touched by the stream's drop.
    await expect(body).to_have_attribute("data-chat", "open", timeout=WAIT)


async def test_closing_the_page_ends_its_stream(server: Server, new_page: NewPage) -> None:
    """A page that goes away ends its event stream: the app's generator is closed (its
    `finally` runs) and the hub forgets the subscriber."""
    bob = await signed_in(new_page, server, "bob")
    stream = max(int(match.group(1)) for match in re.finditer(r"stream (\d+) for bob ", server.output))
    await bob.context.close()
    await server.until(rf"^stream {stream} ended$")
