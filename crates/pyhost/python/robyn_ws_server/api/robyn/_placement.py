"""Where this process stands among the server's processes (``app.worker``), and the startup
handlers that run in one of them only (``@app.startup_handler(once="host")``): both
robyn-ws-server only, not in Robyn 0.88.0.

A ``once`` handler is the task itself: it starts when this process is chosen (it holds the
lease: a lock the host's processes share for ``"host"``, a key with an expiry in the broker's
Redis for ``"cluster"``), runs as long as it likes, and is cancelled if the lease is lost or
the server shuts down. When the process holding it dies, another one is chosen and starts it
again: at once on one host, within the lease's expiry across hosts."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass
from typing import Literal

from robyn._endpoint import Callback

Once = Literal["host", "cluster"]
SCOPES: tuple[Once, ...] = ("host", "cluster")

_log = logging.getLogger("robyn.server")


@dataclass(frozen=True)
class Worker:
    """This process among the server's (robyn-ws-server only): ``index`` from 0 to
    ``count - 1`` among the ``--processes`` of this host, and ``node``, its id among every
    process of the cluster (the broker's, unique per process and start)."""

    index: int = 0
    count: int = 1
    node: str = ""


def task_name(handler: Callback) -> str:
    """What names a once handler to the other processes (the same app gives the same name)."""
    return f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"


class OnceTasks:
    """The app's once handlers, each started and cancelled as this process gains and loses
    its lease."""

    def __init__(self, handlers: list[tuple[Callback, Once]]) -> None:
        self.handlers = handlers
        self.running: dict[int, asyncio.Task[None]] = {}

    def specs(self) -> list[tuple[str, str]]:
        """(name, scope) of each handler, in the order the server's lease events count them."""
        return [(task_name(handler), scope) for handler, scope in self.handlers]

    def changed(self, loop: asyncio.AbstractEventLoop, index: int, held: bool) -> None:
        task = self.running.pop(index, None)
        if task is not None:
            task.cancel()
        handler, scope = self.handlers[index]
        if held:
            _log.info("running %s here (once per %s)", task_name(handler), scope)
            self.running[index] = loop.create_task(self._run(handler, scope))
        elif task is not None:
            _log.info(
                "%s (once per %s) stopped here: its lease went to another process, or this one is stopping",
                task_name(handler),
                scope,
            )

    async def _run(self, handler: Callback, scope: Once) -> None:
        try:
            result = handler()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("the once-per-%s startup handler %s failed", scope, task_name(handler))

    async def stop(self) -> None:
        tasks = list(self.running.values())
        self.running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
