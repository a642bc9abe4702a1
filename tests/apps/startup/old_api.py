"""Robyn's older WebSocket API, which this server does not serve."""

from robyn import Robyn, WebSocket

app = Robyn(__file__)
websocket = WebSocket(app, "/web_socket")


@websocket.on("message")
def message(ws, msg):
    return msg
