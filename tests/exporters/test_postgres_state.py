"""Primary keys only or the recommended indexes, writes running while scraping: every planted fault is seen, no
false alarm while the data is consistent, nothing lost or counted twice, and a fresh exporter agrees with a
long-running one."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from exporters.app import Exporter, build_exporter
from exporters.config import Settings
from exporters.postgres_state import PostgresState
from tests.exporters.helpers import add_advisor, add_ticket, connect

INDEXES_SQL = Path(__file__).resolve().parents[2] / "exporters" / "sql" / "indexes.sql"
HISTORY = 20_000
WRITER_ADVISORS = 4

# Ground truth: the test plan's checks, verbatim in meaning.
TRUTH = {
    "in_progress_without_started_at": "SELECT count(*) FROM ticket WHERE status = 'IN_PROGRESS' AND started_at IS NULL",
    "completed_without_completed_at": "SELECT count(*) FROM ticket WHERE status = 'COMPLETED' AND completed_at IS NULL",
    "called_without_advisor": "SELECT count(*) FROM ticket WHERE status = 'CALLED' AND assigned_advisor_id IS NULL",
    "busy_without_ticket": """SELECT count(*) FROM advisor a WHERE a.status = 'BUSY' AND NOT EXISTS (
        SELECT 1 FROM ticket t WHERE t.assigned_advisor_id = a.id AND t.status IN ('CALLED', 'IN_PROGRESS'))""",
    "double_assigned": """SELECT count(*) FROM (SELECT assigned_advisor_id FROM ticket
        WHERE assigned_advisor_id IS NOT NULL AND status IN ('CALLED', 'IN_PROGRESS')
        GROUP BY assigned_advisor_id HAVING count(*) > 1) d""",
    "duplicate_active": """SELECT count(*) FROM (SELECT national_id, queue_type FROM ticket
        WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS') GROUP BY national_id, queue_type HAVING count(*) > 1) d""",
    "without_outbox": """SELECT count(*) FROM ticket t
        WHERE NOT EXISTS (SELECT 1 FROM outbox_message o WHERE o.aggregate_id = t.id)""",
    "served_drift": """SELECT (SELECT COALESCE(sum(total_tickets_served), 0) FROM advisor)
        - (SELECT count(*) FROM ticket WHERE status = 'COMPLETED' AND assigned_advisor_id IS NOT NULL)""",
    "active": "SELECT count(*) FROM ticket WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS')",
    "pending": "SELECT count(*) FROM outbox_message WHERE status = 'PENDING'",
    "failed": "SELECT count(*) FROM outbox_message WHERE status = 'FAILED'",
}


def published(exporter: Exporter) -> dict[str, float | None]:
    registry = exporter.registry
    get = registry.get_sample_value
    active = sum(
        get("ticketero_tickets_active", {"queue": q, "status": s}) or 0
        for q in ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")
        for s in ("WAITING", "CALLED", "IN_PROGRESS")
    )
    return {
        **{
            rule: get("ticketero_tickets_inconsistent", {"rule": rule})
            for rule in (
                "in_progress_without_started_at",
                "completed_without_completed_at",
                "called_without_advisor",
            )
        },
        "busy_without_ticket": get("ticketero_advisors_busy_without_ticket"),
        "double_assigned": get("ticketero_advisors_double_assigned"),
        "duplicate_active": get("ticketero_tickets_duplicate_active"),
        "without_outbox": get("ticketero_tickets_without_outbox"),
        "served_drift": get("ticketero_advisor_served_drift"),
        "active": active,
        "pending": get("ticketero_outbox_messages", {"status": "PENDING"}),
        "failed": get("ticketero_outbox_messages", {"status": "FAILED"}),
    }


def truth(conn: psycopg.Connection) -> dict[str, float]:
    return {name: float(conn.execute(sql).fetchone()[0]) for name, sql in TRUTH.items()}


def primary_keys_only(conn: psycopg.Connection) -> None:
    """The schema as the Java original's staging database may have it: the plan's columns, primary keys only."""
    for table, constraint in conn.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint"
        " WHERE contype = 'u' AND connamespace = current_schema()::regnamespace"
    ).fetchall():
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
    for (index,) in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey'"
    ).fetchall():
        conn.execute(f'DROP INDEX "{index}"')


