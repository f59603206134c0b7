"""How long after a fault each alert can fire, read off the rule files a run loads — the settle period the
demo waits after the load (docs/timing.md).

For each alerting rule: the longest window between a change in the raw series and its expression (its
range selectors plus those of the recording rules it reads, down the chain: ``promql.window``), one scrape
for the change to be seen, one evaluation per recording rule in between plus the alert's own, and its
``for:``. An event count compared with zero (``increase(c[5m]) > 0``) fires at the first sample that shows
the event, so its window adds nothing. An ``offset`` does not delay a fault's alert (it moves the comparison's baseline) but an alert
whose offset reaches before the data cannot fire at all (``promql.lookback``, as the verdict's NOT JUDGED
reads it): such an alert is left out when the run is shorter than the history it needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nfr import promql
from nfr.rulescale import RuleScaleError, scale_rules

# ``increase(counter[5m]) > 0``: any event fires it at the first sample that shows the event, whatever the
# window (the window only sets how long it stays firing), so its range does not delay the alert.
_EVENT_COUNT = re.compile(r"^\s*(increase|changes|resets)\((?P<selector>[^()]*)\[[^\]]+\]\)\s*>\s*0\s*$")


def _window(expr: str, recorded: dict[str, str]) -> float:
    if _EVENT_COUNT.match(expr) and not any(name in expr for name in recorded):
        return 0.0
    return promql.window(expr, recorded)


@dataclass(frozen=True)
class AlertDelay:
    alert: str
    nfr: str
    for_seconds: float
    window: float  # the longest chain of ranges between the raw series and the alert
    hops: int  # recording rules in between (each adds an evaluation)
    history: float  # look-back plus for: how much history the alert needs before it can fire at all

    def seconds(self, scrape: float, evaluation: float) -> float:
        """Worst case from the fault to the alert firing."""
        return self.window + scrape + evaluation * (1 + self.hops) + self.for_seconds

    def explain(self, scrape: float, evaluation: float) -> str:
        lag = scrape + evaluation * (1 + self.hops)
        return (
            f"{self.alert}{f' ({self.nfr})' if self.nfr else ''} fires at most "
            f"{self.seconds(scrape, evaluation):g}s after its fault: window {self.window:g}s + scrape and "
            f"{1 + self.hops} evaluation(s) {lag:g}s + for {self.for_seconds:g}s"
        )


def _documents(rule_files: Iterable[str | Path], compress: float, floor: float) -> list[dict[str, Any]]:
    documents = []
    for rule_file in rule_files:
        try:
            document = yaml.safe_load(Path(rule_file).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise RuleScaleError(f"{rule_file}: cannot read rule file: {err}") from err
        documents.append(scale_rules(document, compress, floor) if compress > 1 else document)
    return documents


def alert_delays(
    rule_files: Iterable[str | Path], compress: float = 1.0, floor: float = 0.0
) -> list[AlertDelay]:
    """Every alerting rule of ``rule_files`` with its timing, after compressing them as a run would."""
    rules = [
        (
            str(rule.get("alert") or ""),
            str(rule.get("record") or ""),
            str(rule["expr"]),
            promql.parse_duration(str(rule["for"])) if rule.get("for") else 0.0,
            str((rule.get("labels") or {}).get("nfr", "")),
        )
        for document in _documents(rule_files, compress, floor)
        for group in (document or {}).get("groups") or []
        for rule in group.get("rules") or []
    ]
    return _delays(rules)


def loaded_alert_delays(groups: Iterable[dict[str, Any]]) -> list[AlertDelay]:
    """The same for the rule groups a Prometheus has loaded (``/api/v1/rules``: ``query``, ``duration``)."""
    rules = [
        (
            str(rule.get("name", "")) if rule.get("type") == "alerting" else "",
            str(rule.get("name", "")) if rule.get("type") == "recording" else "",
            str(rule.get("query", "")),
            float(rule.get("duration") or 0.0),
            str((rule.get("labels") or {}).get("nfr", "")),
        )
        for group in groups
        for rule in group.get("rules") or []
    ]
    return _delays(rules)


def _delays(rules: list[tuple[str, str, str, float, str]]) -> list[AlertDelay]:
    """(alert, record, expression, for: seconds, nfr) per rule → the alerting rules' timings."""
    recorded = {record: expr for _, record, expr, _, _ in rules if record}
    return [
        AlertDelay(
            alert=alert,
            nfr=nfr,
            for_seconds=for_seconds,
            window=_window(expr, recorded),
            hops=promql.hops(expr, recorded),
            history=promql.lookback(expr, recorded) + for_seconds,
        )
        for alert, _, expr, for_seconds, nfr in rules
        if alert
    ]


def slowest(
    delays: Iterable[AlertDelay], scrape: float, evaluation: float, run_seconds: float | None = None
) -> AlertDelay | None:
    """The alert that can fire latest after a fault; with ``run_seconds`` (the load's length), only among
    the alerts that have the history they need by the end of the settle period they ask for."""
    candidates = [
        d for d in delays if run_seconds is None or d.history <= run_seconds + d.seconds(scrape, evaluation)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda d: (d.seconds(scrape, evaluation), d.alert))


MIN_SETTLE_SCRAPES = 10  # the settle period is never shorter than this many scrapes


def settle_for(
    delays: list[AlertDelay], scrape: float, evaluation: float, load_seconds: float | None
) -> tuple[float, str]:
    """The settle period after a load of ``load_seconds`` and why: the longest time from a fault to its alert
    firing among the alerts that can fire in a run this long (None: among every alert, an upper bound);
    never under ten scrapes."""
    floor = MIN_SETTLE_SCRAPES * scrape
    alert = slowest(delays, scrape, evaluation, load_seconds)
    if alert is None or alert.seconds(scrape, evaluation) < floor:
        return floor, f"{MIN_SETTLE_SCRAPES} scrapes"
    return alert.seconds(scrape, evaluation), "derived from the rules: " + alert.explain(scrape, evaluation)
