"""tests/test_http_api.py's app for `--sync-threads`: /block/:name holds its worker thread
until /unblock/:name (async, on the event loop, needing no worker) lets it go. It has no
global middleware on purpose: a sync one would need a worker for every request, /unblock's
included, and so wait behind the blocked handlers."""

import threading

from robyn import Request, Robyn

app = Robyn(__file__)

# Lines are printed in one write each (`end=""`): print's separate newline could land after
# another thread's line.

lock = threading.Lock()
gates: dict[str, threading.Event] = {}
running = 0


def gate(name: str) -> threading.Event:
    with lock:
        return gates.setdefault(name, threading.Event())


# Async, so it runs on the loop as the request arrives, whether or not a worker is free.
@app.before_request("/block/:name")
async def arrived(request: Request):
    print(f"arrived {request.path_params['name']}\n", end="", flush=True)
    return request


@app.get("/block/:name")
def block(name: str):
    global running
    with lock:
        running += 1
        at_start = running
    thread = threading.current_thread().name
    print(f"started {name} on {thread} with {at_start} running\n", end="", flush=True)
    try:
        released = gate(name).wait(30)
    finally:
        with lock:
            running -= 1
    return {"name": name, "thread": thread, "running_at_start": at_start, "released": released}


@app.get("/unblock/:name")
async def unblock(name: str):
    gate(name).set()
    return f"unblocked {name}"


app.start()
