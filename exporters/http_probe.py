"""Availability (RNF-06): probe the service's health endpoint at scrape time, with a short timeout."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from exporters.base import ConcernCollector


class HealthProbeCollector(ConcernCollector):
    """One GET of the health URL per scrape: success means HTTP 200 with ``{"status": "UP"}``."""

    name = "probe"
    backend = "http"

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self.url = url
        self.timeout = timeout

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_probe_success",
                '1 when the health endpoint answered 200 {"status":"UP"} in this scrape.',
            ),
            GaugeMetricFamily("ticketero_probe_duration_seconds", "How long the health probe took."),
        ]

    def _probe(self, timeout: float) -> bool:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if response.status != 200:
                    return False
                body = json.loads(response.read(65536) or b"{}")
        except (OSError, ValueError, urllib.error.URLError):
            # Refused, timed out, non-2xx (HTTPError), or not JSON: the service is not available.
            return False
        return isinstance(body, dict) and body.get("status") == "UP"

    def scrape(self, deadline: float) -> list[Metric]:
        timeout = max(0.05, min(self.timeout, deadline - time.monotonic()))
        started = time.monotonic()
        ok = self._probe(timeout)
        success_f, duration_f = self.families()
        success_f.add_metric([], 1.0 if ok else 0.0)
        duration_f.add_metric([], time.monotonic() - started)
        return [success_f, duration_f]
