"""The `loadgen` command as a user runs it: validation, allow-list, exit codes, rollbacks, signals,
metrics endpoint and multi-process mode."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from nfr.processes import free_port
from tests.loadgen.conftest import REPO, loadgen_command, read_json, run_loadgen
from tests.loadgen.fake_service import FakeTicketero

SCENARIOS = sorted((REPO / "loadgen" / "scenarios").glob("*.yml"))


def test_every_shipped_scenario_validates() -> None:
    assert len(SCENARIOS) >= 17
    result = run_loadgen("validate", *map(str, SCENARIOS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok: ") == len(SCENARIOS)
    names = {line.split("(")[1].split(",")[0] for line in result.stdout.splitlines()}
    for plan_id in (
        "PERF-01",
        "PERF-02",
        "PERF-03",
        "CONC-01",
        "CONC-02",
        "CONC-03",
        "RES-01",
        "RES-02",
        "RES-03",
        "CONS-01",
        "CONS-02",
        "SHUT-01",
        "SHUT-02",
        "SCAL-01",
        "SCAL-02",
        "CONTENTION",
    ):
        assert plan_id in names


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("duration: soon\n", "duration", "expected a duration"),
        ("workload: {model: spiral}\n", "workload.model", "expected one of closed, open, burst, contention"),
        ("workload: {vus: 0}\n", "workload.vus", "expected an integer >= 1"),
        ("requests: [{endpoint: search}]\n", "requests[0].path", "expected a request path"),
        ("thresholds: [{metric: p95}]\n", "thresholds[0]", "expected max or min"),
        ("thresholds: [{metric: p97, max: 1s}]\n", "thresholds[0].metric", "expected one of p50"),
        ("ticket: {queues: {VIP: 1}}\n", "ticket.queues.VIP", "expected a queue type"),
        ("method: [{type: docker, container: x, op: explode}]\n", "method[0].op", "expected one of stop"),
        ("method: [{type: proxy, proxy: db, op: cut}]\n", "method[0].proxy", "proxy declared under proxies"),
        ("setup: [{type: sql}]\n", "setup[0].sql", "expected a string"),
        ("colour: blue\n", "colour", "unknown key"),
        ("target: ftp://x\n", "target", "expected an http:// or https:// URL"),
        ("workload: [1, 2]\n", "workload", "expected a mapping"),
        ("a: [unclosed\n", "", "not valid YAML"),
    ],
)
def test_malformed_scenario_exits_2_naming_file_key_and_expectation(
    tmp_path: Path, text, key, expected
) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(text)
    for command in (("validate", str(path)), ("run", str(path), "--metrics-port", "0")):
        result = run_loadgen(*command)
        assert result.returncode == 2, result
        assert str(path) in result.stderr
        assert f": {key}:" in result.stderr or (not key and "not valid YAML" in result.stderr)
        assert expected in result.stderr


def test_environment_and_flags_override_the_file_and_name_their_origin(tmp_path: Path, service) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        "target: http://127.0.0.1:1\nmax_requests: 3\nworkload: {model: closed, vus: 1}\nrequests: [health]\n"
    )
    summary = tmp_path / "out.json"
    env = {"LOADGEN_TARGET": service.url, "LOADGEN_MAX_REQUESTS": "7"}
    result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-json", str(summary), env=env)
    assert result.returncode == 0, result.stderr
    assert read_json(summary)["load"]["total"]["requests"] == 7  # environment beat the file
    result = run_loadgen(
        "run",
        str(path),
        "--metrics-port",
        "0",
        "--max-requests",
        "4",
        "--summary-json",
        str(summary),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert read_json(summary)["load"]["total"]["requests"] == 4  # the flag beat the environment
    assert service.state.requests["health"] == 11
    bad = run_loadgen("run", str(path), "--metrics-port", "0", env={"LOADGEN_MAX_REQUESTS": "lots"})
    assert bad.returncode == 2
    assert "environment variable LOADGEN_MAX_REQUESTS: max_requests: expected an integer >= 1" in bad.stderr


def test_a_bad_flag_or_variable_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("workload: {model: closed, vus: 1}\nrequests: [health]\n")
    result = run_loadgen("run", str(path), "--timeout", "0s")
    assert result.returncode == 2
    assert (
        "flag --timeout: timeout: expected a duration such as 500ms, 2s, 1m30s, 1h or a number of seconds, greater than 0"
        in result.stderr
    )
    result = run_loadgen("run", str(path), env={"LOADGEN_METRICS_PORT": "70000"})
    assert result.returncode == 2
    assert (
        "environment variable LOADGEN_METRICS_PORT: metrics_port: expected a TCP port 1..65535, or 0 to serve no metrics"
        in result.stderr
    )
    result = run_loadgen("run", str(path), "--database-dsn", "db.example.com")
    assert (
        result.returncode == 2
        and "flag --database-dsn: services.database_dsn: expected a PostgreSQL DSN" in result.stderr
    )


def _external_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent: picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_allow_list_refuses_a_non_loopback_target_before_sending_anything(tmp_path: Path) -> None:
    address = _external_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with FakeTicketero(host=address) as external:
        path = tmp_path / "s.yml"
        path.write_text(
            f"target: {external.url}\nmax_requests: 5\nworkload: {{vus: 1}}\nrequests: [health]\n"
        )
        refused = run_loadgen("run", str(path), "--metrics-port", "0")
        assert refused.returncode == 2
        assert "allow_targets" in refused.stderr and address in refused.stderr
        assert external.state.total() == 0
        allowed = run_loadgen("run", str(path), "--metrics-port", "0", "--allow-target", address)
        assert allowed.returncode == 0, allowed.stderr
        assert external.state.total() == 5


def test_a_threshold_that_names_an_nfr_takes_its_number_from_the_catalogue(tmp_path: Path, service) -> None:
    from nfr.catalogue import RNF06

    path = tmp_path / "s.yml"
    path.write_text(
        f"target: {service.url}\nmax_requests: 10\nworkload: {{vus: 2}}\nrequests: [health]\n"
        "thresholds:\n  - {nfr: RNF-06}\n  - {nfr: RNF-02, endpoint: health}\n"
    )
    summary = tmp_path / "out.json"
    result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-json", str(summary))
    assert result.returncode == 0, result.stdout + result.stderr
    checked = [item["threshold"] for item in read_json(summary)["thresholds"]]
    assert checked == [
        f"error_rate <= {1 - RNF06.limit.value:g} (RNF-06)",
        "p95{endpoint=health} <= 2s (RNF-02)",
    ]
    path.write_text(path.read_text().replace("{nfr: RNF-06}", "{nfr: RNF-03}"))
    refused = run_loadgen("validate", str(path))
    assert refused.returncode == 2
    assert "thresholds[0].nfr: expected an NFR the load generator can measure (RNF-01, RNF-02, RNF-06); " in (
        refused.stderr + refused.stdout
    )


def test_failed_threshold_exits_99(tmp_path: Path, service) -> None:
    service.state.delay = 0.05
    path = tmp_path / "s.yml"
    path.write_text(
        f"target: {service.url}\nmax_requests: 10\nworkload: {{vus: 2}}\nrequests: [health]\n"
        "thresholds:\n  - {metric: p95, max: 10ms}\n  - {metric: error_rate, max: 0}\n"
    )
    summary = tmp_path / "out.json"
    result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-json", str(summary))
    assert result.returncode == 99
    assert "threshold [FAIL] p95 <= 0.01s" in result.stdout
    document = read_json(summary)
    assert document["outcome"] == "thresholds failed"
    assert [item["ok"] for item in document["thresholds"]] == [False, True]


def _scenario_with_rollback(tmp_path: Path, target: str, method: str) -> tuple[Path, Path]:
    marker = tmp_path / "rolled-back"
    path = tmp_path / "s.yml"
    path.write_text(
        f"""
