"""The benchmark's server-sent events app on Starlette (run by uvicorn and by granian): the same
subscribers, feeder and bounded queues as bench/apps/robyn_sse_app.py. The stream is
sse-starlette's `EventSourceResponse` at its defaults, the way Starlette's documentation points
to for server-sent events (its "Third party packages" list); the async generator yields each
event's data, which `EventSourceResponse` frames as `data: ...`."""

import asyncio
import json
import os

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

# Events a subscriber's queue holds; one that falls further behind loses the oldest it has
# not taken (the client sees the gap in the sequence numbers and counts it lost).
QUEUED = 128
# How far the feeder may run ahead of the subscriber that is furthest along.
AHEAD = 32
PADDING = "x" * 16
# The feeder starts once this many subscribers have joined (bench/sse_loads.py sets it to the
# load's), so that opening the connections does not compete with delivering events.
EXPECTED = int(os.environ.get("BENCH_SSE_SUBSCRIBERS", "1"))

subscribers: set[asyncio.Queue] = set()
feeder: list[asyncio.Task] = []
# The sequence number the furthest-along subscriber has taken, and the feeder's wake-up.
taken = [0]
moved = asyncio.Event()


async def feed() -> None:
    sequence = 0
    while len(subscribers) < EXPECTED:
        moved.clear()
        await moved.wait()
    while True:
        while not subscribers or sequence - taken[0] >= AHEAD:
            moved.clear()
            await moved.wait()
        sequence += 1
        event = (sequence, json.dumps({"seq": sequence, "pad": PADDING}))
        for queue in subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
        await asyncio.sleep(0)


def subscribe() -> asyncio.Queue:
    """A new subscriber's queue, joined at once: the request's handler calls this, so a server
    that starts the stream's generator late still counts the subscriber in."""
    queue: asyncio.Queue = asyncio.Queue(QUEUED)
    if not feeder:
        feeder.append(asyncio.get_running_loop().create_task(feed()))
    subscribers.add(queue)
    moved.set()
    return queue


async def subscription(queue: asyncio.Queue):
    try:
        while True:
            sequence, data = await queue.get()
            if sequence > taken[0]:
                taken[0] = sequence
                moved.set()
            yield data
    finally:
        subscribers.discard(queue)


async def events(request: Request) -> EventSourceResponse:
    return EventSourceResponse(subscription(subscribe()))


app = Starlette(routes=[Route("/events", events)])
