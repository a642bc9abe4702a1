"""A Robyn app using the HTTP API as users write it: what tests/test_http_api.py asks of the
request, the returns, middlewares and contextvars, the exception handler, dependency
injection, easy-access parameters, SubRouters, global headers, authentication, what is not
served yet and where handlers run."""

import asyncio
import contextvars
import pathlib
import threading

from robyn import (
    Headers,
    Request,
    Response,
    Robyn,
    SSEMessage,
    SSEResponse,
    StreamingResponse,
    SubRouter,
    WebSocketDisconnect,
    html,
    jsonify,
    serve_file,
    serve_html,
)
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity
from robyn.templating import JinjaTemplate
from robyn.types import JsonBody

app = Robyn(__file__)
here = pathlib.Path(__file__).parent
files = here / "http_api_files"
templates = JinjaTemplate(str(here / "templates"))

app.set_request_header("x-app-set", "from-app")
app.add_request_header("x-app-added", "added")
app.set_response_header("x-served-by", "http-api")
app.add_response_header("x-powered", "tests")
app.exclude_response_headers_for(["/bare"])
app.inject_global(config={"env": "test"})
app.inject(db="app-db")


# -- The request ------------------------------------------------------------------------------


def inspect_request(request: Request):
    body = request.body
    query = request.query_params
    return {
        "method": request.method,
        "scheme": request.url.scheme,
        "host": request.url.host,
        "path": request.url.path,
        "path_params": request.path_params,
        "mixed_case": [
            request.headers.get("x-mixed-case"),
            request.headers.get("X-MIXED-CASE"),
            "X-Mixed-Case" in request.headers,
        ],
        "repeated": request.headers.get_all("X-Repeated"),
        "app_set": request.headers.get("X-App-Set"),
        "app_added": request.headers.get_all("x-app-added"),
        "query_get": query.get("a"),
        "query_default": query.get("missing", "fallback"),
        "query_all": query.get_all("a"),
        "query_dict": query.to_dict(),
        "queries": query.queries,
        "body_type": type(body).__name__,
        "body": body if isinstance(body, str) else list(body),
        "ip_addr": request.ip_addr,
    }


app.get("/request/:kind")(inspect_request)
app.post("/request/:kind")(inspect_request)
app.add_route("PUT", "/request/:kind", inspect_request)


@app.post("/json")
def parse_json(request: Request):
    return {"parsed": request.json()}


@app.post("/json_body")
async def json_body(body: JsonBody):
    return {"parsed": body}


@app.post("/form")
def form(request: Request):
    return request.form_data


# -- Returns ----------------------------------------------------------------------------------


@app.get("/returns/str")
def returns_str():
    return "plain text"


@app.get("/returns/bytes")
async def returns_bytes():
    return b"\x00\xffraw"


@app.get("/returns/dict")
def returns_dict():
    return {"name": "ann", "tags": ["a", "b"], "nested": {"n": 1}}


@app.get("/returns/list")
async def returns_list():
    return [1, "two", None, True]


@app.get("/returns/response")
def returns_response():
    return Response(201, {"X-Made": "by-route", "Content-Type": "text/x-custom"}, "made")


@app.get("/returns/headers")
async def returns_headers():
    headers = Headers({"x-one": "1"})
    headers.append("x-multi", "a")
    headers.append("x-multi", "b")
    return Response(200, headers, b"with headers")


@app.get("/returns/status/:code")
def returns_status(code: int):
    return Response(code, {"Location": "/returns/str"} if 300 <= code < 400 else {}, "" if code == 204 else str(code))


@app.post("/returns/created", status_code=201)
def returns_created():
    return {"created": True}


@app.get("/returns/tuple")
def returns_tuple():
    return {"from": "tuple"}, {"x-tuple": "yes"}, 202


@app.get("/returns/cookies")
def returns_cookies():
    response = Response(200, {}, "cookies set")
    response.set_cookie(
        "session",
        "abc123",
        path="/",
        domain="example.test",
        max_age=3600,
        secure=True,
        http_only=True,
        same_site="strict",
    )
    response.set_cookie("theme", "light")
    response.set_cookie("theme", "dark")  # replaces the first
    response.set_cookie("cross", "1", same_site="None", expires="Wed, 21 Oct 2037 07:28:00 GMT")
    return response


