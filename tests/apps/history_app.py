"""History and recovery (`@app.websocket(path, history=N)`), driven by JSON commands so the
tests can broadcast, ask where a history stands, what was missed, and recover, on one process,
several workers (--processes) or several instances (--broker).

Every command carries a `ref`, echoed in its reply (`{"ref": n, ...}`). Every broadcast is a
JSON object with `"o"`: its offset as the function of the offset saw it (None for a plain
str broadcast), `"room"` and `"text"`. A client connecting to `/h?since=N&epoch=E` recovers
the endpoint's broadcasts in `on_connect`; its hello says how that went."""

import asyncio
import json
import os

from robyn import HistoryGap, HistoryPosition, Robyn

app = Robyn(__file__)

KEPT = 60
# history_ttl of /ttl (seconds).
TTL = 2

# What each recovery in on_connect came to, by connection id, for the handler's hello.
connected: dict[str, dict] = {}


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)


def gap_of(gap: HistoryGap) -> dict:
    return {"gap": gap.reason, "epoch": gap.epoch, "offset": gap.offset, "message": str(gap)}


def error_of(error: BaseException) -> dict:
    return {"error": type(error).__name__, "message": str(error)}


def message(room, text):
    """The function of the offset a broadcast is made with; counts its calls."""
    calls = []

    def make(offset):
        calls.append(offset)
        return json.dumps({"o": offset, "room": room, "text": text})

    return make, calls


async def run(websocket, path: str, command: dict) -> dict:
    op = command["op"]
    room = command.get("room")
    if op == "join":
        websocket.join(room)
        return {"joined": room}
    if op == "say":
        make, calls = message(room, command.get("text", ""))
        exclude = command.get("exclude_self", False)
        try:
            offset = await websocket.broadcast(make, room=room, exclude_self=exclude)
        except Exception as error:
            return {**error_of(error), "calls": calls}
        return {"said": offset, "calls": calls}
    if op == "app_say":
        make, calls = message(room, command.get("text", ""))
        offset = await app.broadcast(path, make, room=room)
        return {"said": offset, "calls": calls}
    if op == "burst":
        offsets = []
        for n in range(command["count"]):
            make, _ = message(room, f"{command['text']} {n}")
            offsets.append(await websocket.broadcast(make, room=room))
            if "pause" in command:  # lets other connections' commands run in between
                await asyncio.sleep(command["pause"])
        return {"offsets": offsets}
    if op == "plain":
        text = json.dumps({"o": None, "room": room, "text": command["text"]})
        try:
            offset = await websocket.broadcast(text, room=room)
        except Exception as error:
            return error_of(error)
        return {"said": offset}
    if op == "raise":

        def broken(offset):
            raise ValueError(f"no message for {offset}")

        try:
            await websocket.broadcast(broken, room=room)
        except ValueError as error:
            return error_of(error)
        return {"error": None}
    if op == "not_text":
        try:
            await websocket.broadcast(lambda offset: offset, room=room)
        except Exception as error:
            return error_of(error)
        return {"error": None}
    if op == "position":
        where = await websocket.position(room)
        return {"epoch": where.epoch, "offset": where.offset, "type": type(where) is HistoryPosition}
    if op == "app_position":
        where = await app.position(path, room)
        return {"epoch": where.epoch, "offset": where.offset, "type": type(where) is HistoryPosition}
    if op in ("missed", "app_missed"):
        try:
            if op == "missed":
                got = await websocket.missed(room, since=command["since"], epoch=command["epoch"])
            else:
                got = await app.missed(path, room, since=command["since"], epoch=command["epoch"])
        except HistoryGap as gap:
            return gap_of(gap)
        except Exception as error:
            return error_of(error)
        return {"messages": [json.loads(text) for text in got]}
    if op == "recover":
        try:
            count = await websocket.recover(room, since=command["since"], epoch=command["epoch"])
        except HistoryGap as gap:
            return {**gap_of(gap), "rooms": websocket.rooms}
        except Exception as error:
            return error_of(error)
        return {"count": count, "rooms": websocket.rooms}
    return {"error": "unknown op", "op": op}


async def serve(websocket, path: str, hello: dict) -> None:
    await websocket.send_json({"hello": {"id": websocket.id, "pid": os.getpid(), **hello}})
    async for text in websocket:
        command = json.loads(text)
        reply = await run(websocket, path, command)
        await websocket.send_json({"ref": command["ref"], **reply})


@app.websocket("/h", history=KEPT)
async def kept(websocket):
    await serve(websocket, "/h", connected.pop(websocket.id, {}))


@kept.on_connect
async def kept_connect(websocket):
    since, epoch = websocket.query_params.get("since"), websocket.query_params.get("epoch")
    if since is None:
        return None
    try:
        count = await websocket.recover(since=int(since), epoch=epoch)
    except HistoryGap as gap:
        connected[websocket.id] = {"recovered": gap_of(gap)}
    else:
        connected[websocket.id] = {"recovered": {"count": count}}
    return None


@app.websocket("/ttl", history=KEPT, history_ttl=TTL)
async def short_lived(websocket):
    await serve(websocket, "/ttl", {})


@app.websocket("/plain")
async def plain(websocket):
    await serve(websocket, "/plain", {})


# Bad declarations: each refused with ValueError at import (the test reads these lines).
for bad in ({"history": -1}, {"history": 100_001}, {"history": "10"}, {"history": 10, "history_ttl": 0}):
    try:
        app.websocket("/bad", **bad)
    except ValueError:
        print(f"refused history {bad}", flush=True)
    else:
        print(f"accepted history {bad}", flush=True)
