"""What an HTTP handler's parameters receive (robyn/_http_params.py): the request or a part of
it by annotation or by name, injected dependencies, the body as JSON or validated, and
easy-access path and query parameters converted, with Robyn's 400 answers."""

from __future__ import annotations

import json
from typing import Any, Optional, TypedDict

import pytest
from robyn import Headers, Request, Robyn, SubRouter
from robyn.robyn import QueryParams, Url
from robyn.types import Body, Files, FormData, IPAddress, JsonBody, Method, PathParams

from .http_exchange import Client


def app() -> Robyn:
    return Robyn(__file__)


async def test_the_request_by_annotation_or_by_name() -> None:
    server = app()

    @server.get("/typed")
    def typed(anything: Request) -> str:
        return anything.method

    @server.get("/named")
    def named(r: Any, req: Any, request: Any) -> str:
        return "same" if r is req is request else "different"

    client = Client(server)
    assert (await client.get("/typed")).text == "GET"
    assert (await client.get("/named")).text == "same"


async def test_request_fields() -> None:
    server = app()

    @server.post("/echo/:id")
    def echo(request: Request) -> dict[str, Any]:
        return {
            "method": request.method,
            "url": [request.url.scheme, request.url.host, request.url.path],
            "path_params": request.path_params,
            "query": request.query_params.to_dict(),
            "header": request.headers.get("X-Test"),
            "body": request.body,
            "json": request.json(),
            "ip": request.ip_addr,
            "identity": request.identity,
            "form": request.form_data,
            "files": request.files,
        }

    answer = await Client(server).post(
        "/echo/7/?a=1&a=2&b=x%20y&flag", headers={"X-Test": "yes"}, body=json.dumps({"k": [1, None]})
    )
    assert answer.json() == {
        "method": "POST",
        "url": ["http", "127.0.0.1:8080", "/echo/7"],
        "path_params": {"id": "7"},
        "query": {"a": ["1", "2"], "b": ["x y"], "flag": [""]},
        "header": "yes",
        "body": '{"k": [1, null]}',
        "json": {"k": [1, None]},
        "ip": "127.0.0.1",
        "identity": None,
        "form": {},
        "files": {},
    }


async def test_a_body_that_is_not_utf8_is_bytes_and_json_refuses_it() -> None:
    server = app()

    @server.post("/raw")
    def raw(request: Request) -> str:
        try:
            request.json()
        except ValueError as error:
            return f"{type(request.body).__name__}: {str(error)[:13]}"
        return "parsed"

    assert (await Client(server).post("/raw", body=b"\xff\xfe")).text == "bytes: Invalid JSON:"


async def test_a_url_encoded_form_is_form_data() -> None:
    server = app()
    server.post("/form")(lambda form_data: form_data)
    answer = await Client(server).post(
        "/form", headers={"Content-Type": "application/x-www-form-urlencoded"}, body="name=Ada+L&x=1&x=2"
    )
    assert answer.json() == {"name": "Ada L", "x": "2"}


async def test_the_parts_of_the_request_by_annotation() -> None:
    server = app()

    @server.post("/parts/:id")
    def parts(
        q: QueryParams, h: Headers, p: PathParams, m: Method, u: Url, b: Body, f: FormData, fs: Files, ip: IPAddress
    ) -> dict[str, Any]:
        return {"q": q.to_dict(), "h": h.get("x"), "p": p, "m": m, "u": u.path, "b": b, "f": f, "fs": fs, "ip": ip}

    answer = await Client(server).post("/parts/3?z=1", headers={"x": "y"}, body="raw")
    assert answer.json() == {
        "q": {"z": ["1"]},
        "h": "y",
        "p": {"id": "3"},
        "m": "POST",
        "u": "/parts/3",
        "b": "raw",
        "f": {},
        "fs": {},
        "ip": "127.0.0.1",
    }


