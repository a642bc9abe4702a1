"""The benchmark's app in Robyn's API: the same file runs on robyn-ws-server
(`--app bench.apps.robyn_app`) and on Robyn itself (`PORT=... python robyn_app.py`)."""

import os

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)


@app.websocket("/echo")
async def echo(websocket):
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.websocket("/broadcast")
async def broadcast(websocket):
    try:
        while True:
            await websocket.broadcast(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.websocket("/relay")
async def relay(websocket):
    # The scale-out loads only (bench/scaleout.py): which process serves this client, then
    # every message to the endpoint's other clients, wherever they are.
    await websocket.send_text(f"pid {os.getpid()}")
    try:
        while True:
            await websocket.broadcast(await websocket.receive_text(), exclude_self=True)
    except WebSocketDisconnect:
        pass


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=int(os.environ["PORT"]))