@app.get("/returns/jsonify")
def returns_jsonify():
    return jsonify({"a": [1, 2], "é": None})


@app.get("/returns/html")
def returns_html():
    return html("<h1>hi</h1>")


@app.get("/returns/file")
def returns_file():
    return serve_file(str(files / "report.csv"))


@app.get("/returns/file_named")
async def returns_file_named():
    return serve_file(str(files / "blob.bin"), file_name="Bericht für 2024.bin")


@app.get("/returns/serve_html")
def returns_serve_html():
    return serve_html(str(files / "page.html"))


@app.get("/returns/template")
def returns_template(name: str):
    return templates.render_template("greeting.html", name=name, items=["one", "<two>"])


async def later() -> str:
    await asyncio.sleep(0)
    return "awaited"


# A plain def handing back a coroutine (as a decorator's wrapper does): it is awaited.
@app.get("/returns/coroutine")
def returns_coroutine():
    return later()


# -- Middlewares and contextvars --------------------------------------------------------------

steps: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("steps", default=())


def step(name: str) -> tuple[str, ...]:
    steps.set((*steps.get(), name))
    return steps.get()


@app.before_request()
def global_before(request: Request):
    step("global-before")
    return request


@app.after_request()
def global_after(request: Request, response: Response):
    response.headers.set("x-steps", ",".join(step("global-after")))
    response.headers.set("x-global-after", request.url.path)
    return response


def seen(request: Request) -> dict:
    """What a handler saw: the steps so far (itself included) and the header a route's
    before-middleware set on the request."""
    return {
        "steps": list(step(f"handler@{threading.current_thread().name}")),
        "header": request.headers.get("x-route-before"),
    }


@app.get("/mw/sync")
def mw_sync(request: Request):
    return seen(request)


@app.before_request("/mw/sync")
def mw_sync_before(request: Request):
    step("route-before")
    request.headers.set("x-route-before", "set")
    return request


@app.after_request("/mw/sync")
def mw_sync_after(response: Response):
    response.headers.set("x-steps", ",".join(step("route-after")))
    return response


@app.get("/mw/async")
async def mw_async(request: Request):
    await asyncio.sleep(0)
    return seen(request)


@app.before_request("/mw/async")
async def mw_async_before(request: Request):
    await asyncio.sleep(0)
    step("route-before")
    request.headers.set("x-route-before", "set")
    return request


@app.after_request("/mw/async")
async def mw_async_after(response: Response):
    await asyncio.sleep(0)
    response.headers.set("x-steps", ",".join(step("route-after")))
    return response


# A sync handler between async middlewares: it runs on a worker, in the same context.
@app.get("/mw/mixed")
def mw_mixed(request: Request):
    return seen(request)


@app.before_request("/mw/mixed")
async def mw_mixed_before(request: Request):
    step("route-before")
    request.headers.set("x-route-before", "set")
    return request


@app.after_request("/mw/mixed")
def mw_mixed_after(response: Response):
    response.headers.set("x-steps", ",".join(step("route-after")))
    return response


guarded_runs = 0


@app.before_request("/guarded")
async def guard(request: Request):
    if request.headers.get("x-pass") != "yes":
        return Response(403, {"x-guard": "refused"}, "blocked by the guard")
    return request


@app.get("/guarded")
def guarded():
    global guarded_runs
    guarded_runs += 1
    return f"runs={guarded_runs}"


# A before-middleware returning None lets the request through (Robyn answers 500).
@app.before_request("/let_through")
def let_through_before(request: Request):
    return None


@app.get("/let_through")
def let_through():
    return "through"


# Each request's ContextVar value, held while another request sets its own.
who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
held_async: dict[str, asyncio.Event] = {}
held_sync: dict[str, threading.Event] = {}


