"""The threads that run sync handlers (robyn/_workers.py): started on first use, results and
exceptions handed to the loop, refused after stop."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from robyn._workers import Workers

_var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_call_runs_in_the_given_context_on_a_worker() -> None:
    workers = Workers(2)
    context = contextvars.copy_context()
    context.run(_var.set, "in the context")

    def job(suffix: str) -> tuple[str, str]:
        _var.set(_var.get() + suffix)
        return threading.current_thread().name, _var.get()

    name, value = await workers.call(asyncio.get_running_loop(), context, job, "!")
    assert name.startswith("robyn-sync-") and value == "in the context!"
    assert context[_var] == "in the context!"  # the write stayed in that context
    assert _var.get() == "unset"
    workers.stop()


async def test_an_exception_reaches_the_caller() -> None:
    workers = Workers(1)

    def fail() -> None:
        raise StopIteration  # which a future refuses as such

    with pytest.raises(RuntimeError, match="StopIteration"):
        await workers.call(asyncio.get_running_loop(), contextvars.copy_context(), fail)
    workers.stop()


def test_threads_are_made_at_the_first_job_and_refuse_jobs_after_stop() -> None:
    before = set(threading.enumerate())
    workers = Workers(3)
    workers.resize(2)
    assert set(threading.enumerate()) == before
    done = threading.Event()
    workers.submit(done.set)
    assert done.wait(5)
    assert len(set(threading.enumerate()) - before) == 2
    workers.stop()
    with pytest.raises(RuntimeError, match="shutting down"):
        workers.submit(done.set)
