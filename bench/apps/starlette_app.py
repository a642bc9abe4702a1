"""The benchmark's app on Starlette (run by uvicorn and by granian): the same echo and broadcast."""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

subscribers: set[WebSocket] = set()


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


async def broadcast(websocket: WebSocket) -> None:
    await websocket.accept()
    subscribers.add(websocket)
    try:
        while True:
            message = await websocket.receive_text()
            for subscriber in list(subscribers):
                await subscriber.send_text(message)
    except WebSocketDisconnect:
        pass
    finally:
        subscribers.discard(websocket)


app = Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/broadcast", broadcast)])
