"""Robyn's HTTP API as an app uses it (tests/apps/http_api.py), through the real binary with
real HTTP clients (http.client, urllib, requests): what a handler finds in the request, what
each kind of return becomes on the wire, middlewares and their order, one `contextvars`
context per request, the exception handler and unhandled failures, dependency injection,
easy-access parameters, nested SubRouters, the global headers, authentication, streamed
answers, where sync handlers run and how many at once (`--sync-threads`, on
tests/apps/http_api_workers.py), and bad requests that leave the server serving."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import TIMEOUT, still_serves

APP = "http_api"
FILES = Path(__file__).resolve().parent / "apps" / "http_api_files"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []


def call(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Reply:
    """One request on a connection of its own (http.client: repeated header names allowed)."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.putrequest(method, path)
        for name, value in pairs:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, response.msg, response.read())
    finally:
        connection.close()


def exchange(port: int, raw: bytes) -> bytes:
    """Raw bytes in; what came back until the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def url(server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


# -- The request ------------------------------------------------------------------------------


def test_the_request_has_its_method_url_headers_query_and_client(module_server):
    reply = call(
        module_server.port,
        "/request/things/?a=1&a=2&b=x%20y&empty",
        headers=[("X-Mixed-Case", "v"), ("X-Repeated", "1"), ("X-Repeated", "2")],
    )
    assert reply.status == 200
    seen = reply.json()
    assert seen["method"] == "GET"
    assert (seen["scheme"], seen["host"], seen["path"]) == (
        "http",
        f"127.0.0.1:{module_server.port}",
        "/request/things",
    )
    assert seen["path_params"] == {"kind": "things"}
    # Header names are case-insensitive; a repeated header keeps each value.
    assert seen["mixed_case"] == ["v", "v", True]
    assert seen["repeated"] == ["1", "2"]
    # get() answers the last value, get_all() every one; the query string is percent-decoded.
    assert (seen["query_get"], seen["query_default"], seen["query_all"]) == ("2", "fallback", ["1", "2"])
    assert seen["query_dict"] == {"a": ["1", "2"], "b": ["x y"], "empty": [""]}
    # Robyn documents `queries` and raises AttributeError for it; here it is the same dict.
    assert seen["queries"] == seen["query_dict"]
    assert (seen["body_type"], seen["body"]) == ("str", "")
    assert seen["ip_addr"] == "127.0.0.1"


def test_a_utf8_body_is_text_and_any_other_is_bytes(module_server):
    seen = call(module_server.port, "/request/put", "PUT", "héllo".encode()).json()  # add_route("PUT", ...)
    assert (seen["method"], seen["body_type"], seen["body"]) == ("PUT", "str", "héllo")
    seen = call(module_server.port, "/request/post", "POST", b"\xff\xfe\x00").json()
    assert (seen["method"], seen["body_type"], seen["body"]) == ("POST", "bytes", [255, 254, 0])


def test_path_parameters_are_percent_decoded(module_server):
    seen = call(module_server.port, "/request/a%20b%2Fc").json()
    assert seen["path_params"] == {"kind": "a b/c"}


def test_json_parses_the_body_and_a_body_that_is_not_json_is_refused(module_server):
    reply = requests.post(url(module_server, "/json"), json={"a": [1, None]}, timeout=TIMEOUT)
    assert (reply.status_code, reply.json()) == (200, {"parsed": {"a": [1, None]}})
    # A JsonBody parameter: the body is parsed before the handler runs, and refused with 400.
    reply = requests.post(url(module_server, "/json_body"), data=b"[1, 2]", timeout=TIMEOUT)
    assert (reply.status_code, reply.json()) == (200, {"parsed": [1, 2]})
    reply = requests.post(url(module_server, "/json_body"), data=b"{bad", timeout=TIMEOUT)
    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"].startswith("Invalid JSON body: Invalid JSON: Expecting property name")


async def test_request_json_on_a_body_that_is_not_json_raises_and_is_a_500(module_server):
    reply = await asyncio.to_thread(call, module_server.port, "/json", "POST", b"{bad")
    assert (reply.status, reply.text) == (500, "Internal server error")
    await module_server.until(r"handler of POST /json failed for request POST /json")
    await module_server.until(r"ValueError: Invalid JSON: Expecting property name")


def test_form_data_comes_from_an_urlencoded_body(module_server):
    reply = requests.post(
        url(module_server, "/form"), data=[("a", "1"), ("b", "hello world"), ("c", "é"), ("a", "2")], timeout=TIMEOUT
    )
    # The last value of a repeated field, as Robyn gives it.
    assert (reply.status_code, reply.json()) == (200, {"a": "2", "b": "hello world", "c": "é"})
    with_charset = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert call(module_server.port, "/form", "POST", b"x=%C3%A9", with_charset).json() == {"x": "é"}
    as_text = {"Content-Type": "text/plain"}
    assert call(module_server.port, "/form", "POST", b"x=1", as_text).json() == {}


# -- Returns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/returns/str", "text/plain", b"plain text"),
        ("/returns/bytes", "application/octet-stream", b"\x00\xffraw"),
        ("/returns/dict", "application/json", b'{"name":"ann","tags":["a","b"],"nested":{"n":1}}'),
        ("/returns/list", "application/json", b'[1,"two",null,true]'),
        # jsonify() is compact JSON text: a str, so text/plain, as in Robyn.
        ("/returns/jsonify", "text/plain", '{"a":[1,2],"é":null}'.encode()),
        ("/returns/html", "text/html", b"<h1>hi</h1>"),
    ],
)
def test_each_kind_of_return_has_its_content_type(module_server, path, content_type, body):
    reply = call(module_server.port, path)
    assert (reply.status, reply.header("content-type"), reply.body) == (200, content_type, body)
    assert reply.header("content-length") == str(len(body))


def test_a_response_keeps_its_status_headers_and_body(module_server):
    reply = call(module_server.port, "/returns/response")
    assert (reply.status, reply.body) == (201, b"made")
    assert (reply.header("x-made"), reply.header("content-type")) == ("by-route", "text/x-custom")


def test_a_headers_object_sends_a_repeated_name_as_separate_lines(module_server):
    reply = call(module_server.port, "/returns/headers")
    assert (reply.status, reply.body) == (200, b"with headers")
    assert reply.all("x-one") == ["1"]
    assert reply.all("x-multi") == ["a", "b"]


@pytest.mark.parametrize("code", [200, 204, 302, 404, 418, 503])
def test_a_response_sends_the_status_it_is_given(module_server, code):
    reply = call(module_server.port, f"/returns/status/{code}")
    assert reply.status == code
    if code == 204:
        assert reply.body == b""
        assert reply.header("content-length") is None
    else:
        assert reply.text == str(code)
    assert reply.header("location") == ("/returns/str" if code == 302 else None)


def test_a_coroutine_a_plain_def_returns_is_awaited(module_server):
    reply = call(module_server.port, "/returns/coroutine")
    assert (reply.status, reply.body) == (200, b"awaited")


def test_a_routes_status_code_and_a_tuple_return(module_server):
    reply = call(module_server.port, "/returns/created", "POST", b"")
    assert (reply.status, reply.json()) == (201, {"created": True})
    reply = call(module_server.port, "/returns/tuple")
    assert (reply.status, reply.json(), reply.header("x-tuple")) == (202, {"from": "tuple"}, "yes")
    assert reply.header("content-type") == "application/json"


def test_set_cookie_sends_a_set_cookie_line_per_cookie_with_its_attributes(module_server):
    reply = call(module_server.port, "/returns/cookies")
    assert (reply.status, reply.body) == (200, b"cookies set")
    lines = reply.all("set-cookie")
    assert lines == [
        "session=abc123; HttpOnly; SameSite=Strict; Secure; Path=/; Domain=example.test; Max-Age=3600",
        "theme=dark",  # set twice: the second replaced the first
        "cross=1; SameSite=None; Secure; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    ]
    # As a cookie parser reads them.
    jar = SimpleCookie()
    for line in lines:
        jar.load(line)
    session = jar["session"]
    assert session.value == "abc123"
    assert (session["path"], session["domain"], session["max-age"]) == ("/", "example.test", "3600")
    assert session["httponly"] and session["secure"]
    assert session["samesite"] == "Strict"
    assert jar["theme"].value == "dark"
    assert jar["cross"]["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"


def test_serve_file_is_a_download_named_after_the_file(module_server):
    reply = call(module_server.port, "/returns/file")
    assert reply.status == 200
    assert reply.body == (FILES / "report.csv").read_bytes()
    assert reply.header("content-type") == "text/csv"
    assert reply.header("content-disposition") == "attachment; filename=report.csv"


def test_serve_file_under_another_name_quotes_it_and_keeps_every_byte(module_server):
    reply = call(module_server.port, "/returns/file_named")
    assert reply.status == 200
    assert reply.body == (FILES / "blob.bin").read_bytes() == bytes(range(256))
    assert reply.header("content-type") == "application/octet-stream"
    assert reply.header("content-disposition") == (
        "attachment; filename=\"Bericht f?r 2024.bin\"; filename*=UTF-8''Bericht%20f%C3%BCr%202024.bin"
    )


def test_serve_html_answers_with_the_page(module_server):
    page = url(module_server, "/returns/serve_html")
    with urllib.request.urlopen(page, timeout=TIMEOUT) as response:  # noqa: S310 (http://, the server under test)
        assert response.status == 200
        assert response.headers["content-type"] == "text/html"
        assert response.headers["content-disposition"] is None
        assert response.read() == (FILES / "page.html").read_bytes()


def test_a_jinja_template_is_rendered_and_escaped(module_server):
    reply = call(module_server.port, "/returns/template?name=%3CAnn%3E")
    assert reply.status == 200
    assert reply.header("content-type") == "text/html; charset=utf-8"
    assert reply.text == "<h1>Hello, &lt;Ann&gt;!</h1>\n<ul><li>one</li><li>&lt;two&gt;</li></ul>"


def test_a_header_value_that_would_split_the_response_is_left_out(module_server):
    reply = call(module_server.port, "/reflect?value=a%0D%0Ax-injected%3A%201")
    assert (reply.status, reply.body) == (200, b"reflected")
    assert reply.header("x-injected") is None
    assert reply.header("x-reflect") is None
    module_server.wait_for(r"a response header HTTP cannot carry was left out: \"x-reflect\"")
    assert call(module_server.port, "/reflect?value=fine").header("x-reflect") == "fine"


# -- Middlewares and contextvars --------------------------------------------------------------


def loop_thread(port: int) -> str:
    """The name of the thread async handlers run on (the event loop's)."""
    return call(port, "/thread/async").json()["name"]


@pytest.mark.parametrize("kind", ["sync", "async", "mixed"])
def test_middlewares_run_in_order_sharing_one_context_per_request(module_server, kind):
    """Global before, the route's before, the handler, global after, the route's after: each
    appends its name to one ContextVar, so the handler's body shows what ran before it and the
    last after-middleware's header the whole chain. sync: every step sync (on one worker);
    async: every route step async (on the loop); mixed: an async before, a sync handler and
    after (on workers), around the sync global ones."""
    loop = loop_thread(module_server.port)
    # Twice: the second request starts from a fresh context, with nothing left of the first.
    for reply in [call(module_server.port, f"/mw/{kind}") for _ in range(2)]:
        assert reply.status == 200
        seen = reply.json()
        handler = seen["steps"][-1]
        assert seen["steps"] == ["global-before", "route-before", handler]
        # The request the route's before-middleware changed is the one the handler got.
        assert seen["header"] == "set"
        assert reply.header("x-steps") == f"global-before,route-before,{handler},global-after,route-after"
        thread = handler.removeprefix("handler@")
        assert (thread == loop) == (kind == "async"), (thread, loop)


def test_a_global_middleware_sees_every_request_and_a_routes_only_its_own(module_server):
    reply = call(module_server.port, "/returns/str")
    assert reply.header("x-steps") == "global-before,global-after"
    assert reply.header("x-global-after") == "/returns/str"
    # Requests no route takes go through the global middlewares too.
    reply = call(module_server.port, "/nowhere")
    assert (reply.status, reply.body) == (404, b"Not found")
    assert reply.header("x-global-after") == "/nowhere"


def test_a_before_request_that_answers_stops_the_handler_but_not_the_after_middlewares(module_server):
    for attempt in (1, 2):
        refused = call(module_server.port, "/guarded")
        assert (refused.status, refused.body, refused.header("x-guard")) == (403, b"blocked by the guard", "refused")
        assert refused.header("x-global-after") == "/guarded"
        # Only the requests let through reached the handler.
        admitted = call(module_server.port, "/guarded", headers={"X-Pass": "yes"})
        assert (admitted.status, admitted.text) == (200, f"runs={attempt}")


def test_a_before_request_returning_none_lets_the_request_through(module_server):
    reply = call(module_server.port, "/let_through")
    assert (reply.status, reply.body) == (200, b"through")


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_concurrent_requests_each_have_their_own_context(module_server, kind):
    """`first`'s before-middleware sets a ContextVar, then its handler waits while `second`
    sets the same variable; `first` must still see its own value."""
    first = asyncio.create_task(asyncio.to_thread(call, module_server.port, f"/ctx/{kind}/first"))
    await module_server.until(f"ctx {kind} first is waiting")
    second = await asyncio.to_thread(call, module_server.port, f"/ctx/{kind}/second")
    assert (second.status, second.text) == (200, "second")
    assert not first.done()
    assert (await asyncio.to_thread(call, module_server.port, f"/ctx/release/{kind}")).text == "released"
    reply = await first
    assert (reply.status, reply.text) == (200, "first")


# -- Failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/handled", "/handled_async"])
def test_the_exception_handler_turns_an_exception_into_the_response(module_server, path):
    reply = call(module_server.port, path)
    expected = {
        "/handled": ("KeyError", b"handled: 'missing thing'"),
        "/handled_async": ("ValueError", b"handled: bad value"),
    }
    assert (reply.status, reply.header("x-handled"), reply.body) == (409, *expected[path])
    assert reply.header("x-global-after") == path


@pytest.mark.parametrize(
    ("path", "error"),
    [("/explode", "ZeroDivisionError: division by zero"), ("/explode_async", "LookupError: nothing here")],
)
async def test_a_handler_that_raises_without_an_exception_handler_is_a_500_and_logged(module_server, path, error):
    reply = await asyncio.to_thread(call, module_server.port, path)
    assert (reply.status, reply.header("content-type"), reply.body) == (500, "text/plain", b"Internal server error")
    # The after-request middlewares still ran.
    assert reply.header("x-global-after") == path
    await module_server.until(rf"handler of GET {path} failed for request GET {path}$")
    await module_server.until(rf"^{error}$")
    assert (await asyncio.to_thread(call, module_server.port, "/returns/str")).status == 200


# -- Dependency injection, easy-access parameters ---------------------------------------------


def test_injected_dependencies_reach_the_handler(module_server):
    reply = call(module_server.port, "/deps")
    assert reply.json() == {"global": {"env": "test"}, "router": {"db": "app-db"}}
    # A nested SubRouter's router dependencies: its own over its parents'.
    reply = call(module_server.port, "/api/v1/items/5")
    assert reply.json()["router"] == {"db": "api-db", "cache": "api-cache", "extra": "v1"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "ratio=0.5&flag=yes&tags=1&tags=2",
            {"item_id": 7, "ratio": 0.5, "flag": True, "tags": [1, 2], "note": None, "page": 1},
        ),
        (
            "ratio=1e3&flag=OFF&tags=-3&note=hi&page=4",
            {"item_id": 7, "ratio": 1000.0, "flag": False, "tags": [-3], "note": "hi", "page": 4},
        ),
        ("ratio=2&flag=&tags=0", {"item_id": 7, "ratio": 2.0, "flag": False, "tags": [0], "note": None, "page": 1}),
    ],
)
def test_easy_access_parameters_are_converted_to_their_annotations(module_server, query, expected):
    reply = call(module_server.port, f"/easy/7?{query}")
    assert (reply.status, reply.json()) == (200, expected)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/easy/abc?ratio=1&flag=1&tags=1", "Invalid value 'abc' for parameter 'item_id': expected int"),
        ("/easy/7?ratio=x&flag=1&tags=1", "Invalid value 'x' for parameter 'ratio': expected float"),
        ("/easy/7?ratio=1&flag=maybe&tags=1", "Invalid value 'maybe' for parameter 'flag': expected bool"),
        ("/easy/7?ratio=1&flag=1&tags=1&tags=x", "Invalid value 'x' for parameter 'tags': expected int"),
        ("/easy/7?ratio=1&flag=1&tags=1&page=two", "Invalid value 'two' for parameter 'page': expected int"),
        ("/easy/7?flag=1&tags=1", "Missing required parameter: 'ratio'"),
        ("/easy/7?ratio=1&flag=1", "Missing required parameter: 'tags'"),
    ],
)
def test_a_bad_easy_access_parameter_is_a_400_saying_which(module_server, path, message):
    reply = call(module_server.port, path)
    assert (reply.status, reply.header("content-type"), reply.text) == (400, "text/plain", message)


