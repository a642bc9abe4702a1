"""Robyn's HTTP-side names, so that an app file with HTTP routes imports unchanged. The server
does not serve HTTP routes; these are plain values a handler could build, nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Headers:
    """Robyn's header map: names are case-insensitive, a name may have several values.
    ``get`` answers the last value, ``get_all`` every one."""

    __slots__ = ("_values",)

    def __init__(self, default_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._values: dict[str, list[str]] = {}
        pairs = default_headers.items() if isinstance(default_headers, Mapping) else default_headers or ()
        for key, value in pairs:
            self.append(key, value)

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._values.get(key.lower())
        return values[-1] if values else default

    def get_all(self, key: str) -> list[str]:
        return list(self._values.get(key.lower(), ()))

    def set(self, key: str, value: str) -> None:
        """Adds a value (as Robyn's ``set`` does: earlier values stay, ``get`` answers this one)."""
        self.append(key, value)

    def append(self, key: str, value: str) -> None:
        self._values.setdefault(key.lower(), []).append(value)

    def contains(self, key: str) -> bool:
        return key.lower() in self._values

    def populate_from_dict(self, headers: Mapping[str, str]) -> None:
        for key, value in headers.items():
            self.append(key, value)

    def is_empty(self) -> bool:
        return not self._values

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value), names lower-case, repeated names kept."""
        return [(key, value) for key, values in self._values.items() for value in values]

    def to_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self._values.items()}

    def __getitem__(self, key: str) -> str | None:
        return self.get(key)

    def __setitem__(self, key: str, value: str) -> None:
        self._values[key.lower()] = [value]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.contains(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._values == other._values

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


@dataclass
class Url:
    scheme: str = "ws"
    host: str = ""
    path: str = "/"


@dataclass
class Request:
    method: str = "GET"
    url: Url = field(default_factory=Url)
    headers: Headers = field(default_factory=Headers)
    body: bytes | str = b""
    path_params: dict[str, str] = field(default_factory=dict)
    ip_addr: str | None = None


@dataclass
class Response:
    status_code: int = 200
    headers: Headers | dict[str, str] = field(default_factory=Headers)
    description: str | bytes = ""
    response_type: str | None = None


def jsonify(value: Any) -> str:
    """JSON text, as Robyn's ``jsonify`` returns it."""
    return json.dumps(value)


def html(content: str) -> Response:
    return Response(200, Headers({"content-type": "text/html"}), content)


def serve_html(file_path: str) -> Response:
    with open(file_path, encoding="utf-8") as file:
        return html(file.read())


def serve_file(file_path: str, file_name: str | None = None) -> Response:
    with open(file_path, "rb") as file:
        return Response(200, Headers({"content-type": "application/octet-stream"}), file.read())


ALLOW_CORS = None
