"""robyn-ws-server's own ``robyn`` package: Robyn's WebSocket API, served by a Rust server.

It is embedded in the server binary and imported ahead of any installed ``robyn``."""

from robyn import status_codes
from robyn._app import Robyn, SubRouter
from robyn._http import ALLOW_CORS, Headers, Request, Response, html, jsonify, serve_file, serve_html
from robyn._query import QueryParams
from robyn._websocket import WebSocket, WebSocketAdapter, WebSocketDisconnect

WebSocketConnector = WebSocket

__all__ = [
    "ALLOW_CORS",
    "Headers",
    "QueryParams",
    "Request",
    "Response",
    "Robyn",
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
