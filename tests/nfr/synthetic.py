"""A scrape target whose NFR series the test steers, for judging the verdict against a real Prometheus.

It publishes the contract names of docs/metrics.md (exporter + load generator + service memory) from
one endpoint, with counters that advance at a steady rate, so the repository's real (compressed) alert
rules see a healthy system until the test plants a violation or removes a series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

QUEUES = ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")


class SyntheticTicketero(Collector):
    """Steady traffic (2 tickets/s, all answered in 0.1 s) plus knobs the test can turn: a share of slow
    (3 s) requests, a share of failed requests, deadlocks, a double-assigned advisor, a missing series."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.lock = threading.Lock()
        self.double_assigned = 0.0
        self.heartbeat_series = True
        self.memory_bytes = 50e6
        self.rate = 2.0
        self.slow_share = 0.0
        self.failure_share = 0.0
        self.deadlocks = 0.0
        # Counters integrate the shares over time, so changing a share never moves a counter backwards.
        self._at = self.t0
        self.requests = 0.0
        self.slow = 0.0
        self.failed = 0.0

    def _advance(self) -> None:
        now = time.time()
        done = (now - self._at) * self.rate
        self.requests += done
        self.slow += done * self.slow_share
        self.failed += done * self.failure_share
        self._at = now

    def set(self, **values: object) -> None:
        with self.lock:
            self._advance()
            for key, value in values.items():
                setattr(self, key, value)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            self._advance()
            n = self.requests
            per_queue = n / len(QUEUES)
            created = CounterMetricFamily("ticketero_tickets_created", "created", labels=["queue"])
            completed = CounterMetricFamily("ticketero_tickets_completed", "completed", labels=["queue"])
            active = GaugeMetricFamily("ticketero_tickets_active", "active", labels=["queue", "status"])
            for queue in QUEUES:
                created.add_metric([queue], per_queue)
                completed.add_metric([queue], per_queue)
                for status in ("WAITING", "CALLED", "IN_PROGRESS"):
                    active.add_metric([queue, status], 0)
            yield from (created, completed, active)
            yield GaugeMetricFamily("ticketero_advisors_double_assigned", "race", value=self.double_assigned)
            yield GaugeMetricFamily("ticketero_tickets_duplicate_active", "dup", value=0)
            yield CounterMetricFamily("ticketero_database_deadlocks", "deadlocks", value=self.deadlocks)
            inconsistent = GaugeMetricFamily("ticketero_tickets_inconsistent", "bad", labels=["rule"])
            inconsistent.add_metric(["in_progress_without_started_at"], 0)
            yield inconsistent
            yield GaugeMetricFamily("ticketero_tickets_without_outbox", "no outbox", value=0)
            outbox = GaugeMetricFamily("ticketero_outbox_messages", "outbox", labels=["status"])
            outbox.add_metric(["PENDING"], 0)
            outbox.add_metric(["FAILED"], 0)
            yield outbox
            if self.heartbeat_series:
                yield GaugeMetricFamily("ticketero_advisor_busy_heartbeat_age_max_seconds", "hb", value=1.0)
            yield GaugeMetricFamily("ticketero_probe_success", "probe", value=1)
            memory = GaugeMetricFamily(
                "ticketero_container_memory_working_set_bytes", "mem", labels=["container"]
            )
            memory.add_metric(["ticketero-app"], self.memory_bytes)
            yield memory
            latency = HistogramMetricFamily(
                "loadgen_request_duration_seconds", "latency", labels=["endpoint"]
            )
            fast = n - self.slow
            buckets = [("0.1", fast), ("1.5", fast), ("2.0", fast), ("5.0", n), ("+Inf", n)]
            latency.add_metric(["create_ticket"], buckets, sum_value=fast * 0.1 + self.slow * 3)
            yield latency
            requests = CounterMetricFamily(
                "loadgen_requests", "requests", labels=["endpoint", "status_class"]
            )
            requests.add_metric(["create_ticket", "2xx"], n)
            yield requests
            failures = CounterMetricFamily(
                "loadgen_request_failures", "failures", labels=["endpoint", "status_class"]
            )
            failures.add_metric(["create_ticket", "5xx"], self.failed)
            yield failures
            yield GaugeMetricFamily("loadgen_run_active", "active", value=1)


def serve(collector: SyntheticTicketero, port: int) -> tuple[WSGIServer, threading.Thread]:
    registry = CollectorRegistry()
    registry.register(collector)
    return start_http_server(port, addr="127.0.0.1", registry=registry)
