"""The verdict: PASS / FAIL / NO DATA per NFR, read from Prometheus alerts over a run window.

A run is judged by the same alerts that watch production, never by a second set of thresholds:

* FAIL    — an alert labelled with the NFR fired in ``[start, end + settle]`` (not one the scenario said it
            expects). Reported with when it first fired and the alert expression's value at that moment.
* NO DATA — no alert fired, but the NFR's indicator had no sample in the window, or
            ``TicketeroNfrIndicatorAbsent{nfr=...}`` fired. Missing data is never a pass.
* PASS    — no alert of the NFR fired and its indicator had data.

Expected alerts (fault scenarios) turn the logic round for that alert: it must fire inside the window and
be resolved again by ``end + settle``; then its NFR passes, otherwise it fails with the reason.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nfr.catalogue import (
    INDICATOR_ABSENT_ALERT,
    NFRS,
    SUMMARY_FIGURES,
    TARGET_DOWN_ALERT,
    Nfr,
)
from nfr.promclient import PrometheusClient, PrometheusQueryError
from nfr.rulescale import parse_duration

PASS = "PASS"
FAIL = "FAIL"
NO_DATA = "NO DATA"

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series


@dataclass
class FiredAlert:
    """One alert series (name + labels) that was firing at some point of the window."""

    name: str
    nfr: str
    labels: dict[str, str]
    first_fired: float
    last_firing: float
    resolved: bool  # not firing any more at the end of the window
    value_at_first_fire: float | None = None
    summary: str = ""


@dataclass
class NfrResult:
    nfr: str
    title: str
    requirement: str
    status: str
    reason: str
    unit: str
    threshold: float | None
    higher_is_better: bool
    alerts: list[FiredAlert] = field(default_factory=list)
    expected_alerts: list[FiredAlert] = field(default_factory=list)
    first_fired: float | None = None
    measured: float | None = None
    indicator_expr: str = ""
    series: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Verdict:
    prometheus: str
    start: float
    end: float
    settle: float
    step: float
    results: list[NfrResult]
    meta_alerts: list[FiredAlert]
    figures: dict[str, float | None]
    expected: list[str]
    scenario: str = ""
    run_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def window_end(self) -> float:
        return self.end + self.settle

    @property
    def target_down(self) -> list[FiredAlert]:
        """TargetDown alerts that make the run unjudgeable. Severity info (the load generator between
        runs) is context only; an expected TargetDown (a chaos scenario stopping the service) counts only
        if it had not cleared by the end of the window."""
        return [
            a
            for a in self.meta_alerts
            if a.name == TARGET_DOWN_ALERT
            and a.labels.get("severity") != "info"
            and not (a.name in self.expected and a.resolved)
        ]

    @property
    def passed(self) -> bool:
        """True only when every NFR passed and no scrape target went down during the window."""
        return all(r.status == PASS for r in self.results) and not self.target_down

    def result(self, nfr_id: str) -> NfrResult:
        for result in self.results:
            if result.nfr == nfr_id:
                return result
        raise KeyError(nfr_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["window_end"] = self.window_end
        return data


def choose_step(start: float, end: float, minimum: float = 1.0) -> float:
    """A range-query step fine enough to see short firings but within Prometheus's point limit."""
    return max(minimum, math.ceil((end - start) / MAX_POINTS))


def _fired_alerts(
    client: PrometheusClient, start: float, end: float, step: float, rules: dict[str, dict[str, Any]]
) -> list[FiredAlert]:
    series = client.query_range('ALERTS{alertstate="firing"}', start, end, step)
    fired = []
    for item in series:
        labels = {k: v for k, v in item["metric"].items() if k not in ("__name__", "alertstate")}
        times = [float(t) for t, _ in item["values"]]
        if not times:
            continue
        name = labels.get("alertname", "?")
        fired.append(
            FiredAlert(
                name=name,
                nfr=labels.get("nfr", ""),
                labels=labels,
                first_fired=min(times),
                last_firing=max(times),
                resolved=max(times) < end - step / 2,
                summary=str(rules.get(name, {}).get("annotations", {}).get("summary", "")),
            )
        )
    fired.sort(key=lambda a: a.first_fired)
    return fired


