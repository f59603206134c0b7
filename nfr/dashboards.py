"""Read the committed Grafana dashboards: every panel query, ready to run against Prometheus.

Dashboards live as JSON under ``grafana/dashboards/<folder>/``. Tests use :func:`iter_panel_queries` to
check that every expression parses (against a real Prometheus) and, in the end-to-end test, that it
returns data. Grafana's own variables (``$__rate_interval`` ...) are not PromQL, so
:func:`to_promql` replaces them with concrete durations first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"

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


def iter_panel_queries(path: str | Path) -> list[tuple[str, str, str]]:
    """``[(dashboard_uid, panel_title, expr), ...]`` for every Prometheus target of the dashboard file."""
    dashboard = json.loads(Path(path).read_text())
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                queries.append((dashboard["uid"], panel.get("title", ""), expr))
    return queries


def to_promql(expr: str, variables: dict[str, str] | None = None) -> str:
    """Replace Grafana variables (``$__rate_interval``, ``${__range}`` ...) with concrete values."""
    values = GRAFANA_VARIABLES if variables is None else variables
    # Longest names first so $__interval does not eat $__interval_ms.
    for name in sorted(values, key=len, reverse=True):
        bare = name.lstrip("$")
        expr = expr.replace("${" + bare + "}", values[name]).replace(name, values[name])
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise ValueError(f"unknown Grafana variable(s) {leftover} in {expr!r}")
    return expr