# -- SubRouters -------------------------------------------------------------------------------


def test_nested_subrouters_add_up_their_prefixes(module_server):
    assert (call(module_server.port, "/api").text, call(module_server.port, "/api/").text) == ("api root", "api root")
    reply = call(module_server.port, "/api/v1/items/5")
    assert reply.status == 200
    assert {key: reply.json()[key] for key in ("id", "path")} == {"id": "5", "path": "/api/v1/items/5"}
    # The SubRouter's route middleware gets its prefix too.
    assert reply.header("x-v1-after") == "yes"
    for path in ("/v1/items/5", "/items/5", "/api/items/5"):
        assert call(module_server.port, path).status == 404, path


# -- Global headers ---------------------------------------------------------------------------


def test_global_request_headers_are_added_to_every_request(module_server):
    seen = call(module_server.port, "/request/x", headers={"X-App-Added": "client"}).json()
    assert seen["app_set"] == "from-app"
    # add_request_header adds after what the client sent.
    assert seen["app_added"] == ["client", "added"]
    assert call(module_server.port, "/request/x").json()["app_added"] == ["added"]
    # What the app sets is the value the handler reads, whatever the client sent.
    assert call(module_server.port, "/request/x", headers={"X-App-Set": "client"}).json()["app_set"] == "from-app"


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/returns/str", "GET", 200),
        ("/returns/str", "HEAD", 200),
        ("/nowhere", "GET", 404),
        ("/returns/str", "BREW", 405),
        ("/explode", "GET", 500),
        ("/private", "GET", 401),
        ("/sse", "GET", 200),
        ("/returns/cookies", "GET", 200),
    ],
)
def test_global_response_headers_are_on_every_response(module_server, path, method, status):
    reply = call(module_server.port, path, method)
    assert reply.status == status
    assert (reply.all("x-served-by"), reply.all("x-powered")) == (["http-api"], ["tests"])


