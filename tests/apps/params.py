"""Easy-access parameters of every supported kind, and dependency injection."""

import json
from typing import Optional

from robyn import QueryParams, Robyn, SubRouter

app = Robyn(__file__)
app.inject_global(GLOBAL="global value")
app.inject(ROUTER="router value")


def show(**values) -> str:
    return json.dumps(values, sort_keys=True)


@app.websocket("/typed")
async def typed(websocket, name: str, count: int, ratio: float, flag: bool):
    await websocket.send_text(show(name=name, count=count, ratio=ratio, flag=flag))
    await websocket.receive_text()


@app.websocket("/optional")
async def optional(
    websocket,
    maybe: Optional[int],  # noqa: UP045 - the typing spelling is part of what is tested
    other: float | None = None,
    tags: list[int] = [],  # noqa: B006
    names: list[str] | None = None,
    plain=None,
):
    await websocket.send_text(show(maybe=maybe, other=other, tags=tags, names=names, plain=plain))
    await websocket.receive_text()


@app.websocket("/required")
async def required(websocket, token: str):
    print("handler ran with", token, flush=True)
    await websocket.send_text(f"token={token}")
    await websocket.receive_text()


@required.on_close
def required_close(websocket):
    print("on_close ran", websocket.id, flush=True)


@app.websocket("/callback-params")
async def callback_params(websocket, room: str = "lobby"):
    await websocket.send_text(f"handler room={room}")
    await websocket.receive_text()


@callback_params.on_connect
def callback_params_connect(websocket, room: str = "lobby", seat: int = 0):
    return f"connect room={room} seat={seat}"


@callback_params.on_close
def callback_params_close(websocket, room: str, seat: int = 0):
    print(f"on_close room={room} seat={seat}", flush=True)
    return f"left {room}"


@app.websocket("/whole-query")
async def whole_query(websocket, query_params, q: QueryParams):
    await websocket.send_text(show(same=query_params is q, all=q.to_dict()))
    await websocket.receive_text()


@app.websocket("/dependencies")
async def dependencies(websocket, global_dependencies, router_dependencies):
    await websocket.send_text(show(global_=global_dependencies, router=router_dependencies))
    await websocket.receive_text()


@dependencies.on_connect
async def dependencies_connect(websocket, global_dependencies=None, router_dependencies=None):
    return f"connect {global_dependencies['GLOBAL']} / {router_dependencies['ROUTER']}"


@app.websocket("/no-websocket-parameter")
async def takes_nothing_but_kwargs(websocket):
    await websocket.send_text("ok")
    await websocket.receive_text()


@takes_nothing_but_kwargs.on_connect
def connect_without_websocket():
    return "on_connect needs no websocket"


rooms = SubRouter(__file__, prefix="/rooms")
rooms.inject(ROUTER="rooms router value")


@rooms.websocket("/ws")
async def rooms_ws(websocket, global_dependencies, router_dependencies):
    await websocket.send_text(show(global_=global_dependencies, router=router_dependencies))
    await websocket.receive_text()


app.include_router(rooms)
