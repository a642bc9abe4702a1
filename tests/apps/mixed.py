"""A Robyn app with HTTP routes and middleware next to its WebSocket route, as real apps have."""

from robyn import Request, Response, Robyn, SubRouter, jsonify, status_codes

app = Robyn(__file__)
app.set_response_header("server", "robyn")


@app.get("/")
async def index(request: Request):
    return "hello"


@app.post("/items", openapi_tags=["items"])
def create_item(request: Request):
    return Response(status_codes.HTTP_201_CREATED, {}, jsonify({"ok": True}))


@app.before_request()
def before(request: Request):
    return request


api = SubRouter(__file__, prefix="/api")


@api.get("/status")
def status():
    return {"status": "ok"}


app.include_router(api)


@app.websocket("/ws")
async def ws(websocket):
    async for message in websocket:
        await websocket.send_text(message)


# As Robyn apps are written, on all interfaces; the tests' --host/--port flags win over it.
app.start(host="0.0.0.0", port=8080)  # noqa: S104
