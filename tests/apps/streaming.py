"""Streamed responses (StreamingResponse, SSEResponse) and multipart bodies, for
tests/test_streaming.py. Every generator counts what it did under the `key` query parameter
(started, produced, closed), and `/state` reports the counts, so tests wait for the server's
side of a stream by polling instead of sleeping. `/release?key=` lets a generator that waits
for it go on."""

import asyncio
import struct
import threading
import time

from robyn import Request, Robyn, SSEMessage, SSEResponse, StreamingResponse

app = Robyn(__file__)

BLOCK = 64 * 1024

started: dict[str, int] = {}
produced: dict[str, int] = {}
closed: dict[str, int] = {}
async_releases: dict[str, asyncio.Event] = {}
sync_releases: dict[str, threading.Event] = {}
counts_lock = threading.Lock()


def say(*parts: object) -> None:
    print(*parts, flush=True)


def bump(counts: dict[str, int], key: str) -> None:
    with counts_lock:
        counts[key] = counts.get(key, 0) + 1


def key_of(request: Request) -> str:
    return request.query_params.get("key", "default")


def async_release(key: str) -> asyncio.Event:
    return async_releases.setdefault(key, asyncio.Event())


def sync_release(key: str) -> threading.Event:
    with counts_lock:
        return sync_releases.setdefault(key, threading.Event())


@app.get("/state")
def state():
    with counts_lock:
        return {
            "started": dict(started),
            "produced": dict(produced),
            "closed": dict(closed),
            "subscribers": len(subscribers),
            "ws_clients": len(app.connections("/ticks")),
        }


@app.post("/release")
async def release(request: Request):
    key = key_of(request)
    async_release(key).set()
    sync_release(key).set()
    return "released"


# -- chunks as they are produced --------------------------------------------------------------


@app.get("/async-release")
async def async_released(request: Request):
    key = key_of(request)
    event = async_release(key)

    async def chunks():
        bump(started, key)
        try:
            yield "first\n"
            await event.wait()
            yield "second\n"
            yield b"third\n"
        finally:
            bump(closed, key)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/sync-release")
def sync_released(request: Request):
    key = key_of(request)
    event = sync_release(key)

    def chunks():
        bump(started, key)
        try:
            yield "first\n"
            event.wait(30)
            yield "second\n"
            yield b"third\n"
        finally:
            bump(closed, key)

    return StreamingResponse(chunks(), media_type="text/plain")


# -- backpressure ------------------------------------------------------------------------------


@app.get("/flood")
async def flood(request: Request):
    """`total` blocks of 64 KiB, each its index (4 bytes, big-endian) repeated."""
    key = key_of(request)
    total = int(request.query_params.get("total", "512"))

    async def chunks():
        bump(started, key)
        try:
            for index in range(total):
                yield struct.pack(">I", index) * (BLOCK // 4)
                bump(produced, key)
        finally:
            bump(closed, key)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


# -- idle streams: the client goes away, shutdown, HEAD, keep-alive ---------------------------


@app.get("/async-hang")
async def async_hang(request: Request):
    key = key_of(request)
    media_type = request.query_params.get("type", "text/plain")

    async def chunks():
        bump(started, key)
        try:
            yield "ready\n"
            await asyncio.sleep(3600)
            yield "never\n"
        finally:
            bump(closed, key)
            say(f"async generator {key} finally ran")

    return StreamingResponse(chunks(), media_type=media_type)


@app.get("/sync-ticks")
def sync_ticks(request: Request):
    """Yields every 50 ms, for ever."""
    key = key_of(request)

    def chunks():
        bump(started, key)
        try:
            yield "ready\n"
            while True:
                time.sleep(0.05)
                bump(produced, key)
                yield "."
        finally:
            bump(closed, key)
            say(f"sync generator {key} finally ran")

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/idle")
async def idle(request: Request):
    """An event stream (or with `?type=` another type) that sends one piece, then nothing
    until released, then one more and ends."""
    key = key_of(request)
    event = async_release(key)
    events = request.query_params.get("type", "text/event-stream") == "text/event-stream"

    async def chunks():
        yield SSEMessage("start") if events else "start\n"
        await event.wait()
        yield SSEMessage("end") if events else "end\n"

    if events:
        return SSEResponse(chunks())
    return StreamingResponse(chunks(), media_type=request.query_params.get("type"))


# -- Last-Event-ID ------------------------------------------------------------------------------


@app.get("/events")
async def events(request: Request):
    last = request.headers.get("last-event-id")
    first = int(last) + 1 if last else 1

    async def chunks():
        for number in range(first, first + 3):
            yield SSEMessage(f"event {number} (last seen {last})", event="count", id=str(number))

    return SSEResponse(chunks())


# -- one coroutine feeds SSE subscribers and WebSocket clients ---------------------------------

subscribers: set[asyncio.Queue] = set()
wanted_ticks: asyncio.Queue = asyncio.Queue()


async def ticker() -> None:
    tick = 0
    while True:
        count = await wanted_ticks.get()
        for _ in range(count):
            tick += 1
            for queue in list(subscribers):
                queue.put_nowait(tick)
            await app.broadcast("/ticks", f"tick {tick}")


background: list[asyncio.Task] = []


@app.startup_handler
async def start_ticker() -> None:
    background.append(asyncio.get_running_loop().create_task(ticker()))


@app.post("/tick")
async def tick(request: Request):
    await wanted_ticks.put(int(request.query_params.get("count", "1")))
    return "ok"


@app.get("/tick-stream")
async def tick_stream():
    async def chunks():
        queue: asyncio.Queue = asyncio.Queue()
        subscribers.add(queue)
        try:
            yield ": subscribed\n\n"
            while True:
                yield SSEMessage(f"tick {await queue.get()}", event="tick")
        finally:
            subscribers.discard(queue)

    return SSEResponse(chunks())


@app.websocket("/ticks")
async def ticks(websocket):
    async for _ in websocket:
        pass


# -- failures midway ---------------------------------------------------------------------------


@app.get("/raise")
async def raising(request: Request):
    """Fails after its first chunk, once released."""
    event = async_release(key_of(request))

    async def chunks():
        yield "partial\n"
        await event.wait()
        raise RuntimeError("async stream boom midway")

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/sync-raise")
def sync_raising(request: Request):
    event = sync_release(key_of(request))

    def chunks():
        yield "partial\n"
        event.wait(30)
        raise ValueError("sync stream boom midway")

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/yield-int")
async def yield_int(request: Request):
    event = async_release(key_of(request))

    async def chunks():
        yield "partial\n"
        await event.wait()
        yield 42

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/raise-at-once")
async def raising_at_once():
    """Fails right after its first chunk, on the same turn of the loop."""

    async def chunks():
        yield "partial\n"
        raise RuntimeError("async stream boom at once")

    return StreamingResponse(chunks(), media_type="text/plain")


# -- multipart ---------------------------------------------------------------------------------


@app.post("/upload")
def upload(request: Request):
    return {
        "files": {name: data.hex() for name, data in request.files.items()},
        "form": request.form_data,
    }


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)
