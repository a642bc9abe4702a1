"""Easy-access typed parameters, their errors, and dependency injection."""

from __future__ import annotations

import json

import pytest
from conftest import messages_until_close, receive

APP = "params"


async def first_message(server, path: str) -> str:
    async with server.connect(path) as ws:
        return await receive(ws)


async def rejection(server, path: str) -> tuple[list[str | bytes], int, str]:
    async with server.connect(path) as ws:
        messages = await messages_until_close(ws)
        return messages, ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name=bruce&count=3&ratio=2.5&flag=true", {"name": "bruce", "count": 3, "ratio": 2.5, "flag": True}),
        ("name=&count=-7&ratio=1e3&flag=0", {"name": "", "count": -7, "ratio": 1000.0, "flag": False}),
        ("name=a+b&count=0&ratio=3&flag=YES", {"name": "a b", "count": 0, "ratio": 3.0, "flag": True}),
        ("name=x&count=1&ratio=1&flag=off", {"name": "x", "count": 1, "ratio": 1.0, "flag": False}),
        ("name=x&count=1&ratio=1&flag=On", {"name": "x", "count": 1, "ratio": 1.0, "flag": True}),
        ("name=x&count=1&ratio=1&flag=no", {"name": "x", "count": 1, "ratio": 1.0, "flag": False}),
        ("name=first&name=last&count=1&ratio=1&flag=1", {"name": "last", "count": 1, "ratio": 1.0, "flag": True}),
    ],
)
async def test_typed_parameters_are_coerced(module_server, query, expected):
    assert json.loads(await first_message(module_server, f"/typed?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"maybe": None, "other": None, "tags": [], "names": None, "plain": None}),
        ("maybe=5&other=0.5", {"maybe": 5, "other": 0.5, "tags": [], "names": None, "plain": None}),
        ("tags=1&tags=2&names=a&plain=p", {"maybe": None, "other": None, "tags": [1, 2], "names": ["a"], "plain": "p"}),
    ],
)
async def test_optional_and_list_parameters(module_server, query, expected):
    assert json.loads(await first_message(module_server, f"/optional?{query}")) == expected


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("count=1&ratio=1&flag=1", "Error: Missing required parameter: 'name'"),
        ("name=x&ratio=1&flag=1", "Error: Missing required parameter: 'count'"),
        ("name=x&count=abc&ratio=1&flag=1", "Error: Invalid value 'abc' for parameter 'count': expected int"),
        ("name=x&count=1.5&ratio=1&flag=1", "Error: Invalid value '1.5' for parameter 'count': expected int"),
        ("name=x&count=1&ratio=fast&flag=1", "Error: Invalid value 'fast' for parameter 'ratio': expected float"),
        ("name=x&count=1&ratio=1&flag=maybe", "Error: Invalid value 'maybe' for parameter 'flag': expected bool"),
    ],
)
async def test_missing_or_invalid_parameters_send_robyns_text_then_close_1008(module_server, query, error):
    messages, code, reason = await rejection(module_server, f"/typed?{query}")
    assert messages == [error]
    assert code == 1008
    assert reason == "invalid query parameters"


async def test_list_elements_are_coerced_too(module_server):
    messages, code, _ = await rejection(module_server, "/optional?tags=1&tags=two")
    assert messages == ["Error: Invalid value 'two' for parameter 'tags': expected int"]
    assert code == 1008


async def test_a_rejected_connection_never_runs_the_handler_or_on_close(module_server):
    messages, code, _ = await rejection(module_server, "/required")
    assert (messages, code) == (["Error: Missing required parameter: 'token'"], 1008)
    assert await first_message(module_server, "/required?token=abc") == "token=abc"
    await module_server.until(r"handler ran with abc")
    assert module_server.count(r"handler ran with") == 1
    await module_server.until(r"on_close ran", count=1)
    assert module_server.count(r"on_close ran") == 1


async def test_on_connect_and_on_close_get_their_own_parameters(module_server):
    async with module_server.connect("/callback-params?room=batcave&seat=2") as ws:
        assert await receive(ws) == "connect room=batcave seat=2"
        assert await receive(ws) == "handler room=batcave"
        await ws.send("bye")
    await module_server.until(r"on_close room=batcave seat=2")


async def test_a_parameter_required_only_by_on_close_is_checked_before_anything_runs(module_server):
    messages, code, _ = await rejection(module_server, "/callback-params")
    assert (messages, code) == (["Error: Missing required parameter: 'room'"], 1008)


async def test_query_params_by_name_or_annotation_is_the_whole_object(module_server):
    answer = json.loads(await first_message(module_server, "/whole-query?a=1&a=2"))
    assert answer == {"same": True, "all": {"a": ["1", "2"]}}


async def test_dependencies_are_injected_into_handler_and_on_connect(module_server):
    async with module_server.connect("/dependencies") as ws:
        assert await receive(ws) == "connect global value / router value"
        assert json.loads(await receive(ws)) == {
            "global_": {"GLOBAL": "global value"},
            "router": {"ROUTER": "router value"},
        }


async def test_a_subrouter_serves_under_its_prefix_with_its_own_dependencies(module_server):
    answer = json.loads(await first_message(module_server, "/rooms/ws"))
    assert answer == {"global_": {"GLOBAL": "global value"}, "router": {"ROUTER": "rooms router value"}}


async def test_a_callback_may_skip_the_websocket_parameter(module_server):
    assert await first_message(module_server, "/no-websocket-parameter") == "on_connect needs no websocket"


async def test_string_annotations_resolve(start_server):
    server = start_server("string_annotations")
    assert await first_message(server, "/ws?page=4&flag=false&ids=1&ids=2") == "4 False [1, 2]"
    messages, code, _ = await rejection(server, "/ws?page=four")
    assert (messages, code) == (["Error: Invalid value 'four' for parameter 'page': expected int"], 1008)
