"""One ``@app.websocket(path)`` route: its handler and callbacks, and the life of each
connection on it (parameters, ``on_connect``, handler, ``on_close``, the closing frame)."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from robyn._params import Dependencies, ParameterError, ParameterPlan
from robyn._response import Response
from robyn._streaming import Streamed
from robyn._tracebacks import RepeatedFailures
from robyn._websocket import HandshakeSettings, PresenceChange, WebSocket, WebSocketDisconnect, dumps_json

if TYPE_CHECKING:
    from robyn._native import Connection

_log = logging.getLogger("robyn.websocket")
# A handler failing for every client is logged in full a few times, then counted.
failures = RepeatedFailures(_log)

Callback = Callable[..., Any]
# A callback keeps its own type through the decorators that register it.
C = TypeVar("C", bound=Callback)

if TYPE_CHECKING:
    # Only for checkers: ParamSpec is in `typing` from 3.10 on, and checkers know
    # typing_extensions whether or not it is installed; at run time the handler is returned
    # as it is, with the two attributes below set on it.
    from typing_extensions import ParamSpec

    P = ParamSpec("P")
    R_co = TypeVar("R_co", covariant=True)

    class WebSocketRoute(Protocol[P, R_co]):
        """What ``@app.websocket(path)`` makes of a handler, for type checkers and editors:
        the function itself, called as it was declared, with Robyn's ``@handler.on_connect``
        and ``@handler.on_close`` decorators (and ``@handler.on_presence``), which keep the
        callbacks' own types."""

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

        def on_connect(self, function: C) -> C: ...

        def on_close(self, function: C) -> C: ...

        def on_presence(self, function: C) -> C: ...


# The arguments of a callback the route does not have: one shared dict, never passed on.
_UNUSED: dict[str, Any] = {}


class _Callback:
    """A user function with its parameter plan, read once when it is registered."""

    __slots__ = ("function", "plan")

    def __init__(self, function: Callback) -> None:
        if not callable(function):
            raise TypeError(f"expected a function, got {type(function).__name__}")
        self.function = function
        self.plan = ParameterPlan(function)

    def arguments(self, websocket: WebSocket, dependencies: Callable[[], Dependencies]) -> dict[str, Any]:
        """Resolves the parameters now (raising ``ParameterError``); kept for ``call``."""
        return self.plan.resolve(websocket, dependencies)

    def call(self, websocket: WebSocket, arguments: dict[str, Any]) -> Any:
        if self.plan.takes_websocket:
            return self.function(websocket, **arguments)
        return self.function(**arguments)


async def _invoke(callback: _Callback, websocket: WebSocket, arguments: dict[str, Any]) -> Any:
    """Runs a sync or async callback."""
    result = callback.call(websocket, arguments)
    if inspect.isawaitable(result):
        result = await result
    return result


def _as_message(value: Any) -> str | bytes | None:
    """What a callback's return value becomes on the wire: ``str`` as text, ``bytes`` as
    binary, ``None`` as nothing, anything else as JSON text."""
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return dumps_json(value)


