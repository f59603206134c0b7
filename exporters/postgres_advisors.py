"""Advisors and recovery (RNF-05): advisors by status, stale heartbeats, recovery events and detection time."""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from exporters.postgres_state import PostgresConcernCollector

ADVISOR_STATUSES = ("AVAILABLE", "BUSY", "BREAK", "OFFLINE")


class AdvisorsCollector(PostgresConcernCollector):
    """Advisor states, the stalest BUSY heartbeat, and recovery events as a counter and a histogram."""

    name = "advisors"

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily("ticketero_advisors", "Advisors by status.", labels=["status"]),
            GaugeMetricFamily(
                "ticketero_advisor_busy_heartbeat_age_max_seconds",
                "Age of the oldest heartbeat among BUSY advisors (0 when none is BUSY).",
            ),
            CounterMetricFamily(
                "ticketero_recovery_events",
                "recovery_event rows by recovery_type, detected since the exporter started, each counted once as "
                "the exporter reads it by primary key; survives DELETE FROM recovery_event.",
                labels=["type"],
            ),
            HistogramMetricFamily(
                "ticketero_recovery_detection_seconds",
                "recovery_event.last_heartbeat_at -> detected_at (absent when the schema has no last_heartbeat_at).",
            ),
        ]

    def scrape(self, deadline: float) -> list[Metric]:
        state = self.state
        state.refresh(deadline, "advisors")
        statuses: dict[str, int] = {}
        heartbeat_age = 0.0
        for _id, status, _served, age in state.advisors:
            statuses[status] = statuses.get(status, 0) + 1
            if status == "BUSY" and age is not None:
                heartbeat_age = max(heartbeat_age, age)
        advisors_f, heartbeat_f, recovery_f, detection_f = self.families()
        for status in (*ADVISOR_STATUSES, *sorted(set(statuses) - set(ADVISOR_STATUSES))):
            advisors_f.add_metric([status], statuses.get(status, 0))
        heartbeat_f.add_metric([], heartbeat_age)
        for recovery_type, value in state.recovery_total.values.items():
            recovery_f.add_metric([recovery_type], value)
        families = [advisors_f, heartbeat_f, recovery_f]
        if state.columns.recovery_last_heartbeat_at:
            detection_f.add_metric([], state.detection.buckets(), state.detection.total)
            families.append(detection_f)
        return families
