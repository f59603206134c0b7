"""Counters and histograms the exporter keeps itself, for rows it counts once as it first reads them.

A test run empties the tables between runs, so ``SELECT count(*)`` cannot back a counter: the PostgreSQL state
(``exporters/postgres_state.py``) counts each row once, when it first reads it in a state, into these.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class HistogramState:
    """Cumulative bucket counts of one labelled histogram, kept by the exporter across scrapes."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        if value is None or math.isnan(value):
            return
        value = max(0.0, value)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs ending with +Inf, as HistogramMetricFamily wants them."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else _fmt(bound), running))
        return out


def _fmt(bound: float) -> str:
    return repr(float(bound))


class LabelledCounters:
    """label value -> running total; pre-seeded labels are exported at 0 so rate() has a starting point."""

    def __init__(self, seeds: Iterable[str] = ()) -> None:
        self.values: dict[str, float] = dict.fromkeys(seeds, 0.0)

    def inc(self, label: str, amount: float = 1.0) -> None:
        self.values[label] = self.values.get(label, 0.0) + amount


class LabelledHistograms:
    def __init__(self, bounds: tuple[float, ...], seeds: Iterable[str] = ()) -> None:
        self.bounds = bounds
        self.values: dict[str, HistogramState] = {s: HistogramState(bounds) for s in seeds}

    def observe(self, label: str, value: float) -> None:
        if label not in self.values:
            self.values[label] = HistogramState(self.bounds)
        self.values[label].observe(value)