async def test_the_parts_of_the_request_by_reserved_names() -> None:
    server = app()

    @server.post("/names/:id")
    def names(body: Any, query_params: Any, method: Any, url: Any, headers: Any, path_params: Any) -> dict[str, Any]:
        return {
            "body": body,
            "query": query_params.to_dict(),
            "method": method,
            "url": url.path,
            "header": headers.get("x"),
            "path": path_params,
        }

    answer = await Client(server).post("/names/9?hello=robyn", headers={"x": "y"}, body="hello=world")
    assert answer.json() == {
        "body": "hello=world",
        "query": {"hello": ["robyn"]},
        "method": "POST",
        "url": "/names/9",
        "header": "y",
        "path": {"id": "9"},
    }


async def test_a_parameter_nothing_provides_is_a_missing_query_parameter() -> None:
    server = app()
    server.post("/unknown")(lambda query_params, vishnu: "never")
    answer = await Client(server).post("/unknown")
    assert (answer.status, answer.text, answer.header("content-type")) == (
        400,
        "Missing required parameter: 'vishnu'",
        "text/plain",
    )


# -- the body ---------------------------------------------------------------------------------


class Temperature(JsonBody):
    fahrenheit: float


class Item(TypedDict):
    name: str
    value: int


class RawNote(Body):
    text: str


async def test_json_bodies_by_annotation() -> None:
    server = app()
    server.post("/bare")(lambda data: data)  # named `data`: a query parameter, missing
    server.post("/json")(_returns_json)
    server.post("/typed")(_celsius)
    server.post("/typeddict")(_item)
    server.post("/raw")(_raw)
    client = Client(server)
    assert (await client.post("/json", body='{"a": 1}')).json() == {"a": 1}
    assert (await client.post("/typed", body='{"fahrenheit": 212}')).json() == {"celsius": 100.0}
    assert (await client.post("/typeddict", body='{"name": "n", "value": 3}')).json() == {"result": "n", "count": 3}
    assert (await client.post("/raw", body='{"text": "not parsed"}')).text == '{"text": "not parsed"}'
    assert (await client.post("/bare", body="{}")).status == 400


def _returns_json(data: JsonBody) -> Any:
    return data


def _celsius(data: Temperature) -> dict[str, float]:
    return {"celsius": (float(data["fahrenheit"]) - 32) * 5 / 9}  # type: ignore[index]


def _item(data: Item) -> dict[str, Any]:
    return {"result": data["name"], "count": data["value"]}


def _raw(note: RawNote) -> Any:
    return note


async def test_a_body_that_is_not_json_is_answered_400_in_json_before_the_handler() -> None:
    server = app()
    server.post("/typed")(_celsius)
    answer = await Client(server).post("/typed", body="{nope")
    assert (answer.status, answer.header("content-type")) == (400, "application/json")
    assert answer.json()["error"].startswith("Invalid JSON body: ")


# Recognised by its base class (pydantic itself is not installed here).
_PydanticBase: Any = type("BaseModel", (), {"__module__": "pydantic.main"})


class ValidationError(Exception):
    def json(self) -> str:
        return '[{"loc": ["age"], "msg": "not an int"}]'


class User(_PydanticBase):
    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def model_validate_json(cls, body: str | bytes) -> User:
        data = json.loads(body)
        if not isinstance(data.get("age"), int):
            raise ValidationError("invalid")
        return cls(data["name"])


async def test_a_pydantic_like_model_validates_the_body() -> None:
    server = app()

    @server.post("/users")
    def create(user: User) -> str:
        return user.name

    client = Client(server)
    assert (await client.post("/users", body='{"name": "ada", "age": 36}')).text == "ada"
    refused = await client.post("/users", body='{"name": "ada"}')
    assert refused.status == 422
    assert refused.json() == {"detail": [{"loc": ["age"], "msg": "not an int"}], "error": "Validation Error"}


def test_two_pydantic_body_parameters_are_refused_when_registered() -> None:
    server = app()

    def create(user: User, other: User) -> str:
        return user.name

    with pytest.raises(TypeError, match=r"more than one pydantic model \(user, other\)"):
        server.post("/users")(create)


