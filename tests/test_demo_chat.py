"""The demo chat's page (pyapp/static, served by pyapp.main at /) in a real browser: Debian's
Chromium driven by Playwright, as in tests/test_browser_live.py. Each user is a browser context
of their own (their own cookies); what is checked is what each page shows, waited for with
Playwright's expectations. Every test gets a fresh server, so nobody from an earlier test is
still in a room. The protocol underneath is tested without a browser in
tests/test_example_chat.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chromium import CHROMIUM, CHROMIUM_FLAGS, WAIT, NewPage
from conftest import ROOT, Server
from playwright.async_api import Page, async_playwright, expect
from test_browser import TRY_SOCKET

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    """pyapp.main, as the README's first command serves it, from the repository's root."""
    return start_server("pyapp.main", cwd=ROOT)


def log(page: Page):
    return page.locator("#log li")


async def open_chat(new_page: NewPage, server: Server) -> Page:
    page = await new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/", timeout=WAIT)
    return page


async def log_in(page: Page, name: str) -> None:
    await page.fill("#name", name)
    await page.click("#sign-in")


async def logged_in(new_page: NewPage, server: Server, name: str) -> Page:
    """A page logged in as `name` through the form, its socket open and its own arrival in the
    lobby shown."""
    page = await open_chat(new_page, server)
    await log_in(page, name)
    await expect(page.locator("#who")).to_have_text(f"logged in as {name}", timeout=WAIT)
    await expect(page.locator("body")).to_have_attribute("data-socket", "open", timeout=WAIT)
    await expect(log(page).first).to_have_text(f"{name} joined #lobby", timeout=WAIT)
    await expect(page.locator("#rooms li.active .room")).to_have_text("#lobby", timeout=WAIT)
    return page


async def say(page: Page, line: str) -> None:
    await page.fill("#line", line)
    await page.click("#send")


async def join(page: Page, room: str) -> None:
    await page.fill("#room-name", room)
    await page.click("#join-room")


async def test_without_a_login_the_page_shows_the_form_and_the_socket_is_refused(
    server: Server, new_page: NewPage
) -> None:
    page = await open_chat(new_page, server)
    await expect(page.locator("#login")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#chat")).to_be_hidden(timeout=WAIT)
    await expect(page.locator("#who")).to_have_text("not logged in", timeout=WAIT)
    # The page opens no socket before a login; one opened anyway is refused at the handshake,
    # which a page sees as a close 1006 before it ever opened.
    assert await page.locator("body").get_attribute("data-socket") == "none"
    seen = await page.evaluate(TRY_SOCKET, f"ws://127.0.0.1:{server.port}/rooms")
    assert seen == {"opened": False, "code": 1006, "wasClean": False}


async def test_a_name_the_app_refuses_is_explained_on_the_page(server: Server, new_page: NewPage) -> None:
    page = await open_chat(new_page, server)
    await log_in(page, "no spaces")
    await expect(page.locator("#login-error")).to_have_text("a name is 1 to 20 letters, digits, - or _", timeout=WAIT)
    await expect(page.locator("#chat")).to_be_hidden(timeout=WAIT)
    assert await page.context.cookies() == []


async def test_a_room_hears_its_own_messages_only(server: Server, new_page: NewPage) -> None:
    """ann's lobby message reaches bob; bob joins #rust, where ann is not: what bob says there
    never shows on ann's page, while what he says in the lobby after it does."""
    ann = await logged_in(new_page, server, "ann")
    bob = await logged_in(new_page, server, "bob")
    await expect(log(ann).last).to_have_text("bob joined #lobby", timeout=WAIT)

    await say(ann, "hello bob")
    await expect(log(bob).last).to_have_text("#lobby ann: hello bob", timeout=WAIT)

    await join(bob, "rust")
    await expect(bob.locator("#rooms .room")).to_have_text(["#lobby", "#rust"], timeout=WAIT)
    await expect(bob.locator("#rooms li.active .room")).to_have_text("#rust", timeout=WAIT)
    await say(bob, "any rustaceans?")
    await expect(log(bob).last).to_have_text("#rust bob: any rustaceans?", timeout=WAIT)

    await bob.click("#rooms li[data-room=lobby] .room")
    await say(bob, "back in the lobby")
    # One sender's broadcasts arrive in order: had ann got the #rust line, it would be here.
    await expect(log(ann)).to_have_text(
        ["ann joined #lobby", "bob joined #lobby", "#lobby ann: hello bob", "#lobby bob: back in the lobby"],
        timeout=WAIT,
    )

    # Leaving #rust: the list shrinks, and talking there is over.
    await bob.click("#rooms li[data-room=rust] .leave")
    await expect(bob.locator("#rooms .room")).to_have_text(["#lobby"], timeout=WAIT)


