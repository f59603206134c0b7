"""What every concern collector shares: fresh metric families per scrape, a describe() that touches nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector


class ConcernCollector(Collector):
    """One concern (tickets, outbox, queues, ...) of one backend.

    Subclasses implement ``families()`` (fresh, empty metric families: used by ``describe()`` so that
    registering never reaches the backend) and ``scrape(deadline)`` (query the backend, return filled
    families; raise when the backend fails, so the whole concern is dropped rather than half-reported).
    """

    name = "concern"
    backend = "none"
    # Used when a test registers a single collector directly: the time it may take for one collect().
    default_timeout = 1.0

    def families(self) -> list[Any]:
        raise NotImplementedError

    def scrape(self, deadline: float) -> list[Metric]:
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        return iter(self.families())

    def collect(self) -> Iterator[Metric]:
        return iter(self.scrape(time.monotonic() + self.default_timeout))


def by_name(families: list[Metric]) -> dict[str, Metric]:
    return {f.name: f for f in families}
