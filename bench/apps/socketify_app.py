"""The benchmark's app on socketify.py (uWebSockets, callback API), at its defaults: `App()`,
and `ws()` behaviours that set only the handlers. Echo sends each message back as it came
(text as text); broadcast subscribes every connection to one topic on open, and publishes
each message to it with `app.publish`, which (unlike uWebSockets' own `ws.publish`) includes
the sender, so every connected client of the endpoint gets it, as on the other servers."""

import os

from socketify import App, AppListenOptions, OpCode

TOPIC = "broadcast"

app = App()


def echo(ws, message, opcode: OpCode) -> None:
    ws.send(message, opcode)


def join(ws) -> None:
    ws.subscribe(TOPIC)


def broadcast(ws, message, opcode: OpCode) -> None:
    app.publish(TOPIC, message, opcode)


app.ws("/echo", {"message": echo})
app.ws("/broadcast", {"open": join, "message": broadcast})

if __name__ == "__main__":
    app.listen(AppListenOptions(port=int(os.environ["PORT"]), host="127.0.0.1"))
    app.run()