target: {target}
duration: 20s
workload: {{model: closed, vus: 2}}
think_time: 20ms
requests: [health]
method:
{method}
rollbacks:
  - {{name: undo the fault, type: command, run: "echo done >> {marker}"}}
"""
    )
    return path, marker


def test_rollbacks_run_after_an_action_error(tmp_path: Path, service) -> None:
    path, marker = _scenario_with_rollback(
        tmp_path, service.url, '  - {name: broken fault, at: 300ms, type: command, run: "exit 3"}'
    )
    summary = tmp_path / "out.json"
    started = time.monotonic()
    result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-json", str(summary))
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 10  # the failing action ended the 20 s load early
    assert marker.read_text() == "done\n"
    document = read_json(summary)
    assert document["outcome"] == "action failed"
    assert "exited 3" in document["error"]
    assert [a["phase"] for a in document["actions"]] == ["method", "rollback"]


def test_a_failed_rollback_fails_a_run_that_otherwise_passed(tmp_path: Path, service) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        f"target: {service.url}\nmax_requests: 5\nworkload: {{vus: 1}}\nrequests: [health]\n"
        "rollbacks:\n  - {name: restart the broker, type: command, run: 'exit 4'}\n"
        "  - {name: second rollback still runs, type: command, run: 'true'}\n"
    )
    summary = tmp_path / "out.json"
    result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-json", str(summary))
    assert result.returncode == 1, result.stderr
    assert "WARNING: rollback failed (restart the broker): the system under test may be left broken" in (
        result.stderr
    )
    document = read_json(summary)
    assert document["outcome"] == "rollback failed" and document["rollback_failed"] is True
    assert document["error"] == "rollback failed: restart the broker"
    assert [(a["name"], a["ok"]) for a in document["actions"]] == [
        ("restart the broker", False),
        ("second rollback still runs", True),
    ]


def test_rollbacks_run_when_the_steady_state_does_not_hold(tmp_path: Path, service) -> None:
    path, marker = _scenario_with_rollback(tmp_path, service.url, "  []")
    text = path.read_text() + "steady_state:\n  - {type: http, path: /missing, expect_status: 200}\n"
    path.write_text(text)
    result = run_loadgen("run", str(path), "--metrics-port", "0")
    assert result.returncode == 97
    assert marker.exists()
    assert service.state.total() == 0  # no load after a failed hypothesis


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_rollbacks_run_after_a_signal(tmp_path: Path, service, signum, code) -> None:
    path, marker = _scenario_with_rollback(
        tmp_path, service.url, "  - {name: long fault, at: 0s, type: sleep, duration: 30s}"
    )
    summary = tmp_path / "out.json"
    process = subprocess.Popen(
        loadgen_command("run", str(path), "--metrics-port", "0", "--summary-json", str(summary)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while service.state.total() < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.state.total() >= 5, "the load never started"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == code, stderr
    assert marker.read_text() == "done\n"
    document = read_json(summary)
    assert document["outcome"] == "interrupted"
    assert document["load"]["total"]["requests"] > 0


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f"|{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[key] = sample.value
    return samples


def _wait_scrape(port: int, ready, timeout: float = 20) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples = _scrape(port)
            if ready(samples):
                return samples
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"port {port} never served the expected samples")


def test_metrics_endpoint_serves_the_contract_names_and_lingers(tmp_path: Path, service) -> None:
    port = free_port()
    path = tmp_path / "s.yml"
    path.write_text(
        f"name: METRICS\ntarget: {service.url}\nmax_requests: 30\nworkload: {{vus: 3}}\n"
        "requests: [create_ticket, health]\n"
    )
    process = subprocess.Popen(
        loadgen_command("run", str(path), "--metrics-port", str(port), "--linger", "20s", "--quiet"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        samples = _wait_scrape(port, lambda s: s.get("loadgen_run_active") == 0.0)
        requests = sum(v for k, v in samples.items() if k.startswith("loadgen_requests_total|"))
        assert requests == 30
        assert service.state.total() == 30
        assert samples["loadgen_requests_in_flight"] == 0
        assert samples["loadgen_scenario_info|phase=done|scenario=METRICS"] == 1
        counts = sum(v for k, v in samples.items() if k.startswith("loadgen_request_duration_seconds_count|"))
        assert counts == 30
        for le in ("1.5", "2.0"):
            assert f"loadgen_request_duration_seconds_bucket|endpoint=health|le={le}" in samples
        names = {key.split("|")[0] for key in samples}
        # exactly the docs/metrics.md series, nothing more (no *_created, no process/python collectors)
        assert names == {
            "loadgen_request_duration_seconds_bucket",
            "loadgen_request_duration_seconds_count",
            "loadgen_request_duration_seconds_sum",
            "loadgen_requests_total",
            "loadgen_request_failures_total",
            "loadgen_arrivals_dropped_total",
            "loadgen_requests_in_flight",
            "loadgen_internal_errors_total",
            "loadgen_run_active",
            "loadgen_scenario_info",
            "loadgen_build_info",
        }
        assert samples["loadgen_internal_errors_total|where=engine"] == 0
        assert samples["loadgen_internal_errors_total|where=recorder"] == 0
        assert process.poll() is None  # still lingering for Prometheus's last scrape
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_multi_process_mode_splits_the_load_and_sums_exactly(tmp_path: Path, service) -> None:
    port = free_port(consecutive=2)
    path = tmp_path / "s.yml"
    summary = tmp_path / "out.json"
    path.write_text(
        f"target: {service.url}\nmax_requests: 41\nduration: 30s\nworkload: {{vus: 4}}\nrequests: [create_ticket]\n"
    )
    process = subprocess.Popen(
        loadgen_command(
            "run",
            str(path),
            "--processes",
            "2",
            "--metrics-port",
            str(port),
            "--linger",
            "20s",
            "--summary-json",
            str(summary),
            "--quiet",
        ),  # fmt: skip
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        per_worker = []
        for worker_port in (port, port + 1):
            samples = _wait_scrape(worker_port, lambda s: s.get("loadgen_run_active") == 0.0)
            per_worker.append(
                sum(
                    v
                    for k, v in samples.items()
                    if k.startswith("loadgen_requests_total|endpoint=create_ticket")
                )
            )
        assert sorted(per_worker) == [20, 21]  # 41 split across the two workers
        assert sum(per_worker) == 41
        # the merged result is out while the workers still linger for Prometheus
        deadline = time.monotonic() + 10
        while not summary.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read_json(summary)["load"]["total"]["requests"] == 41
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)  # ends the workers' linger
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert service.state.requests["create_ticket"] == 41
    # every nationalId was unique across the processes: all 41 created, no 409
    assert len(service.state.active) == 41


def test_multi_process_summary_merges_histograms(tmp_path: Path, service) -> None:
    path = tmp_path / "s.yml"
    summary = tmp_path / "out.json"
    path.write_text(
        f"target: {service.url}\nduration: 1s\nworkload: {{model: open, rate: 200/s}}\nrequests: [health]\n"
    )
    result = run_loadgen(
        "run", str(path), "--processes", "2", "--metrics-port", "0", "--summary-json", str(summary), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    load = read_json(summary)["load"]
    assert load["processes"] == 2
    assert load["total"]["requests"] == 200 == service.state.requests["health"]
    assert load["schedule_lag"]["samples"] == 200
    assert (
        0
        < load["total"]["latency"]["p50"]
        <= load["total"]["latency"]["p99"]
        <= load["total"]["latency"]["max"]
    )


def test_help_explains_settings_and_exit_codes() -> None:
    result = run_loadgen("run", "--help")
    assert result.returncode == 0
    for text in ("LOADGEN_", "allow_targets", "99", "97", "--processes", "--linger", "rollbacks"):
        assert text in result.stdout
    assert os.path.basename(str(REPO / "loadgen" / "scenarios")) in result.stdout


def test_standing_proxy_is_driven_by_a_scenario_and_by_hand(tmp_path: Path, service) -> None:
    listen, control = free_port(), free_port()
    proxy = subprocess.Popen(
        loadgen_command(
            "proxy",
            "--listen",
            f"127.0.0.1:{listen}",
            "--target",
            f"127.0.0.1:{service.port}",
            "--control",
            f"127.0.0.1:{control}",
        ),  # fmt: skip
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "fault proxy" in (proxy.stdout.readline() if proxy.stdout else "")
        path = tmp_path / "s.yml"
        summary = tmp_path / "out.json"
        path.write_text(
            f"""
