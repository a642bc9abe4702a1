"""How an HTTP handler is called, worked out once from its signature when it is registered.
Each parameter gets its value, in Robyn's order, from:

1. its annotation: ``Request``, ``QueryParams`` (or a subclass), ``Headers``, ``PathParams``,
   ``Method``, ``Url``, ``FormData``, ``Files``, ``IPAddress``, ``Identity``, ``Body`` (or a
   subclass: the raw body), ``JsonBody`` (or a subclass) and ``TypedDict`` classes (the body
   parsed as JSON), pydantic models (the body validated);
2. its name: ``request`` (``r``, ``req``), ``query_params``, ``headers``, ``path_params``,
   ``body``, ``method``, ``url``, ``ip_addr``, ``identity``, ``form_data``, ``files``,
   ``global_dependencies``, ``router_dependencies``;
3. else the URL: the route's path parameter of that name, else the query parameter, converted
   to the annotation (easy-access parameters)."""

from __future__ import annotations

import inspect
import json
import logging
import operator
from collections.abc import Callable
from typing import Any

from robyn._headers import Headers
from robyn._params import Dependencies, EasyAccess, signature
from robyn._query import QueryParams
from robyn._request import Identity, Request, Url
from robyn.jsonify import is_pydantic_model
from robyn.types import Body, Files, FormData, IPAddress, JsonBody, Method, PathParams

_log = logging.getLogger("robyn.http")

Resolver = Callable[[Request, Dependencies], Any]


class BodyError(Exception):
    """The body is not what a parameter needs: answered with ``status`` and ``detail`` as
    JSON (400 for JSON that does not parse, 422 for a pydantic model it does not fit)."""

    def __init__(self, status: int, detail: dict[str, Any]) -> None:
        super().__init__(detail.get("error", "invalid body"))
        self.status = status
        self.detail = detail


def _request(request: Request, _: Dependencies) -> Request:
    return request


def _attribute(name: str) -> Resolver:
    read = operator.attrgetter(name)
    return lambda request, _: read(request)


def _dependency(name: str) -> Resolver:
    return lambda _, dependencies: dependencies[name]


def _json_body(request: Request, _: Dependencies) -> Any:
    try:
        return request.json()
    except ValueError as error:
        raise BodyError(400, {"error": f"Invalid JSON body: {error}"}) from None


def _validated(model: Any) -> Resolver:
    def resolve(request: Request, _: Dependencies) -> Any:
        try:
            return model.model_validate_json(request.body)
        except Exception as error:
            if type(error).__name__ != "ValidationError":
                raise
            detail = json.loads(error.json())  # type: ignore[attr-defined]  # pydantic's ValidationError
            raise BodyError(422, {"detail": detail, "error": "Validation Error"}) from None

    return resolve


# Annotations naming a part of the request (compared by identity: several are NewTypes).
_BY_TYPE: dict[Any, Resolver] = {
    Headers: _attribute("headers"),
    PathParams: _attribute("path_params"),
    Method: _attribute("method"),
    Url: _attribute("url"),
    FormData: _attribute("form_data"),
    Files: _attribute("files"),
    IPAddress: _attribute("ip_addr"),
    Identity: _attribute("identity"),
    Body: _attribute("body"),
}

_BY_NAME: dict[str, Resolver] = {
    "r": _request,
    "req": _request,
    "request": _request,
    **{
        name: _attribute(name)
        for name in (
            "query_params",
            "headers",
            "path_params",
            "body",
            "method",
            "url",
            "ip_addr",
            "identity",
            "form_data",
            "files",
        )
    },
    "global_dependencies": _dependency("global_dependencies"),
    "router_dependencies": _dependency("router_dependencies"),
}


def is_typed_dict(annotation: Any) -> bool:
    # `typing.is_typeddict` is Python 3.10+.
    return isinstance(annotation, type) and issubclass(annotation, dict) and hasattr(annotation, "__total__")


