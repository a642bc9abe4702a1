"""The app tests/test_reload.py copies into a temporary folder and edits under a server
started with --reload: what it answers says which version of the code serves."""

import asyncio

from robyn import Robyn, WebSocketDisconnect
from robyn.responses import SSEMessage, SSEResponse

VERSION = "one"

app = Robyn(__file__)


@app.get("/version")
def version():
    return VERSION


@app.get("/events")
async def events():
    async def stream():
        yield SSEMessage(VERSION, event="version")
        # Open until the server ends it: a reload must end it cleanly, not wait for it.
        await asyncio.Event().wait()

    return SSEResponse(stream())


@app.websocket("/echo")
async def echo(websocket):
    while True:
        message = await websocket.receive_text()
        await websocket.send_text(f"{VERSION}:{message}")


@app.websocket("/stubborn")
async def stubborn(websocket):
    await websocket.send_text(VERSION)
    try:
        await websocket.receive_text()
    except WebSocketDisconnect as gone:
        # A handler that will not end: the old code must not keep the new one waiting.
        print(f"{VERSION} ignores the disconnect ({gone.code})", flush=True)
        await asyncio.sleep(3600)
