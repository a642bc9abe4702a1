"""Histories of the WebSocket routes declared with ``history=N``: the offset each kept
broadcast gets, what a client missed since its last offset, and recovering it. The history
is kept in Rust: in this process, in the supervisor of ``--processes``, or in Redis with
``--broker``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, Union, cast

if TYPE_CHECKING:
    from robyn._native import Recovered

# What `broadcast` takes on a route with a history: the message, or a function that makes it
# from its offset.
Message = Union[str, bytes]
Broadcast = Union[Message, Callable[[int], Message]]
T = TypeVar("T")

_GAPS = {
    "epoch": "the history was lost and began again (a new epoch), so offsets from before mean nothing now",
    "too old": "part of what was missed is older than the history keeps",
}


@dataclass(frozen=True)
class HistoryPosition:
    """Where a history stands: its ``epoch`` (it changes when the history was lost, say a
    restart of Redis or of the server) and the last ``offset`` given in it (0 before the
    first broadcast). robyn-ws-server only; not in Robyn 0.88.0."""

    epoch: str
    offset: int


class HistoryGap(Exception):  # noqa: N818 (a gap, not an error of the app's)
    """What a client missed cannot be caught up from the history: ``reason`` is ``"epoch"``
    (the history was lost and began again) or ``"too old"`` (it no longer keeps all of it).
    The app then reloads the client's state and starts it at ``epoch`` and ``offset``, where
    the history stands now. robyn-ws-server only; not in Robyn 0.88.0."""

    def __init__(self, reason: str, epoch: str, offset: int) -> None:
        super().__init__(
            f"cannot catch up: {_GAPS.get(reason, reason)}; reload the state (now at epoch {epoch}, offset {offset})"
        )
        self.reason = reason
        self.epoch = epoch
        self.offset = offset


async def broadcast(endpoint: int, data: Broadcast, room: str | None, except_id: str | None) -> int:
    """Keeps and sends a broadcast; its offset. A function is called once, with the offset,
    and returns the message (``str`` or ``bytes``)."""
    from robyn import _native  # only inside the running server

    if callable(data):
        offset = await _settled(_native.reserve(endpoint, room))
        try:
            message = data(offset)
        except BaseException:
            _native.commit(endpoint, room, offset, None)  # given up: what follows is not held back
            raise
        _native.commit(endpoint, room, offset, message, except_id)
        return offset
    return await _settled(_native.broadcast_kept(endpoint, data, room, except_id))


async def missed(endpoint: int, room: str | None, since: int, epoch: str) -> list[str | bytes]:
    from robyn import _native  # only inside the running server

    check_position(since, epoch)
    now_epoch, offset, messages, gap = await _settled(_native.missed(endpoint, room, epoch, since))
    if gap is not None or messages is None:
        raise HistoryGap(gap or "epoch", now_epoch, offset)
    return messages


async def position(endpoint: int, room: str | None) -> HistoryPosition:
    from robyn import _native  # only inside the running server

    epoch, offset, _, _ = await _settled(_native.missed(endpoint, room))
    return HistoryPosition(epoch, offset)


async def recovered(answer: Recovered | asyncio.Future[Recovered]) -> int:
    """How many missed messages a recovery queued, or the gap."""
    epoch, offset, count, gap = await _settled(answer)
    if gap is not None or count is None:
        raise HistoryGap(gap or "epoch", epoch, offset)
    return count


def check_position(since: object, epoch: object) -> None:
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise TypeError(f"since is an offset (an int, 0 or more), got {since!r}")
    if not isinstance(epoch, str):
        raise TypeError(f"epoch is the history's epoch (a str), got {type(epoch).__name__}")


async def _settled(answer: T | asyncio.Future[T]) -> T:
    # Kept in this process, the answer is there at once; kept elsewhere, it comes as a future.
    if isinstance(answer, asyncio.Future):
        return cast("T", await answer)
    return answer
