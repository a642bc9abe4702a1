"""Apps written for Robyn 0.88.0's WebSocket API run unchanged; the expectations are those of
Robyn's own WebSocket integration tests, plus what Robyn got wrong and this server does right."""

from __future__ import annotations

import json

from conftest import messages_until_close, receive

APP = "robyn_compat"


async def test_the_state_machine_endpoint(module_server):
    async with module_server.connect("/web_socket?one=hi&two=hello") as ws:
        assert await receive(ws) == "Hello world, from ws"
        await ws.send("My name is?")
        assert sorted([await receive(ws) for _ in range(3)]) == sorted(
            ["This is a broadcast message", "This is a message to self", "Whaaat??"]
        )
        await ws.send("My name is?")
        assert await receive(ws) == "Whooo??"
        await ws.send("My name is?")
        assert sorted([await receive(ws) for _ in range(3)]) == sorted(["hi", "hello", "*chika* *chika* Slim Shady."])
        await ws.send("test")
        # Robyn sent "Connection closed" then dropped TCP (1006) and lost on_close's value.
        assert await messages_until_close(ws) == ["Connection closed", "GoodBye world, from ws"]
        assert ws.protocol.close_rcvd.code == 1000


async def test_json_endpoint(module_server):
    async with module_server.connect("/web_socket_json") as ws:
        assert await receive(ws) == "Hello world, from ws"
        for expected in ("Whaaat??", "Whooo??", "*chika* *chika* Slim Shady."):
            await ws.send("My name is?")
            reply = json.loads(await receive(ws))
            assert (reply["resp"], reply["msg"]) == (expected, "My name is?")


async def test_dependency_injection(module_server):
    async with module_server.connect("/web_socket_di") as ws:
        assert await receive(ws) == "connect: GLOBAL DEPENDENCY ROUTER DEPENDENCY"
        for text in ("test", "test again"):
            await ws.send(text)
            assert await receive(ws) == "handler: GLOBAL DEPENDENCY ROUTER DEPENDENCY"


async def test_large_payload_echo(module_server):
    async with module_server.connect("/web_socket_echo", max_size=None) as ws:
        assert await receive(ws) == ""
        for size in (128 * 1024, 4 * 1024 * 1024):  # Robyn never answered the 4 MiB one.
            message = "A" * size
            await ws.send(message)
            assert await receive(ws, timeout=30) == message


async def test_binary_echo(module_server):
    async with module_server.connect("/web_socket_binary") as ws:
        payload = b"\x00\x01\x02\xff\xfe robyn binary \x80\x81"
        await ws.send(payload)
        assert await receive(ws) == payload


async def test_empty_returns(module_server):
    async with module_server.connect("/web_socket_empty_returns") as ws:
        await ws.send("test message")
        await ws.close()
    assert ws.protocol.close_rcvd.code == 1000


async def test_easy_access(module_server):
    async with module_server.connect("/web_socket_easy_access?room=lobby&page=2") as ws:
        assert await receive(ws) == "connected to lobby"
        await ws.send("hi")
        assert await receive(ws) == "room=lobby page=2 msg=hi"


async def test_sub_router(module_server):
    async with module_server.connect("/sub_router/ws") as ws:
        assert await receive(ws) == "Hello world, from ws"
        await ws.send("hi")
        assert await receive(ws) == "Message"


async def test_fragmented_text_is_reassembled(module_server):
    # Robyn 0.88.0 never answered a message sent in two frames.
    async with module_server.connect("/web_socket_echo") as ws:
        assert await receive(ws) == ""
        await ws.send(iter(["frag", "mented"]))
        assert await receive(ws) == "fragmented"
