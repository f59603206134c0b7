"""Backends down, coming back, or a table locked: a scrape still answers within 1 s and drops only that backend."""

from __future__ import annotations

import time
import urllib.parse

import psycopg
import pytest

from exporters.app import build_exporter
from exporters.config import Settings
from nfr.processes import free_port
from tests.exporters.helpers import add_ticket, connect, scrape, value
from tests.exporters.tcp_proxy import TcpProxy
from tests.support.services import AMQP_HOST, AMQP_PORT


def closed_port() -> int:
    return free_port()


def exporter_for(dsn: str = "", amqp: str = "", **extra):
    return build_exporter(Settings(database_dsn=dsn, amqp_url=amqp, health_url="", **extra))


def success(registry, collector: str) -> float | None:
    return value(registry, "ticketero_scrape_collector_success", collector=collector)


def test_postgres_and_rabbitmq_on_closed_ports():
    port = closed_port()
    exporter = exporter_for(
        f"postgresql://postgres:pw@127.0.0.1:{port}/ticketero", f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    )
    for _ in range(3):
        assert scrape(exporter.registry) < 1.0
    registry = exporter.registry
    assert value(registry, "ticketero_postgres_up") == 0
    assert value(registry, "ticketero_rabbitmq_up") == 0
    for collector in ("tickets", "consistency", "outbox", "advisors", "queues"):
        assert success(registry, collector) == 0
    assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") is None
    exporter.close()


def test_one_backend_down_leaves_the_others(database_dsn):
    exporter = exporter_for(database_dsn, f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F")
    with connect(database_dsn) as conn:
        add_ticket(conn)
    registry = exporter.registry
    assert value(registry, "ticketero_rabbitmq_up") == 0
    assert value(registry, "ticketero_postgres_up") == 1
    assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") == 1
    exporter.close()


def test_postgres_goes_away_and_comes_back(database_dsn):
    parts = urllib.parse.urlsplit(database_dsn)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    proxy.start()
    proxied = urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    exporter = exporter_for(proxied)
    registry = exporter.registry
    with connect(database_dsn) as conn:
        add_ticket(conn)
    try:
        assert value(registry, "ticketero_postgres_up") == 1
        proxy.stop()  # open connections cut, new ones refused
        for _ in range(3):
            assert scrape(registry) < 1.0
        assert value(registry, "ticketero_postgres_up") == 0
        assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") is None
        proxy.start()
        time.sleep(exporter.postgres.MAX_BACKOFF if exporter.postgres else 0)  # longest reconnect backoff
        assert value(registry, "ticketero_postgres_up") == 1
        assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") == 1
    finally:
        proxy.stop()
        exporter.close()


def test_rabbitmq_goes_away_and_comes_back(amqp_url):
    proxy = TcpProxy(AMQP_HOST, AMQP_PORT)
    proxy.start()
    parts = urllib.parse.urlsplit(amqp_url)
    proxied = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    )
    exporter = exporter_for(amqp=proxied)
    registry = exporter.registry
    try:
        assert value(registry, "ticketero_rabbitmq_up") == 1
        proxy.stop()
        assert scrape(registry) < 1.0
        assert value(registry, "ticketero_rabbitmq_up") == 0
        proxy.start()
        assert value(registry, "ticketero_rabbitmq_up") == 1
    finally:
        proxy.stop()
        exporter.close()


def test_locked_ticket_table(database_dsn):
    exporter = exporter_for(database_dsn)
    registry = exporter.registry
    with connect(database_dsn) as conn:
        add_ticket(conn)
    locker = psycopg.connect(database_dsn)
    try:
        locker.execute("LOCK TABLE ticket IN ACCESS EXCLUSIVE MODE")
        took = scrape(registry)
        assert took < 1.0
        assert value(registry, "ticketero_postgres_up") == 0
        assert success(registry, "tickets") == 0
        assert success(registry, "consistency") == 0
        # Concerns that do not read ticket are unaffected.
        assert success(registry, "outbox") == 1
        assert value(registry, "ticketero_outbox_messages", status="PENDING") == 1
        locker.rollback()
        assert value(registry, "ticketero_postgres_up") == 1
        assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") == 1
    finally:
        locker.close()
        exporter.close()


@pytest.mark.parametrize("lock_timeout", [0.2])
def test_exporter_sessions_are_read_only(database_dsn, lock_timeout):
    exporter = exporter_for(database_dsn, lock_timeout=lock_timeout)
    assert exporter.postgres is not None
    with exporter.postgres.cursor(time.monotonic() + 1) as cur:
        cur.execute("SHOW transaction_read_only")
        assert cur.fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            cur.execute("DELETE FROM ticket")
    exporter.close()


def test_postgres_that_hangs(database_dsn):
    """Connections accepted, nothing answered (a paused container): scrapes stay within budget."""
    parts = urllib.parse.urlsplit(database_dsn)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    proxy.start()
    proxied = urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    exporter = exporter_for(proxied, f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/%2F")
    registry = exporter.registry
    with connect(database_dsn) as conn:
        add_ticket(conn)
    try:
        assert value(registry, "ticketero_postgres_up") == 1
        proxy.pause()
        took = [scrape(registry) for _ in range(3)]
        assert max(took) < 1.0, took
        # After the first blocked collector, the other PostgreSQL collectors are skipped at once.
        assert took[1] < 0.2 and took[2] < 0.2, took
        assert value(registry, "ticketero_postgres_up") == 0
        assert value(registry, "ticketero_rabbitmq_up") == 1  # the other backend is unaffected
        proxy.resume()
        deadline = time.monotonic() + 10
        while value(registry, "ticketero_postgres_up") != 1:
            assert time.monotonic() < deadline, "never recovered after the backend answered again"
            time.sleep(0.2)
        assert value(registry, "ticketero_tickets_active", queue="CAJA", status="WAITING") == 1
    finally:
        proxy.stop()
        exporter.close()


def test_rabbitmq_that_hangs(amqp_url):
    proxy = TcpProxy(AMQP_HOST, AMQP_PORT)
    proxy.start()
    parts = urllib.parse.urlsplit(amqp_url)
    proxied = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    )
    exporter = exporter_for(amqp=proxied)
    registry = exporter.registry
    try:
        assert value(registry, "ticketero_rabbitmq_up") == 1
        proxy.pause()
        took = [scrape(registry) for _ in range(3)]
        assert max(took) < 1.0, took
        assert value(registry, "ticketero_rabbitmq_up") == 0
        proxy.resume()
        deadline = time.monotonic() + 10
        while value(registry, "ticketero_rabbitmq_up") != 1:
            assert time.monotonic() < deadline, "never recovered after the broker answered again"
            time.sleep(0.2)
    finally:
        proxy.stop()
        exporter.close()


def test_registering_contacts_no_backend():
    port = closed_port()
    started = time.monotonic()
    exporter = exporter_for(
        f"postgresql://postgres@127.0.0.1:{port}/x", f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    )
    names = {family.name for family in exporter.scrape.describe()}
    assert time.monotonic() - started < 0.5
    # Nothing was attempted: no failed connect, so no backoff pending.
    assert exporter.postgres is not None and exporter.postgres._retry_at == 0.0
    assert {"ticketero_tickets_active", "ticketero_queue_messages_ready", "ticketero_postgres_up"} <= names
    exporter.close()
