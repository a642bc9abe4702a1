"""A stand-in for the server's native ``Exchange`` (robyn/_native.pyi) and its router, so the
HTTP pipeline runs here without the server: requests are matched to the app's routes the way
the server matches them (static over parameter over catch-all, trailing slash ignored), handed
to ``Pipeline.on_http`` on a running loop, and the answer waited for."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from robyn import Robyn
from robyn._http_service import HttpService


class FakeExchange:
    def __init__(
        self,
        method: str,
        path: str,
        query_string: str = "",
        headers: list[tuple[str, str]] | None = None,
        path_params: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers or []
        self.path_params = path_params or []
        self.body = body
        # A multipart/form-data body's parts (the server splits them): none here.
        self.form_fields: list[tuple[str, str]] | None = None
        self.form_files: list[tuple[str, bytes]] | None = None
        self.client = ("127.0.0.1", 40000)
        self.scheme = "http"
        self.host = "127.0.0.1:8080"
        self.answer: tuple[int, list[tuple[str, str]], bytes] | None = None
        self.answered = threading.Event()
        self.thread: str | None = None

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if self.answer is not None:
            raise RuntimeError("the exchange was answered already")
        self.answer = (status, headers, body)
        self.thread = threading.current_thread().name
        self.answered.set()


class Answer:
    def __init__(self, exchange: FakeExchange) -> None:
        if exchange.answer is None:
            raise AssertionError("the exchange was not answered")
        self.status, self.header_list, self.body = exchange.answer
        self.thread = exchange.thread
        self.text = self.body.decode(errors="replace")

    def header(self, name: str) -> str | None:
        """The first value of a header (names compared case-insensitively)."""
        return next((value for key, value in self.header_list if key.lower() == name.lower()), None)

    def headers(self, name: str) -> list[str]:
        return [value for key, value in self.header_list if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def _match(pattern: str, path: str) -> tuple[int, list[tuple[str, str]]] | None:
    """(rank, parameters) when ``path`` matches: a lower rank is a more specific route."""
    wanted, given = pattern.strip("/").split("/"), path.strip("/").split("/")
    params, rank = [], 0
    for index, segment in enumerate(wanted):
        if segment.startswith("*"):
            rest = "/".join(given[index:])
            return (rank + 100, [*params, (segment[1:], rest)]) if rest else None
        if index >= len(given):
            return None
        if segment.startswith(":"):
            params.append((segment[1:], given[index]))
            rank += 1
        elif segment != given[index]:
            return None
    return (rank, params) if len(wanted) == len(given) else None


class Client:
    """Sends requests to an app through its ``HttpService``."""

    def __init__(self, app: Robyn) -> None:
        self.service = HttpService(app)
        self.service.pipeline.bind(asyncio.get_running_loop())

    def route_of(self, method: str, path: str) -> tuple[int, list[tuple[str, str]]]:
        best: tuple[int, int, list[tuple[str, str]]] | None = None
        for index, (route, pattern) in enumerate(self.service.routes):
            found = _match(pattern, path) if route.method == method else None
            # The last registration of a method and pattern wins, as in the server.
            if found is not None and (best is None or found[0] <= best[0]):
                best = (found[0], index, found[1])
        return (-1, []) if best is None else (best[1], best[2])

    async def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | str = b""
    ) -> Answer:
        parts = urlsplit(url)
        path = unquote(parts.path)
        route, params = self.route_of(method, path)
        exchange = FakeExchange(
            method,
            path,
            parts.query,
            [(key.lower(), value) for key, value in (headers or {}).items()],
            params,
            body.encode() if isinstance(body, str) else body,
        )
        if route < 0 and not self.service.not_found_in_python:
            exchange.respond(404, [("content-type", "text/plain")], b"Not found")
        else:
            self.service.pipeline.on_http(route, exchange)
        while not exchange.answered.is_set():
            await asyncio.sleep(0.001)
        return Answer(exchange)

    async def get(self, url: str, **kwargs: Any) -> Answer:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Answer:
        return await self.request("POST", url, **kwargs)
