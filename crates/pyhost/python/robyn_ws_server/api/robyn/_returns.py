"""What a handler's return value becomes, by Robyn's rules: a ``Response`` as it is; ``str``
as ``text/plain``; ``bytes`` as ``application/octet-stream``; ``dict`` and ``list`` (and
pydantic models) as JSON; ``serve_file``'s file read; a ``(body, headers, status)`` tuple;
anything else (``None``, ``200``, a type) as its ``str()`` in ``text/plain``. Then a response
as the server sends it: a status, header pairs (cookies as ``set-cookie``) and bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from robyn._headers import Headers
from robyn._response import Response
from robyn._streaming import EVENT_STREAM_HEADERS, Streamed
from robyn.jsonify import is_pydantic_model, jsonify
from robyn.responses import FileResponse, StreamingResponse

Wire = tuple[int, list[tuple[str, str]], Union[bytes, Streamed]]

TEXT = ("content-type", "text/plain")
JSON = ("content-type", "application/json")
OCTETS = ("content-type", "application/octet-stream")


def to_wire(value: Any, status: int | None = None) -> Wire:
    """What the server sends for a handler's return value; ``status`` is the route's own
    default (``@app.post(..., status_code=201)``), which a ``Response`` overrides."""
    kind = type(value)
    # The common returns first, without building a Response.
    if kind is str:
        return status or 200, [TEXT], value.encode()
    if kind is dict or kind is list:
        return status or 200, [JSON], jsonify(value).encode()
    if kind is bytes:
        return status or 200, [OCTETS], value
    if kind is Response:
        return response_wire(value)
    return response_wire(to_response(value, status))


def to_response(value: Any, status: int | None = None) -> Response:
    """A handler's return value as a ``Response`` (for the after-request middlewares)."""
    if isinstance(value, Response):
        return value
    if isinstance(value, (dict, list)):
        return Response(status or 200, Headers([JSON]), jsonify(value))
    if isinstance(value, str):
        return Response(status or 200, Headers([TEXT]), value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Response(status or 200, Headers([OCTETS]), bytes(value))
    if isinstance(value, FileResponse):
        return _read(value)
    if isinstance(value, StreamingResponse):
        return _streamed(value)
    if isinstance(value, tuple):
        return from_tuple(value)
    if is_pydantic_model(type(value)):
        return Response(status or 200, Headers([JSON]), value.model_dump_json())
    return Response(status or 200, Headers([TEXT]), str(value))


def from_tuple(value: tuple[Any, ...]) -> Response:
    """``(body, headers, status)``: the body as a return value would be, under the given
    status and headers (the body's content type unless they name one)."""
    if len(value) != 3:
        raise ValueError(f"a tuple returned as a response must be (body, headers, status_code), got {len(value)} items")
    description, headers, status_code = value
    shaped = to_response(description)
    given = headers if isinstance(headers, Headers) else Headers(headers if isinstance(headers, Mapping) else None)
    if not given.contains("content-type") and shaped.headers.contains("content-type"):
        given.set("content-type", shaped.headers.get("content-type") or "")
    response = Response(int(status_code), given, shaped.description)
    response.cookies = shaped.cookies
    return response


def response_wire(response: Response) -> Wire:
    headers = response.headers.multi_items()
    if response.cookies:
        headers.extend(("set-cookie", value) for value in response.cookies.header_values())
    body = response.description
    if isinstance(body, Streamed):
        return response.status_code, headers, body
    return response.status_code, headers, body.encode() if isinstance(body, str) else bytes(body)


def _streamed(streaming: StreamingResponse) -> Response:
    """A streamed answer: its body the generator, sent as it yields. A server-sent events
    stream gets the headers that keep caches and proxies from holding it, unless it has its own."""
    headers = streaming.headers
    events = streaming.media_type == "text/event-stream"
    if not headers.contains("content-type"):
        headers.set("content-type", streaming.media_type)
    if events:
        for name, value in EVENT_STREAM_HEADERS:
            if not headers.contains(name):
                headers.set(name, value)
    return Response(streaming.status_code, headers, Streamed(streaming.content, events))


def is_file(value: Any) -> bool:
    """Whether turning ``value`` into a response reads a file (better not done on the loop)."""
    return isinstance(value, FileResponse)


def _read(file: FileResponse) -> Response:
    with open(file.file_path, "rb") as handle:
        content = handle.read()
    response = Response(file.status_code, file.headers, content)
    response.response_type = "static_file"
    response.file_path = file.file_path
    return response


def plain(status: int, text: str) -> Wire:
    """A ``text/plain`` answer of the server's own (``Not found``, ``Internal server error``)."""
    return status, [TEXT], text.encode()
