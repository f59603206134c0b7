"""The verdict against a real Prometheus evaluating the repository's alerts over a steered target."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from nfr.__main__ import parse_time
from nfr.catalogue import NFR_IDS
from nfr.verdict import FAIL, NO_DATA, NOT_JUDGED, PASS, ScenarioOutcome, compute_verdict
from tests.nfr.conftest import SyntheticRun


def _verdict(run: SyntheticRun, window: str, **kwargs: object):  # type: ignore[no-untyped-def]
    start, end = run.window(window)
    return compute_verdict(run.client, start, end, rate_window="4s", step=1, **kwargs)  # type: ignore[arg-type]


def test_healthy_window_passes_every_nfr_it_can_judge(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "healthy", settle=0)
    statuses = {r.nfr: r.status for r in verdict.results}
    # RNF-07 compares memory with 30 min (compressed: 30 s) earlier; Prometheus has held data for ~11 s.
    expected = dict.fromkeys(NFR_IDS, PASS) | {"RNF-07": NOT_JUDGED}
    assert statuses == expected, [(r.nfr, r.reason) for r in verdict.results]
    assert "need at least 34 s of history" in verdict.result("RNF-07").reason
    assert verdict.passed and verdict.not_judged == ["RNF-07"]
    assert all(r.series for r in verdict.results)


def test_strict_verdict_fails_what_it_could_not_judge(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "healthy", settle=0, strict=True)
    assert verdict.result("RNF-07").status == NOT_JUDGED
    assert not verdict.passed


def test_history_before_the_window_makes_the_memory_alert_judgeable(synthetic_run: SyntheticRun) -> None:
    # A short window late in the timeline: the 34 s look-back reaches into data Prometheus holds.
    end = synthetic_run.t0 + 44
    verdict = compute_verdict(synthetic_run.client, end - 5, end, settle=0, rate_window="4s", step=1)
    assert verdict.result("RNF-07").status == PASS, verdict.result("RNF-07").reason


def test_planted_race_fails_exactly_rnf03_with_time_and_value(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "race", settle=3)
    failed = [r.nfr for r in verdict.results if r.status not in (PASS, NOT_JUDGED)]
    assert failed == ["RNF-03"], [(r.nfr, r.status, r.reason) for r in verdict.results]
    rnf03 = verdict.result("RNF-03")
    assert rnf03.status == FAIL and "TicketeroRaceConditionDetected" in rnf03.reason
    assert rnf03.first_fired is not None
    # for: 10s compressed to the 4 s floor, evaluated every second: firing 4-8 s after the plant.
    delay = rnf03.first_fired - synthetic_run.race_at
    assert 3 <= delay <= 9, delay
    # Measured over the window: the double-assigned advisor (peak 1) plus the 3 deadlocks planted with it.
    assert rnf03.measured == 4.0
    assert rnf03.alerts[0].resolved
    assert not verdict.passed


def test_expected_alert_that_fires_and_clears_passes(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "race", settle=3, expected=["TicketeroRaceConditionDetected"])
    rnf03 = verdict.result("RNF-03")
    assert rnf03.status == PASS and "fired and cleared" in rnf03.reason
    assert verdict.passed


def test_expected_alert_that_never_fired_fails(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "healthy", settle=0, expected=["TicketeroApiLatencyHigh"])
    rnf02 = verdict.result("RNF-02")
    assert rnf02.status == FAIL and "did not fire" in rnf02.reason


def test_missing_indicator_is_no_data_never_pass(synthetic_run: SyntheticRun) -> None:
    verdict = _verdict(synthetic_run, "absent", settle=0)
    rnf05 = verdict.result("RNF-05")
    assert rnf05.status == NO_DATA, rnf05.reason
    assert not verdict.passed
    assert {r.nfr for r in verdict.results if r.status not in (PASS, NOT_JUDGED)} == {"RNF-05"}


def test_cli_exit_codes_and_reports(synthetic_run: SyntheticRun, tmp_path: Path) -> None:
    def run(window: str, *extra: str) -> subprocess.CompletedProcess[str]:
        start, end = synthetic_run.window(window)
        args = ["--prometheus", synthetic_run.client.url, "--start", f"{start:.3f}", "--end", f"{end:.3f}"]
        return subprocess.run(
            [sys.executable, "-m", "nfr", "verdict", *args, "--rate-window", "4s", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )

    healthy = run("healthy", "--settle", "0")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "RESULT: PASS" in healthy.stdout
    race = run(
        "race", "--settle", "3s", "--results", str(tmp_path), "--fault-at", f"{synthetic_run.race_at:.3f}"
    )
    assert race.returncode == 1, race.stdout + race.stderr
    assert "RNF-03" in race.stdout and "FAIL" in race.stdout
    data = json.loads((tmp_path / "results.json").read_text())
    assert not data["passed"]
    assert [r["nfr"] for r in data["results"] if r["status"] == "FAIL"] == ["RNF-03"]
    assert 3 <= data["fault_to_alert_seconds"]["RNF-03"] <= 9
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == "8" and suite.get("failures") == "2"
    failing = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failing == ["RNF-03 Concurrency", "run result"]
    markdown = (tmp_path / "NFR-TEST-RESULTS.md").read_text()
    assert "| RNF-03 | Concurrency |" in markdown and "**FAIL**" in markdown
    # Without --settle the settle period is derived from the rules the Prometheus loaded (compressed x60,
    # 1 s scrapes: the throughput alert's 12 s) — long enough to see the race that starts 1 s after the
    # healthy window, which --settle 0 did not see.
    derived = run("healthy")
    assert derived.returncode == 1, derived.stdout + derived.stderr
    assert "settle 12s (derived from the rules: TicketeroThroughputBelowTarget (RNF-01)" in derived.stderr
    assert "RNF-03" in derived.stdout and "FAIL" in derived.stdout


def test_cli_bad_input_exits_2() -> None:
    unreachable = subprocess.run(
        [sys.executable, "-m", "nfr", "verdict", "--prometheus", "http://127.0.0.1:9", "--start", "now-8m",
         "--end", "now-5m"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unreachable.returncode == 2 and "cannot reach Prometheus" in unreachable.stderr
    bad_time = subprocess.run(
        [sys.executable, "-m", "nfr", "verdict", "--prometheus", "http://127.0.0.1:9", "--start", "yesterday",
         "--end", "now"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad_time.returncode == 2 and "RFC 3339" in bad_time.stderr


def test_parse_time_forms() -> None:
    assert parse_time("now-10m", now=1000.0) == 400.0
    assert parse_time("1700000000") == 1700000000.0
    assert parse_time("2026-11-23T18:00:00Z") == 1795456800.0


def _summary(**overrides: object) -> dict[str, object]:
    """A load generator summary of the shape loadgen writes with --summary-json."""
    base: dict[str, object] = {
        "scenario": "X",
        "outcome": "passed",
        "exit_code": 0,
        "error": None,
        "thresholds": [{"threshold": "p95 <= 2s", "value": 0.1, "ok": True}],
        "probes": [{"phase": "verify", "name": "all done", "ok": True, "detail": "20 == 20"}],
        "actions": [{"phase": "rollback", "name": "start app", "ok": True, "detail": "started"}],
    }
    return base | overrides


def test_scenario_outcome_reads_every_kind_of_failure() -> None:
    assert ScenarioOutcome.from_summary(_summary()).ok
    action = ScenarioOutcome.from_summary(
        _summary(outcome="action failed", exit_code=1, error="method: stop app: No such container: app")
    )
    assert not action.ok and action.reasons == ["method: stop app: No such container: app"]
    assert action.headline == (
        "scenario action failed (load generator exit 1): method: stop app: No such container: app"
    )
    rollback = ScenarioOutcome.from_summary(
        _summary(
            actions=[{"phase": "rollback", "name": "start app", "ok": False, "detail": "No such container"}]
        )
    )
    assert not rollback.ok and rollback.rollback_failed
    assert rollback.reasons == [
        "ROLLBACK FAILED — the system may be left broken: start app: No such container"
    ]
    threshold = ScenarioOutcome.from_summary(
        _summary(
            outcome="thresholds failed",
            exit_code=99,
            thresholds=[{"threshold": "error_rate <= 0.001", "value": 0.02, "ok": False}],
        )
    )
    assert threshold.reasons == ["threshold error_rate <= 0.001 not met (value 0.02)"]
    probe = ScenarioOutcome.from_summary(
        _summary(
            outcome="steady state not met",
            exit_code=97,
            probes=[{"phase": "verify", "name": "all done", "ok": False, "detail": "19 != 20"}],
        )
    )
    assert not probe.ok and probe.reasons == ["verify: all done: 19 != 20"]
    died = ScenarioOutcome.from_summary(None, process_exit=-9)
    assert not died.ok and died.reasons == ["the load generator exited -9 without writing its summary"]
    interrupted = ScenarioOutcome.from_summary(_summary(outcome="interrupted", exit_code=130))
    assert not interrupted.ok and interrupted.headline == "scenario interrupted (load generator exit 130)"


def test_failed_scenario_fails_a_window_whose_alerts_stayed_silent(
    synthetic_run: SyntheticRun, tmp_path: Path
) -> None:
    start, end = synthetic_run.window("healthy")
    summary = tmp_path / "loadgen-summary.json"
    summary.write_text(
        json.dumps(
            _summary(scenario="SHUT-01", outcome="action failed", exit_code=1, error="No such container")
        )
    )
    args = ["--prometheus", synthetic_run.client.url, "--start", f"{start:.3f}", "--end", f"{end:.3f}"]
    result = subprocess.run(
        [sys.executable, "-m", "nfr", "verdict", *args, "--rate-window", "4s", "--settle", "0",
         "--scenario-summary", str(summary)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RESULT: FAIL (scenario action failed (load generator exit 1): No such container)" in result.stdout
    # Every NFR itself passed (or was not judged): the scenario alone failed the run.
    assert " FAIL " not in result.stdout.split("RESULT")[0]
    not_a_summary = tmp_path / "other.json"
    not_a_summary.write_text("[1, 2]")
    bad = subprocess.run(
        [sys.executable, "-m", "nfr", "verdict", *args, "--scenario-summary", str(not_a_summary)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "expected the load generator's summary JSON" in bad.stderr


def test_a_pass_says_whether_the_window_put_the_nfr_to_the_test(synthetic_run: SyntheticRun) -> None:
    """~20 requests cannot show 99.9 % and no worker died: RNF-06 and RNF-05 pass, not exercised."""
    from nfr.report_text import console_table, junit_xml

    verdict = _verdict(synthetic_run, "healthy", settle=0)
    rnf06, rnf05 = verdict.result("RNF-06"), verdict.result("RNF-05")
    assert (rnf06.status, rnf06.exercised, rnf06.label) == (PASS, False, "PASS (not exercised)")
    assert rnf06.exercise.startswith("at least 1 / (1 - target) = 1000 requests")
    requests = float(rnf06.exercise.rsplit("measured ", 1)[1].split()[0])
    assert 5 < requests < 1000, rnf06.exercise
    assert (rnf05.exercised, rnf05.exercise.endswith("measured 0 events")) == (False, True), rnf05.exercise
    assert verdict.result("RNF-04").exercised is True
    # Not exercised is said, and by default does not fail the run.
    assert verdict.passed and {"RNF-05", "RNF-06"} <= set(verdict.not_exercised)
    assert "not exercised by this run" in console_table(verdict)
    cases = {c.get("name"): c for c in ET.fromstring(junit_xml(verdict)).iter("testcase")}
    skipped = cases["RNF-06 Availability"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("PASS (not exercised): at least")
    assert cases["RNF-06 Availability"].find("properties/property[@name='exercised']").get("value") == "false"
    # Required (a scenario's `exercises: [RNF-05]`, or --require-exercised): now it fails the run.
    required = _verdict(synthetic_run, "healthy", settle=0, require_exercised=["RNF-05"])
    assert not required.passed
    assert required.failure_reasons == [
        f"RNF-05 was to be exercised and was not: {required.result('RNF-05').exercise}"
    ]
