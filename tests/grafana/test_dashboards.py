"""Grafana provisioning and dashboards: generated == committed, variables, annotations, links, units, and
every query parsed by Prometheus, for both profiles of the mixin.

Parsing uses a real Prometheus (started with nfr.prometheus): each panel, annotation and variable query, its
variables substituted as Grafana would for their defaults, is sent as an instant query and must be accepted.
Whether the queries return data is checked end to end in tests/nfr/test_dashboards_e2e.py, with real
exporters feeding Prometheus.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import nfr.mixin.dashboards as rendering
from nfr.catalogue import BURN_RATE_WINDOWS, NFRS, RNF01, Threshold
from nfr.dashboards import (
    dashboard_files,
    iter_panel_queries,
    iter_panels,
    iter_queries,
    runnable_queries,
    to_promql,
    variable_values,
)
from nfr.mixin.build import RULES_FILE, render_all
from nfr.mixin.config import PROFILES, MixinConfig
from nfr.mixin.dashboards import render_dashboards
from nfr.prometheus import (
    PROMETHEUS_BINARY,
    PrometheusError,
    PrometheusServer,
    default_rule_files,
    render_config,
)

ROOT = Path(__file__).resolve().parents[2]


DATASOURCE_UID = "ticketero-prometheus"
PANEL_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "alertlist", "text", "bargauge", "row"}
FILES = dashboard_files()
#: A shared Prometheus: our jobs renamed, an environment selector, environments kept apart.
SHARED = MixinConfig(
    jobs={"service": "tk-app", "exporter": "tk-exp", "loadgen": "tk-load", "broker": "tk-mq"},
    selector='env="staging"',
    group_labels=("env",),
)
RENDERED = {
    "run": render_dashboards(MixinConfig()),
    "staging": render_dashboards(MixinConfig(profile="staging")),
    "shared": render_dashboards(SHARED),
    "shared-staging": render_dashboards(SHARED.with_profile("staging")),
}
DOCUMENTS = [(key, name, doc) for key, docs in RENDERED.items() for name, doc in docs.items()]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def all_queries() -> list[tuple[str, str, str]]:
    return [q for path in FILES for q in iter_panel_queries(path)]


def recording_rule_names(profile: str = "run") -> set[str]:
    text = render_all(MixinConfig(profile=profile))[RULES_FILE]
    return {
        rule["record"]
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def ids(item: tuple[str, str, dict[str, Any]]) -> str:
    return f"{item[0]}/{item[1]}"


# -- provisioning -----------------------------------------------------------------------------------------


def test_datasource_has_the_fixed_uid_and_scrape_interval() -> None:
    config = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = config["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    prometheus = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]
    # The dashboards pick a datasource through their variable; its default names the provisioned one.
    for path in FILES:
        (variable,) = [v for v in load(path)["templating"]["list"] if v["name"] == "datasource"]
        assert variable["current"]["value"] in (source["name"], source["uid"]), path.name


def test_dashboard_provider_uses_the_folder_structure() -> None:
    config = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["foldersFromFilesStructure"] is True
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts


# -- dashboards ---------------------------------------------------------------------------------------------


def test_committed_dashboards_are_the_rendered_ones() -> None:
    """grafana/dashboards/ticketero/ is `python -m nfr.mixin build`'s output for the default config."""
    rendered = RENDERED["run"]
    assert {path.name for path in FILES} == set(rendered)
    for path in FILES:
        assert load(path) == rendered[path.name], f"{path.name}: run python -m nfr.mixin build"


def test_four_dashboards_in_a_folder_with_unique_uids() -> None:
    assert len(FILES) == 4
    assert all(path.parent.parent.name == "dashboards" for path in FILES), "dashboards must sit in a folder"
    uids = [load(path)["uid"] for path in FILES]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", uid) for uid in uids)
    assert "ticketero-nfr-overview" in uids, "alerts link to /d/ticketero-nfr-overview"


