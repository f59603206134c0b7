"""The verdict names the rule that fired with its values, measures each NFR over the run, never judges a
window still to come; its reports carry units, "no data", exact latency and a JUnit file that agrees
with the exit code. Against the real Prometheus of the synthetic run (tests/nfr/conftest.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from nfr.report_text import console_table, junit_xml, markdown
from nfr.reports import write_reports
from nfr.verdict import (
    FAIL,
    NO_DATA,
    PASS,
    FiredAlert,
    ScenarioOutcome,
    Verdict,
    WindowNotOver,
    compute_verdict,
)
from tests.nfr.conftest import SyntheticRun

RACE = "TicketeroRaceConditionDetected"


def _verdict(run: SyntheticRun, window: str, **kwargs: Any) -> Verdict:
    start, end = run.window(window)
    return compute_verdict(run.client, start, end, rate_window="4s", step=1, **kwargs)


def _cli(run: SyntheticRun, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "nfr",
            "verdict",
            "--prometheus",
            run.client.url,
            "--rate-window",
            "4s",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _window_args(run: SyntheticRun, window: str) -> list[str]:
    start, end = run.window(window)
    return ["--start", f"{start:.3f}", "--end", f"{end:.3f}"]


# ------------------------------------------------------------------------------------ per rule


def test_each_fired_rule_is_named_with_its_own_values(synthetic_run: SyntheticRun) -> None:
    """Two rules of one alert name fired (double-assigned advisor, deadlocks): each is told apart by its
    check label and carries its own expression's value at first firing and its worst value."""
    verdict = _verdict(synthetic_run, "race", settle=3)
    rnf03 = verdict.result("RNF-03")
    by_check = {a.check: a for a in rnf03.alerts}
    assert set(by_check) == {"check double_assigned_advisor", "check deadlock"}, by_check
    double, deadlock = by_check["check double_assigned_advisor"], by_check["check deadlock"]
    assert double.value_at_first_fire == 1.0 and double.worst_value == 1.0
    assert double.value_unit == "violations"
    # increase() over the compressed 5 s range: at least one deadlock, at most the three planted.
    assert deadlock.value_at_first_fire is not None and 0 < deadlock.value_at_first_fire <= 4
    assert deadlock.worst_value is not None and deadlock.worst_value >= deadlock.value_at_first_fire
    assert "increase(" in deadlock.expr and "double_assigned" in double.expr
    assert "check double_assigned_advisor: 1 violation when it first fired" in rnf03.reason
    assert "check deadlock:" in rnf03.reason
    # Each alert's pending and firing periods, for the plot.
    states = {(p["check"], p["state"]) for p in rnf03.periods}
    assert ("check deadlock", "firing") in states and ("check double_assigned_advisor", "pending") in states
    table = markdown(verdict)
    assert re.search(r"\| TicketeroRaceConditionDetected \| check deadlock \| RNF-03 \|", table), table
    assert "| Value when first fired | Worst value |" in table


def test_measured_figure_is_the_run_figure_not_a_sample(synthetic_run: SyntheticRun) -> None:
    """30 % of requests slow and 2 % failed for 6 s of a 15 s window: RNF-02 and RNF-06 FAIL, and each
    reports the run's share, not its worst 4-second sample."""
    verdict = _verdict(synthetic_run, "slow", settle=3)
    rnf02, rnf06 = verdict.result("RNF-02"), verdict.result("RNF-06")
    assert rnf02.status == FAIL and rnf06.status == FAIL, [
        (r.nfr, r.status, r.reason) for r in verdict.results
    ]
    start, end = synthetic_run.window("slow")
    slow_seconds = synthetic_run.slow_cleared_at - synthetic_run.slow_at
    expected_share = 1 - 0.3 * slow_seconds / (end - start)
    expected_availability = 1 - 0.02 * slow_seconds / (end - start)
    assert rnf02.measured == pytest.approx(expected_share, abs=0.03), rnf02.measured
    assert rnf06.measured == pytest.approx(expected_availability, abs=0.002), rnf06.measured
    worst02 = min(v for _, v in rnf02.series)
    worst06 = min(v for _, v in rnf06.series)
    assert rnf02.measured - worst02 > 0.1 and rnf06.measured - worst06 > 0.005
    assert rnf02.measured_unit == "ratio" and "whole run" in rnf02.measured_how
    alert02 = rnf02.alerts[0]
    assert alert02.check == "source loadgen" and alert02.worst_value is not None
    assert alert02.worst_value < 0.95 and alert02.value_unit == "ratio"
    assert f"{rnf02.measured * 100:.2f} %" in console_table(verdict)


