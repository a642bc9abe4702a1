"""The benchmark's HTTP app on Starlette (run by uvicorn and by granian): the same four routes
as bench/apps/robyn_http_app.py. The middlewares are pure ASGI middlewares on the one route
(Starlette's documented fast kind; `BaseHTTPMiddleware` would cost more): the first adds a
request header before the endpoint runs, the second a response header after it."""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def plaintext(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


async def json_by_id(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "status": "ok"})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


async def behind_middleware(request: Request) -> PlainTextResponse:
    # What the before middleware set, so a client sees both middlewares ran.
    return PlainTextResponse(request.headers["x-before"])


class Before:
    """Sets a request header before the endpoint runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["headers"] = [*scope["headers"], (b"x-before", b"before")]
        await self.app(scope, receive, send)


class After:
    """Sets a response header on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-after", b"after")]
            await send(message)

        await self.app(scope, receive, send_with_header)


app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json/{id}", json_by_id),
        Route("/echo", echo, methods=["POST"]),
        Route("/middleware", behind_middleware, middleware=[Middleware(Before), Middleware(After)]),
    ]
)
