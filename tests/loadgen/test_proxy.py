"""FaultProxy against a real local TCP echo server: forwarding, latency, cut and restore."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadgen.proxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def proxy():
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target_port = server.sockets[0].getsockname()[1]
    fault_proxy = FaultProxy("127.0.0.1", 0, "127.0.0.1", target_port)
    await fault_proxy.start()
    yield fault_proxy
    await fault_proxy.stop()
    server.close()
    await server.wait_closed()


async def _round_trip(port: int, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.readexactly(len(payload)), 5)
    writer.close()
    return data


async def test_forwards_bytes(proxy: FaultProxy) -> None:
    assert await _round_trip(proxy.port, b"hello") == b"hello"
    assert proxy.accepted_total == 1


async def test_latency_is_added_both_ways(proxy: FaultProxy) -> None:
    proxy.set_latency(0.2)
    started = time.perf_counter()
    assert await _round_trip(proxy.port) == b"ping"
    elapsed = time.perf_counter() - started
    # request and answer are each delayed once
    assert elapsed >= 0.38
    proxy.set_latency(0)
    started = time.perf_counter()
    await _round_trip(proxy.port)
    assert time.perf_counter() - started < 0.1


async def test_cut_drops_existing_and_refuses_new(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"a")
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"a"
    proxy.cut()
    # the open connection is reset: reading sees EOF or an error
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        data = await asyncio.wait_for(reader.readexactly(1), 2)
        raise AssertionError(f"read {data!r} through a cut proxy")
    writer.close()
    # a new connection is refused (reset immediately, no echo)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _round_trip(proxy.port)
    assert proxy.refused_total >= 1
    proxy.restore()
    assert await _round_trip(proxy.port, b"back") == b"back"


async def test_unreachable_target_is_a_refusal() -> None:
    probe = await asyncio.start_server(_echo, "127.0.0.1", 0)
    dead_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    fault_proxy = FaultProxy("127.0.0.1", 0, "127.0.0.1", dead_port)
    await fault_proxy.start()
    try:
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await _round_trip(fault_proxy.port)
    finally:
        await fault_proxy.stop()


async def test_a_connection_being_set_up_when_the_cut_comes_is_dropped_too() -> None:
    """A client accepted just before a cut, whose upstream connection is still being made, must not slip
    through and live on after the cut."""
    import socket

    # An upstream whose accept queue is full: the kernel drops the proxy's SYN and retries it a second later,
    # so the proxy's connection attempt is still pending when the cut comes.
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(0)
    address = upstream.getsockname()
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    accepted: list[socket.socket] = []
    fault_proxy = FaultProxy("127.0.0.1", 0, *address)
    await fault_proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", fault_proxy.port)
        await asyncio.sleep(0.3)
        assert fault_proxy.active_connections == 0, "the upstream should still be unreachable"
        fault_proxy.cut()
        upstream.setblocking(False)
        while True:  # free the queue: the retried SYN now completes the proxy's connection attempt
            try:
                accepted.append(upstream.accept()[0])
            except BlockingIOError:
                break
        try:
            data = await asyncio.wait_for(reader.read(1), 10)
        except ConnectionResetError:
            data = b""
        assert data == b"", "the connection set up across the cut was forwarded"
        assert fault_proxy.active_connections == 0
        writer.close()
    finally:
        await fault_proxy.stop()
        for sock in (*fillers, *accepted, upstream):
            sock.close()