def test_a_window_still_to_come_is_never_judged(synthetic_run: SyntheticRun) -> None:
    now = time.time()
    with pytest.raises(WindowNotOver):
        compute_verdict(synthetic_run.client, now - 20, now - 1, settle=60, rate_window="4s", step=1)
    began = time.monotonic()
    refused = _cli(synthetic_run, "--start", "now-20s", "--end", "now", "--settle", "60s")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot be judged yet" in refused.stderr and "--wait" in refused.stderr
    assert time.monotonic() - began < 30
    waited = _cli(synthetic_run, "--start", "now-10s", "--end", "now", "--settle", "4s", "--wait")
    assert waited.returncode in (0, 1), waited.stdout + waited.stderr
    assert "waiting for the window to end" in waited.stderr and "RESULT:" in waited.stdout
    # Judged after its end: nothing says Prometheus held less history than the window it just watched.
    assert "held less by the end" not in waited.stdout


# ----------------------------------------------------------------------------------- reports


def _summary() -> dict[str, Any]:
    latency = {"p50": 0.012, "p90": 0.02, "p95": 0.031, "p99": 0.05, "max": 0.2}
    block = {"requests": 40, "failures": 0, "dropped": 0, "latency": latency, "throughput_per_min": 120.0}
    return {
        "scenario": "synthetic",
        "outcome": "passed",
        "exit_code": 0,
        "load": {"total": block, "endpoints": {"create_ticket": block}},
        "thresholds": [],
        "probes": [],
        "actions": [],
    }


def test_reports_show_units_exact_latency_and_no_data_never_zero(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "race", settle=3)
    with_summary = markdown(verdict, {"loadgen_summary": _summary()})
    assert "| API latency p95 (exact, load generator HdrHistogram) | 31 ms |" in with_summary
    assert "bucket" not in with_summary.split("## Metrics captured")[1].split("##")[0]
    without = markdown(verdict)
    assert "API latency p95 (estimate from histogram buckets)" in without
    # The synthetic target publishes no recovery events: "no data", not 0.
    assert "| Recovery events | no data |" in without
    assert re.search(r"\| Throughput under load .*\| \d+ tickets/min \| >= 50 tickets/min \|", without), (
        without
    )
    assert "| Oldest BUSY heartbeat | 1 s | < 90 s |" in without
    for text in (without, console_table(verdict), junit_xml(verdict)):
        assert not re.search(r"\d s s\b|ms ms|% %", text), text

    # A window before Prometheus had any data: every figure is "no data", none is 0.
    before = compute_verdict(
        synthetic_run.client,
        synthetic_run.t0 - 120,
        synthetic_run.t0 - 60,
        settle=0,
        rate_window="4s",
        step=1,
    )
    assert all(r.status == NO_DATA for r in before.results)
    metrics = markdown(before).split("## Metrics captured")[1].split("\n## ")[0]
    rows = [line for line in metrics.splitlines() if line.startswith("| ") and "Metric" not in line]
    assert rows and all("| no data |" in row for row in rows), rows
    assert "| Deadlocks | no data |" in metrics and "| Recovery events | no data |" in metrics


def _counts(xml: str) -> tuple[ET.Element, int]:
    suite = ET.fromstring(xml)
    cases = list(suite.iter("testcase"))
    bad = sum(c.find("failure") is not None or c.find("error") is not None for c in cases)
    assert suite.get("tests") == str(len(cases))
    assert int(suite.get("failures", "0")) + int(suite.get("errors", "0")) == bad
    return suite, bad


