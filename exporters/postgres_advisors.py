"""Advisors and recovery (RNF-05): advisors by status, stale heartbeats, recovery events and detection time."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from exporters.base import ConcernCollector
from exporters.ledger import HistogramState, LabelledCounters, RowLedger
from exporters.postgres import PostgresClient, one

log = logging.getLogger(__name__)

ADVISOR_STATUSES = ("AVAILABLE", "BUSY", "BREAK", "OFFLINE")
ADVISORS_SQL = "SELECT status, count(*) FROM advisor GROUP BY status"
HEARTBEAT_SQL = """
SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(last_heartbeat)), 0)::float8 FROM advisor WHERE status = 'BUSY'
"""
# Range scan of ix_recovery_event_detected_at. last_heartbeat_at exists only in the reference service's schema.
RECOVERY_SQL = """
SELECT id, EXTRACT(EPOCH FROM detected_at)::float8, recovery_type, {detection}
FROM recovery_event WHERE detected_at >= to_timestamp(%s)
"""
DETECTION_WITH_HEARTBEAT = "EXTRACT(EPOCH FROM detected_at - last_heartbeat_at)::float8"
# The plan's recovery test expects detection within 90 s of the last heartbeat (check every 30 s, timeout 60 s).
DETECTION_BUCKETS = (5.0, 10.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0, 180.0, 300.0)
RECOVERY_TYPES = ("DEAD_WORKER",)


class AdvisorsCollector(ConcernCollector):
    """Advisor states, the stalest BUSY heartbeat, and recovery events as a counter and a histogram."""

    name = "advisors"
    backend = "postgres"

    def __init__(
        self, client: PostgresClient, *, slack: float = 30.0, start_epoch: float | None = None
    ) -> None:
        self.client = client
        self.recoveries = RowLedger(time.time() if start_epoch is None else start_epoch, slack)
        self.recovery_total = LabelledCounters(RECOVERY_TYPES)
        self.detection = HistogramState(DETECTION_BUCKETS)

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily("ticketero_advisors", "Advisors by status.", labels=["status"]),
            GaugeMetricFamily(
                "ticketero_advisor_busy_heartbeat_age_max_seconds",
                "Age of the oldest heartbeat among BUSY advisors (0 when none is BUSY).",
            ),
            CounterMetricFamily(
                "ticketero_recovery_events",
                "recovery_event rows by recovery_type, counted from detected_at since the exporter started "
                "(watermark range scan with slack; survives DELETE FROM recovery_event).",
                labels=["type"],
            ),
            HistogramMetricFamily(
                "ticketero_recovery_detection_seconds",
                "recovery_event.last_heartbeat_at -> detected_at (absent when the schema has no last_heartbeat_at).",
            ),
        ]

    def _detection_column(self, deadline: float) -> bool:
        return self.client.optional_column(
            "recovery_event", "last_heartbeat_at", "ticketero_recovery_detection_seconds", deadline
        )

    def scrape(self, deadline: float) -> list[Metric]:
        with_detection = self._detection_column(deadline)
        recovery_sql = RECOVERY_SQL.format(detection=DETECTION_WITH_HEARTBEAT if with_detection else "NULL")
        with self.client.cursor(deadline) as cur:
            cur.execute(ADVISORS_SQL)
            statuses = dict(cur.fetchall())
            cur.execute(HEARTBEAT_SQL)
            (heartbeat_age,) = one(cur)
            cur.execute(recovery_sql, (self.recoveries.since(),))
            recoveries = cur.fetchall()
        for _id, _at, recovery_type, detection in self.recoveries.admit(recoveries):
            self.recovery_total.inc(recovery_type)
            if detection is not None:
                self.detection.observe(detection)

        advisors_f, heartbeat_f, recovery_f, detection_f = self.families()
        for status in (*ADVISOR_STATUSES, *sorted(set(statuses) - set(ADVISOR_STATUSES))):
            advisors_f.add_metric([status], statuses.get(status, 0))
        heartbeat_f.add_metric([], max(0.0, heartbeat_age))
        for recovery_type, value in self.recovery_total.values.items():
            recovery_f.add_metric([recovery_type], value)
        families = [advisors_f, heartbeat_f, recovery_f]
        if with_detection:
            detection_f.add_metric([], self.detection.buckets(), self.detection.total)
            families.append(detection_f)
        return families
