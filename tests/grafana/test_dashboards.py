"""Grafana provisioning and dashboards: structure, datasource uid, and every query parsed by Prometheus.

Parsing uses a real Prometheus (started with nfr.prometheus) loaded with the repository's recording
rules: each panel query is sent as an instant query and must be accepted. Whether the queries return
data is checked end to end elsewhere, with real exporters feeding Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfr.dashboards import dashboard_files, iter_panel_queries, iter_panels, to_promql
from nfr.prometheus import (
    PROMETHEUS_BINARY,
    PrometheusError,
    PrometheusServer,
    default_rule_files,
    render_config,
)

ROOT = Path(__file__).resolve().parents[2]


DATASOURCE_UID = "ticketero-prometheus"
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "alertlist", "text", "bargauge", "row"}
FILES = dashboard_files()


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_queries() -> list[tuple[str, str, str]]:
    return [q for path in FILES for q in iter_panel_queries(path)]


def recording_rule_names() -> set[str]:
    names = set()
    for path in (ROOT / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


# -- provisioning -----------------------------------------------------------------------------------------


def test_datasource_has_the_fixed_uid_and_scrape_interval() -> None:
    config = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = config["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    prometheus = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


def test_dashboard_provider_uses_the_folder_structure() -> None:
    config = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["foldersFromFilesStructure"] is True
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


# -- dashboards -------------------------------------------------------------------------------------------


def test_four_dashboards_in_a_folder_with_unique_uids() -> None:
    assert len(FILES) == 4
    assert all(path.parent.parent.name == "dashboards" for path in FILES), "dashboards must sit in a folder"
    uids = [load(path)["uid"] for path in FILES]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", uid) for uid in uids)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_panels_use_the_fixed_datasource_and_valid_types(path: Path) -> None:
    dashboard = load(path)
    panels = list(iter_panels(dashboard))
    assert panels
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), "panel ids must be unique within a dashboard"
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_range_selectors_use_rate_interval_or_a_fixed_nfr_window() -> None:
    """Raw rates follow the dashboard's resolution; fixed windows only where the NFR defines one (5m)."""
    for uid, title, expr in all_queries():
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert window in ("$__rate_interval", "5m"), f"{uid} / {title}: [{window}] in {expr}"


def test_queries_use_recording_rules_that_exist() -> None:
    known = recording_rule_names()
    used: set[str] = set()
    for uid, title, expr in all_queries():
        names = set(re.findall(r"(?<![\w:])([a-z_]*:[a-z0-9_]+:[a-z0-9_]+)", expr))
        assert names <= known, f"{uid} / {title}: unknown recording rule(s) {names - known}"
        used |= names
    # Most of what the dashboards show comes from the shared recording rules.
    assert len(used) >= len(known) * 0.7, f"dashboards use only {sorted(used)}"


def test_overview_has_a_panel_per_nfr_with_red_and_green_thresholds() -> None:
    overview = load(next(p for p in FILES if load(p)["uid"] == "ticketero-nfr-overview"))
    panels = list(iter_panels(overview))
    for n in range(1, 8):
        nfr = f"RNF-0{n}"
        stats = [p for p in panels if p["title"].startswith(nfr) and p["type"] == "stat"]
        assert stats, f"no stat panel for {nfr}"
        colours = {step["color"] for step in stats[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]}
        assert {"red", "green"} <= colours, nfr
    alert_tables = [p for p in panels if any("ALERTS" in t["expr"] for t in p.get("targets", []))]
    assert alert_tables and 'alertstate="firing"' in alert_tables[0]["targets"][0]["expr"]


def test_to_promql_replaces_grafana_variables() -> None:
    assert to_promql("rate(x[$__rate_interval]) + rate(y[${__range}])") == "rate(x[20s]) + rate(y[1h])"
    assert to_promql("z[$__interval] * $__interval_ms") == "z[5s] * 5000"
    with pytest.raises(ValueError, match="queue"):
        to_promql('x{queue="$queue"}')


# -- every expression parses in a real Prometheus ----------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    if not Path(PROMETHEUS_BINARY).exists():
        pytest.skip("prometheus is not installed")
    tmp = tmp_path_factory.mktemp("grafana-prom")
    config = render_config(tmp / "prometheus.yml", {}, rule_files=default_rule_files())
    with PrometheusServer(config, tmp / "data") as prom:
        yield prom


def test_every_panel_query_parses(prometheus: PrometheusServer) -> None:
    queries = all_queries()
    assert len(queries) >= 40
    errors = []
    for uid, title, expr in queries:
        try:
            prometheus.query(to_promql(expr))
        except PrometheusError as err:
            errors.append(f"{uid} / {title}: {err}")
    assert errors == []


def test_a_broken_query_is_reported(prometheus: PrometheusServer) -> None:
    """The parse check above would catch a typo: Prometheus rejects it."""
    with pytest.raises(PrometheusError, match="parse error"):
        prometheus.query(to_promql("sum(rate(ticketero_tickets_completed_total[$__rate_interval])"))
