"""The one collector registered for serving: runs every concern within the scrape budget, adds meta metrics.

Each backend's concerns run one after another in a thread of that backend, the backends side by side, all
against one deadline (``scrape_timeout`` from the start of the scrape, minus 50 ms to render the answer), so a
scrape costs its slowest backend, not the sum.
A concern that raises, or that finds no time left, is dropped from this scrape and reported with
``ticketero_scrape_collector_success{collector} 0``; the others are unaffected. ``ticketero_<backend>_up`` is 1
when every built-in concern of that backend succeeded in this scrape. Scrapes are serialised: the counters'
state and the AMQP connection are not shared between threads.

Every backend call has its own timeout, but a backend that accepts connections and then stops answering (a
paused container, a hung broker) can block a client library beyond it. The scrape waits for a backend's thread
only until the deadline; its concerns still unfinished then are reported failed, and until that thread returns
the backend is skipped at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporters.base import ConcernCollector

log = logging.getLogger(__name__)

# Time kept back from the scrape budget for rendering the answer.
RENDER_HEADROOM = 0.05

UP_METRICS = {
    "postgres": (
        "ticketero_postgres_up",
        "1 when PostgreSQL answered every built-in collector in this scrape.",
    ),
    "rabbitmq": ("ticketero_rabbitmq_up", "1 when RabbitMQ answered this scrape."),
    "docker": ("ticketero_docker_up", "1 when the Docker engine answered this scrape (docker backend only)."),
}


class ScrapeCollector(Collector):
    """Runs the concern collectors and reports per-collector duration and success."""

    def __init__(
        self, concerns: Sequence[ConcernCollector], scrape_timeout: float = 1.0, optional: Sequence[str] = ()
    ) -> None:
        self.concerns = list(concerns)
        self.scrape_timeout = scrape_timeout
        # Concerns whose failure does not mark their backend down (user-defined SQL may simply be wrong).
        self.optional = set(optional)
        self._lock = threading.Lock()
        self._last_error: dict[str, str] = {}
        self._blocked: dict[str, threading.Thread] = {}  # concern name -> its thread still running

    def _meta_families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "ticketero_scrape_collector_duration_seconds",
                "Time each collector took in this scrape.",
                labels=["collector"],
            ),
            GaugeMetricFamily(
                "ticketero_scrape_collector_success",
                "1 if the collector succeeded in this scrape, 0 if its backend failed or it ran out of time.",
                labels=["collector"],
            ),
        )

    def _backends(self) -> list[str]:
        seen: list[str] = []
        for concern in self.concerns:
            if concern.backend in UP_METRICS and concern.backend not in seen:
                seen.append(concern.backend)
        return seen

    def describe(self) -> Iterator[Metric]:
        for concern in self.concerns:
            yield from concern.describe()
        yield from self._meta_families()
        for backend in self._backends():
            name, help_text = UP_METRICS[backend]
            yield GaugeMetricFamily(name, help_text)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            return iter(self._collect_all())

    def _run_backend(
        self, concerns: list[ConcernCollector], deadline: float, results: dict[str, Any]
    ) -> None:
        """One backend's concerns, one after another (they share its client); results keyed by concern name."""
        for concern in concerns:
            started = time.monotonic()
            try:
                if deadline - started <= 0.005:
                    raise TimeoutError("scrape budget used up before this collector ran")
                results[concern.name] = (concern.scrape(deadline), None, time.monotonic() - started)
            except Exception as exc:  # noqa: BLE001 - handed to the scraping thread
                results[concern.name] = ([], exc, time.monotonic() - started)

    def _run_all(self, started: float) -> dict[str, Any]:
        """Every backend in a thread of its own, all waited for until the deadline and no longer."""
        deadline = started + self.scrape_timeout - RENDER_HEADROOM
        for backend, thread in list(self._blocked.items()):
            if not thread.is_alive():
                del self._blocked[backend]
        results: dict[str, Any] = {}
        groups: dict[str, list[ConcernCollector]] = {}
        for concern in self.concerns:
            groups.setdefault(concern.backend, []).append(concern)
        threads = []
        for backend, concerns in groups.items():
            if backend in self._blocked:
                error = TimeoutError(f"{backend} still blocked since an earlier scrape")
                for concern in concerns:
                    results[concern.name] = ([], error, 0.0)
                continue
            thread = threading.Thread(
                target=self._run_backend,
                args=(concerns, deadline, results),
                name=f"scrape-{backend}",
                daemon=True,
            )
            thread.start()
            threads.append((backend, thread))
        for backend, thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._blocked[backend] = thread
        # Snapshot: a blocked thread may still write into ``results`` later.
        return dict(results)

    def _collect_all(self) -> list[Metric]:
        started = time.monotonic()
        results = self._run_all(started)
        duration, success = self._meta_families()
        up: dict[str, bool] = {b: True for b in self._backends()}
        out: list[Metric] = []
        for concern in self.concerns:
            families, exc, took = results.get(
                concern.name,
                (
                    [],
                    TimeoutError(f"no answer from {concern.backend} within the scrape budget"),
                    time.monotonic() - started,
                ),
            )
            ok = exc is None
            if exc is not None:
                first_line = (str(exc).strip().splitlines() or [""])[0]
                message = f"{type(exc).__name__}: {first_line}"
                # Log a failure once per distinct message, not at every scrape of an outage.
                if self._last_error.get(concern.name) != message:
                    log.warning("collector %s failed: %s", concern.name, message)
                self._last_error[concern.name] = message
            elif concern.name in self._last_error:
                log.info("collector %s recovered", concern.name)
                del self._last_error[concern.name]
            duration.add_metric([concern.name], took)
            success.add_metric([concern.name], 1.0 if ok else 0.0)
            if not ok and concern.backend in up and concern.name not in self.optional:
                up[concern.backend] = False
            out.extend(families)
        out.extend((duration, success))
        for backend, is_up in up.items():
            name, help_text = UP_METRICS[backend]
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], 1.0 if is_up else 0.0)
            out.append(family)
        return out
