"""Consistency collector: for every check, the test plan's own SQL and the exporter agree on planted violations."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from exporters.postgres import PostgresClient
from exporters.postgres_consistency import ConsistencyCollector
from exporters.postgres_state import COMPLETED_WITHOUT_COMPLETED_AT_SQL, PostgresState
from tests.exporters.helpers import add_advisor, add_ticket, connect, registry_with, scrape, value

INDEXES_SQL = Path(__file__).resolve().parents[2] / "exporters" / "sql" / "indexes.sql"

# The plan's checks, verbatim in meaning (validate-consistency.sh and the race-condition test).
SEED_INCONSISTENT = """
SELECT COUNT(*) FROM ticket t
WHERE (t.status = 'IN_PROGRESS' AND t.started_at IS NULL)
   OR (t.status = 'COMPLETED' AND t.completed_at IS NULL)
   OR (t.status = 'CALLED' AND t.assigned_advisor_id IS NULL)
"""
SEED_BUSY_NO_TICKET = """
SELECT COUNT(*) FROM advisor a WHERE a.status = 'BUSY'
AND NOT EXISTS (SELECT 1 FROM ticket t WHERE t.assigned_advisor_id = a.id AND t.status IN ('CALLED', 'IN_PROGRESS'))
"""
SEED_DUPLICATES = """
SELECT COUNT(*) FROM (SELECT national_id, queue_type, COUNT(*) as cnt FROM ticket
WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS') GROUP BY national_id, queue_type HAVING COUNT(*) > 1) dups
"""
SEED_DOUBLE_ASSIGNED = """
SELECT COUNT(*) FROM (SELECT assigned_advisor_id, COUNT(*) FROM ticket WHERE assigned_advisor_id IS NOT NULL
AND status IN ('CALLED', 'IN_PROGRESS') GROUP BY assigned_advisor_id HAVING COUNT(*) > 1) doubles
"""
SEED_DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
SEED_SERVED = "SELECT SUM(total_tickets_served) FROM advisor"


@pytest.fixture
def setup(database_dsn):
    client = PostgresClient(database_dsn)
    collector = ConsistencyCollector(PostgresState(client))
    registry = registry_with(collector)
    with connect(database_dsn) as conn:
        yield conn, registry, collector.state
    client.close()


def seed(conn, sql: str) -> float:
    return float(conn.execute(sql).fetchone()[0] or 0)


def rules(registry) -> dict[str, float]:
    return {
        rule: value(registry, "ticketero_tickets_inconsistent", rule=rule)
        for rule in (
            "in_progress_without_started_at",
            "completed_without_completed_at",
            "called_without_advisor",
        )
    }


def test_clean_data_reports_zero_everywhere(setup):
    conn, registry, _ = setup
    advisor = add_advisor(conn, status="BUSY", served=1)
    add_ticket(conn, status="IN_PROGRESS", advisor=advisor, started_after=1)
    add_ticket(conn, status="COMPLETED", advisor=advisor, started_after=1, completed_after=2)
    add_ticket(conn, status="WAITING")
    assert rules(registry) == {
        "in_progress_without_started_at": 0,
        "completed_without_completed_at": 0,
        "called_without_advisor": 0,
    }
    for name in (
        "ticketero_advisors_busy_without_ticket",
        "ticketero_advisors_double_assigned",
        "ticketero_tickets_duplicate_active",
        "ticketero_tickets_without_outbox",
        "ticketero_advisor_served_drift",
    ):
        assert value(registry, name) == 0, name


def test_inconsistent_ticket_rules_match_the_plan_sql(setup):
    conn, registry, _ = setup
    advisor = add_advisor(conn, status="BUSY")
    add_ticket(conn, status="IN_PROGRESS", advisor=advisor)  # no started_at
    add_ticket(conn, status="IN_PROGRESS", advisor=advisor)
    add_ticket(conn, status="COMPLETED", advisor=advisor, started_after=1)  # no completed_at
    add_ticket(conn, status="CALLED")  # no advisor
    add_ticket(conn, status="IN_PROGRESS", advisor=advisor, started_after=1)  # fine
    got = rules(registry)
    assert got == {
        "in_progress_without_started_at": 2,
        "completed_without_completed_at": 1,
        "called_without_advisor": 1,
    }
    assert sum(got.values()) == seed(conn, SEED_INCONSISTENT) == 4


def test_busy_without_ticket_matches_the_plan_sql(setup):
    conn, registry, _ = setup
    add_advisor(conn, status="BUSY")
    add_advisor(conn, status="BUSY")
    holding = add_advisor(conn, status="BUSY")
    add_ticket(conn, status="CALLED", advisor=holding)
    released = add_advisor(conn, status="BUSY")
    add_ticket(conn, status="COMPLETED", advisor=released, started_after=1, completed_after=2)
    assert value(registry, "ticketero_advisors_busy_without_ticket") == seed(conn, SEED_BUSY_NO_TICKET) == 3


def test_double_assignment_matches_the_race_test_sql(setup):
    conn, registry, _ = setup
    raced = add_advisor(conn, status="BUSY")
    add_ticket(conn, status="CALLED", advisor=raced)
    add_ticket(conn, status="IN_PROGRESS", advisor=raced, started_after=1)
    fine = add_advisor(conn, status="BUSY")
    add_ticket(conn, status="CALLED", advisor=fine)
    add_ticket(conn, status="COMPLETED", advisor=fine, started_after=1, completed_after=2)
    assert value(registry, "ticketero_advisors_double_assigned") == seed(conn, SEED_DOUBLE_ASSIGNED) == 1


def test_duplicate_active_tickets_match_the_plan_sql(setup):
    conn, registry, _ = setup
    add_ticket(conn, national_id="11111111", queue="CAJA")
    add_ticket(conn, national_id="11111111", queue="CAJA")
    add_ticket(conn, national_id="11111111", queue="PERSONAL")  # other queue: allowed
    add_ticket(conn, national_id="22222222", queue="CAJA")
    add_ticket(
        conn, national_id="22222222", queue="CAJA", status="COMPLETED", started_after=1, completed_after=2
    )
    assert value(registry, "ticketero_tickets_duplicate_active") == seed(conn, SEED_DUPLICATES) == 1


def test_ticket_without_outbox_row(setup):
    conn, registry, _ = setup
    add_ticket(conn, outbox=True)
    add_ticket(conn, outbox=False)
    add_ticket(conn, outbox=False)
    assert value(registry, "ticketero_tickets_without_outbox") == 2


def test_deadlocks_and_connections_match_pg_stat(setup):
    conn, registry, _ = setup
    assert value(registry, "ticketero_database_deadlocks_total") == seed(conn, SEED_DEADLOCKS)
    # The test's connection and the exporter's own are both connected to this database.
    assert value(registry, "ticketero_database_connections") >= 2


def test_served_drift_matches_the_plan_sums(setup):
    conn, registry, _ = setup
    a = add_advisor(conn, served=3)
    b = add_advisor(conn, served=1)
    for _ in range(2):
        add_ticket(conn, status="COMPLETED", advisor=a, started_after=1, completed_after=2, age=50)
    add_ticket(conn, status="COMPLETED", advisor=b, started_after=1, completed_after=2, age=50)
    completed_with_advisor = seed(
        conn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED' AND assigned_advisor_id IS NOT NULL"
    )
    assert (
        value(registry, "ticketero_advisor_served_drift")
        == seed(conn, SEED_SERVED) - completed_with_advisor
        == 1
    )
    # A completion the service forgot to count after the exporter's baseline: drift stays right.
    add_ticket(conn, status="COMPLETED", advisor=b, started_after=0, completed_after=0)
    assert value(registry, "ticketero_advisor_served_drift") == 0
    conn.execute("UPDATE advisor SET total_tickets_served = total_tickets_served + 1 WHERE id = %s", (b,))
    assert value(registry, "ticketero_advisor_served_drift") == 1


def test_served_drift_history_is_counted_in_slices_and_recounted_after_delete(setup):
    conn, registry, state = setup
    a = add_advisor(conn, served=0)
    conn.execute(
        """INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue,
                               assigned_advisor_id, created_at, started_at, completed_at)
           SELECT 'H' || g, g::text, 'Centro', 'CAJA', 'COMPLETED', 1, %s,
                  now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'
           FROM generate_series(1, 5000) g""",
        (a,),
    )
    conn.execute("UPDATE advisor SET total_tickets_served = 4990 WHERE id = %s", (a,))
    # Tiny slices and budget: the history takes several scrapes; the gauge stays absent until it is done.
    state.ticket_walk.step = state.outbox_walk.step = 512
    state.first_sweep_budget = state.sweep_budget = 0.0001
    scrape(registry)
    assert state.last_sweep is None
    assert value(registry, "ticketero_advisor_served_drift") is None
    for _ in range(40):
        if state.last_sweep is not None:
            break
        scrape(registry)
    assert state.last_sweep is not None
    assert value(registry, "ticketero_advisor_served_drift") == -10

    # The test plan's reset between runs: DELETE tickets, zero the served counters.
    conn.execute("DELETE FROM outbox_message")
    conn.execute("DELETE FROM ticket")
    conn.execute("UPDATE advisor SET total_tickets_served = 0")
    for _ in range(3):
        scrape(registry)
    assert value(registry, "ticketero_advisor_served_drift") == 0


def test_planted_deadlock_is_counted(setup, database_dsn):
    conn, registry, _ = setup
    first, second = add_advisor(conn), add_advisor(conn)
    before = value(registry, "ticketero_database_deadlocks_total")
    a, b = psycopg.connect(database_dsn), psycopg.connect(database_dsn)
    errors: list[Exception] = []

    def lock(session, mine, theirs, pause):
        try:
            session.execute("UPDATE advisor SET status = 'BUSY' WHERE id = %s", (mine,))
            time.sleep(pause)
            session.execute("UPDATE advisor SET status = 'BUSY' WHERE id = %s", (theirs,))
            session.commit()
        except psycopg.errors.DeadlockDetected as exc:
            errors.append(exc)
            session.rollback()

    threads = [
        threading.Thread(target=lock, args=(a, first, second, 0.3)),
        threading.Thread(target=lock, args=(b, second, first, 0.3)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    a.close()  # a closing backend publishes its statistics at once
    b.close()
    assert len(errors) == 1
    deadline = time.monotonic() + 10
    while value(registry, "ticketero_database_deadlocks_total") == before:
        assert time.monotonic() < deadline, "pg_stat_database.deadlocks never moved"
        time.sleep(0.2)
    assert value(registry, "ticketero_database_deadlocks_total") == seed(conn, SEED_DEADLOCKS) == before + 1


def test_completed_rule_over_the_whole_history_with_and_without_its_index(database_dsn):
    with connect(database_dsn) as conn:
        # A schema made by another implementation (the Java original) lacks the index; the reference has it.
        conn.execute("DROP INDEX ix_ticket_completed_without_completed_at")
        advisor = add_advisor(conn)
        add_ticket(conn, status="COMPLETED", advisor=advisor, age=3 * 86400, started_after=1)  # old, broken
        add_ticket(conn, status="COMPLETED", advisor=advisor, started_after=1)  # recent, broken
        rule = {"rule": "completed_without_completed_at"}
        age = {"check": "completed_without_completed_at"}

        client = PostgresClient(database_dsn)
        without_index = registry_with(ConsistencyCollector(PostgresState(client)))
        # Without the partial index the rule comes from the sweep, which says how old it is.
        assert without_index.get_sample_value("ticketero_tickets_inconsistent", rule) == 2
        assert without_index.get_sample_value("ticketero_consistency_sweep_age_seconds", age) >= 0

        conn.execute(INDEXES_SQL.read_text())
        with_index = registry_with(ConsistencyCollector(PostgresState(client)))
        assert with_index.get_sample_value("ticketero_tickets_inconsistent", rule) == 2
        # ... with it, from the index at every scrape: never older than the scrape.
        assert with_index.get_sample_value("ticketero_consistency_sweep_age_seconds", age) == 0
        assert seed(conn, SEED_INCONSISTENT) == 2
        conn.execute(
            "SET enable_seqscan = off"
        )  # a two-row table would be scanned anyway: is the index usable?
        plan = conn.execute("EXPLAIN " + COMPLETED_WITHOUT_COMPLETED_AT_SQL, (10,)).fetchall()
        client.close()
    assert "ix_ticket_completed_without_completed_at" in " ".join(row[0] for row in plan)


DOUBLE_TOTAL = "ticketero_tickets_double_assigned_total"


@pytest.fixture
def since_a_minute_ago(database_dsn):
    """A collector whose counters start a minute back, so tickets planted seconds in the past count."""
    client = PostgresClient(database_dsn)
    registry = registry_with(ConsistencyCollector(PostgresState(client, start_epoch=time.time() - 60)))
    with connect(database_dsn) as conn:
        yield conn, registry
    client.close()


def test_overlapping_completed_tickets_are_counted_once_each(since_a_minute_ago):
    conn, registry = since_a_minute_ago
    raced = add_advisor(conn)
    # Both on one advisor: [−9 s, −5 s] and [−8 s, −4 s] overlap. Each ticket is counted, so 2.
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=1, completed_after=5)
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=2, completed_after=6)
    # Another advisor at the same time: no overlap with the raced ones.
    other = add_advisor(conn)
    add_ticket(conn, status="COMPLETED", advisor=other, age=10, started_after=1, completed_after=5)
    assert value(registry, DOUBLE_TOTAL) == 2
    for _ in range(3):  # later scrapes never count a ticket again
        scrape(registry)
    assert value(registry, DOUBLE_TOTAL) == 2
    # Gone from the active set long before this scrape: the gauge never saw it.
    assert value(registry, "ticketero_advisors_double_assigned") == 0


def test_completion_while_another_ticket_is_still_in_progress_is_counted(since_a_minute_ago):
    conn, registry = since_a_minute_ago
    raced = add_advisor(conn, status="BUSY")
    add_ticket(conn, status="IN_PROGRESS", advisor=raced, age=10, started_after=1)
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=2, completed_after=6)
    # A CALLED ticket without started_at has no interval yet: not an overlap on its own.
    waiting_advisor = add_advisor(conn)
    add_ticket(conn, status="CALLED", advisor=waiting_advisor, age=3)
    add_ticket(conn, status="COMPLETED", advisor=waiting_advisor, age=10, started_after=1, completed_after=5)
    assert value(registry, DOUBLE_TOTAL) == 1


def test_sequential_tickets_of_one_advisor_are_not_counted(since_a_minute_ago):
    conn, registry = since_a_minute_ago
    advisor = add_advisor(conn)
    # Back to back, the next one starting in the very instant the previous one completed (one transaction,
    # so every row's now() is the same instant).
    with conn.transaction():
        for start in (1, 3, 5):
            add_ticket(
                conn,
                status="COMPLETED",
                advisor=advisor,
                age=10,
                started_after=start,
                completed_after=start + 2,
            )
        add_ticket(conn, status="IN_PROGRESS", advisor=advisor, age=10, started_after=7)
    assert value(registry, DOUBLE_TOTAL) == 0


def test_double_assigned_counter_survives_delete_from_ticket(since_a_minute_ago):
    conn, registry = since_a_minute_ago
    raced = add_advisor(conn)
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=1, completed_after=5)
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=2, completed_after=6)
    assert value(registry, DOUBLE_TOTAL) == 2
    conn.execute("DELETE FROM outbox_message")
    conn.execute("DELETE FROM ticket")  # the test plan's reset between runs
    assert value(registry, DOUBLE_TOTAL) == 2
    add_ticket(conn, status="COMPLETED", advisor=raced, age=4, started_after=1, completed_after=3)
    add_ticket(conn, status="COMPLETED", advisor=raced, age=4, started_after=2, completed_after=4)
    assert value(registry, DOUBLE_TOTAL) == 4


def test_failed_scrape_does_not_advance_the_double_assigned_counter(since_a_minute_ago, database_dsn):
    conn, registry = since_a_minute_ago
    raced = add_advisor(conn)
    assert value(registry, DOUBLE_TOTAL) == 0
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=1, completed_after=5)
    add_ticket(conn, status="COMPLETED", advisor=raced, age=10, started_after=2, completed_after=6)
    # A migration holding the table: the scrape times out on its lock and reports nothing.
    with psycopg.connect(database_dsn) as locker:
        locker.execute("LOCK TABLE ticket IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            scrape(registry)
        locker.rollback()
    # The next good scrape counts both tickets, once.
    assert value(registry, DOUBLE_TOTAL) == 2
    assert value(registry, DOUBLE_TOTAL) == 2
