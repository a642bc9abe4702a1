"""The HTTP half of ``Robyn`` and ``SubRouter``: routes, middlewares, the exception handler,
global headers, static folders, authentication. Everything registered here is only recorded;
the server reads it once, when it starts (``robyn._http_service``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

from robyn._headers import Headers
from robyn._http_route import HttpRoute, join, method_name, normalize
from robyn._middleware import AFTER, BEFORE, Middleware
from robyn.session import SessionManager
from robyn.types import Directory

F = TypeVar("F", bound=Callable[..., Any])


class HttpRouting:
    """Registers HTTP routes and what goes with them, as Robyn 0.88.0 does."""

    def _init_http(self) -> None:
        self.http_routes: list[HttpRoute] = []
        self.global_middlewares: list[Middleware] = []
        # (pattern, middleware): runs for the routes of that pattern.
        self.route_middlewares: list[tuple[str, Middleware]] = []
        self.exception_handler: Callable[..., Any] | None = None
        self.authentication_handler: Any = None
        self.request_headers = Headers()
        self.response_headers = Headers()
        self.excluded_response_headers_paths: list[str] | None = None
        self.directories: list[Directory] = []
        self.included_routers: list[HttpRouting] = []
        self.session_manager: SessionManager | None = None
        # ALLOW_CORS's origins: its WebSocket routes take handshakes from these only.
        self.cors_origins: list[str] = []

    def _own_prefix(self) -> str:
        """What this router puts before its paths (``""`` for the app)."""
        return ""

    # -- Routes ------------------------------------------------------------------------------

    def add_route(
        self,
        route_type: Any,
        endpoint: str,
        handler: F,
        is_const: bool = False,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        status_code: int | None = None,
        response_model: Any = None,
        responses: dict[Any, Any] | None = None,
        deprecated: bool = False,
        include_in_schema: bool = True,
    ) -> F:
        """Serves ``handler`` (sync or async) for ``route_type`` (``"GET"`` or
        ``HttpMethod.GET``) requests to ``endpoint``: an exact path (``/items``), with
        ``:name`` parameters (``/items/:id``) or a last ``*name`` segment (``/files/*path``).
        The exception handler registered so far on this router applies to it (as in Robyn).
        Registering a method and path again replaces the earlier handler."""
        method = method_name(route_type)
        route = HttpRoute(
            method,
            join(self._own_prefix(), normalize(endpoint)),
            handler,
            const=is_const,
            auth_required=auth_required,
            exception_handler=self.exception_handler,
            status_code=status_code,
            openapi={
                "name": openapi_name,
                "tags": list(openapi_tags or []),
                "response_model": response_model,
                "responses": responses,
                "deprecated": deprecated,
                "include_in_schema": include_in_schema,
            },
            owner=self,
        )
        self.http_routes.append(route)
        return handler

    def _decorator(
        self,
        method: str,
        endpoint: str,
        const: bool,
        auth_required: bool,
        openapi_name: str,
        openapi_tags: list[str] | None,
        openapi: dict[str, Any],
    ) -> Callable[[F], F]:
        # A decorator's routes are tagged with their method unless tags are given; add_route's
        # are untagged (as in Robyn).
        tags = [method.lower()] if openapi_tags is None else openapi_tags

        def decorator(handler: F) -> F:
            return self.add_route(method, endpoint, handler, const, auth_required, openapi_name, tags, **openapi)

        return decorator

    def get(
        self,
        endpoint: str,
        const: bool = False,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        **openapi: Any,
    ) -> Callable[[F], F]:
        """``const=True``: the first response is kept and served from then on without running
        the handler again."""
        return self._decorator("GET", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def post(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("POST", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def put(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("PUT", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def delete(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("DELETE", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def patch(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("PATCH", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def head(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("HEAD", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def options(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("OPTIONS", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def connect(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("CONNECT", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def trace(
        self,
        endpoint: str,
        auth_required: bool = False,
        openapi_name: str = "",
        openapi_tags: list[str] | None = None,
        *,
        const: bool = False,
        **openapi: Any,
    ) -> Callable[[F], F]:
        return self._decorator("TRACE", endpoint, const, auth_required, openapi_name, openapi_tags, openapi)

    def exception(self, handler: F) -> F:
        """Turns an exception a handler raises into the response: ``handler(error)`` returns
        it (a ``Response``, or anything a handler may return). As in Robyn, it applies to the
        routes this router registers from then on."""
        self.exception_handler = handler
        return handler

    # -- Middlewares -------------------------------------------------------------------------

    @overload
    def before_request(self, endpoint: F) -> F: ...
    @overload
    def before_request(self, endpoint: str | None = None) -> Callable[[F], F]: ...
    def before_request(self, endpoint: Any = None) -> Any:
        """Runs before the handler, for every request (no ``endpoint``; also for requests no
        route matched) or for the routes of ``endpoint``. It gets the request and returns it
        (changed or not) to go on, or a response (a ``Response``, or a value a handler could
        return) that answers at once; the after-request middlewares still run."""
        return self._middleware(BEFORE, endpoint)

    @overload
    def after_request(self, endpoint: F) -> F: ...
    @overload
    def after_request(self, endpoint: str | None = None) -> Callable[[F], F]: ...
    def after_request(self, endpoint: Any = None) -> Any:
        """Runs after the handler: it gets the response (or the request and the response,
        if it takes two parameters) and returns the response to send."""
        return self._middleware(AFTER, endpoint)

    def _middleware(self, kind: str, endpoint: Any) -> Any:
        if callable(endpoint):  # used without parentheses: a global one
            self.global_middlewares.append(Middleware(kind, endpoint))
            return endpoint
        pattern = join(self._own_prefix(), normalize(endpoint)) if endpoint else None

        def decorator(handler: F) -> F:
            middleware = Middleware(kind, handler)
            if pattern is None:
                self.global_middlewares.append(middleware)
            else:
                self.route_middlewares.append((pattern, middleware))
            return handler

        return decorator

    # -- Headers and files -------------------------------------------------------------------

    def add_request_header(self, key: str, value: str) -> None:
        """Added to the headers of every request a handler sees."""
        self.request_headers.append(key, value)

    def set_request_header(self, key: str, value: str) -> None:
        self.request_headers.set(key, value)

    def add_response_header(self, key: str, value: str) -> None:
        """Sent with every HTTP response that does not set the header itself."""
        self.response_headers.append(key, value)

    def set_response_header(self, key: str, value: str) -> None:
        self.response_headers.set(key, value)

    def exclude_response_headers_for(self, excluded_response_headers_paths: list[str] | None) -> None:
        """Paths whose responses go without the global response headers."""
        self.excluded_response_headers_paths = list(excluded_response_headers_paths or []) or None

    def serve_directory(
        self, route: str, directory_path: str, index_file: str | None = None, show_files_listing: bool = False
    ) -> None:
        """Serves the files under ``directory_path`` at ``route`` (GET and HEAD, when no route
        of the app matches)."""
        self.directories.append(
            Directory(
                join(self._own_prefix(), normalize(route)),
                os.path.abspath(directory_path),
                show_files_listing,
                index_file,
            )
        )

    # -- Authentication and sessions ---------------------------------------------------------

    def configure_authentication(self, authentication_handler: Any) -> None:
        """The ``AuthenticationHandler`` for this router's ``auth_required`` routes (and for
        those of included routers that configure none)."""
        self.authentication_handler = authentication_handler

    def configure_sessions(
        self,
        secret_key: str,
        *,
        cookie_name: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        http_only: bool = True,
        same_site: str = "Lax",
    ) -> SessionManager:
        """Signed-cookie sessions (``robyn.session``): ``request.session`` in every HTTP
        handler and middleware, ``websocket.session`` (read-only) in WebSocket callbacks.
        ``max_age`` (seconds, ``None``: until the browser closes) bounds the session's life."""
        if self.session_manager is not None:
            raise RuntimeError("Sessions are already configured; configure_sessions() may only be called once")
        self.session_manager = SessionManager(
            secret_key,
            cookie_name=cookie_name,
            max_age=max_age,
            path=path,
            domain=domain,
            secure=secure,
            http_only=http_only,
            same_site=same_site,
        )
        return self.session_manager

    def init_openapi(self, openapi_file_path: str | None = None) -> None:
        """Accepted on a SubRouter: the app's document covers its routes."""

    # -- The tree of routers -----------------------------------------------------------------

    def _include_http(self, router: HttpRouting) -> None:
        self.included_routers.append(router)

    def walk(self, prefix: str = "") -> Iterator[tuple[HttpRouting, str]]:
        """This router and every router included below it (depth first, in the order they were
        included), each with the prefix its paths are served under."""
        yield self, prefix
        below = join(prefix, self._own_prefix()) if self._own_prefix() else prefix
        for router in self.included_routers:
            yield from router.walk(below)
