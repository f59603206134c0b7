"""The exporter's PostgreSQL access: a small read-only pool, per-scrape time limits, schema detection.

Every transaction is read-only (``default_transaction_read_only``), REPEATABLE READ (one snapshot for all its
queries), and gets ``statement_timeout`` and
``lock_timeout`` no longer than what is left of the scrape, so a locked table or a slow plan costs one
collector, never the scrape. The pool holds at most ``pool_size`` connections; when the server goes away the
broken connections are dropped and reconnected on a later scrape, with a backoff capped at 5 s so the
metrics come back on the first scrape after the server does.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from exporters.config import mask_secret

log = logging.getLogger(__name__)

# Which optional columns exist. The Java original lacks the reference-only ones; metrics needing them are skipped.
COLUMNS_SQL = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY(%s)
"""
SET_LIMITS_SQL = "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)"
INDEXES_SQL = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"

# Indexes the exporter uses when they exist (exporters/sql/indexes.sql); it works on primary keys alone.
# (table, indexed expression as pg_indexes prints it, partial predicate fragment or "", what it gains)
REQUIRED_INDEXES: tuple[tuple[str, str, str, str], ...] = (
    (
        "ticket",
        "(queue_type, created_at)",
        "WAITING",
        "active tickets known at the first scrape instead of after the first sweep of the history",
    ),
    (
        "ticket",
        "(id)",
        "completed_at IS NULL",
        "rule completed_without_completed_at over the whole history at every scrape instead of once per sweep",
    ),
    (
        "outbox_message",
        "(next_attempt_at)",
        "PENDING",
        "outbox backlog known at the first scrape instead of after the first sweep",
    ),
    (
        "outbox_message",
        "(created_at)",
        "FAILED",
        "outbox backlog known at the first scrape instead of after the first sweep",
    ),
)


def one(cur: psycopg.Cursor) -> Any:
    """The single row an aggregate query returns (fetchone() typed without the None case)."""
    row = cur.fetchone()
    if row is None:
        raise psycopg.DataError("query returned no row")
    return row


class BudgetExhausted(Exception):
    """No time left in this scrape for another query."""


