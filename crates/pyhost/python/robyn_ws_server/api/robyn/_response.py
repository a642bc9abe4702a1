"""Robyn's ``Response`` and its cookies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

from robyn._headers import Headers
from robyn._streaming import Streamed

# Streamed: a StreamingResponse's generator, which the after-request middlewares pass on.
Body = Union[str, bytes, Streamed]

_SAME_SITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
# Told apart from `None`, which is a body Robyn refuses.
_UNSET: Any = object()


@dataclass
class Cookie:
    """One cookie a response sets, with its attributes (RFC 6265)."""

    value: str
    path: str | None = None
    domain: str | None = None
    max_age: int | None = None
    expires: str | None = None
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None

    @staticmethod
    def deleted() -> Cookie:
        """A cookie that tells the browser to forget it at once."""
        return Cookie("", path="/", max_age=0)

    def header_value(self, name: str) -> str:
        """The ``Set-Cookie`` value, attributes in the order Robyn (actix-web) writes them."""
        parts = [f"{name}={self.value}"]
        if self.http_only:
            parts.append("HttpOnly")
        if self.same_site is not None:
            same_site = _SAME_SITE.get(self.same_site.lower())
            if same_site is None:
                raise ValueError(f"same_site must be 'Strict', 'Lax' or 'None', got {self.same_site!r}")
            parts.append(f"SameSite={same_site}")
        # Browsers drop `SameSite=None` without `Secure`.
        if self.secure or (self.same_site is not None and self.same_site.lower() == "none"):
            parts.append("Secure")
        if self.path is not None:
            parts.append(f"Path={self.path}")
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        if self.max_age is not None:
            parts.append(f"Max-Age={int(self.max_age)}")
        if self.expires is not None:
            parts.append(f"Expires={self.expires}")
        return "; ".join(parts)


class Cookies:
    """The cookies a response sets, by name: setting a name again replaces its cookie."""

    __slots__ = ("_cookies",)

    def __init__(self) -> None:
        self._cookies: dict[str, Cookie] = {}

    def set(self, name: str, cookie: Cookie) -> None:
        self._cookies[name] = cookie

    def get(self, name: str) -> Cookie | None:
        return self._cookies.get(name)

    def remove(self, name: str) -> None:
        """Forgets the cookie here (the browser keeps it; see ``delete``)."""
        self._cookies.pop(name, None)

    def delete(self, name: str) -> None:
        """Tells the browser to forget the cookie."""
        self._cookies[name] = Cookie.deleted()

    def is_empty(self) -> bool:
        return not self._cookies

    def keys(self) -> list[str]:
        return list(self._cookies)

    def header_values(self) -> list[str]:
        """One ``Set-Cookie`` value per cookie."""
        return [cookie.header_value(name) for name, cookie in self._cookies.items()]

    def __setitem__(self, name: str, cookie: Cookie) -> None:
        self.set(name, cookie)

    def __getitem__(self, name: str) -> Cookie | None:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._cookies

    def __len__(self) -> int:
        return len(self._cookies)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._cookies))

    def __repr__(self) -> str:
        return f"Cookies({self._cookies!r})"


def _checked_body(body: Any) -> Body:
    if not isinstance(body, (str, bytes, Streamed)):
        raise ValueError(f"Could not convert specified response description to bytes: a {type(body).__name__}")
    return body


class Response:
    """What a handler may return: a status, headers and a body (``description``, or ``body``
    in the constructor), plus cookies set with ``set_cookie``."""

    __slots__ = ("_description", "_headers", "cookies", "file_path", "response_type", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Headers | Mapping[str, Any] | None = None,
        description: Body = _UNSET,
        *,
        body: Body = _UNSET,
    ) -> None:
        if description is _UNSET and body is _UNSET:
            raise TypeError("Response() missing required argument: 'description' (or its alias 'body')")
        if description is not _UNSET and body is not _UNSET:
            raise TypeError("Response() got both 'description' and 'body'; pass only one")
        self.status_code = int(status_code)
        self._headers = _as_headers(headers)
        self._description: Body = _checked_body(body if description is _UNSET else description)
        self.response_type = "text"
        self.file_path: str | None = None
        self.cookies = Cookies()

    @property
    def headers(self) -> Headers:
        return self._headers

    @headers.setter
    def headers(self, headers: Headers | Mapping[str, Any] | None) -> None:
        self._headers = _as_headers(headers)

    @property
    def description(self) -> Body:
        return self._description

    @description.setter
    def description(self, description: Body) -> None:
        self._description = _checked_body(description)

    # Robyn's preferred name in the constructor; the same value.
    body = description

    def set_cookie(
        self,
        key: str,
        value: str,
        path: str | None = None,
        domain: str | None = None,
        max_age: int | None = None,
        expires: str | None = None,
        secure: bool = False,
        http_only: bool = False,
        same_site: str | None = None,
    ) -> None:
        """Sets a cookie; a cookie of the same name set before is replaced."""
        self.cookies.set(key, Cookie(value, path, domain, max_age, expires, secure, http_only, same_site))

    def __repr__(self) -> str:
        return f"Response(status_code={self.status_code}, headers={self._headers!r}, description={self._description!r})"


def _as_headers(headers: Headers | Mapping[str, Any] | None) -> Headers:
    if headers is None:
        return Headers()
    if isinstance(headers, Headers):
        return headers
    if isinstance(headers, Mapping):
        return Headers(headers)
    raise TypeError("headers must be a Headers instance or a dict")
