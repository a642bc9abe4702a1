"""Sending a ``StreamingResponse``: the head at once, then each chunk its generator makes, as
the client takes them. An async generator runs on the loop; a sync one a step at a time on
the worker threads, which it holds only while it makes a chunk. When the client is behind,
the next step waits; when it goes away (or the server shuts down), an async generator gets
``CancelledError`` where it waits and a sync one is closed after its current step, so its
``finally`` blocks run either way."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Union

from robyn._workers import Workers

if TYPE_CHECKING:
    from robyn._native import Exchange

_log = logging.getLogger("robyn.http")

# What a server-sent events response says besides its type, as Robyn sends it: nothing may
# keep or delay it on the way (nginx buffers unless told not to).
EVENT_STREAM_HEADERS = (
    ("cache-control", "no-cache, no-store, must-revalidate"),
    ("pragma", "no-cache"),
    ("expires", "0"),
    ("x-accel-buffering", "no"),
)

_DONE: Any = object()

Chunks = Union[Iterator[Any], AsyncIterator[Any]]


class Streamed:
    """A body produced while it is sent: the chunks' source, and whether it is a
    text/event-stream (kept alive by comments while idle)."""

    __slots__ = ("content", "events")

    def __init__(self, content: Any, events: bool) -> None:
        self.content = content
        self.events = events


def as_bytes(chunk: Any) -> bytes | str:
    if isinstance(chunk, (str, bytes)):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a streamed response's generator yielded {type(chunk).__name__}: yield str or bytes")


class Streamer:
    """Starts the stream of each streamed answer, on the loop thread."""

    def __init__(self, workers: Workers, failed: Any) -> None:
        self._workers = workers
        # `failed(what, subject, error)`: the pipeline's report of a failure.
        self._failed = failed
        self._loop: asyncio.AbstractEventLoop | None = None
        # The streams being sent, for shutdown to wait for (their generators closed).
        self.tasks: set[asyncio.Task[None]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def start(self, exchange: Exchange, status: int, headers: list[tuple[str, str]], body: Streamed) -> None:
        """From any thread."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the streamer is not bound to the event loop")
        loop.call_soon_threadsafe(self._start_on_loop, exchange, status, headers, body)

    def _start_on_loop(self, exchange: Exchange, status: int, headers: list[tuple[str, str]], body: Streamed) -> None:
        task = asyncio.ensure_future(self._pump(exchange, status, headers, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _pump(self, exchange: Exchange, status: int, headers: list[tuple[str, str]], body: Streamed) -> None:
        task = asyncio.current_task()
        content = body.content
        try:
            exchange.start(status, headers, body.events, task.cancel if task is not None else _nothing)
        except ConnectionResetError:
            await self._close(content, None)
            return
        step: asyncio.Future[Any] | None = None
        complete = False
        try:
            if hasattr(content, "__anext__") or hasattr(content, "__aiter__"):
                await self._from_async(exchange, content)
            else:
                content = iterator = iter(content)
                context = contextvars.copy_context()
                while True:
                    step = self._workers.call(self._loop_now(), context, functools.partial(next, iterator, _DONE))
                    # Shielded: cancelled meanwhile, the step still ends before the generator is closed.
                    chunk = await asyncio.shield(step)
                    if chunk is _DONE:
                        break
                    await _send(exchange, chunk)
            complete = True
        except (ConnectionResetError, asyncio.CancelledError):
            complete = True  # the client went away, or shutdown: nobody to tell
        except Exception as error:
            self._failed("the stream", f"{exchange.method} {exchange.path}", error)
        finally:
            exchange.finish(complete)
            await self._close(content, step)

    async def _from_async(self, exchange: Exchange, content: Any) -> None:
        iterator = content.__aiter__() if not hasattr(content, "__anext__") else content
        async for chunk in iterator:
            await _send(exchange, chunk)

    async def _close(self, content: Any, step: asyncio.Future[Any] | None) -> None:
        """Closes the generator (its ``finally`` runs): an async one here, a sync one on a worker
        once its current step is over (waited for: shutdown waits for this task before it stops
        the workers)."""
        aclose = getattr(content, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception as error:
                self._failed("closing the stream's generator", repr(content), error)
            return
        close = getattr(content, "close", None)
        if close is None:
            return
        try:
            if step is not None and not step.done():
                await asyncio.wait([step])
            await self._workers.call(self._loop_now(), contextvars.copy_context(), close)
        except Exception as error:
            self._failed("closing the stream's generator", repr(content), error)

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the streamer is not bound to the event loop")
        return loop


async def _send(exchange: Exchange, chunk: Any) -> None:
    waiting = exchange.send(as_bytes(chunk))
    if waiting is not None:
        await waiting


def _nothing() -> None:
    pass