async def test_a_private_message_reaches_its_recipient_only(server: Server, new_page: NewPage) -> None:
    ann = await logged_in(new_page, server, "ann")
    bob = await logged_in(new_page, server, "bob")
    cy = await logged_in(new_page, server, "cy")
    await expect(log(ann).last).to_have_text("cy joined #lobby", timeout=WAIT)

    await say(ann, "/msg bob the password is swordfish")
    await expect(log(bob).last).to_have_text("ann → bob (private): the password is swordfish", timeout=WAIT)
    await expect(log(bob).last).to_have_class("private", timeout=WAIT)
    await expect(log(ann).last).to_have_text("ann → bob (private): the password is swordfish", timeout=WAIT)

    await say(ann, "nothing to see here")
    await expect(log(cy)).to_have_text(["cy joined #lobby", "#lobby ann: nothing to see here"], timeout=WAIT)


async def test_a_message_to_someone_offline_gets_a_notice(server: Server, new_page: NewPage) -> None:
    ann = await logged_in(new_page, server, "ann")
    await say(ann, "/msg dave are you there?")
    await expect(log(ann).last).to_have_text("dave is not online", timeout=WAIT)
    await expect(log(ann).last).to_have_class("notice", timeout=WAIT)
    await say(ann, "/shout hi")
    await expect(log(ann).last).to_have_text("commands: /msg name text", timeout=WAIT)


async def test_what_users_type_is_shown_as_text_never_as_html(server: Server, new_page: NewPage) -> None:
    ann = await logged_in(new_page, server, "ann")
    bob = await logged_in(new_page, server, "bob")
    attack = '<img src="x" onerror="document.body.dataset.pwned = 1">'
    await say(ann, attack)
    await expect(log(bob).last).to_have_text(f"#lobby ann: {attack}", timeout=WAIT)
    await expect(bob.locator("#log img")).to_have_count(0, timeout=WAIT)
    assert await bob.locator("body").get_attribute("data-pwned") is None


async def test_the_login_outlives_a_reload_until_logout(server: Server, new_page: NewPage) -> None:
    """The session cookie keeps the login: a reloaded page goes straight to the chat. Logging
    out closes the socket and shows the form again; a reload then stays there."""
    ann = await logged_in(new_page, server, "ann")
    await ann.reload(timeout=WAIT)
    await expect(ann.locator("body")).to_have_attribute("data-socket", "open", timeout=WAIT)
    await expect(ann.locator("#who")).to_have_text("logged in as ann", timeout=WAIT)

    await ann.click("#logout")
    await expect(ann.locator("#login")).to_be_visible(timeout=WAIT)
    await expect(ann.locator("#who")).to_have_text("not logged in", timeout=WAIT)
    await ann.reload(timeout=WAIT)
    await expect(ann.locator("#login")).to_be_visible(timeout=WAIT)
    await expect(ann.locator("#chat")).to_be_hidden(timeout=WAIT)


