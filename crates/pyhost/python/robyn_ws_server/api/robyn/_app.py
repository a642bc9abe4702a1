"""``Robyn`` and ``SubRouter``: the app object users decorate, with WebSocket routes (here)
and HTTP routes (``robyn._http_routing``), dependency injection and lifecycle handlers."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, overload

from robyn import _history
from robyn._endpoint import C, Callback, Endpoint
from robyn._http_route import normalize
from robyn._http_routing import HttpRouting
from robyn._params import Dependencies
from robyn._placement import SCOPES, Once, Worker
from robyn.openapi import OpenAPI

if TYPE_CHECKING:
    from robyn._endpoint import P, R_co, WebSocketRoute

# Every app object created during the import, so the server can find one that is not a
# module-level name (built by a factory, say).
created: list[Robyn] = []
# What `app.start()` does while the server runs the app's module: serve that app (set by the
# loader).
on_start: Callable[[Robyn], None] | None = None
# The app whose `start()` runs the server in this very process (a plain `python app.py`): the
# loader serves it as it is instead of running the app's module a second time.
started_here: Robyn | None = None

# `inject_global` on any app or router fills this one dict, as in Robyn: a SubRouter's global
# dependencies are everyone's, and the last value injected for a name wins.
_GLOBAL_DEPENDENCIES: dict[str, Any] = {}


# Most broadcasts a route's history may keep per room (each at most --max-broadcast-size).
MOST_KEPT = 100_000


def _history_of(history: int, history_ttl: float | None) -> tuple[int, float | None] | None:
    """``history=N, history_ttl=S`` of ``@app.websocket``, checked."""
    if not isinstance(history, int) or isinstance(history, bool) or not 0 <= history <= MOST_KEPT:
        raise ValueError(f"history is how many broadcasts each room keeps, 0 to {MOST_KEPT}, got {history!r}")
    if history_ttl is not None:
        if isinstance(history_ttl, bool) or not isinstance(history_ttl, (int, float)) or not history_ttl > 0:
            raise ValueError(f"history_ttl is seconds (more than 0), got {history_ttl!r}")
        if history == 0:
            raise ValueError("history_ttl needs a history: give history=N too")
    return (history, None if history_ttl is None else float(history_ttl)) if history else None


class BaseRobyn(HttpRouting):
    def __init__(self, file_object: str = "", *_args: Any, dependencies: Any = None, **_kwargs: Any) -> None:
        self.file_path = file_object
        self.directory_path = os.path.dirname(os.path.abspath(file_object)) if file_object else os.getcwd()
        self.endpoints: list[Endpoint] = []
        self.global_dependencies = _GLOBAL_DEPENDENCIES
        self.router_dependencies: dict[str, Any] = {}
        self._init_http()
        self.startup_handlers: list[Callback] = []
        self.once_handlers: list[tuple[Callback, Once]] = []
        # Set by the server before the startup handlers run.
        self.worker = Worker()
        self.shutdown_handlers: list[Callback] = []
        self.broker_reconnect_handlers: list[Callback] = []

    # -- WebSocket routes ---------------------------------------------------------------

    def websocket(
        self,
        endpoint: str,
        subprotocols: Iterable[str] = (),
        history: int = 0,
        history_ttl: float | None = None,
    ) -> Callable[[Callable[P, R_co]], WebSocketRoute[P, R_co]]:
        """Registers an async handler for WebSocket connections on ``endpoint``: an exact path
        (``/chat``), with ``:name`` parameters (``/user/:id``) or a last ``*name`` segment
        (``/files/*rest``). ``subprotocols``: the ones it speaks, in order; the first of the
        client's offers that it lists is chosen.

        ``history``: each room of the route (and the route as a whole) keeps its last this many
        broadcasts, each with an offset, ``history_ttl`` seconds at most, for clients that
        reconnect to catch up (``websocket.recover``, ``websocket.missed``).

        The function returned is the handler itself, with ``.on_connect``, ``.on_close`` and
        ``.on_presence`` decorators. ``subprotocols``, ``history``, ``.on_presence``, and an
        ``on_connect`` that refuses the handshake by returning a ``Response``, are
        robyn-ws-server only; not in Robyn 0.88.0."""
        if not isinstance(endpoint, str) or not endpoint.startswith("/"):
            raise ValueError(f"WebSocket path must be a string starting with '/', got {endpoint!r}")
        if isinstance(subprotocols, str):
            raise TypeError(f"subprotocols is a list of names, got the string {subprotocols!r}")
        spoken = list(subprotocols)
        kept = _history_of(history, history_ttl)

        def decorator(handler: Callable[P, R_co]) -> WebSocketRoute[P, R_co]:
            route = Endpoint(self._prefixed(endpoint), handler, self._dependencies, spoken, owner=self, history=kept)
            self.endpoints.append(route)
            return route.attach(handler)

        return decorator

    # -- Dependency injection -------------------------------------------------------------

    def inject(self, **dependencies: Any) -> None:
        self.router_dependencies.update(dependencies)

    def inject_global(self, **dependencies: Any) -> None:
        self.global_dependencies.update(dependencies)

    def _dependencies(self) -> Dependencies:
        return {"global_dependencies": self.global_dependencies, "router_dependencies": self.router_dependencies}

    # -- Lifecycle ------------------------------------------------------------------------

    @overload
    def startup_handler(self, handler: C, *, once: Once | None = None) -> C: ...
    @overload
    def startup_handler(self, handler: None = None, *, once: Once | None = None) -> Callable[[C], C]: ...
    def startup_handler(self, handler: C | None = None, *, once: Once | None = None) -> C | Callable[[C], C]:
        """Runs before the first connection is accepted (sync or async).

        ``once="host"`` or ``once="cluster"`` (robyn-ws-server only): the handler is a
        background task run by one process of this host (of ``--processes``), or one process
        of every server on the ``--broker`` (without one, the host is the cluster). It starts
        once the server serves, runs as long as it likes, and is cancelled at shutdown (or if
        this process loses its lease); when the process running it dies, another starts it.
        ``app.worker`` says which process this is. ``once`` and ``app.worker``: robyn-ws-server
        only; not in Robyn 0.88.0."""
        if handler is None:
            return lambda handler: self.startup_handler(handler, once=once)
        if once is None:
            self.startup_handlers.append(handler)
        elif once in SCOPES:
            self.once_handlers.append((handler, once))
        else:
            raise ValueError(f"startup_handler(once=...) takes 'host' or 'cluster', not {once!r}")
        return handler

    def shutdown_handler(self, handler: C) -> C:
        """Runs after the last connection has closed (sync or async)."""
        self.shutdown_handlers.append(handler)
        return handler

    def on_broker_reconnect(self, handler: C) -> C:
        """Runs (sync or async) each time this server hears the broker again after losing it
        (``--broker``): broadcasts other hosts made meanwhile did not reach its clients, so
        this is where an app re-sends what they must not miss. robyn-ws-server only; not in Robyn 0.88.0."""
        self.broker_reconnect_handlers.append(handler)
        return handler

    # -- Routers --------------------------------------------------------------------------

    def include_router(self, router: SubRouter) -> None:
        """Serves a SubRouter's routes under this app's (or router's) own prefix, with its
        router dependencies layered over this one's (global ones are shared by all). Routers
        nest: prefixes add up. Its HTTP routes and middlewares are read when the server
        starts, so what is registered on it later counts too; its global middlewares apply to
        every route of the app, as in Robyn."""
        self._include_http(router)
        for route in router.endpoints:
            self.endpoints.append(route.with_prefix(self._prefixed("")))
        self.startup_handlers.extend(router.startup_handlers)
        self.once_handlers.extend(router.once_handlers)
        self.shutdown_handlers.extend(router.shutdown_handlers)
        self.broker_reconnect_handlers.extend(router.broker_reconnect_handlers)
        router.parent = self

    # -- Reaching connections from anywhere in the app (a router's: through its app) -------

    async def send_to(self, connection_id: str, data: str | bytes) -> bool:
        """Send to one open connection by its id: True when queued, False when no such
        connection is open. What becomes of the recipient never raises here.
        robyn-ws-server only; not in Robyn 0.88.0."""
        from robyn import _native  # only inside the running server

        return _native.send_to(connection_id, data)

    async def send_to_user(self, user: str, data: str | bytes) -> int:
        """Send to every open connection of ``user`` (``websocket.identify``), on any
        endpoint, process or host; returns how many connections it went to.
        robyn-ws-server only; not in Robyn 0.88.0."""
        from robyn import _native  # only inside the running server

        return _native.send_to_user(user, data)

    async def presence(self, path: str, room: str | None = None) -> dict[str, int]:
        """The users present on the WebSocket route ``path`` (or in one of its rooms), across
        every process and host, with their open connections; a user whose last connection
        closed less than ``--presence-grace`` seconds ago is listed with 0.
        robyn-ws-server only; not in Robyn 0.88.0."""
        from robyn import _native  # only inside the running server

        return dict(_native.presence(self._endpoint_index(path), room))

    async def broadcast(
        self, path: str, data: str | bytes | Callable[[int], str | bytes], room: str | None = None
    ) -> int | None:
        """Send to every client of the WebSocket route ``path`` (as registered, e.g.
        ``/user/:id``), or with ``room`` to that room's members. On a route with a history it
        returns the broadcast's offset, and ``data`` may be a function called once with the
        offset that returns the message (see ``websocket.broadcast``); else ``None``.
        robyn-ws-server only; not in Robyn 0.88.0."""
        from robyn import _native  # only inside the running server

        index = self._endpoint_index(path)
        if _native.keeps_history(index):
            return await _history.broadcast(index, data, room, None)
        _native.broadcast(index, data, room)  # type: ignore[arg-type]  # a function: refused there, saying why
        return None

    async def missed(self, path: str, room: str | None = None, *, since: int, epoch: str) -> list[str | bytes]:
        """What was broadcast on the route ``path`` (or in ``room``) after offset ``since`` of
        ``epoch``, in order; raises ``HistoryGap`` when that cannot be told (see
        ``websocket.missed``). robyn-ws-server only; not in Robyn 0.88.0."""
        return await _history.missed(self._endpoint_index(path), room, since, epoch)

    async def position(self, path: str, room: str | None = None) -> _history.HistoryPosition:
        """Where the history of the route ``path`` (or of ``room``) stands: its epoch and
        last offset. robyn-ws-server only; not in Robyn 0.88.0."""
        return await _history.position(self._endpoint_index(path), room)

    def connections(self, path: str) -> list[str]:
        """The ids of the open connections of the WebSocket route ``path``.
        robyn-ws-server only; not in Robyn 0.88.0."""
        from robyn import _native  # only inside the running server

        return _native.connections(self._endpoint_index(path))

    def _endpoint_index(self, path: str) -> int:
        # A router's routes are served by the app it was included in, under its prefixes.
        owner: BaseRobyn = self
        while (parent := getattr(owner, "parent", None)) is not None:
            path, owner = owner._prefixed(path), parent
        for route in reversed(owner.endpoints):
            if route.path == path and route.index is not None:
                return route.index
        served = ", ".join(route.path for route in owner.endpoints) or "none"
        raise ValueError(f"no WebSocket route {path!r} (the app's are: {served}); name a route as it was registered")

    # -- Paths ----------------------------------------------------------------------------

    def _prefixed(self, endpoint: str) -> str:
        return endpoint


class Robyn(BaseRobyn):
    """The app. ``openapi``: the document's metadata (``OpenAPI(info=OpenAPIInfo(...))``);
    ``openapi_file_path``: a JSON file served at ``/openapi.json`` instead of the document built
    from the routes (relative to the app's file; an ``openapi.json`` beside it counts too, as in
    Robyn)."""

    def __init__(
        self,
        file_object: str = "",
        config: Any = None,
        openapi_file_path: str | None = None,
        openapi: OpenAPI | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(file_object, *args, **kwargs)
        self.start_host: str | None = None
        self.start_port: int | None = None
        self.config = config
        self.openapi = openapi
        self.init_openapi(openapi_file_path)
        created.append(self)

    def init_openapi(self, openapi_file_path: str | None = None) -> None:
        """Robyn's: sets up ``app.openapi`` (none when ``config.disable_openapi``)."""
        if getattr(self.config, "disable_openapi", False):
            self.openapi = None
            return
        if self.openapi is None:
            self.openapi = OpenAPI()
        beside = os.path.join(self.directory_path, "openapi.json")
        if openapi_file_path:
            self.openapi.override_openapi(os.path.join(self.directory_path, openapi_file_path))
        elif os.path.isfile(beside):
            self.openapi.override_openapi(beside)

    def start(self, host: str | None = None, port: int | None = None, *args: Any, **kwargs: Any) -> None:
        """Serves the app, as in Robyn, and returns after shutdown (SIGINT or SIGTERM). Where to
        listen comes from here unless the server's ``--host``/``--port`` (or
        ``ROBYN_HOST``/``ROBYN_PORT``) say.

        Run by the server (``robyn-ws-server --app app.py``), this hands the app over to it. In
        a plain ``python app.py`` (the ``robyn_ws_server`` package installed, Robyn not), it
        runs the server in this process on this app, as ``robyn-ws-server --app app.py``
        would, without running the module again; a start-up failure exits with the server's
        status after its ``error:`` line."""
        if host is not None:
            self.start_host = str(host)
        if port is not None:
            self.start_port = int(port)
        if on_start is not None:
            on_start(self)
        elif "robyn._native" not in sys.modules:  # no server in this process: be one
            _serve_here(self)


def _serve_here(app: Robyn) -> None:
    """``app.start()`` in a plain ``python app.py``: the server runs in this process, with the
    module already run (its side effects happen once) and this app object served as it is."""
    global started_here
    try:
        # By name: a type checker pointed at this package's folder alone (as the README says)
        # does not see robyn_ws_server beside it, and must not report this line in the app's run.
        robyn_ws_server = importlib.import_module("robyn_ws_server")
    except ImportError:
        raise RuntimeError(
            "app.start() outside the server needs the robyn_ws_server package (pip install it), "
            "or run the app with robyn-ws-server --app app.py"
        ) from None
    # Named for `--processes`' workers, which run the module afresh; this process does not.
    flags = ["--app", _main_target()]
    argv, handlers = list(sys.argv), _signal_handlers()
    started_here = app
    try:
        status = int(robyn_ws_server.serve(flags))
    finally:
        started_here = None
        # The server set sys.argv to its own name, and keeps its signal handlers registered
        # after it returns: the code after `app.start()` gets the script's back.
        sys.argv = argv
        _restore_signal_handlers(handlers)
    if status != 0:
        raise SystemExit(status)


def _main_target() -> str:
    """``--app`` for the running ``__main__``: its module name under ``python -m pkg.app``,
    else its file's path."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) else "__main__"


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _signal_handlers() -> list[Any]:
    return [signal.getsignal(number) for number in _STOP_SIGNALS]


def _restore_signal_handlers(handlers: list[Any]) -> None:
    for number, handler in zip(_STOP_SIGNALS, handlers):
        if handler is not None:  # None: set outside Python, nothing to put back
            try:
                signal.signal(number, handler)
            except ValueError:  # not the main thread: its handlers are not this thread's to set
                return


class SubRouter(BaseRobyn):
    """A group of routes under a path prefix, mounted with ``include_router``:
    ``SubRouter(prefix="/users")`` or ``SubRouter("/users")`` (Robyn's older
    ``SubRouter(__file__, prefix=...)`` works too)."""

    def __init__(self, *args: Any, prefix: str = "", tags: list[str] | None = None, **kwargs: Any) -> None:
        file_object = kwargs.pop("file_object", None) or ""
        if args:
            if prefix:  # SubRouter(__name__, prefix="/x")
                file_object = args[0]
            elif len(args) >= 2:  # SubRouter(__file__, "/x")
                file_object, prefix = args[0], args[1]
            elif _names_a_module(args[0]):  # SubRouter(__name__)
                file_object = args[0]
            else:  # SubRouter("/x")
                prefix = args[0]
        super().__init__(file_object if isinstance(file_object, str) and file_object.endswith(".py") else "", **kwargs)
        self.prefix = prefix
        self.tags = list(tags) if tags else []
        self.parent: BaseRobyn | None = None

    def _prefixed(self, endpoint: str) -> str:
        return self.prefix.rstrip("/") + endpoint if self.prefix else endpoint

    def _own_prefix(self) -> str:
        return "" if not self.prefix or normalize(self.prefix) == "/" else normalize(self.prefix)

    def _dependencies(self) -> Dependencies:
        inherited = self.parent._dependencies()["router_dependencies"] if self.parent else {}
        return {
            "global_dependencies": self.global_dependencies,
            "router_dependencies": {**inherited, **self.router_dependencies},
        }


def _names_a_module(value: object) -> bool:
    """Robyn's test for the legacy first argument: ``__name__`` or an existing ``__file__``,
    not a prefix."""
    if not isinstance(value, str):
        return False
    if value.startswith("/"):
        return value.endswith(".py") and os.path.isfile(value)
    return value == "__main__" or "." in value
