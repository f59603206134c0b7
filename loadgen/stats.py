"""Exact end-of-run statistics (HdrHistogram) next to the live Prometheus series.

Prometheus histograms answer "how many under 2 s"; the summary needs exact p50/p95/p99/max, so every
latency is also recorded into an HdrHistogram (microseconds, 3 significant digits). Histograms travel
encoded in the JSON summary, which is how worker processes' results merge exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.metrics import EndpointSeries, LoadgenMetrics

MICROS = 1_000_000
HIGHEST_MICROS = 3600 * MICROS
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


# HdrHistogram(1, HIGHEST_MICROS, 3) keeps 2048 sub-buckets: values below 2048 µs exactly, above that the
# lowest (bit_length - 11) bits are dropped. Recording a value with those bits cleared lands in the same bucket.
_EXACT_BITS = 11


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_MICROS, 3)


class LatencyHistogram:
    """An HdrHistogram whose per-request record is a dict increment; values reach it in batches.

    ``HdrHistogram.record_value`` is pure Python (about 1 µs); three of them per request cost more than
    the request's own parsing. ``record`` keeps counts of values already rounded to the histogram's
    resolution, so at most a few tens of thousands of keys, and ``settled()`` adds them all at once.
    """

    __slots__ = ("_histogram", "_pending")

    def __init__(self) -> None:
        self._histogram = new_histogram()
        self._pending: dict[int, int] = {}

    def record(self, seconds: float) -> None:
        micros = int(seconds * MICROS)
        if micros < 1:
            micros = 1
        elif micros > HIGHEST_MICROS:
            micros = HIGHEST_MICROS
        drop = micros.bit_length() - _EXACT_BITS
        if drop > 0:
            micros = micros >> drop << drop
        pending = self._pending
        pending[micros] = pending.get(micros, 0) + 1

    def settled(self) -> HdrHistogram:
        """The HdrHistogram with every value recorded so far."""
        if self._pending:
            pending, self._pending = self._pending, {}
            record = self._histogram.record_value
            for micros, count in pending.items():
                record(micros, count)
        return self._histogram


class EndpointStats:
    """Everything recorded for one endpoint; holds its metric series so the hot path skips label lookups."""

    __slots__ = ("name", "latency", "service_time", "statuses", "requests", "failures", "dropped", "series")

    def __init__(self, name: str, metrics: LoadgenMetrics | None) -> None:
        self.name = name
        self.latency = LatencyHistogram()  # from intended send time (coordinated-omission corrected)
        self.service_time = LatencyHistogram()  # from actual send time (what a naive tool reports)
        self.statuses: dict[int, int] = {}
        self.requests = 0
        self.failures = 0
        self.dropped = 0
        self.series: EndpointSeries | None = metrics.endpoint(name) if metrics is not None else None


class StageStats:
    """Requests whose intended time fell in one ramp stage (breaking-point search)."""

    __slots__ = ("start", "target", "duration", "latency", "requests", "failures", "dropped")

    def __init__(self, target: float, duration: float, start: float = 0.0) -> None:
        self.start = start
        self.target = target
        self.duration = duration
        self.latency = LatencyHistogram()
        self.requests = 0
        self.failures = 0
        self.dropped = 0

    def record(self, seconds: float, ok: bool) -> None:
        self.latency.record(seconds)
        self.requests += 1
        if not ok:
            self.failures += 1

    def verdict(self, break_p95: float | None, break_error_rate: float | None) -> str | None:
        """Why this stage broke, or None when it held."""
        if self.requests == 0:
            return "no answers" if self.dropped else None
        p95 = self.latency.settled().get_value_at_percentile(95.0) / MICROS
        error_rate = (self.failures + self.dropped) / (self.requests + self.dropped)
        if break_p95 is not None and p95 > break_p95:
            return f"p95 {p95:.3f}s > {break_p95:g}s"
        if break_error_rate is not None and error_rate > break_error_rate:
            return f"error rate {error_rate:.3f} > {break_error_rate:g}"
        return None


class Recorder:
    """Counts and times every request of this process, for the summary and for Prometheus at once."""

    def __init__(self, metrics: LoadgenMetrics | None = None) -> None:
        self.metrics = metrics
        self.endpoints: dict[str, EndpointStats] = {}
        self.overall = LatencyHistogram()
        self.schedule_lag = LatencyHistogram()
        self.lag_samples = 0
        self.started = time.perf_counter()
        self.finished: float | None = None
        self.sent = 0
        self.in_flight = 0
        if metrics is not None:
            metrics.watch_in_flight(lambda: self.in_flight)
        self.contention_rounds: list[dict[str, Any]] = []
        self.stages: list[StageStats] = []

    def endpoint(self, name: str) -> EndpointStats:
        stats = self.endpoints.get(name)
        if stats is None:
            stats = self.endpoints[name] = EndpointStats(name, self.metrics)
        return stats

    # -- hot path ---------------------------------------------------------------------------------------

    def begin(self) -> None:
        self.sent += 1
        self.in_flight += 1

    def complete(
        self, stats: EndpointStats, status: int, ok: bool, intended: float, sent: float, done: float
    ) -> None:
        self.in_flight -= 1
        latency = done - intended
        stats.latency.record(latency)
        stats.service_time.record(done - sent)
        self.overall.record(latency)
        stats.requests += 1
        statuses = stats.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if stats.series is not None:
            stats.series.observe(latency, status, ok)
        if not ok:
            stats.failures += 1

    def lag(self, seconds: float) -> None:
        self.lag_samples += 1
        self.schedule_lag.record(seconds)

    def drop(self, stats: EndpointStats) -> None:
        stats.dropped += 1
        if stats.series is not None:
            stats.series.dropped += 1

    # -- reading ----------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Mark the end of the load (the first call wins: settle and verify are not load time)."""
        if self.finished is None:
            self.finished = time.perf_counter()

    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def progress(self) -> dict[str, float]:
        completed = sum(stats.requests for stats in self.endpoints.values())
        failures = sum(stats.failures for stats in self.endpoints.values())
        dropped = sum(stats.dropped for stats in self.endpoints.values())
        elapsed = self.elapsed()
        p95 = self.overall.settled().get_value_at_percentile(95.0) / MICROS if completed else 0.0
        return {
            "elapsed": elapsed,
            "sent": self.sent,
            "completed": completed,
            "rate": completed / elapsed if elapsed > 0 else 0.0,
            "p95": p95,
            "failures": failures,
            "dropped": dropped,
            "in_flight": self.in_flight,
        }

    def to_raw(self) -> dict[str, Any]:
        """Everything needed to merge with other processes' results, JSON-serialisable."""
        return {
            "elapsed": self.elapsed(),
            "lag_samples": self.lag_samples,
            "schedule_lag": self.schedule_lag.settled().encode().decode("ascii"),
            "contention_rounds": self.contention_rounds,
            "stages": [
                {
                    "start": stage.start,
                    "target": stage.target,
                    "duration": stage.duration,
                    "requests": stage.requests,
                    "failures": stage.failures,
                    "dropped": stage.dropped,
                    "latency": stage.latency.settled().encode().decode("ascii"),
                }
                for stage in self.stages
            ],
            "endpoints": {
                name: {
                    "requests": stats.requests,
                    "failures": stats.failures,
                    "dropped": stats.dropped,
                    "statuses": {str(code): count for code, count in stats.statuses.items()},
                    "latency": stats.latency.settled().encode().decode("ascii"),
                    "service_time": stats.service_time.settled().encode().decode("ascii"),
                }
                for name, stats in self.endpoints.items()
            },
        }


