"""Limits and their flags: what the client sees, and that everyone else is still served."""

from __future__ import annotations

import asyncio
import urllib.error

import pytest
from conftest import closed_with, receive, stats, still_serves, until_stats
from websockets.exceptions import InvalidStatus
from wire import BINARY, CLOSE, PING, PONG, TEXT, RawClient, close_payload

APP = "limits"


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_a_message_over_max_message_size_is_closed_with_1009(start_server, compression):
    server = start_server(APP, "--max-message-size", "1K")
    async with server.connect("/echo", compression=compression, max_size=None) as ws:
        await ws.send("x" * 1024)
        assert await receive(ws) == "x" * 1024
        await ws.send("x" * 1025)
        assert (await closed_with(ws))[0] == 1009
    await still_serves(server)


PLAIN, DEFLATE = (), ("Sec-WebSocket-Extensions: permessage-deflate",)


@pytest.mark.parametrize(
    ("frames", "code", "deflate_code"),
    [
        ([(TEXT, b"caf\xc3", {})], 1007, 1007),  # invalid UTF-8 in a text message
        ([(TEXT, b"caf\xc3", {"fin": False}), (0x0, b"\xa9\xff", {})], 1007, 1007),  # ... over fragments
        # yawc answers a reserved opcode with 1003 where RFC 6455 wants the connection failed (1002).
        ([(0x3, b"reserved opcode", {})], 1002, 1003),
        # With deflate negotiated, RSV1 marks a compressed message: this one does not inflate,
        # and yawc closes with 1011.
        ([(TEXT, b"rsv without extension", {"rsv": 4})], 1002, 1011),
        ([(TEXT, b"rsv2 is never used", {"rsv": 2})], 1002, 1002),
        ([(PING, b"x" * 126, {})], 1002, 1002),  # control frames carry at most 125 bytes
        ([(PING, b"fragmented", {"fin": False})], 1002, 1002),
        ([(0x0, b"continuation of nothing", {})], 1002, 1002),
        ([(TEXT, b"start", {"fin": False}), (TEXT, b"a new message inside it", {})], 1002, 1002),
        ([(TEXT, b"unmasked", {"masked": False})], 1002, 1002),
        ([(CLOSE, b"\x03", {})], 1002, 1002),  # a one-byte close payload
        ([(CLOSE, close_payload(1005), {})], 1002, 1002),  # a code only for local use
        # A Close frame over the 125-byte limit of control frames: yawc echoes it (Autobahn 7.3.6).
        ([(CLOSE, close_payload(1000, "x" * 124), {})], 1002, 1000),
    ],
)
@pytest.mark.parametrize("extensions", [PLAIN, DEFLATE], ids=["plain", "deflate"])
async def test_broken_frames_are_closed_with_the_matching_code(module_server, frames, code, deflate_code, extensions):
    client = await RawClient.connect(module_server.port, "/echo", *extensions)
    for opcode, payload, options in frames:
        await client.send(opcode, payload, **options)
    assert await client.closed_by_server() == (deflate_code if extensions else code)
    await still_serves(module_server)


async def test_pings_are_answered_and_fragments_reassembled(module_server):
    client = await RawClient.connect(module_server.port, "/echo")
    await client.send(PING, b"are you there")
    assert (await client.frame()).payload == b"are you there"
    await client.send(TEXT, b"frag", fin=False)
    await client.send(PING, b"between fragments")
    await client.send(0x0, b"ments", fin=False)
    await client.send(0x0, b"!")
    assert (await client.frame_of(PONG)).payload == b"between fragments"
    echoed = await client.frame_of(TEXT)
    assert echoed.payload == b"fragments!"
    await client.send(CLOSE, close_payload(1000))
    assert await client.closed_by_server() == 1000


async def test_a_client_that_stops_answering_pings_is_dropped(start_server):
    server = start_server(APP, "--ping-interval", "0.2", "--ping-timeout", "0.3")
    silent = await RawClient.connect(server.port, "/watch")
    assert (await silent.frame_of(PING)).opcode == PING  # pinged after 0.2 s of silence
    # Never answered: dropped with a Close 1011, and the handler sees the peer gone (1006).
    assert await silent.closed_by_server() == 1011
    await server.until(r"disconnect code=1006 reason='keepalive ping timeout'")
    await server.until(r"on_close")


async def test_a_client_that_answers_pings_stays(start_server):
    server = start_server(APP, "--ping-interval", "0.2", "--ping-timeout", "0.3")
    client = await RawClient.connect(server.port, "/echo")
    for _ in range(4):  # over a second of silence in all, every ping answered
        ping = await client.frame_of(PING)
        await client.send(PONG, ping.payload)
    await client.send(TEXT, b"alive")
    assert (await client.frame_of(TEXT)).payload == b"alive"


async def test_over_max_connections_the_handshake_gets_503(start_server):
    server = start_server(APP, "--max-connections", "3", "--stats-path", "/__stats")
    held = [await server.connect("/echo").__aenter__() for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        async with server.connect("/echo"):
            pass
    assert refused.value.response.status_code == 503
    for ws in held[:1]:
        await ws.send("still served")
        assert await receive(ws) == "still served"
    await held.pop().close()
    await until_stats(server, connections=2)
    async with server.connect("/echo") as ws:
        await ws.send("a place freed up")
        assert await receive(ws) == "a place freed up"
    for ws in held:
        await ws.close()


@pytest.mark.parametrize("request_bytes", [b"", b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
async def test_a_client_that_sends_no_whole_request_is_disconnected(start_server, request_bytes):
    server = start_server(APP, "--handshake-timeout", "0.3")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request_bytes)
    async with asyncio.timeout(5):  # fails the test if the server keeps the socket open
        left_over = await reader.read()
    assert left_over == b"" or left_over.startswith(b"HTTP/1.1 408"), left_over
    writer.close()
    await still_serves(server)


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [("https://good.example", True), ("https://GOOD.example", True), ("https://evil.example", False), (None, True)],
)
async def test_allowed_origins(start_server, origin, accepted):
    server = start_server(APP, "--allowed-origin", "https://good.example", "--allowed-origin", "http://localhost:3000")
    if accepted:
        async with server.connect("/echo", origin=origin) as ws:
            await ws.send("hi")
            assert await receive(ws) == "hi"
    else:
        with pytest.raises(InvalidStatus) as refused:
            async with server.connect("/echo", origin=origin):
                pass
        assert refused.value.response.status_code == 403
    await still_serves(server)


async def test_the_stats_path_reports_live_counts(start_server):
    server = start_server(APP, "--stats-path", "/__stats")
    idle = await until_stats(server, connections=0)
    assert idle["endpoints"]["/echo"] == 0 and idle["rss_kib"] > 0
    async with server.connect("/echo") as ws:
        await ws.send("counted")
        await receive(ws)
        busy = await until_stats(server, connections=1, interpreter_connections=1)
        assert busy["endpoints"] == {**idle["endpoints"], "/echo": 1}
    await until_stats(server, connections=0, interpreter_connections=0)
    # Without the flag the path is just an unknown path.
    plain = start_server(APP)
    with pytest.raises(urllib.error.HTTPError) as missing:
        stats(plain)
    assert missing.value.code == 404


async def test_binary_and_text_frames_keep_their_type(module_server):
    client = await RawClient.connect(module_server.port, "/echo")
    await client.send(BINARY, b"\x00\xff")
    assert (await client.frame_of(BINARY)).payload == b"\x00\xff"
    await client.send(TEXT, "é".encode())
    assert (await client.frame_of(TEXT)).payload == "é".encode()
