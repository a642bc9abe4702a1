"""The threads that run sync handlers and sync middlewares, so that they never block the event
loop. Lighter than ``concurrent.futures``: a job is a function and its arguments on one queue,
and no future is made unless an async caller waits for the result."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("robyn.http")

Job = tuple[Callable[..., Any], tuple[Any, ...]]


class Workers:
    """A fixed number of threads, started on first use."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False

    def resize(self, size: int) -> None:
        """Before the first job only: the threads are made then."""
        self._size = max(1, size)

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Runs ``function(*args)`` on a worker; what it returns is dropped, what it raises is
        logged."""
        if not self._threads:
            if self._stopped:
                raise RuntimeError("the sync worker threads have stopped (the server is shutting down)")
            self._start()
        self._jobs.put((function, args))

    def call(
        self, loop: asyncio.AbstractEventLoop, context: contextvars.Context, function: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        """Runs ``function(*args)`` in ``context`` on a worker; the future (of ``loop``) gets
        its result or exception."""
        future = loop.create_future()
        # Queued from the loop's next turn: the task awaiting the future may itself be running
        # in `context` right now, and a context is entered by one thread at a time.
        loop.call_soon(self.submit, _settle, loop, future, context, function, args)
        return future

    def stop(self) -> None:
        """Lets each thread end after the job it is on (a handler stuck forever keeps its
        thread: they are daemons)."""
        with self._lock:
            self._stopped = True
            for _ in self._threads:
                self._jobs.put(None)
            self._threads = []

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name=f"robyn-sync-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return
            function, args = job
            try:
                function(*args)
            except BaseException:
                _log.exception("a job of the sync worker threads failed")
            del job, function, args


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    context: contextvars.Context,
    function: Callable[..., Any],
    args: tuple[Any, ...],
) -> None:
    try:
        result = context.run(function, *args)
    except BaseException as error:
        _call_soon(loop, _fail, future, error)
    else:
        _call_soon(loop, _succeed, future, result)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop closed meanwhile (shutdown): nobody waits any more
        pass


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(error, StopIteration):  # a future refuses it (it would end the awaiting coroutine)
        wrapped = RuntimeError(f"StopIteration raised: {error!r}")
        wrapped.__cause__ = error
        error = wrapped
    future.set_exception(error)
