"""The workload models against a real local HTTP server: counts, rates, drops, latency correction."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from loadgen.config import Stage
from loadgen.engine import burst_schedule, constant_schedule, ramping_schedule
from loadgen.metrics import LoadgenMetrics
from loadgen.runner import Experiment


async def run(scenario, metrics=None):
    experiment = Experiment(scenario, metrics, quiet=True)
    return await experiment.run()


def test_schedules_have_the_planned_counts_and_spacing() -> None:
    constant = list(constant_schedule(50.0, 2.0))
    assert len(constant) == 100
    assert constant[1] - constant[0] == 0.02
    # linear ramp 0 → 10/s over 10 s: 50 arrivals, denser at the end
    ramp = list(ramping_schedule(0.0, (Stage(10.0, 10.0),)))
    assert len(ramp) == 50
    assert ramp[1] - ramp[0] > ramp[-1] - ramp[-2]
    assert all(0 <= t <= 10.0 for t in ramp)
    # two stages: 5/s flat for 2 s (10) then 5 → 15/s over 2 s (20)
    two = list(ramping_schedule(5.0, (Stage(2.0, 5.0), Stage(2.0, 15.0))))
    assert len(two) == 30
    assert sum(1 for t in two if t < 2.0) == 10
    assert list(burst_schedule(5, 0.0)) == [0.0] * 5


async def test_closed_model_stops_at_the_request_count(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 30s
        max_requests: 100
        workload: {{model: closed, vus: 5}}
        requests: [create_ticket]
        """
    )
    result = await run(scenario)
    assert result["exit_code"] == 0
    assert result["load"]["total"]["requests"] == 100
    assert service.state.requests == {"create_ticket": 100}
    assert result["load"]["endpoints"]["create_ticket"]["statuses"] == {"201": 100}


async def test_closed_model_think_time_paces_each_user(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 1s
        workload: {{model: closed, vus: 4}}
        think_time: 100ms
        requests: [health]
        """
    )
    result = await run(scenario)
    total = result["load"]["total"]["requests"]
    # each user: request (~1 ms) + 100 ms think → about 10 per second; 4 users → ~40
    assert 28 <= total <= 44, total
    assert service.state.total() == total


async def test_open_model_hits_the_target_rate(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 2s
        workload: {{model: open, rate: 300/s, max_in_flight: 100}}
        requests: [health]
        """
    )
    result = await run(scenario)
    load = result["load"]
    assert load["total"]["requests"] == 600
    assert load["total"]["dropped"] == 0
    assert service.state.requests["health"] == 600
    assert 1.9 <= load["elapsed_seconds"] <= 2.5
    # arrivals reached the server at the planned pace, not in bunches
    arrivals = sorted(service.state.arrivals)
    assert 1.9 <= arrivals[-1] - arrivals[0] <= 2.2
    assert load["schedule_lag"]["samples"] == 600
    assert load["schedule_lag"]["p50"] < 0.01


async def test_dropped_arrivals_are_counted(service, make_scenario) -> None:
    service.state.delay = 0.1  # 2 in flight x 10/s each = 20/s capacity against 100/s offered
    registry = CollectorRegistry()
    metrics = LoadgenMetrics(registry)
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 2s
        workload: {{model: open, rate: 100/s, max_in_flight: 2, max_backlog: 0}}
        requests: [health]
        """
    )
    result = await run(scenario, metrics)
    total = result["load"]["total"]
    assert total["requests"] + total["dropped"] == 200
    assert total["dropped"] >= 120
    assert service.state.requests["health"] == total["requests"]
    assert (
        registry.get_sample_value("loadgen_arrivals_dropped_total", {"endpoint": "health"})
        == total["dropped"]
    )


async def test_latency_from_intended_time_shows_a_stall_the_naive_figure_hides(
    service, make_scenario
) -> None:
    """Coordinated omission: with 2 connections and a 0.5 s stall, ~100 arrivals wait behind it.

    Measured from when each request was actually sent (what a closed-loop tool reports), only the 2 stalled
    requests are slow, so the naive p99 stays in milliseconds. Measured from the intended send time, every
    arrival that queued behind the stall is slow, and p95/p99 show it.
    """
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 3s
        workload: {{model: open, rate: 200/s, max_in_flight: 2, max_backlog: 100000}}
        requests: [health]
        """
    )
    timer = threading.Timer(1.0, service.stall, (0.5,))
    timer.start()
    try:
        result = await run(scenario)
    finally:
        timer.cancel()
    total = result["load"]["total"]
    assert total["requests"] == 600
    assert total["dropped"] == 0
    corrected, naive = total["latency"], total["service_time"]
    assert corrected["p99"] >= 0.3, corrected
    assert corrected["p95"] >= 0.1, corrected
    assert naive["p99"] < 0.1, naive
    assert naive["max"] >= 0.4  # the stalled requests themselves
    assert corrected["p99"] > 5 * naive["p99"]