def test_junit_agrees_with_the_exit_code_in_every_mode(synthetic_run: SyntheticRun) -> None:
    healthy = _verdict(synthetic_run, "healthy", settle=0)
    strict = _verdict(synthetic_run, "healthy", settle=0, strict=True)
    required = _verdict(synthetic_run, "healthy", settle=0, require_exercised=["RNF-05"])
    scenario_failed = _verdict(
        synthetic_run,
        "healthy",
        settle=0,
        scenario_outcome=ScenarioOutcome(False, "action failed", 1, ["No such container"]),
    )
    target_down = _verdict(synthetic_run, "healthy", settle=0)
    target_down.meta_alerts.append(
        FiredAlert(
            "TicketeroTargetDown",
            "meta",
            {"alertname": "TicketeroTargetDown", "job": "ticketero-exporter", "severity": "critical"},
            target_down.start + 2,
            target_down.start + 5,
            True,
        )  # fmt: skip
    )
    for verdict in (healthy, strict, required, scenario_failed, target_down):
        suite, bad = _counts(junit_xml(verdict))
        assert (bad > 0) == (not verdict.passed), (verdict.failure_reasons, ET.tostring(suite)[:400])
        result = next(c for c in suite.iter("testcase") if c.get("name") == "run result")
        assert (result.find("failure") is not None) == (not verdict.passed)
        nfr_cases = [c for c in suite.iter("testcase") if c.get("classname") == "ticketero.nfr"]
        assert all(float(c.get("time", "0")) > 0 for c in nfr_cases)
        for case in nfr_cases:
            measured = case.find("properties/property[@name='measured']")
            assert measured is not None and measured.get("value"), ET.tostring(case)
    assert healthy.passed and not strict.passed and not required.passed
    strict_rnf07 = next(
        c for c in ET.fromstring(junit_xml(strict)).iter("testcase") if c.get("name", "").startswith("RNF-07")
    )
    assert strict_rnf07.find("failure") is not None
    down = [
        c.get("name")
        for c in ET.fromstring(junit_xml(target_down)).iter("testcase")
        if c.get("classname") == "ticketero.meta"
    ]
    assert down == ["TicketeroTargetDown job=ticketero-exporter"]
    scenario_case = next(
        c
        for c in ET.fromstring(junit_xml(scenario_failed)).iter("testcase")
        if c.get("classname") == "ticketero.scenario"
    )
    assert scenario_case.find("failure") is not None and float(scenario_case.get("time", "0")) > 0


def test_cli_strict_exit_code_matches_junit(synthetic_run: SyntheticRun, tmp_path: Path) -> None:
    for flag, code in (("", 0), ("--strict", 1), ("--require-exercised", 1)):
        out = tmp_path / (flag.strip("-") or "default")
        extra = [flag] if flag else []
        result = _cli(
            synthetic_run,
            *_window_args(synthetic_run, "healthy"),
            "--settle",
            "0",
            "--results",
            str(out),
            *extra,
        )
        assert result.returncode == code, (flag, result.stdout, result.stderr)
        _, bad = _counts((out / "junit.xml").read_text())
        assert (bad > 0) == (code != 0), flag


# ------------------------------------------------------------------------------ compare, index


def _write_run(root: Path, name: str, verdict: Verdict, p95: float, throughput: float | None = None) -> Path:
    summary = _summary()
    summary["load"]["total"] = dict(
        summary["load"]["total"], latency=dict(summary["load"]["total"]["latency"], p95=p95)
    )
    summary["load"]["endpoints"] = {"create_ticket": summary["load"]["total"]}
    verdict.run_id = name
    if throughput is not None:
        verdict.figures["throughput_per_minute"] = throughput
    write_reports(verdict, root / name, {"loadgen_summary": summary})
    return root / name


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nfr", "compare", *args], capture_output=True, text=True, timeout=60
    )


