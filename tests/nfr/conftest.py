"""Shared fixtures: one real Prometheus with the repository's (compressed) alerts over a steered target.

The timeline, in seconds from the start (scrape and evaluation every 1 s, rules compressed 60x with a
4 s floor):

    0 ........ 12   healthy                              → window "healthy"
    12 ....... 20   1 double-assigned advisor (RNF-03),  → window "race" = [10, 24] + 3 s settle
                    and 3 deadlocks (13, 15, 17 s): two checks of the same alert name
    24 ....... 34   heartbeat series removed (RNF-05)    → window "absent" = [25, 34]
    36 ....... 42   30 % of requests take 3 s (RNF-02),  → window "slow" = [35, 50] + 3 s settle
                    2 % fail (RNF-06)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nfr.processes import free_port
from nfr.promclient import PrometheusClient
from nfr.prometheus import PrometheusServer, default_rule_files, render_config
from nfr.rulescale import compress_rule_files
from tests.nfr.synthetic import SyntheticTicketero, serve


@dataclass
class SyntheticRun:
    client: PrometheusClient
    t0: float
    race_at: float
    race_cleared_at: float
    absent_at: float
    end: float
    slow_at: float = 0.0
    slow_cleared_at: float = 0.0
    slow_end: float = 0.0
    collector: SyntheticTicketero | None = None

    def window(self, name: str) -> tuple[float, float]:
        return {
            "healthy": (self.t0 + 3, self.race_at - 1),
            "race": (self.race_at - 2, self.absent_at),
            "absent": (self.absent_at + 1, self.end),
            "slow": (self.slow_at - 1, self.slow_end),
        }[name]


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyntheticRun]:
    if not default_rule_files():
        pytest.skip("no rule files shipped yet")
    work = tmp_path_factory.mktemp("synthetic")
    rules = compress_rule_files(default_rule_files(), work / "rules", factor=60, floor=4)
    collector = SyntheticTicketero()
    port = free_port()
    server, thread = serve(collector, port)
    prom_port = free_port()
    config = render_config(
        work / "prometheus.yml",
        # One endpoint plays the three components; each job's selector picks its own series from it.
        {job: [f"127.0.0.1:{port}"] for job in ("ticketero-exporter", "loadgen", "ticketero-app")},
        rule_files=rules,
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    prometheus = PrometheusServer(config, work / "data", port=prom_port).start()
    try:
        t0 = time.time()
        _sleep_until(t0 + 12)
        race_at = time.time()
        collector.set(double_assigned=1.0)
        for at in (13, 15, 17):
            _sleep_until(t0 + at)
            collector.set(deadlocks=collector.deadlocks + 1)
        _sleep_until(t0 + 20)
        race_cleared_at = time.time()
        collector.set(double_assigned=0.0)
        _sleep_until(t0 + 24)
        absent_at = time.time()
        collector.set(heartbeat_series=False)
        _sleep_until(t0 + 34)
        end = time.time()
        collector.set(heartbeat_series=True)
        _sleep_until(t0 + 36)
        slow_at = time.time()
        collector.set(slow_share=0.3, failure_share=0.02)
        _sleep_until(t0 + 42)
        slow_cleared_at = time.time()
        collector.set(slow_share=0.0, failure_share=0.0)
        _sleep_until(t0 + 50)
        slow_end = time.time()
        # Let the last evaluation land after the slow window's 3 s settle.
        _sleep_until(t0 + 55)
        yield SyntheticRun(
            PrometheusClient(prometheus.url), t0, race_at, race_cleared_at, absent_at, end,
            slow_at, slow_cleared_at, slow_end, collector,
        )  # fmt: skip
    finally:
        prometheus.stop()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def race_report_dir(synthetic_run: SyntheticRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reports of the verdict over the race window (RNF-03 fails, every NFR has data)."""
    from nfr.reports import write_reports
    from nfr.verdict import compute_verdict

    start, end = synthetic_run.window("race")
    verdict = compute_verdict(synthetic_run.client, start, end, settle=3, rate_window="4s", step=1)
    verdict.run_id = "synthetic-race"
    verdict.scenario = "synthetic"
    out = tmp_path_factory.mktemp("reports")
    latency = {"p50": 0.012, "p90": 0.02, "p95": 0.031, "p99": 0.05, "max": 0.2}
    block = {"requests": 40, "failures": 0, "dropped": 0, "latency": latency, "throughput_per_min": 120.0}
    summary = {
        "scenario": "synthetic", "outcome": "passed", "exit_code": 0,
        "load": {"total": block, "endpoints": {"create_ticket": block}},
        "thresholds": [], "probes": [], "actions": [],
    }  # fmt: skip
    write_reports(verdict, out, {"faults": ["planted double assignment"], "loadgen_summary": summary})
    return out