def _by_annotation(annotation: Any) -> Resolver | None:
    try:
        found = _BY_TYPE.get(annotation)
    except TypeError:  # not hashable
        return None
    if found is not None:
        return found
    if not isinstance(annotation, type):
        return None
    if issubclass(annotation, Request):
        return _request
    if issubclass(annotation, QueryParams):
        return _attribute("query_params")
    if issubclass(annotation, JsonBody) or is_typed_dict(annotation):
        return _json_body
    if issubclass(annotation, Body):
        return _attribute("body")
    if is_pydantic_model(annotation):
        return _validated(annotation)
    return None


def _from_url(param: inspect.Parameter, route_params: frozenset[str]) -> Resolver:
    easy = EasyAccess(param)
    from_query, name = easy.from_query, param.name
    if name not in route_params:
        return lambda request, _: from_query(request.query_params)
    from_value = easy.from_value

    def resolve(request: Request, _: Dependencies) -> Any:
        value = request.path_params.get(name)
        return from_query(request.query_params) if value is None else from_value(value)

    return resolve


def is_easy_access(param: inspect.Parameter) -> bool:
    """Whether the parameter is an easy-access one: filled from the URL by its name."""
    return _by_annotation(param.annotation) is None and param.name not in _BY_NAME


def _resolver(param: inspect.Parameter, route_params: frozenset[str]) -> Resolver:
    return _by_annotation(param.annotation) or _BY_NAME.get(param.name) or _from_url(param, route_params)


def route_params(pattern: str) -> frozenset[str]:
    """The parameter names of a Robyn pattern: ``{"id", "rest"}`` for ``/a/:id/*rest``."""
    return frozenset(segment[1:] for segment in pattern.split("/") if segment[:1] in (":", "*") and segment[1:])


class HandlerPlan:
    """How to call one handler: a resolver per parameter, positional ones in order."""

    __slots__ = ("_keyword", "_positional", "takes_nothing")

    def __init__(self, function: Callable[..., Any], pattern: str) -> None:
        names = route_params(pattern)
        _one_body_model(function)
        positional: list[Resolver] = []
        keyword: list[tuple[str, Resolver]] = []
        for param in signature(function).parameters.values():
            if param.kind is inspect.Parameter.KEYWORD_ONLY:
                keyword.append((param.name, _resolver(param, names)))
            elif param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                positional.append(_resolver(param, names))
        self._positional = positional
        self._keyword = keyword
        self.takes_nothing = not positional and not keyword
        _warn_unused(function, pattern, names)

    def arguments(self, request: Request, dependencies: Dependencies) -> tuple[list[Any], dict[str, Any]]:
        """The call's arguments; raises ``ParameterError`` (400) or ``BodyError``."""
        args = [resolve(request, dependencies) for resolve in self._positional]
        if not self._keyword:
            return args, _NO_KEYWORDS
        return args, {name: resolve(request, dependencies) for name, resolve in self._keyword}


# Shared and never mutated (`**` copies it).
_NO_KEYWORDS: dict[str, Any] = {}


def _one_body_model(function: Callable[..., Any]) -> None:
    """A body is validated into one pydantic model: a second is a mistake, said when the
    route is registered rather than on every request."""
    models = [param.name for param in signature(function).parameters.values() if is_pydantic_model(param.annotation)]
    if len(models) > 1:
        raise TypeError(
            f"{getattr(function, '__qualname__', function)} takes the request body as more than one pydantic "
            f"model ({', '.join(models)}); the whole body goes into one: take one parameter, whose model "
            "holds the others"
        )


def _warn_unused(function: Callable[..., Any], pattern: str, names: frozenset[str]) -> None:
    """Robyn's warning for path parameters the handler has no way to read."""
    if not names:
        return
    params = signature(function).parameters
    if any(name in params for name in ("r", "req", "request", "path_params")) or any(
        param.annotation is PathParams or param.annotation is Request for param in params.values()
    ):
        return
    unused = sorted(names - set(params))
    if unused:
        _log.warning(
            "route %s declares path parameters %s that its handler %s does not take",
            pattern,
            ", ".join(unused),
            getattr(function, "__qualname__", function),
        )