_SPAN = re.compile(
    r"\[\s*((?:\d+(?:ms|s|m|h|d|w|y))+)\s*(?::[^\]]*)?\]|offset\s+((?:\d+(?:ms|s|m|h|d|w|y))+)"
)
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _lookback(expr: str, recorded: dict[str, str], depth: int = 0) -> float:
    """History an expression needs before it can return anything, in seconds: its longest ``offset``
    (a range selector works on partial data, an offset into time before the data began does not), plus
    what the recording rules it uses need themselves."""
    offsets = [parse_duration(m.group(2)) for m in _SPAN.finditer(expr) if m.group(2)]
    own = max(offsets, default=0.0)
    if depth > 5:
        return own
    used = {name for name in _NAME.findall(expr) if name in recorded}
    return own + max((_lookback(recorded[name], recorded, depth + 1) for name in used), default=0.0)


def _lookback_notes(client: PrometheusClient, rules: list[dict[str, Any]], span: float) -> list[str]:
    """Alerts that could not have fired in a window this short (look-back + ``for:`` longer than it)."""
    try:
        recorded = {r["name"]: str(r["query"]) for r in client.recording_rules()}
    except PrometheusQueryError:
        return []
    shortest: dict[tuple[str, str], float] = {}
    for rule in rules:
        nfr = str(rule.get("labels", {}).get("nfr", ""))
        if not nfr.startswith("RNF-"):
            continue
        needed = _lookback(str(rule["query"]), recorded) + float(rule.get("duration") or 0)
        key = (rule["name"], nfr)
        shortest[key] = min(needed, shortest.get(key, needed))
    return [
        f"{name} ({nfr}) needs at least {needed:.0f} s (its offset plus its for:), more than this "
        f"{span:.0f} s window: it could not have fired here (run longer or use --compress)"
        for (name, nfr), needed in sorted(shortest.items())
        if needed > span
    ]


def _value_at(client: PrometheusClient, rule: dict[str, Any] | None, alert: FiredAlert) -> float | None:
    """The alert expression's value for this alert's series at its first firing (best effort)."""
    if not rule:
        return None
    try:
        result = client.query(str(rule["query"]), alert.first_fired)
    except PrometheusQueryError:
        return None
    for item in result:
        metric = item.get("metric", {})
        if all(alert.labels.get(k) == v for k, v in metric.items() if k != "__name__"):
            value = float(item["value"][1])
            return None if math.isnan(value) else value
    return None


def _series(
    client: PrometheusClient, nfr: Nfr, window: str, start: float, end: float, step: float
) -> list[tuple[float, float]]:
    result = client.query_range(nfr.indicator_expr(window), start, end, step)
    points: list[tuple[float, float]] = []
    for item in result[:1]:
        for t, v in item["values"]:
            value = float(v)
            if not math.isnan(value) and not math.isinf(value):
                points.append((float(t), value))
    return points


def _summary_figures(
    client: PrometheusClient, start: float, end: float, window_end: float
) -> dict[str, float | None]:
    """Run-level figures. Counts cover the whole window (work finished during the settle period counts);
    throughput divides them by the minutes under load."""
    span = f"{max(1, int(round(window_end - start)))}s"
    figures: dict[str, float | None] = {}
    for name, expr, _unit in SUMMARY_FIGURES:
        try:
            promql = expr.replace("{range}", span).replace("{start}", f"{start:.3f}")
            figures[name] = client.scalar(promql, window_end)
        except PrometheusQueryError:
            figures[name] = None
    completed = figures.get("tickets_completed")
    minutes = (end - start) / 60
    figures["throughput_per_minute"] = completed / minutes if completed is not None and minutes > 0 else None
    requests, failures = figures.get("requests"), figures.get("request_failures")
    if requests:
        error_rate = (failures or 0.0) / requests
        figures["error_rate"] = error_rate
        figures["success_ratio"] = 1 - error_rate
    mem_max, mem_min = figures.get("memory_max_bytes"), figures.get("memory_min_bytes")
    if mem_max and mem_min:
        figures["memory_growth_ratio"] = mem_max / mem_min - 1
    return figures


