"""Outbox (RNF-04): pending and failed rows, oldest pending, retries, sent counter and publish lag."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from exporters.base import ConcernCollector
from exporters.ledger import HistogramState, RowLedger
from exporters.postgres import PostgresClient

# Two branches so each reads its own partial index (ix_outbox_pending, ix_outbox_failed); an IN list would not.
BACKLOG_SQL = """
SELECT 'PENDING', count(*), COALESCE(max({attempts}), 0),
       COALESCE(EXTRACT(EPOCH FROM now() - min({created_at})), 0)::float8
FROM outbox_message WHERE status = 'PENDING'
UNION ALL
SELECT 'FAILED', count(*), 0, 0 FROM outbox_message WHERE status = 'FAILED'
"""
# Range scan of ix_outbox_sent_at from the watermark.
SENT_SQL = """
SELECT id, EXTRACT(EPOCH FROM sent_at)::float8, EXTRACT(EPOCH FROM sent_at - {created_at})::float8
FROM outbox_message WHERE sent_at >= to_timestamp(%s)
"""
# Only status is named by the test plan's SQL; the other columns are detected, and what needs them skipped.
OPTIONAL_COLUMNS = {
    "created_at": "ticketero_outbox_oldest_pending_age_seconds, ticketero_outbox_publish_lag_seconds",
    "attempts": "ticketero_outbox_pending_attempts_max",
    "sent_at": "ticketero_outbox_messages_sent_total, ticketero_outbox_publish_lag_seconds",
}
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class OutboxCollector(ConcernCollector):
    """Outbox backlog and delivery: what is waiting, what failed, how fast rows reach SENT."""

    name = "outbox"
    backend = "postgres"

    def __init__(
        self, client: PostgresClient, *, slack: float = 30.0, start_epoch: float | None = None
    ) -> None:
        self.client = client
        self.sent = RowLedger(time.time() if start_epoch is None else start_epoch, slack)
        self.sent_total = 0
        self.lag = HistogramState(LAG_BUCKETS)

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_outbox_messages", "Outbox rows PENDING / FAILED.", labels=["status"]
            ),
            CounterMetricFamily(
                "ticketero_outbox_messages_sent",
                "Outbox messages that reached SENT, counted from sent_at since the exporter started "
                "(watermark range scan with slack; survives DELETE FROM outbox_message).",
            ),
            GaugeMetricFamily(
                "ticketero_outbox_oldest_pending_age_seconds", "Age of the oldest PENDING row (0 when none)."
            ),
            GaugeMetricFamily("ticketero_outbox_pending_attempts_max", "Most attempts among PENDING rows."),
            HistogramMetricFamily(
                "ticketero_outbox_publish_lag_seconds",
                "created_at -> sent_at of messages sent since the exporter started.",
            ),
        ]

    def scrape(self, deadline: float) -> list[Metric]:
        has = {
            column: self.client.optional_column("outbox_message", column, needed_by, deadline)
            for column, needed_by in OPTIONAL_COLUMNS.items()
        }
        created_at = "created_at" if has["created_at"] else "NULL::timestamptz"
        sent: list = []
        with self.client.cursor(deadline) as cur:
            cur.execute(
                BACKLOG_SQL.format(attempts="attempts" if has["attempts"] else "0", created_at=created_at)
            )
            backlog = cur.fetchall()
            if has["sent_at"]:
                cur.execute(SENT_SQL.format(created_at=created_at), (self.sent.since(),))
                sent = cur.fetchall()
        for _id, _at, lag in self.sent.admit(sent):
            self.sent_total += 1
            if lag is not None:
                self.lag.observe(lag)

        messages_f, sent_f, oldest_f, attempts_f, lag_f = self.families()
        for status, count, attempts, age in backlog:
            messages_f.add_metric([status], count)
            if status == "PENDING":
                oldest_f.add_metric([], max(0.0, age))
                attempts_f.add_metric([], attempts)
        sent_f.add_metric([], self.sent_total)
        lag_f.add_metric([], self.lag.buckets(), self.lag.total)
        families = [messages_f]
        if has["sent_at"]:
            families.append(sent_f)
        if has["created_at"]:
            families.append(oldest_f)
        if has["attempts"]:
            families.append(attempts_f)
        if has["sent_at"] and has["created_at"]:
            families.append(lag_f)
        return families
