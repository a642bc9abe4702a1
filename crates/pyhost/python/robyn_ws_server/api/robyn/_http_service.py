"""The app's HTTP side as the server serves it, read once at start-up from the app and every
router included below it: the routes (whose order is the route numbers the server sends
back), the chain of steps of each, static folders and global response headers."""

from __future__ import annotations

import inspect
import os
from typing import Any

from robyn._chain import Chain
from robyn._headers import Headers
from robyn._http_route import HttpRoute, join
from robyn._http_routing import HttpRouting
from robyn._middleware import AFTER, BEFORE, Middleware
from robyn._pipeline import Pipeline
from robyn._request import Request
from robyn._response import Response
from robyn._workers import Workers
from robyn.authentication import AuthenticationNotConfiguredError
from robyn.session import SessionManager


class HttpService:
    def __init__(self, app: HttpRouting) -> None:
        routers = list(app.walk())
        self.workers = Workers(min(32, (os.cpu_count() or 1) + 4))
        global_before = _global(routers, BEFORE)
        global_after = _global(routers, AFTER)
        on_paths = [
            (join(prefix, pattern), middleware)
            for router, prefix in routers
            for pattern, middleware in router.route_middlewares
        ]

        self.routes: list[tuple[HttpRoute, str]] = [
            (route, join(prefix, route.pattern)) for router, prefix in routers for route in router.http_routes
        ]
        self.sessions = _sessions(routers)
        chains = []
        # (method, pattern, kept): the server keeps the first response of a `const=True` route
        # and answers with it from then on without Python; only for routes without middlewares,
        # whose checks (authentication, CORS...) must see every request.
        self.table: list[tuple[str, str, bool]] = []
        for route, pattern in self.routes:
            before = [*global_before]
            if route.auth_required:
                before.append(authentication_step(authentication_handler(route.owner)))
            before += [
                middleware for path, middleware in on_paths if middleware.kind == BEFORE and covers(path, pattern)
            ]
            after = [
                *global_after,
                *(middleware for path, middleware in on_paths if middleware.kind == AFTER and covers(path, pattern)),
            ]
            chains.append(Chain(route, before, after, _dependencies(route.owner), self.workers, self.sessions))
            # Nor with sessions: a kept response would give every client the first one's cookie.
            kept = route.const and not before and not after and self.sessions is None
            self.table.append((route.method, pattern, kept))
        not_found = Chain(None, global_before, global_after, {}, self.workers, self.sessions)
        self.not_found_in_python = bool(global_before or global_after)

        self.static_mounts = [
            (
                join(prefix, directory.route),
                directory.directory_path,
                directory.index_file,
                directory.show_files_listing,
            )
            for router, prefix in routers
            for directory in router.directories
        ]
        self.response_headers = [pair for router, _ in routers for pair in router.response_headers.multi_items()]
        self.header_exclusions = sorted(
            {path for router, _ in routers for path in router.excluded_response_headers_paths or ()}
        )
        self.cors_origins = [origin for router, _ in routers for origin in router.cors_origins]
        request_headers = Headers()
        for router, _ in routers:
            request_headers.extend(router.request_headers)
        self.pipeline = Pipeline(
            chains,
            not_found,
            self.workers,
            None if request_headers.is_empty() else request_headers,
            self.sessions,
        )


def _sessions(routers: list[tuple[HttpRouting, str]]) -> SessionManager | None:
    """The app's sessions: one cookie for the whole app, whichever router configured it."""
    managers = [router.session_manager for router, _ in routers if router.session_manager is not None]
    if len(managers) > 1:
        raise RuntimeError(
            "configure_sessions() was called on more than one router; sessions are the whole app's: "
            "call it once, on the app"
        )
    return managers[0] if managers else None


def _global(routers: list[tuple[HttpRouting, str]], kind: str) -> list[Middleware]:
    return [middleware for router, _ in routers for middleware in router.global_middlewares if middleware.kind == kind]


def _dependencies(owner: Any) -> dict[str, dict[str, Any]]:
    read = getattr(owner, "_dependencies", None)
    found: dict[str, dict[str, Any]] = (
        read() if read is not None else {"global_dependencies": {}, "router_dependencies": {}}
    )
    return found


def authentication_handler(owner: Any) -> Any:
    """The handler of the route's router, else of the nearest router above it (Robyn lets
    included routers inherit the app's)."""
    router = owner
    while router is not None:
        handler = getattr(router, "authentication_handler", None)
        if handler is not None:
            return handler
        router = getattr(router, "parent", None)
    return None


def covers(middleware: str, route: str) -> bool:
    """Whether a middleware registered for ``middleware`` runs for every request of ``route``:
    the same pattern (whatever its parameters are called), or a pattern matching every path of
    the route (``/users/:id`` covers ``/users/me``, ``/files/*rest`` covers ``/files/a/b``)."""
    wanted, given = middleware.strip("/").split("/"), route.strip("/").split("/")
    for index, segment in enumerate(wanted):
        if segment.startswith("*"):
            return index < len(given)
        if index >= len(given):
            return False
        if segment.startswith(":"):
            if given[index].startswith("*"):
                return False
        elif segment != given[index]:
            return False
    return len(wanted) == len(given)


def authentication_step(handler: Any) -> Middleware:
    """The before-request step of an ``auth_required`` route: the handler's identity for the
    client goes to ``request.identity``, or its ``unauthorized_response`` answers."""

    def admit(request: Request, identity: Any) -> Request | Response:
        if identity is None:
            response: Response = handler.unauthorized_response
            return response
        request.identity = identity
        return request

    if handler is None:

        def not_configured(request: Request) -> Request:
            raise AuthenticationNotConfiguredError()

        return Middleware(BEFORE, not_configured)
    if inspect.iscoroutinefunction(handler.authenticate):

        async def authenticate_async(request: Request) -> Request | Response:
            return admit(request, await handler.authenticate(request))

        return Middleware(BEFORE, authenticate_async)

    def authenticate(request: Request) -> Request | Response:
        return admit(request, handler.authenticate(request))

    return Middleware(BEFORE, authenticate)
