"""Batched recording must give exactly what direct recording gives: HdrHistogram and Prometheus series."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry

from loadgen.metrics import LoadgenMetrics
from loadgen.stats import HIGHEST_MICROS, LatencyHistogram, Recorder, new_histogram


def test_latency_histogram_equals_direct_hdr_recording() -> None:
    rng = random.Random(14)
    batched, direct = LatencyHistogram(), new_histogram()
    values = [rng.lognormvariate(-6, 2.5) for _ in range(50_000)] + [0.0, -0.001, 1e-7, 5000.0, 2.0]
    for seconds in values:
        batched.record(seconds)
        direct.record_value(min(max(int(seconds * 1_000_000), 1), HIGHEST_MICROS))
        if rng.random() < 0.001:
            batched.settled()  # reading in the middle of a run changes nothing
    settled = batched.settled()
    assert settled.encode() == direct.encode()
    for percentile in (50.0, 95.0, 99.0, 99.99):
        assert settled.get_value_at_percentile(percentile) == direct.get_value_at_percentile(percentile)
    assert settled.get_max_value() == direct.get_max_value()


def test_request_series_count_at_the_bucket_edges_and_by_status_class() -> None:
    registry = CollectorRegistry()
    metrics = LoadgenMetrics(registry)
    recorder = Recorder(metrics)
    stats = recorder.endpoint("create_ticket")
    for latency, status, ok in [
        (2.0, 201, True),  # exactly on RNF-02's edge: inside le="2.0"
        (2.0000001, 201, True),
        (1.5, 409, False),
        (0.001, 0, False),  # no answer: status class error
        (40.0, 503, False),  # above the last finite bucket
    ]:
        recorder.begin()
        recorder.complete(stats, status, ok, 100.0, 100.0, 100.0 + latency)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"endpoint": "create_ticket", **labels})

    bucket = "loadgen_request_duration_seconds_bucket"
    assert sample(bucket, le="1.5") == 2
    assert sample(bucket, le="2.0") == 3
    assert sample(bucket, le="3.0") == 4
    assert sample(bucket, le="30.0") == 4
    assert sample(bucket, le="+Inf") == sample("loadgen_request_duration_seconds_count") == 5
    assert abs(sample("loadgen_request_duration_seconds_sum") - 45.5010001) < 1e-6  # type: ignore[operator]
    assert sample("loadgen_requests_total", status_class="2xx") == 2
    assert sample("loadgen_requests_total", status_class="4xx") == 1
    assert sample("loadgen_requests_total", status_class="error") == 1
    assert sample("loadgen_request_failures_total", status_class="2xx") == 0
    assert sample("loadgen_request_failures_total", status_class="5xx") == 1
    assert registry.get_sample_value("loadgen_requests_in_flight") == 0
    recorder.begin()
    assert registry.get_sample_value("loadgen_requests_in_flight") == 1
    recorder.drop(stats)
    assert sample("loadgen_arrivals_dropped_total") == 1
