"""Easy-access parameters: typed query parameters and injected dependencies resolved from a
callback's signature. The signature is read once, when the callback is registered; each
connection then only runs the resulting list of small resolvers."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from robyn._query import QueryParams

if TYPE_CHECKING:
    from robyn._websocket import WebSocket

Dependencies = dict[str, dict[str, Any]]
Resolver = Callable[[QueryParams, Dependencies], Any]

_TRUE = frozenset({"true", "1", "yes", "on"})
# The empty string counts as false, as in Robyn (an unchecked checkbox sends `flag=`).
_FALSE = frozenset({"false", "0", "no", "off", ""})
_MISSING = object()

# What `get_origin` answers for `Optional[int]`, and for `int | None` from Python 3.10 on.
if sys.version_info >= (3, 10):
    UNIONS: tuple[object, ...] = (Union, types.UnionType)
else:
    UNIONS = (Union,)


class ParameterError(Exception):
    """A required query parameter is missing, or its value does not convert to the annotated
    type. The message is the text Robyn sends the client (after ``Error: ``)."""


def missing(name: str) -> ParameterError:
    return ParameterError(f"Missing required parameter: '{name}'")


def _to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(value)


def converter(annotation: Any, name: str) -> Callable[[str], Any]:
    """A function turning one raw value into the annotated type, raising ``ParameterError``
    with Robyn's message when it does not convert."""
    if annotation in (str, inspect.Parameter.empty, Any):
        return lambda value: value
    convert = _to_bool if annotation is bool else annotation
    type_name = getattr(annotation, "__name__", str(annotation))

    def checked(value: str) -> Any:
        try:
            return convert(value)
        except (ValueError, TypeError):
            raise ParameterError(f"Invalid value '{value}' for parameter '{name}': expected {type_name}") from None

    return checked


def unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``Optional[T]`` / ``T | None``, else ``(annotation, False)``."""
    if get_origin(annotation) in UNIONS:
        args = get_args(annotation)
        others = [arg for arg in args if arg is not type(None)]
        if len(others) == 1 and len(args) == 2:
            return others[0], True
    return annotation, False


class EasyAccess:
    """One parameter taken from the URL by its name: converted to its annotation (each value
    of a ``list[T]``), else its default, else ``None`` when optional, else missing."""

    __slots__ = ("_convert", "_fallback", "_is_list", "_required", "name")

    def __init__(self, param: inspect.Parameter) -> None:
        annotation, optional = unwrap_optional(param.annotation)
        self.name = param.name
        self._is_list = get_origin(annotation) is list or annotation is list
        if self._is_list:
            element_args = get_args(annotation)
            annotation = element_args[0] if element_args else str
        self._convert = converter(annotation, param.name)
        has_default = param.default is not inspect.Parameter.empty
        self._fallback = param.default if has_default else None
        self._required = not (has_default or optional)

    def from_query(self, query: QueryParams) -> Any:
        """The last value of the name (every value, for a list), or the fallback."""
        if self._is_list:
            values = query.get_all(self.name)
            if values is not None:
                return [self._convert(value) for value in values]
        else:
            value = query.get(self.name)
            if value is not None:
                return self._convert(value)
        if self._required:
            raise missing(self.name)
        return self._fallback

    def from_value(self, value: str) -> Any:
        """A path parameter's value."""
        converted = self._convert(value)
        return [converted] if self._is_list else converted


def _resolver(param: inspect.Parameter) -> Resolver:
    if param.name in ("global_dependencies", "router_dependencies"):
        key = param.name
        return lambda _, dependencies: dependencies[key]
    if param.name == "query_params" or param.annotation is QueryParams:
        return lambda query, _: query
    from_query = EasyAccess(param).from_query
    return lambda query, _: from_query(query)


def signature(function: Callable[..., Any]) -> inspect.Signature:
    """The signature with string annotations (`from __future__ import annotations`) resolved
    where they can be, else as written."""
    if sys.version_info >= (3, 10):
        try:
            return inspect.signature(function, eval_str=True)
        except (NameError, TypeError, SyntaxError):
            return inspect.signature(function)
    else:
        return signature_from_type_hints(function)


def signature_from_type_hints(function: Callable[..., Any]) -> inspect.Signature:
    """`signature` for Python 3.9, which has no ``eval_str``: the annotations that
    ``typing.get_type_hints`` resolves. (It reads ``x: int = None`` as ``Optional[int]``, which
    resolves the same way.)"""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError, SyntaxError):
        return signature
    return signature.replace(
        parameters=[
            param.replace(annotation=hints.get(param.name, param.annotation)) for param in signature.parameters.values()
        ]
    )


class ParameterPlan:
    """How to call one callback: whether it takes the websocket first, and a resolver for
    each further parameter."""

    def __init__(self, function: Callable[..., Any]) -> None:
        params = [
            param
            for param in signature(function).parameters.values()
            if param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.takes_websocket = bool(params) and params[0].kind in positional
        rest = params[1:] if self.takes_websocket else params
        self._resolvers = [(param.name, _resolver(param)) for param in rest]

    def resolve(self, websocket: WebSocket, dependencies: Callable[[], Dependencies]) -> dict[str, Any]:
        """Keyword arguments for one call; raises ``ParameterError`` for the first parameter
        that is missing or does not convert."""
        if not self._resolvers:
            # Shared and never mutated (`**` copies it): most handlers take only the websocket.
            return _NO_ARGUMENTS
        query, available = websocket.query_params, dependencies()
        path_params = getattr(websocket, "path_params", None)
        if path_params:
            # The route's own parameters (`/user/:id`) win over the query string's.
            query = QueryParams([*query.multi_items(), *path_params.items()])
        return {name: resolve(query, available) for name, resolve in self._resolvers}


_NO_ARGUMENTS: dict[str, Any] = {}
