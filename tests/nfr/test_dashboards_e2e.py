"""Every panel query of every dashboard returns data from the real stack under a short real load.

The local stack (service, exporter, Prometheus with the shipped rules compressed 60x, load generator)
runs a 45 s load with the events the dashboards exist to show: a stalled worker that recovery detects
(recovery events, detection latency) and an 8 s outage of the service (target down and health probe
alerts, so the alert-list panels have rows). Then each panel query runs as Grafana would run it for the
run's time range — a range query — and must neither error nor come back empty.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

from nfr.dashboards import dashboard_files, iter_panel_queries, to_promql
from nfr.promclient import PrometheusQueryError
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


def test_every_panel_query_returns_data(tmp_path: Path) -> None:
    files = dashboard_files()
    if not files:
        pytest.skip("no dashboards committed yet")
    queries = [q for f in files for q in iter_panel_queries(f)]
    assert queries, "dashboards without Prometheus queries"
    settings = StackSettings(
        run_dir=tmp_path / "stack",
        compress=60,
        scrape_interval=1.0,
        service_time=0.2,
        heartbeat_interval=1.0,
        heartbeat_timeout=3.0,
        recovery_interval=1.0,
        faults=("stalled-worker",),
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
        for uid, title, expr in queries:
            if "rabbitmq_" in expr and not rabbit_scraped:
                skipped.append((uid, title, expr))
                continue
            promql = to_promql(expr)
            try:
                result = client.query_range(promql, start, end, 1)
            except PrometheusQueryError as err:
                failures.append(f"{uid} / {title}: {promql}: error {err}")
                continue
            if not _has_data(result):
                failures.append(f"{uid} / {title}: {promql}: no data")
        print(
            f"\n{len(queries) - len(failures) - len(skipped)} of {len(queries)} panel queries returned data"
        )
        if skipped:
            print(f"skipped (no rabbitmq_prometheus endpoint on this broker): {skipped}")
        assert not failures, "\n".join(failures)
    finally:
        stack.stop()
