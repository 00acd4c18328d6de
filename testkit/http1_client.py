"""A minimal HTTP/1.1 keep-alive client on asyncio.Protocol for the REST load generator:
one request at a time per connection, Content-Length or chunked replies, no third-party code."""

from __future__ import annotations

import asyncio
import collections
import time


class ProtocolError(Exception):
    pass


def parse_http_response(buf: bytes | bytearray) -> tuple[int, bytes, int, bool] | None:
    """Parses one HTTP/1.1 response at the start of buf.

    Returns None while incomplete, else (status, body, bytes consumed, keep_alive).
    Content-Length and chunked framing; 1xx/204/304 have no body. A response framed by
    connection close is not supported (ProtocolError) -- Envoy always frames its replies.
    """
    end_of_head = buf.find(b"\r\n\r\n")
    if end_of_head < 0:
        if len(buf) > 65536:
            raise ProtocolError("response head larger than 64 KiB")
        return None
    if buf[:5] != b"HTTP/" or len(buf) < 12:
        raise ProtocolError(f"not an HTTP response: {bytes(buf[:40])!r}")
    try:
        status = int(buf[9:12])
    except ValueError:
        raise ProtocolError(f"bad status line: {bytes(buf[:40])!r}") from None
    head = bytes(buf[:end_of_head]).lower()
    keep_alive = b"\r\nconnection: close" not in head and not head.startswith(b"http/1.0")
    start = end_of_head + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 17)
        length = int(head[i + 17 : j if j >= 0 else len(head)])
        end = start + length
        if len(buf) < end:
            return None
        return status, bytes(buf[start:end]), end, keep_alive
    if b"\r\ntransfer-encoding: chunked" in head:
        chunks = []
        pos = start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                trailers_end = buf.find(b"\r\n\r\n", line_end)
                if trailers_end == line_end:  # no trailers: "0\r\n\r\n"
                    return status, b"".join(chunks), line_end + 4, keep_alive
                if trailers_end < 0:
                    return None
                return status, b"".join(chunks), trailers_end + 4, keep_alive
            data_end = line_end + 2 + size
            if len(buf) < data_end + 2:
                return None
            chunks.append(bytes(buf[line_end + 2 : data_end]))
            pos = data_end + 2
    if 100 <= status < 200 or status in (204, 304):
        return status, b"", start, keep_alive
    raise ProtocolError(f"HTTP {status} response without Content-Length or chunked framing")




class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time (no pipelining)."""

    __slots__ = ("loop", "host", "port", "transport", "buf", "waiter", "sent_at", "usable", "last_body")

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.sent_at = 0.0
        self.usable = False
        self.last_body = b""  # the body of the last response (bench/webhooks.py reads its outcome)

    async def connect(self) -> None:
        self.buf.clear()
        await self.loop.create_connection(lambda: self, self.host, self.port)

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.usable = True

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.usable = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"connection lost: {exc!r}" if exc else "connection closed by peer"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if buf:
            buf += data
            data = buf
        try:
            parsed = parse_http_response(data)
        except Exception as exc:  # noqa: BLE001 -- a broken reply fails this request and the connection
            self._fail(ProtocolError(str(exc)))
            return
        if parsed is None:
            if data is not buf:
                buf += data
            return
        status, body, used, keep_alive = parsed
        if data is buf:
            del buf[:used]
        elif used < len(data):
            buf += data[used:]
        if buf:  # a reply must never arrive unasked (no pipelining)
            self._fail(ProtocolError(f"unexpected bytes after a response: {bytes(buf[:40])!r}"))
            return
        if not keep_alive:
            self.usable = False
            if self.transport is not None:
                self.transport.close()
        self.last_body = body
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None if status == 200 else f"HTTP {status} {body[:200].decode(errors='replace')}")

    def _fail(self, exc: Exception) -> None:
        self.usable = False
        waiter, self.waiter = self.waiter, None
        if self.transport is not None:
            self.transport.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def timeout_check(self, now: float, timeout: float) -> None:
        if self.waiter is not None and now - self.sent_at > timeout:
            self._fail(TimeoutError(f"no response within {timeout:g}s"))

    async def send(self, request: bytes) -> str | None:
        """Sends one request; None on HTTP 200, else an error text (raises on transport errors)."""
        if not self.usable:
            await self.connect()
        waiter = self.waiter = self.loop.create_future()
        self.sent_at = time.perf_counter()
        self.transport.write(request)
        return await waiter


class ConnectionPool:
    """Idle connections in a list, waiting requesters in a deque; acquire is O(1)."""

    def __init__(self, connections: list[HttpConnection]) -> None:
        self.all = connections
        self.idle = list(connections)
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> HttpConnection:
        if self.idle:
            return self.idle.pop()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: HttpConnection) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)
