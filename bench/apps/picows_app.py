"""picows with no framework on uvloop: frames echoed or broadcast straight from the
callback. The ceiling a Python-side server reaches on this machine."""

import os

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

subscribers: set[WSTransport] = set()


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_bytes())


class Broadcast(WSListener):
    def on_ws_connected(self, transport: WSTransport) -> None:
        subscribers.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        subscribers.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            for subscriber in subscribers:
                subscriber.send(WSMsgType.TEXT, payload)


def listener_for(request: WSUpgradeRequest) -> WSListener | None:
    return {b"/echo": Echo, b"/broadcast": Broadcast}.get(request.path, lambda: None)()


async def main() -> None:
    server = await ws_create_server(listener_for, "127.0.0.1", int(os.environ["PORT"]))
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
