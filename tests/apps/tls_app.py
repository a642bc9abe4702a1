"""An app served over TLS in tests/test_tls.py: a page, the scheme each side sees, an echo."""

from robyn import Request, Robyn

app = Robyn(__file__)


@app.get("/")
async def index(request: Request):
    return f"scheme {request.url.scheme}"


@app.websocket("/echo")
async def echo(websocket):
    await websocket.send_text(f"scheme {websocket.url.scheme}")
    async for message in websocket:
        if isinstance(message, bytes):
            await websocket.send_bytes(message)
        else:
            await websocket.send_text(message)
