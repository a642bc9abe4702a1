"""``robyn.robyn``: where Robyn's native types live; the same names, from this server."""

from robyn._http import Headers, Request, Response, Url
from robyn._query import QueryParams
from robyn._websocket import WebSocket as WebSocketConnector

__all__ = ["Headers", "QueryParams", "Request", "Response", "Url", "WebSocketConnector"]
