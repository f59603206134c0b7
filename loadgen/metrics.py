"""The `loadgen_` series of docs/metrics.md, in a private registry served over HTTP during the run.

The names, types and labels here are the contract Prometheus rules and dashboards are written against; do
not rename one without changing docs/metrics.md. Each worker process serves its own registry (base port + i)
and Prometheus sums them.

The per-request series are plain integers and floats that the event loop adds to (`EndpointSeries`); a
collector turns them into fresh metric families on every scrape. prometheus_client's own Counter and
Histogram take a lock and run Python bucket search on every call, which at tens of thousands of requests
per second was a tenth of the generator's CPU. Only the event loop writes; a scrape reads a copy.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from loadgen import __version__

log = logging.getLogger(__name__)

# 1.5 s (seed 003's contention SLO) and 2.0 s (RNF-02's p95) are bucket edges, so Prometheus can tell
# exactly how many requests were within each SLO.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
# Where an unexpected exception of the load happened (loadgen_internal_errors_total's `where` label).
INTERNAL_ERROR_SOURCES = ("engine", "recorder")


_CLASS_BY_HUNDREDS = ("error", "error", "2xx", "3xx", "4xx", "5xx")
_BUCKET_LABELS = tuple(floatToGoString(bound) for bound in DURATION_BUCKETS) + ("+Inf",)


def status_class(status: int) -> str:
    """`2xx`..`5xx`, or `error` when no HTTP answer came back (timeout, refused, reset)."""
    return _CLASS_BY_HUNDREDS[status // 100] if 0 <= status < 600 else "error"


class EndpointSeries:
    """One endpoint's request series as plain numbers; ``observe`` is the per-request hot path."""

    __slots__ = ("buckets", "seconds_sum", "requests", "failures", "dropped")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # not cumulative; the last one is above 30 s
        self.seconds_sum = 0.0
        self.requests = dict.fromkeys(STATUS_CLASSES, 0)
        self.failures = dict.fromkeys(STATUS_CLASSES, 0)
        self.dropped = 0

    def observe(self, seconds: float, status: int, ok: bool) -> None:
        # bisect_left: a latency equal to a bound counts in that bucket (Prometheus's le is "<=")
        self.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.seconds_sum += seconds
        klass = _CLASS_BY_HUNDREDS[status // 100] if 0 <= status < 600 else "error"
        self.requests[klass] += 1
        if not ok:
            self.failures[klass] += 1


class _RequestCollector:
    """Fresh `loadgen_request*` and `loadgen_arrivals_dropped` families from the endpoints' numbers."""

    def __init__(self, metrics: LoadgenMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Metric]:
        return self._families({}, 0)

    def collect(self) -> Iterator[Metric]:
        return self._families(dict(self.metrics.endpoints), self.metrics.in_flight())

    def _families(self, endpoints: dict[str, EndpointSeries], in_flight: int) -> Iterator[Metric]:
        duration = HistogramMetricFamily(
            "loadgen_request_duration_seconds",
            "Request latency; in the open model measured from the intended send time.",
            labels=["endpoint"],
        )
        requests = CounterMetricFamily(
            "loadgen_requests",
            "Requests completed, by endpoint and status class (error = timeout or connection failure).",
            labels=["endpoint", "status_class"],
        )
        failures = CounterMetricFamily(
            "loadgen_request_failures",
            "Requests that did not get the expected answer.",
            labels=["endpoint", "status_class"],
        )
        dropped = CounterMetricFamily(
            "loadgen_arrivals_dropped",
            "Open-model arrivals that could not be sent because the concurrency cap was reached.",
            labels=["endpoint"],
        )
        for name, series in endpoints.items():
            counts = list(series.buckets)  # one copy: the loop may add while this scrape reads
            cumulative, total = [], 0
            for label, count in zip(_BUCKET_LABELS, counts, strict=True):
                total += count
                cumulative.append((label, total))
            duration.add_metric([name], cumulative, series.seconds_sum)
            request_counts, failure_counts = dict(series.requests), dict(series.failures)
            for klass in STATUS_CLASSES:
                requests.add_metric([name, klass], request_counts[klass])
                failures.add_metric([name, klass], failure_counts[klass])
            dropped.add_metric([name], series.dropped)
        yield duration
        yield requests
        yield failures
        yield dropped
        yield GaugeMetricFamily(
            "loadgen_requests_in_flight", "Requests sent, not yet answered.", value=in_flight
        )


class LoadgenMetrics:
    """Holds the generator's series; one instance per process, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # `*_created` series are not part of the contract; without them the endpoint serves exactly its series.
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.endpoints: dict[str, EndpointSeries] = {}
        self.in_flight: Callable[[], int] = lambda: 0
        self.registry.register(_RequestCollector(self))
        self.internal_errors = Counter(
            "loadgen_internal_errors",
            "Unexpected exceptions inside the load engine or a recorder; any of them stops the load and fails "
            "the run (exit 1).",
            ["where"],
            registry=self.registry,
        )
        self.run_active = Gauge("loadgen_run_active", "1 while a scenario runs.", registry=self.registry)
        self.build_info = Gauge(
            "loadgen_build_info",
            "1, labelled with the load generator's version and its Python.",
            ["version", "python_version"],
            registry=self.registry,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
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
            self.endpoint(endpoint)

    def endpoint(self, name: str) -> EndpointSeries:
        """The series of one endpoint, created at 0 on first use."""
        series = self.endpoints.get(name)
        if series is None:
            series = self.endpoints[name] = EndpointSeries()
        return series

    def watch_in_flight(self, source: Callable[[], int]) -> None:
        """Where `loadgen_requests_in_flight` reads its value at scrape time."""
        self.in_flight = source

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
