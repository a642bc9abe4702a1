"""The asyncio side of the server: one event loop, on one thread, runs every connection's
task. With the network side on threads of its own, the server's Rust side wakes the loop
through a file descriptor only when a batch of events is waiting, and ``Dispatcher.drain``
hands the whole batch out in one call. With the network side on the loop thread, the loop's
selector runs it (``Driver.run``) where asyncio would wait for I/O, and drains after each turn."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import selectors
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from robyn import _native
from robyn._app import Robyn
from robyn._chain import Chain
from robyn._endpoint import Callback, Endpoint
from robyn._endpoint import failures as endpoint_failures
from robyn._http_service import HttpService, authentication_handler
from robyn._openapi_docs import serve as serve_openapi
from robyn._pipeline import Pipeline
from robyn._placement import OnceTasks, Worker
from robyn._tracebacks import is_machinery, one_line, user_traceback
from robyn._websocket import HandshakeSettings, WebSocketDisconnect

if TYPE_CHECKING:
    from robyn._native import Connection, Dispatcher, Driver

_log = logging.getLogger("robyn.server")
# How long shutdown waits for the streamed responses' generators to be closed.
STREAM_CLOSE_TIMEOUT = 5.0


class Runtime:
    def __init__(self, app: Robyn) -> None:
        self.app = app
        # The server routes by index into this list; its order is fixed from here on.
        self.endpoints: list[Endpoint] = list(app.endpoints)
        for index, endpoint in enumerate(self.endpoints):
            endpoint.index = index
        self._tasks: set[asyncio.Task[None]] = set()
        # One bound method and one context for every task's done-callback, created here:
        # made per connection they would cost two objects for its whole life.
        self._forget_task = self._tasks.discard
        self._callback_context = contextvars.Context()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        serve_openapi(app)
        self.http = HttpService(app)
        self.once = OnceTasks(list(app.once_handlers))
        for endpoint in self.endpoints:
            endpoint.handshake = HandshakeSettings(
                self.http.sessions,
                authentication_handler(endpoint.owner),
                index=endpoint.index if endpoint.index is not None else -1,
                history=endpoint.history is not None,
            )

    def routes(self) -> list[tuple[str, list[str], bool, int, float | None]]:
        """What the server needs of each WebSocket route: its pattern, its subprotocols,
        whether its handshakes wait for ``on_connect``, and its history (how many broadcasts
        each room keeps, 0 for none; for how many seconds at most)."""
        return [
            (endpoint.path, endpoint.subprotocols, endpoint.decides, *(endpoint.history or (0, None)))
            for endpoint in self.endpoints
        ]

    # -- The HTTP side, as the server asks for it at start-up --------------------------------

    def http_routes(self) -> list[tuple[str, str, bool]]:
        """Each HTTP route: method, Robyn pattern (router prefixes included) and whether its
        first response is kept (``const=True``, on a route without middlewares). A request's
        route number indexes this list; of a method and pattern registered twice, the last
        counts."""
        return list(self.http.table)

    def static_mounts(self) -> list[tuple[str, str, str | None, bool]]:
        """Each ``serve_directory``: route, absolute folder, index file, whether to list."""
        return list(self.http.static_mounts)

    def global_response_headers(self) -> list[tuple[str, str]]:
        return list(self.http.response_headers)

    def response_header_exclusions(self) -> list[str]:
        return list(self.http.header_exclusions)

    def cors_origins(self) -> list[str]:
        """The origins ``ALLOW_CORS`` allows (``*``: any), which WebSocket handshakes are held to
        as well; empty without ``ALLOW_CORS``."""
        return list(self.http.cors_origins)

    def set_sync_workers(self, count: int) -> None:
        """How many threads run sync handlers (made when the first one is needed)."""
        self.http.workers.resize(count)

    def once_handlers(self) -> list[tuple[str, str]]:
        """(name, scope) of each ``startup_handler(once=...)``: the server holds a lease for
        each and says when this process has it (``_lease_changed``)."""
        return self.once.specs()

    def set_worker(self, index: int, count: int, node: str) -> None:
        """Where this process stands (``app.worker``), set before the startup handlers run."""
        self.app.worker = Worker(index, count, node)

    def _lease_changed(self, index: int, held: bool) -> None:
        self.once.changed(self._running_loop, index, held)

    def http_not_found_in_python(self) -> bool:
        """Whether requests no route matched come to Python (route -1): the app's global
        middlewares run around their 404, as in Robyn."""
        return self.http.not_found_in_python

    def run(
        self,
        dispatcher: Dispatcher,
        ready: Callable[[tuple[str, str] | None], None],
        driver: Driver | None = None,
    ) -> None:
        """Runs the startup handlers, reports through ``ready`` (``None``, or the traceback and
        a one-line summary of the failure), then serves until the server sends Stop. With a
        ``driver``, the loop's selector runs the network side."""
        selector = _WatchedSelector() if driver is None else _DrivenSelector(driver)
        loop = asyncio.SelectorEventLoop(selector)
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.http.pipeline.bind(loop)
        dispatcher.configure(
            loop,
            WebSocketDisconnect,
            self._open,
            self._stop,
            self._broker_reconnected,
            self.http.pipeline.on_http,
            self._lease_changed,
            self._presence_changed,
        )
        doorbell = dispatcher.fileno()
        if doorbell is not None:
            loop.add_reader(doorbell, dispatcher.drain)
        try:
            loop.run_until_complete(_run_all(self.app.startup_handlers))
        except BaseException as error:
            ready((user_traceback(error), f"a startup handler raised {one_line(error)}"))
            loop.close()
            return
        ready(None)
        try:
            loop.run_forever()
        finally:
            if doorbell is not None:
                loop.remove_reader(doorbell)
            loop.close()

    @property
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop `run` serves on; the dispatcher's callbacks only come once it does."""
        if self._loop is None:
            raise RuntimeError("the runtime is not running")
        return self._loop

    def _open(self, index: int, conn: Connection) -> None:
        task = self._running_loop.create_task(self.endpoints[index].serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._forget_task, context=self._callback_context)

    def _presence_changed(self, index: int, room: str | None, joined: list[str], left: list[str]) -> None:
        endpoint = self.endpoints[index]
        if endpoint.on_presence is not None:
            task = self._running_loop.create_task(endpoint.presence_changed(room, joined, left))
            self._tasks.add(task)
            task.add_done_callback(self._forget_task, context=self._callback_context)

    def _broker_reconnected(self, gap_seconds: float) -> None:
        if self.app.broker_reconnect_handlers:
            task = self._running_loop.create_task(self._resync(gap_seconds))
            self._tasks.add(task)
            task.add_done_callback(self._forget_task, context=self._callback_context)

    async def _resync(self, gap_seconds: float) -> None:
        # One failing handler does not keep the others from running: each is the app's own
        # way to catch up on what other hosts said during the gap.
        for handler in self.app.broker_reconnect_handlers:
            try:
                result = handler()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("an on_broker_reconnect handler failed (after a %.3f s gap)", gap_seconds)

    def _stop(self) -> None:
        self._running_loop.create_task(self._finish())

    async def _finish(self) -> None:
        # Reached when every connection has closed, or when the grace period ran out: the
        # tasks still running are cancelled, which their endpoint treats as a disconnect.
        await self.once.stop()
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            _log.warning("%d connection(s) did not finish within the grace period", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
        requests = list(self.http.pipeline.tasks)
        for task in requests:
            task.cancel()
        if requests:
            _log.warning("%d HTTP request(s) were still running at shutdown and were cancelled", len(requests))
            await asyncio.gather(*requests, return_exceptions=True)
        # The server ended every stream and told each to stop; a sync generator is closed
        # after the step it is in, on a worker: waited for (within reason) before they stop.
        streams = list(self.http.pipeline.streamer.tasks)
        if streams:
            _, stuck = await asyncio.wait(streams, timeout=STREAM_CLOSE_TIMEOUT)
            if stuck:
                _log.warning(
                    "%d streamed response(s) did not stop within %.0f s (a sync generator stuck in one step)",
                    len(stuck),
                    STREAM_CLOSE_TIMEOUT,
                )
        try:
            await _run_all(self.app.shutdown_handlers)
        except Exception:
            _log.exception("a shutdown handler failed")
        self.http.workers.stop()
        endpoint_failures.report_all()
        self.http.pipeline.failures.report_all()
        self._running_loop.stop()

    def report_blocked(self, seconds: float) -> None:
        """Called by the server's watchdog thread (holding the GIL) while one callback has kept
        the event loop busy for `seconds`: says where, from the loop thread's current stack."""
        frame = sys._current_frames().get(self._loop_thread)
        where = "code outside any handler"
        endpoint = None
        while frame is not None:
            if where.startswith("code outside") and not is_machinery(frame.f_code.co_filename):
                where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            if frame.f_code is Endpoint.serve.__code__:
                endpoint = _serving(frame)
            elif frame.f_code is Pipeline.serve_async.__code__:
                endpoint = _answering(frame)
            frame = frame.f_back
        _log.warning(
            "the event loop has been busy for %.2f s in one callback%s, at %s; every other connection waits "
            "until it returns: await instead of blocking (asyncio.sleep, asyncio.to_thread for blocking calls)",
            seconds,
            f" of {endpoint}" if endpoint else "",
            where,
        )


class _WatchedSelector(selectors.DefaultSelector):
    """Tells the server's watchdog when the loop waits for I/O and when it runs callbacks."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        _native.loop_waiting(True)
        try:
            return super().select(timeout)
        finally:
            _native.loop_waiting(False)


class _DrivenSelector(selectors.EpollSelector):
    """asyncio's selector when the network side runs on the loop thread: waiting for I/O runs
    it (with the GIL released) until there are events for Python, one of asyncio's own
    descriptors is ready, or the timeout passes. asyncio's descriptors are only looked at when
    the network side's reactor saw this selector become ready."""

    def __init__(self, driver: Driver) -> None:
        super().__init__()
        self._driver = driver
        # asyncio looked last time and found nothing ready.
        self._idle = False
        driver.watch(self.fileno())

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._driver.run(timeout, self._idle)
        events = super().select(0) if ready else []
        self._idle = ready and not events
        return events

    def close(self) -> None:
        self._driver.unwatch()
        super().close()


def _answering(frame: FrameType) -> str | None:
    """`GET /items/:id (request GET /items/7)` from a `Pipeline.serve_async` frame."""
    chain, exchange = frame.f_locals.get("chain"), frame.f_locals.get("exchange")
    if not isinstance(chain, Chain):
        return None
    return f"{chain.name} (request {getattr(exchange, 'method', '?')} {getattr(exchange, 'path', '?')})"


def _serving(frame: FrameType) -> str | None:
    """`/path (connection <id>)` from an `Endpoint.serve` frame."""
    endpoint, conn = frame.f_locals.get("self"), frame.f_locals.get("conn")
    if not isinstance(endpoint, Endpoint):
        return None
    return f"{endpoint.path} (connection {getattr(conn, 'id', '?')})"


async def _run_all(handlers: list[Callback]) -> None:
    for handler in handlers:
        result = handler()
        if inspect.isawaitable(result):
            await result


class _Formatter(logging.Formatter):
    def formatException(  # noqa: N802 (logging.Formatter's name)
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None],
    ) -> str:
        return user_traceback(ei[1]) if ei[1] is not None else super().formatException(ei)


class ForwardToServerLog(logging.Handler):
    """Sends Python log records to the server's own log, so both sides print one way."""

    def __init__(self, emit: Callable[[int, str, str], None]) -> None:
        super().__init__()
        self._emit = emit
        self.setFormatter(_Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit(record.levelno, record.name, self.format(record))
        except Exception:
            self.handleError(record)


def install_log_forwarding(emit: Callable[[int, str, str], None], level: int) -> None:
    root = logging.getLogger()
    root.handlers[:] = [ForwardToServerLog(emit)]
    root.setLevel(level)
