"""A raw HTTP/1.1 request reader for test servers that write their answers byte by byte."""

from __future__ import annotations

import asyncio


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request: its head and, when it announces a Content-Length, its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lowered = head.lower()
    if b"content-length:" in lowered:
        length = int(lowered.split(b"content-length:")[1].split(b"\r\n")[0])
        head += await reader.readexactly(length)
    return head
