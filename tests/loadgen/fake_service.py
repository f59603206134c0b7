"""A small real HTTP server speaking Ticketero's API, run in its own thread and event loop.

It lets the generator's tests assert exact counts (every request the server saw is counted), stall on
demand (for the coordinated-omission test) and answer 409 for a duplicate active ticket like the service.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

NATIONAL_ID = re.compile(r"^[0-9]{1,12}(-[0-9Kk])?$")


@dataclass
class ServiceState:
    requests: dict[str, int] = field(default_factory=dict)
    active: set[tuple[str, str]] = field(default_factory=set)
    tickets: dict[str, dict] = field(default_factory=dict)
    stall_until: float = 0.0
    stall_seconds: float = 0.0
    delay: float = 0.0
    create_delay: float = 0.0
    arrivals: list[float] = field(default_factory=list)

    def count(self, name: str) -> None:
        self.requests[name] = self.requests.get(name, 0) + 1

    def total(self) -> int:
        return sum(self.requests.values())


class FakeTicketero:
    """Start with ``with FakeTicketero() as service:``; ``service.url`` is its base URL."""

    def __init__(self, record_arrivals: bool = False, host: str = "127.0.0.1") -> None:
        self.host = host
        self.state = ServiceState()
        self.record_arrivals = record_arrivals
        self._numbers = itertools.count(1)
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "127.0.0.1") else self.host
        return f"http://{host}:{self.port}"

    def stall(self, seconds: float) -> None:
        """Every request arriving in the next ``seconds`` is held until the stall ends."""
        self.state.stall_until = time.monotonic() + seconds

    async def _maybe_stall(self) -> None:
        if self.record_arrivals:
            self.state.arrivals.append(time.perf_counter())
        remaining = self.state.stall_until - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        if self.state.delay:
            await asyncio.sleep(self.state.delay)

    async def create(self, request: web.Request) -> web.Response:
        self.state.count("create_ticket")
        await self._maybe_stall()
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid json"}, status=400)
        national_id, queue = body.get("nationalId"), body.get("queueType")
        # the service's own rule for nationalId: up to 12 digits, optionally -<check digit>
        valid_id = isinstance(national_id, str) and NATIONAL_ID.match(national_id)
        if not valid_id or queue not in ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA"):
            return web.json_response({"error": "invalid"}, status=400)
        if self.state.create_delay:
            await asyncio.sleep(self.state.create_delay)
        async with self._lock:
            key = (national_id, queue)
            if key in self.state.active:
                return web.json_response({"error": "active ticket exists"}, status=409)
            self.state.active.add(key)
            numero = f"{queue[0]}{next(self._numbers):03d}"
            ticket = {"numero": numero, "positionInQueue": len(self.state.active), "queueType": queue}
            self.state.tickets[numero] = ticket
        return web.json_response(ticket, status=201)

    async def get(self, request: web.Request) -> web.Response:
        self.state.count("get_ticket")
        await self._maybe_stall()
        ticket = self.state.tickets.get(request.match_info["numero"])
        if ticket is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(ticket)

    async def health(self, request: web.Request) -> web.Response:
        self.state.count("health")
        await self._maybe_stall()
        return web.json_response({"status": "UP"})

    def __enter__(self) -> FakeTicketero:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/api/tickets", self.create)
            app.router.add_get("/api/tickets/{numero}", self.get)
            app.router.add_get("/actuator/health", self.health)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, 0, backlog=1024)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runner = runner
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
