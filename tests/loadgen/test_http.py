"""The lean HTTP client against real sockets: framing (length, chunked, close), keep-alive, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from loadgen.http import FastHTTPClient, HTTPError
from tests.support.rawhttp import read_request

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


async def _server(handler: Handler) -> tuple[asyncio.Server, int, list[int]]:
    """A raw TCP server; ``handler(request_head, writer)`` answers and says whether to keep the connection."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await read_request(reader)
                if not await handler(head, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


async def test_content_length_and_keep_alive_reuse_one_connection() -> None:
    seen: list[bytes] = []

    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        seen.append(head)
        writer.write(b'HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{"id": 123}')
        return True

    server, port, connections = await _server(answer)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=1)
    for _ in range(5):
        assert await client.request("POST", "/api/tickets", b'{"a":1}', 5) == (201, b'{"id": 123}')
    client.close()
    server.close()
    assert len(connections) == 1
    assert seen[0].startswith(b"POST /api/tickets HTTP/1.1\r\n")
    assert b"Content-Type: application/json" in seen[0] and seen[0].endswith(b'{"a":1}')


async def test_chunked_answer_split_across_packets() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"lo\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        return True

    server, port, _ = await _server(answer)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=2)
    assert await client.request("GET", "/x", None, 5) == (200, b"hello world")
    assert await client.request("GET", "/x", None, 5) == (200, b"hello world")
    client.close()
    server.close()


async def test_connection_close_opens_a_new_connection() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        return False

    server, port, connections = await _server(answer)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=1)
    for _ in range(3):
        assert await client.request("GET", "/x", None, 5) == (409, b"{}")
    client.close()
    server.close()
    assert len(connections) == 3


async def test_body_until_close_and_204_without_body() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"GET /empty"):
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            return True
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        return False

    server, port, _ = await _server(answer)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=1)
    assert await client.request("GET", "/empty", None, 5) == (204, b"")
    assert await client.request("GET", "/stream", None, 5) == (200, b"all of it")
    client.close()
    server.close()


async def test_timeout_refused_and_reset_raise() -> None:
    async def silent(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    server, port, _ = await _server(silent)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=1)
    with pytest.raises(TimeoutError):
        await client.request("GET", "/x", None, 0.2)
    client.close()
    server.close()

    async def reset(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.transport.abort()
        return False

    server, port, _ = await _server(reset)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=1)
    with pytest.raises(HTTPError):
        await client.request("GET", "/x", None, 2)
    client.close()
    server.close()
    await server.wait_closed()
    with pytest.raises(HTTPError, match="connect"):
        await FastHTTPClient(f"http://127.0.0.1:{port}", limit=1).request("GET", "/x", None, 2)


async def test_pool_limit_queues_requests() -> None:
    in_flight = {"now": 0, "max": 0}

    async def slow(head: bytes, writer: asyncio.StreamWriter) -> bool:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.05)
        in_flight["now"] -= 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True

    server, port, connections = await _server(slow)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=3)
    results = await asyncio.gather(*(client.request("GET", "/x", None, 5) for _ in range(12)))
    assert results == [(200, b"")] * 12
    assert in_flight["max"] == 3
    assert len(connections) == 3
    client.close()
    server.close()


async def test_engine_with_the_aiohttp_client_gives_the_same_counts(service, make_scenario) -> None:
    from loadgen.runner import Experiment

    scenario = make_scenario(
        f"""
        target: {service.url}
        http_client: aiohttp
        max_requests: 40
        workload: {{vus: 4}}
        requests: [create_ticket, get_ticket]
        """
    )
    result = await Experiment(scenario, None, quiet=True).run()
    assert result["load"]["total"]["requests"] == 40 == service.state.total()
    assert result["load"]["total"]["failures"] == 0


async def test_warm_opens_idle_connections_that_requests_reuse() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True

    server, port, connections = await _server(answer)
    client = FastHTTPClient(f"http://127.0.0.1:{port}", limit=5)
    assert await client.warm(8) == 5  # never beyond the pool limit
    await asyncio.sleep(0.05)
    assert len(connections) == 5
    results = await asyncio.gather(*(client.request("GET", "/x", None, 5) for _ in range(5)))
    assert results == [(200, b"")] * 5
    assert len(connections) == 5  # no new connection was needed
    client.close()
    server.close()


def test_declared_endpoints_are_served_at_zero_before_any_request():
    # A burst shorter than a scrape interval is only visible to rate() if the series existed at 0 before.
    from prometheus_client import CollectorRegistry

    from loadgen.metrics import STATUS_CLASSES, LoadgenMetrics

    metrics = LoadgenMetrics(CollectorRegistry())
    metrics.declare(["create_ticket", "health"])
    for endpoint in ("create_ticket", "health"):
        for status in STATUS_CLASSES:
            labels = {"endpoint": endpoint, "status_class": status}
            assert metrics.registry.get_sample_value("loadgen_requests_total", labels) == 0
            assert metrics.registry.get_sample_value("loadgen_request_failures_total", labels) == 0
        assert (
            metrics.registry.get_sample_value("loadgen_arrivals_dropped_total", {"endpoint": endpoint}) == 0
        )
        bucket = {"endpoint": endpoint, "le": "2.0"}
        assert metrics.registry.get_sample_value("loadgen_request_duration_seconds_bucket", bucket) == 0
