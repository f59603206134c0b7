"""Outbox (RNF-04): pending and failed rows, oldest pending, retries, sent counter and publish lag."""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from exporters.postgres_state import PostgresConcernCollector


class OutboxCollector(PostgresConcernCollector):
    """Outbox backlog and delivery: what is waiting, what failed, how fast rows reach SENT."""

    name = "outbox"

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_outbox_messages",
                "Outbox rows PENDING / FAILED (absent until known: at once with the recommended indexes, else "
                "after the first sweep of the outbox history).",
                labels=["status"],
            ),
            CounterMetricFamily(
                "ticketero_outbox_messages_sent",
                "Outbox messages that reached SENT since the exporter started (sent_at), each counted once as the "
                "exporter reads it by primary key; survives DELETE FROM outbox_message.",
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
        state = self.state
        state.refresh(deadline, "outbox")
        has = state.columns.outbox
        messages_f, sent_f, oldest_f, attempts_f, lag_f = self.families()
        families: list[Metric] = []
        if state.unsent_known:
            counts = {"PENDING": 0, "FAILED": 0}
            oldest, attempts = state.now_epoch, 0
            for row in state.unsent.values():
                counts[row.status] = counts.get(row.status, 0) + 1
                if row.status == "PENDING":
                    if row.created is not None:
                        oldest = min(oldest, row.created)
                    attempts = max(attempts, row.attempts or 0)
            for status, count in counts.items():
                messages_f.add_metric([status], count)
            oldest_f.add_metric([], max(0.0, state.now_epoch - oldest))
            attempts_f.add_metric([], attempts)
            families.append(messages_f)
            if has["created_at"]:
                families.append(oldest_f)
            if has["attempts"]:
                families.append(attempts_f)
        sent_f.add_metric([], state.sent_total)
        lag_f.add_metric([], state.lag.buckets(), state.lag.total)
        if has["sent_at"]:
            families.append(sent_f)
        if has["sent_at"] and has["created_at"]:
            families.append(lag_f)
        return families
