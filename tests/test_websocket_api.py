"""The websocket object's API (the seed's API Reference, with DESIGN.md's rules)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from conftest import closed_with, receive

APP = "api"


async def test_receive_returns_str_for_text_and_bytes_for_binary(module_server):
    async with module_server.connect("/echo") as ws:
        await ws.send("text ✓")
        assert await receive(ws) == "text ✓"
        await ws.send(b"\x00\xffbinary")
        assert await receive(ws) == b"\x00\xffbinary"
        await ws.send(b"")
        assert await receive(ws) == b""


async def test_receive_text_decodes_binary_as_utf8(module_server):
    async with module_server.connect("/text") as ws:
        await ws.send("plain")
        assert await receive(ws) == "str:plain"
        await ws.send("café".encode())
        assert await receive(ws) == "str:café"


async def test_iter_text_gives_every_message_as_text_and_ends_when_the_client_leaves(module_server):
    async with module_server.connect("/iter-text") as ws:
        await ws.send("plain")
        assert await receive(ws) == "str:plain"
        await ws.send("café".encode())
        assert await receive(ws) == "str:café"
    # The loop ended quietly (no traceback, no 1011) once the client closed.
    await module_server.until(r"iter_text ended for ")


async def test_receive_bytes_encodes_text_as_utf8(module_server):
    async with module_server.connect("/bytes") as ws:
        await ws.send("é")
        assert await receive(ws) == b"\x02\xc3\xa9"
        await ws.send(b"\x80\x81")
        assert await receive(ws) == b"\x02\x80\x81"


async def test_receive_json_decodes_text_or_binary_and_keeps_the_connection_on_bad_json(module_server):
    async with module_server.connect("/json") as ws:
        await ws.send('{"x": [1, 2]}')
        assert json.loads(await receive(ws)) == {"got": {"x": [1, 2]}, "type": "dict"}
        await ws.send(b"[true]")
        assert json.loads(await receive(ws)) == {"got": [True], "type": "list"}
        await ws.send("{not json")
        assert await receive(ws) == "invalid JSON: JSONDecodeError, a ValueError: True"
        await ws.send("3.5")
        assert json.loads(await receive(ws)) == {"got": 3.5, "type": "float"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("text", "plain text"),
        ("bytes", b"\x00\x01\xff"),
        ("bytearray", b"array"),
        ("memoryview", b"view"),
        ("json", '{"a":[1,2.5,null,true],"é":"ü"}'),
        ("text-with-bytes", "TypeError: send_text() takes a str, got bytes"),
        ("bytes-with-text", "TypeError: send_bytes() takes bytes, bytearray or memoryview, got str"),
        (
            "json-unserialisable",
            "TypeError: send_json() cannot send an object at the value['when']: "
            "Object of type object is not JSON serializable",
        ),
        ("broadcast-int", "TypeError: broadcast() takes str or bytes, got int"),
    ],
)
async def test_sends_use_the_right_frame_and_reject_wrong_types(module_server, command, expected):
    async with module_server.connect("/sends") as ws:
        await ws.send(command)
        assert await receive(ws) == expected
        # A wrong type is the handler's error to catch; the connection goes on.
        await ws.send("text")
        assert await receive(ws) == "plain text"


async def test_send_text_refuses_a_lone_surrogate(module_server):
    async with module_server.connect("/sends") as ws:
        await ws.send("text-with-surrogate")
        assert (await receive(ws)).startswith("UnicodeEncodeError: ")


async def test_broadcast_reaches_every_client_of_the_endpoint_sender_included(module_server):
    async with (
        module_server.connect("/broadcast") as a,
        module_server.connect("/broadcast") as b,
        module_server.connect("/broadcast") as c,
        module_server.connect("/echo") as elsewhere,
    ):
        # Everyone has joined once each has seen its own broadcast.
        for ws in (a, b, c):
            await ws.send("ready")
        for ws in (a, b, c):
            assert [await receive(ws) for _ in range(3)] == ["ready"] * 3
        await b.send("text for all")
        await b.send(b"bytes for all")
        for ws in (a, b, c):
            assert await receive(ws) == "text for all"
            assert await receive(ws) == b"bytes for all"
        await elsewhere.send("only here")
        assert await receive(elsewhere) == "only here"


async def test_broadcast_keeps_each_senders_order(module_server):
    senders, receivers, count = 4, 6, 150
    async with asyncio.timeout(30):
        listeners = [await module_server.connect("/broadcast").__aenter__() for _ in range(receivers)]
        talkers = [await module_server.connect("/broadcast").__aenter__() for _ in range(senders)]
        everyone = listeners + talkers
        # Wait until every handler has joined: each client sees a marker from the last talker.
        await talkers[-1].send("sync")
        for ws in everyone:
            while await receive(ws) != "sync":
                pass

        async def talk(index: int, ws) -> None:
            for n in range(count):
                await ws.send(f"{index}:{n}")

        await asyncio.gather(*(talk(i, ws) for i, ws in enumerate(talkers)))
        for ws in everyone:
            seen: dict[str, list[int]] = {str(i): [] for i in range(senders)}
            for _ in range(senders * count):
                sender, n = (await receive(ws)).split(":")
                seen[sender].append(int(n))
            assert all(numbers == list(range(count)) for numbers in seen.values())
        for ws in everyone:
            await ws.close()


async def test_id_is_a_uuid4_unique_per_connection(module_server):
    ids = []
    for _ in range(20):
        async with module_server.connect("/identity") as ws:
            first, second = await receive(ws), await receive(ws)
            assert first == second
            assert uuid.UUID(first).version == 4
            ids.append(first)
    assert len(set(ids)) == 20


async def test_query_params_has_robyns_interface(module_server):
    async with module_server.connect("/query?a=1&b=two&a=3&sp=x+y&enc=%C3%A9%26") as ws:
        answer = json.loads(await receive(ws))
    assert answer == {
        "get_a": "3",
        "get_missing": None,
        "get_missing_default": "fallback",
        "get_first_a": "1",
        "get_all_a": ["1", "3"],
        "get_all_missing": None,
        "contains_b": True,
        "in_b": True,
        "in_missing": False,
        "to_dict": {"a": ["1", "3"], "b": ["two"], "sp": ["x y"], "enc": ["é&"]},
        "keys": ["a", "b", "sp", "enc"],
        "values": ["3", "two", "x y", "é&"],
        "items": [["a", "3"], ["b", "two"], ["sp", "x y"], ["enc", "é&"]],
        "empty": False,
    }
    async with module_server.connect("/query") as ws:
        assert json.loads(await receive(ws))["empty"] is True


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "bye"), (4321, "custom reason")])
async def test_close_sends_that_code_and_ends_the_handlers_conversation(module_server, code, reason):
    async with module_server.connect("/close") as ws:
        await ws.send(f"close {code} {reason}".rstrip())
        # Messages still on their way after close() must not reach the handler any more.
        for n in range(200):
            await ws.send(f"late {n}")
        assert await closed_with(ws) == (code, reason)
        conn_id = None
    for attempt in ("receive_text", "send_text"):
        (line,) = await module_server.until(rf"(\S+) {attempt} after close: {code} {reason!r}$")
        conn_id = conn_id or line.group(1)
        assert line.group(1) == conn_id


@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 5000])
async def test_close_refuses_codes_a_server_may_not_send(module_server, code):
    async with module_server.connect("/close") as ws:
        await ws.send(f"close {code}")
        assert (await receive(ws)).startswith(f"ValueError: {code} is not a close code")


async def test_the_handler_sees_the_clients_close_code_and_reason(module_server):
    async with module_server.connect("/disconnect") as ws:
        await ws.send("hello")
        await ws.close(4002, "client done")
    (line,) = await module_server.until(r"(\S+) disconnected code=4002 reason='client done'")
    await module_server.until(rf"{line.group(1)} send after disconnect raised code=4002")


async def test_a_vanished_client_is_a_1006_disconnect(module_server):
    async with module_server.connect("/disconnect") as ws:
        await ws.send("hello")
        ws.transport.abort()  # no Close frame, just a TCP reset
    await module_server.until(r"disconnected code=1006 reason=''")


async def test_async_for_ends_quietly_on_disconnect(module_server):
    async with module_server.connect("/iterate") as ws:
        await ws.send("a")
        assert await receive(ws) == "1:'a'"
        await ws.send(b"b")
        assert await receive(ws) == "2:b'b'"
    await module_server.until(r"iteration ended after 2")


async def test_broadcast_still_works_after_the_sender_left(module_server):
    async with module_server.connect("/left") as stays:
        await stays.send("here")
        assert (await receive(stays)).endswith(": here")
        async with module_server.connect("/left") as leaves:
            await leaves.send("bye")
            leaver = (await receive(leaves)).split(":")[0]
            assert await receive(stays) == f"{leaver}: bye"
        assert await receive(stays) == f"{leaver} left"


async def test_the_interpreter_side_forgets_every_ended_connection(module_server):
    """Whoever closes (client, handler, close(), a failure), nothing stays behind."""

    async def live_now() -> int:
        async with module_server.connect("/live") as probe:
            return int(await receive(probe))

    before = await live_now()
    for _ in range(20):
        async with module_server.connect("/echo") as ws:  # client closes
            await ws.send("x")
            await receive(ws)
        async with module_server.connect("/close") as ws:  # handler calls close()
            await ws.send("close 1000")
            await closed_with(ws)
        async with module_server.connect("/identity") as ws:  # handler returns
            await receive(ws)
            await ws.send("done")
            await closed_with(ws)
        async with module_server.connect("/sends") as ws:  # vanished
            ws.transport.abort()
    # The probe connections themselves come and go too; allow the events to drain by
    # asking until the count settles where it started.
    async with asyncio.timeout(10):
        while await live_now() != before:
            pass
