"""A minimal keep-alive HTTP/1.1 server for load-generator benchmarks: answers every request with a fixed
small JSON body, as fast as one asyncio core allows, so the generator and not the target is measured.

    python bench/loadgen_target.py --port 18080
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

BODY = b'{"status":"UP"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: keep-alive\r\n\r\n"
    + BODY
)


class FixedAnswer(asyncio.Protocol):
    """Counts complete request heads (ends with a blank line) and answers each one; bodies are skipped."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        answers = 0
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            consumed = end + 4
            length_at = head.lower().find(b"content-length:")
            if length_at >= 0:
                line_end = head.find(b"\r\n", length_at)
                value = head[length_at + 15 : line_end if line_end >= 0 else len(head)]
                consumed += int(value.strip() or 0)
                if len(buffer) < consumed:
                    break
            buffer = buffer[consumed:]
            answers += 1
        self.buffer = buffer
        if answers:
            self.transport.write(RESPONSE * answers)  # type: ignore[attr-defined]


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FixedAnswer, host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
