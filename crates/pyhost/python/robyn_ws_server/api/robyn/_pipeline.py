"""Running each HTTP request the server hands over: on a worker thread when every step of its
route is sync, else as a task on the loop; then answering the exchange once. A step that
raises is logged (a failure repeated for every request is counted, not shown each time) and
the client gets Robyn's 500; a feature this server does not serve yet gets 501."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from robyn._chain import INTERNAL_ERROR, Chain, StepError
from robyn._headers import Headers
from robyn._request import Request
from robyn._returns import Wire, plain
from robyn._streaming import Streamed, Streamer
from robyn._tracebacks import RepeatedFailures
from robyn._workers import Workers
from robyn.session import SessionManager

if TYPE_CHECKING:
    from robyn._native import Exchange

_log = logging.getLogger("robyn.http")


class Pipeline:
    """``on_http`` is the server's hook: called on the loop thread, it never blocks."""

    def __init__(
        self,
        chains: list[Chain],
        not_found: Chain,
        workers: Workers,
        request_headers: Headers | None,
        sessions: SessionManager | None,
    ) -> None:
        self._chains = chains
        self._not_found = not_found
        self._workers = workers
        self._request_headers = request_headers
        self._sessions = sessions
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failures = RepeatedFailures(_log, subject="request")
        # A strong reference to each running task (the loop keeps only weak ones).
        self.tasks: set[asyncio.Task[None]] = set()
        self._forget = self.tasks.discard
        self.streamer = Streamer(workers, self.failed)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.streamer.bind(loop)
        for chain in (*self._chains, self._not_found):
            chain.bind(loop, self)

    def on_http(self, route: int, exchange: Exchange) -> None:
        """A request for route number ``route`` (``-1``: none matched)."""
        try:
            chain = self._chains[route] if route >= 0 else self._not_found
            context = contextvars.copy_context()
            if chain.all_sync:
                self._workers.submit(self._serve_sync, chain, exchange, context)
            else:
                self._start(self.serve_async(chain, exchange, context), context)
        except Exception:
            _log.exception("could not start the request for route %d", route)
            self._respond(exchange, plain(500, INTERNAL_ERROR))

    def _start(self, coroutine: Coroutine[Any, Any, None], context: contextvars.Context) -> None:
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise RuntimeError("the pipeline is not bound to the event loop")
        task = _task(loop, coroutine, context)
        if not task.done():
            self.tasks.add(task)
            task.add_done_callback(self._forget)

    def _request(self, exchange: Exchange) -> Request:
        return Request.from_exchange(exchange, self._request_headers, self._sessions)

    def _serve_sync(self, chain: Chain, exchange: Exchange, context: contextvars.Context) -> None:
        """On a worker thread."""
        try:
            wire = context.run(chain.run_sync, self._request(exchange))
        except BaseException as error:
            wire = self._failed(chain, exchange, error)
        self._respond(exchange, wire)

    async def serve_async(self, chain: Chain, exchange: Exchange, context: contextvars.Context) -> None:
        try:
            wire = await chain.run_async(self._request(exchange), context)
        except asyncio.CancelledError:
            raise  # the server is stopping: the dropped exchange is answered 500
        except BaseException as error:
            wire = self._failed(chain, exchange, error)
        self._respond(exchange, wire)

    def _respond(self, exchange: Exchange, wire: Wire) -> None:
        """From any thread."""
        status, headers, body = wire
        try:
            if isinstance(body, Streamed):
                self.streamer.start(exchange, status, headers, body)
            else:
                exchange.respond(status, headers, body)
        except Exception:
            _log.exception("could not answer %s %s", exchange.method, exchange.path)

    def _failed(self, chain: Chain, exchange: Exchange, error: BaseException) -> Wire:
        """The answer for a chain that raised, once that is logged."""
        what = f"{error.step} of {chain.name}" if isinstance(error, StepError) else f"serving {chain.name}"
        cause = error.__cause__ if isinstance(error, StepError) and error.__cause__ is not None else error
        self.failed(what, f"{exchange.method} {exchange.path}", cause)
        return plain(500, INTERNAL_ERROR)

    # -- Reporting (from any thread; logged on the loop thread, where the counts live) -----

    def failed(self, what: str, subject: str, error: BaseException) -> None:
        self._on_loop(self.failures.failed, what, subject, error)

    def _on_loop(self, log: Callable[..., None], *args: Any) -> None:
        """Calls ``log(*args)`` on the loop thread."""
        loop = self._loop
        if loop is not None and _running_in(loop):
            log(*args)
            return
        try:
            if loop is None:
                raise RuntimeError("not running")
            loop.call_soon_threadsafe(log, *args)
        except RuntimeError:  # the loop is gone (shutdown): said plainly instead
            _log.error("%s", " ".join(str(arg) for arg in args[:-1]), exc_info=args[-1])


def _running_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _task(
    loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None], context: contextvars.Context
) -> asyncio.Task[None]:
    """A task running in ``context`` itself, so the chain's sync steps (run in ``context`` on
    the workers) and its async ones share every ``ContextVar`` (Python 3.11+; before that the
    task runs in a copy, which the chain keeps up to date). From 3.12 its first step runs at
    once: a handler that never waits answers without a turn of the loop."""
    if sys.version_info >= (3, 12):
        return asyncio.Task(coroutine, loop=loop, context=context, eager_start=True)
    if sys.version_info >= (3, 11):
        return loop.create_task(coroutine, context=context)
    task: asyncio.Task[None] = context.run(loop.create_task, coroutine)
    return task
