"""One request through the pipeline (robyn/_pipeline.py, robyn/_chain.py): where sync and
async handlers run, middlewares (order, arities, answering early, after a failure),
``ContextVar`` values shared by the whole chain, the exception handler, failures logged once
and answered 500."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any

import pytest
from robyn import Headers, Request, Response, Robyn
from robyn._pipeline import Pipeline

from .http_exchange import Client


def app() -> Robyn:
    return Robyn(__file__)


# -- where handlers run -----------------------------------------------------------------------


async def test_a_sync_handler_runs_on_a_worker_thread_and_an_async_one_on_the_loop() -> None:
    server = app()
    threads: dict[str, str] = {}

    @server.get("/sync")
    def sync_handler() -> str:
        threads["sync"] = threading.current_thread().name
        return "sync"

    @server.get("/async")
    async def async_handler() -> str:
        threads["async"] = threading.current_thread().name
        return "async"

    client = Client(server)
    assert (await client.get("/sync")).text == "sync"
    assert (await client.get("/async")).text == "async"
    assert threads["sync"].startswith("robyn-sync-")
    assert threads["async"] == threading.current_thread().name


async def test_a_slow_sync_handler_does_not_block_the_loop() -> None:
    server = app()
    release = threading.Event()

    @server.get("/slow")
    def slow() -> str:
        release.wait(5)
        return "slow"

    @server.get("/fast")
    async def fast() -> str:
        return "fast"

    client = Client(server)
    pending = asyncio.ensure_future(client.get("/slow"))
    assert (await client.get("/fast")).text == "fast"
    release.set()
    assert (await pending).text == "slow"


async def test_the_sync_worker_pool_is_sized_before_use() -> None:
    server = app()
    names: set[str] = set()
    barrier = threading.Barrier(3, timeout=5)

    @server.get("/wait")
    def wait() -> str:
        names.add(threading.current_thread().name)
        barrier.wait()
        return "ok"

    client = Client(server)
    client.service.workers.resize(3)
    answers = await asyncio.gather(*(client.get("/wait") for _ in range(3)))
    assert [answer.text for answer in answers] == ["ok"] * 3
    assert len(names) == 3


# -- middlewares ------------------------------------------------------------------------------


async def test_middlewares_run_global_first_and_see_the_request_and_response() -> None:
    server = app()
    order: list[str] = []

    @server.before_request()
    def global_before(request: Request) -> Request:
        order.append("global before")
        request.headers.set("seen", "global")
        return request

    @server.before_request("/items/:id")
    async def route_before(request: Request) -> Request:
        order.append(f"route before {request.path_params['id']}")
        return request

    @server.after_request()
    def global_after(response: Response) -> Response:
        order.append("global after")
        response.headers.set("global_after", "yes")
        return response

    @server.after_request("/items/:id")
    def route_after(request: Request, response: Response) -> Response:
        order.append("route after")
        response.description = f"{response.description} for {request.method}"
        return response

    @server.get("/items/:id")
    def item(request: Request) -> str:
        order.append("handler")
        return f"item {request.path_params['id']} {request.headers.get('seen')}"

    answer = await Client(server).get("/items/7")
    assert answer.text == "item 7 global for GET"
    assert answer.header("global_after") == "yes"
    assert order == ["global before", "route before 7", "handler", "global after", "route after"]


async def test_a_route_middleware_covers_its_pattern_for_every_method_and_same_shaped_routes() -> None:
    server = app()

    @server.after_request("/users/:id")
    def mark(response: Response) -> Response:
        response.headers.set("marked", "yes")
        return response

    @server.get("/users/:user_id")
    def get_user() -> str:
        return "get"

    @server.post("/users/:user_id")
    def post_user() -> str:
        return "post"

    @server.get("/users/me")
    def me() -> str:
        return "me"

    @server.get("/users")
    def users() -> str:
        return "all"

    client = Client(server)
    assert (await client.get("/users/1")).header("marked") == "yes"
    assert (await client.post("/users/1")).header("marked") == "yes"
    assert (await client.get("/users/me")).header("marked") == "yes"
    assert (await client.get("/users")).header("marked") is None


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_before_request_response_answers_and_after_request_still_runs(kind: str) -> None:
    server = app()
    ran: list[str] = []

    def block(request: Request) -> Response:
        return Response(403, Headers({}), "blocked")

    async def block_async(request: Request) -> Response:
        return block(request)

    server.before_request("/guarded")(block if kind == "sync" else block_async)

    @server.after_request("/guarded")
    def after(response: Response) -> Response:
        response.headers.set("after", "ran")
        return response

    @server.get("/guarded")
    def guarded() -> str:
        ran.append("handler")
        return "never"

    answer = await Client(server).get("/guarded")
    assert (answer.status, answer.text, answer.header("after")) == (403, "blocked", "ran")
    assert ran == []


@pytest.mark.parametrize(
    ("returned", "status", "body", "content_type"),
    [
        ({"blocked": True}, 200, '{"blocked":true}', "application/json"),
        (("denied", {}, 403), 403, "denied", "text/plain"),
        ("stop here", 200, "stop here", "text/plain"),
    ],
)
async def test_a_bare_value_from_before_request_answers_as_a_handler_return_would(
    returned: Any, status: int, body: str, content_type: str
) -> None:
    server = app()
    server.before_request("/x")(lambda request: returned)
    server.get("/x")(lambda: "never")
    answer = await Client(server).get("/x")
    assert (answer.status, answer.text, answer.header("content-type")) == (status, body, content_type)


async def test_middlewares_may_take_no_parameter_and_return_nothing() -> None:
    server = app()
    calls: list[str] = []
    server.before_request()(lambda: calls.append("before"))
    server.after_request()(lambda: calls.append("after"))
    server.get("/")(lambda: "root")
    answer = await Client(server).get("/")
    assert (answer.text, calls) == ("root", ["before", "after"])


async def test_stacked_middlewares_of_one_route_all_run_in_order() -> None:
    server = app()

    def mark(name: str) -> tuple[Any, Any]:
        return (
            lambda request: request.headers.set(f"before{name}", name),
            lambda response: response.headers.set(f"after{name}", name),
        )

    for name in ("1", "2"):
        before, after = mark(name)
        server.before_request("/stack")(before)
        server.after_request("/stack")(after)

    @server.get("/stack")
    def stack(request: Request) -> str:
        return f"{request.headers.get('before1')}{request.headers.get('before2')}"

    answer = await Client(server).get("/stack")
    assert (answer.text, answer.header("after1"), answer.header("after2")) == ("12", "1", "2")


async def test_global_middlewares_run_around_the_404_of_unmatched_requests() -> None:
    server = app()

    @server.after_request()
    def tag(response: Response) -> Response:
        response.headers.set("global_after", "yes")
        return response

    server.get("/")(lambda: "root")
    client = Client(server)
    assert client.service.not_found_in_python
    answer = await client.get("/nowhere")
    assert (answer.status, answer.text, answer.header("content-type")) == (404, "Not found", "text/plain")
    assert answer.header("global_after") == "yes"


async def test_without_global_middlewares_the_server_answers_404_itself() -> None:
    server = app()
    server.before_request("/only")(lambda request: request)
    assert not Client(server).service.not_found_in_python


# -- one context per request ------------------------------------------------------------------

_value: contextvars.ContextVar[str] = contextvars.ContextVar("value", default="unset")


@pytest.mark.parametrize("before_kind", ["sync", "async"])
@pytest.mark.parametrize("handler_kind", ["sync", "async"])
@pytest.mark.parametrize("after_kind", ["sync", "async"])
async def test_a_context_var_set_before_the_handler_is_seen_by_it_and_after_it(
    before_kind: str, handler_kind: str, after_kind: str
) -> None:
    server = app()

    def before(request: Request) -> Request:
        _value.set(f"set in {before_kind} before")
        return request

    async def before_async(request: Request) -> Request:
        return before(request)

    def handler() -> str:
        return _value.get()

    async def handler_async() -> str:
        return handler()

    def after(response: Response) -> Response:
        response.headers.set("x-value", _value.get())
        return response

    async def after_async(response: Response) -> Response:
        return after(response)

    server.before_request("/ctx")(before if before_kind == "sync" else before_async)
    server.get("/ctx")(handler if handler_kind == "sync" else handler_async)
    server.after_request("/ctx")(after if after_kind == "sync" else after_async)
    client = Client(server)
    expected = f"set in {before_kind} before"
    for _ in range(2):  # the second request starts afresh, and sees the same
        answer = await client.get("/ctx")
        assert (answer.text, answer.header("x-value")) == (expected, expected)
    assert _value.get() == "unset"


async def test_a_context_var_set_in_a_handler_does_not_leak_into_the_next_request() -> None:
    server = app()

    @server.get("/set")
    def set_it() -> str:
        seen = _value.get()
        _value.set("leaked")
        return seen

    client = Client(server)
    client.service.workers.resize(1)
    assert (await client.get("/set")).text == "unset"
    assert (await client.get("/set")).text == "unset"


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_raising_handler_is_logged_naming_the_route_and_answered_500(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = app()

    def boom() -> str:
        raise KeyError("port")

    async def boom_async() -> str:
        return boom()

    server.get("/items/:id")(boom if kind == "sync" else boom_async)

    @server.after_request()
    def tag(response: Response) -> Response:
        response.headers.set("global_after", "yes")
        return response

    with caplog.at_level(logging.ERROR, logger="robyn.http"):
        answer = await Client(server).get("/items/3")
        await asyncio.sleep(0.01)  # a worker's report reaches the loop
    assert (answer.status, answer.text, answer.header("content-type")) == (500, "Internal server error", "text/plain")
    assert answer.header("global_after") == "yes"  # after-request middlewares still ran, as in Robyn
    (record,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert record.getMessage() == "handler of GET /items/:id failed for request GET /items/3"
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)


async def test_repeated_failures_are_counted_not_each_shown(caplog: pytest.LogCaptureFixture) -> None:
    server = app()
    server.get("/boom")(lambda: 1 / 0)
    client = Client(server)
    with caplog.at_level(logging.ERROR, logger="robyn.http"):
        for _ in range(10):
            assert (await client.get("/boom")).status == 500
        await asyncio.sleep(0.01)
    assert len([record for record in caplog.records if record.exc_info]) == 3


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_raising_middleware_answers_500(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    server = app()

    def broken(request: Request) -> Request:
        raise RuntimeError("middleware bug")

    async def broken_async(request: Request) -> Request:
        return broken(request)

    server.before_request("/m")(broken if kind == "sync" else broken_async)
    server.get("/m")(lambda: "never")
    with caplog.at_level(logging.ERROR, logger="robyn.http"):
        answer = await Client(server).get("/m")
        await asyncio.sleep(0.01)
    assert (answer.status, answer.text) == (500, "Internal server error")
    assert "before_request middleware" in caplog.records[0].getMessage()
    assert "of GET /m failed" in caplog.records[0].getMessage()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_the_exception_handler_turns_an_error_into_the_response(kind: str) -> None:
    server = app()

    @server.get("/before")
    def registered_before() -> str:
        raise ValueError("not handled")

    @server.exception
    def handle(error: Exception) -> Response:
        return Response(500, {}, f"error msg: {error}")

    def fail() -> str:
        raise ValueError("value error")

    async def fail_async() -> str:
        return fail()

    server.put("/after")(fail if kind == "sync" else fail_async)
    client = Client(server)
    assert (await client.request("PUT", "/after")).text == "error msg: value error"
    # As in Robyn, the routes registered before it keep the plain 500.
    assert (await client.get("/before")).text == "Internal server error"


async def test_an_async_exception_handler_may_return_any_handler_value() -> None:
    server = app()

    @server.exception
    async def handle(error: Exception) -> dict[str, str]:
        return {"error": type(error).__name__}

    server.get("/x")(lambda: [][1])
    answer = await Client(server).get("/x")
    assert (answer.status, answer.json()) == (200, {"error": "IndexError"})


async def test_a_request_for_an_unknown_route_number_is_answered_500(caplog: pytest.LogCaptureFixture) -> None:
    server = app()
    client = Client(server)
    from .http_exchange import FakeExchange

    exchange = FakeExchange("GET", "/")
    pipeline: Pipeline = client.service.pipeline
    with caplog.at_level(logging.ERROR, logger="robyn.http"):
        pipeline.on_http(12, exchange)
    assert exchange.answer is not None and exchange.answer[0] == 500


async def test_a_plain_def_wrapper_around_an_async_handler_is_awaited() -> None:
    server = app()

    def logged(handler: Any) -> Any:
        # A decorator written without `async def`: the route sees a sync function that
        # returns a coroutine.
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return handler(*args, **kwargs)

        return wrapper

    @server.get("/wrapped")
    @logged
    async def wrapped() -> dict[str, bool]:
        await asyncio.sleep(0)
        return {"awaited": True}

    @server.before_request("/wrapped-async-chain")
    async def noop(request: Request) -> Request:
        return request

    server.get("/wrapped-async-chain")(wrapped)
    client = Client(server)
    assert (await client.get("/wrapped")).json() == {"awaited": True}
    assert (await client.get("/wrapped-async-chain")).json() == {"awaited": True}


async def test_http_exception_through_the_exception_handler() -> None:
    from robyn.exceptions import HTTPException

    server = app()

    @server.exception
    def handle(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return Response(error.status_code, {}, str(error))
        return Response(500, {}, "other")

    @server.get("/teapot")
    def teapot() -> str:
        raise HTTPException(418)

    answer = await Client(server).get("/teapot")
    assert (answer.status, answer.text) == (418, "418: I'm a Teapot")


async def test_after_request_sees_a_utf8_body_as_text_as_in_robyn() -> None:
    server = app()

    @server.after_request("/octets")
    def append(response: Response) -> Response:
        response.description = response.description + " after"  # type: ignore[operator]
        return response

    server.get("/octets")(lambda: b"sync octet")
    answer = await Client(server).get("/octets")
    assert (answer.text, answer.header("content-type")) == ("sync octet after", "application/octet-stream")