async def test_the_demo_over_https_and_wss(start_server: Callable[..., Server], tmp_path) -> None:
    """The same page served with --ssl-certfile: Chromium (the certificate's key pinned, as a
    browser that trusts its CA would take it) logs in over https, its socket is wss:// on the
    same port with the session cookie, and a second user hears the first."""
    import trustme
    from test_tls import issue, spki_hash

    certfile, keyfile = issue(trustme.CA(), tmp_path, "server")
    server = start_server("pyapp.main", "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile), cwd=ROOT)
    flags = [*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={spki_hash(certfile)}"]
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            pages = []
            for name in ("ann", "bob"):
                page = await (await chromium.new_context()).new_page()
                await page.goto(f"https://127.0.0.1:{server.port}/", timeout=WAIT)
                await log_in(page, name)
                await expect(page.locator("body")).to_have_attribute("data-socket", "open", timeout=WAIT)
                pages.append(page)
            ann, bob = pages
            assert await ann.evaluate("location.protocol") == "https:"
            await expect(log(ann).last).to_have_text("bob joined #lobby", timeout=WAIT)
            await say(ann, "hello over TLS")
            await expect(log(bob).last).to_have_text("#lobby ann: hello over TLS", timeout=WAIT)
        finally:
            await chromium.close()


async def test_a_page_that_comes_back_shows_what_it_missed_once_in_order(server: Server, new_page: NewPage) -> None:
    """ann's page goes elsewhere while bob talks, and comes back (within the presence grace,
    so nobody left or joined): it shows what it showed before, then bob's lines, once each and
    in order; a reload after that shows the same again, nothing twice."""
    ann = await logged_in(new_page, server, "ann")
    bob = await logged_in(new_page, server, "bob")
    await say(ann, "brb")
    before = ["ann joined #lobby", "bob joined #lobby", "#lobby ann: brb"]
    await expect(log(ann)).to_have_text(before, timeout=WAIT)
    await expect(log(bob).last).to_have_text("#lobby ann: brb", timeout=WAIT)

    await ann.goto("about:blank", timeout=WAIT)
    missed = [f"#lobby bob: missed {n}" for n in range(4)]
    for n in range(4):
        await say(bob, f"missed {n}")
    await expect(log(bob).last).to_have_text(missed[-1], timeout=WAIT)

    await ann.goto(f"http://127.0.0.1:{server.port}/", timeout=WAIT)
    await expect(ann.locator("body")).to_have_attribute("data-socket", "open", timeout=WAIT)
    await expect(log(ann)).to_have_text([*before, *missed], timeout=WAIT)
    await expect(ann.locator("#present li")).to_have_text(["ann", "bob"], timeout=WAIT)
    await say(bob, "welcome back")
    await expect(log(ann)).to_have_text([*before, *missed, "#lobby bob: welcome back"], timeout=WAIT)

    await ann.reload(timeout=WAIT)
    await expect(ann.locator("body")).to_have_attribute("data-socket", "open", timeout=WAIT)
    await say(ann, "thanks")
    await expect(log(ann)).to_have_text(
        [*before, *missed, "#lobby bob: welcome back", "#lobby ann: thanks"], timeout=WAIT
    )
    await expect(log(bob)).to_have_text(
        ["bob joined #lobby", "#lobby ann: brb", *missed, "#lobby bob: welcome back", "#lobby ann: thanks"],
        timeout=WAIT,
    )


async def test_a_page_comes_back_to_its_rooms_and_starts_one_again_when_its_history_is_lost(
    server: Server, new_page: NewPage
) -> None:
    """The rooms a page was in are the rooms it comes back to; a position the server cannot go
    on from (here: one from another epoch, as after a restart) has the page forget that
    room's lines and say so, and the room goes on from there."""
    ann = await logged_in(new_page, server, "ann")
    await join(ann, "rust")
    await expect(ann.locator("#rooms .room")).to_have_text(["#lobby", "#rust"], timeout=WAIT)
    await say(ann, "in rust")
    await expect(log(ann)).to_have_text(["ann joined #lobby", "ann joined #rust", "#rust ann: in rust"], timeout=WAIT)

    await ann.evaluate("""() => {
        const kept = JSON.parse(sessionStorage.getItem("chat"));
        kept.positions.rust = ["an epoch of long ago", 7];
        sessionStorage.setItem("chat", JSON.stringify(kept));
    }""")
    await ann.reload(timeout=WAIT)
    await expect(ann.locator("#rooms .room")).to_have_text(["#lobby", "#rust"], timeout=WAIT)
    await expect(ann.locator("#rooms li.active .room")).to_have_text("#rust", timeout=WAIT)
    lost = "#rust: what was said while you were away is lost; the room starts again here"
    await expect(log(ann)).to_have_text(["ann joined #lobby", lost], timeout=WAIT)
    await expect(log(ann).last).to_have_class("notice", timeout=WAIT)
    await say(ann, "again")
    await expect(log(ann)).to_have_text(["ann joined #lobby", lost, "#rust ann: again"], timeout=WAIT)


async def test_who_is_here_shows_each_rooms_users_and_follows_them(
    start_server: Callable[..., Server], new_page: NewPage
) -> None:
    """The list beside the rooms is the active room's users: both ann and bob in the lobby,
    only bob in #rust until ann joins; when ann's page closes, bob's lists and log hear she
    left once the grace is over."""
    server = start_server("pyapp.main", "--presence-grace", "0.3", cwd=ROOT)
    ann = await logged_in(new_page, server, "ann")
    bob = await logged_in(new_page, server, "bob")
    for page in (ann, bob):
        await expect(page.locator("#present li")).to_have_text(["ann", "bob"], timeout=WAIT)
        await expect(page.locator("#present-room")).to_have_text("#lobby", timeout=WAIT)

    await join(bob, "rust")
    await expect(bob.locator("#present-room")).to_have_text("#rust", timeout=WAIT)
    await expect(bob.locator("#present li")).to_have_text(["bob"], timeout=WAIT)
    await join(ann, "rust")
    await expect(bob.locator("#present li")).to_have_text(["ann", "bob"], timeout=WAIT)
    await expect(log(bob).last).to_have_text("ann joined #rust", timeout=WAIT)

    await ann.context.close()
    await expect(bob.locator("#present li")).to_have_text(["bob"], timeout=WAIT)
    await bob.click("#rooms li[data-room=lobby] .room")
    await expect(bob.locator("#present li")).to_have_text(["bob"], timeout=WAIT)
    left = [await item.text_content() for item in await log(bob).all()][-2:]
    assert sorted(left) == ["ann left #lobby", "ann left #rust"]


async def test_a_private_message_reaches_every_page_of_its_recipient(server: Server, new_page: NewPage) -> None:
    """bob has two pages (tabs of one browser: one login); ann's message shows on both, and
    ann's copy on hers; bob is in the lobby once."""
    ann = await logged_in(new_page, server, "ann")
    bob = await logged_in(new_page, server, "bob")
    bob_again = await bob.context.new_page()
    await bob_again.goto(f"http://127.0.0.1:{server.port}/", timeout=WAIT)
    await expect(bob_again.locator("body")).to_have_attribute("data-socket", "open", timeout=WAIT)
    await expect(bob_again.locator("#present li")).to_have_text(["ann", "bob"], timeout=WAIT)

    await say(ann, "/msg bob to both tabs")
    line = "ann → bob (private): to both tabs"
    for page in (bob, bob_again, ann):
        await expect(log(page).last).to_have_text(line, timeout=WAIT)
    # bob's answer from one tab shows in the other too.
    await say(bob_again, "/msg ann got it")
    for page in (ann, bob, bob_again):
        await expect(log(page).last).to_have_text("bob → ann (private): got it", timeout=WAIT)
    await expect(log(ann)).to_have_text(["ann joined #lobby", "bob joined #lobby", line, "bob → ann (private): got it"])


async def test_with_two_worker_processes_private_messages_and_presence_reach_across(
    start_server: Callable[..., Server], new_page: NewPage
) -> None:
    """--processes 2: whichever worker each page's socket is on (tests/test_example_chat.py
    puts them on different ones for sure), presence and private messages are the cluster's."""
    server = start_server("pyapp.main", "--processes", "2", "--presence-grace", "0.3", cwd=ROOT)
    pages = {name: await logged_in(new_page, server, name) for name in ("ann", "bob", "cy")}
    for page in pages.values():
        await expect(page.locator("#present li")).to_have_text(["ann", "bob", "cy"], timeout=WAIT)
    for sender, to in [("ann", "bob"), ("bob", "cy"), ("cy", "ann")]:
        await say(pages[sender], f"/msg {to} hello {to}")
        for name in (sender, to):
            await expect(log(pages[name]).last).to_have_text(f"{sender} → {to} (private): hello {to}", timeout=WAIT)
    await pages["cy"].context.close()
    await expect(pages["ann"].locator("#present li")).to_have_text(["ann", "bob"], timeout=WAIT)
    await expect(log(pages["bob"]).last).to_have_text("cy left #lobby", timeout=WAIT)
    await say(pages["ann"], "/msg cy still there?")
    await expect(log(pages["ann"]).last).to_have_text("cy is not online", timeout=WAIT)