def load_history(conn: psycopg.Connection, rows: int, advisors: list[int]) -> None:
    """Completed tickets, each with a SENT outbox row, spread over a month; served counters that match."""
    conn.execute(
        """INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue,
                               assigned_advisor_id, created_at, called_at, started_at, completed_at)
           SELECT 'H' || g, (50000000 + g)::text, 'Centro', (ARRAY['CAJA','PERSONAL','EMPRESAS','GERENCIA'])[1 + g %% 4],
                  'COMPLETED', 1, (%(advisors)s::bigint[])[1 + g %% %(n)s], ts, ts, ts + interval '1 minute',
                  ts + interval '5 minutes'
           FROM (SELECT g, now() - interval '31 days' + g * interval '1 minute' AS ts
                 FROM generate_series(1, %(rows)s) g) s""",
        {"advisors": advisors, "n": len(advisors), "rows": rows},
    )
    conn.execute(
        """INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload, status, created_at, sent_at)
           SELECT id, 'TICKET_CREATED', 'caja-queue', '{}', 'SENT', created_at, created_at FROM ticket"""
    )
    conn.execute(
        """UPDATE advisor a SET total_tickets_served = s.n FROM (
               SELECT assigned_advisor_id AS id, count(*) AS n FROM ticket WHERE status = 'COMPLETED' GROUP BY 1
           ) s WHERE s.id = a.id"""
    )
    conn.execute("ANALYZE")


class Writer:
    """Consistent writes like the service's: a ticket and its outbox row in one transaction; an advisor taken and
    freed with the ticket; served counted with the completion. Plus transactions that commit late (an id below
    newer ones) and transactions that roll back (an id never used)."""

    def __init__(self, dsn: str, advisors: list[int]) -> None:
        self.dsn = dsn
        self.advisors = advisors
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._guard, args=(self._lifecycle,)),
            threading.Thread(target=self._guard, args=(self._late_and_rolled_back,)),
        ]

    def __enter__(self) -> Writer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors

    def _guard(self, target) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by __exit__
            self.errors.append(exc)

    @staticmethod
    def _create(conn: psycopg.Connection, rng: random.Random) -> int:
        row = conn.execute(
            "INSERT INTO ticket (numero, national_id, branch_office, queue_type, position_in_queue) "
            "VALUES ('W' || nextval('ticket_numero_seq'), (70000000 + nextval('ticket_numero_seq'))::text, "
            "'Centro', %s, 1) RETURNING id",
            (rng.choice(("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")),),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload) "
            "VALUES (%s, 'TICKET_CREATED', 'caja-queue', '{}')",
            (row[0],),
        )
        return row[0]

    def _lifecycle(self) -> None:
        rng = random.Random(7)
        waiting: list[int] = []
        serving: dict[int, tuple[int, str]] = {}  # advisor -> (ticket, status)
        with psycopg.connect(self.dsn) as conn:
            while not self.stop.is_set():
                with conn.transaction():
                    if len(waiting) < 5 or rng.random() < 0.4:
                        waiting.append(self._create(conn, rng))
                        continue
                    free = [a for a in self.advisors if a not in serving]
                    if free and waiting and rng.random() < 0.5:
                        ticket, advisor = waiting.pop(0), rng.choice(free)
                        conn.execute(
                            "UPDATE ticket SET status = 'CALLED', assigned_advisor_id = %s, called_at = now() "
                            "WHERE id = %s",
                            (advisor, ticket),
                        )
                        conn.execute("UPDATE advisor SET status = 'BUSY' WHERE id = %s", (advisor,))
                        serving[advisor] = (ticket, "CALLED")
                    elif serving:
                        advisor = rng.choice(list(serving))
                        ticket, status = serving[advisor]
                        if status == "CALLED":
                            conn.execute(
                                "UPDATE ticket SET status = 'IN_PROGRESS', started_at = now() WHERE id = %s",
                                (ticket,),
                            )
                            serving[advisor] = (ticket, "IN_PROGRESS")
                        else:
                            conn.execute(
                                "UPDATE ticket SET status = 'COMPLETED', completed_at = now() WHERE id = %s",
                                (ticket,),
                            )
                            conn.execute(
                                "UPDATE advisor SET status = 'AVAILABLE', "
                                "total_tickets_served = total_tickets_served + 1 WHERE id = %s",
                                (advisor,),
                            )
                            conn.execute(
                                "UPDATE outbox_message SET status = 'SENT', sent_at = now() "
                                "WHERE aggregate_id = %s AND status = 'PENDING'",
                                (ticket,),
                            )
                            del serving[advisor]
                time.sleep(0.002)
            # Leave nobody half-served: the final state is consistent.
            with conn.transaction():
                for advisor, (ticket, _status) in serving.items():
                    conn.execute(
                        "UPDATE ticket SET status = 'COMPLETED', started_at = COALESCE(started_at, now()), "
                        "completed_at = now() WHERE id = %s",
                        (ticket,),
                    )
                    conn.execute(
                        "UPDATE advisor SET status = 'AVAILABLE', total_tickets_served = total_tickets_served + 1 "
                        "WHERE id = %s",
                        (advisor,),
                    )

    def _late_and_rolled_back(self) -> None:
        rng = random.Random(11)
        with psycopg.connect(self.dsn) as conn:
            while not self.stop.is_set():
                with conn.transaction():
                    self._create(conn, rng)
                    time.sleep(0.15)  # newer ids commit meanwhile: this one lands below the watermark
                try:
                    with conn.transaction():
                        self._create(conn, rng)
                        raise RuntimeError("roll back")
                except RuntimeError:
                    pass


