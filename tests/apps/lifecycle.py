"""on_connect, on_close, handler endings, and failures in each of them. Every callback prints
what it did, so tests can wait for those lines."""

import asyncio

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)


def say(*parts: object) -> None:
    print(*parts, flush=True)


@app.websocket("/sync-callbacks")
async def sync_callbacks(websocket):
    async for message in websocket:
        await websocket.send_text(f"echo {message}")


@sync_callbacks.on_connect
def sync_connect(websocket):
    return f"hello {websocket.id}"


@sync_callbacks.on_close
def sync_close(websocket):
    say("on_close", websocket.id)
    return "goodbye"


@app.websocket("/async-callbacks")
async def async_callbacks(websocket):
    await websocket.send_text("handler started")
    await websocket.receive_text()


@async_callbacks.on_connect
async def async_connect(websocket):
    await asyncio.sleep(0.01)
    return {"welcome": websocket.id, "list": [1, 2]}


@async_callbacks.on_close
async def async_close(websocket):
    await asyncio.sleep(0)
    return b"\x00bye"


@app.websocket("/no-greeting")
async def no_greeting(websocket):
    await websocket.send_text("first from handler")
    await websocket.receive_text()


@no_greeting.on_connect
def silent_connect(websocket):
    return None


@app.websocket("/returns")
async def returns(websocket):
    await websocket.send_text("done")


@returns.on_close
def returns_close(websocket):
    say("on_close", websocket.id)
    return "closing now"


@app.websocket("/raises")
async def raises(websocket):
    message = await websocket.receive_text()
    if message == "fail":
        raise RuntimeError("boom in the handler")
    await websocket.send_text(f"fine: {message}")
    await websocket.receive_text()


@raises.on_close
def raises_close(websocket):
    say("on_close", websocket.id)
    return "after the failure"


@app.websocket("/connect-raises")
async def connect_raises(websocket):
    say("handler ran", websocket.id)


@connect_raises.on_connect
def failing_connect(websocket):
    raise ValueError("no entry")


@connect_raises.on_close
def connect_raises_close(websocket):
    say("on_close", websocket.id)


@app.websocket("/close-raises")
async def close_raises(websocket):
    await websocket.send_text("bye soon")


@close_raises.on_close
def failing_close(websocket):
    raise KeyError("on_close broke")


@app.websocket("/close-in-handler")
async def close_in_handler(websocket):
    await websocket.receive_text()
    await websocket.close(4000, "handler closed")
    say("after close()", websocket.id)


@close_in_handler.on_close
def close_in_handler_close(websocket):
    say("on_close", websocket.id)
    return "farewell before 4000"


@app.websocket("/client-closes")
async def client_closes(websocket):
    try:
        await websocket.receive_text()
    except WebSocketDisconnect as gone:
        say("disconnect", websocket.id, gone.code)
        raise


@client_closes.on_close
def client_closes_close(websocket):
    say("on_close", websocket.id)
    return "nobody hears this"


@app.websocket("/greeting-first")
async def greeting_first(websocket):
    """Broadcasts everything; a newcomer must still get its greeting before anything else."""
    await websocket.send_text("handler says hi")
    async for message in websocket:
        await websocket.broadcast(message)


@greeting_first.on_connect
async def slow_greeting(websocket):
    await asyncio.sleep(0.05)
    return "greeting"
