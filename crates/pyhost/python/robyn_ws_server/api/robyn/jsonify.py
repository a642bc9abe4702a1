"""Robyn's ``jsonify``: compact JSON text, as Robyn writes it (with orjson)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import uuid
from typing import Any


def _default(value: Any) -> Any:
    """What JSON cannot hold natively but orjson writes anyway (so Robyn apps rely on it)."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if is_pydantic_model(type(value)):
        return value.model_dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# One encoder for every call: `json.dumps` with options builds a new one each time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default)


def is_pydantic_model(cls: Any) -> bool:
    """Whether ``cls`` is a pydantic model class, told without importing pydantic (the app's
    environment may not have it)."""
    return isinstance(cls, type) and any(
        base.__name__ == "BaseModel" and base.__module__.startswith("pydantic") for base in cls.__mro__
    )


def jsonify(data: Any) -> str:
    """``data`` as compact JSON text (``{"a":1}``)."""
    return _ENCODER.encode(data)
