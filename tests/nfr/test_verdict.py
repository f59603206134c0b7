"""The verdict against a real Prometheus evaluating the repository's alerts over a steered target."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from nfr.__main__ import parse_time
from nfr.catalogue import NFR_IDS
from nfr.verdict import FAIL, NO_DATA, NOT_JUDGED, PASS, compute_verdict
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
    assert rnf03.measured == 1.0  # the alert expression's value when it fired
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
    assert suite.get("tests") == "7" and suite.get("failures") == "1"
    failing = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failing == ["RNF-03 Concurrency"]
    markdown = (tmp_path / "NFR-TEST-RESULTS.md").read_text()
    assert "| RNF-03 | Concurrency |" in markdown and "**FAIL**" in markdown


def test_cli_bad_input_exits_2() -> None:
    unreachable = subprocess.run(
        [sys.executable, "-m", "nfr", "verdict", "--prometheus", "http://127.0.0.1:9", "--start", "now-5m",
         "--end", "now"],
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
