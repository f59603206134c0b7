"""The PromQL reader shared by the rule compression and the verdict."""

from __future__ import annotations

import pytest

from nfr import promql


def test_ranges_offsets_and_names() -> None:
    expr = (
        "avg(avg_over_time(x[5m] offset 30m)) / max_over_time((y > bool 1)[1h:30s])"
        " and on () deriv(:z:sum[2m]) offset -1m"
    )
    assert promql.ranges(expr) == [300.0, 3600.0, 120.0]
    assert promql.offsets(expr) == [1800.0, 0.0]  # a negative offset looks forward: no history needed
    assert {"avg_over_time", "x", "y", ":z:sum"} <= promql.names(expr)


def test_fallback_operands_are_dropped_with_their_parentheses() -> None:
    expr = "a > ((sum(b offset 10m) - sum(c offset 10m)) or vector(0))"
    assert promql.without_fallback_operands(expr) == "a > (vector(0))"
    assert promql.offsets(promql.without_fallback_operands(expr)) == []
    assert promql.without_fallback_operands("rate(x[1m])") == "rate(x[1m])"


def test_durations() -> None:
    assert promql.parse_duration("1h30m") == 5400.0
    assert promql.parse_duration(" 250ms ") == 0.25
    assert promql.format_duration(0.25) == "250ms" and promql.format_duration(90) == "90s"
    with pytest.raises(promql.PromqlError, match="not a Prometheus duration: '2 minutes'"):
        promql.parse_duration("2 minutes")
