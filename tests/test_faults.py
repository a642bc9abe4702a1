"""Bad input and faults: garbage before the handshake, resets mid-frame, vanishing clients,
and a handler that blocks the event loop. After each, the server still serves others."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest
from conftest import receive, still_serves
from wire import TEXT, RawClient

APP = "limits"


async def raw_exchange(server, data: bytes) -> bytes:
    """Sends raw bytes on a fresh TCP connection; returns all the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(10):  # the server must close the socket, not leave it open
        answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)),  # a TLS ClientHello
        b"\x00\xff\xfe\xfd" * 64,
        b"GET /echo HTTP/9.9\r\n\r\n",
        b"GET /echo\r\n\r\n",
        b"HELLO WORLD\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /echo HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
    ],
)
async def test_garbage_before_the_handshake_gets_an_error_status_and_a_closed_socket(module_server, garbage):
    answer = await raw_exchange(module_server, garbage)
    assert answer == b"" or re.match(rb"HTTP/1\.[01] (400|404|426|431|505) ", answer), answer[:200]
    await still_serves(module_server)


async def vanish_and_expect_1006(server, client: RawClient) -> None:
    """Waits for the /watch handler to report one more 1006 disconnect, then its on_close, once."""
    gone = r"(\S+) disconnect code=1006 reason=''"
    before = server.count(gone)
    client.reset()
    conn_id = (await server.until(gone, count=before + 1))[-1].group(1)
    await server.until(rf"{conn_id} on_close")
    assert server.count(rf"{conn_id} on_close") == 1
    await still_serves(server)


async def test_a_reset_in_the_middle_of_a_frame_is_a_1006_disconnect(module_server):
    client = await RawClient.connect(module_server.port, "/watch")
    # A frame header announcing 1000 bytes, then 10 of them, then a TCP reset.
    await client.send_raw(bytes([0x81, 0x80 | 126, 0x03, 0xE8]) + b"mask" + b"0123456789")
    await vanish_and_expect_1006(module_server, client)


async def test_a_client_vanishing_without_a_close_frame_is_a_1006_disconnect(module_server):
    client = await RawClient.connect(module_server.port, "/watch")
    await client.send(TEXT, b"hello")
    assert (await client.frame()).payload == b"hello"
    await vanish_and_expect_1006(module_server, client)


async def test_an_async_http_handler_blocking_the_loop_is_reported_naming_its_route(start_server):
    server = start_server(APP)

    def get() -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/block_http", timeout=10) as response:
            return response.read()

    answer = asyncio.create_task(asyncio.to_thread(get))
    await server.until(
        r"event loop has been busy for [0-9.]+ s in one callback of GET /block_http "
        r"\(request GET /block_http\), at \S+limits\.py:\d+ in block_http"
    )
    assert await answer == b"unblocked"


async def test_a_handler_blocking_the_loop_is_reported_and_the_network_side_keeps_going(start_server):
    server = start_server(APP)
    async with server.connect("/block") as blocker, server.connect("/echo") as bystander:
        await blocker.send("block")
        reply = asyncio.create_task(receive(blocker))
        # The watchdog names the endpoint, the connection and the line that blocks.
        (report,) = await server.until(
            r"event loop has been busy for [0-9.]+ s in one callback of /block \(connection \S+\), "
            r"at \S+limits\.py:\d+ in block"
        )
        # While the loop is still blocked, tokio keeps accepting and answering pings.
        async with server.connect("/echo") as newcomer:
            pong = await newcomer.ping()
            await asyncio.wait_for(pong, 5)
            assert not reply.done(), "the loop was not blocked any more: the check proved nothing"
            pong = await bystander.ping()
            await asyncio.wait_for(pong, 5)
            assert await reply == "done block"
            await newcomer.send("after the block")
            assert await receive(newcomer) == "after the block"
    assert "the event loop has been busy" in report.string
