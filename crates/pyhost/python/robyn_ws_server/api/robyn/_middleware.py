"""``before_request`` and ``after_request`` middlewares: how each is called (Robyn goes by
the number of parameters) and what its return value means."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from robyn._request import Request
from robyn._response import Response
from robyn._returns import to_response

Callback = Callable[..., Any]

BEFORE = "before_request"
AFTER = "after_request"


def _arity(function: Callback) -> int:
    params = inspect.signature(function).parameters.values()
    return sum(param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) for param in params)


class Middleware:
    """One middleware. ``before_request`` gets the request (or nothing, if it takes no
    parameter); ``after_request`` gets the response, the request and the response, or
    nothing, by how many parameters it takes."""

    __slots__ = ("_arity", "function", "is_async", "kind")

    def __init__(self, kind: str, function: Callback) -> None:
        if not callable(function):
            raise TypeError(f"a {kind} middleware must be a function, got {type(function).__name__}")
        self.kind = kind
        self.function = function
        self.is_async = inspect.iscoroutinefunction(function)
        self._arity = _arity(function)

    def call(self, request: Request, response: Response | None = None) -> Any:
        """Calls the function (returning its coroutine, if it is async)."""
        if self._arity == 0:
            return self.function()
        if self.kind == BEFORE:
            return self.function(request)
        if self._arity == 1:
            return self.function(response)
        return self.function(request, response)

    def __repr__(self) -> str:
        return f"<{self.kind} {getattr(self.function, '__qualname__', self.function)}>"


def before_outcome(result: Any, request: Request) -> tuple[Request, Response | None]:
    """What a ``before_request`` returned: the request to go on with (itself, or the one it
    was given for ``None``), or a response that answers at once (a ``Response``, or a bare
    value made one as a handler's return value is: a ``dict`` as JSON, a ``(body, headers,
    status)`` tuple...)."""
    if result is None:
        return request, None
    if isinstance(result, Request):
        return result, None
    return request, to_response(result)


def after_outcome(result: Any, response: Response) -> Response:
    """What an ``after_request`` returned: the response to go on with (``None`` keeps it)."""
    if result is None:
        return response
    if isinstance(result, Request):
        raise TypeError("an after_request middleware returned a Request; it must return the Response")
    return to_response(result)