def test_compare_flags_regressions_and_index_lists_every_run(
    synthetic_run: SyntheticRun, tmp_path: Path
) -> None:
    healthy = _verdict(synthetic_run, "healthy", settle=0)
    base = _write_run(tmp_path, "run-1-baseline", healthy, p95=0.030, throughput=120.0)
    same = _write_run(
        tmp_path, "run-2-same", _verdict(synthetic_run, "healthy", settle=0), p95=0.032, throughput=118.0
    )
    slower = _write_run(
        tmp_path, "run-3-slower", _verdict(synthetic_run, "healthy", settle=0), p95=0.050, throughput=90.0
    )
    race = _write_run(
        tmp_path, "run-4-race", _verdict(synthetic_run, "race", settle=3), p95=0.030, throughput=120.0
    )

    ok = _compare(
        str(base), str(same), "--html", str(tmp_path / "cmp.html"), "--markdown", str(tmp_path / "cmp.md")
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "NO REGRESSION" in ok.stdout and "| create_ticket |" in ok.stdout
    assert (tmp_path / "cmp.md").read_text() == ok.stdout and "<table>" in (tmp_path / "cmp.html").read_text()

    bad = _compare(str(base), str(slower))
    assert bad.returncode == 1, bad.stdout
    assert "create_ticket: p95 30 ms → 50 ms (+66.7 %, allowed +20 %)" in bad.stdout
    assert "throughput 120 tickets/min → 90 tickets/min (-25.0 %, allowed -10 %)" in bad.stdout
    assert (
        _compare(
            str(base), str(slower), "--max-p95-increase", "80%", "--max-throughput-drop", "30%"
        ).returncode
        == 0
    )

    failed = _compare(str(base), str(race))
    assert failed.returncode == 1 and "RNF-03 PASS → FAIL" in failed.stdout, failed.stdout

    assert _compare(str(base), str(tmp_path / "missing")).returncode == 2
    assert _compare(str(base), str(same), "--max-p95-increase", "lots").returncode == 2
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{")
    broken = _compare(str(base), str(tmp_path / "broken"))
    assert broken.returncode == 2 and "results.json" in broken.stderr

    # The reports writer refreshed the index after each run; the command writes it again.
    index = (tmp_path / "index.html").read_text()
    for name in ("run-1-baseline", "run-2-same", "run-3-slower", "run-4-race"):
        assert f'href="{name}/report.html"' in index
    assert index.count(">PASS<") >= 3 and ">FAIL<" in index
    made = subprocess.run(
        [sys.executable, "-m", "nfr", "index", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0 and made.stdout.strip().endswith("index.html")
    refreshed = (tmp_path / "index.html").read_text()
    assert "broken" in refreshed  # an unreadable run is listed, not dropped
    assert 'data-trend="4"' in refreshed and "unreadable" in refreshed
    assert (
        subprocess.run(
            [sys.executable, "-m", "nfr", "index", str(tmp_path / "nope")], capture_output=True
        ).returncode
        == 2
    )
    assert json.loads((base / "results.json").read_text())["run_id"] == "run-1-baseline"


def test_memory_plot_draws_the_limit_against_its_value_earlier(synthetic_run: SyntheticRun) -> None:
    """RNF-07's rule compares with its value 30 min (compressed: 30 s) earlier: the plot's limit is that
    earlier value x 1.2, not a fixed line, once Prometheus holds the history."""
    from nfr.report_html import plot_svg

    end = synthetic_run.t0 + 44
    verdict = compute_verdict(synthetic_run.client, end - 5, end, settle=0, rate_window="4s", step=1)
    rnf07 = verdict.result("RNF-07")
    assert rnf07.status == PASS and rnf07.threshold is None
    limit = rnf07.companions["limit"]
    assert limit and all(v == pytest.approx(50e6 * 1.2) for _, v in limit)
    assert rnf07.measured == pytest.approx(0.0) and rnf07.measured_unit == "ratio"
    svg = plot_svg(verdict, rnf07)
    assert '<path class="threshold"' in svg and "value earlier x 1.2" in svg
