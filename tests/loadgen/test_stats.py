"""The recorder, the exact merge of worker processes' results and the summary's figures, without a network.

Latencies here are whole microseconds under 2.048 ms, which the HdrHistogram (3 significant digits) stores
exactly, so every percentile below is an exact figure.
"""

from __future__ import annotations

import pytest
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry

from loadgen.metrics import LoadgenMetrics
from loadgen.stats import (
    HIGHEST_MICROS,
    EndpointStats,
    LatencyHistogram,
    MergedEndpoint,
    Recorder,
    StageStats,
    _decode,
    _latency_block,
    merge_raw,
    new_histogram,
    summarize,
)

ZERO_LATENCY = {"p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}


def histogram_of(*micros: int) -> HdrHistogram:
    histogram = new_histogram()
    for value in micros:
        histogram.record_value(value)
    return histogram


def encoded(*micros: int) -> str:
    return histogram_of(*micros).encode().decode("ascii")


def values(histogram: HdrHistogram | LatencyHistogram) -> list[int]:
    """Every recorded value, lowest first, as often as it was recorded."""
    if isinstance(histogram, LatencyHistogram):
        histogram = histogram.settled()
    out = []
    for item in histogram.get_recorded_iterator():
        out += [item.value_iterated_to] * item.count_at_value_iterated_to
    return out


def sample(metrics: LoadgenMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


# -- histograms --------------------------------------------------------------------------------------------


def test_histogram_range_and_precision() -> None:
    histogram = new_histogram()
    assert histogram.lowest_trackable_value == 1
    assert histogram.highest_trackable_value >= HIGHEST_MICROS == 3_600_000_000
    histogram.record_value(1_234_567)
    assert histogram.get_max_value() == 1_234_943  # 3 significant digits, not 4
    assert histogram.get_min_value() == 1_233_920


def test_record_clamps_to_the_histogram_range() -> None:
    latency = LatencyHistogram()
    latency.record(0.0015)
    latency.record(0.0)
    latency.record(-3.0)
    latency.record(0.0000019)  # 1.9 µs truncates to 1
    latency.record(7200.0)
    histogram = latency.settled()
    assert values(histogram)[:4] == [1, 1, 1, 1500]
    assert histogram.get_total_count() == 5
    assert histogram.get_max_value() >= HIGHEST_MICROS
    assert histogram.get_max_value() < 7200 * 1_000_000 * 0.999


def test_decode_of_nothing_is_an_empty_histogram() -> None:
    assert _decode("").get_total_count() == 0
    assert values(_decode(encoded(5, 7, 7))) == [5, 7, 7]


def test_latency_block_exact_percentiles_and_empty_cases() -> None:
    histogram = histogram_of(*range(1, 101))  # 1..100 µs
    assert _latency_block(histogram, 100) == {
        "p50": 50 / 1e6,
        "p90": 90 / 1e6,
        "p95": 95 / 1e6,
        "p99": 99 / 1e6,
        "max": 100 / 1e6,
    }
    assert _latency_block(histogram, 0) == ZERO_LATENCY
    assert _latency_block(new_histogram(), 3) == ZERO_LATENCY


# -- stages ------------------------------------------------------------------------------------------------


def test_stage_record_counts_and_times() -> None:
    stage = StageStats(target=20.0, duration=5.0)
    assert (stage.start, stage.target, stage.duration) == (0.0, 20.0, 5.0)
    assert (stage.requests, stage.failures, stage.dropped) == (0, 0, 0)
    stage.record(0.001, True)
    stage.record(0.002, False)
    stage.record(0.0005, False)
    assert (stage.requests, stage.failures) == (3, 2)
    assert values(stage.latency) == [500, 1000, 2000]
    assert StageStats(5.0, 1.0, start=2.0).start == 2.0


def stage_with(latencies_us: list[int], failures: int = 0, dropped: int = 0) -> StageStats:
    stage = StageStats(10.0, 1.0)
    for index, micros in enumerate(latencies_us):
        stage.record(micros / 1e6, index >= failures)
    stage.dropped = dropped
    return stage


def test_stage_verdict_p95_then_error_rate_boundaries_included() -> None:
    stage = stage_with(list(range(1, 101)))  # p95 = 95 µs
    assert stage.verdict(None, None) is None
    assert stage.verdict(0.000095, None) is None  # equal to the limit: holds
    assert stage.verdict(0.000094, None) == "p95 0.000s > 9.4e-05s"
    slow = stage_with([1500] * 20)
    assert slow.verdict(0.001, 0.0) == "p95 0.002s > 0.001s"  # p95 is checked first
    failing = stage_with([100] * 8, failures=1, dropped=2)  # (1 + 2) / (8 + 2) = 0.3
    assert failing.verdict(None, 0.3) is None
    assert failing.verdict(None, 0.25) == "error rate 0.300 > 0.25"
    assert failing.verdict(1.0, 0.25) == "error rate 0.300 > 0.25"


def test_stage_without_answers() -> None:
    assert StageStats(10.0, 1.0).verdict(0.1, 0.1) is None
    dropped_only = StageStats(10.0, 1.0)
    dropped_only.dropped = 4
    assert dropped_only.verdict(None, None) == "no answers"


# -- the recorder ------------------------------------------------------------------------------------------


def test_endpoint_stats_hold_their_metric_children() -> None:
    metrics = LoadgenMetrics(CollectorRegistry())
    stats = EndpointStats("health", metrics)
    assert stats.name == "health"
    assert (stats.requests, stats.failures, stats.dropped, stats.statuses) == (0, 0, 0, {})
    assert stats.series is metrics.endpoints["health"]
    assert sorted(stats.series.requests) == ["2xx", "3xx", "4xx", "5xx", "error"]
    assert sorted(stats.series.failures) == ["2xx", "3xx", "4xx", "5xx", "error"]
    plain = EndpointStats("health", None)
    assert plain.series is None


def test_recorder_counts_in_flight_sent_and_completions_in_metrics() -> None:
    metrics = LoadgenMetrics(CollectorRegistry())
    recorder = Recorder(metrics)
    create = recorder.endpoint("create_ticket")
    assert recorder.endpoint("create_ticket") is create
    for _ in range(3):
        recorder.begin()
    assert (recorder.sent, recorder.in_flight) == (3, 3)
    assert sample(metrics, "loadgen_requests_in_flight") == 3.0
    recorder.complete(create, 201, True, intended=0.0, sent=0.0005, done=0.0015)
    recorder.complete(create, 409, False, intended=0.0, sent=0.001, done=0.002)
    assert (recorder.sent, recorder.in_flight) == (3, 1)
    assert sample(metrics, "loadgen_requests_in_flight") == 1.0
    assert create.requests == 2 and create.failures == 1
    assert create.statuses == {201: 1, 409: 1}
    assert values(create.latency) == [1500, 2000]  # from the intended time
    assert values(create.service_time) == [1000, 1000]  # from the actual send
    assert values(recorder.overall) == [1500, 2000]
    endpoint = {"endpoint": "create_ticket"}
    assert sample(metrics, "loadgen_requests_total", **endpoint, status_class="2xx") == 1.0
    assert sample(metrics, "loadgen_requests_total", **endpoint, status_class="4xx") == 1.0
    assert sample(metrics, "loadgen_request_failures_total", **endpoint, status_class="4xx") == 1.0
    assert sample(metrics, "loadgen_request_failures_total", **endpoint, status_class="2xx") == 0.0
    assert sample(metrics, "loadgen_request_duration_seconds_count", **endpoint) == 2.0
    assert sample(metrics, "loadgen_request_duration_seconds_sum", **endpoint) == pytest.approx(0.0035)
    assert sample(metrics, "loadgen_request_duration_seconds_bucket", **endpoint, le="0.005") == 2.0


def test_recorder_failed_request_without_an_answer() -> None:
    metrics = LoadgenMetrics(CollectorRegistry())
    recorder = Recorder(metrics)
    stats = recorder.endpoint("health")
    recorder.begin()
    recorder.complete(stats, 0, False, 0.0, 0.0, 0.001)
    assert stats.statuses == {0: 1} and stats.failures == 1
    labels = {"endpoint": "health", "status_class": "error"}
    assert sample(metrics, "loadgen_requests_total", **labels) == 1.0
    assert sample(metrics, "loadgen_request_failures_total", **labels) == 1.0


def test_recorder_without_metrics_still_counts() -> None:
    recorder = Recorder()
    stats = recorder.endpoint("health")
    recorder.begin()
    recorder.begin()
    recorder.begin()
    recorder.begin()
    recorder.complete(stats, 200, True, 0.0, 0.0, 0.001)
    recorder.complete(stats, 503, False, 0.0, 0.0, 0.001)
    recorder.complete(stats, 503, False, 0.0, 0.0, 0.001)
    recorder.complete(stats, 200, True, 0.0, 0.0, 0.001)
    recorder.drop(stats)
    assert (recorder.sent, recorder.in_flight) == (4, 0)
    assert (stats.requests, stats.failures, stats.dropped) == (4, 2, 1)
    assert stats.statuses == {200: 2, 503: 2}


def test_latency_counts_from_the_intended_time_service_time_from_the_send() -> None:
    recorder = Recorder()
    stats = recorder.endpoint("health")
    recorder.begin()
    # binary fractions, so the differences are exact: sent 488.28125 µs and done 976.5625 µs after intended
    recorder.complete(stats, 200, True, intended=1.0, sent=1.0 + 2**-11, done=1.0 + 2**-10)
    assert values(stats.latency) == [976]
    assert values(stats.service_time) == [488]
    assert values(recorder.overall) == [976]


def test_drops_and_schedule_lag() -> None:
    metrics = LoadgenMetrics(CollectorRegistry())
    recorder = Recorder(metrics)
    stats = recorder.endpoint("health")
    recorder.drop(stats)
    recorder.drop(stats)
    assert stats.dropped == 2
    assert sample(metrics, "loadgen_arrivals_dropped_total", endpoint="health") == 2.0
    recorder.lag(0.0012)
    recorder.lag(-0.5)  # ahead of schedule counts as no lag
    assert recorder.lag_samples == 2
    assert values(recorder.schedule_lag) == [1, 1200]


def test_stop_keeps_the_first_end_and_elapsed_uses_it() -> None:
    recorder = Recorder()
    recorder.started = 100.0
    assert recorder.finished is None
    recorder.stop()
    first = recorder.finished
    assert first is not None
    recorder.stop()
    assert recorder.finished == first
    recorder.finished = 112.5
    assert recorder.elapsed() == 12.5


def test_elapsed_runs_on_until_stopped() -> None:
    recorder = Recorder()
    first = recorder.elapsed()
    assert 0 <= first < 5
    assert recorder.elapsed() >= first


def test_progress_figures() -> None:
    recorder = Recorder()
    recorder.started, recorder.finished = 10.0, 14.0
    assert recorder.progress() == {
        "elapsed": 4.0,
        "sent": 0,
        "completed": 0,
        "rate": 0.0,
        "p95": 0.0,
        "failures": 0,
        "dropped": 0,
        "in_flight": 0,
    }
    health, create = recorder.endpoint("health"), recorder.endpoint("create_ticket")
    for index in range(10):
        recorder.begin()
        recorder.complete(health, 200, index != 0, 0.0, 0.0, (index + 1) / 1e6)
    recorder.begin()
    recorder.begin()
    recorder.complete(create, 500, False, 0.0, 0.0, 0.000011)
    recorder.drop(create)
    assert recorder.progress() == {
        "elapsed": 4.0,
        "sent": 12,
        "completed": 11,
        "rate": 2.75,
        "p95": 10 / 1e6,  # HdrHistogram: the 10th of 11 values (95 % of 11, rounded)
        "failures": 2,
        "dropped": 1,
        "in_flight": 1,
    }
    recorder.finished = recorder.started + 0.5
    assert recorder.progress()["rate"] == 22.0
    recorder.finished = recorder.started  # no time elapsed: no rate rather than a division by zero
    assert recorder.progress()["rate"] == 0.0


def test_to_raw_has_every_figure_a_merge_needs() -> None:
    recorder = Recorder()
    recorder.started, recorder.finished = 0.0, 2.0
    stats = recorder.endpoint("health")
    recorder.begin()
    recorder.complete(stats, 200, True, 0.0, 0.0005, 0.001)
    recorder.drop(stats)
    recorder.lag(0.000003)
    stage = StageStats(8.0, 2.0, start=4.0)
    stage.record(0.001, False)
    stage.dropped = 1
    recorder.stages.append(stage)
    recorder.contention_rounds.append({"round": 0, "winners": 1, "losers": 2, "others": 0, "ok": True})
    raw = recorder.to_raw()
    assert values(_decode(raw.pop("schedule_lag"))) == [3]
    raw_stage = raw["stages"][0]
    assert values(_decode(raw_stage.pop("latency"))) == [1000]
    raw_endpoint = raw["endpoints"]["health"]
    assert values(_decode(raw_endpoint.pop("latency"))) == [1000]
    assert values(_decode(raw_endpoint.pop("service_time"))) == [500]
    assert raw == {
        "elapsed": 2.0,
        "lag_samples": 1,
        "contention_rounds": [{"round": 0, "winners": 1, "losers": 2, "others": 0, "ok": True}],
        "stages": [
            {"start": 4.0, "target": 8.0, "duration": 2.0, "requests": 1, "failures": 1, "dropped": 1}
        ],
        "endpoints": {"health": {"requests": 1, "failures": 0, "dropped": 1, "statuses": {"200": 1}}},
    }


# -- merging processes and the summary ---------------------------------------------------------------------


def part(
    elapsed: float,
    endpoints: dict,
    stages: list | None = None,
    lag: tuple[int, ...] = (),
    rounds: list | None = None,
) -> dict:
    return {
        "elapsed": elapsed,
        "lag_samples": len(lag),
        "schedule_lag": encoded(*lag),
        "contention_rounds": rounds or [],
        "stages": stages or [],
        "endpoints": endpoints,
    }


def endpoint(
    requests: int, failures: int, dropped: int, statuses: dict, latency: list, service: list
) -> dict:
    return {
        "requests": requests,
        "failures": failures,
        "dropped": dropped,
        "statuses": statuses,
        "latency": encoded(*latency),
        "service_time": encoded(*service),
    }


def raw_stage(start: float, target: float, requests: int, failures: int, dropped: int, latency: list) -> dict:
    return {
        "start": start,
        "target": target,
        "duration": 2.0,
        "requests": requests,
        "failures": failures,
        "dropped": dropped,
        "latency": encoded(*latency),
    }


def test_merge_adds_counts_histograms_stage_rates_and_statuses() -> None:
    first = part(
        3.0,
        {"health": endpoint(2, 1, 1, {"200": 1, "503": 1}, [10, 20], [5, 6])},
        stages=[raw_stage(2.0, 5.0, 2, 1, 1, [10, 20]), raw_stage(5.0, 10.0, 0, 0, 3, [])],
        lag=(7,),
        rounds=[{"ok": True}],
    )
    second = part(
        4.0,
        {
            "health": endpoint(1, 0, 2, {"200": 1}, [30], [7]),
            "create_ticket": endpoint(1, 0, 0, {"201": 1}, [40], [8]),
        },
        stages=[raw_stage(1.0, 5.0, 1, 0, 1, [30])],
        lag=(8, 9),
        rounds=[{"ok": False}],
    )
    merged = merge_raw([first, second])
    assert merged["elapsed"] == 4.0  # the processes ran side by side: the longest, not the sum
    assert merged["lag_samples"] == 3
    assert values(merged["lag"]) == [7, 8, 9]
    assert merged["contention_rounds"] == [{"ok": True}, {"ok": False}]
    health = merged["endpoints"]["health"]
    assert (health.requests, health.failures, health.dropped) == (3, 1, 3)
    assert health.statuses == {"200": 2, "503": 1}
    assert values(health.latency) == [10, 20, 30]
    assert values(health.service_time) == [5, 6, 7]
    assert merged["endpoints"]["create_ticket"].statuses == {"201": 1}
    stage0, stage1 = merged["stages"]
    # each process runs its share of the rate: start and target rates add up
    assert (stage0.start, stage0.target, stage0.duration) == (3.0, 10.0, 2.0)
    assert (stage0.requests, stage0.failures, stage0.dropped) == (3, 1, 2)
    assert values(stage0.latency) == [10, 20, 30]
    assert (stage1.start, stage1.target, stage1.requests, stage1.dropped) == (5.0, 10.0, 0, 3)


def test_merge_of_old_results_without_optional_fields() -> None:
    legacy = {
        "stages": [
            {"target": 4.0, "duration": 1.0, "requests": 1, "failures": 0, "dropped": 0, "latency": ""}
        ],
        "endpoints": {},
    }
    merged = merge_raw([legacy])
    assert merged["elapsed"] == 0.0 and merged["lag_samples"] == 0 and merged["contention_rounds"] == []
    assert merged["stages"][0].start == 0.0 and merged["stages"][0].target == 4.0
    assert merge_raw([])["stages"] == [] and merge_raw([])["endpoints"] == {}
    bare = merge_raw([{}])
    assert bare["stages"] == [] and bare["endpoints"] == {} and bare["lag"].get_total_count() == 0


def test_summary_totals_rates_and_percentiles() -> None:
    parts = [
        part(
            2.0,
            {
                "health": endpoint(4, 1, 1, {"200": 3, "503": 1}, [10, 20, 30, 40], [1, 2, 3, 4]),
                "create_ticket": endpoint(2, 1, 1, {"201": 1, "503": 1}, [50, 60], [5, 6]),
                "get_ticket": endpoint(1, 0, 0, {"200": 1}, [70], [7]),
            },
            lag=(3, 5),
        )
    ]
    summary = summarize(parts, "PERF-X", processes=1)
    assert summary == {
        "scenario": "PERF-X",
        "processes": 1,
        "elapsed_seconds": 2.0,
        "total": {
            "requests": 7,
            "failures": 2,
            "dropped": 2,
            "error_rate": 2 / 7,
            "dropped_ratio": 2 / 9,
            "throughput": 3.5,
            "throughput_per_min": 210.0,
            "statuses": {"200": 4, "201": 1, "503": 2},
            "latency": {"p50": 40e-6, "p90": 60e-6, "p95": 70e-6, "p99": 70e-6, "max": 70e-6},
            "service_time": {"p50": 4e-6, "p90": 6e-6, "p95": 7e-6, "p99": 7e-6, "max": 7e-6},
        },
        "endpoints": {
            "create_ticket": {
                "requests": 2,
                "failures": 1,
                "dropped": 1,
                "error_rate": 0.5,
                "dropped_ratio": 1 / 3,
                "throughput": 1.0,
                "throughput_per_min": 60.0,
                "statuses": {"201": 1, "503": 1},
                "latency": {"p50": 50e-6, "p90": 60e-6, "p95": 60e-6, "p99": 60e-6, "max": 60e-6},
                "service_time": {"p50": 5e-6, "p90": 6e-6, "p95": 6e-6, "p99": 6e-6, "max": 6e-6},
            },
            "get_ticket": {
                "requests": 1,
                "failures": 0,
                "dropped": 0,
                "error_rate": 0.0,
                "dropped_ratio": 0.0,
                "throughput": 0.5,
                "throughput_per_min": 30.0,
                "statuses": {"200": 1},
                "latency": {"p50": 70e-6, "p90": 70e-6, "p95": 70e-6, "p99": 70e-6, "max": 70e-6},
                "service_time": {"p50": 7e-6, "p90": 7e-6, "p95": 7e-6, "p99": 7e-6, "max": 7e-6},
            },
            "health": {
                "requests": 4,
                "failures": 1,
                "dropped": 1,
                "error_rate": 0.25,
                "dropped_ratio": 0.2,
                "throughput": 2.0,
                "throughput_per_min": 120.0,
                "statuses": {"200": 3, "503": 1},
                "latency": {"p50": 20e-6, "p90": 40e-6, "p95": 40e-6, "p99": 40e-6, "max": 40e-6},
                "service_time": {"p50": 2e-6, "p90": 4e-6, "p95": 4e-6, "p99": 4e-6, "max": 4e-6},
            },
        },
        "schedule_lag": {"samples": 2, "p50": 3e-6, "p90": 5e-6, "p95": 5e-6, "p99": 5e-6, "max": 5e-6},
    }
    assert list(summary["endpoints"]) == ["create_ticket", "get_ticket", "health"]
    assert list(summary["total"]["statuses"]) == ["200", "201", "503"]


def test_summary_of_nothing_divides_by_nothing() -> None:
    summary = summarize([part(0.0, {"health": endpoint(0, 0, 0, {}, [], [])})], "idle", processes=2)
    assert summary["elapsed_seconds"] == 1e-9
    assert summary["processes"] == 2
    assert summary["total"] == {
        "requests": 0,
        "failures": 0,
        "dropped": 0,
        "error_rate": 0.0,
        "dropped_ratio": 0.0,
        "throughput": 0.0,
        "throughput_per_min": 0.0,
        "statuses": {},
        "latency": ZERO_LATENCY,
        "service_time": ZERO_LATENCY,
    }
    assert summary["schedule_lag"] == {"samples": 0, **ZERO_LATENCY}
    assert "stages" not in summary and "contention" not in summary and "breaking_point" not in summary


def ramp_parts() -> list[dict]:
    stages = [
        raw_stage(0.0, 10.0, 10, 0, 0, [100] * 10),  # holds
        raw_stage(10.0, 20.0, 8, 1, 2, [100] * 8),  # error rate (1 + 2) / 10 = 0.3
        raw_stage(20.0, 30.0, 4, 0, 0, [1500] * 4),  # p95 1.5 ms
    ]
    return [part(6.0, {"health": endpoint(22, 1, 2, {"200": 21, "500": 1}, [100], [100])}, stages=stages)]


def test_summary_stage_rates_and_the_breaking_point() -> None:
    summary = summarize(ramp_parts(), "ramp", 1, break_p95=0.001, break_error_rate=0.25)
    fast = {"p50": 100e-6, "p90": 100e-6, "p95": 100e-6, "p99": 100e-6, "max": 100e-6}
    slow = {"p50": 1500e-6, "p90": 1500e-6, "p95": 1500e-6, "p99": 1500e-6, "max": 1500e-6}
    assert summary["stages"] == [
        {
            "stage": 0,
            "start_rate": 0.0,
            "target_rate": 10.0,
            "planned_rate": 5.0,
            "achieved_rate": 5.0,
            "requests": 10,
            "failures": 0,
            "dropped": 0,
            "error_rate": 0.0,
            **fast,
            "broken": None,
        },
        {
            "stage": 1,
            "start_rate": 10.0,
            "target_rate": 20.0,
            "planned_rate": 15.0,
            "achieved_rate": 4.0,
            "requests": 8,
            "failures": 1,
            "dropped": 2,
            "error_rate": 0.3,
            **fast,
            "broken": "error rate 0.300 > 0.25",
        },
        {
            "stage": 2,
            "start_rate": 20.0,
            "target_rate": 30.0,
            "planned_rate": 25.0,
            "achieved_rate": 2.0,
            "requests": 4,
            "failures": 0,
            "dropped": 0,
            "error_rate": 0.0,
            **slow,
            "broken": "p95 0.002s > 0.001s",
        },
    ]
    assert summary["breaking_point"] == {
        "stage": 1,
        "target_rate": 20.0,
        "reason": "error rate 0.300 > 0.25",
        "last_good_rate": 10.0,
    }


def test_breaking_point_in_the_first_stage_has_no_last_good_rate() -> None:
    summary = summarize(ramp_parts(), "ramp", 1, break_p95=0.00005)
    assert summary["breaking_point"] == {
        "stage": 0,
        "target_rate": 10.0,
        "reason": "p95 0.000s > 5e-05s",
        "last_good_rate": None,
    }
    # the knee is the first broken stage, not a later one
    assert [stage["broken"] is not None for stage in summary["stages"]] == [True, True, True]


def test_without_break_conditions_a_ramp_has_no_breaking_point() -> None:
    summary = summarize(ramp_parts(), "ramp", 1)
    assert summary["breaking_point"] is None
    assert summary["stages"][1]["broken"] is None
    only_error_rate = summarize(ramp_parts(), "ramp", 1, break_error_rate=0.25)
    assert only_error_rate["breaking_point"]["stage"] == 1


def test_stage_with_no_attempts_and_no_duration() -> None:
    stage = {**raw_stage(0.0, 0.0, 0, 0, 0, []), "duration": 0.0}
    summary = summarize([part(1.0, {}, stages=[stage])], "empty", 1, break_p95=1.0)
    assert summary["stages"][0] == {
        "stage": 0,
        "start_rate": 0.0,
        "target_rate": 0.0,
        "planned_rate": 0.0,
        "achieved_rate": 0.0,
        "requests": 0,
        "failures": 0,
        "dropped": 0,
        "error_rate": 0.0,
        **ZERO_LATENCY,
        "broken": None,
    }
    assert summary["breaking_point"] is None


def test_summary_contention_block() -> None:
    rounds = [
        {"round": 0, "winners": 1, "losers": 9, "others": 0, "ok": True},
        {"round": 1, "winners": 2, "losers": 7, "others": 1, "ok": False},
        {"round": 2, "winners": 0, "losers": 10, "others": 0, "ok": False},
    ]
    summary = summarize([part(1.0, {}, rounds=rounds)], "race", 1)
    assert summary["contention"] == {
        "rounds": 3,
        "rounds_failed": 2,
        "winners": [1, 2, 0],
        "losers": [9, 7, 10],
        "others": [0, 1, 0],
    }


def test_merged_endpoint_defaults() -> None:
    merged = MergedEndpoint()
    assert (merged.requests, merged.failures, merged.dropped, merged.statuses) == (0, 0, 0, {})
    assert merged.latency.get_total_count() == 0 and merged.service_time.get_total_count() == 0
    assert MergedEndpoint().statuses is not merged.statuses
