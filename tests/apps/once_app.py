"""Background tasks that must run once per host or once per cluster (tests/test_once.py): each
ticks to every client of /ticks, saying which process it runs in."""

import asyncio
import json
import os

from robyn import Robyn

app = Robyn(__file__)
TICK = 0.2


@app.websocket("/ticks")
async def ticks(websocket):
    await websocket.send_text(json.dumps({"hello": os.getpid()}))
    async for _ in websocket:
        pass


@app.get("/worker")
async def worker():
    place = app.worker
    return {"index": place.index, "count": place.count, "node": place.node, "pid": os.getpid()}


async def tick(scope: str) -> None:
    number = 0
    while True:
        number += 1
        await app.broadcast("/ticks", json.dumps({"scope": scope, "pid": os.getpid(), "n": number}))
        await asyncio.sleep(TICK)


@app.startup_handler(once="host")
async def host_ticker():
    await tick("host")


@app.startup_handler(once="cluster")
async def cluster_ticker():
    await tick("cluster")
