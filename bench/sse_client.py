"""The server-sent events load's generator (bench/sse_loads.py runs it in .bench/venv): opens
`--subscribers` HTTP/1.1 GETs with `Accept: text/event-stream` on one asyncio loop (uvloop, raw
`asyncio.Protocol`s, no HTTP library) and counts the events each one receives.

Every stream is checked before it is counted: the answer must be `200` with a
`text/event-stream` content type, and each subscriber's first `--check` events go through a
full parser (chunked transfer coding undone, SSE lines and fields per the WHATWG spec, the data
decoded as JSON) that wants rising sequence numbers. After that, a cheap count: each read, up
to the last complete JSON object in it, holds some `data:` fields, and its last sequence number
must be at least that many past the previous read's (a repeated or reordered event fails the
run); any more is a gap, events the app dropped for a subscriber too far behind, counted as
lost and never as delivered. Once every subscriber has had an event, a warm-up, then the measured span between two
marks printed on stdout (the `{"mark": ..., "wait": false}` lines ws-loadgen prints, which
bench/run.py's `generate_against` reads CPU time at); the report (one JSON line) last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

SEQ = b'"seq":'


class StreamError(Exception):
    """The stream was not what the load wants."""


class FullParser:
    """An exact parse of the first events of one stream: chunked coding, SSE lines, JSON."""

    def __init__(self, chunked: bool, wanted: int) -> None:
        self.chunked = chunked
        self.wanted = wanted
        self.raw = b""
        self.chunk_left = 0
        self.text = ""
        self.data: list[str] = []
        self.events = 0
        self.last: int | None = None

    def feed(self, data: bytes) -> bool:
        """Takes the bytes of one read; True once `wanted` events have been checked."""
        self.raw += data
        body = self._dechunk() if self.chunked else self._take_all()
        self.text += body.decode()
        # A line ends in CRLF, LF or CR; a CR last in the buffer may be half a CRLF.
        while True:
            cut = min((i for i in (self.text.find("\r"), self.text.find("\n")) if i >= 0), default=-1)
            if cut < 0 or (self.text[cut] == "\r" and cut == len(self.text) - 1):
                break
            line = self.text[:cut]
            step = 2 if self.text.startswith("\r\n", cut) else 1
            self.text = self.text[cut + step :]
            self._line(line)
            if self.events >= self.wanted:
                return True
        return False

    def _take_all(self) -> bytes:
        raw, self.raw = self.raw, b""
        return raw

    def _dechunk(self) -> bytes:
        out = []
        while self.raw:
            if self.chunk_left > 0:
                piece = self.raw[: self.chunk_left]
                out.append(piece)
                self.raw = self.raw[len(piece) :]
                self.chunk_left -= len(piece)
                if self.chunk_left == 0:
                    self.chunk_left = -2  # the chunk's CRLF
                continue
            if self.chunk_left < 0:
                if len(self.raw) < 2:
                    break
                if self.raw[:2] != b"\r\n":
                    raise StreamError(f"chunk not followed by CRLF: {self.raw[:20]!r}")
                self.raw = self.raw[2:]
                self.chunk_left = 0
                continue
            end = self.raw.find(b"\r\n")
            if end < 0:
                break
            size = int(self.raw[:end].split(b";", 1)[0], 16)
            if size == 0:
                raise StreamError("the stream ended")
            self.raw = self.raw[end + 2 :]
            self.chunk_left = size
        return b"".join(out)

    def _line(self, line: str) -> None:
        if line == "":
            if self.data:
                self._event("\n".join(self.data))
            self.data = []
            return
        if line.startswith(":"):
            return  # a comment (sse-starlette's keep-alive ping)
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)

    def _event(self, data: str) -> None:
        try:
            sequence = json.loads(data)["seq"]
        except (ValueError, KeyError, TypeError) as error:
            raise StreamError(f"event data is not the feeder's JSON: {data[:80]!r}") from error
        if self.last is not None and sequence <= self.last:
            raise StreamError(f"sequence {sequence} after {self.last}")
        self.last = sequence
        self.events += 1


class Subscriber(asyncio.Protocol):
    def __init__(self, load: Load) -> None:
        self.load = load
        self.head = b""
        self.body = b""
        self.streaming = False
        self.full: FullParser | None = None
        self.count = 0
        # Events the app dropped for this subscriber (gaps in the sequence numbers).
        self.lost = 0
        self.last: int | None = None
        self.transport: asyncio.Transport | None = None
        self.ended = load.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] (uvloop's is no asyncio.Transport subclass)
        transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        try:
            if not self.streaming:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                data = self.head[end + 4 :]
                self._response(self.head[:end])
                self.streaming = True
            if self.full is not None and self.full.feed(data):
                self.full = None
                self.load.checked += 1
            self._count(data)
        except (StreamError, ValueError, UnicodeDecodeError) as error:
            self.load.fail(f"subscriber {self.load.subscribers.index(self)}: {error}")
            if self.transport is not None:
                self.transport.close()

    def _response(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            raise StreamError(f"answered {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if not headers.get("content-type", "").startswith("text/event-stream"):
            raise StreamError(f"content-type {headers.get('content-type')!r}")
        self.full = FullParser(headers.get("transfer-encoding") == "chunked", self.load.check)

    def _count(self, data: bytes) -> None:
        body = self.body + data if self.body else data
        end = body.rfind(b"}")
        if end < 0:
            self.body = body
            return
        done, self.body = body[: end + 1], body[end + 1 :]
        events = done.count(b"data:")
        at = done.rfind(SEQ)
        if at < 0:
            raise StreamError("no sequence number in the events")
        sequence = int(done[at + len(SEQ) : done.index(b",", at)])
        if self.last is None:
            self.load.ready += 1
        elif sequence - self.last < events:
            raise StreamError(f"{events} events took the sequence from {self.last} to {sequence}")
        else:
            self.lost += sequence - self.last - events
        self.last = sequence
        self.count += events

    def connection_lost(self, error: Exception | None) -> None:
        if not self.load.closing:
            self.load.fail(f"a stream ended ({error or 'closed by the server'})")
        if not self.ended.done():
            self.ended.set_result(None)


class Load:
    def __init__(self, options: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> None:
        self.options = options
        self.loop = loop
        self.check = options.check
        host = f"{options.host}:{options.port}"
        self.request = (
            f"GET {options.path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n\r\n"
        ).encode()
        self.subscribers: list[Subscriber] = []
        self.ready = 0
        self.checked = 0
        self.closing = False
        self.error: str | None = None
        self.failed = loop.create_future()

    def fail(self, why: str) -> None:
        if self.error is None:
            self.error = why
            self.failed.set_result(None)

    async def wait_until(self, done, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            if self.error:
                raise StreamError(self.error)
            if time.monotonic() > deadline:
                answered = sum(subscriber.streaming for subscriber in self.subscribers)
                raise StreamError(f"{what} within {seconds:.0f} s ({answered} answered, {self.ready} had one)")
            await asyncio.sleep(0.01)

    async def sleep(self, seconds: float) -> None:
        """Sleeps, unless a stream breaks meanwhile."""
        try:
            await asyncio.wait_for(asyncio.shield(self.failed), seconds)
        except TimeoutError:
            return
        raise StreamError(self.error or "failed")

    async def connect(self) -> None:
        gate = asyncio.Semaphore(50)

        async def one() -> None:
            async with gate:
                subscriber = Subscriber(self)
                self.subscribers.append(subscriber)
                await self.loop.create_connection(lambda: subscriber, self.options.host, self.options.port)

        await asyncio.gather(*(one() for _ in range(self.options.subscribers)))

    def delivered(self) -> int:
        return sum(subscriber.count for subscriber in self.subscribers)

    async def run(self) -> dict:
        options = self.options
        started = time.monotonic()
        await self.connect()
        n = options.subscribers
        await self.wait_until(lambda: self.ready == n, options.timeout, f"not every subscriber had an event ({n})")
        await self.wait_until(lambda: self.checked == n, options.timeout, f"{options.check} events not checked")
        connected = time.monotonic() - started
        await self.sleep(options.warmup)
        counts = [subscriber.count for subscriber in self.subscribers]
        lost = sum(subscriber.lost for subscriber in self.subscribers)
        begin = time.monotonic()
        print(json.dumps({"mark": "start", "wait": False}), flush=True)
        await self.sleep(options.seconds)
        after = [subscriber.count for subscriber in self.subscribers]
        lost = sum(subscriber.lost for subscriber in self.subscribers) - lost
        end = time.monotonic()
        print(json.dumps({"mark": "end", "wait": False}), flush=True)
        each = [later - earlier for earlier, later in zip(counts, after, strict=True)]
        self.closing = True
        for subscriber in self.subscribers:
            if subscriber.transport is not None:
                subscriber.transport.close()
        return {
            "load": "sse",
            "subscribers": n,
            "deliveries": sum(each),
            "seconds": end - begin,
            "rate": sum(each) / (end - begin),
            "lost": lost,
            "fewest_per_subscriber": min(each),
            "most_per_subscriber": max(each),
            "checked_events_per_subscriber": options.check,
            "connect_seconds": connected,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--marks", action="store_true", help="accepted for ws-loadgen's command line; always on")
    parser.add_argument("url", help="http://host:port/path")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--check", type=int, default=20, help="events fully parsed on each subscriber first")
    parser.add_argument("--timeout", type=float, default=60, help="for every subscriber's first events")
    options = parser.parse_args()
    rest = options.url.removeprefix("http://")
    address, _, path = rest.partition("/")
    options.host, _, port = address.rpartition(":")
    options.port, options.path = int(port), "/" + path
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run

    async def load() -> dict:
        return await Load(options, asyncio.get_running_loop()).run()

    try:
        report = run(load())
    except (StreamError, OSError) as error:
        print(json.dumps({"load": "sse", "error": str(error)}), flush=True)
        sys.exit(1)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
