"""Advisors collector: states, stalest BUSY heartbeat, recovery counter and detection histogram."""

from __future__ import annotations

import logging
import time

import pytest

from exporters.postgres import PostgresClient
from exporters.postgres_advisors import AdvisorsCollector
from exporters.postgres_state import PostgresState
from tests.exporters.helpers import add_advisor, connect, registry_with, value


def add_recovery(conn, kind: str = "DEAD_WORKER", *, heartbeat_before: float | None = 70) -> None:
    heartbeat = "NULL" if heartbeat_before is None else f"now() - interval '{heartbeat_before} seconds'"
    conn.execute(
        f"INSERT INTO recovery_event (recovery_type, advisor_id, last_heartbeat_at) VALUES (%s, 1, {heartbeat})",
        (kind,),
    )


def test_states_heartbeat_and_recoveries(database_dsn):
    client = PostgresClient(database_dsn)
    registry = registry_with(AdvisorsCollector(PostgresState(client, start_epoch=time.time() - 600)))
    with connect(database_dsn) as conn:
        assert value(registry, "ticketero_advisor_busy_heartbeat_age_max_seconds") == 0
        for status in ("AVAILABLE", "AVAILABLE", "BREAK"):
            add_advisor(conn, status=status)
        add_advisor(conn, status="BUSY", heartbeat_age=120)  # the plan's simulated dead worker
        add_advisor(conn, status="BUSY", heartbeat_age=2)
        add_advisor(conn, status="AVAILABLE", heartbeat_age=900)  # not BUSY: ignored
        assert value(registry, "ticketero_advisors", status="AVAILABLE") == 3
        assert value(registry, "ticketero_advisors", status="BUSY") == 2
        assert value(registry, "ticketero_advisors", status="OFFLINE") == 0
        assert 119 <= value(registry, "ticketero_advisor_busy_heartbeat_age_max_seconds") <= 125

        assert value(registry, "ticketero_recovery_events_total", type="DEAD_WORKER") == 0
        add_recovery(conn, heartbeat_before=70)
        add_recovery(conn, heartbeat_before=100)
        add_recovery(conn, "STUCK_TICKET", heartbeat_before=None)
        assert value(registry, "ticketero_recovery_events_total", type="DEAD_WORKER") == 2
        assert value(registry, "ticketero_recovery_events_total", type="STUCK_TICKET") == 1
        assert value(registry, "ticketero_recovery_detection_seconds_count") == 2
        assert value(registry, "ticketero_recovery_detection_seconds_bucket", le="90.0") == 1
        assert value(registry, "ticketero_recovery_detection_seconds_sum") == pytest.approx(170, abs=1)

        conn.execute("DELETE FROM recovery_event")
        add_recovery(conn)
        assert value(registry, "ticketero_recovery_events_total", type="DEAD_WORKER") == 3
    client.close()


def test_schema_without_last_heartbeat_at_skips_only_the_histogram(database_dsn, caplog):
    with connect(database_dsn) as conn:
        conn.execute("ALTER TABLE recovery_event DROP COLUMN last_heartbeat_at")  # as in the Java original
        client = PostgresClient(database_dsn)
        registry = registry_with(AdvisorsCollector(PostgresState(client, start_epoch=time.time() - 600)))
        conn.execute("INSERT INTO recovery_event (recovery_type) VALUES ('DEAD_WORKER')")
        with caplog.at_level(logging.INFO):
            assert value(registry, "ticketero_recovery_events_total", type="DEAD_WORKER") == 1
            assert value(registry, "ticketero_recovery_detection_seconds_count") is None
        assert sum("recovery_event.last_heartbeat_at not found" in r.message for r in caplog.records) == 1
        client.close()
