"""CORS from ALLOW_CORS (tests/apps/cors.py: two allowed origins), through the real binary:
the allowed origin reflected with `Vary: Origin` (never `*` beside credentials), preflight,
a refused origin, and the app's WebSocket route held to the same origins unless
`--allowed-origin` says otherwise."""

from __future__ import annotations

import asyncio

import pytest
import requests
from conftest import TIMEOUT, still_serves
from websockets.exceptions import InvalidStatus

APP = "cors"
FRONT = "https://front.example"
LOCAL = "http://localhost:3000"


def get(port: int, path: str, method: str = "GET", **headers: str) -> requests.Response:
    return requests.request(method, f"http://127.0.0.1:{port}{path}", headers=headers, timeout=TIMEOUT)


@pytest.mark.parametrize("origin", [FRONT, LOCAL])
async def test_an_allowed_origin_is_reflected_with_vary(start_server, origin):
    server = start_server(APP)
    reply = await asyncio.to_thread(get, server.port, "/data", Origin=origin)
    assert (reply.status_code, reply.text) == (200, "data")
    assert reply.headers["access-control-allow-origin"] == origin
    assert reply.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in reply.headers["vary"]


async def test_a_preflight_from_an_allowed_origin_is_answered_and_another_origin_is_refused(start_server):
    server = start_server(APP)
    preflight = await asyncio.to_thread(
        get, server.port, "/data", "OPTIONS", Origin=LOCAL, **{"Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == LOCAL
    assert "POST" in preflight.headers["access-control-allow-methods"]
    refused = await asyncio.to_thread(get, server.port, "/data", Origin="https://evil.example")
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    await still_serves(server)


@pytest.mark.parametrize(("origin", "accepted"), [(FRONT, True), (LOCAL, True), ("https://evil.example", False)])
async def test_the_websocket_route_takes_the_origins_cors_allows(start_server, origin, accepted):
    server = start_server(APP)
    if accepted:
        async with server.connect("/echo", origin=origin) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hi"
    else:
        with pytest.raises(InvalidStatus) as refused:
            async with server.connect("/echo", origin=origin):
                pass
        assert refused.value.response.status_code == 403
    await still_serves(server)


async def test_allowed_origin_flags_override_the_apps_origins_for_websockets(start_server):
    server = start_server(APP, "--allowed-origin", "https://other.example")
    async with server.connect("/echo", origin="https://other.example") as ws:
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hi"
    with pytest.raises(InvalidStatus) as refused:
        async with server.connect("/echo", origin=FRONT):
            pass
    assert refused.value.response.status_code == 403
