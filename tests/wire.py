"""A raw WebSocket client on asyncio streams, for what a well-behaved client library will not
send: invalid UTF-8, reserved opcodes, half frames, pings left unanswered, TCP resets."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from dataclasses import dataclass

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if self.opcode == CLOSE and len(self.payload) >= 2 else None


def encode(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """One client frame (masked, as RFC 6455 requires of clients, unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([mask_bit | len(payload)])
    elif len(payload) < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", len(payload))
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: bytes) -> None:
        self.reader, self.writer, self.response = reader, writer, response

    @classmethod
    async def connect(cls, port: int, path: str, *headers: str, timeout: float = 10.0) -> RawClient:
        """Opens a connection and completes the opening handshake (fails if it is refused)."""
        client = await cls.request(port, path, *headers, timeout=timeout)
        assert client.response.startswith(b"HTTP/1.1 101"), client.response
        return client

    @classmethod
    async def request(cls, port: int, path: str, *headers: str, timeout: float = 10.0) -> RawClient:
        """Sends an opening handshake and reads the response head, whatever it is."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *headers,
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        return cls(reader, writer, response)

    async def send(self, opcode: int, payload: bytes = b"", **kwargs) -> None:
        self.writer.write(encode(opcode, payload, **kwargs))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, timeout: float = 10.0) -> Frame:
        """The next frame from the server."""
        async with asyncio.timeout(timeout):
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            assert not second & 0x80, "server frames must not be masked"
            return Frame(bool(first & 0x80), first & 0x0F, await self.reader.readexactly(length))

    async def frame_of(self, *opcodes: int, timeout: float = 10.0) -> Frame:
        """The next frame with one of `opcodes`, skipping others."""
        while (frame := await self.frame(timeout)).opcode not in opcodes:
            pass
        return frame

    async def closed_by_server(self, timeout: float = 10.0) -> int | None:
        """Reads up to the server's Close frame and then the end of the TCP stream; returns the
        close code. Fails if the server ends the stream without a Close frame."""
        frame = await self.frame_of(CLOSE, timeout=timeout)
        async with asyncio.timeout(timeout):
            assert await self.reader.read() == b"", "data after the Close frame"
        return frame.close_code

    async def eof(self, timeout: float = 10.0) -> bytes:
        """Everything the server still sends until it closes the TCP connection."""
        async with asyncio.timeout(timeout):
            return await self.reader.read()

    def reset(self) -> None:
        """Drops the connection with a TCP reset, no Close frame."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()
