"""Endpoints for the limits, backpressure and fault tests. Handlers print what they saw, so
tests can wait for those lines."""

import asyncio
import secrets
import time

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)
released = asyncio.Event()


def say(*parts: object) -> None:
    print(*parts, flush=True)


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        if isinstance(message, str):
            await websocket.send_text(message)
        else:
            await websocket.send_bytes(message)


@app.websocket("/watch")
async def watch(websocket):
    """Reports how the connection ended, and that on_close ran."""
    try:
        while True:
            await websocket.send_text(str(await websocket.receive()))
    except WebSocketDisconnect as gone:
        say(f"{websocket.id} disconnect code={gone.code} reason={gone.reason!r}")
        raise


@watch.on_close
def watch_closed(websocket):
    say(f"{websocket.id} on_close")


@app.websocket("/hoard")
async def hoard(websocket):
    """Takes no message until /release is visited, then reports what arrived."""
    await websocket.send_text("hoarding")
    await released.wait()
    count = 0
    async for message in websocket:
        if message == "end":
            break
        count += 1
        if not message.startswith(f"{count}:"):
            await websocket.send_text(f"out of order at {count}")
            return
    await websocket.send_text(f"received {count} in order")


@app.websocket("/release")
async def release(websocket):
    released.set()
    await websocket.send_text("released")
    await websocket.receive_text()


@app.websocket("/flood")
async def flood(websocket):
    """`N SIZE`: sends N numbered messages of SIZE bytes to a client that may not be reading.
    The bytes are random, so compression cannot shrink them."""
    count, size = map(int, (await websocket.receive_text()).split())
    waited = False
    for n in range(count):
        message = f"{n}:" + secrets.token_hex(size)[: size - len(f"{n}:")]
        send = asyncio.ensure_future(websocket.send_text(message))
        if waited:
            await send
            continue
        try:
            await asyncio.wait_for(asyncio.shield(send), 2.0)
        except TimeoutError:
            # The queue was full for two seconds: send_text waits for the client, as it must.
            waited = True
            say("send waited for the client")
            await send
    await websocket.send_text("done")
    await websocket.receive_text()


@app.websocket("/broadcast")
async def broadcast(websocket):
    try:
        while True:
            await websocket.broadcast(await websocket.receive())
    except WebSocketDisconnect as gone:
        say(f"broadcast client left with {gone.code}")
        raise


@app.websocket("/block")
async def block(websocket):
    async for message in websocket:
        if message == "block":
            time.sleep(1.5)
        await websocket.send_text(f"done {message}")


@app.get("/block_http")
async def block_http():
    time.sleep(1.5)  # blocks the loop: an async handler must not, and the watchdog says so
    return "unblocked"


@app.websocket("/idle")
async def idle(websocket):
    """Tells the client its id, then only waits for it to leave."""
    await websocket.send_text(websocket.id)
    async for _ in websocket:
        pass


@app.websocket("/send-to")
async def send_to(websocket):
    """`ID COUNT SIZE`: sends COUNT messages of SIZE random bytes to connection ID with
    `send_to`, without waiting, and answers with what each call returned."""
    async for request in websocket:
        target, count, size = request.split()
        payload = secrets.token_bytes(int(size))
        results = [await websocket.send_to(target, payload) for _ in range(int(count))]
        await websocket.send_text(" ".join("T" if queued else "F" for queued in results))


@app.websocket("/fail")
async def fail(websocket):
    """Fails the same way for every client."""
    raise ValueError("this handler always fails")
