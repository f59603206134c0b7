"""A schema with only the columns the test plan's SQL names: every collector still succeeds, the rest is skipped."""

from __future__ import annotations

import logging

from exporters.app import build_exporter, startup_checks
from exporters.config import Settings
from tests.exporters.helpers import connect, value

# Columns of the reference schema that the plan's SQL never names.
NOT_IN_THE_PLAN = {
    "ticket": ["created_at"],
    "outbox_message": ["created_at", "sent_at", "attempts", "aggregate_id"],
    "recovery_event": ["last_heartbeat_at"],
    "advisor": ["worker_id"],
}


def test_minimal_schema(database_dsn, caplog):
    with connect(database_dsn) as conn:
        for table, columns in NOT_IN_THE_PLAN.items():
            for column in columns:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column} CASCADE")
        exporter = build_exporter(Settings(database_dsn=database_dsn, amqp_url="", health_url=""))
        conn.execute("INSERT INTO advisor (name, status, module_number) VALUES ('a', 'BUSY', 1)")
        conn.execute(
            "INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue,"
            " assigned_advisor_id, started_at, completed_at) VALUES"
            " ('T1', '1', 'Centro', 'CAJA', 'WAITING', 1, NULL, NULL, NULL),"
            " ('T2', '2', 'Centro', 'CAJA', 'COMPLETED', 2, 1, now(), now())"
        )
        conn.execute(
            "INSERT INTO outbox_message (event_type, routing_key, payload, status) VALUES ('x', 'q', '{}', 'FAILED')"
        )
    registry = exporter.registry
    with caplog.at_level(logging.INFO):
        startup_checks(exporter)
        for _ in range(2):
            list(registry.collect())
    for collector in ("tickets", "consistency", "outbox", "advisors"):
        assert value(registry, "ticketero_scrape_collector_success", collector=collector) == 1, collector
    assert value(registry, "ticketero_postgres_up") == 1
    assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") == 1
    assert value(registry, "ticketero_tickets_completed_total", queue="CAJA") == 1
    assert value(registry, "ticketero_ticket_service_seconds_count", queue="CAJA") == 1
    assert value(registry, "ticketero_outbox_messages", status="FAILED") == 1
    assert value(registry, "ticketero_advisors_busy_without_ticket") == 1
    # Skipped, not zero:
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") is None
    assert value(registry, "ticketero_ticket_oldest_waiting_age_seconds", queue="CAJA") is None
    assert value(registry, "ticketero_outbox_messages_sent_total") is None
    assert value(registry, "ticketero_outbox_pending_attempts_max") is None
    assert value(registry, "ticketero_tickets_without_outbox") is None
    assert value(registry, "ticketero_recovery_detection_seconds_count") is None
    skipped = [r.message for r in caplog.records if "not found:" in r.message]
    # One line per missing column, however many scrapes ran.
    assert len(skipped) == len(set(skipped)) == 6, skipped
    assert any("index on ticket (queue_type, created_at) not found" in r.message for r in caplog.records)
    exporter.close()
