"""The websocket object handed to handlers, and the exception that ends a conversation."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from robyn import _history
from robyn._headers import Headers
from robyn._query import QueryParams
from robyn._request import Identity, Request, Url
from robyn.session import HandshakeSession, SessionManager

if TYPE_CHECKING:
    from robyn._native import Connection


class WebSocketDisconnect(Exception):  # noqa: N818 (Robyn's public name)
    """The connection is over: the client closed it, vanished (1006), or the server closed it."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket disconnected with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class Client(NamedTuple):
    """Where a connection comes from: the peer's address, or the client a trusted proxy
    names (``--proxy-headers``; its port is then 0)."""

    host: str
    port: int


@dataclass(frozen=True)
class PresenceChange:
    """Users who joined or left an endpoint (``room`` is ``None``) or one of its rooms, across
    every process and host of the app, as ``on_presence`` gets them. A user joins when their
    first connection there opens, and leaves when their last one has been closed for
    ``--presence-grace`` seconds (coming back sooner is neither). robyn-ws-server only; not in Robyn 0.88.0."""

    room: str | None
    joined: list[str]
    left: list[str]


@dataclass
class HandshakeSettings:
    """What the app configured that its WebSocket routes read handshakes with (set when the
    server starts): its sessions, and the ``AuthenticationHandler`` of the route's router (or
    of the nearest router above it)."""

    sessions: SessionManager | None = None
    authentication_handler: Any = None
    # The route's place in the server's list, and whether it keeps a history (`history=N`).
    index: int = -1
    history: bool = False


_NOTHING_CONFIGURED = HandshakeSettings()


