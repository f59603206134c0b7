"""Consistency (RNF-03, RNF-04): the test plan's integrity checks as gauges, plus deadlocks and connections.

Each check is the plan's own SQL (validate-consistency.sh, the race-condition test) restricted to what the
partial indexes cover, so its cost follows the active tickets. The one check over the whole history, the
served-counter drift (sum of ``advisor.total_tickets_served`` against completed tickets), is kept
incrementally by ``ServedDrift``: see its docstring.

A double assignment lasts only while both tickets are active (about one service time, 2 s by default), so
the ``ticketero_advisors_double_assigned`` gauge, sampled every scrape, usually misses it. The counter
``ticketero_tickets_double_assigned_total`` looks back instead: each newly completed ticket is checked
once against the other tickets of its advisor (``DOUBLE_ASSIGNED_COMPLETED_SQL``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.base import ConcernCollector
from exporters.ledger import RowLedger
from exporters.postgres import PostgresClient, one

# Rules on active tickets go through ix_ticket_active_queue (same predicate as the index).
INCONSISTENT_ACTIVE_SQL = """
SELECT count(*) FILTER (WHERE status = 'IN_PROGRESS' AND started_at IS NULL),
       count(*) FILTER (WHERE status = 'CALLED' AND assigned_advisor_id IS NULL)
FROM ticket WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS')
"""
# Over the whole history: cheap only with ix_ticket_completed_without_completed_at (exporters/sql/indexes.sql).
COMPLETED_WITHOUT_COMPLETED_AT_SQL = """
SELECT count(*) FROM ticket WHERE status = 'COMPLETED' AND completed_at IS NULL
"""
# Without that index the full-history rule would be a sequential scan (seconds at 10 M rows): it is then
# checked over the last day of tickets only, through ix_ticket_created_at.
COMPLETED_WITHOUT_COMPLETED_AT_LAST_DAY_SQL = """
SELECT count(*) FROM ticket
WHERE created_at > now() - interval '1 day' AND status = 'COMPLETED' AND completed_at IS NULL
"""
HAS_COMPLETED_RULE_INDEX_SQL = """
SELECT EXISTS (SELECT 1 FROM pg_indexes
               WHERE schemaname = current_schema() AND tablename = 'ticket'
                 AND indexdef LIKE '%completed_at IS NULL%' AND indexdef LIKE '%COMPLETED%')
"""
BUSY_WITHOUT_TICKET_SQL = """
SELECT count(*) FROM advisor a
WHERE a.status = 'BUSY'
  AND NOT EXISTS (SELECT 1 FROM ticket t
                  WHERE t.assigned_advisor_id = a.id AND t.status IN ('CALLED', 'IN_PROGRESS'))
"""
DOUBLE_ASSIGNED_SQL = """
SELECT count(*) FROM (
    SELECT assigned_advisor_id FROM ticket
    WHERE assigned_advisor_id IS NOT NULL AND status IN ('CALLED', 'IN_PROGRESS')
    GROUP BY assigned_advisor_id HAVING count(*) > 1
) doubles
"""
DUPLICATE_ACTIVE_SQL = """
SELECT count(*) FROM (
    SELECT national_id, queue_type FROM ticket
    WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS')
    GROUP BY national_id, queue_type HAVING count(*) > 1
) dups
"""
# Active tickets only: a ticket and its outbox row are written in one transaction, so a missing row shows
# while the ticket is still active; scanning the whole history would cost as much as the history.
WITHOUT_OUTBOX_SQL = """
SELECT count(*) FROM ticket t
WHERE t.status IN ('WAITING', 'CALLED', 'IN_PROGRESS')
  AND NOT EXISTS (SELECT 1 FROM outbox_message o WHERE o.aggregate_id = t.id)
