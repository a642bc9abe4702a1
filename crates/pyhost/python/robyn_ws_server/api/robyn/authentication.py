"""``robyn.authentication``: ``app.configure_authentication(handler)`` and routes registered
with ``auth_required=True``. Before such a route's handler runs, the handler's
``authenticate(request)`` (sync or async) names the client's ``Identity`` (then
``request.identity``), or answers ``None`` and the client gets ``unauthorized_response``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from robyn._headers import Headers
from robyn._request import Identity, Request
from robyn._response import Response


class AuthenticationNotConfiguredError(Exception):
    """A route requires authentication and no router above it configured a handler."""

    def __str__(self) -> str:
        return "Authentication is not configured. Use app.configure_authentication() to configure it."


class TokenGetter(ABC):
    """Finds the (still encoded) token in a request."""

    @property
    def scheme(self) -> str:
        return self.__class__.__name__

    @classmethod
    @abstractmethod
    def get_token(cls, request: Request) -> str | None:
        raise NotImplementedError

    @classmethod
    @abstractmethod
    def set_token(cls, request: Request, token: str) -> None:
        raise NotImplementedError


class BearerGetter(TokenGetter):
    """The token of an ``Authorization: Bearer <token>`` header."""

    @classmethod
    def get_token(cls, request: Request) -> str | None:
        header = request.headers.get("authorization")
        if not header or not header.startswith("Bearer "):
            return None
        return header[len("Bearer ") :]

    @classmethod
    def set_token(cls, request: Request, token: str) -> None:
        request.headers["Authorization"] = f"Bearer {token}"


class AuthenticationHandler(ABC):
    """Decides who the client is; ``authenticate`` may be ``async``."""

    def __init__(self, token_getter: TokenGetter) -> None:
        self.token_getter = token_getter

    @property
    def unauthorized_response(self) -> Response:
        return Response(401, Headers({"WWW-Authenticate": self.token_getter.scheme}), "Unauthorized")

    @abstractmethod
    def authenticate(self, request: Request) -> Any:
        """The client's ``Identity``, or ``None`` to refuse the request (or a coroutine
        answering one of them)."""
        raise NotImplementedError


__all__ = ["AuthenticationHandler", "AuthenticationNotConfiguredError", "BearerGetter", "Identity", "TokenGetter"]
