"""The benchmark's HTTP app in Robyn's API: the same file runs on robyn-ws-server
(`--app bench.apps.robyn_http_app`) and on Robyn itself (`PORT=... python robyn_http_app.py`,
with `--fast` for Robyn's multi-process mode). Plain (sync) handlers, as in Robyn's own
examples of its HTTP routes; the middlewares are Robyn's route-specific ones."""

import os

from robyn import Request, Response, Robyn

app = Robyn(__file__)


@app.get("/plaintext")
def plaintext():
    return "Hello, World!"


@app.get("/json/:id")
def json_by_id(request: Request):
    return {"id": request.path_params["id"], "status": "ok"}


@app.post("/echo")
def echo(request: Request):
    return request.json()


@app.before_request("/middleware")
def before(request: Request):
    request.headers.set("x-before", "before")
    return request


@app.after_request("/middleware")
def after(response: Response):
    response.headers.set("x-after", "after")
    return response


@app.get("/middleware")
def behind_middleware(request: Request):
    # What the before middleware set, so a client sees both middlewares ran.
    return request.headers.get("x-before")


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=int(os.environ["PORT"]))