"""
# Completions past the watermark (ix_ticket_completed_at), each flagged when its [started_at, completed_at]
# overlaps the [started_at, completed_at or now] of another ticket of the same advisor. The other ticket is
# looked for only where an index reaches it: completed after t started (a short ix_ticket_completed_at range)
# or still CALLED / IN_PROGRESS (the active partial indexes), so the cost follows the recent rows, not the
# history. Strict comparisons: a ticket started in the instant the previous one completed is no overlap.
# Only the columns the test plan's SQL names, so it runs against the Java original too.
DOUBLE_ASSIGNED_COMPLETED_SQL = """
SELECT t.id, EXTRACT(EPOCH FROM t.completed_at)::float8,
       t.status = 'COMPLETED' AND t.assigned_advisor_id IS NOT NULL AND t.started_at IS NOT NULL AND (
           EXISTS (SELECT 1 FROM ticket o
                   WHERE o.completed_at > t.started_at AND o.assigned_advisor_id = t.assigned_advisor_id
                     AND o.started_at < t.completed_at AND o.id <> t.id)
           OR EXISTS (SELECT 1 FROM ticket o
                      WHERE o.status IN ('CALLED', 'IN_PROGRESS')
                        AND o.assigned_advisor_id = t.assigned_advisor_id
                        AND o.started_at < t.completed_at AND o.id <> t.id))
FROM ticket t WHERE t.completed_at >= to_timestamp(%s)
"""
DATABASE_SQL = """
SELECT d.deadlocks, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database())
FROM pg_stat_database d WHERE d.datname = current_database()
"""

# --- served drift ---
DRIFT_STATE_SQL = """
SELECT (SELECT COALESCE(sum(total_tickets_served), 0) FROM advisor),
       (SELECT n_tup_del FROM pg_stat_user_tables WHERE relid = 'ticket'::regclass),
       EXTRACT(EPOCH FROM now())::float8,
       (SELECT COALESCE(max(id), 0) FROM ticket),
       (SELECT min(id) FROM ticket)
"""
DRIFT_BASELINE_SLICE_SQL = """
SELECT count(*) FROM ticket
WHERE id > %s AND id <= %s
  AND status = 'COMPLETED' AND assigned_advisor_id IS NOT NULL AND completed_at <= to_timestamp(%s)
