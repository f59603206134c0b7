"""A small asyncio TCP proxy a test controls, to cut a dependency without touching the machine's service.

proxy = TcpProxy("127.0.0.1", 5672)
await proxy.start()        # proxy.port: point the service at 127.0.0.1:proxy.port
await proxy.cut()          # open connections dropped, new ones closed at once
proxy.restore()            # forwarding again
await proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib

CHUNK_BYTES = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self.is_cut = False
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)

    async def cut(self) -> None:
        """Drop every open connection and close new ones as soon as they arrive."""
        self.is_cut = True
        await self._drop_all()

    def restore(self) -> None:
        self.is_cut = False

    async def stop(self) -> None:
        self.is_cut = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._drop_all()

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_writer.transport.abort()
            return
        self.accepted += 1
        self._writers.update((client_writer, upstream_writer))
        for source, sink in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(CHUNK_BYTES):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.transport.abort()
            self._writers.discard(sink)
