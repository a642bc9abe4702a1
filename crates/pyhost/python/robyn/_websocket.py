"""The websocket object handed to handlers, and the exception that ends a conversation."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from robyn._query import QueryParams

if TYPE_CHECKING:
    from robyn._native import Connection


class WebSocketDisconnect(Exception):  # noqa: N818 (Robyn's public name)
    """The connection is over: the client closed it, vanished (1006), or the server closed it."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket disconnected with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebSocket:
    """One client's connection. Receives and sends never block the event loop: messages
    arrive through the server's Rust side and sends go straight onto the connection's
    bounded outbound queue."""

    __slots__ = ("_conn", "_query_params")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._query_params: QueryParams | None = None

    @property
    def id(self) -> str:
        """The connection's UUID4."""
        return self._conn.id

    @property
    def query_params(self) -> QueryParams:
        """The query parameters of the URL the client connected to."""
        if self._query_params is None:
            self._query_params = QueryParams(self._conn.query)
        return self._query_params

    async def receive(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one."""
        message = self._conn.receive_now()
        if message is None:
            message = await self._conn.receive_later()
        return message

    async def receive_text(self) -> str:
        """The next message as text (a binary frame is decoded as UTF-8)."""
        message = self._conn.receive_now()
        if message is None:
            message = await self._conn.receive_later()
        return message if isinstance(message, str) else message.decode()

    async def receive_bytes(self) -> bytes:
        """The next message as bytes (a text frame is encoded as UTF-8)."""
        message = self._conn.receive_now()
        if message is None:
            message = await self._conn.receive_later()
        return message if isinstance(message, bytes) else message.encode()

    async def receive_json(self) -> Any:
        """The next message, decoded as JSON. Invalid JSON raises ``json.JSONDecodeError``
        and leaves the connection open."""
        return json.loads(await self.receive())

    async def send_text(self, data: str) -> None:
        """Send a text frame to this client."""
        blocked = self._conn.send_text(data)
        if blocked is not None:
            await blocked

    async def send_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Send a binary frame to this client."""
        blocked = self._conn.send_bytes(data)
        if blocked is not None:
            await blocked

    async def send_json(self, data: Any) -> None:
        """Send ``data`` as compact JSON in a text frame."""
        await self.send_text(dumps_json(data))

    async def broadcast(self, data: str | bytes) -> None:
        """Send to every client connected to this endpoint, this one included: ``str`` as a
        text frame, ``bytes`` as a binary frame."""
        self._conn.broadcast(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: the client gets a Close frame with ``code`` once the handler
        returns (after ``on_close``'s message), broadcasts stop reaching it at once, and every
        pending or later receive or send raises ``WebSocketDisconnect``."""
        self._conn.close(code, reason)

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        return f"<WebSocket {self.id}>"


def dumps_json(data: Any) -> str:
    """Compact JSON, as ``send_json`` sends it. Raises ``TypeError`` for what JSON cannot hold."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# Robyn's name for the same object.
WebSocketAdapter = WebSocket