def test_staging_adds_the_slo_dashboard() -> None:
    assert set(RENDERED["staging"]) == set(RENDERED["run"]) | {"slo.json"}
    slo = RENDERED["staging"]["slo.json"]
    assert slo["uid"] == "ticketero-slo"
    exprs = [expr for _uid, _title, expr in iter_panel_queries(slo)]
    for kind in ("errors", "slow"):
        assert any(f":http_server_requests_seconds_{kind}:error_budget_remaining30d" in e for e in exprs)
        windows = {long for _s, _f, long, _short, _for in BURN_RATE_WINDOWS}
        windows |= {short for _s, _f, _long, short, _for in BURN_RATE_WINDOWS}
        for window in windows:
            assert any(f":http_server_requests_seconds_{kind}:ratio_rate{window} / " in e for e in exprs), (
                window
            )
    steps = [
        s["value"]
        for p in iter_panels(slo)
        if "burn rate" in p["title"]
        for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]
    assert {factor for _s, factor, *_rest in BURN_RATE_WINDOWS} <= set(steps)


@pytest.mark.parametrize("item", DOCUMENTS, ids=ids)
def test_panels_use_the_datasource_variable_and_valid_types(item: tuple[str, str, dict[str, Any]]) -> None:
    dashboard = item[2]
    panels = list(iter_panels(dashboard))
    assert panels
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), "panel ids must be unique within a dashboard"
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"] == PANEL_DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == PANEL_DATASOURCE, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


@pytest.mark.parametrize("item", DOCUMENTS, ids=ids)
def test_every_panel_has_a_unit_and_a_description(item: tuple[str, str, dict[str, Any]]) -> None:
    for panel in iter_panels(item[2]):
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert len(panel["description"]) > 20, panel["title"]


def test_variables_datasource_job_instance_and_one_per_grouping_label() -> None:
    default = RENDERED["run"]["nfr-overview.json"]["templating"]["list"]
    assert [v["name"] for v in default] == ["datasource", "job", "instance"]
    datasource, job, instance = default
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    assert datasource["current"]["value"] == MixinConfig().datasource
    assert job["allValue"] == "ticketero-app|ticketero-exporter|loadgen|rabbitmq"
    assert 'job=~"$job"' in instance["definition"] and instance["allValue"] == ".+"
    shared = RENDERED["shared"]["nfr-overview.json"]["templating"]["list"]
    assert [v["name"] for v in shared] == ["datasource", "env", "job", "instance"]
    env = shared[1]
    assert env["definition"] == 'label_values(up{job=~"tk-app|tk-exp|tk-load|tk-mq",env="staging"}, env)'
    assert env["current"]["value"] == "staging"


@pytest.mark.parametrize("key", ["shared", "shared-staging"])
def test_every_selector_carries_the_config_and_the_variables(key: str) -> None:
    """Raw series: the config's job and selector, $job, $instance, $env; recorded series: $env (they keep
    only the grouping labels); no selector without the environment."""
    for name, dashboard in RENDERED[key].items():
        for _uid, where, expr in iter_queries(dashboard):
            if where.startswith("variable"):
                continue
            recorded = re.findall(r"(?<![\w:])([a-zA-Z_]*:\w+:\w+)(?![\w{])", expr)
            assert not recorded, f"{name} / {where}: {recorded} without the grouping variables"
            for metric, matchers in re.findall(r"([a-zA-Z_:][\w:]*)(\{[^}]*\})", expr):
                assert 'env=~"$env"' in matchers, f"{name} / {where}: {metric}{matchers}"
                if ":" not in metric and metric != "ALERTS":
                    assert 'env="staging"' in matchers and 'job=~"$job"' in matchers, f"{name} / {where}"
                    assert 'instance=~"$instance"' in matchers and 'job="tk-' in matchers, f"{name} / {where}"


