"""Robyn's ``Request`` (with its ``Url`` and ``Identity``). A request made by the server reads
what it holds from the native exchange only when asked: a handler that never looks at the
headers costs no ``Headers``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from robyn._headers import Headers
from robyn._query import QueryParams
from robyn.session import SessionManager

if TYPE_CHECKING:
    from robyn._native import Exchange


@dataclass
class Url:
    """Where a request went: ``scheme`` (``http``, ``https``; ``ws``, ``wss`` for a websocket),
    ``host`` (the Host header, port included) and ``path`` (without a trailing slash)."""

    scheme: str = "http"
    host: str = ""
    path: str = "/"


@dataclass
class Identity:
    """Who an ``AuthenticationHandler`` found the client to be."""

    claims: dict[str, str] = field(default_factory=dict)


# Not read from the exchange yet.
_LATER: Any = object()


class Request:
    """One HTTP request, as a handler and the middlewares see it. ``body`` is ``str`` when it
    is UTF-8, else ``bytes`` (``""`` when empty); ``json()`` parses it."""

    __slots__ = (
        "_body",
        "_exchange",
        "_extra_headers",
        "_files",
        "_form_data",
        "_headers",
        "_ip_addr",
        "_path_params",
        "_query_params",
        "_session",
        "_url",
        "identity",
        "method",
    )

    def __init__(
        self,
        query_params: QueryParams | None = None,
        headers: Headers | None = None,
        path_params: dict[str, str] | None = None,
        body: str | bytes = "",
        method: str = "GET",
        url: Url | None = None,
        form_data: dict[str, str] | None = None,
        files: dict[str, bytes] | None = None,
        identity: Identity | None = None,
        ip_addr: str | None = None,
        session: Any = None,
    ) -> None:
        """Robyn's constructor, for requests made by hand (tests, say)."""
        self._exchange: Exchange | None = None
        self._extra_headers: Headers | None = None
        self._query_params = query_params if query_params is not None else QueryParams()
        self._headers = headers if headers is not None else Headers()
        self._path_params = path_params if path_params is not None else {}
        self._body: str | bytes = _checked_body(body)
        self.method = method
        self._url = url if url is not None else Url()
        self._form_data = form_data if form_data is not None else {}
        self._files: Any = files if files is not None else {}
        self.identity = identity
        self._ip_addr = ip_addr
        self._session = session

    @classmethod
    def from_exchange(
        cls, exchange: Exchange, extra_headers: Headers | None, sessions: SessionManager | None = None
    ) -> Request:
        """The request the server received; ``extra_headers`` (the app's global request
        headers) come after the client's; ``sessions``: the app's, if it configured them."""
        request = cls.__new__(cls)
        request._exchange = exchange
        request._extra_headers = extra_headers
        request._query_params = request._headers = request._path_params = _LATER
        request._body = request._url = request._form_data = request._files = _LATER
        request.method = exchange.method
        request._ip_addr = None
        request.identity = None
        # The manager until the session is first read: most requests never read it.
        request._session = sessions
        return request

    @property
    def session(self) -> Any:
        """The client's ``Session`` when the app called ``configure_sessions``, else ``None``."""
        if isinstance(self._session, SessionManager):
            self._session = self._session.load(self)
        return self._session

    @session.setter
    def session(self, value: Any) -> None:
        self._session = value

    def opened_session(self) -> Any:
        """The session if something read or set it, else ``None`` (nothing to save)."""
        return None if isinstance(self._session, SessionManager) else self._session

    @property
    def ip_addr(self) -> str | None:
        exchange = self._exchange
        if exchange is not None:
            return exchange.client[0]
        return self._ip_addr

    @property
    def query_params(self) -> QueryParams:
        if self._query_params is _LATER:
            self._query_params = _parse_query(self._from_exchange().query_string)
        result: QueryParams = self._query_params
        return result

    @query_params.setter
    def query_params(self, value: QueryParams) -> None:
        self._query_params = value

    @property
    def headers(self) -> Headers:
        if self._headers is _LATER:
            headers = Headers.from_pairs(self._from_exchange().headers)
            if self._extra_headers is not None:
                headers.extend(self._extra_headers)
            self._headers = headers
        result: Headers = self._headers
        return result

    @headers.setter
    def headers(self, value: Headers) -> None:
        self._headers = value

    @property
    def path_params(self) -> dict[str, str]:
        if self._path_params is _LATER:
            self._path_params = dict(self._from_exchange().path_params)
        result: dict[str, str] = self._path_params
        return result

    @path_params.setter
    def path_params(self, value: dict[str, str]) -> None:
        self._path_params = value

    @property
    def body(self) -> str | bytes:
        if self._body is _LATER:
            raw = self._from_exchange().body
            try:
                self._body = raw.decode()
            except UnicodeDecodeError:
                self._body = raw
        result: str | bytes = self._body
        return result

    @body.setter
    def body(self, value: str | bytes) -> None:
        self._body = _checked_body(value)

    @property
    def url(self) -> Url:
        if self._url is _LATER:
            exchange = self._from_exchange()
            path = exchange.path
            if len(path) > 1 and path.endswith("/"):
                path = path[:-1]
            self._url = Url(exchange.scheme, exchange.host, path)
        result: Url = self._url
        return result

    @url.setter
    def url(self, value: Url) -> None:
        self._url = value

    @property
    def files(self) -> dict[str, bytes]:
        """A multipart/form-data body's files, by file name (the last of a repeated one), as
        Robyn keys them; ``{}`` otherwise."""
        if self._files is _LATER:
            parts = self._from_exchange().form_files
            self._files = dict(parts) if parts is not None else {}
        result: dict[str, bytes] = self._files
        return result

    @files.setter
    def files(self, value: dict[str, bytes]) -> None:
        self._files = value

    @property
    def form_data(self) -> dict[str, str]:
        """A form's text fields, by name (the last value of a repeated one): a URL-encoded
        body's, or a multipart/form-data body's parts without a file name; ``{}`` otherwise."""
        if self._form_data is _LATER:
            self._form_data = self._parse_form()
        result: dict[str, str] = self._form_data
        return result

    @form_data.setter
    def form_data(self, value: dict[str, str]) -> None:
        self._form_data = value

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` when it is not JSON."""
        body = self.body
        try:
            return json.loads(body)
        except RecursionError:
            raise ValueError("Invalid JSON: nested too deeply") from None
        except ValueError as error:
            raise ValueError(f"Invalid JSON: {error}") from None

    def _parse_form(self) -> dict[str, str]:
        if self._exchange is not None:
            fields = self._exchange.form_fields
            if fields is not None:
                return dict(fields)
        content_type = self.headers.get("content-type") or ""
        if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
            return {}
        body = self.body
        text = body if isinstance(body, str) else body.decode("latin-1")
        return dict(parse_qsl(text, keep_blank_values=True))

    def _from_exchange(self) -> Exchange:
        exchange = self._exchange
        if exchange is None:  # only a request made by the server has fields read later
            raise RuntimeError("this request has no exchange to read from")
        return exchange

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url.path}>"


def _parse_query(query_string: str) -> QueryParams:
    """Percent-decoded pairs; a key without ``=`` has the empty value."""
    if not query_string:
        return QueryParams()
    return QueryParams(parse_qsl(query_string, keep_blank_values=True))


def _checked_body(body: Any) -> str | bytes:
    if not isinstance(body, (str, bytes)):
        raise ValueError(f"Could not convert specified body to bytes: a {type(body).__name__}")
    return body
