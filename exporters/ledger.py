"""Monotonic counters and histograms fed from timestamped rows, so they survive ``DELETE FROM ticket``.

A test run empties the tables between runs, so ``SELECT count(*)`` cannot back a counter. Instead each scrape
reads, through an index range scan, only the rows whose timestamp is newer than a watermark (the newest
timestamp already counted) minus a slack window, and counts the ids it has not counted before. The slack
window and the set of ids counted inside it catch rows that commit late (a transaction that stamped
``now()`` and committed seconds later): they show up behind the watermark and are still counted, once.
Ids older than the window are forgotten, so memory follows the rate of new rows, not the history.

What this cannot see: rows inserted and deleted between two scrapes, and rows committing more than the slack
after their timestamp. Counting starts when the exporter starts (rows older than that are history, not
increments), so Prometheus sees an ordinary counter that began at the exporter's start.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class RowLedger:
    """Remembers which ids newer than ``watermark - slack`` were counted; hands back only new rows."""

    def __init__(self, start_epoch: float, slack: float) -> None:
        self.floor = start_epoch
        self.watermark = start_epoch
        self.slack = slack
        self._seen: dict[Any, float] = {}

    def since(self) -> float:
        """Epoch seconds to scan from (inclusive)."""
        return max(self.floor, self.watermark - self.slack)

    def admit(self, rows: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
        """rows are (id, epoch, ...); returns those not counted before, and advances the watermark."""
        fresh = []
        for row in rows:
            row_id, epoch = row[0], row[1]
            if epoch is None or epoch < self.floor or row_id in self._seen:
                continue
            self._seen[row_id] = epoch
            fresh.append(row)
            if epoch > self.watermark:
                self.watermark = epoch
        horizon = self.since()
        if any(epoch < horizon for epoch in self._seen.values()):
            self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
        return fresh

    def __len__(self) -> int:
        return len(self._seen)


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
