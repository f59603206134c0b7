"""Tickets collector against rows the test writes: gauges, counters that survive DELETE, histograms."""

from __future__ import annotations

import time

import psycopg
import pytest

from exporters.postgres import PostgresClient
from exporters.postgres_state import PostgresState
from exporters.postgres_tickets import TicketsCollector
from tests.exporters.helpers import add_advisor, add_ticket, connect, registry_with, scrape, value


@pytest.fixture
def setup(database_dsn):
    client = PostgresClient(database_dsn)
    collector = TicketsCollector(PostgresState(client, start_epoch=time.time() - 600))
    registry = registry_with(collector)
    with connect(database_dsn) as conn:
        yield conn, registry, collector
    client.close()


def test_active_tickets_by_queue_and_status(setup):
    conn, registry, _ = setup
    advisor = add_advisor(conn, status="BUSY")
    for _ in range(3):
        add_ticket(conn, queue="CAJA", status="WAITING")
    add_ticket(conn, queue="EMPRESAS", status="CALLED", advisor=advisor)
    add_ticket(conn, queue="EMPRESAS", status="IN_PROGRESS", advisor=advisor, started_after=1)
    add_ticket(conn, queue="CAJA", status="COMPLETED", advisor=advisor, started_after=1, completed_after=2)

    assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") == 3
    assert value(registry, "ticketero_tickets_active", queue="EMPRESAS", status="CALLED") == 1
    assert value(registry, "ticketero_tickets_active", queue="EMPRESAS", status="IN_PROGRESS") == 1
    # Combinations without rows are exported as 0, not left absent.
    assert value(registry, "ticketero_tickets_active", queue="GERENCIA", status="WAITING") == 0
    assert value(registry, "ticketero_tickets_active", queue="CAJA", status="COMPLETED") is None


def test_oldest_waiting_age(setup):
    conn, registry, _ = setup
    add_ticket(conn, queue="PERSONAL", status="WAITING", age=120)
    add_ticket(conn, queue="PERSONAL", status="WAITING", age=10)
    add_ticket(conn, queue="CAJA", status="CALLED", age=500, advisor=add_advisor(conn))
    age = value(registry, "ticketero_ticket_oldest_waiting_age_seconds", queue="PERSONAL")
    assert 119 <= age <= 125
    assert value(registry, "ticketero_ticket_oldest_waiting_age_seconds", queue="CAJA") == 0


def test_counters_survive_delete_and_feed_histograms(setup):
    conn, registry, _ = setup
    advisor = add_advisor(conn)
    for _ in range(4):
        add_ticket(
            conn,
            queue="CAJA",
            status="COMPLETED",
            advisor=advisor,
            age=100,
            started_after=20,
            completed_after=80,
        )
    add_ticket(conn, queue="GERENCIA", status="WAITING")
    scrape(registry)
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 4
    assert value(registry, "ticketero_tickets_created_total", queue="GERENCIA") == 1
    assert value(registry, "ticketero_tickets_completed_total", queue="CAJA") == 4
    # wait = 20 s, service = 60 s for each of the four.
    assert value(registry, "ticketero_ticket_wait_seconds_count", queue="CAJA") == 4
    assert value(registry, "ticketero_ticket_wait_seconds_sum", queue="CAJA") == pytest.approx(80, abs=0.1)
    assert value(registry, "ticketero_ticket_wait_seconds_bucket", queue="CAJA", le="10.0") == 0
    assert value(registry, "ticketero_ticket_wait_seconds_bucket", queue="CAJA", le="30.0") == 4
    assert value(registry, "ticketero_ticket_service_seconds_bucket", queue="CAJA", le="30.0") == 0
    assert value(registry, "ticketero_ticket_service_seconds_bucket", queue="CAJA", le="60.0") == 4

    conn.execute("DELETE FROM outbox_message")
    conn.execute("DELETE FROM ticket")
    scrape(registry)
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 4
    assert value(registry, "ticketero_tickets_completed_total", queue="CAJA") == 4
    assert value(registry, "ticketero_tickets_active", queue="GERENCIA", status="WAITING") == 0

    add_ticket(conn, queue="CAJA", status="COMPLETED", advisor=advisor, started_after=0, completed_after=0)
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 5
    assert value(registry, "ticketero_tickets_completed_total", queue="CAJA") == 5
    # Repeated scrapes never count a row twice.
    for _ in range(3):
        scrape(registry)
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 5
    assert value(registry, "ticketero_ticket_wait_seconds_count", queue="CAJA") == 5


def test_late_commit_behind_the_watermark_is_counted_once(setup, database_dsn):
    conn, registry, collector = setup
    late = psycopg.connect(database_dsn)
    # Stamped 5 s ago, committed after newer rows were already counted: behind the watermark, inside the slack.
    late.execute(
        "INSERT INTO ticket (numero, national_id, branch_office, queue_type, position_in_queue, created_at) "
        "VALUES ('LATE1', '1', 'Centro', 'CAJA', 1, now() - interval '5 seconds')"
    )
    add_ticket(conn, queue="CAJA")
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 1
    late.commit()
    late.close()
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 2
    assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 2


def test_rows_older_than_the_exporter_are_history(database_dsn):
    with connect(database_dsn) as conn:
        add_ticket(conn, queue="CAJA", age=3600)
        client = PostgresClient(database_dsn)
        registry = registry_with(TicketsCollector(PostgresState(client, start_epoch=time.time() - 60)))
        add_ticket(conn, queue="CAJA")
        assert value(registry, "ticketero_tickets_created_total", queue="CAJA") == 1
        client.close()
