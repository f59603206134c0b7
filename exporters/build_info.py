"""ticketero_exporter_build_info: which exporter build serves these metrics (the Prometheus *_build_info shape)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib import metadata

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PACKAGE = "ticketero-nfr"


def version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class BuildInfoCollector(Collector):
    """A constant 1 labelled with the exporter's version and the Python it runs on."""

    def __init__(self) -> None:
        self.labels = {"version": version(), "pythonversion": platform.python_version()}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "ticketero_exporter_build_info",
            "A metric with a constant '1' value labelled by the exporter's version and the Python version.",
            labels=list(self.labels),
        )
        family.add_metric(list(self.labels.values()), 1.0)
        yield family
