"""A Robyn app serving HTTP routes beside its WebSocket ones: what tests/test_http_routes.py
asks of the HTTP side (returns, limits, folders, middlewares, a slow sync handler)."""

import asyncio
import pathlib
import threading

from robyn import Request, Response, Robyn, WebSocketDisconnect

app = Robyn(__file__)
here = pathlib.Path(__file__).parent
app.serve_directory("/files", str(here / "http_files" / "site"), index_file="index.html")


@app.get("/")
async def index():
    return "<h1>chat</h1>"


@app.get("/health")
def health():
    return {"status": "app's own"}


@app.get("/sync")
def sync_route():
    return "sync"


@app.get("/items/:id")
async def item(request: Request):
    return {"id": request.path_params["id"], "q": request.query_params.get("q", "")}


@app.post("/echo_body")
async def echo_body(request: Request):
    body = request.body
    raw = body if isinstance(body, bytes) else body.encode()
    return Response(200, {"content-type": "application/octet-stream"}, raw)


@app.get("/counted", const=True)
def counted():
    counted.calls += 1  # type: ignore[attr-defined]
    return f"call {counted.calls}"  # type: ignore[attr-defined]


counted.calls = 0  # type: ignore[attr-defined]


# /slow blocks its thread until /release: never the event loop.
gate = threading.Event()


@app.get("/slow")
def slow():
    print("the slow handler is waiting", flush=True)
    gate.wait(30)
    return "slow done"


@app.get("/release")
def release():
    gate.set()
    return "released"


@app.get("/raise")
async def raises():
    raise RuntimeError("boom")


@app.websocket("/echo")
async def echo(websocket):
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.get("/async_sleep")
async def async_sleep():
    await asyncio.sleep(0.01)
    return "slept"


app.start()
