"""The benchmark's server-sent events app in Robyn's API: the same file runs on robyn-ws-server
(`--app bench.apps.robyn_sse_app`) and on Robyn itself (`PORT=... python robyn_sse_app.py`).

`GET /events` subscribes: an `SSEResponse` over an async generator that yields, as an
`SSEMessage`, each event the feeder puts into the subscriber's queue. The feeder (one task,
started by the first subscriber on the loop the generators run on) makes the events, a small
JSON object with a sequence number, and puts each into every subscriber's queue. The queues
are bounded: a full one holds the feeder back until that subscriber has taken an event, so the
events go out as fast as the slowest subscriber's stream drains and none is dropped (a server
is credited only with what its clients parse). bench/apps/starlette_sse_app.py is the same on
Starlette."""

import asyncio
import json
import os

from robyn import Robyn, SSEMessage, SSEResponse

# Events a subscriber's queue holds; one that falls further behind loses the oldest it has
# not taken (the client sees the gap in the sequence numbers and counts it lost).
QUEUED = 128
# How far the feeder may run ahead of the subscriber that is furthest along.
AHEAD = 32
PADDING = "x" * 16
# The feeder starts once this many subscribers have joined (bench/sse_loads.py sets it to the
# load's), so that opening the connections does not compete with delivering events.
EXPECTED = int(os.environ.get("BENCH_SSE_SUBSCRIBERS", "1"))

app = Robyn(__file__)
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
        # The loop's other work (reading, writing, new subscribers) between two events.
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
            yield SSEMessage(data)
    finally:
        subscribers.discard(queue)


@app.get("/events")
async def events():
    return SSEResponse(subscription(subscribe()))


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=int(os.environ["PORT"]))
