"""The one collector registered for serving: runs every concern within the scrape budget, adds meta metrics.

Concerns run one after another against a shared deadline (``scrape_timeout`` from the start of the scrape).
A concern that raises, or that finds no time left, is dropped from this scrape and reported with
``ticketero_scrape_collector_success{collector} 0``; the others are unaffected. ``ticketero_<backend>_up`` is 1
when every built-in concern of that backend succeeded in this scrape. Scrapes are serialised: the counters'
state and the AMQP connection are not shared between threads.

Every backend call has its own timeout, but a backend that accepts connections and then stops answering (a
paused container, a hung broker) can block a client library beyond it. So each concern runs in a thread of its
own that the scrape waits for only until the deadline; a concern still blocked then is reported failed, and
until its thread returns the concerns of the same backend are skipped at once instead of blocking in turn.
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

    def _run(self, concern: ConcernCollector, deadline: float) -> list[Metric]:
        """concern.scrape(deadline) in its own thread, abandoned (and remembered) if it outlives the deadline."""
        for name, thread in list(self._blocked.items()):
            if not thread.is_alive():
                del self._blocked[name]
        blocked = [c.name for c in self.concerns if c.name in self._blocked and c.backend == concern.backend]
        if blocked:
            raise TimeoutError(
                f"{concern.backend} still blocked in collector {blocked[0]} since an earlier scrape"
            )
        wait = deadline - RENDER_HEADROOM - time.monotonic()
        if wait <= 0:
            raise TimeoutError("scrape budget used up before this collector ran")
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["families"] = concern.scrape(deadline - RENDER_HEADROOM)
            except BaseException as exc:  # noqa: BLE001 - handed to the scraping thread
                result["error"] = exc

        thread = threading.Thread(target=target, name=f"collector-{concern.name}", daemon=True)
        thread.start()
        thread.join(wait)
        if thread.is_alive():
            self._blocked[concern.name] = thread
            raise TimeoutError(f"no answer from {concern.backend} within the scrape budget")
        if "error" in result:
            raise result["error"]
        return result["families"]

    def _collect_all(self) -> list[Metric]:
        deadline = time.monotonic() + self.scrape_timeout
        duration, success = self._meta_families()
        up: dict[str, bool] = {b: True for b in self._backends()}
        out: list[Metric] = []
        for concern in self.concerns:
            started = time.monotonic()
            try:
                families = self._run(concern, deadline)
                ok = True
            except Exception as exc:  # noqa: BLE001 - any backend failure drops only this concern
                families, ok = [], False
                first_line = (str(exc).strip().splitlines() or [""])[0]
                message = f"{type(exc).__name__}: {first_line}"
                # Log a failure once per distinct message, not at every scrape of an outage.
                if self._last_error.get(concern.name) != message:
                    log.warning("collector %s failed: %s", concern.name, message)
                self._last_error[concern.name] = message
            else:
                if concern.name in self._last_error:
                    log.info("collector %s recovered", concern.name)
                    del self._last_error[concern.name]
            duration.add_metric([concern.name], time.monotonic() - started)
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
