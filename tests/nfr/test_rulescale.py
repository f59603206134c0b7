"""The compressed copies of the shipped rules are valid, scale every time span and nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from nfr.prometheus import default_rule_files
from nfr.rulescale import (
    RuleScaleError,
    compress_rule_files,
    format_duration,
    parse_duration,
    scale_expr,
    scale_rules,
)


def test_durations_round_trip() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert format_duration(30) == "30s"
    assert format_duration(0.25) == "250ms"
    with pytest.raises(RuleScaleError):
        parse_duration("5 minutes")


def test_ranges_subqueries_and_offsets_are_divided_with_a_floor() -> None:
    expr = (
        'avg_over_time(x{le="2.0"}[5m]) / avg_over_time(x[5m] offset 30m)'
        " + max_over_time(rate(y[1m])[30m:1m]) + deriv(z[2m]) + rate(w[2s])"
    )
    out = scale_expr(expr, factor=60, floor=4)
    assert out == (
        'avg_over_time(x{le="2.0"}[5s]) / avg_over_time(x[5s] offset 30s)'
        " + max_over_time(rate(y[4s])[30s:4s]) + deriv(z[4s]) + rate(w[2s])"
    )


def test_string_literals_and_thresholds_are_left_alone() -> None:
    expr = 'label_replace(v, "dst", "[5m]", "src", "(.*)") > 90 and w offset 10m < 1.2'
    out = scale_expr(expr, factor=10, floor=1)
    assert '"[5m]"' in out and "> 90" in out and "< 1.2" in out and "offset 1m" not in out
    assert "offset 60s" in out


def test_for_and_group_interval_are_scaled_labels_untouched() -> None:
    doc = {
        "groups": [
            {
                "name": "g",
                "interval": "1m",
                "rules": [
                    {
                        "alert": "A",
                        "expr": "x[10m] > 5",
                        "for": "2m",
                        "labels": {"nfr": "RNF-01", "severity": "critical"},
                        "annotations": {"summary": "over 30m"},
                    },
                    {"record": "a:b:rate1m", "expr": "rate(b[1m])"},
                    {"alert": "B", "expr": "y > 0", "for": "2s"},
                ],
            }
        ]
    }
    out = scale_rules(doc, factor=60, floor=3)
    rules = out["groups"][0]["rules"]
    assert out["groups"][0]["interval"] == "3s"
    assert rules[0]["for"] == "3s" and rules[0]["expr"] == "x[10s] > 5"
    assert rules[0]["labels"] == {"nfr": "RNF-01", "severity": "critical"}
    assert rules[0]["annotations"] == {"summary": "over 30m"}
    assert rules[1] == {"record": "a:b:rate1m", "expr": "rate(b[3s])"}
    assert rules[2]["for"] == "2s"  # already under the floor: unchanged
    assert doc["groups"][0]["rules"][0]["for"] == "2m"  # the source is not modified


def test_shipped_rules_compress_to_valid_files(tmp_path: Path) -> None:
    sources = default_rule_files()
    if not sources:
        pytest.skip("no rule files shipped yet")
    written = compress_rule_files(sources, tmp_path, factor=60, floor=4)
    check = subprocess.run(["promtool", "check", "rules", *map(str, written)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for source, copy in zip(sources, written, strict=True):
        original = yaml.safe_load(source.read_text())
        scaled = yaml.safe_load(copy.read_text())
        for group_a, group_b in zip(original["groups"], scaled["groups"], strict=True):
            for rule_a, rule_b in zip(group_a["rules"], group_b["rules"], strict=True):
                assert rule_a.get("labels") == rule_b.get("labels")
                assert rule_a.get("annotations") == rule_b.get("annotations")
                if "for" in rule_a:
                    assert parse_duration(rule_b["for"]) <= parse_duration(rule_a["for"])
                    assert parse_duration(rule_b["for"]) >= min(4, parse_duration(rule_a["for"]))
    # Shipped files are untouched.
    assert all("Compressed copy" not in s.read_text() for s in sources)


def test_factor_below_one_is_refused() -> None:
    with pytest.raises(RuleScaleError):
        scale_rules({"groups": []}, factor=0.5, floor=1)


def test_history_needed_ignores_offsets_behind_a_fallback() -> None:
    from nfr.promql import lookback as _lookback

    guarded = "(sum(a) - sum(b)) > ((sum(a offset 10m) - sum(b offset 10m)) or vector(0))"
    assert _lookback(guarded, {}) == 0.0  # missing history → vector(0) answers: it can fire at once
    recorded = {"job:m:growth": "avg(avg_over_time(m[5m])) / avg(avg_over_time(m[5m] offset 30m))"}
    assert _lookback('job:m:growth{job="app"} > 1.2', recorded) == 1800.0  # no fallback: needs 30 min