# -- easy access ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_path_and_query_parameters_converted_with_defaults(kind: str) -> None:
    server = app()

    def easy(id: int, q: str, page: int = 1) -> dict[str, Any]:
        return {"id": id, "q": q, "page": page}

    async def easy_async(id: int, q: str, page: int = 1) -> dict[str, Any]:
        return easy(id, q, page)

    server.get("/easy/:id")(easy if kind == "sync" else easy_async)
    client = Client(server)
    assert (await client.get("/easy/42?q=hello&page=5")).json() == {"id": 42, "q": "hello", "page": 5}
    assert (await client.get("/easy/42?q=hello")).json() == {"id": 42, "q": "hello", "page": 1}
    missing = await client.get("/easy/42")
    assert (missing.status, missing.text) == (400, "Missing required parameter: 'q'")
    invalid = await client.get("/easy/abc?q=x")
    assert (invalid.status, invalid.text) == (400, "Invalid value 'abc' for parameter 'id': expected int")


async def test_optional_list_bool_and_float_parameters() -> None:
    server = app()
    server.get("/optional")(_optional)
    server.get("/list")(_tags)
    server.get("/flag")(_flag)
    server.get("/price")(_price)
    client = Client(server)
    assert (await client.get("/optional?name=bob")).json() == {"name": "bob", "age": None}
    assert (await client.get("/optional?name=bob&age=30")).json() == {"name": "bob", "age": 30}
    assert (await client.get("/list?tag=a&tag=b")).json() == {"tags": ["a", "b"]}
    assert (await client.get("/flag?active=1")).json() == {"active": True}
    assert (await client.get("/flag")).json() == {"active": False}
    assert (await client.get("/price?price=19.99")).json() == {"price": 19.99}
    assert (await client.get("/price?price=cheap")).status == 400


def _optional(name: str, age: Optional[int] = None) -> dict[str, Any]:  # noqa: UP045 (the spelling under test)
    return {"name": name, "age": age}


def _tags(tag: list[str]) -> dict[str, Any]:
    return {"tags": tag}


def _flag(active: bool = False) -> dict[str, Any]:
    return {"active": active}


def _price(price: float) -> dict[str, Any]:
    return {"price": price}


async def test_a_catch_all_parameter_and_a_query_parameter_of_the_same_name() -> None:
    server = app()
    server.get("/files/*rest")(lambda rest: rest)
    server.get("/search")(lambda id: id)
    client = Client(server)
    assert (await client.get("/files/a/b/c.txt")).text == "a/b/c.txt"
    # Not a route parameter: taken from the query string.
    assert (await client.get("/search?id=5")).text == "5"


async def test_easy_access_works_beside_the_request() -> None:
    server = app()

    @server.get("/mixed/:id")
    def mixed(request: Request, id: int, q: str = "") -> dict[str, Any]:
        return {"id": id, "q": q, "method": request.method}

    assert (await Client(server).get("/mixed/99")).json() == {"id": 99, "q": "", "method": "GET"}


# -- dependency injection ---------------------------------------------------------------------


async def test_global_and_router_dependencies() -> None:
    server = app()
    server.inject_global(HTTP_TEST_GLOBAL="global value")
    server.inject(ROUTER="app router value")
    server.get("/global")(lambda global_dependencies: global_dependencies["HTTP_TEST_GLOBAL"])
    server.get("/router")(lambda request, router_dependencies: router_dependencies["ROUTER"])
    client = Client(server)
    assert (await client.get("/global")).text == "global value"
    assert (await client.get("/router")).text == "app router value"


async def test_global_dependencies_are_shared_and_the_last_injected_wins_as_in_robyn() -> None:
    sub = SubRouter(prefix="/sub")
    sub.inject_global(HTTP_TEST_SHARED="from the router")
    sub.inject(ROUTER="sub router value")
    sub.get("/global")(lambda global_dependencies: global_dependencies["HTTP_TEST_SHARED"])
    sub.get("/router")(lambda router_dependencies: router_dependencies["ROUTER"])
    server = app()
    server.inject_global(HTTP_TEST_SHARED="from the app")
    server.inject(ROUTER="app router value")
    server.include_router(sub)
    client = Client(server)
    assert (await client.get("/sub/global")).text == "from the app"
    assert (await client.get("/sub/router")).text == "sub router value"
