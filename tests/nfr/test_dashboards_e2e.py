"""Every query of every dashboard returns data from the real stack under a short real load, in both profiles.

The local stack (service, exporter, Prometheus with the profile's rules compressed 60x, load generator)
runs a 45 s load with the events the dashboards exist to show: a stalled worker that recovery detects
(recovery events, detection latency) and an 8 s outage of the service (target down and health probe
alerts, so the alert tables and the alert annotations have rows). Then each panel, annotation and
template-variable query — the dashboard's variables replaced by what Grafana pastes for their defaults
(``$job`` → the configured jobs, ``$instance`` → ``.+``) — runs as Grafana would run it for the run's time
range, a range query, and must neither error nor come back empty.

Profile run: the committed dashboards with the committed rules. Profile staging: the mixin's staging build
(its rules, with the SLO recording rules and burn-rate alerts, and its dashboards, with the SLO
dashboard); the reference service publishes ``http_server_requests_seconds`` like Micrometer, and the
SLO's long windows (3d, 30d) return data on a short run, a rate over the part of the window that exists.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nfr.dashboards import dashboard_files, load_dashboard, runnable_queries
from nfr.mixin.build import DASHBOARD_DIR, write_all
from nfr.mixin.config import PROFILES, MixinConfig
from nfr.promclient import PrometheusQueryError
from nfr.prometheus import default_rule_files
from nfr.stack import LocalStack, StackSettings

SCENARIO = Path(__file__).parent / "scenarios" / "proof-steady.yml"

pytestmark = pytest.mark.slow


def _outage(stack: LocalStack, after: float, seconds: float) -> None:
    time.sleep(after)
    assert stack.service is not None
    stack.service.stop()
    time.sleep(seconds)
    stack.start_service()


def _has_data(result: list[dict[str, object]]) -> bool:
    for series in result:
        for _, value in series.get("values", []):  # type: ignore[attr-defined]
            number = float(value)
            if not math.isnan(number):
                return True
    return False


def _profile_artefacts(profile: str, tmp_path: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    """The rule files and dashboards of ``profile``: committed for run, freshly built for staging."""
    if profile == "run":
        return default_rule_files(), [load_dashboard(f) for f in dashboard_files()]
    out = tmp_path / "mixin"
    write_all(MixinConfig(profile=profile), out)
    rules = sorted((out / "prometheus" / "rules").glob("*.yml")) + sorted((out / "alerts").glob("*.yml"))
    return rules, [load_dashboard(f) for f in dashboard_files(out / DASHBOARD_DIR)]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_dashboard_query_returns_data(tmp_path: Path, profile: str) -> None:
    rule_files, dashboards = _profile_artefacts(profile, tmp_path)
    if not dashboards:
        pytest.skip("no dashboards committed yet")
    if profile == "staging":
        assert "ticketero-slo" in {d["uid"] for d in dashboards}
    queries = [q for dashboard in dashboards for q in runnable_queries(dashboard)]
    assert queries, "dashboards without Prometheus queries"
    settings = StackSettings(
        run_dir=tmp_path / "stack",
        compress=60,
        scrape_interval=1.0,
        rule_files=rule_files,
        service={
            "service_time": 0.2,
            "heartbeat_interval": 1.0,
            "heartbeat_timeout": 3.0,
            "recovery_interval": 1.0,
            "faults": ("stalled-worker",),
        },
    )
    stack = LocalStack(settings)
    try:
        stack.start()
        start = time.time()
        stack.start_loadgen(SCENARIO, duration=45, linger=60)
        outage = threading.Thread(target=_outage, args=(stack, 20, 8), daemon=True)
        outage.start()
        outage.join(timeout=60)
        assert stack.loadgen is not None
        deadline = time.time() + 60
        while stack.loadgen_sample("loadgen_run_active") != 0 and time.time() < deadline:
            time.sleep(1)
        time.sleep(5)
        end = time.time()
        client = stack.client
        rabbit_scraped = "rabbitmq" in {t["labels"]["job"] for t in client.targets()}
        failures, skipped = [], []
        for uid, where, promql in queries:
            if "rabbitmq_" in promql and not rabbit_scraped:
                skipped.append((uid, where, promql))
                continue
            try:
                result = client.query_range(promql, start, end, 1)
            except PrometheusQueryError as err:
                failures.append(f"{uid} / {where}: {promql}: error {err}")
                continue
            if not _has_data(result):
                failures.append(f"{uid} / {where}: {promql}: no data")
        print(
            f"\n{profile}: {len(queries) - len(failures) - len(skipped)} of {len(queries)} queries of "
            f"{len(dashboards)} dashboards returned data"
        )
        if skipped:
            print(f"skipped (no rabbitmq_prometheus endpoint on this broker): {skipped}")
        assert not failures, "\n".join(failures)
    finally:
        stack.stop()
