"""robyn-ws-server's own ``robyn`` package: Robyn 0.88.0's API (HTTP routes and WebSockets),
served by a Rust server.

It is embedded in the server binary and imported ahead of any installed ``robyn``."""

from robyn import status_codes
from robyn._app import Robyn, SubRouter
from robyn._cors import ALLOW_CORS
from robyn._headers import Headers
from robyn._history import HistoryGap, HistoryPosition
from robyn._query import QueryParams
from robyn._request import Request
from robyn._response import Response
from robyn._websocket import PresenceChange, WebSocket, WebSocketAdapter, WebSocketDisconnect
from robyn.authentication import AuthenticationHandler
from robyn.jsonify import jsonify
from robyn.openapi import OpenAPI, OpenAPIInfo
from robyn.responses import SSEMessage, SSEResponse, StreamingResponse, html, serve_file, serve_html
from robyn.robyn import get_version
from robyn.session import Session, SessionManager
from robyn.types import JsonBody, RequestBody, RequestMethod, RequestURL

WebSocketConnector = WebSocket

__version__ = get_version()

__all__ = [
    "ALLOW_CORS",
    "AuthenticationHandler",
    "Headers",
    "HistoryGap",
    "HistoryPosition",
    "JsonBody",
    "OpenAPI",
    "OpenAPIInfo",
    "PresenceChange",
    "QueryParams",
    "Request",
    "RequestBody",
    "RequestMethod",
    "RequestURL",
    "Response",
    "Robyn",
    "SSEMessage",
    "SSEResponse",
    "Session",
    "SessionManager",
    "StreamingResponse",
    "SubRouter",
    "WebSocket",
    "WebSocketAdapter",
    "WebSocketConnector",
    "WebSocketDisconnect",
    "html",
    "jsonify",
    "serve_file",
    "serve_html",
    "status_codes",
]
