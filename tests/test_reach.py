"""What a real app needs beyond the seed: who is connecting (headers, cookies, client, path,
url, route parameters), subprotocols, refusing before the upgrade, rooms, and reaching any
connection by id, from a handler or from a background task."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from conftest import closed_with, messages_until_close, receive
from websockets.exceptions import InvalidStatus

APP = "reach"


async def test_the_handshake_is_on_the_websocket_object(module_server):
    headers = {"X-Token": "t0k3n", "Cookie": "session=abc; theme=dark", "X-Multi": "one"}
    async with module_server.connect("/whoami?page=2&tag=a&tag=b", additional_headers=headers) as ws:
        seen = json.loads(await receive(ws))
    assert seen["x_token"] == "t0k3n"
    assert seen["has_token"] is True
    assert seen["x_multi"] == ["one"]
    assert ["x-token", "t0k3n"] in seen["headers"]
    assert seen["cookies"] == {"session": "abc", "theme": "dark"}
    assert seen["client"][0] == "127.0.0.1"
    assert seen["client"][1] > 0
    assert seen["path"] == "/whoami"
    assert seen["url"] == ["ws", f"127.0.0.1:{module_server.port}", "/whoami"]
    assert seen["path_params"] == {}
    assert seen["subprotocol"] is None
    assert seen["query"] == {"page": ["2"], "tag": ["a", "b"]}


async def test_route_parameters_are_easy_access_parameters(module_server):
    async with module_server.connect("/user/41") as ws:
        assert await receive(ws) == "user 42 via /user/41 {'id': '41'}"
    async with module_server.connect("/files/docs/a%20b.txt") as ws:
        assert await receive(ws) == "file docs/a b.txt"


async def test_a_route_parameter_that_does_not_convert_is_refused_like_a_query_parameter(module_server):
    async with module_server.connect("/user/abc") as ws:
        assert await messages_until_close(ws) == ["Error: Invalid value 'abc' for parameter 'id': expected int"]
        assert ws.protocol.close_rcvd.code == 1008


async def test_the_first_offered_subprotocol_the_route_speaks_is_chosen_alone(module_server):
    async with module_server.connect("/graphql", subprotocols=["chat", "graphql-ws", "graphql-transport-ws"]) as ws:
        assert ws.subprotocol == "graphql-ws"
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["graphql-ws"]
        assert await receive(ws) == "speaking graphql-ws"


async def test_no_subprotocol_in_common_means_no_header(module_server):
    with socket.create_connection(("127.0.0.1", module_server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: chat, superchat\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    assert b"sec-websocket-protocol" not in head.lower()


async def test_on_connect_refuses_with_an_http_response_and_the_handler_never_runs(module_server):
    with pytest.raises(InvalidStatus) as refused:
        async with module_server.connect("/private"):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Cookie"
    assert response.body == b"login first"
    (line,) = await module_server.until(r"refusing (\S+)")
    await module_server.until(r"refused a connection to /private with HTTP 401")
    assert module_server.count(rf"private on_close {line.group(1)}") == 0


async def test_on_connect_accepts_and_its_string_is_the_first_message(module_server):
    async with module_server.connect("/private", additional_headers={"Cookie": "session=s3cret"}) as ws:
        assert await receive(ws) == "authenticated"
        assert await receive(ws) == "handler sees session s3cret"
        await ws.send("hi")
        assert await receive(ws) == "private echo hi"


async def test_close_in_on_connect_still_upgrades_and_closes_with_its_code(module_server):
    # What a browser can read: the upgrade, then a Close frame with the app's code. (After
    # close() nothing more is sent, the greeting included.)
    async with module_server.connect("/kicked") as ws:
        assert await messages_until_close(ws) == []
        assert await closed_with(ws) == (4001, "go away")


async def test_nested_routers_add_up_their_prefixes(module_server):
    async with module_server.connect("/outer/inner/deep") as ws:
        assert await receive(ws) == "deep at /outer/inner/deep"


def test_an_http_route_of_the_app_is_served_beside_its_websockets(module_server):
    with socket.create_connection(("127.0.0.1", module_server.port), timeout=5) as sock:
        sock.sendall(b"GET /items/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"item 7")


async def joined(server, room: str, name: str):
    ws = await server.connect(f"/chat?room={room}&name={name}").__aenter__()
    greeting = await receive(ws)
    assert greeting.startswith(f"joined {room} as ")
    return ws, greeting.removeprefix(f"joined {room} as ")


async def test_a_room_broadcast_reaches_its_members_only(module_server):
    (ann, _), (bob, _), (cy, _) = [
        await joined(module_server, room, name) for room, name in (("red", "ann"), ("red", "bob"), ("blue", "cy"))
    ]
    await ann.send("hello reds")
    assert await receive(ann) == "[red] ann: hello reds"
    assert await receive(bob) == "[red] ann: hello reds"
    await ann.send("/others just you")
    assert await receive(bob) == "[red] ann to others: just you"
    # cy is in another room: the next thing it hears is its own room's message.
    await cy.send("hello blues")
    assert await receive(cy) == "[blue] cy: hello blues"
    for ws in (ann, bob, cy):
        await ws.close()


async def test_rooms_can_be_joined_and_left_and_membership_ends_with_the_connection(module_server):
    (ann, _), (bob, _) = await joined(module_server, "red", "ann"), await joined(module_server, "green", "bob")
    await bob.send("/join red")
    assert await receive(bob) == "rooms ['green', 'red']"
    await ann.send("both see this")
    assert await receive(bob) == "[red] ann: both see this"
    assert await receive(ann) == "[red] ann: both see this"
    await bob.send("/leave red")
    assert await receive(bob) == "rooms ['green']"
    await ann.send("/to green ann speaks in green")
    assert await receive(bob) == "[green] ann: ann speaks in green"
    await bob.close()
    # Bob's membership ended with him: a broadcast to green reaches nobody and breaks nothing.
    await ann.send("/to green anyone?")
    await ann.send("still here")
    assert await receive(ann) == "[red] ann: still here"
    await ann.close()


async def test_send_to_reaches_one_connection_and_answers_false_for_one_that_left(module_server):
    (ann, _), (bob, bob_id) = await joined(module_server, "red1", "ann"), await joined(module_server, "red2", "bob")
    await ann.send(f"/dm {bob_id} psst")
    assert await receive(bob) == "dm from ann: psst"
    assert await receive(ann) == "dm queued True"
    await bob.close()
    await module_server.until(r"chat: bob left red2")
    await ann.send(f"/dm {bob_id} are you there")
    assert await receive(ann) == "dm queued False"
    await ann.send("/dm not-a-uuid hello")
    assert await receive(ann) == "dm queued False"
    await ann.close()


async def test_a_background_task_reaches_connections_by_id_endpoint_and_room(module_server):
    (ann, ann_id), (bob, bob_id) = await joined(module_server, "red", "ann"), await joined(module_server, "blue", "bob")
    async with module_server.connect("/admin") as admin:
        await admin.send("connections /chat")
        listed = (await receive(admin)).removeprefix("connections: ").split(",")
        assert {ann_id, bob_id} <= set(listed)
        await admin.send(f"poke {bob_id}")
        assert await receive(bob) == "poked from the background"
        assert await receive(admin) == "poke: True"
        await admin.send("announce red meeting at noon")
        assert await receive(ann) == "announcement: meeting at noon"
        assert await receive(admin) == "announce: announced"
        await admin.send("everyone hello all")
        assert await receive(ann) == "to everyone: hello all"
        assert await receive(bob) == "to everyone: hello all"
        assert await receive(admin) == "everyone: announced"
    await ann.close()
    await bob.close()


async def test_500_clients_in_20_rooms_hear_exactly_their_room_in_sender_order(module_server):
    rooms, per_room, each = 20, 25, 4
    clients = [[await joined(module_server, f"room{r}", f"c{r}-{i}") for i in range(per_room)] for r in range(rooms)]

    async def hears(ws, room: int) -> list[str]:
        heard = []
        while len(heard) < per_room * each:
            heard.append(await receive(ws, timeout=60))
        return heard

    listening = [asyncio.create_task(hears(ws, r)) for r, members in enumerate(clients) for ws, _ in members]
    for n in range(each):
        await asyncio.gather(*(ws.send(f"{n}") for members in clients for ws, _ in members))
    heard = await asyncio.gather(*listening)
    for index, messages in enumerate(heard):
        room = index // per_room
        assert all(message.startswith(f"[room{room}] c{room}-") for message in messages), "only its own room"
        by_sender: dict[str, list[str]] = {}
        for message in messages:
            sender, _, text = message.removeprefix(f"[room{room}] ").partition(": ")
            by_sender.setdefault(sender, []).append(text)
        assert len(by_sender) == per_room
        assert all(texts == [str(n) for n in range(each)] for texts in by_sender.values()), "per-sender order"
    for members in clients:
        for ws, _ in members:
            await ws.close()