class Endpoint:
    """A WebSocket route. ``serve`` runs once per connection, as its own asyncio task."""

    def __init__(
        self,
        path: str,
        handler: Callback,
        dependencies: Callable[[], Dependencies],
        subprotocols: list[str] | None = None,
        owner: Any = None,
        history: tuple[int, float | None] | None = None,
    ) -> None:
        self.path = path
        # How many broadcasts each room keeps, and for how many seconds at most.
        self.history = history
        # The router that registered it, whose authentication handler it uses.
        self.owner = owner
        self.handshake = HandshakeSettings()
        self.handler = _Callback(handler)
        self.on_connect: _Callback | None = None
        self.on_close: _Callback | None = None
        # `on_presence(change)`: a plain function, called with a PresenceChange.
        self.on_presence: Callback | None = None
        self.subprotocols = subprotocols or []
        # Its place in the server's list of routes, once the server runs.
        self.index: int | None = None
        self._dependencies = dependencies
        self._warned_return = False
        if not inspect.iscoroutinefunction(handler) and callable(handler):
            _log.warning(
                "the handler of %s (%s) is not async: it runs once, without waiting for messages, and what it "
                "returns is not sent; write `async def %s(websocket): ...` and send with "
                "`await websocket.send_text(...)`",
                path,
                _where(handler),
                getattr(handler, "__name__", "handler"),
            )

    @property
    def decides(self) -> bool:
        """Whether the handshake waits for ``on_connect`` (which may refuse it)."""
        return self.on_connect is not None

    def attach(self, handler: Callable[P, R_co]) -> WebSocketRoute[P, R_co]:
        """Gives the handler Robyn's ``@handler.on_connect`` and ``@handler.on_close``."""

        def on_connect(function: C) -> C:
            self.on_connect = _Callback(function)
            return function

        def on_close(function: C) -> C:
            self.on_close = _Callback(function)
            return function

        def on_presence(function: C) -> C:
            if not callable(function):
                raise TypeError(f"on_presence takes a function, got {type(function).__name__}")
            self.on_presence = function
            return function

        handler.on_connect = on_connect  # type: ignore[attr-defined]
        handler.on_close = on_close  # type: ignore[attr-defined]
        handler.on_presence = on_presence  # type: ignore[attr-defined]
        return cast("WebSocketRoute[P, R_co]", handler)

    def with_prefix(self, prefix: str) -> Endpoint:
        """The same route mounted under a router prefix."""
        copy = Endpoint.__new__(Endpoint)
        copy.__dict__.update(self.__dict__)
        copy.path = prefix.rstrip("/") + self.path
        return copy

    async def serve(self, conn: Connection) -> None:
        # Everything this frame holds lives as long as the connection: per-connection objects
        # are kept to the few the handler needs (the idle-memory figure in the benchmark).
        websocket = WebSocket(conn, settings=self.handshake)
        on_connect, on_close = self.on_connect, self.on_close
        try:
            handler_arguments = self.handler.arguments(websocket, self._dependencies)
            connect_arguments = on_connect.arguments(websocket, self._dependencies) if on_connect else _UNUSED
            close_arguments = on_close.arguments(websocket, self._dependencies) if on_close else _UNUSED
        except ParameterError as error:
            _log.info("rejected connection %s on %s: %s", conn.id, self.path, error)
            conn.reject(f"Error: {error}")
            return

        failed = False
        phase = "on_connect"
        try:
            if on_connect is not None:
                # Before the handshake is answered: a Response refuses it.
                outcome = await _invoke(on_connect, websocket, connect_arguments)
                if isinstance(outcome, Response):
                    headers = outcome.headers.multi_items()
                    headers.extend(("set-cookie", value) for value in outcome.cookies.header_values())
                    body = outcome.description
                    if isinstance(body, Streamed):
                        raise TypeError(
                            "on_connect refused the handshake with a streamed response: refuse with a whole one"
                        )
                    conn.refuse(outcome.status_code, headers, body)
                    return
                greeting = _as_message(outcome)
                if greeting is not None:
                    blocked = conn.send(greeting)
                    if blocked is not None:
                        await blocked
                conn.accept()
            # Only now may broadcasts reach this client: nothing overtakes the greeting.
            conn.join()
            phase = "handler"
            # Not `_invoke`: its coroutine would stay alive as long as the connection.
            result = self.handler.call(websocket, handler_arguments)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                self._returned(result)
        except (WebSocketDisconnect, asyncio.CancelledError):
            pass
        except Exception as error:
            failed = True
            failures.failed(f"{phase} on {self.path}", conn.id, error)

        farewell = None
        if on_close is not None:
            try:
                farewell = _as_message(await _invoke(on_close, websocket, close_arguments))
            except (WebSocketDisconnect, asyncio.CancelledError):
                pass
            except Exception as error:
                failed = True
                failures.failed(f"on_close on {self.path}", conn.id, error)
        conn.finish(failed, farewell)

    async def presence_changed(self, room: str | None, joined: list[str], left: list[str]) -> None:
        """Runs ``on_presence`` (sync or async) with one change; a failure is logged."""
        callback = self.on_presence
        if callback is None:
            return
        try:
            result = callback(PresenceChange(room, joined, left))
            if inspect.isawaitable(result):
                await result
        except Exception as error:
            failures.failed(f"on_presence on {self.path}", room or "(the endpoint)", error)

    def _returned(self, result: Any) -> None:
        """A handler's return value goes nowhere: say so, once per route."""
        if not self._warned_return:
            self._warned_return = True
            _log.warning(
                "the handler of %s (%s) returned %.60r, which is not sent: a handler sends with "
                "`await websocket.send_text(...)` (only on_connect's and on_close's return values are sent)",
                self.path,
                _where(self.handler.function),
                result,
            )


def _where(function: Callback) -> str:
    """`app.py:12` for a function, as far as it can be told."""
    code = getattr(function, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(function)
