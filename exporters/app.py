"""Wiring: settings -> backend clients -> concern collectors -> one ScrapeCollector in a private registry."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from exporters.base import ConcernCollector
from exporters.build_info import BuildInfoCollector
from exporters.config import Settings
from exporters.http_probe import HealthProbeCollector
from exporters.postgres import PostgresClient
from exporters.postgres_advisors import AdvisorsCollector
from exporters.postgres_consistency import ConsistencyCollector
from exporters.postgres_custom import CustomSqlCollector, load_custom_metrics
from exporters.postgres_outbox import OutboxCollector
from exporters.postgres_state import PostgresState
from exporters.postgres_tickets import TicketsCollector
from exporters.process_resources import ProcessResourcesCollector
from exporters.scrape import ScrapeCollector

log = logging.getLogger(__name__)


@dataclass
class Exporter:
    registry: CollectorRegistry
    scrape: ScrapeCollector
    postgres: PostgresClient | None = None
    concerns: list[ConcernCollector] = field(default_factory=list)

    def close(self) -> None:
        for concern in self.concerns:
            close = getattr(concern, "close", None)
            if close is not None:
                close()
        if self.postgres is not None:
            self.postgres.close()


def build_exporter(settings: Settings) -> Exporter:
    """Everything the exporter serves; contacts no backend (custom SQL file is read and validated here)."""
    concerns: list[ConcernCollector] = []
    optional: list[str] = []
    postgres = None
    start = time.time()
    if settings.database_dsn:
        postgres = PostgresClient(
            settings.database_dsn,
            statement_timeout=settings.statement_timeout,
            lock_timeout=settings.lock_timeout,
            connect_timeout=settings.connect_timeout,
            pool_size=settings.pool_size,
        )
        state = PostgresState(
            postgres,
            start_epoch=start,
            gap_wait=settings.counter_slack,
            sweep_budget=settings.sweep_seconds,
            first_sweep_budget=settings.first_sweep_seconds,
        )
        concerns += [
            TicketsCollector(state),
            ConsistencyCollector(state),
            OutboxCollector(state),
            AdvisorsCollector(state),
        ]
        if settings.custom_queries:
            concerns.append(CustomSqlCollector(postgres, load_custom_metrics(settings.custom_queries)))
            optional.append("custom")
    # pika and the docker SDK (with requests) are imported only when used: together ~15 MB of resident memory.
    if settings.amqp_url:
        from exporters.rabbitmq_queues import QueuesCollector

        concerns.append(
            QueuesCollector(
                settings.amqp_url,
                settings.queues,
                management_url=settings.management_url,
                timeout=settings.rabbitmq_timeout,
            )
        )
    if settings.resources_backend == "docker":
        from exporters.docker_resources import DockerResourcesCollector

        concerns.append(
            DockerResourcesCollector(
                settings.targets, base_url=settings.docker_url, timeout=settings.docker_timeout
            )
        )
    elif settings.resources_backend == "process":
        concerns.append(ProcessResourcesCollector(settings.targets))
    if settings.health_url:
        concerns.append(HealthProbeCollector(settings.health_url, timeout=settings.probe_timeout))
    scrape = ScrapeCollector(concerns, scrape_timeout=settings.scrape_timeout, optional=optional)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(scrape)
    # The exporter's own process (process_*: memory, CPU, open files) and interpreter (python_info), and which
    # build it is: the standard self-metrics of an exporter.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(BuildInfoCollector())
    return Exporter(registry=registry, scrape=scrape, postgres=postgres, concerns=concerns)


def startup_checks(exporter: Exporter, timeout: float = 2.0) -> None:
    """Best effort, at start: say which optional indexes and columns are missing. PostgreSQL down is fine."""
    client = exporter.postgres
    if client is None:
        return
    deadline = time.monotonic() + timeout
    try:
        for table, columns, why in client.missing_indexes(deadline):
            log.info(
                "index on %s %s not found (optional, see exporters/sql/indexes.sql): with it, %s",
                table,
                columns,
                why,
            )
        if not client.has_column("recovery_event", "last_heartbeat_at", deadline):
            log.info(
                "recovery_event.last_heartbeat_at absent: ticketero_recovery_detection_seconds is skipped"
            )
    except Exception as exc:  # noqa: BLE001 - the exporter must start without its database
        log.warning("start-up checks skipped, PostgreSQL not reachable at %s: %s", client.masked_dsn, exc)
