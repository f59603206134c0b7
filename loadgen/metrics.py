"""The `loadgen_` series of docs/metrics.md, in a private registry served over HTTP during the run.

The names, types and labels here are the contract Prometheus rules and dashboards are written against; do
not rename one without changing docs/metrics.md. Each worker process serves its own registry (base port + i)
and Prometheus sums them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

log = logging.getLogger(__name__)

# 1.5 s (seed 003's contention SLO) and 2.0 s (RNF-02's p95) are bucket edges, so Prometheus can tell
# exactly how many requests were within each SLO.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
# Where an unexpected exception of the load happened (loadgen_internal_errors_total's `where` label).
INTERNAL_ERROR_SOURCES = ("engine", "recorder")


def status_class(status: int) -> str:
    """`2xx`..`5xx`, or `error` when no HTTP answer came back (timeout, refused, reset)."""
    if 200 <= status < 600:
        return f"{status // 100}xx"
    return "error"


class LoadgenMetrics:
    """Holds the generator's series; one instance per process, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # `*_created` series are not part of the contract; without them the endpoint serves exactly its series.
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "loadgen_request_duration_seconds",
            "Request latency; in the open model measured from the intended send time.",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "loadgen_requests",
            "Requests completed, by endpoint and status class (error = timeout or connection failure).",
            ["endpoint", "status_class"],
            registry=self.registry,
        )
        self.failures = Counter(
            "loadgen_request_failures",
            "Requests that did not get the expected answer.",
            ["endpoint", "status_class"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "loadgen_arrivals_dropped",
            "Open-model arrivals that could not be sent because the concurrency cap was reached.",
            ["endpoint"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loadgen_requests_in_flight", "Requests sent, not yet answered.", registry=self.registry
        )
        self.internal_errors = Counter(
            "loadgen_internal_errors",
            "Unexpected exceptions inside the load engine or a recorder; any of them stops the load and fails "
            "the run (exit 1).",
            ["where"],
            registry=self.registry,
        )
        self.run_active = Gauge("loadgen_run_active", "1 while a scenario runs.", registry=self.registry)
        self.scenario_info = Gauge(
            "loadgen_scenario_info",
            "1 for the running scenario and phase.",
            ["scenario", "phase"],
            registry=self.registry,
        )
        self._phase: tuple[str, str] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def declare(self, endpoints: Iterable[str]) -> None:
        """Export every endpoint's series at 0 before the first request. Prometheus sees an increase only
        between two scrapes of a series, so a burst shorter than a scrape interval would otherwise be
        invisible to rate() (the series would appear with its final value)."""
        for where in INTERNAL_ERROR_SOURCES:
            self.internal_errors.labels(where)
        for endpoint in endpoints:
            self.request_duration.labels(endpoint)
            self.dropped.labels(endpoint)
            for status in STATUS_CLASSES:
                self.requests.labels(endpoint, status)
                self.failures.labels(endpoint, status)

    def set_phase(self, scenario: str, phase: str) -> None:
        """Only the current phase carries the series, so `loadgen_scenario_info == 1` names it."""
        if self._phase is not None:
            with contextlib.suppress(KeyError):
                self.scenario_info.remove(*self._phase)
        self._phase = (scenario, phase)
        self.scenario_info.labels(scenario, phase).set(1)

    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Start the HTTP endpoint; returns the bound port (0 = pick a free one)."""
        result = start_http_server(port, addr=address, registry=self.registry)
        if isinstance(result, tuple):
            self._server, self._thread = result
            return int(self._server.server_address[1])
        return port

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
