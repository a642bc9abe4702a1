"""Many clients at once, each getting exactly its own replies."""

from __future__ import annotations

import asyncio

from conftest import receive

APP = "api"


async def test_hundreds_of_clients_at_once_each_get_their_own_replies(module_server):
    async def client(n: int) -> None:
        async with module_server.connect("/echo") as ws:
            for i in range(20):
                payload = f"client {n} message {i}" if i % 2 else f"client {n} bytes {i}".encode()
                await ws.send(payload)
                assert await receive(ws, timeout=30) == payload

    async with asyncio.timeout(60):
        await asyncio.gather(*(client(n) for n in range(500)))


async def test_pipelined_messages_come_back_in_order(module_server):
    async def client(n: int) -> None:
        async with module_server.connect("/text") as ws:
            for i in range(200):
                await ws.send(f"{n}.{i}")
            for i in range(200):
                assert await receive(ws, timeout=30) == f"str:{n}.{i}"

    async with asyncio.timeout(60):
        await asyncio.gather(*(client(n) for n in range(50)))


async def test_broadcasters_and_echoers_side_by_side(module_server):
    listeners = [await module_server.connect("/broadcast").__aenter__() for _ in range(100)]
    try:
        await listeners[0].send("joined?")
        for ws in listeners:
            while await receive(ws) != "joined?":
                pass

        async def echoer(n: int) -> None:
            async with module_server.connect("/echo") as ws:
                for i in range(20):
                    await ws.send(f"{n}:{i}")
                    assert await receive(ws) == f"{n}:{i}"

        async def broadcaster() -> None:
            # One sender: the order guaranteed is each sender's own.
            for i in range(50):
                await listeners[0].send(f"news {i}")

        async with asyncio.timeout(60):
            await asyncio.gather(broadcaster(), *(echoer(n) for n in range(100)))
            for ws in listeners:
                assert [await receive(ws) for _ in range(50)] == [f"news {i}" for i in range(50)]
    finally:
        for ws in listeners:
            await ws.close()