"""
DRIFT_STREAM_SQL = """
SELECT id, EXTRACT(EPOCH FROM completed_at)::float8, status = 'COMPLETED' AND assigned_advisor_id IS NOT NULL
FROM ticket WHERE completed_at >= to_timestamp(%s)
"""

log = logging.getLogger(__name__)

RULES = ("in_progress_without_started_at", "completed_without_completed_at", "called_without_advisor")


class ServedDrift:
    """sum(total_tickets_served) − completed tickets with an advisor, without recounting the history each scrape.

    The completed tickets are split by ``completed_at`` at a reset time T0: those completed up to T0 are counted
    once, in primary-key slices of up to ``slice_budget`` (0.1 s) per scrape (the *baseline*); those completed after
    T0 are added as they appear, from the same watermark range scan the counters use (the *stream*). The drift
    is exported once the baseline is complete. A DELETE on ``ticket`` starts over with a new T0; it is seen at
    once when it removes the oldest rows (``min(id)`` moves: the test plan's ``DELETE FROM ticket`` between
    runs), and otherwise through ``pg_stat_user_tables.n_tup_del``, which PostgreSQL may publish up to ~10 s late.
    Right after a clean-up the table is small, so the new baseline is immediate.
    """

    def __init__(self, slack: float, slice_budget: float = 0.1) -> None:
        self.slack = slack
        self.slice_budget = slice_budget
        self.fingerprint: tuple[int, int | None] | None = None
        self.reset_epoch = 0.0
        self.max_id = 0
        self.cursor = 0
        self.step = 50_000
        self.baseline = 0
        self.stream_count = 0
        self.stream = RowLedger(0.0, slack)
        self.ready = False

    def _reset(self, fingerprint: tuple[int, int | None], now_epoch: float, max_id: int) -> None:
        self.fingerprint = fingerprint
        self.reset_epoch = now_epoch
        self.max_id = max_id
        self.cursor = 0
        self.baseline = 0
        self.stream_count = 0
        self.stream = RowLedger(now_epoch + 1e-6, self.slack)
        self.ready = max_id == 0

    def update(self, cur, deadline: float) -> float | None:
        """Advance by one scrape; returns the drift, or None while the baseline is still being counted."""
        cur.execute(DRIFT_STATE_SQL)
        served, deletions, now_epoch, max_id, min_id = one(cur)
        fingerprint = (deletions or 0, min_id)
        if self.fingerprint != fingerprint:
            self._reset(fingerprint, now_epoch, max_id)
        started = time.monotonic()
        budget_end = min(deadline - 0.1, started + self.slice_budget)
        while not self.ready and time.monotonic() < budget_end:
            upper = min(self.max_id, self.cursor + self.step)
            t0 = time.monotonic()
            cur.execute(DRIFT_BASELINE_SLICE_SQL, (self.cursor, upper, self.reset_epoch))
            self.baseline += one(cur)[0]
            self.cursor = upper
            self.ready = self.cursor >= self.max_id
            took = max(time.monotonic() - t0, 1e-4)
            # Aim each slice at a third of the budget, growing or shrinking at most 4x at a time.
            self.step = int(max(1_000, min(self.step * 4, self.step * (self.slice_budget / 3) / took)))
        cur.execute(DRIFT_STREAM_SQL, (self.stream.since(),))
        fresh = self.stream.admit(cur.fetchall())
        self.stream_count += sum(1 for row in fresh if row[2])
        if not self.ready:
            return None
        return float(served) - float(self.baseline + self.stream_count)


class ConsistencyCollector(ConcernCollector):
    """The plan's consistency checks (inconsistent tickets, advisors, duplicates, outbox atomicity, drift)."""

    name = "consistency"
    backend = "postgres"

    def __init__(
        self,
        client: PostgresClient,
        *,
        slack: float = 30.0,
        drift_slice_budget: float = 0.1,
        start_epoch: float | None = None,
    ) -> None:
        self.client = client
        self.drift = ServedDrift(slack, drift_slice_budget)
        self.completions = RowLedger(time.time() if start_epoch is None else start_epoch, slack)
        self.double_assigned_total = 0
        self._completed_rule_sql: str | None = None  # chosen at the first scrape, see _completed_rule()

    def _completed_rule(self, cur: Any, deadline: float) -> str:
        """The query for completed_without_completed_at: whole history with its index, else the last day."""
        if self._completed_rule_sql is None:
            cur.execute(HAS_COMPLETED_RULE_INDEX_SQL)
            if one(cur)[0]:
                self._completed_rule_sql = COMPLETED_WITHOUT_COMPLETED_AT_SQL
            elif self.client.has_column("ticket", "created_at", deadline):
                log.warning(
                    "no partial index for rule completed_without_completed_at (exporters/sql/indexes.sql): "
                    "checking tickets created in the last day only"
                )
                self._completed_rule_sql = COMPLETED_WITHOUT_COMPLETED_AT_LAST_DAY_SQL
            else:
                log.warning(
                    "no partial index for rule completed_without_completed_at and no ticket.created_at: "
                    "the rule is checked over the whole table, which grows with the history"
                )
                self._completed_rule_sql = COMPLETED_WITHOUT_COMPLETED_AT_SQL
        return self._completed_rule_sql

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_tickets_inconsistent",
                "Tickets breaking a state rule (in_progress_without_started_at, completed_without_completed_at, "
                "called_without_advisor).",
                labels=["rule"],
            ),
            GaugeMetricFamily(
                "ticketero_advisors_busy_without_ticket", "BUSY advisors with no CALLED / IN_PROGRESS ticket."
            ),
            GaugeMetricFamily(
                "ticketero_advisors_double_assigned",
                "Advisors holding more than one CALLED / IN_PROGRESS ticket (race condition).",
            ),
            GaugeMetricFamily(
                "ticketero_tickets_duplicate_active",
                "(national_id, queue) pairs with more than one active ticket.",
            ),
            GaugeMetricFamily(
                "ticketero_tickets_without_outbox",
                "Active tickets with no outbox_message row (ticket + outbox atomicity broken).",
            ),
            GaugeMetricFamily(
                "ticketero_advisor_served_drift",
                "sum(advisor.total_tickets_served) minus completed tickets with an advisor. Kept incrementally: "
                "history counted once in slices (absent until done), newer completions added from completed_at; "
                "recounted after a DELETE on ticket.",
            ),
            CounterMetricFamily(
                "ticketero_tickets_double_assigned",
                "Tickets that completed while their advisor was serving another ticket (their started_at.."
                "completed_at overlaps another ticket's of the same advisor; race condition), counted once at "
                "completion. Counted by the exporter since it started, from an index range scan of completed_at "
                "past a watermark (with a slack window for late commits), so it survives DELETE FROM ticket.",
            ),
            CounterMetricFamily(
                "ticketero_database_deadlocks", "pg_stat_database.deadlocks of the Ticketero database."
            ),
            GaugeMetricFamily(
                "ticketero_database_connections", "Backends connected to the Ticketero database."
            ),
        ]

    def scrape(self, deadline: float) -> list[Metric]:
        # outbox_message.aggregate_id is not named by the test plan's SQL: detected, not assumed.
        has_aggregate_id = self.client.optional_column(
            "outbox_message", "aggregate_id", "ticketero_tickets_without_outbox", deadline
        )
        with self.client.cursor(deadline) as cur:
            cur.execute(INCONSISTENT_ACTIVE_SQL)
            in_progress_no_start, called_no_advisor = one(cur)
            cur.execute(self._completed_rule(cur, deadline))
            (completed_no_time,) = one(cur)
            cur.execute(BUSY_WITHOUT_TICKET_SQL)
            (busy_without,) = one(cur)
            cur.execute(DOUBLE_ASSIGNED_SQL)
            (double,) = one(cur)
            cur.execute(DUPLICATE_ACTIVE_SQL)
            (duplicates,) = one(cur)
            without_outbox = None
            if has_aggregate_id:
                cur.execute(WITHOUT_OUTBOX_SQL)
                (without_outbox,) = one(cur)
            cur.execute(DATABASE_SQL)
            deadlocks, connections = one(cur)
            drift = self.drift.update(cur, deadline)
            cur.execute(DOUBLE_ASSIGNED_COMPLETED_SQL, (self.completions.since(),))
            completions = cur.fetchall()
        # Only after every query succeeded: a failed scrape must not half-advance the counter.
        self.double_assigned_total += sum(1 for row in self.completions.admit(completions) if row[2])

        (
            rules_f,
            busy_f,
            double_f,
            dup_f,
            outbox_f,
            drift_f,
            double_total_f,
            deadlocks_f,
            conn_f,
        ) = self.families()
        for rule, value in zip(
            RULES, (in_progress_no_start, completed_no_time, called_no_advisor), strict=True
        ):
            rules_f.add_metric([rule], value)
        busy_f.add_metric([], busy_without)
        double_f.add_metric([], double)
        dup_f.add_metric([], duplicates)
        if without_outbox is not None:
            outbox_f.add_metric([], without_outbox)
        if drift is not None:
            drift_f.add_metric([], drift)
        double_total_f.add_metric([], self.double_assigned_total)
        deadlocks_f.add_metric([], deadlocks)
        conn_f.add_metric([], connections)
        return [rules_f, busy_f, double_f, dup_f, outbox_f, drift_f, double_total_f, deadlocks_f, conn_f]
