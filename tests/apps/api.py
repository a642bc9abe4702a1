"""Endpoints exercising every method and property of the websocket object."""

import asyncio
import json

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)


@app.websocket("/echo")
async def echo(websocket):
    """Text as text, binary as binary, through `receive()`."""
    while True:
        message = await websocket.receive()
        if isinstance(message, str):
            await websocket.send_text(message)
        else:
            await websocket.send_bytes(message)


@app.websocket("/text")
async def text(websocket):
    while True:
        message = await websocket.receive_text()
        await websocket.send_text(f"{type(message).__name__}:{message}")


@app.websocket("/iter-text")
async def iter_text(websocket):
    async for message in websocket.iter_text():
        await websocket.send_text(f"{type(message).__name__}:{message}")
    print(f"iter_text ended for {websocket.id}", flush=True)


@app.websocket("/bytes")
async def as_bytes(websocket):
    while True:
        message = await websocket.receive_bytes()
        await websocket.send_bytes(bytes([len(message)]) + message)


@app.websocket("/json")
async def as_json(websocket):
    while True:
        try:
            data = await websocket.receive_json()
        except json.JSONDecodeError as error:
            await websocket.send_text(
                f"invalid JSON: {type(error).__name__}, a ValueError: {isinstance(error, ValueError)}"
            )
            continue
        await websocket.send_json({"got": data, "type": type(data).__name__})


@app.websocket("/sends")
async def sends(websocket):
    """Each command sends one way; a wrong type answers with the exception it raised."""
    samples = {
        "text": lambda: websocket.send_text("plain text"),
        "bytes": lambda: websocket.send_bytes(b"\x00\x01\xff"),
        "bytearray": lambda: websocket.send_bytes(bytearray(b"array")),
        "memoryview": lambda: websocket.send_bytes(memoryview(b"view")),
        "json": lambda: websocket.send_json({"a": [1, 2.5, None, True], "é": "ü"}),
        "text-with-bytes": lambda: websocket.send_text(b"not text"),
        "bytes-with-text": lambda: websocket.send_bytes("not bytes"),
        "json-unserialisable": lambda: websocket.send_json({"when": object()}),
        "text-with-surrogate": lambda: websocket.send_text("\ud800"),
        "broadcast-int": lambda: websocket.broadcast(42),
    }
    async for command in websocket:
        try:
            await samples[command]()
        except (TypeError, UnicodeEncodeError) as error:
            await websocket.send_text(f"{type(error).__name__}: {error}")


@app.websocket("/broadcast")
async def broadcast(websocket):
    async for message in websocket:
        await websocket.broadcast(message)


@app.websocket("/identity")
async def identity(websocket):
    await websocket.send_text(websocket.id)
    await websocket.send_text(websocket.id)  # stable for the connection's life
    await websocket.receive_text()


@app.websocket("/query")
async def query(websocket):
    params = websocket.query_params
    await websocket.send_json(
        {
            "get_a": params.get("a"),
            "get_missing": params.get("missing"),
            "get_missing_default": params.get("missing", "fallback"),
            "get_first_a": params.get_first("a"),
            "get_all_a": params.get_all("a"),
            "get_all_missing": params.get_all("missing"),
            "contains_b": params.contains("b"),
            "in_b": "b" in params,
            "in_missing": "missing" in params,
            "to_dict": params.to_dict(),
            "keys": params.keys(),
            "values": params.values(),
            "items": params.items(),
            "empty": params.empty(),
        }
    )
    await websocket.receive_text()


@app.websocket("/close")
async def close(websocket):
    """`close CODE REASON` closes; what the handler sees afterwards is printed."""
    command = await websocket.receive_text()
    _, code, *reason = command.split(" ", 2)
    try:
        await websocket.close(int(code), reason[0] if reason else "")
    except ValueError as error:
        await websocket.send_text(f"ValueError: {error}")
        await websocket.receive_text()
        return
    # Let messages the client sent after asking to close arrive: they must not be received.
    await asyncio.sleep(0.05)
    for attempt in ("receive_text", "send_text"):
        try:
            if attempt == "receive_text":
                await websocket.receive_text()
            else:
                await websocket.send_text("too late")
            print(f"{websocket.id} {attempt} after close: no exception", flush=True)
        except WebSocketDisconnect as disconnect:
            print(f"{websocket.id} {attempt} after close: {disconnect.code} {disconnect.reason!r}", flush=True)


@app.websocket("/disconnect")
async def disconnect(websocket):
    """Prints the WebSocketDisconnect the handler gets when the client goes away."""
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect as gone:
        print(f"{websocket.id} disconnected code={gone.code} reason={gone.reason!r}", flush=True)
        try:
            await websocket.send_text("anyone?")
        except WebSocketDisconnect as again:
            print(f"{websocket.id} send after disconnect raised code={again.code}", flush=True)


@app.websocket("/iterate")
async def iterate(websocket):
    count = 0
    async for message in websocket:
        count += 1
        await websocket.send_text(f"{count}:{message!r}")
    print(f"{websocket.id} iteration ended after {count}", flush=True)


@app.websocket("/left")
async def left(websocket):
    """The chat pattern: tell the others when a client leaves."""
    try:
        async for message in websocket:
            await websocket.broadcast(f"{websocket.id}: {message}")
    finally:
        await websocket.broadcast(f"{websocket.id} left")


@app.websocket("/live")
async def live(websocket):
    """How many connections the interpreter side still tracks, this one included."""
    from robyn import _native

    await websocket.send_text(str(_native.live_connections()))
    await websocket.receive_text()
