"""Row builders and scrape helpers for the exporter tests (plain SQL against the real database)."""

from __future__ import annotations

import itertools
import time

import psycopg
from prometheus_client import CollectorRegistry

from exporters.base import ConcernCollector

_numbers = itertools.count(1)


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def add_advisor(
    conn: psycopg.Connection,
    *,
    status: str = "AVAILABLE",
    served: int = 0,
    heartbeat_age: float | None = None,
) -> int:
    heartbeat = None if heartbeat_age is None else f"now() - interval '{heartbeat_age} seconds'"
    row = conn.execute(
        f"INSERT INTO advisor (name, status, module_number, total_tickets_served, last_heartbeat) "
        f"VALUES ('a', %s, 1, %s, {heartbeat or 'NULL'}) RETURNING id",
        (status, served),
    ).fetchone()
    return row[0]


def add_ticket(
    conn: psycopg.Connection,
    *,
    queue: str = "CAJA",
    status: str = "WAITING",
    national_id: str | None = None,
    advisor: int | None = None,
    age: float = 0.0,
    started_after: float | None = None,
    completed_after: float | None = None,
    outbox: bool = True,
) -> int:
    """One ticket created ``age`` seconds ago; started/completed that many seconds after creation."""
    number = next(_numbers)
    started = (
        "NULL"
        if started_after is None
        else f"now() - interval '{age} seconds' + interval '{started_after} seconds'"
    )
    completed = (
        "NULL"
        if completed_after is None
        else f"now() - interval '{age} seconds' + interval '{completed_after} seconds'"
    )
    row = conn.execute(
        f"""INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue,
                                 assigned_advisor_id, created_at, started_at, completed_at)
            VALUES (%s, %s, 'Centro', %s, %s, 1, %s, now() - interval '{age} seconds', {started}, {completed})
            RETURNING id""",
        (
            f"T{number:06d}-{time.monotonic_ns() % 100000}",
            national_id or f"{number:08d}",
            queue,
            status,
            advisor,
        ),
    ).fetchone()
    if outbox:
        conn.execute(
            "INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload) "
            "VALUES (%s, 'TICKET_CREATED', 'caja-queue', '{}')",
            (row[0],),
        )
    return row[0]


def registry_with(*collectors: ConcernCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    return registry


def scrape(registry: CollectorRegistry) -> float:
    """Collect once (as Prometheus would); returns how long it took."""
    started = time.monotonic()
    list(registry.collect())
    return time.monotonic() - started


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)