target: http://127.0.0.1:{listen}
duration: 3s
timeout: 1s
workload: {{model: open, rate: 50/s}}
requests: [health]
proxies:
  - {{name: api, control: "http://127.0.0.1:{control}"}}
method:
  - {{at: 1s, type: proxy, proxy: api, op: cut}}
rollbacks:
  - {{type: proxy, proxy: api, op: restore}}
"""
        )
        result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-json", str(summary))
        total = read_json(summary)["load"]["total"]
        assert total["requests"] == 150
        assert 80 <= total["statuses"].get("0", 0) <= 110  # cut from 1 s to the end: ~100 refused
        assert result.returncode == 0, result.stderr
        # the rollback restored it, and the proxy outlived the run
        with urllib.request.urlopen(f"http://127.0.0.1:{control}/status", timeout=5) as response:
            status = json.loads(response.read())
        assert status["cut"] is False and status["refused_total"] >= 80
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/actuator/health", timeout=5) as response:
            assert response.status == 200
        request = urllib.request.Request(f"http://127.0.0.1:{control}/latency?seconds=0.2", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["latency"] == 0.2
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{listen}/actuator/health", timeout=5):
            assert time.monotonic() - started >= 0.4
    finally:
        proxy.send_signal(signal.SIGINT)
        assert proxy.wait(timeout=10) == 0


def test_scenario_refuses_when_no_standing_proxy_answers(tmp_path: Path, service) -> None:
    path = tmp_path / "s.yml"
    path.write_text(
        f"target: {service.url}\nmax_requests: 1\nrequests: [health]\n"
        f"proxies:\n  - {{name: db, control: 'http://127.0.0.1:{free_port()}'}}\n"
    )
    result = run_loadgen("run", str(path), "--metrics-port", "0")
    assert result.returncode == 1
    assert "no `loadgen proxy` answers" in result.stdout
    assert service.state.total() == 0


def test_signal_during_setup_still_rolls_back_and_sends_nothing(tmp_path: Path, service) -> None:
    marker = tmp_path / "rolled-back"
    path = tmp_path / "s.yml"
    path.write_text(
        f"""
