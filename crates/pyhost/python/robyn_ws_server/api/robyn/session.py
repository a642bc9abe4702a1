"""``robyn.session``: signed-cookie sessions (``app.configure_sessions(secret_key=...)``).

The session's data lives in the client's cookie, as JSON signed with HMAC-SHA256: the client
can read it but not change it, so it must hold nothing secret. An HTTP handler reads and
writes ``request.session``; the cookie is written back only when the session changed. A
WebSocket's ``on_connect`` reads ``websocket.session`` from its handshake's cookie (read-only:
the handshake's answer carries no cookie).

The cookie's format is Robyn 0.88.0's (``<base64url payload>.<base64url signature>``, the key
derived from the secret as Robyn derives it), so an app moved from Robyn with the same
``secret_key`` keeps its users' sessions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, NoReturn, Protocol

from robyn._headers import Headers
from robyn._response import Cookie, Response

_log = logging.getLogger("robyn.session")

# Browsers keep cookies of up to about 4 KB (name and attributes included) and silently drop
# larger ones.
_LARGEST_COOKIE = 4093
_SALT = b"robyn.session"
_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}

__all__ = ["Session", "SessionManager"]


class _HasHeaders(Protocol):
    @property
    def headers(self) -> Headers: ...


class Session(MutableMapping[str, Any]):
    """One client's session: a dict of JSON values. It counts as changed when a key is set or
    deleted, when a value inside it was changed in place (``session["cart"].append(...)``), or
    when ``modified`` is set to ``True`` by hand."""

    __slots__ = ("_data", "_loaded_as", "modified")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data) if data else {}
        self.modified = False
        # What the data was when loaded, to notice changes made inside its values.
        self._loaded_as = _canonical(self._data)

    def is_modified(self) -> bool:
        return self.modified or _canonical(self._data) != self._loaded_as

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def clear(self) -> None:
        if self._data:
            self.modified = True
            self._data.clear()

    def __repr__(self) -> str:
        return f"Session({self._data!r})"


class HandshakeSession(Session):
    """The session a WebSocket's opening handshake carried: readable, never written."""

    __slots__ = ()

    def _refuse(self, *_args: Any) -> NoReturn:
        raise TypeError(
            "a WebSocket's session is read-only: the handshake's answer carries no cookie; "
            "change the session in an HTTP handler (the page's login, say)"
        )

    __setitem__ = __delitem__ = _refuse

    def clear(self) -> None:
        self._refuse()


def _canonical(data: dict[str, Any]) -> str | None:
    """The data as comparable text (``None``: not JSON, so saving it will say why)."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionManager:
    """Reads a session from a request's cookie and writes a changed one onto the response:
    what ``configure_sessions`` sets up, usable by hand too (``load``, ``save``)."""

    def __init__(
        self,
        secret_key: str,
        *,
        cookie_name: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        http_only: bool = True,
        same_site: str = "Lax",
    ) -> None:
        if not secret_key:
            raise ValueError("configure_sessions() needs a secret_key: a long random string kept out of the code")
        normalized = _SAME_SITE.get(str(same_site).strip().lower())
        if normalized is None:
            raise ValueError(f"same_site must be 'Strict', 'Lax' or 'None', got {same_site!r}")
        if normalized == "None" and not secure:
            raise ValueError("same_site='None' needs secure=True: browsers drop SameSite=None cookies without Secure")
        self._key = hashlib.sha256(_SALT + secret_key.encode()).digest()
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.path = path
        self.domain = domain
        self.secure = secure
        self.http_only = http_only
        self.same_site = normalized

    # -- The cookie's value ----------------------------------------------------------------

    def _signature(self, value: str) -> str:
        return _encode(hmac.new(self._key, value.encode("ascii"), hashlib.sha256).digest())

    def dumps(self, session: Mapping[str, Any]) -> str:
        """The signed cookie value holding ``session`` (and when it expires)."""
        envelope: dict[str, Any] = {"d": dict(session)}
        if self.max_age is not None:
            envelope["exp"] = int(time.time()) + self.max_age
        try:
            payload = json.dumps(envelope, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise TypeError(f"a session holds only JSON values (it goes into a cookie as JSON): {error}") from None
        value = _encode(payload.encode())
        return f"{value}.{self._signature(value)}"

    def loads(self, cookie: str) -> Session:
        """The session a cookie value holds; empty when it was not signed with this key (changed
        by the client, say), has expired, or is not a session at all."""
        value, dot, signature = cookie.rpartition(".")
        if not dot or not hmac.compare_digest(self._signature(value), signature):
            return Session()
        try:
            envelope = json.loads(_decode(value))
        except (ValueError, binascii.Error):
            return Session()
        if not isinstance(envelope, dict) or not isinstance(envelope.get("d"), dict):
            return Session()
        expires = envelope.get("exp")
        if expires is not None and not _in_future(expires):
            return Session()
        return Session(envelope["d"])

    # -- Requests and responses ------------------------------------------------------------

    def load(self, request: _HasHeaders) -> Session:
        """The session of a request (or of a WebSocket's handshake), from its cookie."""
        cookie = cookie_value(request.headers, self.cookie_name)
        return Session() if cookie is None else self.loads(cookie)

    def save(self, session: Mapping[str, Any], response: Response) -> None:
        """Sets the cookie on ``response`` if the session changed (an emptied session deletes
        it); a plain mapping (assigned to ``request.session`` by hand) is always written."""
        cookie = self.cookie(session)
        if cookie is not None:
            response.cookies.set(self.cookie_name, cookie)

    def set_cookie_header(self, session: Mapping[str, Any]) -> str | None:
        """``save``'s cookie as a ``Set-Cookie`` value, or ``None`` when nothing changed."""
        cookie = self.cookie(session)
        return None if cookie is None else cookie.header_value(self.cookie_name)

    def cookie(self, session: Mapping[str, Any]) -> Cookie | None:
        """The cookie that carries a changed session, or ``None`` when it did not change."""
        if isinstance(session, Session) and not session.is_modified():
            return None
        if not session:
            return self._cookie("", max_age=0)
        value = self.dumps(session)
        if len(value) > _LARGEST_COOKIE:
            _log.warning(
                "the session cookie is %d bytes; browsers drop cookies over about 4 KB, and with it the "
                "session: keep less in the session (an id, with the data on the server)",
                len(value),
            )
        return self._cookie(value, self.max_age)

    def _cookie(self, value: str, max_age: int | None) -> Cookie:
        return Cookie(
            value,
            path=self.path,
            domain=self.domain,
            max_age=max_age,
            secure=self.secure,
            http_only=self.http_only,
            same_site=self.same_site,
        )


def _in_future(expires: Any) -> bool:
    # JSON allows NaN and Infinity, which no comparison would expire.
    if isinstance(expires, bool) or not isinstance(expires, (int, float)) or not math.isfinite(expires):
        return False
    return bool(expires >= time.time())


def cookie_value(headers: Headers, name: str) -> str | None:
    """The value of cookie ``name`` in a request's ``Cookie`` header(s), if sent."""
    for header in headers.get_all("cookie"):
        for pair in header.split(";"):
            key, separator, value = pair.partition("=")
            if separator and key.strip() == name:
                return value.strip()
    return None
