"""A handler that ignores the disconnect and keeps running."""

import asyncio

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)


@app.websocket("/stubborn")
async def stubborn(websocket):
    await websocket.send_text("ready")
    try:
        await websocket.receive_text()
    except WebSocketDisconnect:
        print("ignoring the disconnect", flush=True)
        await asyncio.sleep(3600)


@stubborn.on_close
def stubborn_close(websocket):
    print("on_close after cancellation", flush=True)


@app.shutdown_handler
def done():
    print("shutdown handler ran", flush=True)
