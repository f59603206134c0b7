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
SELECT 'PENDING', count(*), COALESCE(max(attempts), 0),
       COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
FROM outbox_message WHERE status = 'PENDING'
UNION ALL
SELECT 'FAILED', count(*), 0, 0 FROM outbox_message WHERE status = 'FAILED'
"""
# Range scan of ix_outbox_sent_at from the watermark.
SENT_SQL = """
SELECT id, EXTRACT(EPOCH FROM sent_at)::float8, EXTRACT(EPOCH FROM sent_at - created_at)::float8
FROM outbox_message WHERE sent_at >= to_timestamp(%s)
"""
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
        with self.client.cursor(deadline) as cur:
            cur.execute(BACKLOG_SQL)
            backlog = cur.fetchall()
            cur.execute(SENT_SQL, (self.sent.since(),))
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
        return [messages_f, sent_f, oldest_f, attempts_f, lag_f]