def test_a_header_the_response_has_is_not_overwritten_and_excluded_paths_get_none(module_server):
    reply = call(module_server.port, "/own_header")
    assert (reply.body, reply.all("x-served-by"), reply.all("x-powered")) == (b"mine", ["the-route"], ["tests"])
    reply = call(module_server.port, "/bare")
    assert (reply.status, reply.body) == (200, b"no global headers here")
    assert (reply.header("x-served-by"), reply.header("x-powered")) == (None, None)


def test_an_excluded_path_with_a_trailing_slash_is_excluded_too(module_server):
    reply = call(module_server.port, "/bare/")
    assert (reply.status, reply.body) == (200, b"no global headers here")
    assert reply.header("x-served-by") is None


# -- Authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "open-sesame", "Basic open-sesame"])
def test_an_auth_required_route_refuses_without_the_right_bearer_token(module_server, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = call(module_server.port, "/private", headers=headers)
    assert (reply.status, reply.body, reply.header("www-authenticate")) == (401, b"Unauthorized", "BearerGetter")


def test_an_auth_required_route_answers_with_the_token_and_sees_the_identity(module_server):
    reply = call(module_server.port, "/private", headers={"Authorization": "Bearer open-sesame"})
    assert (reply.status, reply.body) == (200, b"hello ann")


# -- Streamed answers (tests/test_streaming.py has the rest) ---------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [("/sse", "text/event-stream", b"data: one\n\n"), ("/stream", "application/octet-stream", b"chunk")],
)
async def test_a_streamed_answer_is_sent_chunked(module_server, path, content_type, body):
    reply = await asyncio.to_thread(call, module_server.port, path)
    assert (reply.status, reply.header("content-type"), reply.body) == (200, content_type, body)
    assert (reply.header("transfer-encoding"), reply.header("content-length")) == ("chunked", None)


