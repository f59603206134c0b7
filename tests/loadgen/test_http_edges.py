"""The client's edge cases against real servers: nginx (HTTP and TLS with a private CA) and raw sockets for
the answers nginx never gives (chunk extensions and trailers, interim 1xx, a close in the middle of a body).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from loadgen import eventloop
from loadgen.http import FastHTTPClient, HTTPError, tls_context
from nfr.processes import free_port
from tests.loadgen.conftest import read_json, run_loadgen
from tests.support.nginx import running_nginx
from tests.support.rawhttp import read_request
from tests.support.tls import TLSFiles, private_ca

# -- a raw HTTP/1.1 server: the test writes the answer bytes itself ----------------------------------------

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Reads request heads (and Content-Length bodies); ``answer(head, writer)`` says whether to keep going."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await read_request(reader)
                self.requests.append(head)
                if not await self.answer(head, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _in_pieces(writer: asyncio.StreamWriter, *pieces: bytes) -> None:
    """Send each piece in its own segment, so the client parses across reads."""
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.005)


# -- raw-socket edge cases ----------------------------------------------------------------------------------


async def test_chunked_body_with_extensions_and_trailers_keeps_the_connection() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await _in_pieces(
            writer,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n",
            b'5;name=value;quoted="a b"\r\nhel',
            b"lo\r\n6;ext\r\n world\r\n0;last=1\r\n",
            b"X-Checksum: abc\r\nX-Other: 1\r\n\r\n",
        )
        return True

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        for _ in range(3):
            assert await client.request("GET", "/chunked", None, 5) == (200, b"hello world")
        client.close()
    assert server.connections == 1  # the trailers were consumed: the next answer parsed cleanly


async def test_interim_1xx_answers_are_skipped() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await _in_pieces(
            writer,
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 13\r\n\r\n",
            b'{"numero":7}\n',
        )
        return True

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        for _ in range(2):
            assert await client.request("POST", "/api/tickets", b"{}", 5) == (201, b'{"numero":7}\n')
        client.close()
    assert server.connections == 1


async def test_204_and_304_have_no_body_even_with_a_length_header() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"GET /no-content"):
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        elif head.startswith(b"GET /not-modified"):
            # a 304 may announce the length of the representation it did not send
            writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 1234\r\n\r\n')
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        for _ in range(2):
            assert await client.request("GET", "/no-content", None, 5) == (204, b"")
            assert await client.request("GET", "/not-modified", None, 5) == (304, b"")
            assert await client.request("GET", "/", None, 5) == (200, b"ok")
        client.close()
    assert server.connections == 1


async def test_head_answer_ends_at_the_head_whatever_it_announces() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"HEAD /chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        elif head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
        return True

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        for _ in range(2):
            assert await client.request("HEAD", "/file", None, 5) == (200, b"")
            assert await client.request("GET", "/file", None, 5) == (200, b"body")
            assert await client.request("HEAD", "/chunked", None, 5) == (200, b"")
            assert await client.request("GET", "/file", None, 5) == (200, b"body")
        client.close()
    assert server.connections == 1


async def test_connection_close_answers_and_close_delimited_bodies() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"GET /until-close"):
            await _in_pieces(writer, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall ", b"of it")
        else:
            writer.write(b"HTTP/1.1 409 Conflict\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        return False  # the server closes after each answer

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        assert await client.request("GET", "/until-close", None, 5) == (200, b"all of it")
        for _ in range(2):
            assert await client.request("POST", "/x", b"{}", 5) == (409, b"{}")
        client.close()
    assert server.connections == 3


@pytest.mark.parametrize(
    "answer_bytes",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\nnot sixty-four bytes",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",  # no last chunk
        b"HTTP/1.1 200 OK\r\nContent-Le",  # the head itself is cut
    ],
    ids=["length", "inside-a-chunk", "before-the-last-chunk", "inside-the-head"],
)
async def test_a_server_closing_mid_answer_is_an_error(answer_bytes: bytes) -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        if head.startswith(b"GET /ok"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return True
        await _in_pieces(writer, answer_bytes)
        return False

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        with pytest.raises(HTTPError, match="closed"):
            await client.request("GET", "/cut", None, 5)
        # the pool recovers: the broken connection is gone, a new one serves the next request
        assert await client.request("GET", "/ok", None, 5) == (200, b"ok")
        client.close()


async def test_garbage_instead_of_http_is_an_error() -> None:
    async def answer(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        return True

    async with RawServer(answer) as server:
        client = FastHTTPClient(server.url, limit=1)
        with pytest.raises(HTTPError, match="bad response"):
            await client.request("GET", "/", None, 5)
        client.close()


# -- nginx: the same cases from a server in production use, over http and https ------------------------------

SERVERS = """
  server {{
    listen 127.0.0.1:{http_port};
    listen 127.0.0.1:{https_port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {root};
    location = /api/echo {{ default_type application/json; return 201 '{{"numero":"C042"}}'; }}
    location = /no-content {{ return 204; }}
    location = /not-modified {{ return 304; }}
    location /static/ {{ etag on; }}
  }}
  server {{
    listen 127.0.0.1:{close_port};
    keepalive_timeout 0;
    location / {{ default_type text/plain; return 200 'bye'; }}
  }}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("nginx")
    tls = private_ca(directory / "tls")
    root = directory / "www"
    (root / "static").mkdir(parents=True)
    (root / "static" / "ticket.json").write_bytes(b'{"numero": "C001"}' + b" " * 982)  # 1000 bytes
    http_port, https_port, close_port = free_port(), free_port(), free_port()
    servers = SERVERS.format(
        http_port=http_port, https_port=https_port, close_port=close_port,
        cert=tls.cert, key=tls.key, root=root,
    )  # fmt: skip
    with running_nginx(directory, servers, (http_port, https_port, close_port)):
        yield {
            "http": f"http://127.0.0.1:{http_port}",
            "https": f"https://127.0.0.1:{https_port}",
            "https_by_name": f"https://localhost:{https_port}",
            "close": f"http://127.0.0.1:{close_port}",
            "tls": tls,
        }


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_nginx_answers_through_one_code_path(nginx: dict, scheme: str) -> None:
    tls: TLSFiles = nginx["tls"]
    client = FastHTTPClient(nginx[scheme], limit=1, ssl_context=tls_context(str(tls.ca)))
    for _ in range(2):
        assert await client.request("POST", "/api/echo", b'{"a":1}', 5) == (201, b'{"numero":"C042"}')
        assert await client.request("GET", "/no-content", None, 5) == (204, b"")
        assert await client.request("GET", "/not-modified", None, 5) == (304, b"")
        assert await client.request("HEAD", "/static/ticket.json", None, 5) == (200, b"")
        status, body = await client.request("GET", "/static/ticket.json", None, 5)
        assert status == 200 and len(body) == 1000 and body.startswith(b'{"numero": "C001"}')
        assert (await client.request("GET", "/missing", None, 5))[0] == 404
    assert client._open == 1  # every answer above left the one keep-alive connection usable
    client.close()


async def test_nginx_connection_close_opens_a_connection_per_request(nginx: dict) -> None:
    client = FastHTTPClient(nginx["close"], limit=1)
    results = [await client.request("GET", "/", None, 5) for _ in range(3)]
    assert results == [(200, b"bye")] * 3
    client.close()


async def test_tls_target_with_a_private_ca(nginx: dict) -> None:
    tls: TLSFiles = nginx["tls"]
    trusted = FastHTTPClient(nginx["https_by_name"], limit=2, ssl_context=tls_context(str(tls.ca)))
    assert await trusted.request("GET", "/no-content", None, 5) == (204, b"")
    trusted.close()
    # without the CA the certificate is refused, as a connection error (status class `error`)
    untrusted = FastHTTPClient(nginx["https"], limit=1)
    with pytest.raises(HTTPError, match="CERTIFICATE_VERIFY_FAILED"):
        await untrusted.request("GET", "/no-content", None, 5)
    untrusted.close()
    # the CA is right but the name is not: the certificate is for 127.0.0.1 and localhost only
    context = tls_context(str(tls.ca))
    wrong_name = FastHTTPClient(nginx["https"], limit=1, ssl_context=context)
    wrong_name.server_hostname = "ticketero.example"
    with pytest.raises(HTTPError, match="CERTIFICATE_VERIFY_FAILED|hostname"):
        await wrong_name.request("GET", "/no-content", None, 5)
    wrong_name.close()


def test_cli_load_against_a_tls_target_trusts_ssl_cert_file(nginx: dict, tmp_path: Path) -> None:
    tls: TLSFiles = nginx["tls"]
    scenario = tmp_path / "tls.yml"
    summary = tmp_path / "summary.json"
    scenario.write_text(
        f"target: {nginx['https']}\nmax_requests: 200\nduration: 30s\nworkload: {{vus: 8}}\n"
        "requests:\n  - {endpoint: echo, method: POST, path: /api/echo, body: {a: 1}, expect: [201]}\n"
    )
    result = run_loadgen(
        "run", str(scenario), "--quiet", "--metrics-port", "0", "--summary-json", str(summary),
        env={"SSL_CERT_FILE": str(tls.ca)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "uvloop is not available" not in result.stderr
    load = read_json(summary)["load"]
    assert load["total"]["requests"] == 200
    assert load["total"]["statuses"] == {"201": 200}


# -- the event loop ----------------------------------------------------------------------------------------


def test_uvloop_runs_the_cli_and_its_absence_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import uvloop

    assert eventloop.loop_factory() is uvloop.new_event_loop

    async def which_loop() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(which_loop()).startswith("uvloop")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with caplog.at_level(logging.WARNING, logger="loadgen.eventloop"):
        assert eventloop.loop_factory() is None
        assert eventloop.run(which_loop()) == "asyncio.unix_events"
    assert "uvloop is not available" in caplog.text
    assert "default asyncio event loop" in caplog.text


def test_tls_context_checks_names_and_certificates() -> None:
    context = tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert json.dumps(context.get_ca_certs()) is not None  # loads the system's CAs without error
