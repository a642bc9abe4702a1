"""What a callback's return value becomes on the wire (robyn/_endpoint.py), and the websocket's
typed receives (robyn/_websocket.py) over a stand-in for the server's connection object."""

from __future__ import annotations

from typing import Any

import pytest
from robyn import WebSocket
from robyn._endpoint import _as_message


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (None, None),
        ("text", "text"),
        (b"\x00\xff", b"\x00\xff"),
        (bytearray(b"ab"), b"ab"),
        (memoryview(b"cd"), b"cd"),
        ({"ok": True, "n": [1, 2]}, '{"ok":true,"n":[1,2]}'),
        ("é", "é"),
        (["é"], '["é"]'),
    ],
)
def test_a_return_value_as_a_message(value: Any, sent: str | bytes | None) -> None:
    message = _as_message(value)
    assert message == sent
    assert type(message) is type(sent)


class Received:
    """The one method of the server's connection that the receives below call first."""

    def __init__(self, message: str | bytes) -> None:
        self.message = message

    def receive_now(self) -> str | bytes:
        return self.message


@pytest.mark.parametrize(
    ("message", "text", "data"), [("héllo", "héllo", "héllo".encode()), (b"\xc3\xa9", "é", b"\xc3\xa9")]
)
async def test_receive_text_and_receive_bytes_convert_the_other_kind(
    message: str | bytes, text: str, data: bytes
) -> None:
    websocket = WebSocket(Received(message))
    assert await websocket.receive() == message
    assert await websocket.receive_text() == text
    assert await websocket.receive_bytes() == data
