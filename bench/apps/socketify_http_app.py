"""The benchmark's HTTP app on socketify.py's own API (`App()` at its defaults, callbacks that
answer on the spot): the same four routes as bench/apps/robyn_http_app.py. socketify has no
request headers to set and no after-the-handler hook; its middleware is a chain of functions
(`socketify.middleware`), each handing the next what it returns: the before function hands
the header's value to the route, the route hands its body to the after function, which sets
the response header and answers. `res.end` and `res.send` as its own examples answer."""

import json
import os

from socketify import App, AppListenOptions, middleware

app = App()
# The responses whose request bodies are still coming in. socketify keeps none of them itself
# while uWebSockets holds their handle for `on_data`; one Python frees meanwhile aborts the
# process ("ffi.from_handle() ... points to garbage"), within a second of 50 connections
# posting here (with its async `await res.get_json()` too, whose coroutine and future only
# hold each other).
reading: set = set()


def plaintext(res, req) -> None:
    res.end("Hello, World!")


def json_by_id(res, req) -> None:
    res.send({"id": req.get_parameter(0), "status": "ok"})


def echo(res, req) -> None:
    # Its callback API for a request body (socketify's examples/upload_or_post.py), which
    # answers without a turn of the asyncio loop that `await res.get_json()` takes.
    chunks: list[bytes] = []

    def on_data(res, chunk: bytes | None, is_end: bool) -> None:
        if chunk:
            chunks.append(chunk)
        if is_end:
            reading.discard(res)
            res.send(json.loads(b"".join(chunks)))

    reading.add(res)
    res.on_data(on_data)
    res.on_aborted(reading.discard)


def before(res, req, data) -> dict:
    return {"x-before": "before"}


def behind_middleware(res, req, headers: dict) -> str:
    return headers["x-before"]


def after(res, req, body: str) -> None:
    res.write_header("x-after", "after")
    res.end(body)


app.get("/plaintext", plaintext)
app.get("/json/:id", json_by_id)
app.post("/echo", echo)
app.get("/middleware", middleware(before, behind_middleware, after))

if __name__ == "__main__":
    app.listen(AppListenOptions(port=int(os.environ["PORT"]), host="127.0.0.1"))
    app.run()
