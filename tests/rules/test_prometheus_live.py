"""The repository's rules in a real Prometheus, started through ``nfr.prometheus``.

A small exposition endpoint (prometheus_client, in this process) publishes a fixed set of series under
the contract's metric names: a dead BUSY worker, a failing health probe, healthy everything else. A
second target points at a closed port. Prometheus scrapes and evaluates every second, so within ~20 s
we see: every rule evaluates without error (promtool tests cannot catch e.g. duplicate label sets at
runtime), the expected alerts fire, the others stay silent, and nfr.prometheus's API calls work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from nfr.prometheus import (
    PROMETHEUS_BINARY,
    PrometheusError,
    PrometheusServer,
    default_rule_files,
    free_port,
    render_config,
)

pytestmark = pytest.mark.skipif(not Path(PROMETHEUS_BINARY).exists(), reason="prometheus not installed")


@pytest.fixture(scope="module")
def exposition() -> Iterator[str]:
    """Serve a fixed snapshot of exporter and load generator series; yield its host:port."""
    registry = CollectorRegistry()
    Gauge("ticketero_probe_success", "probe", registry=registry).set(0)
    Gauge("ticketero_advisor_busy_heartbeat_age_max_seconds", "age", registry=registry).set(120)
    Gauge("ticketero_advisors_double_assigned", "race", registry=registry).set(0)
    Gauge("ticketero_tickets_duplicate_active", "race", registry=registry).set(0)
    Counter("ticketero_database_deadlocks", "deadlocks", registry=registry)
    inconsistent = Gauge("ticketero_tickets_inconsistent", "rule", ["rule"], registry=registry)
    for rule in (
        "in_progress_without_started_at",
        "completed_without_completed_at",
        "called_without_advisor",
    ):
        inconsistent.labels(rule).set(0)
    Gauge("ticketero_tickets_without_outbox", "outbox", registry=registry).set(0)
    outbox = Gauge("ticketero_outbox_messages", "outbox", ["status"], registry=registry)
    outbox.labels("PENDING").set(3)
    outbox.labels("FAILED").set(0)
    completed = Counter("ticketero_tickets_completed", "done", ["queue"], registry=registry)
    completed.labels("CAJA").inc(10)
    Gauge("loadgen_run_active", "run", registry=registry).set(1)
    requests = Counter("loadgen_requests", "req", ["endpoint", "status_class"], registry=registry)
    requests.labels("create_ticket", "2xx").inc(100)
    memory = Gauge("ticketero_container_memory_working_set_bytes", "mem", ["container"], registry=registry)
    memory.labels("ticketero-app").set(100e6)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(exposition: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    tmp = tmp_path_factory.mktemp("prom")
    config = render_config(
        tmp / "prometheus.yml",
        {
            "ticketero-exporter": [exposition],
            "loadgen": [exposition],
            "ticketero-app": [f"127.0.0.1:{free_port()}"],  # nothing listens there
        },
        rule_files=default_rule_files(),
        scrape_interval="1s",
        evaluation_interval="1s",
        scrape_timeout="900ms",
    )
    with PrometheusServer(config, tmp / "data") as prom:
        yield prom


def wait_for_firing(prom: PrometheusServer, names: set[str], timeout: float = 75) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        firing = prom.firing_alerts()
        if names <= {a["labels"]["alertname"] for a in firing}:
            return firing
        if time.monotonic() > deadline:
            raise AssertionError(f"{names} not all firing after {timeout}s; firing: {firing}")
        time.sleep(1)


def test_rule_files_load_and_every_rule_evaluates_cleanly(prometheus: PrometheusServer) -> None:
    time.sleep(3)  # a few evaluations
    groups = prometheus.rules()
    names = {g["name"] for g in groups}
    assert {"ticketero-throughput.rules", "ticketero-nfr.alerts", "ticketero-meta.alerts"} <= names
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert broken == []


def test_expected_alerts_fire_and_healthy_checks_stay_silent(prometheus: PrometheusServer) -> None:
    firing = wait_for_firing(
        prometheus, {"TicketeroDeadWorkerUndetected", "TicketeroHealthProbeFailing", "TicketeroTargetDown"}
    )
    by_name = {a["labels"]["alertname"]: a for a in firing}
    down = by_name["TicketeroTargetDown"]
    assert down["labels"]["job"] == "ticketero-app" and down["labels"]["severity"] == "critical"
    dead = by_name["TicketeroDeadWorkerUndetected"]
    assert dead["labels"]["nfr"] == "RNF-05"
    assert "120 s old" in dead["annotations"]["description"]
    silent = {
        "TicketeroRaceConditionDetected",
        "TicketeroInconsistentTickets",
        "TicketeroAvailabilityBelowTarget",
    }
    assert silent.isdisjoint(by_name), f"unexpected alerts: {sorted(silent & set(by_name))}"


def test_indicator_absent_names_the_nfr_without_data(prometheus: PrometheusServer) -> None:
    """The snapshot has no latency histogram: RNF-02 cannot be judged during the run."""
    wait_for_firing(prometheus, {"TicketeroNfrIndicatorAbsent"})
    absent = {
        a["labels"]["nfr"]
        for a in prometheus.firing_alerts()
        if a["labels"]["alertname"] == "TicketeroNfrIndicatorAbsent"
    }
    assert "RNF-02" in absent and "RNF-05" not in absent and "RNF-07" not in absent


def test_helper_queries_and_reload(prometheus: PrometheusServer) -> None:
    up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")}
    assert up == {"ticketero-exporter": "1", "loadgen": "1", "ticketero-app": "0"}
    now = time.time()
    series = prometheus.query_range("ticketero_probe_success", now - 5, now, 1)
    assert series and all(v == "0" for _, v in series[0]["values"])
    prometheus.reload()
    with pytest.raises(PrometheusError, match="parse error"):
        prometheus.query("sum(")


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("scrape_configs: [{job_name: x, static_configs: [{targets: [':::']}]}]\nbogus: 1\n")
    with pytest.raises(PrometheusError, match="exited with code"):
        PrometheusServer(bad, tmp_path / "data", start_timeout=15).start()