@dataclass
class MergedEndpoint:
    requests: int = 0
    failures: int = 0
    dropped: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latency: HdrHistogram = field(default_factory=new_histogram)
    service_time: HdrHistogram = field(default_factory=new_histogram)


def _decode(encoded: str) -> HdrHistogram:
    histogram = new_histogram()
    if encoded:
        histogram.add(HdrHistogram.decode(encoded.encode("ascii")))
    return histogram


def merge_raw(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact merge of several processes' raw results (histograms are added, not averaged)."""
    endpoints: dict[str, MergedEndpoint] = {}
    lag = new_histogram()
    lag_samples = 0
    elapsed = 0.0
    rounds: list[dict[str, Any]] = []
    stages: list[StageStats] = []
    for part in parts:
        for index, raw_stage in enumerate(part.get("stages", [])):
            if index >= len(stages):
                stages.append(StageStats(0.0, raw_stage["duration"]))
            stage = stages[index]
            stage.target += raw_stage["target"]
            stage.start += raw_stage.get("start", 0.0)
            stage.requests += raw_stage["requests"]
            stage.failures += raw_stage["failures"]
            stage.dropped += raw_stage["dropped"]
            stage.latency.settled().add(_decode(raw_stage["latency"]))
        elapsed = max(elapsed, float(part.get("elapsed", 0.0)))
        lag_samples += int(part.get("lag_samples", 0))
        lag.add(_decode(part.get("schedule_lag", "")))
        rounds.extend(part.get("contention_rounds", []))
        for name, raw in part.get("endpoints", {}).items():
            merged = endpoints.setdefault(name, MergedEndpoint())
            merged.requests += raw["requests"]
            merged.failures += raw["failures"]
            merged.dropped += raw["dropped"]
            for code, count in raw["statuses"].items():
                merged.statuses[code] = merged.statuses.get(code, 0) + count
            merged.latency.add(_decode(raw["latency"]))
            merged.service_time.add(_decode(raw["service_time"]))
    return {
        "elapsed": elapsed,
        "lag": lag,
        "lag_samples": lag_samples,
        "endpoints": endpoints,
        "contention_rounds": rounds,
        "stages": stages,
    }


def _latency_block(histogram: HdrHistogram, count: int) -> dict[str, float]:
    if count == 0 or histogram.get_total_count() == 0:
        return {"p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    block = {f"p{int(p)}": histogram.get_value_at_percentile(p) / MICROS for p in PERCENTILES}
    block["max"] = histogram.get_max_value() / MICROS
    return block


def summarize(
    parts: list[dict[str, Any]],
    scenario_name: str,
    processes: int,
    break_p95: float | None = None,
    break_error_rate: float | None = None,
) -> dict[str, Any]:
    """The run's result: per-endpoint and total counts, exact percentiles, rates and schedule lag."""
    merged = merge_raw(parts)
    elapsed = merged["elapsed"] or 1e-9
    total = MergedEndpoint()
    per_endpoint = {}
    for name, data in sorted(merged["endpoints"].items()):
        total.requests += data.requests
        total.failures += data.failures
        total.dropped += data.dropped
        total.latency.add(data.latency)
        total.service_time.add(data.service_time)
        for code, count in data.statuses.items():
            total.statuses[code] = total.statuses.get(code, 0) + count
        per_endpoint[name] = _block(data, elapsed)
    lag = merged["lag"]
    rounds = merged["contention_rounds"]
    summary: dict[str, Any] = {
        "scenario": scenario_name,
        "processes": processes,
        "elapsed_seconds": elapsed,
        "total": _block(total, elapsed),
        "endpoints": per_endpoint,
        "schedule_lag": {
            "samples": merged["lag_samples"],
            **_latency_block(lag, merged["lag_samples"]),
        },
    }
    if merged["stages"]:
        stages = []
        knee = None
        for index, stage in enumerate(merged["stages"]):
            reason = stage.verdict(break_p95, break_error_rate)
            attempted = stage.requests + stage.dropped
            stages.append(
                {
                    "stage": index,
                    "start_rate": stage.start,
                    "target_rate": stage.target,
                    "planned_rate": (stage.start + stage.target) / 2.0,
                    "achieved_rate": stage.requests / stage.duration if stage.duration else 0.0,
                    "requests": stage.requests,
                    "failures": stage.failures,
                    "dropped": stage.dropped,
                    "error_rate": (stage.failures + stage.dropped) / attempted if attempted else 0.0,
                    **_latency_block(stage.latency.settled(), stage.requests),
                    "broken": reason,
                }
            )
            if reason and knee is None and (break_p95 is not None or break_error_rate is not None):
                knee = {
                    "stage": index,
                    "target_rate": stage.target,
                    "reason": reason,
                    "last_good_rate": stages[index - 1]["target_rate"] if index else None,
                }
        summary["stages"] = stages
        summary["breaking_point"] = knee
    if rounds:
        summary["contention"] = {
            "rounds": len(rounds),
            "rounds_failed": sum(1 for item in rounds if not item["ok"]),
            "winners": [item["winners"] for item in rounds],
            "losers": [item["losers"] for item in rounds],
            "others": [item["others"] for item in rounds],
        }
    return summary


def _block(data: MergedEndpoint, elapsed: float) -> dict[str, Any]:
    attempted = data.requests + data.dropped
    return {
        "requests": data.requests,
        "failures": data.failures,
        "dropped": data.dropped,
        "error_rate": data.failures / data.requests if data.requests else 0.0,
        "dropped_ratio": data.dropped / attempted if attempted else 0.0,
        "throughput": data.requests / elapsed,
        "throughput_per_min": data.requests * 60.0 / elapsed,
        "statuses": dict(sorted(data.statuses.items())),
        "latency": _latency_block(data.latency, data.requests),
        "service_time": _latency_block(data.service_time, data.requests),
    }