async def test_burst_sends_every_request_at_once(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        workload: {{model: burst, requests: 50, within: 0s}}
        requests: [create_ticket]
        """
    )
    result = await run(scenario)
    load = result["load"]
    assert load["total"]["requests"] == 50
    assert service.state.requests["create_ticket"] == 50
    # all 50 were dispatched from the same intended instant within a few ms
    assert load["schedule_lag"]["max"] < 0.05


async def test_contention_has_exactly_one_winner_per_round(service, make_scenario) -> None:
    service.state.create_delay = 0.01
    scenario = make_scenario(
        f"""
        target: {service.url}
        workload: {{model: contention, clients: 20, rounds: 3, round_interval: 100ms}}
        requests: [create_ticket]
        ticket: {{queues: {{CAJA: 1}}}}
        thresholds: [{{metric: p95, max: 1.5s}}]
        """
    )
    result = await run(scenario)
    contention = result["load"]["contention"]
    assert contention["winners"] == [1, 1, 1]
    assert contention["losers"] == [19, 19, 19]
    assert contention["rounds_failed"] == 0
    assert result["load"]["total"]["failures"] == 0  # 409 is an expected answer here
    assert result["exit_code"] == 0
    # three distinct identities, each created once
    assert len(service.state.active) == 3


async def test_contention_without_a_winner_fails_the_run(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        workload: {{model: contention, clients: 5, rounds: 1}}
        requests:
          - {{endpoint: health, expect: [200]}}
        """
    )
    result = await run(scenario)
    # every client "won" (200 ≠ 201 winner status): no round had exactly one winner
    assert result["load"]["contention"]["rounds_failed"] == 1
    assert result["exit_code"] == 99


async def test_breaking_point_reports_the_knee(service, make_scenario) -> None:
    service.state.delay = 0.05  # 4 in flight → ~80/s capacity
    scenario = make_scenario(
        f"""
        target: {service.url}
        workload:
          model: open
          start_rate: 20
          stages:
            - {{duration: 1s, target: 20}}
            - {{duration: 1s, target: 40}}
            - {{duration: 1s, target: 300}}
            - {{duration: 1s, target: 300}}
            - {{duration: 1s, target: 300}}
          max_in_flight: 4
          breaking_point: {{p95: 200ms, error_rate: 0.05, stop: true}}
        requests: [health]
        """
    )
    result = await run(scenario)
    load = result["load"]
    knee = load["breaking_point"]
    assert knee is not None
    assert knee["stage"] == 2
    assert knee["last_good_rate"] == 40
    assert load["stages"][0]["broken"] is None and load["stages"][1]["broken"] is None
    # stopped one stage after the knee instead of running all five
    assert load["stages"][4]["requests"] == 0


async def test_mix_of_user_classes_and_endpoints(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 1s
        workload: {{model: closed, vus: 6}}
        user_classes:
          - name: walk_in
            weight: 2
            think_time: 10ms
            requests:
              - {{endpoint: create_ticket, weight: 1}}
              - {{endpoint: get_ticket, weight: 1}}
          - name: monitor
            weight: 1
            think_time: 10ms
            requests: [health]
        thresholds:
          - {{metric: error_rate, max: 0}}
        """
    )
    result = await run(scenario)
    endpoints = result["load"]["endpoints"]
    assert set(endpoints) == {"create_ticket", "get_ticket", "health"}
    # get_ticket reads tickets this run created: all found
    assert set(endpoints["get_ticket"]["statuses"]) == {"200"}
    # 4 walk-in users vs 2 monitors: health is about a third of the traffic
    share = endpoints["health"]["requests"] / result["load"]["total"]["requests"]
    assert 0.2 < share < 0.45
    assert result["exit_code"] == 0


async def test_throughput_counts_load_time_only_not_settle(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        max_requests: 20
        workload: {{vus: 2}}
        requests: [health]
        settle: 1s
        verify:
          - {{type: http, path: /actuator/health}}
        """
    )
    result = await run(scenario)
    load = result["load"]
    assert load["total"]["requests"] == 20
    assert load["elapsed_seconds"] < 0.8  # the 1 s settle is not load time
    assert load["total"]["throughput"] > 25


async def test_national_ids_are_unique_and_carry_the_reserved_prefix(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        max_requests: 60
        workload: {{vus: 6}}
        requests: [create_ticket]
        ticket: {{national_id_prefix: "99", queues: {{CAJA: 1}}}}
        """
    )
    result = await run(scenario)
    assert result["load"]["endpoints"]["create_ticket"]["statuses"] == {"201": 60}  # no accidental 409
    national_ids = {national_id for national_id, _queue in service.state.active}
    assert len(national_ids) == 60
    # 12 digits (the service's limit), all in the reserved 99… range
    assert all(
        national_id.startswith("99") and len(national_id) == 12 and national_id.isdigit()
        for national_id in national_ids
    )