@pytest.mark.parametrize("item", DOCUMENTS, ids=ids)
def test_annotations_show_nfr_alerts_and_load_runs(item: tuple[str, str, dict[str, Any]]) -> None:
    exprs = [a.get("expr", "") for a in item[2]["annotations"]["list"]]
    assert any(e.startswith("ALERTS{") and 'alertstate="firing"' in e and 'nfr!=""' in e for e in exprs)
    assert any("loadgen_run_active{" in e for e in exprs)
    for annotation in item[2]["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"] == PANEL_DATASOURCE


@pytest.mark.parametrize("key", list(RENDERED))
def test_links_join_the_dashboards_by_tag(key: str) -> None:
    for name, dashboard in RENDERED[key].items():
        (link,) = dashboard["links"]
        assert link["type"] == "dashboards" and link["includeVars"] and link["keepTime"]
        others = [d for n, d in RENDERED[key].items() if n != name]
        assert all(set(link["tags"]) <= set(d["tags"]) for d in others), name


@pytest.mark.parametrize("key", list(RENDERED))
def test_panel_links_lead_to_dashboards_of_the_same_build(key: str) -> None:
    uids = {d["uid"] for d in RENDERED[key].values()}
    linked = []
    for dashboard in RENDERED[key].values():
        for panel in iter_panels(dashboard):
            for link in panel["links"]:
                match = re.fullmatch(
                    r"/d/([\w-]+)\?\$\{__url_time_range\}&\$\{__all_variables\}", link["url"]
                )
                assert match and match.group(1) in uids, f"{panel['title']}: {link}"
                linked.append(match.group(1))
    assert "ticketero-recovery" in linked and ("ticketero-slo" in linked) == ("slo.json" in RENDERED[key])


@pytest.mark.parametrize("profile", PROFILES)
def test_range_selectors_use_rate_interval_or_a_fixed_nfr_window(profile: str) -> None:
    """Raw rates follow the dashboard's resolution; fixed windows only where the NFR defines one (5m)."""
    for dashboard in RENDERED[profile].values():
        for uid, title, expr in iter_queries(dashboard):
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window in ("$__rate_interval", "5m"), f"{uid} / {title}: [{window}] in {expr}"


@pytest.mark.parametrize("profile", PROFILES)
def test_queries_use_recording_rules_that_exist(profile: str) -> None:
    known = recording_rule_names(profile)
    used: set[str] = set()
    for dashboard in RENDERED[profile].values():
        for uid, title, expr in iter_queries(dashboard):
            names = set(re.findall(r"(?<![\w:])([a-z_]*:[a-z0-9_]+:[a-z0-9_]+)", expr))
            assert names <= known, f"{uid} / {title}: unknown recording rule(s) {names - known}"
            used |= names
    # Most of what the dashboards show comes from the shared recording rules.
    assert len(used) >= len(known) * 0.7, f"dashboards use only {sorted(used)}"


