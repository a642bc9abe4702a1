"""JSON Schema for the Python types a handler's signature names: its parameters' annotations,
the fields of its body classes (``Body``, ``JsonBody`` and ``TypedDict`` subclasses, pydantic
models, dataclasses) and its return annotation."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import typing
import uuid
from typing import Any, Literal, get_args, get_origin

from robyn._params import UNIONS
from robyn.jsonify import is_pydantic_model

Schema = dict[str, Any]

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    dict: {"type": "object"},
    list: {"type": "array"},
    type(None): {"type": "null"},
    # As pydantic writes them, so a model's fields and a handler's annotations agree.
    bytes: {"type": "string", "format": "binary"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    datetime.timedelta: {"type": "string", "format": "duration"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    decimal.Decimal: {"type": "number"},
}
_SEQUENCES = (list, tuple, set, frozenset)


class SchemaMaker:
    """Turns types into schemas for one document; the schemas pydantic puts under ``$defs``
    (nested models) are gathered in ``components`` for ``#/components/schemas/...``."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {}
        # The classes being described right now: a class that names itself (a tree's node)
        # is described once, then as a plain object.
        self._open: set[type] = set()

    def schema(self, annotation: Any) -> Schema:
        supertype = getattr(annotation, "__supertype__", None)
        if supertype is not None:  # a NewType (robyn.types.Method and the like)
            return self.schema(supertype)
        try:
            scalar = _SCALARS.get(annotation)
        except TypeError:  # not hashable
            scalar = None
        if scalar is not None:
            return dict(scalar)
        if annotation is Any or annotation is object:  # any value (`dict[str, object]`, say)
            return {}
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Literal:
            return _enum([*args])
        if origin in UNIONS:
            return {"anyOf": [self.schema(arg) for arg in args]}
        if origin in _SEQUENCES:
            found: Schema = {"type": "array"}
            if args:  # list[X], set[X], tuple[X, ...]: described by the first
                found["items"] = self.schema(args[0])
            return found
        if origin is dict:
            found = {"type": "object"}
            if len(args) == 2:
                found["additionalProperties"] = self.schema(args[1])
            return found
        if isinstance(annotation, type):
            return self._class(annotation)
        return {}

    def _class(self, cls: type) -> Schema:
        if issubclass(cls, enum.Enum):
            return _enum([member.value for member in cls])
        if is_pydantic_model(cls):
            return self._pydantic(cls)
        if cls in self._open:
            return {"type": "object"}
        self._open.add(cls)
        try:
            properties = {name: self.schema(hint) for name, hint in _fields(cls).items()}
        finally:
            self._open.discard(cls)
        found: Schema = {"type": "object", "properties": properties}
        required = sorted(getattr(cls, "__required_keys__", ()))  # a TypedDict's
        if required:
            found["required"] = required
        return found

    def _pydantic(self, model: Any) -> Schema:
        found: Schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        self.components.update(found.pop("$defs", {}))
        return found


def _enum(values: list[Any]) -> Schema:
    found: Schema = {"enum": values}
    kinds = {type(value) for value in values}
    if len(kinds) == 1:
        found.update(_SCALARS.get(kinds.pop(), {}))
    return found


def _fields(cls: type) -> dict[str, Any]:
    """The annotated fields of a class (its bases' too), resolved where they can be."""
    if dataclasses.is_dataclass(cls):
        names = [item.name for item in dataclasses.fields(cls)]
    else:
        names = [name for base in reversed(cls.__mro__) for name in vars(base).get("__annotations__", {})]
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a string annotation naming what the module cannot reach: keep it untyped
        hints = {}
    return {name: hints.get(name, Any) for name in dict.fromkeys(names) if not name.startswith("_")}
