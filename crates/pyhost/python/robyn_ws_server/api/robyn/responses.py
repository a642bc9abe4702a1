"""Robyn's response helpers: ``html``, ``serve_html``, ``serve_file`` and streaming responses."""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import AsyncIterable, Iterable
from typing import Union
from urllib.parse import quote

from robyn._headers import Headers
from robyn._response import Response

# A file name that may stand unquoted in Content-Disposition (RFC 6266 token characters).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

Chunks = Union[Iterable[Union[str, bytes]], AsyncIterable[Union[str, bytes]]]


class FileResponse:
    """A file to answer with; it is read when the response is sent."""

    def __init__(self, file_path: str, status_code: int | None = None, headers: Headers | None = None) -> None:
        self.file_path = file_path
        self.description = ""
        self.status_code = status_code or 200
        self.headers = headers or Headers({"Content-Disposition": "attachment"})


def html(html: str) -> Response:
    """An HTML string as the response."""
    return Response(200, Headers({"Content-Type": "text/html"}), html)


def serve_html(file_path: str) -> FileResponse:
    """An HTML file as the response."""
    return FileResponse(file_path, headers=Headers({"Content-Type": "text/html"}))


def serve_file(file_path: str, file_name: str | None = None) -> FileResponse:
    """A file as a download (``Content-Disposition: attachment``), named ``file_name`` or as
    on disk."""
    file_name = file_name or os.path.basename(file_path)
    headers = Headers({"Content-Type": mimetypes.guess_type(file_name)[0] or "application/octet-stream"})
    headers.append("Content-Disposition", _attachment(file_name))
    return FileResponse(file_path, headers=headers)


def _attachment(file_name: str) -> str:
    if _TOKEN.fullmatch(file_name):
        return f"attachment; filename={file_name}"
    # Quoted for old clients (non-ASCII replaced), and exact for the others (RFC 6266).
    fallback = file_name.encode("ascii", "replace").decode().replace("\\", "\\\\").replace('"', '\\"')
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"


class StreamingResponse:
    """A body sent as its chunks are produced (``str`` or ``bytes`` from a generator, sync or
    async)."""

    def __init__(
        self,
        content: Chunks,
        status_code: int | None = None,
        headers: Headers | None = None,
        media_type: str = "text/event-stream",
    ) -> None:
        self.content = content
        self.status_code = status_code or 200
        self.headers = headers or Headers()
        self.media_type = media_type
        if media_type == "text/event-stream":
            self.headers.set("Content-Type", "text/event-stream")


def SSEResponse(  # noqa: N802 (Robyn's public name)
    content: Chunks, status_code: int | None = None, headers: Headers | None = None
) -> StreamingResponse:
    """A server-sent events stream."""
    return StreamingResponse(content, status_code, headers, media_type="text/event-stream")


def SSEMessage(  # noqa: N802 (Robyn's public name)
    data: str, event: str | None = None, id: str | None = None, retry: int | None = None
) -> str:
    """One server-sent event, as its text (``event:``, ``id:``, ``retry:``, then a ``data:``
    line per line of ``data``, then a blank line)."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if id:
        lines.append(f"id: {id}")
    if retry:
        lines.append(f"retry: {retry}")
    text = str(data) if data else ""
    lines.extend(f"data: {line}" for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(lines) + "\n\n"


__all__ = ["FileResponse", "SSEMessage", "SSEResponse", "StreamingResponse", "html", "serve_file", "serve_html"]
