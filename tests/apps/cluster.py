"""One app run as several processes (--processes) or several instances (--broker): each
client learns which process serves it, and asks for broadcasts, room messages and send_to
by JSON commands, so a test can check that every one arrives where it should, once."""

import json
import os

from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/chat")
async def chat(websocket):
    await websocket.send_json({"id": websocket.id, "pid": os.getpid()})
    async for message in websocket:
        command = json.loads(message)
        op = command["op"]
        if op == "broadcast":
            await websocket.broadcast(command["text"])
        elif op == "join":
            websocket.join(command["room"])
            await websocket.send_json({"joined": command["room"]})
        elif op == "leave":
            websocket.leave(command["room"])
            await websocket.send_json({"left": command["room"]})
        elif op == "room":
            await websocket.broadcast(command["text"], room=command["room"])
        elif op == "send_to":
            sent = await app.send_to(command["to"], command["text"])
            await websocket.send_json({"sent": sent})
        elif op == "big":
            try:
                await websocket.broadcast("x" * command["size"])
            except ValueError as error:
                await websocket.send_json({"refused": str(error)})
            else:
                await websocket.send_json({"refused": None})


@chat.on_close
def chat_closed(websocket):
    print(f"on_close in {os.getpid()}", flush=True)


@app.on_broker_reconnect
async def resync():
    print(f"on_broker_reconnect in {os.getpid()}", flush=True)
