"""Tracebacks as the user would see them under `python app.py`: the server's own frames (this
package, the import machinery, asyncio running a callback) are left out of the top."""

from __future__ import annotations

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
