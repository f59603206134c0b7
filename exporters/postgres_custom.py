"""User-defined SQL metrics from a YAML file, in sql_exporter's shape, for invariants of other systems.

File format (validated at start; a mistake exits 2 naming the file and key)::

    metrics:
      - metric_name: wallet_balance_mismatches     # exported as-is: choose your own prefix
        type: gauge                                # gauge | counter (the query returns the running total)
        help: "Wallets whose balance differs from the sum of their movements."
        key_labels: [currency]                     # columns that become labels (optional)
        values: [mismatches]                       # value columns; with several, give value_label
        value_label: column                        # label naming which value column a sample came from
        query: |
          SELECT currency, count(*) AS mismatches FROM ...

All queries run in the exporter's read-only transaction with its statement timeout. A failing query drops
this collector's metrics for the scrape (``ticketero_scrape_collector_success{collector="custom"} 0``) but
does not mark PostgreSQL down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.base import ConcernCollector
from exporters.config import ConfigError
from exporters.postgres import PostgresClient

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class CustomMetric:
    metric_name: str
    type: str
    help: str
    key_labels: tuple[str, ...]
    values: tuple[str, ...]
    value_label: str | None
    query: str


def load_custom_metrics(path: str) -> list[CustomMetric]:
    """Parse and validate the file; raises ConfigError(file, key, expected)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, "(file)", f"a readable YAML file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "(file)", f"valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
        raise ConfigError(path, "metrics", "a list of metric definitions")
    metrics: list[CustomMetric] = []
    names: set[str] = set()
    for index, item in enumerate(data["metrics"]):
        where = f"metrics[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(path, where, "a mapping with metric_name, type, help, values, query")
        unknown = set(item) - {"metric_name", "type", "help", "key_labels", "values", "value_label", "query"}
        if unknown:
            raise ConfigError(path, f"{where}.{sorted(unknown)[0]}", "one of metric_name, type, help, "
                              "key_labels, values, value_label, query")  # fmt: skip
        name = item.get("metric_name")
        if not isinstance(name, str) or not _NAME.match(name) or name in names:
            raise ConfigError(
                path, f"{where}.metric_name", "a unique Prometheus metric name ([a-zA-Z_][a-zA-Z0-9_]*)", name
            )
        names.add(name)
        kind = item.get("type", "gauge")
        if kind not in ("gauge", "counter"):
            raise ConfigError(path, f"{where}.type", "gauge or counter", kind)
        help_text = item.get("help")
        if not isinstance(help_text, str) or not help_text.strip():
            raise ConfigError(path, f"{where}.help", "a non-empty description")
        key_labels = _names(item.get("key_labels", []), path, f"{where}.key_labels")
        values = _names(item.get("values"), path, f"{where}.values")
        if not values:
            raise ConfigError(path, f"{where}.values", "at least one value column")
        value_label = item.get("value_label")
        if len(values) > 1 and not (isinstance(value_label, str) and _NAME.match(value_label)):
            raise ConfigError(
                path, f"{where}.value_label", "a label name, required with more than one value column"
            )
        query = item.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ConfigError(
                path, f"{where}.query", "an SQL query returning the key_labels and values columns"
            )
        metrics.append(
            CustomMetric(
                name,
                kind,
                help_text.strip(),
                key_labels,
                values,
                value_label if len(values) > 1 else None,
                query,
            )
        )
    return metrics


def _names(raw: Any, path: str, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(n, str) and _NAME.match(n) for n in raw):
        raise ConfigError(path, key, "a list of column names")
    return tuple(raw)


class CustomSqlCollector(ConcernCollector):
    """Metrics defined by SQL in a YAML file (sql_exporter's metric_name/type/help/key_labels/values)."""

    name = "custom"
    backend = "postgres"

    def __init__(self, client: PostgresClient, metrics: list[CustomMetric]) -> None:
        self.client = client
        self.metrics = metrics

    def _family(self, metric: CustomMetric) -> Any:
        labels = list(metric.key_labels) + ([metric.value_label] if metric.value_label else [])
        cls = CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
        return cls(metric.metric_name, metric.help, labels=labels)

    def families(self) -> list[Any]:
        return [self._family(m) for m in self.metrics]

    def scrape(self, deadline: float) -> list[Metric]:
        out = []
        with self.client.cursor(deadline) as cur:
            for metric in self.metrics:
                cur.execute(metric.query)
                columns = [d.name for d in cur.description or []]
                missing = [c for c in (*metric.key_labels, *metric.values) if c not in columns]
                if missing:
                    raise ValueError(f"{metric.metric_name}: query returned no column {missing[0]!r}")
                family = self._family(metric)
                for row in cur.fetchall():
                    record = dict(zip(columns, row, strict=True))
                    keys = ["" if record[k] is None else str(record[k]) for k in metric.key_labels]
                    for value_column in metric.values:
                        value = record[value_column]
                        extra = [value_column] if metric.value_label else []
                        family.add_metric(keys + extra, float(value) if value is not None else float("nan"))
                out.append(family)
        return out