def _steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    return [(s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.mark.parametrize("profile", PROFILES)
def test_overview_has_a_panel_per_nfr_against_the_catalogue_threshold(profile: str) -> None:
    overview = RENDERED[profile]["nfr-overview.json"]
    panels = list(iter_panels(overview))
    for nfr in NFRS:
        stats = [p for p in panels if p["title"].startswith(nfr.id) and p["type"] == "stat"]
        assert stats, f"no stat panel for {nfr.id}"
        (stat,) = stats
        assert nfr.limit.text() in stat["title"]
        assert stat["targets"][0]["expr"] == nfr.panel.expr(rendering.View(MixinConfig(profile=profile)).c)
        assert {"red", "green"} <= {colour for _v, colour in _steps(stat)}, nfr.id
        limit = nfr.limit.value if nfr.limit.comparator != "<=" else nfr.limit.value + 1
        assert limit in [value for value, _c in _steps(stat)], nfr.id
    alert_tables = [p for p in panels if any("ALERTS" in t["expr"] for t in p.get("targets", []))]
    assert alert_tables and 'alertstate="firing"' in alert_tables[0]["targets"][0]["expr"]


def test_overview_guards_race_and_consistency_sums_with_or_vector() -> None:
    """RNF-03/04 add up several series: one missing series must count as 0, not blank the panel."""
    for panel in iter_panels(RENDERED["run"]["nfr-overview.json"]):
        if panel["title"].startswith(("RNF-03", "RNF-04")):
            for target in panel["targets"]:
                terms = target["expr"].split(" + ")
                assert len(terms) > 1 and all(t.endswith("or vector(0))") for t in terms), target["expr"]


def test_a_threshold_changed_in_the_catalogue_changes_the_dashboards(monkeypatch: pytest.MonkeyPatch) -> None:
    faster = replace(RNF01, limit=Threshold(RNF01.limit.value + 7, ">=", RNF01.limit.unit))
    monkeypatch.setattr(rendering, "RNF01", faster)
    catalogue = tuple(faster if n is RNF01 else n for n in NFRS)
    monkeypatch.setattr(rendering, "NFRS", catalogue)
    docs = render_dashboards(MixinConfig(), catalogue)
    panels = [p for d in docs.values() for p in iter_panels(d)]
    throughput = [p for p in panels if "RNF-01" in p["title"] or "Throughput" in p["title"]]
    assert len(throughput) >= 3
    for panel in throughput:
        values = [value for value, _c in _steps(panel)]
        assert faster.limit.value in values and RNF01.limit.value not in values, panel["title"]


def test_the_dashboard_module_writes_no_nfr_threshold() -> None:
    """Thresholds are written once, in nfr/catalogue.py; the dashboards read them."""
    source = (ROOT / "nfr" / "mixin" / "dashboards.py").read_text()
    numbers = {
        float(token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.NUMBER
    }
    thresholds = {n.limit.value for n in NFRS} | {f for _s, f, *_rest in BURN_RATE_WINDOWS if f > 6}
    assert numbers & (thresholds - {0, 1}) == set()


def test_to_promql_replaces_grafana_variables() -> None:
    assert to_promql("rate(x[$__rate_interval]) + rate(y[${__range}])") == "rate(x[20s]) + rate(y[1h])"
    assert to_promql("z[$__interval] * $__interval_ms") == "z[5s] * 5000"
    with pytest.raises(ValueError, match="queue"):
        to_promql('x{queue="$queue"}')


def test_template_variables_get_the_value_of_their_default() -> None:
    overview = RENDERED["shared"]["nfr-overview.json"]
    assert variable_values(overview) == {
        "$env": "staging",
        "$job": "tk-app|tk-exp|tk-load|tk-mq",
        "$instance": ".+",
    }
    unset = RENDERED["run"]["soak.json"] | {
        "templating": {"list": [{"name": "env", "type": "query", "current": {}}]}
    }
    assert variable_values(unset) == {"$env": ".+"}
    queries = runnable_queries(overview)
    assert not [q for q in queries if "$" in q[2]]
    assert any(
        where == "variable instance" and expr.startswith("count by (instance) (up{")
        for _u, where, expr in queries
    )


# -- every expression parses in a real Prometheus ----------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    if not Path(PROMETHEUS_BINARY).exists():
        pytest.skip("prometheus is not installed")
    tmp = tmp_path_factory.mktemp("grafana-prom")
    config = render_config(tmp / "prometheus.yml", {}, rule_files=default_rule_files())
    with PrometheusServer(config, tmp / "data") as prom:
        yield prom


@pytest.mark.parametrize("key", list(RENDERED))
def test_every_query_parses(prometheus: PrometheusServer, key: str) -> None:
    queries = [q for dashboard in RENDERED[key].values() for q in runnable_queries(dashboard)]
    assert len(queries) >= 40
    errors = []
    for uid, title, promql in queries:
        try:
            prometheus.query(promql)
        except PrometheusError as err:
            errors.append(f"{uid} / {title}: {err}")
    assert errors == []


def test_a_broken_query_is_reported(prometheus: PrometheusServer) -> None:
    """The parse check above would catch a typo: Prometheus rejects it."""
    with pytest.raises(PrometheusError, match="parse error"):
        prometheus.query(to_promql("sum(rate(ticketero_tickets_completed_total[$__rate_interval])"))
