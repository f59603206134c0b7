"""A lean HTTP/1.1 keep-alive client on asyncio protocols, used for plain-http targets.

Why not aiohttp for the load itself: on one core, aiohttp's client spends most of its time in its own
machinery (request/response objects, tracing hooks, cookie and redirect handling) — it tops out at a few
thousand requests per second, below the open model's 3,000 req/s per core with a timing budget left over.
The generator needs only: a keep-alive pool, a request written in one call, the status code, and the body
framed by Content-Length or chunked encoding. HTTPS targets still go through aiohttp.
"""

from __future__ import annotations

import asyncio
import collections
import urllib.parse


class HTTPError(OSError):
    """The connection failed, closed early, or the answer could not be parsed (status class `error`)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight (no pipelining)."""

    __slots__ = (
        "transport",
        "buffer",
        "waiter",
        "status",
        "body_start",
        "length",
        "chunked",
        "close_after",
        "closed",
        "parsed_head",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.parsed_head = False
        self.body_start = 0
        self.length = -1
        self.chunked = False
        self.close_after = False

    # -- asyncio callbacks ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None:
            self._parse()

    def eof_received(self) -> bool | None:
        # A body delimited by the connection closing ends here.
        if self.waiter is not None and self.parsed_head and self.length < 0 and not self.chunked:
            self._finish(bytes(self.buffer[self.body_start :]), 0)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(HTTPError(f"connection lost: {exc or 'closed by peer'}"))
        self.waiter = None

    # -- request / response -----------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        self._reset()
        self.waiter = waiter
        self.transport.write(data)  # type: ignore[union-attr]
        if self.buffer:
            self._parse()

    def _finish(self, body: bytes, consumed: int) -> None:
        waiter = self.waiter
        self.waiter = None
        del self.buffer[:consumed]
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, body))

    def _fail(self, reason: str) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(HTTPError(reason))
        self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _parse(self) -> None:
        buffer = self.buffer
        if not self.parsed_head:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65536:
                    self._fail("response head too large")
                return
            head = bytes(buffer[:end])
            try:
                self.status = int(head[9:12])
            except ValueError:
                self._fail(f"not an HTTP response: {head[:40]!r}")
                return
            lowered = head.lower()
            at = lowered.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = lowered.find(b"\r\n", at + 2)
                self.length = int(lowered[at + 17 : line_end if line_end >= 0 else len(lowered)].strip())
            elif b"\r\ntransfer-encoding:" in lowered and b"chunked" in lowered:
                self.chunked = True
            elif self.status in (204, 304) or 100 <= self.status < 200:
                self.length = 0
            if b"\r\nconnection: close" in lowered:
                self.close_after = True
            self.parsed_head = True
            self.body_start = end + 4
        if self.length >= 0:
            end = self.body_start + self.length
            if len(buffer) >= end:
                self._finish(bytes(buffer[self.body_start : end]), end)
        elif self.chunked:
            self._parse_chunks()

    def _parse_chunks(self) -> None:
        buffer = self.buffer
        position = self.body_start
        body = bytearray()
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return
            try:
                size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            except ValueError:
                self._fail("bad chunk size")
                return
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    if buffer[line_end : line_end + 4] == b"\r\n\r\n":
                        trailer_end = line_end
                    else:
                        return
                self._finish(bytes(body), trailer_end + 4)
                return
            chunk_start = line_end + 2
            chunk_end = chunk_start + size
            if len(buffer) < chunk_end + 2:
                return
            body += buffer[chunk_start:chunk_end]
            position = chunk_end + 2


class FastHTTPClient:
    """Keep-alive pool of at most ``limit`` connections to one host:port."""

    def __init__(self, base_url: str, limit: int) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("FastHTTPClient speaks plain http only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rpartition("@")[2]
        self._host_line = f"Host: {host_header}\r\nUser-Agent: loadgen\r\n".encode()
        self.limit = max(1, limit)
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._loop = asyncio.get_running_loop()
        self._heads: dict[tuple[str, str, bool], bytes] = {}

    def _head(self, method: str, path: str, json_body: bool) -> bytes:
        key = (method, path, json_body)
        head = self._heads.get(key)
        if head is None:
            head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self._host_line
            if json_body:
                head += b"Content-Type: application/json\r\n"
            if len(self._heads) < 10000:
                self._heads[key] = head
        return head

    async def _acquire(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open -= 1
        if self._open < self.limit:
            self._open += 1
            try:
                _, protocol = await self._loop.create_connection(_Connection, self.host, self.port)
            except OSError as error:
                self._open -= 1
                self._wake()
                raise HTTPError(f"connect: {error}") from error
            return protocol
        waiter: asyncio.Future[_Connection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        handed = await waiter
        if handed is None:  # a slot was freed: open a new connection
            return await self._acquire()
        return handed

    async def warm(self, count: int) -> int:
        """Open up to ``count`` idle connections ahead of time; returns how many are idle now."""
        wanted = min(count, self.limit) - self._open
        for _ in range(max(wanted, 0)):
            self._open += 1
            try:
                _, protocol = await self._loop.create_connection(_Connection, self.host, self.port)
            except OSError:
                self._open -= 1
                break
            self._idle.append(protocol)
        return len(self._idle)

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, connection: _Connection, reusable: bool) -> None:
        if not reusable or connection.closed:
            connection.abort()
            self._open -= 1
            self._wake()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    async def request(
        self, method: str, path: str, body: bytes | None, time_limit: float, json_body: bool = True
    ) -> tuple[int, bytes]:
        """(status, body); raises HTTPError or TimeoutError when no answer came."""
        connection = await self._acquire()
        head = self._head(method, path, body is not None and json_body)
        if body is not None:
            data = head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        elif method in ("POST", "PUT", "PATCH"):
            data = head + b"Content-Length: 0\r\n\r\n"
        else:
            data = head + b"\r\n"
        waiter: asyncio.Future[tuple[int, bytes]] = self._loop.create_future()
        timer = self._loop.call_later(time_limit, _expire, waiter)
        try:
            connection.send(data, waiter)
            result = await waiter
        except BaseException:
            timer.cancel()
            self._release(connection, False)
            raise
        timer.cancel()
        self._release(connection, not connection.close_after)
        return result

    def close(self) -> None:
        for connection in self._idle:
            connection.abort()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("request timed out"))