# -- Where handlers run -----------------------------------------------------------------------


def test_sync_handlers_run_off_the_event_loops_thread(module_server):
    on_loop = call(module_server.port, "/thread/async").json()
    for _ in range(3):
        on_worker = call(module_server.port, "/thread/sync").json()
        assert on_worker["name"] != on_loop["name"]
        assert on_worker["ident"] != on_loop["ident"]
    assert call(module_server.port, "/thread/async").json() == on_loop


async def test_sync_threads_bounds_how_many_sync_handlers_run_at_once(start_server):
    """With --sync-threads 2, two blocked handlers hold both threads: a third waits until one
    is released, then runs on the thread that freed up."""
    server = start_server("http_api_workers", "--sync-threads", "2")

    def block(name: str) -> asyncio.Task[Reply]:
        return asyncio.create_task(asyncio.to_thread(call, server.port, f"/block/{name}"))

    async def unblock(name: str) -> None:
        reply = await asyncio.to_thread(call, server.port, f"/unblock/{name}")
        assert (reply.status, reply.text) == (200, f"unblocked {name}")

    first, second = block("a"), block("b")
    await server.until(r"started [ab] on ", count=2)
    third = block("c")
    await server.until(r"^arrived c$")
    # The third has reached Python (its async middleware ran on the loop) and waits for a thread.
    assert server.count(r"started c ") == 0
    await unblock("a")
    a = (await first).json()
    (started,) = await server.until(r"started c on (\S+) with (\d+) running")
    assert not second.done()
    assert started.group(1) == a["thread"]
    await unblock("b")
    await unblock("c")
    b, c = (await second).json(), (await third).json()
    assert all(result["released"] for result in (a, b, c))
    assert max(result["running_at_start"] for result in (a, b, c)) == 2
    assert c["running_at_start"] == 2
    assert c["thread"] == a["thread"] != b["thread"]


