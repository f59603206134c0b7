"""A TCP fault proxy placed between a service and one of its dependencies.

Network faults (seed 004: added latency, cut connections, a dependency that refuses) are injected here
rather than with ``tc``/iptables, so they need no privileges and touch only the traffic of the service under
test. Point the service at ``listen_host:listen_port`` instead of the dependency and drive the fault from a
scenario action or a test::

    proxy = FaultProxy("127.0.0.1", 0, "127.0.0.1", 5432)
    await proxy.start()          # proxy.port holds the bound port when 0 was asked for
    proxy.set_latency(0.2)       # every chunk, both directions, is delayed 200 ms
    proxy.cut()                  # existing connections (and those being set up) dropped, new ones refused
    proxy.restore()              # accepting again, no latency added
    await proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

CHUNK_BYTES = 65536


class FaultProxy:
    """Forwards TCP connections to a target and injects latency, cuts and refusals on demand."""

    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        self.latency = 0.0
        self._refusing = False
        self._cuts = 0  # cuts so far: a connection whose set-up spans a cut is dropped with the others
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.accepted_total = 0
        self.refused_total = 0

    @property
    def port(self) -> int:
        """The bound port (useful when ``listen_port`` was 0)."""
        if self._server is None or not self._server.sockets:
            return self.listen_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    @property
    def is_cut(self) -> bool:
        return self._refusing

    async def start(self) -> None:
        """Bind the listening socket; connections are forwarded from now on."""
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.listen_port)
        log.info(
            "fault proxy %s:%d -> %s:%d", self.listen_host, self.port, self.target_host, self.target_port
        )

    async def stop(self) -> None:
        """Close the listener and every forwarded connection."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        self._drop_all()
        handlers = [task for task in self._handlers if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)

    def cut(self) -> None:
        """Drop existing connections and those being set up (RST), refuse new ones until :meth:`restore`."""
        self._refusing = True
        self._cuts += 1
        self._drop_all()

    def restore(self) -> None:
        """Accept and forward again, without added latency."""
        self._refusing = False
        self.latency = 0.0

    def set_latency(self, seconds: float) -> None:
        """Delay every forwarded chunk, in both directions, by ``seconds`` (0 removes the delay)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency = float(seconds)

    def _drop_all(self) -> None:
        for connection in list(self._connections):
            connection.abort()
        self._connections.clear()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._forward(client_reader, client_writer)
        except asyncio.CancelledError:
            # stop() or the end of the event loop: the connection is simply gone, nothing to report
            _reset(client_writer)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if self._refusing:
            # A listening socket cannot refuse after accept; an immediate reset is what clients see as a
            # refused / dropped connection.
            self.refused_total += 1
            _reset(client_writer)
            return
        cuts = self._cuts
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), 10.0
            )
        except (TimeoutError, OSError):
            self.refused_total += 1
            _reset(client_writer)
            return
        if self._cuts != cuts:  # a cut came while the upstream connection was being made
            self.refused_total += 1
            _reset(client_writer)
            _reset(upstream_writer)
            return
        self.accepted_total += 1
        connection = _Connection(client_writer, upstream_writer)
        self._connections.add(connection)
        try:
            await asyncio.gather(
                self._pump(client_reader, upstream_writer, connection),
                self._pump(upstream_reader, client_writer, connection),
            )
        finally:
            self._connections.discard(connection)
            connection.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        try:
            while not connection.aborted:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                if self.latency > 0:
                    await asyncio.sleep(self.latency)
                if connection.aborted:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            pass
        finally:
            # Half-close so the other side sees EOF, as a plain TCP path would show it.
            if not connection.aborted and writer.can_write_eof():
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()


class _Connection:
    """The two sockets of one forwarded connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True
        _reset(self.client)
        _reset(self.upstream)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort the transport: the peer gets a RST instead of an orderly FIN."""
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()


# -- a proxy that outlives runs ---------------------------------------------------------------------------
#
# A service started through the proxy (e.g. with its DSN pointing at the listen port) cannot wait for a
# scenario to start one: it needs the proxy from its first connection. `loadgen proxy` runs a FaultProxy on
# its own, with a small HTTP control API that scenarios drive through `proxies: [{name, control}]`.


async def serve_control(proxy: FaultProxy, host: str, port: int) -> Any:
    """Serve POST /cut, /restore, /latency?seconds=S and GET /status for ``proxy``; returns the runner."""
    from aiohttp import web

    def status() -> dict[str, Any]:
        return {
            "cut": proxy.is_cut,
            "latency": proxy.latency,
            "active_connections": proxy.active_connections,
            "accepted_total": proxy.accepted_total,
            "refused_total": proxy.refused_total,
        }

    async def get_status(request: web.Request) -> web.Response:
        return web.json_response(status())

    async def post_cut(request: web.Request) -> web.Response:
        proxy.cut()
        return web.json_response(status())

    async def post_restore(request: web.Request) -> web.Response:
        proxy.restore()
        return web.json_response(status())

    async def post_latency(request: web.Request) -> web.Response:
        try:
            proxy.set_latency(float(request.query.get("seconds", "")))
        except ValueError:
            return web.json_response({"error": "seconds must be a number >= 0"}, status=400)
        return web.json_response(status())

    app = web.Application()
    app.router.add_get("/status", get_status)
    app.router.add_post("/cut", post_cut)
    app.router.add_post("/restore", post_restore)
    app.router.add_post("/latency", post_latency)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class RemoteProxy:
    """Drives a `loadgen proxy` process through its control API (same operations as FaultProxy)."""

    def __init__(self, control_url: str) -> None:
        self.control_url = control_url.rstrip("/")

    async def _post(self, path: str) -> dict[str, Any]:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(self.control_url + path) as response,
        ):
            if response.status != 200:
                raise OSError(f"proxy control {self.control_url}{path}: status {response.status}")
            return dict(await response.json())

    async def cut(self) -> None:
        await self._post("/cut")

    async def restore(self) -> None:
        await self._post("/restore")

    async def set_latency(self, seconds: float) -> None:
        await self._post(f"/latency?seconds={seconds}")

    async def status(self) -> dict[str, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.get(self.control_url + "/status") as response:
            return dict(await response.json())


async def run_standalone(listen: tuple[str, int], target: tuple[str, int], control: tuple[str, int]) -> None:
    """`loadgen proxy`: forward until SIGINT/SIGTERM, controllable over HTTP."""
    import signal

    proxy = FaultProxy(listen[0], listen[1], target[0], target[1])
    await proxy.start()
    runner = await serve_control(proxy, control[0], control[1])
    print(
        f"fault proxy {listen[0]}:{proxy.port} -> {target[0]}:{target[1]}; control http://{control[0]}:{control[1]}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await proxy.stop()
