"""Every example of the seed document (tests/apps/seed, verbatim) runs unchanged, and does
what the document says it does."""

from __future__ import annotations

import asyncio
import re
import uuid

from conftest import closed_with, messages_until_close, receive


async def test_request_echoes(start_server):
    server = start_server("seed.request")
    async with server.connect("/web_socket") as ws:
        for text in ("hello", "", "ünïcödé ✓", "x" * 70_000):
            await ws.send(text)
            assert await receive(ws) == f"Echo: {text}"


async def test_receiving_reports_the_disconnect(start_server):
    server = start_server("seed.receiving")
    async with server.connect("/ws") as ws:
        await ws.send("one")
        assert await receive(ws) == "Got: one"
        assert server.count("disconnected") == 0
    (match,) = await server.until(r"Client (\S+) disconnected")
    uuid.UUID(match.group(1), version=4)


async def test_sending_echoes(start_server):
    server = start_server("seed.sending")
    async with server.connect("/ws") as ws:
        await ws.send("ping")
        assert await receive(ws) == "Echo: ping"


async def test_broadcasting_reaches_everyone_and_confirms_to_the_sender(start_server):
    server = start_server("seed.broadcasting")
    async with server.connect("/chat") as alice, server.connect("/chat") as bob:
        # Both handlers are running once each has answered a message.
        await bob.send("bob here")
        assert sorted([await receive(bob), await receive(bob)]) == sorted(
            ["Your message was sent", await receive(alice)]
        )
        await alice.send("hi all")
        from_alice = [await receive(alice), await receive(alice)]
        broadcast = await receive(bob)
        assert re.fullmatch(r"User [0-9a-f-]{36}: hi all", broadcast)
        assert broadcast in from_alice and "Your message was sent" in from_alice


async def test_query_parameters_authorize_gordon(start_server):
    server = start_server("seed.query_params")
    async with server.connect("/ws?name=gordon&role=commissioner") as gordon:
        assert await receive(gordon) == "Gordon authorized!"
        await gordon.send("status?")
        assert await receive(gordon) == "Hello gordon: status?"
    async with server.connect("/ws") as anonymous:
        await anonymous.send("hi")
        # Robyn 0.88.0 crashed here: `get()` without a default must answer None.
        assert await receive(anonymous) == "Hello None: hi"


async def test_easy_access_parameters_use_defaults_and_coerce(start_server):
    server = start_server("seed.easy_access")
    async with server.connect("/ws") as ws:
        await ws.send("a")
        assert await receive(ws) == "room=default page=1 msg=a"
    async with server.connect("/ws?room=lobby&page=3") as ws:
        await ws.send("b")
        assert await receive(ws) == "room=lobby page=3 msg=b"
    async with server.connect("/ws?page=abc") as ws:
        assert await messages_until_close(ws) == ["Error: Invalid value 'abc' for parameter 'page': expected int"]
        assert ws.protocol.close_rcvd.code == 1008


async def test_closing_sends_a_real_close_frame(start_server):
    server = start_server("seed.closing")
    async with server.connect("/ws") as ws:
        await ws.send("hello")
        assert await receive(ws) == "Got: hello"
        await ws.send("quit")
        assert await closed_with(ws) == (1000, "")
        assert ws.protocol.close_rcvd_then_sent, "the server started the closing handshake"


async def test_callbacks_greet_first_and_say_goodbye_last(start_server):
    server = start_server("seed.callbacks")
    async with server.connect("/chat") as first:
        greeting = await receive(first)
        assert re.fullmatch(r"Welcome, [0-9a-f-]{36}!", greeting)
        async with server.connect("/chat") as second:
            assert (await receive(second)).startswith("Welcome, ")
            await second.send("hello")
            assert await receive(first) == "hello"
            assert await receive(second) == "hello"
        # The second client closed first: its on_close ran, its value was dropped.
        await first.send("still here")
        assert await receive(first) == "still here"


async def test_every_example_serves_many_clients_at_once(start_server):
    server = start_server("seed.request")

    async def client(n: int) -> None:
        async with server.connect("/web_socket") as ws:
            for i in range(5):
                await ws.send(f"{n}-{i}")
                assert await receive(ws) == f"Echo: {n}-{i}"

    await asyncio.gather(*(client(n) for n in range(50)))
