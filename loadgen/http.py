"""The load generator's HTTP/1.1 keep-alive client: one code path for http:// and https://.

Responses are parsed by httptools (llhttp, the parser Node.js uses); https goes through asyncio's TLS
transport (``create_connection(ssl=...)``), so both schemes share the pool, the framing and the failure
semantics: an answer is ``(status, body)``, a failure is ``HTTPError`` (connection refused, reset, closed
mid-answer, unparsable) or ``TimeoutError``.

Why not aiohttp for the load itself: on one core, aiohttp's client spends most of its time in its own
machinery (request/response objects, tracing hooks, cookie and redirect handling). The generator needs
only a keep-alive pool, a request written in one call, the status code and the body.

The parser is driven without a header callback: headers are never copied into Python objects. The one
case that needs them — the peer closed the connection after the head, and llhttp cannot say whether the
body was delimited by that close or cut short — re-reads the kept head bytes with a second parser.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import urllib.parse

import httptools

# Longest response head kept for the close-delimited check; a longer head is refused as unparsable.
MAX_HEAD_BYTES = 65536
# Bytes read per receive into the pool's buffer.
READ_BUFFER_BYTES = 65536
# How often requests past their time limit are failed. One timer for the pool instead of one per request:
# arming and cancelling a timer per request cost more than parsing the answer.
TIMEOUT_RESOLUTION = 0.01


class HTTPError(OSError):
    """The connection failed, closed early, or the answer could not be parsed (status class `error`)."""


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """Certificate and host name checked as a browser would; ``cafile`` adds a private CA.

    Without ``cafile`` the system's CAs are used, and OpenSSL's ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    environment variables point it at others.
    """
    context = ssl.create_default_context(cafile=cafile)
    if cafile is not None:
        context.load_default_certs()
    # The request is written right after the handshake; no ALPN, so h2-only servers say so plainly.
    context.set_alpn_protocols(["http/1.1"])
    return context


class _HeadFraming:
    """Reads just enough of a response head to tell whether its body is delimited by closing."""

    def __init__(self) -> None:
        self.length = False
        self.chunked = False

    def on_message_begin(self) -> None:
        # a 1xx answer came first: the framing is the next head's
        self.length = self.chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self.length = True
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True


def _delimited_by_close(received: bytes) -> bool:
    """True when the last head in ``received`` announced neither a length nor chunked encoding."""
    framing = _HeadFraming()
    with contextlib.suppress(httptools.HttpParserError):
        httptools.HttpResponseParser(framing).feed_data(received)
    return not framing.length and not framing.chunked


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection; at most one request in flight (no pipelining).

    A buffered protocol: the transport reads into the pool's buffer. Over TLS that matters — asyncio's
    and uvloop's TLS transports otherwise hand each read over as a fresh 256 KiB allocation, which glibc
    serves with mmap and munmap: two system calls per answer. One buffer serves every connection of the
    pool: a read is parsed (and what is kept, copied) before the loop starts the next one.
    """

    __slots__ = (
        "transport",
        "buffer",
        "parser",
        "waiter",
        "status",
        "body",
        "head",
        "head_only",
        "headers_done",
        "informational",
        "keep_alive",
        "closed",
        "deadline",
    )

    def __init__(self, buffer: memoryview) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = buffer
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.body = b""
        self.head: list[bytes] = []
        self.head_only = False
        self.headers_done = False
        self.informational = False
        self.keep_alive = True
        self.closed = False
        self.deadline = 0.0

    # -- asyncio callbacks ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self.waiter is None:
            # bytes nobody asked for (a late answer after a timeout, garbage): the connection is unusable
            self.abort()
            return
        data = self.buffer[:nbytes]
        if not self.headers_done:
            self.head.append(bytes(data))  # the buffer is reused by the next read
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(f"bad response: {error}")
            return
        if self.head_only and self.headers_done and self.waiter is not None:
            # llhttp does not know the request was HEAD and would wait for the body the head announces
            self._finish()
        elif not self.headers_done and sum(map(len, self.head)) > MAX_HEAD_BYTES:
            self._fail("response head too large")

    def eof_received(self) -> bool | None:
        self._peer_closed(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._peer_closed(exc)

    # -- parser callbacks (httptools) -------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            # 100 Continue, 103 Early Hints: an interim answer; the real one follows on this connection
            self.informational = True
            return
        self.status = status
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        if self.waiter is not None:
            self._finish()

    # -- request / response -----------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future[tuple[int, bytes]], head_only: bool) -> None:
        self.status = 0
        self.body = b""
        self.head = []
        self.headers_done = False
        self.head_only = head_only
        self.waiter = waiter
        self.transport.write(data)  # type: ignore[union-attr]

    def _finish(self) -> None:
        waiter = self.waiter
        self.waiter = None
        if self.head_only:
            # the parser still expects the announced body; the next answer needs a fresh one
            self.parser = httptools.HttpResponseParser(self)
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, self.body))

    def _fail(self, reason: str, cause: BaseException | None = None) -> None:
        error = HTTPError(reason)
        error.__cause__ = cause
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        """End the request in flight with ``error`` and drop the connection."""
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()

    def _peer_closed(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if exc is None and self.headers_done and _delimited_by_close(b"".join(self.head)):
            # HTTP/1.0-style answer without length: the close is the end of the body
            self.keep_alive = False
            self._finish()
        elif self.headers_done:
            self._fail(f"connection closed mid-body: {exc or 'closed by peer'}", exc)
        else:
            self._fail(f"connection closed before an answer: {exc or 'closed by peer'}", exc)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class FastHTTPClient:
    """Keep-alive pool of at most ``limit`` connections to one http:// or https:// origin."""

    def __init__(self, base_url: str, limit: int, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or tls_context()
            self.server_hostname = self.host
        self.prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rpartition("@")[2]
        self._host_line = f"Host: {host_header}\r\nUser-Agent: loadgen\r\n".encode()
        self.limit = max(1, limit)
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._loop = asyncio.get_running_loop()
        self._heads: dict[tuple[str, str, bool], bytes] = {}
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._buffer = memoryview(bytearray(READ_BUFFER_BYTES))

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

    async def _connect(self) -> _Connection:
        try:
            _, protocol = await self._loop.create_connection(
                lambda: _Connection(self._buffer),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.server_hostname,
            )
        except (OSError, ssl.SSLError) as error:
            raise HTTPError(f"connect: {error}") from error
        return protocol

    async def _acquire(self) -> _Connection:
        """A connection for one request: an idle one, a new one within the limit, or the next released."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open -= 1
        if self._open < self.limit:
            self._open += 1
            try:
                return await self._connect()
            except BaseException:
                self._open -= 1
                self._wake()
                raise
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
                protocol = await self._connect()
            except HTTPError:
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
        """(status, body); raises HTTPError or TimeoutError when no answer came within ``time_limit``."""
        idle = self._idle
        connection = idle.pop() if idle else None
        if connection is None or connection.closed:
            if connection is not None:
                self._open -= 1
            connection = await self._acquire()
        head = self._head(method, path, body is not None and json_body)
        if body is not None:
            data = head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        elif method in ("POST", "PUT", "PATCH"):
            data = head + b"Content-Length: 0\r\n\r\n"
        else:
            data = head + b"\r\n"
        loop = self._loop
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        connection.deadline = loop.time() + time_limit
        busy = self._busy
        busy.add(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(TIMEOUT_RESOLUTION, self._sweep)
        try:
            connection.send(data, waiter, method == "HEAD")
            result = await waiter
        except BaseException:
            busy.discard(connection)
            self._release(connection, False)
            raise
        busy.discard(connection)
        self._release(connection, connection.keep_alive)
        return result

    def _sweep(self) -> None:
        """Fail the requests past their time limit; runs every TIMEOUT_RESOLUTION while any is in flight."""
        now = self._loop.time()
        for connection in [c for c in self._busy if c.deadline <= now]:
            self._busy.discard(connection)
            connection.fail(TimeoutError("request timed out"))
        self._sweeper = self._loop.call_later(TIMEOUT_RESOLUTION, self._sweep) if self._busy else None

    def close(self) -> None:
        for connection in self._idle:
            connection.abort()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
