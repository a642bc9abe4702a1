"""Registering HTTP routes (robyn/_http_routing.py) and what the server is told at start-up
(robyn/_http_service.py): methods and paths as Robyn writes them, SubRouter prefixes that add
up, static folders, global headers, authentication, CORS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from robyn import ALLOW_CORS, Request, Response, Robyn, SubRouter
from robyn._http_service import HttpService, covers
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity
from robyn.robyn import HttpMethod

from .http_exchange import Client


def app() -> Robyn:
    return Robyn(__file__)


def routes(server: Robyn) -> list[tuple[str, str, bool]]:
    return [(route.method, pattern, route.const) for route, pattern in HttpService(server).routes]


def test_every_method_decorator_and_add_route() -> None:
    server = app()
    for method in ("get", "post", "put", "delete", "patch", "head", "options", "connect", "trace"):
        getattr(server, method)(f"/{method}")(lambda: "x")
    server.add_route("GET", "/by-name", lambda: "x")
    server.add_route(HttpMethod.POST, "/by-enum", lambda: "x", is_const=True)
    assert routes(server)[-3:] == [("TRACE", "/trace", False), ("GET", "/by-name", False), ("POST", "/by-enum", True)]
    with pytest.raises(ValueError, match="unknown HTTP method"):
        server.add_route("FETCH", "/x", lambda: "x")


def test_a_const_route_is_kept_only_without_middlewares() -> None:
    server = app()
    server.get("/plain", const=True)(lambda: "kept")
    server.get("/guarded", const=True, auth_required=True)(lambda: "checked each time")
    server.before_request("/checked")(lambda request: request)
    server.get("/checked", const=True)(lambda: "checked each time")
    assert HttpService(server).table == [
        ("GET", "/plain", True),
        ("GET", "/guarded", False),
        ("GET", "/checked", False),
    ]


def test_decorators_return_the_function_itself_and_stack() -> None:
    server = app()

    @server.get("/build")
    @server.post("/build")
    async def build(request: Request) -> str:
        return "built"

    assert build.__name__ == "build"
    assert routes(server) == [("POST", "/build", False), ("GET", "/build", False)]


def test_openapi_options_are_accepted_and_kept() -> None:
    server = app()
    server.get("/a", const=True, openapi_name="A", openapi_tags=["t"], deprecated=True, include_in_schema=False)(
        lambda: "a"
    )
    server.post("/b", status_code=201, responses={404: "missing"}, response_model=dict)(lambda: "b")
    first, second = (route for route, _ in HttpService(server).routes)
    assert first.const and first.openapi["tags"] == ["t"] and first.openapi["deprecated"] is True
    assert second.status_code == 201 and second.openapi["responses"] == {404: "missing"}


@pytest.mark.parametrize(
    ("written", "served"), [("/", "/"), ("", None), ("items/", "/items"), ("/items/:id/", "/items/:id")]
)
def test_paths_are_written_as_robyn_writes_them(written: str, served: str | None) -> None:
    server = app()
    if served is None:
        with pytest.raises(ValueError, match="Endpoint cannot be blank"):
            server.get(written)(lambda: "x")
        return
    server.get(written)(lambda: "x")
    assert routes(server) == [("GET", served, False)]


def test_subrouter_prefixes_add_up_whatever_the_order_of_inclusion() -> None:
    server = app()
    outer = SubRouter(prefix="/sub_router")
    inner = SubRouter("/nested")
    server.include_router(outer)  # before `inner` is included into it: still counts
    outer.include_router(inner)
    outer.get("/foo")(lambda: "foo")
    outer.get("/")(lambda: "outer root")
    inner.get("/foo")(lambda: "nested foo")
    inner.add_route("GET", "/added", lambda: "added")
    assert routes(server) == [
        ("GET", "/sub_router/foo", False),
        ("GET", "/sub_router", False),
        ("GET", "/sub_router/nested/foo", False),
        ("GET", "/sub_router/nested/added", False),
    ]


def test_robyns_older_subrouter_signature() -> None:
    assert SubRouter(__file__, prefix="/old")._own_prefix() == "/old"
    assert SubRouter(__file__, "/positional")._own_prefix() == "/positional"
    assert SubRouter(__name__)._own_prefix() == ""
    assert SubRouter("/", tags=["x"])._own_prefix() == ""


async def test_a_subrouters_middlewares_as_in_robyn() -> None:
    server = app()
    sub = SubRouter(prefix="/sub")

    @sub.after_request()  # global: every route of the app
    def everywhere(response: Response) -> Response:
        response.headers.set("from-sub", "yes")
        return response

    @sub.before_request("/only")  # the router's own path, under its prefix
    def only(request: Request) -> Response:
        return Response(418, {}, "teapot")

    sub.get("/only")(lambda: "never")
    server.get("/app")(lambda: "app")
    server.include_router(sub)
    client = Client(server)
    assert (await client.get("/app")).header("from-sub") == "yes"
    only_answer = await client.get("/sub/only")
    assert (only_answer.status, only_answer.text) == (418, "teapot")


async def test_a_method_and_path_registered_twice_is_listed_twice_and_the_last_serves() -> None:
    server = app()
    server.get("/twice")(lambda: "first")
    server.get("/twice")(lambda: "second")
    client = Client(server)
    assert [pattern for _, pattern in client.service.routes] == ["/twice", "/twice"]
    assert (await client.get("/twice")).text == "second"


def test_static_folders_headers_and_exclusions(tmp_path: Path) -> None:
    server = app()
    sub = SubRouter(prefix="/sub")
    server.serve_directory("/static", str(tmp_path), index_file="index.html")
    sub.serve_directory("/files", os.path.relpath(tmp_path), show_files_listing=True)
    server.include_router(sub)
    server.set_response_header("server", "robyn")
    server.add_response_header("x-many", "1")
    server.add_response_header("x-many", "2")
    server.exclude_response_headers_for(["/docs"])
    service = HttpService(server)
    assert service.static_mounts == [
        ("/static", str(tmp_path), "index.html", False),
        ("/sub/files", str(tmp_path), None, True),
    ]
    assert service.response_headers == [("server", "robyn"), ("x-many", "1"), ("x-many", "2")]
    assert service.header_exclusions == ["/docs"]


async def test_global_request_headers_come_after_the_clients() -> None:
    server = app()
    server.add_request_header("x-added", "by the app")
    server.set_request_header("x-set", "one")
    server.set_request_header("x-set", "two")
    server.get("/h")(lambda request: [request.headers.get_all("x-added"), request.headers.get_all("x-set")])
    answer = await Client(server).get("/h", headers={"X-Added": "by the client"})
    assert answer.json() == [["by the client", "by the app"], ["two"]]


def test_the_middleware_path_cover() -> None:
    assert covers("/users/:id", "/users/:user_id")
    assert covers("/users/:id", "/users/me")
    assert covers("/files/*rest", "/files/a/:b")
    assert covers("/", "/")
    assert not covers("/users/me", "/users/:id")
    assert not covers("/users/:id", "/users/*rest")
    assert not covers("/users", "/users/:id")
    assert not covers("/files/*rest", "/files")


# -- authentication ---------------------------------------------------------------------------


class TokenIsName(AuthenticationHandler):
    def authenticate(self, request: Request) -> Identity | None:
        token = self.token_getter.get_token(request)
        return Identity(claims={"name": token}) if token else None


class AsyncTokenIsName(AuthenticationHandler):
    async def authenticate(self, request: Request) -> Identity | None:
        token = self.token_getter.get_token(request)
        return Identity(claims={"async": token}) if token else None


async def test_auth_required_routes_need_an_identity() -> None:
    server = app()
    server.configure_authentication(TokenIsName(token_getter=BearerGetter()))
    sub_own = SubRouter(prefix="/own")
    sub_own.configure_authentication(AsyncTokenIsName(token_getter=BearerGetter()))
    sub_inherits = SubRouter(prefix="/inherits")

    def whoami(request: Request) -> Any:
        return request.identity.claims if request.identity else None

    for router in (server, sub_own, sub_inherits):
        router.get("/me", auth_required=True)(whoami)
    server.get("/open")(lambda request: str(request.identity))
    server.include_router(sub_own)
    server.include_router(sub_inherits)
    client = Client(server)
    bearer = {"Authorization": "Bearer ada"}
    assert (await client.get("/me", headers=bearer)).json() == {"name": "ada"}
    assert (await client.get("/own/me", headers=bearer)).json() == {"async": "ada"}
    assert (await client.get("/inherits/me", headers=bearer)).json() == {"name": "ada"}
    refused = await client.get("/me")
    assert (refused.status, refused.text, refused.header("www-authenticate")) == (401, "Unauthorized", "BearerGetter")
    assert (await client.get("/open")).text == "None"


async def test_auth_required_without_a_handler_is_a_500() -> None:
    server = app()
    server.get("/me", auth_required=True)(lambda: "never")
    assert (await Client(server).get("/me", headers={"Authorization": "Bearer x"})).status == 500


# -- CORS -------------------------------------------------------------------------------------


async def test_allow_cors() -> None:
    server = app()
    ALLOW_CORS(server, origins=["https://ok.example"])
    server.get("/data")(lambda: "data")
    client = Client(server)
    assert (await client.get("/data", headers={"Origin": "https://ok.example"})).text == "data"
    assert (await client.get("/data", headers={"Origin": "https://evil.example"})).status == 403
    preflight = await client.request("OPTIONS", "/data", headers={"Origin": "https://ok.example"})
    assert (preflight.status, preflight.header("access-control-allow-origin")) == (204, "https://ok.example")
    assert ("access-control-allow-origin", "https://ok.example") in client.service.response_headers
