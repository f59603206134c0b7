"""The exporter's PostgreSQL access: a small read-only pool, per-scrape time limits, schema detection.

Every transaction is read-only (``default_transaction_read_only``) and gets ``statement_timeout`` and
``lock_timeout`` no longer than what is left of the scrape, so a locked table or a slow plan costs one
collector, never the scrape. The pool holds at most ``pool_size`` connections; when the server goes away the
pool is thrown away and rebuilt on a later scrape, with a backoff that is capped low so the metrics come back
on the first scrape after the server does.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from exporters.config import mask_secret

log = logging.getLogger(__name__)

# Which optional columns exist. The Java original lacks the reference-only ones; metrics needing them are skipped.
COLUMNS_SQL = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY(%s)
"""
INDEXES_SQL = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"

# (table, indexed expression as pg_indexes prints it, partial predicate fragment or "", why the exporter needs it)
REQUIRED_INDEXES: tuple[tuple[str, str, str, str], ...] = (
    (
        "ticket",
        "(queue_type, created_at)",
        "WAITING",
        "active tickets per queue, oldest waiting, inconsistent",
    ),
    ("ticket", "(national_id, queue_type)", "WAITING", "duplicate active tickets"),
    ("ticket", "(assigned_advisor_id)", "CALLED", "double-assigned and busy-without-ticket advisors"),
    ("ticket", "(created_at)", "", "tickets_created_total"),
    ("ticket", "(completed_at)", "", "tickets_completed_total, wait/service histograms, served drift"),
    ("ticket", "(id)", "completed_at IS NULL", "inconsistent rule completed_without_completed_at"),
    ("outbox_message", "(next_attempt_at)", "PENDING", "pending outbox rows"),
    ("outbox_message", "(created_at)", "FAILED", "failed outbox rows"),
    ("outbox_message", "(aggregate_id)", "", "tickets_without_outbox"),
    ("outbox_message", "(sent_at)", "", "outbox_messages_sent_total, publish lag"),
    ("recovery_event", "(detected_at)", "", "recovery_events_total, detection histogram"),
)


class BudgetExhausted(Exception):
    """No time left in this scrape for another query."""


class PostgresClient:
    """Read-only, time-limited access to the Ticketero database for the collectors."""

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
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = 0.0
        self._columns: dict[str, set[str]] | None = None

    @property
    def masked_dsn(self) -> str:
        return mask_secret(self._dsn)

    def _new_pool(self) -> ConnectionPool:
        options = (
            "-c default_transaction_read_only=on"
            f" -c statement_timeout={int(self.statement_timeout * 1000)}"
            f" -c lock_timeout={int(self.lock_timeout * 1000)}"
            " -c idle_in_transaction_session_timeout=10000"
        )
        pool = ConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self.pool_size,
            open=False,
            name="ticketero-exporter",
            kwargs={
                "options": options,
                "connect_timeout": max(2, round(self.connect_timeout)),
                "application_name": "ticketero-exporter",
                "autocommit": False,
            },
            # A connection that died while idle (server restart) is replaced before a collector gets it.
            check=ConnectionPool.check_connection,
            reconnect_timeout=self.MAX_BACKOFF,
            reconnect_failed=lambda _pool: None,
        )
        pool.open(wait=False)
        return pool

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                now = time.monotonic()
                if now < self._retry_at:
                    raise psycopg.OperationalError(
                        f"PostgreSQL unreachable, next attempt in {self._retry_at - now:.1f}s"
                    )
                self._pool = self._new_pool()
            return self._pool

    def _failed(self) -> None:
        """Drop the pool after a connection-level failure; the next attempt waits a (capped) backoff."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._backoff = min(self.MAX_BACKOFF, max(0.25, self._backoff * 2))
            self._retry_at = time.monotonic() + self._backoff
        if pool is not None:
            pool.close(timeout=0)

    def _succeeded(self) -> None:
        self._backoff = 0.0

    @contextmanager
    def cursor(self, deadline: float) -> Iterator[psycopg.Cursor]:
        """A cursor in a read-only transaction that must finish before ``deadline`` (time.monotonic())."""
        remaining = deadline - time.monotonic()
        if remaining <= 0.005:
            raise BudgetExhausted("scrape budget used up before this collector ran")
        pool = self._get_pool()
        try:
            with pool.connection(timeout=remaining) as conn:
                statement_ms = max(1, int(min(self.statement_timeout, deadline - time.monotonic()) * 1000))
                lock_ms = max(1, min(statement_ms, int(self.lock_timeout * 1000)))
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                        (str(statement_ms), str(lock_ms)),
                    )
                    yield cur
        except psycopg.errors.QueryCanceled:
            raise  # timeout or lock wait: the connection is fine
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            # PoolTimeout is an OperationalError too: no connection could be made in time.
            self._failed()
            raise psycopg.OperationalError(str(exc)) from exc
        self._succeeded()

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
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=1)
