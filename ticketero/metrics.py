"""The service's /actuator/prometheus: HTTP timings named as Micrometer names them, plus process figures.

``http_server_requests_seconds{method, uri, status, outcome}`` uses the route template as ``uri`` (bounded
label values) and Micrometer's outcome names, so rules written for the Java original work unchanged.
A private registry keeps tests and multiple app instances in one process apart.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import Metric

from ticketero import __version__

# Micrometer-like SLO buckets; 1.5 and 2.0 are the RNF-02 boundaries the rules read.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)


def outcome(status: int) -> str:
    if status < 200:
        return "INFORMATIONAL"
    if status < 300:
        return "SUCCESS"
    if status < 400:
        return "REDIRECTION"
    if status < 500:
        return "CLIENT_ERROR"
    return "SERVER_ERROR"


def route_template(request: web.Request, status: int) -> str:
    """The matched route (``/api/tickets/{numero}``), or Micrometer's NOT_FOUND / UNKNOWN."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is not None and resource.canonical:
        return resource.canonical
    return "NOT_FOUND" if status == 404 else "UNKNOWN"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        build_info = Gauge(
            "ticketero_build_info",
            "1, labelled with the version of the reference service and its Python.",
            ("version", "python_version"),
            registry=self.registry,
        )
        build_info.labels(__version__, platform.python_version()).set(1)
        self.http_requests = Histogram(
            "http_server_requests_seconds",
            "Duration of HTTP server request handling",
            ("method", "uri", "status", "outcome"),
            buckets=BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The registry in text format, without prometheus_client's ``*_created`` series, which Micrometer
        does not publish (filtered here rather than switched off process-wide)."""
        return generate_latest(_WithoutCreated(self.registry))

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        self.http_requests.labels(
            request.method, route_template(request, status), str(status), outcome(status)
        ).observe(seconds)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def timing(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                self.observe(request, status, time.perf_counter() - started)

        return timing


class _WithoutCreated:
    """A read-only view of a registry that drops the ``*_created`` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family