class WebSocket:
    """One client's connection. Receives and sends never block the event loop: messages
    arrive through the server's Rust side and sends go straight onto the connection's
    bounded outbound queue."""

    # Made on first use: most handlers read none of them, and every connection keeps its
    # websocket object for its whole life.
    __slots__ = ("_conn", "_headers", "_query_params", "_settings", "_user", "identity")

    def __init__(self, conn: Connection, *old_api: object, settings: HandshakeSettings = _NOTHING_CONFIGURED) -> None:
        if old_api:
            raise TypeError(_OLD_API)
        self._conn = conn
        self._query_params: QueryParams | None = None
        self._headers: Headers | None = None
        self._settings = settings
        # Who `authenticate()` found the client to be.
        self.identity: Identity | None = None
        self._user: str | None = None

    @property
    def id(self) -> str:
        """The connection's UUID4."""
        return self._conn.id

    @property
    def headers(self) -> Headers:
        """The opening handshake's headers (case-insensitive names; ``get_all`` for repeats).
        robyn-ws-server only; not in Robyn 0.88.0."""
        if self._headers is None:
            self._headers = Headers(self._conn.headers)
        return self._headers

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the client sent with its handshake, by name. robyn-ws-server only; not in Robyn 0.88.0."""
        cookies: dict[str, str] = {}
        for header in self.headers.get_all("cookie"):
            for pair in header.split(";"):
                name, separator, value = pair.strip().partition("=")
                if separator and name:
                    cookies[name] = value.strip().strip('"')
        return cookies

    @property
    def session(self) -> HandshakeSession | None:
        """The session the handshake's cookie carries (``configure_sessions``; else ``None``),
        read-only: the handshake's answer sets no cookie. Read from the cookie on each use, so
        keep what you need. robyn-ws-server only; not in Robyn 0.88.0."""
        sessions = self._settings.sessions
        return None if sessions is None else HandshakeSession(sessions.load(self))

    @property
    def request(self) -> Request:
        """The opening handshake as a Robyn ``Request`` (``GET``, url, headers, query and path
        parameters, client address, session), for code written for HTTP requests.
        robyn-ws-server only; not in Robyn 0.88.0."""
        return Request(
            query_params=self.query_params,
            headers=self.headers,
            path_params=self.path_params,
            method="GET",
            url=self.url,
            ip_addr=self.client.host,
            session=self.session,
        )

    async def authenticate(self) -> Identity | None:
        """Runs the app's ``AuthenticationHandler`` (``configure_authentication``, sync or
        async) on the handshake, as for an ``auth_required`` route, and keeps its answer as
        ``websocket.identity``: an ``Identity``, or ``None`` when it refuses the client (then
        ``on_connect`` refuses too, by returning a ``Response``). robyn-ws-server only; not in Robyn 0.88.0."""
        handler = self._settings.authentication_handler
        if handler is None:
            raise RuntimeError(
                "websocket.authenticate() needs an authentication handler: call "
                "app.configure_authentication(handler) on the app or the route's router"
            )
        answer = handler.authenticate(self.request)
        identity: Identity | None = await answer if inspect.isawaitable(answer) else answer
        self.identity = identity
        return identity

    @property
    def client(self) -> Client:
        """Where the connection comes from: ``(host, port)``, with ``.host`` and ``.port``.
        robyn-ws-server only; not in Robyn 0.88.0."""
        return Client(*self._conn.client)

    @property
    def path(self) -> str:
        """The path the client connected to, e.g. ``/user/42``. robyn-ws-server only; not in Robyn 0.88.0."""
        return self._conn.path

    @property
    def path_params(self) -> dict[str, str]:
        """The route's parameters: ``{"id": "42"}`` for ``/user/:id``. robyn-ws-server only; not in Robyn 0.88.0."""
        return dict(self._conn.path_params)

    @property
    def url(self) -> Url:
        """Robyn's ``Url``: scheme (``ws``, or ``wss`` behind a trusted TLS proxy), host (the
        Host header) and path. robyn-ws-server only; not in Robyn 0.88.0."""
        return Url(scheme=self._conn.scheme, host=self.headers.get("host") or "", path=self.path)

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol chosen from the client's offers (the route lists those it speaks).
        robyn-ws-server only; not in Robyn 0.88.0."""
        return self._conn.subprotocol

    @property
    def rooms(self) -> list[str]:
        """The rooms of this endpoint the connection is in. robyn-ws-server only; not in Robyn 0.88.0."""
        return self._conn.rooms()

    def join(self, room: str) -> None:
        """Join a room of this endpoint: ``broadcast(data, room=room)`` reaches it from now on,
        until ``leave(room)`` or the end of the connection. robyn-ws-server only; not in Robyn 0.88.0."""
        self._conn.join_room(room)

    def leave(self, room: str) -> None:
        """Leave a room of this endpoint. robyn-ws-server only; not in Robyn 0.88.0."""
        self._conn.leave_room(room)

    @property
    def user(self) -> str | None:
        """The user ``identify`` named, or ``None``. robyn-ws-server only; not in Robyn 0.88.0."""
        return self._user

    def identify(self, user: str) -> None:
        """Says whose connection this is (a name the app chooses, typically after checking a
        cookie or token; 1 to 256 bytes of UTF-8): from the moment the connection is accepted
        until it ends, it counts in ``presence()`` and ``send_to_user(user, ...)`` reaches it,
        from any process or host. Called again, the connection becomes the new user's.
        robyn-ws-server only; not in Robyn 0.88.0."""
        if not isinstance(user, str):
            raise TypeError(f"identify() takes the user as a str, got {type(user).__name__}")
        self._conn.identify(user)
        self._user = user

    async def send_to_user(self, user: str, data: str | bytes) -> int:
        """Send to every open connection of ``user`` (``identify``), on any endpoint, process
        or host; returns how many connections it went to. robyn-ws-server only; not in Robyn 0.88.0."""
        return _native_send_to_user(user, data)

    async def presence(self, room: str | None = None) -> dict[str, int]:
        """The users present on this endpoint (or in one of its rooms), across every process
        and host, with their open connections; a user whose last connection closed less than
        ``--presence-grace`` seconds ago is listed with 0. robyn-ws-server only; not in Robyn 0.88.0."""
        return dict(self._conn.presence(room))

    async def send_to(self, connection_id: str, data: str | bytes) -> bool:
        """Send to one open connection by its id (any endpoint): True when queued, False when
        no such connection is open. What becomes of the recipient never raises here.
        robyn-ws-server only; not in Robyn 0.88.0."""
        return _native_send_to(connection_id, data)

    @property
    def query_params(self) -> QueryParams:
        """The query parameters of the URL the client connected to."""
        if self._query_params is None:
            self._query_params = QueryParams(self._conn.query)
        return self._query_params

    async def receive(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one.
        robyn-ws-server only; not in Robyn 0.88.0."""
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

    async def broadcast(
        self, data: str | bytes | Callable[[int], str | bytes], room: str | None = None, exclude_self: bool = False
    ) -> int | None:
        """Send to every client connected to this endpoint (or, with ``room``, to that room's
        members), this one included unless ``exclude_self``: ``str`` as a text frame, ``bytes``
        as a binary frame. Nobody waits on a slow client: it is closed with 1013.

        On a route with a history (``@app.websocket(path, history=N)``) the broadcast is kept
        and gets an offset, which it returns; ``data`` may then be a function, called once
        with the offset, that returns the message (to put the offset into it). Without a
        history it returns ``None``.
        ``room``, ``exclude_self``, the offset and the function are robyn-ws-server only; not in Robyn 0.88.0."""
        if self._settings.history:
            return await _history.broadcast(self._settings.index, data, room, self.id if exclude_self else None)
        self._conn.broadcast(data, room, exclude_self)  # type: ignore[arg-type]  # a function: refused there, saying why
        return None

    async def missed(self, room: str | None = None, *, since: int, epoch: str) -> list[str | bytes]:
        """What was broadcast to this endpoint (or ``room``) after offset ``since`` of
        ``epoch``, in order, from the route's history; raises ``HistoryGap`` when that cannot
        be told (the history began again, or no longer keeps all of it), never a partial
        answer. See ``recover`` to send them to this client in order with what follows.
        robyn-ws-server only; not in Robyn 0.88.0."""
        return await _history.missed(self._settings.index, room, since, epoch)

    async def recover(self, room: str | None = None, *, since: int, epoch: str) -> int:
        """Catches this client up: joins ``room`` (or, with none, starts the endpoint's
        broadcasts, so call it from ``on_connect``) and queues what was broadcast there after
        offset ``since`` of ``epoch``, then what is broadcast meanwhile, in offset order and
        each once. Returns how many missed messages it queued; raises ``HistoryGap`` when they
        cannot be told (the room is joined all the same, so the client gets what follows once
        it has reloaded its state). robyn-ws-server only; not in Robyn 0.88.0."""
        _history.check_position(since, epoch)
        return await _history.recovered(self._conn.recover(room, epoch, since))

    async def position(self, room: str | None = None) -> _history.HistoryPosition:
        """Where the history of this endpoint (or ``room``) stands: its epoch and last offset,
        for a client that starts from now. robyn-ws-server only; not in Robyn 0.88.0."""
        return await _history.position(self._settings.index, room)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: the client gets a Close frame with ``code`` once the handler
        returns (after ``on_close``'s message), broadcasts stop reaching it at once, and every
        pending or later receive or send raises ``WebSocketDisconnect``. ``code`` and ``reason``
        are robyn-ws-server only; not in Robyn 0.88.0 (whose ``close()`` takes none)."""
        self._conn.close(code, reason)

    async def iter_text(self) -> AsyncIterator[str]:
        """``async for message in websocket.iter_text()``: every message as text (a binary
        frame decoded as UTF-8) until the client leaves, for handlers that format what they
        receive (``async for`` over the websocket itself gives ``str | bytes``).
        robyn-ws-server only; not in Robyn 0.88.0."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            return

    def __aiter__(self) -> WebSocket:
        """``async for message in websocket``: every message until the client leaves.
        robyn-ws-server only; not in Robyn 0.88.0."""
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        return f"<WebSocket {self.id}>"


def dumps_json(data: Any) -> str:
    """Compact JSON, as ``send_json`` sends it. Raises ``TypeError`` naming what JSON cannot
    hold (and where, inside a container)."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as error:
        what = _unjsonable(data) or f"this {type(data).__name__}"
        raise TypeError(f"send_json() cannot send {what}: {error}") from None


def _unjsonable(data: Any, where: str = "the value") -> str:
    """Names the first part of `data` JSON cannot hold: `a set at the value['tags']`."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{_a(type(key).__name__)} key in {where}"
            found = _unjsonable(value, f"{where}[{key!r}]")
            if found:
                return found
        return ""
    if isinstance(data, (list, tuple)):
        for index, item in enumerate(data):
            found = _unjsonable(item, f"{where}[{index}]")
            if found:
                return found
        return ""
    if data is None or isinstance(data, (str, int, float, bool)):
        return ""
    return f"{_a(type(data).__name__)} at {where}"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _native_send_to(connection_id: str, data: str | bytes) -> bool:
    from robyn import _native  # only inside the running server

    return _native.send_to(connection_id, data)


def _native_send_to_user(user: str, data: str | bytes) -> int:
    from robyn import _native  # only inside the running server

    return _native.send_to_user(user, data)


_OLD_API = (
    "WebSocket(app, path) is Robyn's older WebSocket API, which this server does not serve: "
    'write `@app.websocket("/path")` above `async def handler(websocket): ...` (see the README)'
)


# Robyn's name for the same object.
WebSocketAdapter = WebSocket