def _judge(
    nfr: Nfr,
    fired: list[FiredAlert],
    expected: set[str],
    series: list[tuple[float, float]],
    loaded: set[str],
    nfr_of_rule: dict[str, str],
) -> tuple[str, str, list[FiredAlert], list[FiredAlert]]:
    mine = [a for a in fired if a.nfr == nfr.id and a.name != INDICATOR_ABSENT_ALERT]
    unexpected = [a for a in mine if a.name not in expected]
    expected_fired = [a for a in mine if a.name in expected]
    if unexpected:
        names = ", ".join(sorted({a.name for a in unexpected}))
        return FAIL, f"{names} fired", unexpected, expected_fired
    own_expected = sorted(
        name for name in expected if nfr_of_rule.get(name, "") == nfr.id or name in nfr.alerts
    )
    for name in own_expected:
        instances = [a for a in expected_fired if a.name == name]
        if not instances:
            return FAIL, f"expected alert {name} did not fire", [], expected_fired
        if not all(a.resolved for a in instances):
            return (
                FAIL,
                f"expected alert {name} fired but had not cleared by the end of the settle period",
                ([a for a in instances if not a.resolved]),
                expected_fired,
            )
    if not loaded.intersection(nfr.alerts):
        return NO_DATA, "none of its alerts (" + ", ".join(nfr.alerts) + ") is loaded in Prometheus", [], []
    absent = [a for a in fired if a.name == INDICATOR_ABSENT_ALERT and a.labels.get("nfr") == nfr.id]
    if absent:
        return NO_DATA, f"{INDICATOR_ABSENT_ALERT} fired: the NFR's series were missing under load", [], []
    if not series:
        return NO_DATA, "no sample of the indicator in the window", [], expected_fired
    if own_expected:
        return PASS, "expected alert(s) " + ", ".join(own_expected) + " fired and cleared", [], expected_fired
    return PASS, "no alert fired and the indicator had data", [], expected_fired


def compute_verdict(
    client: PrometheusClient,
    start: float,
    end: float,
    settle: float = 60.0,
    expected: Iterable[str] = (),
    rate_window: str = "1m",
    step: float | None = None,
    nfrs: Sequence[Nfr] = NFRS,
) -> Verdict:
    """Judge every NFR over ``[start, end + settle]`` from what ``client``'s Prometheus recorded."""
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    window_end = end + settle
    step = step or choose_step(start, window_end)
    expected_set = set(expected)
    all_rules = client.alerting_rules()
    rules = {rule["name"]: rule for rule in all_rules}
    # The NFR an alert judges comes from its nfr label, so alerts added later need no change here.
    nfr_of_rule = {rule["name"]: str(rule.get("labels", {}).get("nfr", "")) for rule in all_rules}
    notes = []
    unknown = sorted(expected_set - set(rules))
    if unknown:
        notes.append("expected alert(s) not loaded in Prometheus: " + ", ".join(unknown))
    notes += _lookback_notes(client, all_rules, window_end - start)
    fired = _fired_alerts(client, start, window_end, step, rules)
    for alert in fired:
        alert.value_at_first_fire = _value_at(client, rules.get(alert.name), alert)
    figures = _summary_figures(client, start, end, window_end)
    results = []
    for nfr in nfrs:
        series = _series(client, nfr, rate_window, start, window_end, step)
        status, reason, failing, expected_fired = _judge(
            nfr, fired, expected_set, series, set(rules), nfr_of_rule
        )
        first = min((a.first_fired for a in failing), default=None)
        # Measured, in the NFR's unit: the worst indicator sample when it failed, else the run figure.
        # The alert expression's own value at its first firing is in the reason (its unit may differ:
        # RNF-07's alert compares a growth ratio, its indicator is bytes).
        measured = None if failing else figures.get(nfr.figure) if nfr.figure else None
        if measured is None:
            measured = nfr.worst([v for _, v in series])
        if failing and failing[0].value_at_first_fire is not None:
            reason += f" (alert value {failing[0].value_at_first_fire:.4g} when it first fired)"
        results.append(
            NfrResult(
                nfr=nfr.id,
                title=nfr.title,
                requirement=nfr.requirement,
                status=status,
                reason=reason,
                unit=nfr.unit,
                threshold=nfr.threshold,
                higher_is_better=nfr.higher_is_better,
                alerts=failing,
                expected_alerts=expected_fired,
                first_fired=first,
                measured=measured,
                indicator_expr=nfr.indicator_expr(rate_window),
                series=series,
            )
        )
    meta = [a for a in fired if a.nfr not in {n.id for n in nfrs}]
    return Verdict(
        prometheus=client.url,
        start=start,
        end=end,
        settle=settle,
        step=step,
        results=results,
        meta_alerts=meta,
        figures=figures,
        expected=sorted(expected_set),
        notes=notes,
    )


def wall_clock() -> float:
    return time.time()
