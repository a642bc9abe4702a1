"""Robyn's ``ALLOW_CORS(app, origins, headers=None)``: a global before-request middleware that
refuses other origins and answers preflight requests, and CORS headers on every response.

With one origin, its name goes out on every response, as in Robyn. With several (or ``*``),
Robyn sends ``*``, which a browser refuses for a request with credentials (and
``Access-Control-Allow-Credentials: true`` is sent): here the request's own origin goes back
when it is allowed, with ``Vary: Origin`` so that caches keep one answer per origin. The
app's WebSocket routes take handshakes from the same origins (unless ``--allowed-origin``
says otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from robyn._request import Request
from robyn._response import Response

if TYPE_CHECKING:
    from robyn._http_routing import HttpRouting

_METHODS = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
_HEADERS = "Content-Type, Authorization"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"


def ALLOW_CORS(  # noqa: N802 (Robyn's public name)
    app: HttpRouting, origins: list[str] | str, headers: list[str] | str | None = None
) -> None:
    allowed = [origins] if isinstance(origins, str) else list(origins)
    any_origin = "*" in allowed
    if isinstance(headers, list):
        headers = ", ".join(sorted({"Content-Type", "Authorization", *headers}))
    allowed_headers = headers or _HEADERS
    app.cors_origins.extend(allowed)

    @app.before_request()
    def cors_middleware(request: Request) -> Request | Response:
        origin = request.headers.get("Origin")
        if origin and not any_origin and origin not in allowed:
            return Response(403, {"Vary": "Origin"}, "")
        if request.method == "OPTIONS":
            return Response(
                204,
                {
                    ALLOW_ORIGIN: origin or (allowed[0] if allowed else "*"),
                    "Access-Control-Allow-Methods": _METHODS,
                    "Access-Control-Allow-Headers": allowed_headers,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Max-Age": "3600",
                    "Vary": "Origin",
                },
                "",
            )
        return request

    if len(allowed) == 1 and not any_origin:
        app.set_response_header(ALLOW_ORIGIN, allowed[0])
    else:

        @app.after_request()
        def cors_origin(request: Request, response: Response) -> Response:
            origin = request.headers.get("Origin")
            if origin and (any_origin or origin in allowed) and not response.headers.contains(ALLOW_ORIGIN):
                response.headers.set(ALLOW_ORIGIN, origin)
            if not response.headers.contains("Vary"):
                response.headers.set("Vary", "Origin")
            return response

    app.set_response_header("Access-Control-Allow-Methods", _METHODS)
    app.set_response_header("Access-Control-Allow-Headers", allowed_headers)
    app.set_response_header("Access-Control-Allow-Credentials", "true")
