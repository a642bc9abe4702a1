"""The presence and history part of the benchmark (bench/presence.py): our server only, since
no peer has presence, user addressing or history."""

import os
import time

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)


@app.websocket("/broadcast")
async def broadcast(websocket):
    try:
        while True:
            await websocket.broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.websocket("/kept", history=100)
async def kept(websocket):
    # The same broadcast, kept in the route's history (and given an offset).
    try:
        while True:
            await websocket.broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.websocket("/kept_offset", history=100)
async def kept_offset(websocket):
    # Kept, with the offset put into the message by a function of it.
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.broadcast(lambda offset, text=text: f"{text} {offset}")
    except WebSocketDisconnect:
        pass


@app.websocket("/relay")
async def relay(websocket):
    # ws-loadgen's relay load over a broadcast, the baseline of the one over send_to_user.
    await websocket.send_text(f"pid {os.getpid()}")
    try:
        while True:
            await websocket.broadcast(await websocket.receive_text(), exclude_self=True)
    except WebSocketDisconnect:
        pass


@app.websocket("/relay_user")
async def relay_user(websocket):
    # ws-loadgen's relay load over send_to_user: the publisher connects as ?as=pub, the
    # subscriber as ?as=sub, and every message of the publisher goes to the user "sub".
    await websocket.send_text(f"pid {os.getpid()}")
    try:
        while True:
            await websocket.send_to_user("sub", await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@relay_user.on_connect
def relay_identify(websocket):
    websocket.identify(websocket.query_params.get("as", "pub"))


@app.websocket("/crowd")
async def crowd(websocket):
    # Identified by ?user=; in the room "crowd". "probe N": N presence queries timed here;
    # "has NAME": whether presence lists NAME yet.
    websocket.join("crowd")
    await websocket.send_text(f"pid {os.getpid()}")
    try:
        while True:
            command, _, argument = (await websocket.receive_text()).partition(" ")
            if command == "probe":
                took = []
                for _ in range(int(argument)):
                    start = time.perf_counter_ns()
                    present = await websocket.presence("crowd")
                    took.append(time.perf_counter_ns() - start)
                took.sort()
                p50, p99 = took[len(took) // 2], took[min(len(took) - 1, len(took) * 99 // 100)]
                await websocket.send_json({"users": len(present), "p50_us": p50 / 1000, "p99_us": p99 / 1000})
            elif command == "has":
                await websocket.send_text("yes" if argument in await websocket.presence("crowd") else "no")
    except WebSocketDisconnect:
        pass


@crowd.on_connect
def crowd_identify(websocket):
    websocket.identify(websocket.query_params.get("user", "anonymous"))
