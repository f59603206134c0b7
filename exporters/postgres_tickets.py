"""Tickets (RNF-01): active tickets, oldest wait, created/completed counters, wait and service histograms."""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from exporters.postgres_state import ACTIVE_STATUSES, QUEUE_TYPES, PostgresConcernCollector

COUNTER_NOTE = (
    " Counted by the exporter since it started, each ticket once, as it first reads the ticket in that state by "
    "primary key, so it survives DELETE FROM ticket."
)


class TicketsCollector(PostgresConcernCollector):
    """Active tickets per queue and status, and throughput counters that survive table clean-ups."""

    name = "tickets"

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_tickets_active",
                "Tickets WAITING, CALLED or IN_PROGRESS (absent until the active tickets are known: at once with "
                "the recommended indexes, else after the first sweep of the history).",
                labels=["queue", "status"],
            ),
            GaugeMetricFamily(
                "ticketero_ticket_oldest_waiting_age_seconds",
                "Age of the oldest WAITING ticket (0 when none).",
                labels=["queue"],
            ),
            CounterMetricFamily(
                "ticketero_tickets_created",
                "Tickets created, from created_at." + COUNTER_NOTE,
                labels=["queue"],
            ),
            CounterMetricFamily(
                "ticketero_tickets_completed",
                "Tickets completed, from completed_at." + COUNTER_NOTE,
                labels=["queue"],
            ),
            HistogramMetricFamily(
                "ticketero_ticket_wait_seconds",
                "created_at -> started_at of tickets completed since the exporter started.",
                labels=["queue"],
            ),
            HistogramMetricFamily(
                "ticketero_ticket_service_seconds",
                "started_at -> completed_at of tickets completed since the exporter started.",
                labels=["queue"],
            ),
        ]

    def scrape(self, deadline: float) -> list[Metric]:
        state = self.state
        state.refresh(deadline, "tickets")
        has_created = state.columns.ticket_created_at
        active_f, oldest_f, created_f, completed_f, wait_f, service_f = self.families()
        out: list[Metric] = []
        if state.active_known:
            summary = state.summary()
            counts = {(q, s): summary.counts.get((q, s), 0) for q in QUEUE_TYPES for s in ACTIVE_STATUSES}
            counts.update(summary.counts)
            oldest = dict.fromkeys(QUEUE_TYPES, state.now_epoch) | summary.oldest_waiting
            for (queue, status), count in counts.items():
                active_f.add_metric([queue, status], count)
            for queue, created in oldest.items():
                oldest_f.add_metric([queue], max(0.0, state.now_epoch - created))
            out.append(active_f)
            if has_created:
                out.append(oldest_f)
        for queue, value in state.created_total.values.items():
            created_f.add_metric([queue], value)
        for queue, value in state.completed_total.values.items():
            completed_f.add_metric([queue], value)
        for histograms, family in ((state.wait, wait_f), (state.service, service_f)):
            for queue, hist in histograms.values.items():
                family.add_metric([queue], hist.buckets(), hist.total)
        if has_created:
            out += [created_f, completed_f, wait_f, service_f]
        else:
            out += [completed_f, service_f]
        return out
