"""Outbox collector: backlog gauges, sent counter surviving DELETE, publish-lag histogram."""

from __future__ import annotations

import time

import pytest

from exporters.postgres import PostgresClient
from exporters.postgres_outbox import OutboxCollector
from exporters.postgres_state import PostgresState
from tests.exporters.helpers import connect, registry_with, value


def add_message(conn, status: str, *, age: float = 0, attempts: int = 0, lag: float | None = None) -> None:
    sent = "NULL" if lag is None else f"now() - interval '{age} seconds' + interval '{lag} seconds'"
    conn.execute(
        f"""INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload, status, attempts,
                                         created_at, sent_at)
            VALUES (1, 'TICKET_CREATED', 'caja-queue', '{{}}', %s, %s, now() - interval '{age} seconds', {sent})""",
        (status, attempts),
    )


def test_backlog_sent_counter_and_lag(database_dsn):
    client = PostgresClient(database_dsn)
    registry = registry_with(OutboxCollector(PostgresState(client, start_epoch=time.time() - 600)))
    with connect(database_dsn) as conn:
        assert value(registry, "ticketero_outbox_messages", status="PENDING") == 0
        assert value(registry, "ticketero_outbox_oldest_pending_age_seconds") == 0
        add_message(conn, "PENDING", age=40, attempts=3)
        add_message(conn, "PENDING", age=5, attempts=1)
        add_message(conn, "FAILED", attempts=5)
        for lag in (0.02, 0.02, 0.3):
            add_message(conn, "SENT", age=10, lag=lag)
        assert value(registry, "ticketero_outbox_messages", status="PENDING") == 2
        assert value(registry, "ticketero_outbox_messages", status="FAILED") == 1
        assert 39 <= value(registry, "ticketero_outbox_oldest_pending_age_seconds") <= 45
        assert value(registry, "ticketero_outbox_pending_attempts_max") == 3
        assert value(registry, "ticketero_outbox_messages_sent_total") == 3
        assert value(registry, "ticketero_outbox_publish_lag_seconds_bucket", le="0.025") == 2
        assert value(registry, "ticketero_outbox_publish_lag_seconds_bucket", le="0.25") == 2
        assert value(registry, "ticketero_outbox_publish_lag_seconds_bucket", le="0.5") == 3
        assert value(registry, "ticketero_outbox_publish_lag_seconds_sum") == pytest.approx(0.34, abs=1e-3)

        conn.execute("DELETE FROM outbox_message")
        assert value(registry, "ticketero_outbox_messages_sent_total") == 3
        assert value(registry, "ticketero_outbox_messages", status="PENDING") == 0
        add_message(conn, "SENT", lag=0)
        assert value(registry, "ticketero_outbox_messages_sent_total") == 4
    client.close()
