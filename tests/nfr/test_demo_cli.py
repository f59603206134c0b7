"""The demo command: bad input exits 2 before starting anything; Ctrl-C mid-run stops everything it
started (service, exporter, Prometheus, load generator) and removes the run's database and vhost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest

from nfr.backends import Backends

SCENARIO = Path(__file__).parent / "scenarios" / "proof-steady.yml"


def _demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nfr", "demo", *args], capture_output=True, text=True, timeout=timeout
    )


def test_unknown_scenario_exits_2_naming_it(tmp_path: Path) -> None:
    result = _demo("--scenario", "NOPE-99", "--results", str(tmp_path))
    assert result.returncode == 2
    assert "unknown scenario 'NOPE-99'" in result.stderr and "perf-01" in result.stderr.lower()


def test_bad_compress_factor_exits_2(tmp_path: Path) -> None:
    result = _demo("--compress", "0.5", "--results", str(tmp_path))
    assert result.returncode == 2 and "--compress" in result.stderr


def test_scenario_file_that_is_not_a_mapping_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("- just\n- a list\n")
    result = _demo("--scenario", str(bad), "--results", str(tmp_path))
    assert result.returncode == 2 and str(bad) in result.stderr


def test_service_options_come_from_the_service_table_and_are_checked_before_anything_starts(
    tmp_path: Path,
) -> None:
    result = _demo("--service-time", "soon", "--results", str(tmp_path))
    assert result.returncode == 2
    assert "flag --service-time: service_time: expected a duration such as 500ms, 2s, 1m30s" in result.stderr
    result = _demo("--workers-per-queue", "0", "--results", str(tmp_path))
    assert (
        result.returncode == 2
        and "flag --workers-per-queue: workers_per_queue: expected an integer >= 1" in result.stderr
    )
    result = _demo("--faults", "explode", "--results", str(tmp_path))
    assert (
        result.returncode == 2
        and "flag --faults: faults: expected a comma list of fault switches" in result.stderr
    )
    help_text = _demo("--help").stdout
    for flag in (
        "--relay-interval",
        "--shutdown-grace",
        "--no-recovery",
        "--heartbeat-timeout",
        "--advisors",
    ):
        assert flag in help_text  # every service option but the ones the stack sets itself
    assert "--database-dsn DSN" not in help_text and "--port PORT" not in help_text


def test_options_the_stack_sets_are_refused_as_service_options(tmp_path: Path) -> None:
    from nfr.demo import BadInput, DemoOptions, run_demo

    with pytest.raises(BadInput, match="service option port: set by the stack itself"):
        run_demo(DemoOptions(service={"port": 1}, results=tmp_path))
    with pytest.raises(BadInput, match="service option: service_time: expected a duration"):
        run_demo(DemoOptions(service={"service_time": "soon"}, results=tmp_path))


def test_run_takes_database_dsn_and_the_old_dsn_with_a_deprecation_line() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nfr", "run", "--target", "http://127.0.0.1:8080", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = run("--dsn", "mysql://u@db/t")
    assert result.returncode == 2
    assert "--dsn is deprecated, use --database-dsn" in result.stderr
    assert "flag --dsn: database_dsn: expected a PostgreSQL DSN" in result.stderr
    result = run("--database-dsn", "db.example.com")
    assert (
        result.returncode == 2
        and "flag --database-dsn: database_dsn: expected a PostgreSQL DSN" in result.stderr
    )
    assert "deprecated" not in result.stderr


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_ctrl_c_during_load_stops_everything(tmp_path: Path) -> None:
    run_id = f"sigint-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nfr", "demo", "--scenario", str(SCENARIO), "--compress", "60",
         "--service-time", "0.2", "--duration", "60s", "--results", str(tmp_path), "--run-id", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        seen.append(line)
        if "== load:" in line or time.monotonic() > deadline:
            break
    time.sleep(4)  # the load generator is running now
    name = "nfr_" + run_id.replace("-", "_")
    assert _processes_mentioning(name), "the service should be running under load"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    output = "".join(seen) + out
    assert proc.returncode == 130, output
    assert "stopping everything the run started" in output
    assert _processes_mentioning(name) == [], "a process of the run survived Ctrl-C"
    backends = Backends.from_env()
    with psycopg.connect(backends.pg_admin_dsn, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    assert row is not None and row[0] == 0, "the run's database was not dropped"
    try:
        backends._rabbit_api("GET", f"/api/vhosts/{name}")
        vhost_left = True
    except urllib.error.HTTPError as err:
        vhost_left = err.code != 404
    assert not vhost_left, "the run's vhost was not deleted"


@pytest.mark.slow
def test_keep_running_leaves_the_stack_up_until_ctrl_c(tmp_path: Path) -> None:
    run_id = f"keep-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nfr", "demo", "--scenario", str(SCENARIO), "--compress", "60",
         "--service-time", "0.2", "--duration", "8s", "--settle", "3s", "--keep-running",
         "--results", str(tmp_path), "--run-id", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "--keep-running:" in line or len(seen) > 200:
            break
    output = "".join(seen)
    assert "--keep-running:" in output, output
    assert (tmp_path / run_id / "report.html").is_file()  # reports are written before waiting
    prometheus_url = output.split("--keep-running: Prometheus ")[1].split(",")[0]
    time.sleep(2)
    with urllib.request.urlopen(f"{prometheus_url}/-/ready", timeout=5) as response:
        assert response.status == 200  # still up after the verdict
    name = "nfr_" + run_id.replace("-", "_")
    assert _processes_mentioning(name)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output + out
    assert _processes_mentioning(name) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{prometheus_url}/-/ready", timeout=2)


@pytest.mark.slow
def test_failed_fault_injection_fails_the_run_with_exit_1(tmp_path: Path) -> None:
    """The alerts stay silent when a fault injection does nothing; the scenario's outcome fails the run."""
    scenario = Path(__file__).parent / "scenarios" / "proof-action-fails.yml"
    run_id = f"action-fails-{os.getpid()}"
    result = _demo(
        "--scenario", str(scenario), "--compress", "60", "--settle", "10s", "--service-time", "0.2",
        "--results", str(tmp_path), "--run-id", run_id, timeout=240,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "RESULT: FAIL (scenario action failed (load generator exit 1)" in result.stdout, result.stdout
    assert "ticketero-nfr-no-such-container" in result.stdout
    assert "ROLLBACK FAILED" in result.stdout and "may be left broken" in result.stdout
    data = json.loads((tmp_path / run_id / "results.json").read_text())
    assert data["passed"] is False
    assert data["scenario_outcome"]["ok"] is False and data["scenario_outcome"]["rollback_failed"] is True
    assert data["failure_reasons"][0].startswith("scenario action failed")
    # The NFRs themselves were not broken: the scenario is the only failure.
    assert all(r["status"] != "FAIL" for r in data["results"]), data["results"]
    junit = ET.fromstring((tmp_path / run_id / "junit.xml").read_text())
    cases = {case.get("name"): case for case in junit.iter("testcase")}
    scenario_case = cases["scenario NFR-PROOF-ACTION-FAILS"]
    failure = scenario_case.find("failure")
    assert failure is not None and "no-such-container" in (failure.text or "")
    assert junit.get("failures") == str(sum(1 for c in cases.values() if c.find("failure") is not None))
    markdown = (tmp_path / run_id / "NFR-TEST-RESULTS.md").read_text()
    assert "- Overall: **FAIL (scenario action failed" in markdown


def test_the_readme_command_hands_back_the_tools_exit_code(tmp_path: Path) -> None:
    """`./ticketero-nfr` (the README's command) returns 2 for bad input where make would say 2 for anything."""
    script = Path(__file__).resolve().parents[2] / "ticketero-nfr"
    bad = subprocess.run(
        [str(script), "demo", "--scenario", "NOPE-99", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "unknown scenario 'NOPE-99'" in bad.stderr
    helped = subprocess.run([str(script), "verdict", "--help"], capture_output=True, text=True, timeout=300)
    assert helped.returncode == 0 and "--require-exercised" in helped.stdout
