"""``nfr run --target URL`` judges a service it did not start: a stand-in target (tests/nfr/standin.py) with
faults proves it end to end, compressed 60x; refusals happen before any request; the evidence judges the run
again; remote write sends the run to a long-term store whose verdict equals the local one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nfr.__main__ import main
from nfr.catalogue import NFR_IDS
from nfr.promclient import PrometheusClient
from nfr.prometheus import PrometheusServer, default_rule_files, render_config
from nfr.run import (
    declared_needs,
    drop_absent_alerts,
    inferred_needs,
    missing_needs,
    nfrs_without_data,
)
from nfr.verdict import compute_verdict
from tests.nfr.standin import StandIn

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "scenarios" / "standin-http.yml"


# -- what a scenario needs, what a run has ------------------------------------------------------------


def test_needs_are_declared_or_read_off_the_steps():
    doc = {
        "needs": ["broker"],
        "setup": [{"name": "clean", "type": "sql", "sql": "DELETE FROM ticket"}],
        "method": [{"name": "stop it", "type": "docker", "container": "x", "op": "stop"}],
        "verify": [{"name": "rows", "query": "SELECT 1", "equals": 1}],
    }
    assert declared_needs("s.yml", doc) == ("broker",)
    assert "needs" not in doc  # the load generator gets the scenario without it
    inferred = inferred_needs(doc)
    assert set(inferred) == {"database", "service-control"}
    message = missing_needs("s.yml", ("broker",), inferred, available={"database"})
    assert message is not None
    assert "broker (give --amqp-url)" in message and "service-control (give --service-control)" in message
    assert "database" not in message.split("—", 1)[1]
    assert missing_needs("s.yml", (), {}, available=set()) is None


def test_nfrs_without_data_follow_the_catalogue_sources():
    assert nfrs_without_data({"loadgen"}) == ["RNF-01", "RNF-03", "RNF-04", "RNF-05", "RNF-07"]
    assert nfrs_without_data({"loadgen", "service"}) == ["RNF-01", "RNF-03", "RNF-04", "RNF-05"]
    assert nfrs_without_data({"loadgen", "exporter", "service"}) == []
    # A target whose own metrics lack process_resident_memory_bytes does not feed RNF-07.
    assert (
        nfrs_without_data({"loadgen", "service"}, service_metrics="standin_requests_total 3\n")[-1]
        == "RNF-07"
    )


def test_absent_alerts_of_missing_parts_are_left_out(tmp_path):
    files = drop_absent_alerts(default_rule_files(), ["ticketero-exporter"], tmp_path)
    text = "\n".join(Path(f).read_text() for f in files)
    assert 'absent(ticketero_probe_success{job=~"ticketero-exporter"})' not in text
    assert 'absent(loadgen_requests_total{job=~"loadgen"})' in text
    assert "TicketeroHealthProbeFailing" in text  # the NFR alerts stay: they just have nothing to read
    subprocess.run(["promtool", "check", "rules", *map(str, files)], check=True, capture_output=True)


def test_a_scenario_that_needs_the_database_is_refused_before_any_request(tmp_path, capsys):
    with StandIn() as standin:
        code = main(["run", "--target", standin.url, "--scenario", "PERF-01", "--results", str(tmp_path)])
        assert standin.requests == 0
    err = capsys.readouterr().err
    assert code == 2
    assert "needs what this run was not given" in err and "database (give --database-dsn)" in err


def _non_loopback_address() -> str | None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing interface
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_allow_list_refuses_a_target_outside_the_machine_before_any_request(tmp_path, capsys):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    with StandIn(host=address) as standin:
        code = main(["run", "--target", standin.url, "--results", str(tmp_path)])
        assert standin.requests == 0 and standin.probes == 0
    err = capsys.readouterr().err
    assert code == 2
    assert "refusing to send traffic" in err and "allow_targets" in err


def test_the_allow_list_check_reads_loadgen_allow_targets(tmp_path, monkeypatch):
    from nfr.demo import _loadgen_refuses

    scenario = ROOT / "loadgen" / "scenarios" / "perf-01-http.yml"
    refused = _loadgen_refuses(scenario, "http://ticketero.staging.example.org:8080", tmp_path)
    assert refused is not None and "ticketero.staging.example.org" in refused
    monkeypatch.setenv("LOADGEN_ALLOW_TARGETS", "ticketero.staging.example.org")
    assert _loadgen_refuses(scenario, "http://ticketero.staging.example.org:8080", tmp_path) is None


@pytest.mark.parametrize("name", ["PERF-01-HTTP", "mixed-user-classes"])
def test_the_shipped_http_only_scenarios_need_nothing_but_a_target(name, tmp_path):
    import yaml

    from nfr.demo import _loadgen_refuses, resolve_scenario

    path = resolve_scenario(name)
    doc = yaml.safe_load(path.read_text())
    assert missing_needs(path, declared_needs(path, doc), inferred_needs(doc), available=()) is None
    assert _loadgen_refuses(path, "http://127.0.0.1:18080", tmp_path) is None


def test_an_unreachable_target_is_refused(tmp_path, capsys):
    code = main(["run", "--target", "http://127.0.0.1:9", "--results", str(tmp_path)])
    assert code == 2
    assert "does not answer" in capsys.readouterr().err


def test_the_http_only_perf_01_needs_nothing_but_http():
    import yaml

    doc = yaml.safe_load((ROOT / "loadgen" / "scenarios" / "perf-01-http.yml").read_text())
    assert declared_needs("perf-01-http.yml", doc) == ()
    assert inferred_needs(doc) == {}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen",
            "validate",
            str(ROOT / "loadgen" / "scenarios" / "perf-01-http.yml"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


# -- end to end: the stand-in through nfr run ---------------------------------------------------------


def _run(standin: StandIn, results: Path, *extra: str) -> tuple[int, dict, str]:
    env = dict(os.environ)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nfr",
            "run",
            "--target",
            standin.url,
            "--scenario",
            str(SCENARIO),
            "--compress",
            "60",
            "--results",
            str(results),
            *extra,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=240,
    )
    try:
        report = json.loads((results / "results.json").read_text())
    except OSError:
        report = {}
    return proc.returncode, report, proc.stdout + proc.stderr


def _by_nfr(report: dict) -> dict[str, dict]:
    return {r["nfr"]: r for r in report["results"]}


@pytest.mark.slow
def test_stand_in_runs_fail_exactly_their_nfr_and_the_evidence_judges_again(tmp_path):
    receiver_dir = tmp_path / "receiver"
    receiver_config = render_config(receiver_dir / "prometheus.yml", {}, scrape_interval="1s")
    receiver = PrometheusServer(
        receiver_config, receiver_dir / "data", extra_args=["--web.enable-remote-write-receiver"]
    ).start()
    stall = StandIn(stall_every=10, stall_seconds=3).start()
    errors = StandIn(error_every=200).start()
    healthy = StandIn().start()
    try:
        with ThreadPoolExecutor(3) as pool:
            stalled_run = pool.submit(_run, stall, tmp_path / "stall")
            error_run = pool.submit(_run, errors, tmp_path / "errors")
            healthy_run = pool.submit(
                _run, healthy, tmp_path / "healthy", "--remote-write", f"{receiver.url}/api/v1/write"
            )
            runs = {
                "stall": stalled_run.result(),
                "errors": error_run.result(),
                "healthy": healthy_run.result(),
            }
        for name, (code, report, output) in runs.items():
            assert report, f"{name}: no results.json\n{output[-3000:]}"
            print(
                f"\n== {name}: exit {code}, snapshot {report['evidence'].get('bytes')} bytes\n{output[-1800:]}"
            )

        # A 3 s stall on every 10th request: about 90 % within 2 s, RNF-02 fails; nothing else fails.
        code, report, output = runs["stall"]
        nfrs = _by_nfr(report)
        assert code == 1
        assert nfrs["RNF-02"]["status"] == "FAIL", output[-3000:]
        # The run's share within 2 s, as every report gives it ("Requests answered within 2 s | 90.00 %").
        assert 0.85 <= report["figures"]["ratio_within_2s"] <= 0.95
        markdown = (tmp_path / "stall" / "NFR-TEST-RESULTS.md").read_text()
        assert re.search(r"Requests answered within 2 s[^|\n]*\| (8[5-9]|9[0-4])\.\d\d %", markdown)
        assert not [n for n, r in nfrs.items() if r["status"] == "FAIL" and n != "RNF-02"]

        # 0.5 % of 503: RNF-06 fails (target 99.9 %).
        code, report, output = runs["errors"]
        nfrs = _by_nfr(report)
        assert code == 1
        assert nfrs["RNF-06"]["status"] == "FAIL", output[-3000:]
        assert 0.99 <= report["figures"]["success_ratio"] < 0.999
        assert nfrs["RNF-02"]["status"] == "PASS"

        # Healthy: RNF-02 and RNF-06 pass (put to the test), every NFR without data is NO DATA — never PASS.
        code, report, output = runs["healthy"]
        nfrs = _by_nfr(report)
        assert nfrs["RNF-02"]["status"] == "PASS" and nfrs["RNF-02"]["exercised"] is True, output[-3000:]
        assert nfrs["RNF-06"]["status"] == "PASS" and nfrs["RNF-06"]["exercised"] is True
        for nfr in ("RNF-01", "RNF-03", "RNF-04", "RNF-05", "RNF-07"):
            assert nfrs[nfr]["status"] == "NO DATA", nfr
        assert "(they will be NO DATA, never PASS): RNF-01, RNF-03, RNF-04, RNF-05, RNF-07" in output
        assert not [a for a in report["meta_alerts"] if a.get("name") == "TicketeroTargetDown"]
        assert code == 1  # NO DATA is never a pass

        # The evidence judges the run again, with the same verdict.
        for name in runs:
            evidence = tmp_path / name / "evidence"
            again = subprocess.run(
                [sys.executable, "-m", "nfr", "verdict", "--snapshot", str(evidence), "--json"],
                capture_output=True, text=True, cwd=ROOT, timeout=120,
            )  # fmt: skip
            assert again.returncode == runs[name][0], again.stderr
            statuses = {r["nfr"]: r["status"] for r in json.loads(again.stdout)["results"]}
            assert statuses == {n: r["status"] for n, r in _by_nfr(runs[name][1]).items()}, name

        # The long-term store got every series, ALERTS included: its verdict (rules read from the run's
        # files, as it evaluates none) equals the local one.
        healthy_report = runs["healthy"][1]
        evidence = tmp_path / "healthy" / "evidence"
        meta = json.loads((evidence / "evidence.json").read_text())
        remote = compute_verdict(
            PrometheusClient(receiver.url, rule_files=sorted((evidence / "rules").glob("*.yml"))),
            meta["start"],
            meta["end"],
            settle=meta["settle"],
            rate_window=meta["rate_window"],
            step=meta["scrape_interval"],
        )
        assert {r.nfr: r.status for r in remote.results} == {
            n: r["status"] for n, r in _by_nfr(healthy_report).items()
        }
        assert receiver.query('count(ALERTS{alertname="TicketeroMemoryGrowth"}) or vector(0)') is not None
        assert set(NFR_IDS) == {r.nfr for r in remote.results}
    finally:
        for standin in (stall, errors, healthy):
            standin.stop()
        receiver.stop()
