"""Wires the service together and owns its lifecycle: start in dependency order, stop in reverse.

Start: schema → pools (the workers' and the API's own) → advisors → relay, workers, recovery → HTTP. Stop (SIGTERM/SIGINT): readiness drain
(``--readiness-drain`` seconds answering /actuator/health DOWN while still serving, so a load balancer's health
check takes the instance out before it stops listening) → HTTP off (in-flight requests finish) →
workers stop consuming and finish or hand back in-flight tickets → recovery off → relay publishes what is due
→ pool closed. No ticket is lost and no advisor is left BUSY by a clean stop.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from ticketero import api, database
from ticketero.config import Settings
from ticketero.domain import mask_url
from ticketero.metrics import ServiceMetrics
from ticketero.outbox import OutboxRelay
from ticketero.recovery import RecoveryService
from ticketero.worker import WorkerPool

log = logging.getLogger("ticketero")

# Stop budget: HTTP requests in flight + shutdown_grace (15 s default) + relay drain stays under the 30 s a
# container runtime gives between SIGTERM and SIGKILL.
HTTP_DRAIN_SECONDS = 5.0
RELAY_DRAIN_SECONDS = 5.0


class ListenError(Exception):
    """The HTTP port cannot be bound (in use, or no permission)."""


class Service:
    """One running Ticketero: ``await start()`` returns the bound HTTP port, ``await stop()`` drains it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool: AsyncConnectionPool | None = None
        self.api_pool: AsyncConnectionPool | None = None  # None: the API uses ``pool``
        self.database_ping = api.DatabasePing(settings.database_dsn)  # /actuator/health's own connection
        self.relay: OutboxRelay | None = None
        self.workers: WorkerPool | None = None
        self.recovery: RecoveryService | None = None
        self.metrics = ServiceMetrics()
        self._runner: web.AppRunner | None = None
        self._stopped = False
        self.draining = False
        self.port: int | None = None

    def broker_connected(self) -> bool:
        return bool(self.relay and self.relay.connected and self.workers and self.workers.connected)

    def build_app(self) -> web.Application:
        middlewares = [self.metrics.middleware()]
        if self.settings.faults.memory_leak_bytes:
            middlewares.append(api.leak_middleware(self.settings.faults.memory_leak_bytes))
        app = web.Application(middlewares=middlewares)
        assert self.pool is not None and self.relay is not None
        app[api.POOL] = self.api_pool if self.api_pool is not None else self.pool
        app[api.SETTINGS] = self.settings
        app[api.DATABASE_PING] = self.database_ping
        app[api.METRICS] = self.metrics
        app[api.BROKER_STATUS] = self.broker_connected
        app[api.RELAY_WAKE] = self.relay.wake
        app[api.LEAKED] = []
        app[api.DRAINING] = lambda: self.draining
        api.add_routes(app)
        return app

    async def start(self) -> int:
        s = self.settings
        if s.faults.any:
            log.warning("FAULT SWITCHES ON: %s", s.faults.describe())
        applied = await asyncio.to_thread(database.prepare_schema, s.database_dsn, s.create_database)
        log.info(
            "database %s ready (migrations applied now: %s)", mask_url(s.database_dsn), applied or "none"
        )
        self.pool = await database.open_pool(s.database_dsn, s.db_pool_size, s.db_pool_timeout)
        if s.api_db_pool_size:
            self.api_pool = await database.open_pool(
                s.database_dsn, s.api_db_pool_size, s.db_pool_timeout, name="ticketero-api"
            )
        seeded = await database.seed_advisors(self.pool, s.advisors)
        if seeded:
            log.info("seeded %d AVAILABLE advisors", seeded)

        self.relay = OutboxRelay(self.pool, s)
        self.relay.start()
        self.workers = WorkerPool(self.pool, s)
        self.workers.start()
        if s.recovery:
            self.recovery = RecoveryService(self.pool, s, on_requeue=self.relay.wake)
            self.recovery.start()
        else:
            log.warning("recovery service disabled (--no-recovery)")

        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=HTTP_DRAIN_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, s.host, s.port)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(f"cannot listen on {s.host}:{s.port}: {exc.strerror or exc}") from exc
        self.port = self._runner.addresses[0][1]
        log.info("HTTP API listening on http://%s:%d", s.host, self.port)
        return self.port

    async def drain_readiness(self) -> None:
        """Answer /actuator/health DOWN for ``readiness_drain`` seconds while still serving every request."""
        seconds = self.settings.readiness_drain
        if seconds <= 0 or self._runner is None:
            return
        self.draining = True
        log.info("readiness drain: health DOWN for %gs while requests are still served", seconds)
        await asyncio.sleep(seconds)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        log.info("stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            log.info("HTTP API closed")
        if self.workers is not None:
            await self.workers.stop(self.settings.shutdown_grace)
        if self.recovery is not None:
            await self.recovery.stop()
        if self.relay is not None:
            await self.relay.stop(RELAY_DRAIN_SECONDS)
        await self.database_ping.close()
        if self.api_pool is not None:
            await self.api_pool.close()
        if self.pool is not None:
            await self.pool.close()
            log.info("database pool closed")
        log.info("stopped")
