"""One HTTP route as registered (``@app.get("/items/:id")``), and Robyn's way of writing
paths."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from robyn._http_params import HandlerPlan

Callback = Callable[..., Any]

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")


def method_name(route_type: Any) -> str:
    """``"GET"`` from ``"get"``, ``"GET"`` or ``HttpMethod.GET``."""
    name = getattr(route_type, "name", route_type)
    method = str(name).upper()
    if method not in METHODS:
        raise ValueError(f"unknown HTTP method {route_type!r}: use one of {', '.join(METHODS)}")
    return method


def normalize(endpoint: str) -> str:
    """Robyn's form of a path: a leading slash, no trailing one (``/`` stays)."""
    if not isinstance(endpoint, str):
        raise TypeError(f"a route's path is a string, got {type(endpoint).__name__}")
    if not endpoint:
        raise ValueError("Endpoint cannot be blank, do specify '/' for root endpoint")
    stripped = endpoint.strip().rstrip("/")
    if not stripped:
        return "/"
    return stripped if stripped.startswith("/") else "/" + stripped


def join(prefix: str, path: str) -> str:
    """``path`` under a router prefix (``/sub`` + ``/`` is ``/sub``)."""
    if not prefix or prefix == "/":
        return path
    return prefix if path == "/" else prefix + path


class HttpRoute:
    """A handler for one method on one path pattern, with what Robyn fixes when it is
    registered: the router's exception handler at that moment, and the parameter plan."""

    __slots__ = (
        "auth_required",
        "const",
        "exception_handler",
        "handler",
        "is_async",
        "method",
        "openapi",
        "owner",
        "pattern",
        "plan",
        "status_code",
    )

    def __init__(
        self,
        method: str,
        pattern: str,
        handler: Callback,
        *,
        const: bool = False,
        auth_required: bool = False,
        exception_handler: Callback | None = None,
        status_code: int | None = None,
        openapi: dict[str, Any] | None = None,
        owner: object = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"the handler of {method} {pattern} must be a function, got {type(handler).__name__}")
        self.method = method
        self.pattern = pattern
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self.plan = HandlerPlan(handler, pattern)
        self.const = bool(const)
        self.auth_required = bool(auth_required)
        self.exception_handler = exception_handler
        self.status_code = status_code
        # Kept for the OpenAPI document (not served yet).
        self.openapi = openapi or {}
        # The router it was registered on (its dependencies and authentication apply).
        self.owner = owner

    def __repr__(self) -> str:
        return f"<HttpRoute {self.method} {self.pattern}>"