def scrape(exporter: Exporter) -> None:
    list(exporter.registry.collect())


def state_of(exporter: Exporter) -> PostgresState:
    return exporter.concerns[0].state  # type: ignore[attr-defined]


def complete_a_sweep_started_after(exporter: Exporter, instant: float, timeout: float = 60) -> None:
    state = state_of(exporter)
    deadline = time.monotonic() + timeout
    scrape(exporter)
    while state.last_sweep is None or state.last_sweep.started <= instant:
        assert time.monotonic() < deadline, "no complete sweep"
        scrape(exporter)


@pytest.fixture(params=["primary_keys_only", "indexed"])
def database(request, database_dsn) -> Iterator[tuple[str, list[int], bool]]:
    with connect(database_dsn) as conn:
        if request.param == "primary_keys_only":
            primary_keys_only(conn)
        else:
            conn.execute(INDEXES_SQL.read_text())
        advisors = [add_advisor(conn) for _ in range(WRITER_ADVISORS)]
        load_history(conn, HISTORY, advisors)
    yield database_dsn, advisors, request.param == "indexed"


def exporter_for(dsn: str) -> Exporter:
    return build_exporter(
        Settings(
            database_dsn=dsn,
            amqp_url="",
            health_url="",
            scrape_timeout=5.0,
            statement_timeout=2.0,
            sweep_seconds=0.01,
            first_sweep_seconds=0.05,
        )
    )


