"""Endpoints for what a real app needs beyond the seed: the handshake on the websocket object,
route parameters, subprotocols, refusing before the upgrade, rooms, and reaching any
connection from a handler or from a background task."""

import asyncio

from robyn import Response, Robyn, SubRouter

app = Robyn(__file__)
# What the background task is asked to do: (what, argument, where to report).
errands: "asyncio.Queue[tuple[str, str, str]]"


def say(*parts: object) -> None:
    print(*parts, flush=True)


@app.websocket("/whoami")
async def whoami(websocket):
    await websocket.send_json(
        {
            "headers": websocket.headers.items(),
            "x_token": websocket.headers.get("X-Token"),
            "x_multi": websocket.headers.get_all("x-multi"),
            "has_token": websocket.headers.contains("x-TOKEN"),
            "cookies": websocket.cookies,
            "client": list(websocket.client),
            "path": websocket.path,
            "url": [websocket.url.scheme, websocket.url.host, websocket.url.path],
            "path_params": websocket.path_params,
            "subprotocol": websocket.subprotocol,
            "query": websocket.query_params.to_dict(),
        }
    )


@app.websocket("/user/:id")
async def user(websocket, id: int):
    await websocket.send_text(f"user {id + 1} via {websocket.path} {websocket.path_params}")


@app.websocket("/files/*rest")
async def files(websocket, rest: str):
    await websocket.send_text(f"file {rest}")


@app.websocket("/graphql", subprotocols=["graphql-transport-ws", "graphql-ws"])
async def graphql(websocket):
    await websocket.send_text(f"speaking {websocket.subprotocol}")


@app.websocket("/private")
async def private(websocket):
    await websocket.send_text(f"handler sees session {websocket.cookies['session']}")
    async for message in websocket:
        await websocket.send_text(f"private echo {message}")


@private.on_connect
def check_session(websocket):
    if websocket.cookies.get("session") != "s3cret":
        say(f"refusing {websocket.id}")
        return Response(status_code=401, headers={"WWW-Authenticate": "Cookie"}, description="login first")
    return "authenticated"


@private.on_close
def private_closed(websocket):
    say(f"private on_close {websocket.id}")


@app.websocket("/kicked")
async def kicked(websocket):
    await websocket.receive()


@kicked.on_connect
async def kick(websocket):
    await websocket.close(4001, "go away")
    return "you are not welcome"


@app.websocket("/chat")
async def chat(websocket, room: str = "lobby", name: str = "anon"):
    websocket.join(room)
    await websocket.send_text(f"joined {room} as {websocket.id}")
    try:
        async for message in websocket:
            command, _, rest = message.partition(" ")
            if command == "/dm":
                target, _, text = rest.partition(" ")
                queued = await websocket.send_to(target, f"dm from {name}: {text}")
                await websocket.send_text(f"dm queued {queued}")
            elif command == "/join":
                websocket.join(rest)
                await websocket.send_text(f"rooms {sorted(websocket.rooms)}")
            elif command == "/leave":
                websocket.leave(rest)
                await websocket.send_text(f"rooms {sorted(websocket.rooms)}")
            elif command == "/others":
                await websocket.broadcast(f"[{room}] {name} to others: {rest}", room=room, exclude_self=True)
            elif command == "/to":
                target_room, _, text = rest.partition(" ")
                await websocket.broadcast(f"[{target_room}] {name}: {text}", room=target_room)
            else:
                await websocket.broadcast(f"[{room}] {name}: {message}", room=room)
    finally:
        # `async for` ends quietly when the client leaves.
        say(f"chat: {name} left {room}")


@app.websocket("/admin")
async def admin(websocket):
    """Asks the background task to reach other connections, and reports what it answered."""
    async for message in websocket:
        what, _, argument = message.partition(" ")
        await errands.put((what, argument, websocket.id))


async def errand_runner() -> None:
    while True:
        what, argument, requester = await errands.get()
        if what == "connections":
            answer = ",".join(sorted(app.connections(argument)))
        elif what == "poke":
            answer = str(await app.send_to(argument, "poked from the background"))
        elif what == "announce":
            room, _, text = argument.partition(" ")
            await app.broadcast("/chat", f"announcement: {text}", room=room or None)
            answer = "announced"
        elif what == "everyone":
            await app.broadcast("/chat", f"to everyone: {argument}")
            answer = "announced"
        else:
            answer = f"unknown errand {what}"
        await app.send_to(requester, f"{what}: {answer}")


@app.startup_handler
async def start_errands() -> None:
    global errands
    errands = asyncio.Queue()
    background.add(asyncio.get_running_loop().create_task(errand_runner()))


background: set = set()

nested = SubRouter(__file__, prefix="/outer")
inner = SubRouter(__file__, prefix="/inner")


@inner.websocket("/deep")
async def deep(websocket):
    await websocket.send_text(f"deep at {websocket.path}")


nested.include_router(inner)
app.include_router(nested)


@app.get("/items/:id")
def item(request):
    return f"item {request.path_params['id']}"
