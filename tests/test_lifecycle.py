"""on_connect / handler / on_close ordering, close codes, and failure isolation."""

from __future__ import annotations

import asyncio
import json

from conftest import closed_with, messages_until_close, receive

APP = "lifecycle"


async def test_sync_on_connect_greets_first_and_on_close_says_goodbye_last(module_server):
    async with module_server.connect("/sync-callbacks") as ws:
        greeting = await receive(ws)
        assert greeting.startswith("hello ")
        conn_id = greeting.removeprefix("hello ")
        await ws.send("x")
        assert await receive(ws) == "echo x"
    # The client closed first: on_close ran once, and its value went nowhere.
    await module_server.until(rf"on_close {conn_id}$")
    assert module_server.count(rf"on_close {conn_id}$") == 1


async def test_async_callbacks_send_json_greeting_and_binary_farewell(module_server):
    async with module_server.connect("/async-callbacks") as ws:
        greeting = json.loads(await receive(ws))
        assert greeting["list"] == [1, 2]
        assert await receive(ws) == "handler started"
        await ws.send("end")
        assert await messages_until_close(ws) == [b"\x00bye"]
        assert ws.protocol.close_rcvd.code == 1000


async def test_on_connect_returning_none_sends_nothing(module_server):
    async with module_server.connect("/no-greeting") as ws:
        assert await receive(ws) == "first from handler"


async def test_a_handler_that_returns_closes_with_1000_after_on_close(module_server):
    async with module_server.connect("/returns") as ws:
        assert await messages_until_close(ws) == ["done", "closing now"]
        assert ws.protocol.close_rcvd.code == 1000
        assert ws.protocol.close_rcvd_then_sent


async def test_an_exception_in_the_handler_closes_only_that_client_with_1011(module_server):
    async with module_server.connect("/raises") as healthy, module_server.connect("/raises") as failing:
        await failing.send("fail")
        assert await messages_until_close(failing) == ["after the failure"]
        assert failing.protocol.close_rcvd.code == 1011
        await healthy.send("still ok?")
        assert await receive(healthy) == "fine: still ok?"
    (log,) = await module_server.until(r"handler on /raises failed for connection (\S+)")
    await module_server.until(r"RuntimeError: boom in the handler")
    await module_server.until(rf"on_close {log.group(1)}$")
    assert module_server.count(r"Traceback \(most recent call last\)") >= 1


async def test_an_exception_in_on_connect_skips_the_handler_and_still_runs_on_close(module_server):
    async with module_server.connect("/connect-raises") as ws:
        assert await closed_with(ws) == (1011, "internal error")
    (log,) = await module_server.until(r"on_connect on /connect-raises failed for connection (\S+)")
    await module_server.until(r"ValueError: no entry")
    await module_server.until(rf"on_close {log.group(1)}$")
    assert module_server.count(rf"handler ran {log.group(1)}") == 0


async def test_an_exception_in_on_close_closes_with_1011(module_server):
    async with module_server.connect("/close-raises") as ws:
        assert await messages_until_close(ws) == ["bye soon"]
        assert ws.protocol.close_rcvd.code == 1011
    await module_server.until(r"on_close on /close-raises failed for connection")
    await module_server.until(r"KeyError: 'on_close broke'")


async def test_close_in_the_handler_sends_on_closes_value_then_its_code(module_server):
    async with module_server.connect("/close-in-handler") as ws:
        await ws.send("close please")
        assert await messages_until_close(ws) == ["farewell before 4000"]
        assert ws.protocol.close_rcvd.code == 4000
        assert ws.protocol.close_rcvd.reason == "handler closed"
    (line,) = await module_server.until(r"after close\(\) (\S+)")
    await module_server.until(rf"on_close {line.group(1)}$")
    assert module_server.count(rf"on_close {line.group(1)}$") == 1


async def test_when_the_client_closes_first_on_close_still_runs_once(module_server):
    async with module_server.connect("/client-closes") as ws:
        await ws.close(1000)
    (line,) = await module_server.until(r"disconnect (\S+) 1000$")
    await module_server.until(rf"on_close {line.group(1)}$")
    assert module_server.count(rf"on_close {line.group(1)}$") == 1
    # A WebSocketDisconnect escaping the handler is a normal end: nothing logged as failed.
    assert module_server.count(r"handler on /client-closes failed") == 0


async def test_no_message_overtakes_the_greeting(module_server):
    async with module_server.connect("/greeting-first") as chatter:
        assert await receive(chatter) == "greeting"
        assert await receive(chatter) == "handler says hi"
        stop = asyncio.Event()

        async def chatter_broadcasts() -> None:
            # One broadcast in flight at a time: the next goes once the chatter got its own
            # back (which also keeps it reading, so it can see the answer to its Close frame).
            n = 0
            while not stop.is_set():
                await chatter.send(f"noise {n}")
                while await chatter.recv() != f"noise {n}":
                    pass
                n += 1

        noise = asyncio.create_task(chatter_broadcasts())
        try:
            for _ in range(10):
                async with module_server.connect("/greeting-first") as newcomer:
                    assert await receive(newcomer) == "greeting"
                    assert await receive(newcomer) == "handler says hi"
        finally:
            stop.set()
            await noise


async def test_every_connection_gets_its_on_close_exactly_once(module_server):
    async def visit() -> str:
        async with module_server.connect("/sync-callbacks") as ws:
            return (await receive(ws)).removeprefix("hello ")

    ids = await asyncio.gather(*(visit() for _ in range(100)))
    for conn_id in ids:
        await module_server.until(rf"on_close {conn_id}$")
    assert all(module_server.count(rf"on_close {conn_id}$") == 1 for conn_id in ids)