@app.before_request("/ctx/async/:name")
async def ctx_async_before(request: Request):
    who.set(request.path_params["name"])
    return request


@app.get("/ctx/async/:name")
async def ctx_async(name: str):
    if name == "first":
        event = held_async[name] = asyncio.Event()
        print("ctx async first is waiting", flush=True)
        await asyncio.wait_for(event.wait(), 30)
    return who.get()


@app.before_request("/ctx/sync/:name")
def ctx_sync_before(request: Request):
    who.set(request.path_params["name"])
    return request


@app.get("/ctx/sync/:name")
def ctx_sync(name: str):
    if name == "first":
        gate = held_sync[name] = threading.Event()
        print("ctx sync first is waiting", flush=True)
        gate.wait(30)
    return who.get()


@app.get("/ctx/release/:kind")
async def ctx_release(kind: str):
    (held_async if kind == "async" else held_sync).pop("first").set()
    return "released"


# -- Failures ---------------------------------------------------------------------------------


@app.get("/explode")
def explode():
    return 1 / 0


@app.get("/explode_async")
async def explode_async():
    raise LookupError("nothing here")


# -- Dependency injection, easy-access parameters ---------------------------------------------


@app.get("/deps")
def deps(global_dependencies, router_dependencies):
    return {"global": global_dependencies["config"], "router": router_dependencies}


@app.get("/easy/:item_id")
def easy(item_id: int, ratio: float, flag: bool, tags: list[int], note: str | None = None, page: int = 1):
    return {"item_id": item_id, "ratio": ratio, "flag": flag, "tags": tags, "note": note, "page": page}


# -- Global headers ---------------------------------------------------------------------------


@app.get("/bare")
def bare():
    return "no global headers here"


@app.get("/reflect")
def reflect(value: str):
    return Response(200, {"x-reflect": value}, "reflected")


@app.get("/own_header")
def own_header():
    return Response(200, {"x-served-by": "the-route"}, "mine")


# -- Authentication ---------------------------------------------------------------------------


class TokenAuthentication(AuthenticationHandler):
    def authenticate(self, request: Request):
        if self.token_getter.get_token(request) == "open-sesame":
            return Identity(claims={"user": "ann"})
        return None


app.configure_authentication(TokenAuthentication(token_getter=BearerGetter()))


@app.get("/private", auth_required=True)
def private(request: Request):
    return f"hello {request.identity.claims['user']}"


# -- Not served yet ---------------------------------------------------------------------------


@app.get("/sse")
def sse():
    def events():
        yield SSEMessage("one")

    return SSEResponse(events())


@app.get("/stream")
async def stream():
    async def chunks():
        yield b"chunk"

    return StreamingResponse(chunks(), media_type="application/octet-stream")


# -- Where handlers run -----------------------------------------------------------------------


@app.get("/thread/sync")
def thread_sync():
    return {"name": threading.current_thread().name, "ident": threading.get_ident()}


@app.get("/thread/async")
async def thread_async():
    return {"name": threading.current_thread().name, "ident": threading.get_ident()}


# -- SubRouters -------------------------------------------------------------------------------

api = SubRouter(__file__, prefix="/api")
api.inject(db="api-db", cache="api-cache")
v1 = SubRouter(prefix="/v1")
v1.inject(extra="v1")


@api.get("/")
def api_root():
    return "api root"


@v1.get("/items/:id")
async def v1_item(request: Request, router_dependencies):
    return {"id": request.path_params["id"], "path": request.url.path, "router": router_dependencies}


@v1.after_request("/items/:id")
def v1_after(response: Response):
    response.headers.set("x-v1-after", "yes")
    return response


api.include_router(v1)
app.include_router(api)


@app.websocket("/echo")
async def echo(websocket):
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


# -- The exception handler: for the routes registered from here on ----------------------------


@app.exception
def handle_exception(error: Exception):
    return Response(409, {"x-handled": type(error).__name__}, f"handled: {error}")


@app.get("/handled")
def handled():
    raise KeyError("missing thing")


@app.get("/handled_async")
async def handled_async():
    raise ValueError("bad value")


app.start()
