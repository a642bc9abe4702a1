"""Startup and shutdown handlers, sync and async."""

import asyncio
import logging

from robyn import Robyn, WebSocketDisconnect

app = Robyn(__file__)
state = {"started": False}
logging.getLogger("app").debug("import debug marker")
logging.getLogger("app").info("import info marker")


@app.startup_handler
async def warm_up():
    await asyncio.sleep(0.05)
    state["started"] = True
    print("startup handler ran", flush=True)


def cool_down():
    print("shutdown handler ran", flush=True)


app.shutdown_handler(cool_down)


@app.websocket("/ws")
async def ws(websocket):
    await websocket.send_text(f"started={state['started']}")
    try:
        await websocket.receive_text()
    except WebSocketDisconnect as gone:
        print(f"handler saw disconnect {gone.code}", flush=True)


@ws.on_close
def ws_close(websocket):
    print(f"on_close {websocket.id}", flush=True)
    return "server going away"
