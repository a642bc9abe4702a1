"""``robyn.robyn``: where Robyn's native types live; the same names, from this server."""

from __future__ import annotations

from enum import Enum

from robyn._headers import Headers
from robyn._middleware import AFTER, BEFORE
from robyn._query import QueryParams
from robyn._request import Identity, Request, Url
from robyn._response import Cookie, Cookies, Response
from robyn._websocket import WebSocket as WebSocketConnector


class HttpMethod(Enum):
    """The HTTP methods a route may serve (``app.add_route(HttpMethod.GET, ...)``)."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    PATCH = "PATCH"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"
    CONNECT = "CONNECT"
    TRACE = "TRACE"


class MiddlewareType(Enum):
    BEFORE_REQUEST = BEFORE
    AFTER_REQUEST = AFTER


def get_version() -> str:
    """The Robyn version whose API this server serves."""
    return "0.88.0"


__all__ = [
    "Cookie",
    "Cookies",
    "Headers",
    "HttpMethod",
    "Identity",
    "MiddlewareType",
    "QueryParams",
    "Request",
    "Response",
    "Url",
    "WebSocketConnector",
    "get_version",
]
