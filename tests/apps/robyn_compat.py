"""The WebSocket API as Robyn 0.88.0's own integration app uses it: per-connection state
machines, `query_params.get(key, default)`, dependency injection with `None` defaults, an empty
greeting, `jsonify` in `on_close`, a SubRouter with a prefix. Written for this project; the
paths and expected texts follow Robyn's tests so the same assertions apply."""

from collections import defaultdict

from robyn import Robyn, SubRouter, WebSocketDisconnect, jsonify

app = Robyn(__file__)
app.inject_global(GLOBAL_DEPENDENCY="GLOBAL DEPENDENCY")
app.inject(ROUTER_DEPENDENCY="ROUTER DEPENDENCY")

step = defaultdict(int)


@app.websocket("/web_socket")
async def chatty(websocket):
    try:
        while True:
            await websocket.receive_text()
            current = step[websocket.id]
            step[websocket.id] = (current + 1) % 4
            if current == 0:
                await websocket.broadcast("This is a broadcast message")
                await websocket.send_text("This is a message to self")
                await websocket.send_text("Whaaat??")
            elif current == 1:
                await websocket.send_text("Whooo??")
            elif current == 2:
                await websocket.broadcast(websocket.query_params.get("one", ""))
                await websocket.send_text(websocket.query_params.get("two", ""))
                await websocket.send_text("*chika* *chika* Slim Shady.")
            else:
                await websocket.send_text("Connection closed")
                await websocket.close()
                return
    except WebSocketDisconnect:
        pass


@chatty.on_connect
def chatty_connect(websocket):
    return "Hello world, from ws"


@chatty.on_close
def chatty_close(websocket):
    return "GoodBye world, from ws"


@app.websocket("/web_socket_json")
async def as_json(websocket):
    replies = ["Whaaat??", "Whooo??", "*chika* *chika* Slim Shady."]
    count = 0
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_json({"ws_id": websocket.id, "resp": replies[count % 3], "msg": message})
            count += 1
    except WebSocketDisconnect:
        pass


@as_json.on_connect
def as_json_connect(websocket):
    return "Hello world, from ws"


@app.websocket("/web_socket_di")
async def injected(websocket, global_dependencies=None, router_dependencies=None):
    try:
        while True:
            await websocket.receive_text()
            found_global = (
                global_dependencies.get("GLOBAL_DEPENDENCY", "MISSING GLOBAL")
                if global_dependencies
                else "MISSING GLOBAL"
            )
            found_router = (
                router_dependencies.get("ROUTER_DEPENDENCY", "MISSING ROUTER")
                if router_dependencies
                else "MISSING ROUTER"
            )
            await websocket.send_text(f"handler: {found_global} {found_router}")
    except WebSocketDisconnect:
        pass


@injected.on_connect
async def injected_connect(websocket, global_dependencies=None, router_dependencies=None):
    return f"connect: {global_dependencies.get('GLOBAL_DEPENDENCY')} {router_dependencies.get('ROUTER_DEPENDENCY')}"


@app.websocket("/web_socket_echo")
async def echo(websocket):
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@echo.on_connect
def echo_connect(websocket):
    return ""


@app.websocket("/web_socket_binary")
async def binary(websocket):
    try:
        while True:
            await websocket.send_bytes(await websocket.receive_bytes())
    except WebSocketDisconnect:
        pass


@app.websocket("/web_socket_empty_returns")
async def quiet(websocket):
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


@quiet.on_connect
async def quiet_connect(websocket):
    pass


@quiet.on_close
async def quiet_close(websocket):
    return None


@app.websocket("/web_socket_easy_access")
async def easy(websocket, room: str = "default", page: int = 1):
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(f"room={room} page={page} msg={message}")
    except WebSocketDisconnect:
        pass


@easy.on_connect
def easy_connect(websocket, room: str = "default"):
    return f"connected to {room}"


sub_router = SubRouter(__file__, prefix="/sub_router")


@sub_router.websocket("/ws")
async def sub_ws(websocket):
    try:
        while True:
            await websocket.receive_text()
            await websocket.send_text("Message")
    except WebSocketDisconnect:
        pass


@sub_ws.on_connect
async def sub_connect(websocket):
    return "Hello world, from ws"


@sub_ws.on_close
async def sub_close(websocket):
    return jsonify({"message": "closed"})


app.include_router(sub_router)