class PostgresClient:
    """Read-only, time-limited access to the Ticketero database for the collectors.

    A deliberately small pool of its own (at most ``pool_size`` idle connections, connected on demand, checked
    by the transaction's first statement). psycopg_pool was tried first: it connects in background workers and
    ``getconn`` waits out its whole timeout while the server refuses connections, which turns a database
    outage into a slow scrape; here a refused connection fails the collector at once.
    """

    MAX_BACKOFF = 5.0

    def __init__(
        self,
        dsn: str,
        *,
        statement_timeout: float = 0.5,
        lock_timeout: float = 0.2,
        connect_timeout: float = 2.0,
        pool_size: int = 2,
    ) -> None:
        self._dsn = dsn
        self.statement_timeout = statement_timeout
        self.lock_timeout = lock_timeout
        self.connect_timeout = connect_timeout
        self.pool_size = pool_size
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = 0.0
        self._columns: dict[str, set[str]] | None = None
        self._reported_missing: set[tuple[str, str]] = set()

    @property
    def masked_dsn(self) -> str:
        return mask_secret(self._dsn)

    def _connect(self) -> psycopg.Connection:
        now = time.monotonic()
        if now < self._retry_at:
            raise psycopg.OperationalError("PostgreSQL unreachable (backing off after a failed connect)")
        options = (
            "-c default_transaction_read_only=on"
            f" -c statement_timeout={int(self.statement_timeout * 1000)}"
            f" -c lock_timeout={int(self.lock_timeout * 1000)}"
            " -c idle_in_transaction_session_timeout=10000"
        )
        try:
            conn = psycopg.connect(
                self._dsn,
                options=options,
                connect_timeout=max(2, round(self.connect_timeout)),  # libpq's minimum is 2 s
                application_name="ticketero-exporter",
                autocommit=False,
                # A peer that vanished without closing the connection is noticed in ~15 s, not hours.
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
        except psycopg.Error:
            # Back off (capped low) so an outage costs one refused connect per few seconds, not one per query.
            self._backoff = min(self.MAX_BACKOFF, max(0.25, self._backoff * 2))
            self._retry_at = time.monotonic() + self._backoff
            raise
        self._backoff = 0.0
        # One snapshot per transaction: every query of a collector sees the database at the same instant.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        return conn

    def _begin(self, deadline: float) -> tuple[psycopg.Connection, psycopg.Cursor]:
        """A connection with a transaction opened and its time limits set.

        Setting the limits is the first statement of the transaction and doubles as the liveness check: an idle
        connection that died (server restarted) fails it, is dropped, and the next one (or a fresh one) is
        tried, so the first scrape after the server returns already succeeds. No extra round trip otherwise.
        """
        statement_ms = max(1, int(min(self.statement_timeout, deadline - time.monotonic()) * 1000))
        lock_ms = max(1, min(statement_ms, int(self.lock_timeout * 1000)))
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            fresh = conn is None
            if conn is None:
                conn = self._connect()
            cur = conn.cursor()
            try:
                cur.execute(SET_LIMITS_SQL, (str(statement_ms), str(lock_ms)))
                return conn, cur
            except psycopg.OperationalError:
                conn.close()
                if fresh:
                    raise

    def _release(self, conn: psycopg.Connection) -> None:
        with self._lock:
            if not conn.closed and len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def cursor(self, deadline: float) -> Iterator[psycopg.Cursor]:
        """A cursor in a read-only transaction that must finish before ``deadline`` (time.monotonic())."""
        if deadline - time.monotonic() <= 0.005:
            raise BudgetExhausted("scrape budget used up before this collector ran")
        conn, cur = self._begin(deadline)
        try:
            yield cur
            conn.rollback()  # read-only: nothing to commit
        except BaseException:
            if not (conn.broken or conn.closed):
                try:
                    conn.rollback()
                except psycopg.Error:
                    conn.close()
            else:
                conn.close()
            raise
        finally:
            cur.close()
            if not conn.closed:
                self._release(conn)

    def columns(self, deadline: float) -> dict[str, set[str]]:
        """table -> column names, read once (the schema does not change under a running exporter)."""
        if self._columns is None:
            with self.cursor(deadline) as cur:
                cur.execute(COLUMNS_SQL, (["ticket", "advisor", "outbox_message", "recovery_event"],))
                found: dict[str, set[str]] = {}
                for table, column in cur.fetchall():
                    found.setdefault(table, set()).add(column)
            self._columns = found
        return self._columns

    def has_column(self, table: str, column: str, deadline: float) -> bool:
        return column in self.columns(deadline).get(table, set())

    def optional_column(self, table: str, column: str, needed_by: str, deadline: float) -> bool:
        """Whether an optional column exists; when it does not, say once which metrics are skipped."""
        present = self.has_column(table, column, deadline)
        if not present and (table, column) not in self._reported_missing:
            self._reported_missing.add((table, column))
            log.info("column %s.%s not found: %s skipped", table, column, needed_by)
        return present

    def missing_indexes(self, deadline: float) -> list[tuple[str, str, str]]:
        """Indexes the exporter's queries rely on that the database lacks: (table, columns, what needs it)."""
        with self.cursor(deadline) as cur:
            cur.execute(INDEXES_SQL)
            defs = [re.sub(r"\s+", " ", row[0]) for row in cur.fetchall()]
        missing = []
        for table, columns, predicate, why in REQUIRED_INDEXES:
            pattern = f" ON {table} USING btree {columns}"
            alt = f" ON public.{table} USING btree {columns}"
            if not any((pattern in d or alt in d) and predicate in d for d in defs):
                missing.append((table, columns, why))
        return missing

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
