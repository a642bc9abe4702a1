"""Raw WebSocket clients for what a well-behaved client library will not do: on asyncio
streams (`RawClient`: invalid UTF-8, reserved opcodes, half frames, pings left unanswered, TCP
resets), and blocking (`Attacker`, for a thread: floods, huge headers, never reading), which
the abuse tests and the memory benchmark (bench/memory.py) share."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import zlib
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


# --- a blocking client, for probes of what a client can make the server hold ---------------


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame whose masking key is all zeros: valid (RFC 6455 asks only that a
    key is sent), and the payload goes out as it is, however large."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + bytes(4) + payload


# How long an Attacker's sends may make no progress before it decides the server stopped
# reading from it. Not a bound on the server: a server that reads without limit takes
# everything at once.
STALL = 2.0


class Attacker:
    """A blocking client (for a thread) that reads only when told to. Its kernel receive
    buffer is kept small, so what the server cannot send it piles up in the server, not in
    the kernel."""

    def __init__(self, port: int, path: str, *headers: str, header_bytes: int = 0) -> None:
        self.sock = socket.socket()
        # Only the receive side is kept small: a small send buffer would only slow the attack
        # down (every few KiB waiting for a delayed ACK).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        padding = [f"X-Padding: {'p' * header_bytes}"] if header_bytes else []
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
            "Sec-WebSocket-Version: 13",
            *headers,
            *padding,
        ]
        self.buffer = b""
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole request was read: the status says why
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split()[1]) if head else 0

    def _read_until(self, marker: bytes) -> bytes:
        try:
            while marker not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return b""
                self.buffer += chunk
        except ConnectionResetError:
            return b""
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(max(65536, size - len(self.buffer)))
            assert chunk, "the server closed the connection without a Close frame"
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """The next frame from the server (opcode, payload), inflated if it was compressed (the
        server takes no context over from one message to the next)."""
        first, second = self._read_exactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read_exactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read_exactly(8))
        payload = self._read_exactly(size)
        if first & 0x40:  # RSV1: permessage-deflate
            payload = zlib.decompressobj(-zlib.MAX_WBITS).decompress(payload + b"\x00\x00\xff\xff")
        return first & 0x0F, payload

    def close_code(self) -> int:
        """Reads everything up to the server's Close frame; its code."""
        self.sock.settimeout(30)
        while True:
            opcode, payload = self.read_frame()
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0]

    def flood(self, data: bytes, times: int) -> int:
        """Sends `data` up to `times` times; stops once the server has taken nothing for
        STALL seconds (it stopped reading). Answers how many went out whole."""
        self.sock.settimeout(STALL)
        view = memoryview(data)
        for sent in range(times):
            try:
                for start in range(0, len(view), 256 * 1024):
                    self.sock.sendall(view[start : start + 256 * 1024])
            except TimeoutError:
                return sent
        return times

    def close(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
