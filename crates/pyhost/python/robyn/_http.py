"""Robyn's HTTP-side names, so that an app file with HTTP routes imports unchanged. The server
does not serve HTTP routes; these are plain values a handler could build, nothing more."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class Headers(dict[str, str]):
    """Robyn's header map: a dict with Robyn's method names."""

    def set(self, key: str, value: str) -> None:
        self[key.lower()] = value

    def contains(self, key: str) -> bool:
        return key.lower() in self

    def populate_from_dict(self, headers: dict[str, str]) -> None:
        for key, value in headers.items():
            self.set(key, value)

    def is_empty(self) -> bool:
        return not self


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
