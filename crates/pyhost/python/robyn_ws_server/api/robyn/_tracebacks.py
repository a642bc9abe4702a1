"""Tracebacks as the user would see them under `python app.py`: the server's own frames (this
package, the import machinery, asyncio running a callback) are left out of the top."""

from __future__ import annotations

import asyncio
import logging
import traceback

_MACHINERY = ("robyn-ws-server/", "<frozen importlib", "/importlib/", "<frozen runpy>", "/runpy.py", "/asyncio/")


def is_machinery(filename: str) -> bool:
    """Whether code in `filename` is the server's or asyncio's rather than the app's."""
    return any(marker in filename for marker in _MACHINERY)


def user_traceback(error: BaseException) -> str:
    summary = traceback.TracebackException.from_exception(error)
    frames = list(summary.stack)
    while frames and is_machinery(frames[0].filename):
        frames.pop(0)
    summary.stack = traceback.StackSummary.from_list(frames)
    return "".join(summary.format()).rstrip()


def one_line(error: BaseException) -> str:
    """`KeyError: 'port'`, or just the type when the exception has no message."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class RepeatedFailures:
    """Logs a failure with its traceback the first few times it happens in one place; after
    that the same failure (the same exception type raised at the same line, whatever its
    message) is counted, and the count is logged once per interval. A handler that fails for
    every client then writes a few tracebacks and a line every ten seconds, not one traceback
    per connection. A failure that stops for a whole interval is forgotten: the next one is
    shown in full again."""

    SHOWN = 3
    INTERVAL = 10.0
    # Distinct failures remembered at once; past it the oldest are forgotten.
    REMEMBERED = 256

    def __init__(self, log: logging.Logger, subject: str = "connection") -> None:
        self._log = log
        # What the failures happen for: a "connection", a "request".
        self._subject = subject
        self._seen: dict[tuple[str, str, str], _Repeats] = {}

    def failed(self, what: str, connection: str, error: BaseException) -> None:
        """``what`` failed (``"handler on /chat"``) for ``connection`` (the subject: a
        connection's id, a request's method and path) with ``error``. Called on the loop."""
        key = (what, type(error).__qualname__, _raised_at(error))
        repeats = self._seen.get(key)
        if repeats is None:
            if len(self._seen) >= self.REMEMBERED:
                self._forget(next(iter(self._seen)))
            repeats = self._seen[key] = _Repeats()
        if repeats.shown < self.SHOWN:
            repeats.shown += 1
            more = " (the same again is counted, not shown)" if repeats.shown == self.SHOWN else ""
            self._log.error("%s failed for %s %s%s", what, self._subject, connection, more, exc_info=error)
            return
        repeats.unreported += 1
        if repeats.timer is None:
            repeats.timer = asyncio.get_running_loop().call_later(self.INTERVAL, self._report, key)

    def report_all(self) -> None:
        """Logs every count not logged yet (at shutdown)."""
        for key in list(self._seen):
            self._forget(key)

    def _report(self, key: tuple[str, str, str]) -> None:
        repeats = self._seen[key]
        repeats.timer = None
        if not repeats.unreported:
            del self._seen[key]
            return
        self._say(key, repeats, f"in the last {self.INTERVAL:.0f} s")
        # Watches one more interval: a failure that goes quiet is then forgotten.
        repeats.timer = asyncio.get_running_loop().call_later(self.INTERVAL, self._report, key)

    def _forget(self, key: tuple[str, str, str]) -> None:
        repeats = self._seen.pop(key)
        if repeats.timer is not None:
            repeats.timer.cancel()
        if repeats.unreported:
            self._say(key, repeats, "not reported yet")

    def _say(self, key: tuple[str, str, str], repeats: _Repeats, when: str) -> None:
        what, kind, where = key
        self._log.error("%s failed %d more time(s) %s, with %s at %s", what, repeats.unreported, when, kind, where)
        repeats.unreported = 0


class _Repeats:
    __slots__ = ("shown", "timer", "unreported")

    def __init__(self) -> None:
        self.shown = 0
        self.unreported = 0
        self.timer: asyncio.TimerHandle | None = None


def _raised_at(error: BaseException) -> str:
    """`app.py:12` where the error was raised (its innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
