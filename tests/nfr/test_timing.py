"""The demo's settle period, derived from the rule files in use: the longest time from a fault to its alert
firing, checked against the shipped rules (docs/timing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nfr import promql
from nfr.demo import DemoOptions
from nfr.prometheus import default_rule_files
from nfr.rulescale import default_floor
from nfr.timing import alert_delays, slowest


def test_window_and_hops_follow_the_recording_rules() -> None:
    recorded = {":a:rate1m": "sum(rate(a[1m]))", ":a:deriv2m": "deriv(:a:rate1m[2m])"}
    assert promql.window(":a:deriv2m > 1", recorded) == 180.0  # 2m over a 1m rate
    assert promql.hops(":a:deriv2m > 1", recorded) == 2
    # an upper bound: the expression's own longest range plus the longest below it, on any branch
    assert promql.window("increase(b[5m]) > 0 and :a:rate1m < 1", recorded) == 360.0
    assert promql.hops("b > 0", recorded) == 0


def test_shipped_rules_for_a_short_run() -> None:
    delays = alert_delays(default_rule_files())
    alert = slowest(delays, scrape=5.0, evaluation=5.0, run_seconds=60.0)
    assert alert is not None
    # deriv(:waiting:sum[2m]) over a 1m rate, two recording rules, for: 1m: 120 + 5 + 3 x 5 + 60
    assert (alert.alert, alert.nfr, alert.seconds(5.0, 5.0)) == (
        "TicketeroThroughputBelowTarget",
        "RNF-01",
        200.0,
    )
    # increase(ticketero_database_deadlocks_total[5m]) > 0 for: 10s fires at the first sample showing a
    # deadlock: one scrape + one evaluation + 10, the 5 m window adds nothing
    races = [d for d in delays if d.alert == "TicketeroRaceConditionDetected"]
    assert races and all(d.window == 0.0 and d.seconds(5.0, 5.0) == 20.0 for d in races)
    throughput = next(d for d in delays if d.alert == "TicketeroThroughputBelowTarget")
    # deriv(:waiting:sum[2m]) read through two recording rules, for: 1m
    assert (throughput.window, throughput.hops, throughput.seconds(5.0, 5.0)) == (120.0, 2, 200.0)


def test_an_alert_that_needs_more_history_than_the_run_does_not_set_the_settle() -> None:
    delays = alert_delays(default_rule_files())
    memory = [d for d in delays if d.alert == "TicketeroMemoryGrowth"]
    assert memory and all(d.history == 1920.0 for d in memory)  # offset 30m + for: 2m
    soak = slowest(delays, scrape=5.0, evaluation=5.0, run_seconds=1800.0)
    assert soak is not None and (soak.alert, soak.seconds(5.0, 5.0)) == ("TicketeroMemoryGrowth", 435.0)


def test_compressed_rules_give_the_compressed_settle() -> None:
    delays = alert_delays(default_rule_files(), compress=60, floor=default_floor(1.0))
    alert = slowest(delays, scrape=1.0, evaluation=1.0, run_seconds=60.0)
    assert alert is not None and alert.seconds(1.0, 1.0) == 12.0  # every span at the 4 s floor


def test_the_demo_settle_is_derived_unless_given(tmp_path: Path) -> None:
    delays = alert_delays(default_rule_files())
    settle, why = DemoOptions().settle_after(60.0, delays, scrape=5.0)
    assert settle == 200.0
    assert why.startswith(
        "derived from the rules: TicketeroThroughputBelowTarget (RNF-01) fires at most 200s"
    )
    assert DemoOptions(settle=42.0).settle_after(60.0, delays, 5.0) == (42.0, "given")
    # never under ten scrapes
    rule = tmp_path / "fast.yml"
    rule.write_text("groups:\n- name: g\n  rules:\n  - alert: Fast\n    expr: up == 0\n    for: 1s\n")
    assert DemoOptions().settle_after(60.0, alert_delays([rule]), 5.0) == (50.0, "10 scrapes")


def test_an_unreadable_rule_file_is_named(tmp_path: Path) -> None:
    from nfr.rulescale import RuleScaleError

    with pytest.raises(RuleScaleError, match="nope.yml: cannot read rule file"):
        alert_delays([tmp_path / "nope.yml"])


def test_an_event_count_fires_at_the_first_sample_but_a_rate_threshold_waits_for_its_window(
    tmp_path: Path,
) -> None:
    rule = tmp_path / "events.yml"
    rule.write_text(
        "groups:\n- name: g\n  rules:\n"
        "  - alert: Event\n    expr: increase(errors_total[10m]) > 0\n"
        "  - alert: Rate\n    expr: rate(errors_total[10m]) > 0.5\n"
        "  - alert: Recorded\n    expr: increase(:errors:sum[10m]) > 0\n"
        "  - record: :errors:sum\n    expr: sum(rate(errors_total[1m]))\n"
    )
    delays = {d.alert: d.window for d in alert_delays([rule])}
    assert delays == {"Event": 0.0, "Rate": 600.0, "Recorded": 660.0}
