"""Read the committed Grafana dashboards: every panel query, ready to run against Prometheus.

Dashboards live as JSON under ``grafana/dashboards/<folder>/``. Tests use :func:`iter_panel_queries` to
check that every expression parses (against a real Prometheus) and, in the end-to-end test, that it
returns data; :func:`runnable_queries` adds the annotation and template-variable queries. Grafana's own
variables (``$__rate_interval`` ...) and the dashboard's template variables (``$job``, ``$instance``,
``$env``) are not PromQL, so :func:`to_promql` replaces them first: the built-ins with concrete durations,
the template variables with what Grafana pastes for their default selection (:func:`variable_values`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"
if not DASHBOARD_DIR.is_dir():  # installed from a wheel: the package's copies
    DASHBOARD_DIR = Path(__file__).resolve().parent / "assets" / "dashboards"

#: Concrete values for Grafana's built-in variables. 20 s = 4 x the 5 s scrape interval, which is what
#: Grafana computes for $__rate_interval with the datasource's timeInterval of 5 s.
GRAFANA_VARIABLES = {
    "$__rate_interval": "20s",
    "$__interval_ms": "5000",
    "$__interval": "5s",
    "$__range_s": "3600",
    "$__range": "1h",
}


def dashboard_files(root: Path = DASHBOARD_DIR) -> list[Path]:
    """Every dashboard JSON file below ``root``, sorted."""
    return sorted(root.rglob("*.json"))


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def load_dashboard(path: str | Path) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def iter_panel_queries(path: str | Path | dict[str, Any]) -> list[tuple[str, str, str]]:
    """``[(dashboard_uid, panel_title, expr), ...]`` for every Prometheus target of the dashboard (file)."""
    dashboard = path if isinstance(path, dict) else load_dashboard(path)
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                queries.append((dashboard["uid"], panel.get("title", ""), expr))
    return queries


_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def variable_query(variable: dict[str, Any]) -> str | None:
    """A query variable's ``label_values(selector, label)`` as PromQL with the same series, else None."""
    if variable.get("type") != "query":
        return None
    query = variable.get("query")
    text = query.get("query", "") if isinstance(query, dict) else str(query or "")
    match = _LABEL_VALUES.match(text)
    if not match:
        return None
    return f"count by ({match.group(2)}) ({match.group(1)})"


def iter_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every Prometheus query of a dashboard: panel targets, annotations, template variables."""
    queries = iter_panel_queries(dashboard)
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            queries.append((dashboard["uid"], f"annotation {annotation['name']}", annotation["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        expr = variable_query(variable)
        if expr:
            queries.append((dashboard["uid"], f"variable {variable['name']}", expr))
    return queries


def variable_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """``{"$job": ..., "$instance": ...}``: what Grafana pastes for each template variable's default.

    "All" becomes the variable's ``allValue``; a multi-value default joins its values with ``|``; a
    variable with no default (a grouping label such as ``env``, whose values only Prometheus knows) matches
    any value. Data-source variables are skipped: they pick the datasource, they are never in a query."""
    values = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            continue
        current = variable.get("current", {}).get("value")
        if current in ("$__all", ["$__all"]):
            value = variable.get("allValue") or ".*"
        elif isinstance(current, list):
            value = "|".join(current) or ".+"
        else:
            value = current or ".+"
        values["$" + variable["name"]] = value
    return values


def runnable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """:func:`iter_queries` with every variable replaced: ``[(uid, where, promql), ...]``."""
    values = {**GRAFANA_VARIABLES, **variable_values(dashboard)}
    return [(uid, where, to_promql(expr, values)) for uid, where, expr in iter_queries(dashboard)]


def to_promql(expr: str, variables: dict[str, str] | None = None) -> str:
    """Replace Grafana variables (``$__rate_interval``, ``${__range}``, ``$job`` ...) with concrete values;
    by default only Grafana's built-ins (pass :func:`variable_values` too for a dashboard's own)."""
    values = GRAFANA_VARIABLES if variables is None else variables
    # Longest names first so $__interval does not eat $__interval_ms.
    for name in sorted(values, key=len, reverse=True):
        bare = name.lstrip("$")
        expr = expr.replace("${" + bare + "}", values[name]).replace(name, values[name])
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise ValueError(f"unknown Grafana variable(s) {leftover} in {expr!r}")
    return expr