target: {service.url}
max_requests: 10
requests: [health]
setup:
  - {{type: sleep, duration: 30s}}
rollbacks:
  - {{type: command, run: "echo done >> {marker}"}}
"""
    )
    process = subprocess.Popen(
        loadgen_command("run", str(path), "--metrics-port", "0"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=20)
    assert process.returncode == 130
    assert marker.read_text() == "done\n"
    assert service.state.total() == 0


def test_multi_process_ramp_merges_stage_statistics(tmp_path: Path, service) -> None:
    path = tmp_path / "s.yml"
    summary = tmp_path / "out.json"
    path.write_text(
        f"""
target: {service.url}
workload:
  model: open
  start_rate: 40
  stages: [{{duration: 1s, target: 40}}, {{duration: 1s, target: 120}}]
  breaking_point: {{p95: 1s}}
requests: [health]
"""
    )
    result = run_loadgen(
        "run", str(path), "--processes", "2", "--metrics-port", "0", "--summary-json", str(summary), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    load = read_json(summary)["load"]
    # 40 in the flat second, (40 + 120) / 2 = 80 in the ramp, split over two processes and merged back
    assert [stage["requests"] for stage in load["stages"]] == [40, 80]
    assert [stage["target_rate"] for stage in load["stages"]] == [40, 120]
    assert load["breaking_point"] is None
    assert service.state.requests["health"] == 120


def test_summary_csv_has_endpoint_total_and_stage_rows(tmp_path: Path, service) -> None:
    import csv

    path = tmp_path / "s.yml"
    table = tmp_path / "out.csv"
    path.write_text(
        f"target: {service.url}\nworkload: {{model: open, start_rate: 50, stages: [{{duration: 1s, target: 50}}]}}\n"
        "requests: [health, create_ticket]\n"
    )
    result = run_loadgen("run", str(path), "--metrics-port", "0", "--summary-csv", str(table), "--quiet")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(table.open()))
    by_scope = {(row["scope"], row["name"]): row for row in rows}
    assert int(by_scope[("total", "TOTAL")]["requests"]) == 50
    assert (
        int(by_scope[("endpoint", "health")]["requests"])
        + int(by_scope[("endpoint", "create_ticket")]["requests"])
        == 50
    )
    assert int(by_scope[("stage", "0")]["requests"]) == 50
    assert float(by_scope[("total", "TOTAL")]["p95_s"]) > 0
