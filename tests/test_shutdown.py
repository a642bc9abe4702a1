"""SIGINT and SIGTERM: stop accepting, close every client with 1001 after its handler and
on_close ran, then the shutdown handlers, then exit 0 within a bounded time."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from conftest import messages_until_close, receive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_closes_every_client_with_1001_after_its_handler_ended(start_server, sig):
    server = start_server("startup.lifecycle_handlers")
    clients = []
    for _ in range(5):
        ws = await server.connect("/ws").__aenter__()
        assert await receive(ws) == "started=True"
        clients.append(ws)

    began = time.monotonic()
    server.process.send_signal(sig)
    for ws in clients:
        # on_close's value is the last message before the server's Close frame.
        assert await messages_until_close(ws) == ["server going away"]
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1001, "server shutting down")
    assert await asyncio.to_thread(server.process.wait, 15) == 0
    assert time.monotonic() - began < 5

    output = server.output
    assert output.count("handler saw disconnect 1001") == 5
    assert output.count("on_close ") == 5
    # Shutdown handlers run after the last connection closed.
    assert output.index("shutdown handler ran") > output.rindex("on_close ")


async def test_new_connections_are_refused_once_shutdown_began(start_server):
    server = start_server("startup.lifecycle_handlers")
    async with server.connect("/ws") as held:
        assert await receive(held) == "started=True"
        server.process.send_signal(signal.SIGTERM)
        await server.until("no longer accepting connections; closing 1 open connection")
        with pytest.raises(OSError):
            async with server.connect("/ws"):
                pass
        assert await messages_until_close(held) == ["server going away"]
    assert await asyncio.to_thread(server.process.wait, 15) == 0


async def test_a_handler_that_ignores_the_disconnect_is_cut_off_after_the_grace_period(start_server):
    server = start_server("stubborn", "--shutdown-timeout", "0.5")
    async with server.connect("/stubborn") as ws:
        assert await receive(ws) == "ready"
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        await server.until("ignoring the disconnect")
        assert await messages_until_close(ws) == []
        assert ws.protocol.close_rcvd.code == 1001
    assert await asyncio.to_thread(server.process.wait, 20) == 0
    assert time.monotonic() - began < 8
    await server.until("connection\\(s\\) still open after 500ms: closing them now")
    # The stuck task was cancelled: its on_close ran, then the shutdown handlers.
    output = server.output
    assert output.index("on_close after cancellation") < output.index("shutdown handler ran")


async def test_an_idle_server_stops_at_once(start_server):
    server = start_server("seed.request")
    began = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - began < 3
