"""Robyn's ``ALLOW_CORS(app, origins, headers=None)``: a global before-request middleware that
refuses other origins and answers preflight requests, and CORS headers on every response."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robyn._request import Request
from robyn._response import Response

if TYPE_CHECKING:
    from robyn._http_routing import HttpRouting

_METHODS = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
_HEADERS = "Content-Type, Authorization"


def ALLOW_CORS(  # noqa: N802 (Robyn's public name)
    app: HttpRouting, origins: list[str] | str, headers: list[str] | str | None = None
) -> None:
    allowed = [origins] if isinstance(origins, str) else list(origins)
    if isinstance(headers, list):
        headers = ", ".join(sorted({"Content-Type", "Authorization", *headers}))
    allowed_headers = headers or _HEADERS

    @app.before_request()
    def cors_middleware(request: Request) -> Request | Response:
        origin = request.headers.get("Origin")
        if origin and "*" not in allowed and origin not in allowed:
            return Response(403, {}, "")
        if request.method == "OPTIONS":
            return Response(
                204,
                {
                    "Access-Control-Allow-Origin": origin or (allowed[0] if allowed else "*"),
                    "Access-Control-Allow-Methods": _METHODS,
                    "Access-Control-Allow-Headers": allowed_headers,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Max-Age": "3600",
                },
                "",
            )
        return request

    app.set_response_header("Access-Control-Allow-Origin", allowed[0] if len(allowed) == 1 else "*")
    app.set_response_header("Access-Control-Allow-Methods", _METHODS)
    app.set_response_header("Access-Control-Allow-Headers", allowed_headers)
    app.set_response_header("Access-Control-Allow-Credentials", "true")
