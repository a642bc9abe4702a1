"""Debian's Chromium as the browser tests drive it (Playwright, with `executable_path`:
Playwright's own browser download cannot work here). The `browser` and `new_page` fixtures
that launch it are in conftest.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from conftest import TIMEOUT
from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking ones Chromium's own connections to the outside are
# refused by this machine's closed network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = TIMEOUT * 1000  # Playwright counts in milliseconds

NewPage = Callable[[], Awaitable[Page]]