def test_faults_seen_under_concurrent_writes_and_fresh_agrees_with_long_running(database):
    dsn, advisors, indexed = database
    long_running = exporter_for(dsn)
    scrape(long_running)
    state = state_of(long_running)
    assert state.active_by_index == indexed
    with Writer(dsn, advisors), connect(dsn) as conn:
        # Consistent data under writes: never a false alarm, whatever a scrape catches half-way.
        complete_a_sweep_started_after(long_running, 0.0)
        for _ in range(40):
            scrape(long_running)
            seen = published(long_running)
            for check in (
                "in_progress_without_started_at",
                "completed_without_completed_at",
                "called_without_advisor",
                "busy_without_ticket",
                "double_assigned",
                "duplicate_active",
                "without_outbox",
                "served_drift",
            ):
                assert seen[check] == 0, (check, seen)
        # Every fault kind, on new rows and on rows of the history, while the writes go on.
        planted = time.monotonic()
        add_ticket(conn, status="IN_PROGRESS")  # no started_at
        add_ticket(conn, status="CALLED")  # no advisor
        add_ticket(conn, status="COMPLETED", started_after=0)  # no completed_at, no advisor
        add_advisor(conn, status="BUSY")  # without a ticket
        doubled = add_advisor(conn, status="BUSY")
        add_ticket(conn, status="IN_PROGRESS", advisor=doubled, started_after=0)
        add_ticket(conn, status="IN_PROGRESS", advisor=doubled, started_after=0)
        add_ticket(conn, national_id="99999999", queue="CAJA")
        add_ticket(conn, national_id="99999999", queue="CAJA")
        add_ticket(conn, outbox=False)
        raced = add_advisor(conn, served=2)
        add_ticket(conn, status="COMPLETED", advisor=raced, age=2, started_after=0, completed_after=2)
        add_ticket(conn, status="COMPLETED", advisor=raced, age=2, started_after=0.5, completed_after=2)
        conn.execute(
            "UPDATE advisor SET total_tickets_served = total_tickets_served + 3 WHERE id = %s", (raced,)
        )
        # The history: an old COMPLETED ticket loses completed_at, another old ticket its outbox row.
        old = conn.execute("SELECT min(id) FROM ticket").fetchone()[0]
        conn.execute("UPDATE ticket SET completed_at = NULL WHERE id = %s", (old,))
        conn.execute("DELETE FROM outbox_message WHERE aggregate_id = %s", (old + 1,))
        complete_a_sweep_started_after(long_running, planted)
    with connect(dsn) as conn:
        complete_a_sweep_started_after(long_running, time.monotonic())
        expected = truth(conn)
    got = published(long_running)
    assert got == expected
    assert expected["without_outbox"] == 2 and expected["completed_without_completed_at"] == 2
    assert expected["served_drift"] == 3
    get = long_running.registry.get_sample_value
    assert get("ticketero_tickets_double_assigned_total") == 2
    assert get("ticketero_consistency_sweep_age_seconds", {"check": "without_outbox"}) is not None
    # Counted once each, none lost: every ticket created or completed since the exporter started.
    with connect(dsn) as conn:
        since = state.start_epoch
        created = conn.execute(
            "SELECT count(*) FROM ticket WHERE created_at >= to_timestamp(%s)", (since,)
        ).fetchone()[0]
        completed = conn.execute(
            "SELECT count(*) FROM ticket WHERE completed_at >= to_timestamp(%s)", (since,)
        ).fetchone()[0]
    queues = ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")
    assert sum(get("ticketero_tickets_created_total", {"queue": q}) for q in queues) == created
    assert sum(get("ticketero_tickets_completed_total", {"queue": q}) for q in queues) == completed
    assert completed > 20

    # A freshly started exporter publishes the same values once its first sweep is complete.
    fresh = exporter_for(dsn)
    complete_a_sweep_started_after(fresh, 0.0)
    scrape(long_running)
    fresh_values, long_running_values = published(fresh), published(long_running)
    assert fresh_values == long_running_values == expected, (fresh_values, long_running_values, expected)
    fresh.close()
    long_running.close()


def test_scrape_reads_no_history_without_indexes(database_dsn):
    """Every statement of a steady-state scrape on a primary-key-only schema reads through a primary key."""
    with connect(database_dsn) as conn:
        primary_keys_only(conn)
        advisors = [add_advisor(conn) for _ in range(3)]
        load_history(conn, 100_000, advisors)
        add_ticket(conn, status="WAITING")
    statements: list[tuple[str, object]] = []

    class Recording(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):  # type: ignore[override]
            statements.append((str(query), params))
            return super().execute(query, params, **kwargs)

    exporter = exporter_for(database_dsn)
    assert exporter.postgres is not None
    state = state_of(exporter)
    complete_a_sweep_started_after(exporter, 0.0)
    original_connect = exporter.postgres._connect

    def connect_recording() -> psycopg.Connection:
        conn = original_connect()
        conn.cursor_factory = Recording
        return conn

    exporter.postgres.close()
    exporter.postgres._connect = connect_recording  # type: ignore[method-assign]
    for _ in range(3):
        scrape(exporter)
    assert state.sweeps_done >= 1
    plans = []
    with connect(database_dsn) as conn:
        for query, params in statements:
            if "ticket" not in query and "outbox_message" not in query:
                continue
            if query.lstrip().upper().startswith("SELECT SET_CONFIG"):
                continue
            plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + query, params).fetchall())
            plans.append(plan)
            assert "Seq Scan on ticket" not in plan and "Seq Scan on outbox_message" not in plan, (
                query,
                plan,
            )
    assert len(plans) >= 6
    exporter.close()
