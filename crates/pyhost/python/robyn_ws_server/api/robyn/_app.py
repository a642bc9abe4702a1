"""``Robyn`` and ``SubRouter``: the app object users decorate. WebSocket routes are served;
HTTP routes and middleware are accepted so a full Robyn app file imports unchanged, and the
server lists them once at start-up as not served."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from robyn._endpoint import Callback, Endpoint
from robyn._params import Dependencies

_HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options", "connect", "trace")

# Every app object created during the import, so the server can find one that is not a
# module-level name (built by a factory, say).
created: list[Robyn] = []
# What `app.start()` does while the server runs the app's module: serve that app (set by the
# loader).
on_start: Callable[[Robyn], None] | None = None


class BaseRobyn:
    def __init__(self, file_object: str = "", *_args: Any, dependencies: Any = None, **_kwargs: Any) -> None:
        self.file_path = file_object
        self.directory_path = os.path.dirname(os.path.abspath(file_object)) if file_object else os.getcwd()
        self.endpoints: list[Endpoint] = []
        # (method, path) of each HTTP route: not served, but a request there is told so.
        self.http_routes: list[tuple[str, str]] = []
        self.unserved: list[str] = []
        self.global_dependencies: dict[str, Any] = {}
        self.router_dependencies: dict[str, Any] = {}
        self.startup_handlers: list[Callback] = []
        self.shutdown_handlers: list[Callback] = []
        self.broker_reconnect_handlers: list[Callback] = []

    # -- WebSocket routes ---------------------------------------------------------------

    def websocket(self, endpoint: str, subprotocols: Iterable[str] = ()) -> Callable[[Callback], Callback]:
        """Registers an async handler for WebSocket connections on ``endpoint``: an exact path
        (``/chat``), with ``:name`` parameters (``/user/:id``) or a last ``*name`` segment
        (``/files/*rest``). ``subprotocols``: the ones it speaks, in order; the first of the
        client's offers that it lists is chosen."""
        if not isinstance(endpoint, str) or not endpoint.startswith("/"):
            raise ValueError(f"WebSocket path must be a string starting with '/', got {endpoint!r}")
        if isinstance(subprotocols, str):
            raise TypeError(f"subprotocols is a list of names, got the string {subprotocols!r}")
        spoken = list(subprotocols)

        def decorator(handler: Callback) -> Callback:
            route = Endpoint(self._prefixed(endpoint), handler, self._dependencies, spoken)
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

    def startup_handler(self, handler: Callback) -> Callback:
        """Runs before the first connection is accepted (sync or async)."""
        self.startup_handlers.append(handler)
        return handler

    def shutdown_handler(self, handler: Callback) -> Callback:
        """Runs after the last connection has closed (sync or async)."""
        self.shutdown_handlers.append(handler)
        return handler

    def on_broker_reconnect(self, handler: Callback) -> Callback:
        """Runs (sync or async) each time this server hears the broker again after losing it
        (``--broker``): broadcasts other hosts made meanwhile did not reach its clients, so
        this is where an app re-sends what they must not miss."""
        self.broker_reconnect_handlers.append(handler)
        return handler

    # -- The HTTP side, accepted and not served -------------------------------------------

    def add_route(self, route_type: Any, endpoint: str, handler: Callback, *args: Any, **kwargs: Any) -> Callback:
        method = getattr(route_type, "name", str(route_type)).upper()
        self.http_routes.append((method, self._prefixed(endpoint)))
        self.unserved.append(f"{method} {self._prefixed(endpoint)}")
        return handler

    def _http_route(self, method: str) -> Callable[..., Callable[[Callback], Callback]]:
        def register(endpoint: str, *args: Any, **kwargs: Any) -> Callable[[Callback], Callback]:
            def decorator(handler: Callback) -> Callback:
                return self.add_route(method, endpoint, handler)

            return decorator

        return register

    def __getattr__(self, name: str) -> Any:
        if name in _HTTP_METHODS:
            return self._http_route(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def before_request(self, endpoint: str | None = None) -> Callable[[Callback], Callback]:
        return self._unserved_decorator(f"before_request middleware{_on(endpoint)}")

    def after_request(self, endpoint: str | None = None) -> Callable[[Callback], Callback]:
        return self._unserved_decorator(f"after_request middleware{_on(endpoint)}")

    def exception(self, handler: Callback) -> Callback:
        self.unserved.append("exception handler")
        return handler

    def serve_directory(self, route: str, directory_path: str, *args: Any, **kwargs: Any) -> None:
        self.unserved.append(f"static directory {self._prefixed(route)}")

    def add_request_header(self, key: str, value: str) -> None:
        self.unserved.append(f"request header {key}")

    def add_response_header(self, key: str, value: str) -> None:
        self.unserved.append(f"response header {key}")

    set_request_header = add_request_header
    set_response_header = add_response_header

    def exclude_response_headers_for(self, paths: list[str] | None) -> None:
        return None

    def configure_authentication(self, handler: Any) -> None:
        self.unserved.append("authentication")

    def configure_sessions(self, *args: Any, **kwargs: Any) -> None:
        self.unserved.append("sessions")

    def init_openapi(self, *args: Any, **kwargs: Any) -> None:
        return None

    def _unserved_decorator(self, what: str) -> Callable[[Callback], Callback]:
        def decorator(handler: Callback) -> Callback:
            self.unserved.append(what)
            return handler

        return decorator

    # -- Routers --------------------------------------------------------------------------

    def include_router(self, router: SubRouter) -> None:
        """Serves a SubRouter's routes under this app's (or router's) own prefix, with its
        dependencies layered over this one's. Routers nest: prefixes add up."""
        for route in router.endpoints:
            self.endpoints.append(route.with_prefix(self._prefixed("")))
        self.http_routes.extend((method, self._prefixed(path)) for method, path in router.http_routes)
        self.unserved.extend(router.unserved)
        self.startup_handlers.extend(router.startup_handlers)
        self.shutdown_handlers.extend(router.shutdown_handlers)
        self.broker_reconnect_handlers.extend(router.broker_reconnect_handlers)
        router.parent = self

    # -- Paths ----------------------------------------------------------------------------

    def _prefixed(self, endpoint: str) -> str:
        return endpoint


def _on(endpoint: str | None) -> str:
    return f" on {endpoint}" if endpoint else ""


class Robyn(BaseRobyn):
    """The app."""

    def __init__(self, file_object: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(file_object, *args, **kwargs)
        self.start_host: str | None = None
        self.start_port: int | None = None
        created.append(self)

    # -- Reaching connections from anywhere in the app -------------------------------------

    async def send_to(self, connection_id: str, data: str | bytes) -> bool:
        """Send to one open connection by its id: True when queued, False when no such
        connection is open. What becomes of the recipient never raises here."""
        from robyn import _native  # only inside the running server

        return _native.send_to(connection_id, data)

    async def broadcast(self, path: str, data: str | bytes, room: str | None = None) -> None:
        """Send to every client of the WebSocket route ``path`` (as registered, e.g.
        ``/user/:id``), or with ``room`` to that room's members."""
        from robyn import _native  # only inside the running server

        _native.broadcast(self._endpoint_index(path), data, room)

    def connections(self, path: str) -> list[str]:
        """The ids of the open connections of the WebSocket route ``path``."""
        from robyn import _native  # only inside the running server

        return _native.connections(self._endpoint_index(path))

    def _endpoint_index(self, path: str) -> int:
        for route in reversed(self.endpoints):
            if route.path == path and route.index is not None:
                return route.index
        served = ", ".join(route.path for route in self.endpoints) or "none"
        raise ValueError(f"no WebSocket route {path!r} (the app's are: {served}); name a route as it was registered")

    def start(self, host: str | None = None, port: int | None = None, *args: Any, **kwargs: Any) -> None:
        """Serves the app, as in Robyn, and returns after shutdown. Where to listen comes from
        here unless the server's ``--host``/``--port`` (or ``ROBYN_HOST``/``ROBYN_PORT``) say."""
        if host is not None:
            self.start_host = str(host)
        if port is not None:
            self.start_port = int(port)
        if on_start is not None:
            on_start(self)


class SubRouter(BaseRobyn):
    """A group of routes under a path prefix, mounted with ``include_router``."""

    def __init__(self, file_object: str = "", prefix: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(file_object, *args, **kwargs)
        self.prefix = prefix
        self.parent: BaseRobyn | None = None

    def _prefixed(self, endpoint: str) -> str:
        return self.prefix.rstrip("/") + endpoint if self.prefix else endpoint

    def _dependencies(self) -> Dependencies:
        inherited = (
            self.parent._dependencies() if self.parent else {"global_dependencies": {}, "router_dependencies": {}}
        )
        return {
            "global_dependencies": {**inherited["global_dependencies"], **self.global_dependencies},
            "router_dependencies": {**inherited["router_dependencies"], **self.router_dependencies},
        }
