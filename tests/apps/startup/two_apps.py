from robyn import Robyn

first = Robyn(__file__)
second = Robyn(__file__)


@second.websocket("/second")
async def second_handler(websocket):
    await websocket.send_text("served by second")
    await websocket.receive_text()