# -- Bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /no spaces allowed HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
        (b"GET /returns/str HTTP/9.9\r\nHost: x\r\n\r\n", b"400"),
        (b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
        (b"GET /request/x?q=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
        (b"GET /returns/str?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"431"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), b"400"),  # TLS on the plain port
    ],
    ids=["not-http", "spaces-in-path", "http-9.9", "non-utf8-path", "non-utf8-query", "huge-query", "tls-hello"],
)
async def test_a_malformed_request_is_a_4xx_and_the_server_serves_on(module_server, raw, status):
    data = await asyncio.to_thread(exchange, module_server.port, raw)
    assert data.startswith(b"HTTP/1.1 " + status + b" "), data[:200]
    reply = await asyncio.to_thread(call, module_server.port, "/returns/str")
    assert (reply.status, reply.body) == (200, b"plain text")
    await still_serves(module_server)


def test_a_long_query_string_under_the_limit_arrives_whole(module_server):
    value = "é" * 1000 + "x" * 4000  # 10 KiB once percent-encoded
    seen = call(module_server.port, f"/request/x?a={urllib.request.quote(value)}").json()
    assert seen["query_get"] == value


def test_a_percent_encoded_path_that_is_not_utf8_is_decoded_lossily(module_server):
    assert call(module_server.port, "/caf%e9").status == 404
    seen = call(module_server.port, "/request/%ff%fe").json()
    assert seen["path_params"] == {"kind": "\ufffd\ufffd"}
    assert seen["path"] == "/request/\ufffd\ufffd"
