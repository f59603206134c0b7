"""The verdict: PASS / FAIL / NO DATA per NFR, read from Prometheus alerts over a run window.

A run is judged by the same alerts that watch production, never by a second set of thresholds:

* FAIL    — an alert labelled with the NFR fired in ``[start, end + settle]`` (not one the scenario said it
            expects). Reported with when it first fired and the alert expression's value at that moment.
* NO DATA — no alert fired, but the NFR's indicator had no sample in the window, or
            ``TicketeroNfrIndicatorAbsent{nfr=...}`` fired. Missing data is never a pass.
* PASS    — no alert of the NFR fired and its indicator had data.
* NOT JUDGED — no alert of the NFR fired, and none of them could have: each needs more history than the
            window holds (RNF-07 compares memory with 30 minutes earlier; a 2-minute PERF-01 cannot judge it).
            Said plainly in every report, never shown as a pass; ``--strict`` counts it as a failure.

Expected alerts (fault scenarios) turn the logic round for that alert: it must fire inside the window and
be resolved again by ``end + settle``; then its NFR passes, otherwise it fails with the reason.

The scenario's own outcome counts too: a run whose scenario failed (an action or a rollback failed, a
steady-state or verify probe did not hold, a load-generator threshold failed, the load was interrupted or
the load generator died) fails overall whatever the alerts say — alerts that stayed silent because the
fault was never injected prove nothing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nfr import promql
from nfr.catalogue import (
    INDICATOR_ABSENT_ALERT,
    NFRS,
    TARGET_DOWN_ALERT,
    Nfr,
    figure_by_key,
)
from nfr.catalogue import figures as catalogue_figures
from nfr.mixin.config import MixinConfig
from nfr.promclient import PrometheusClient, PrometheusQueryError
from nfr.report_values import fmt_value

PASS = "PASS"
FAIL = "FAIL"
NO_DATA = "NO DATA"
NOT_JUDGED = "NOT JUDGED"

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
    # Which of the alert's rules fired: its ``check`` or ``source`` label (rules that share a name differ
    # there), the rule's expression, its worst value while firing and the unit both values are in.
    check: str = ""
    expr: str = ""
    worst_value: float | None = None
    value_unit: str = ""
    firing_periods: list[tuple[float, float]] = field(default_factory=list)
    pending_periods: list[tuple[float, float]] = field(default_factory=list)

    @property
    def display(self) -> str:
        """``TicketeroRaceConditionDetected (check deadlock)``: the name and which rule fired."""
        return f"{self.name} ({self.check})" if self.check else self.name


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
    threshold_text: str = ""  # as the catalogue states it: comparator, number and unit
    relative_factor: float | None = None  # a relative threshold (RNF-07): limit = factor x the earlier value
    # Was the NFR put to the test? True / False for a PASS (False: "PASS (not exercised)"), None otherwise.
    exercised: bool | None = None
    exercise: str = ""  # the condition and the figure measured, e.g. "at least 1000 requests (measured 100)"
    measured_unit: str = (
        ""  # the unit of ``measured`` (may differ from the indicator's: RNF-07 growth vs bytes)
    )
    measured_how: str = ""  # what ``measured`` is, e.g. "Requests answered within 2 s (whole run)"
    # Alert periods of this NFR's alerts for the plots: {alert, check, state (pending/firing), start, end}.
    periods: list[dict[str, Any]] = field(default_factory=list)
    # Lines drawn with the indicator: RNF-01's offered load, RNF-07's limit (its value earlier x factor).
    companions: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The verdict as people read it: PASS, PASS (not exercised), FAIL, NO DATA, NOT JUDGED."""
        return f"{PASS} (not exercised)" if self.status == PASS and self.exercised is False else self.status


@dataclass
class ScenarioOutcome:
    """What the load generator says of the scenario it ran (its summary JSON), reduced to pass/fail.

    ``ok`` is False when the scenario did not do what it said: then the run fails whatever the alerts say.
    ``rollback_failed`` says the system under test may have been left broken (a container stopped, a
    proxy cut, a heartbeat aged): every report says so loudly."""

    ok: bool
    outcome: str
    exit_code: int | None
    reasons: list[str] = field(default_factory=list)
    rollback_failed: bool = False

    @property
    def headline(self) -> str:
        text = f"scenario {self.outcome}"
        if self.exit_code is not None:
            text += f" (load generator exit {self.exit_code})"
        if self.reasons:
            text += ": " + "; ".join(self.reasons)
        return text

    @classmethod
    def from_summary(cls, summary: dict[str, Any] | None, process_exit: int | None = None) -> ScenarioOutcome:
        """Read the load generator's summary; a missing summary means the load generator died mid-run."""
        if not isinstance(summary, dict):
            how = f"exited {process_exit}" if process_exit is not None else "was still running or vanished"
            return cls(
                ok=False,
                outcome="did not finish",
                exit_code=process_exit,
                reasons=[f"the load generator {how} without writing its summary"],
            )
        exit_code = summary.get("exit_code")
        outcome = str(summary.get("outcome") or "unknown")
        reasons: list[str] = []
        if summary.get("error"):
            reasons.append(str(summary["error"]))
        failed_rollbacks = [
            item
            for item in summary.get("actions") or []
            if item.get("phase") == "rollback" and not item.get("ok")
        ]
        for item in failed_rollbacks:
            reasons.append(
                f"ROLLBACK FAILED — the system may be left broken: {item.get('name')}: {item.get('detail')}"
            )
        for item in summary.get("thresholds") or []:
            if not item.get("ok"):
                reasons.append(f"threshold {item.get('threshold')} not met (value {item.get('value')})")
        if not reasons and exit_code not in (0, None):
            for item in (summary.get("probes") or []) + (summary.get("actions") or []):
                if not item.get("ok"):
                    reasons.append(f"{item.get('phase')}: {item.get('name')}: {item.get('detail')}")
        if process_exit not in (None, 0) and exit_code in (0, None):
            exit_code = process_exit
        ok = exit_code == 0 and not failed_rollbacks
        return cls(
            ok=ok,
            outcome=outcome,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            reasons=reasons if not ok else [],
            rollback_failed=bool(failed_rollbacks),
        )


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
    strict: bool = False
    # None when the verdict judges a window without a scenario run (``nfr verdict`` on staging).
    scenario_outcome: ScenarioOutcome | None = None
    # NFRs a PASS of which must have been exercised (--require-exercised, a scenario's ``exercises:``).
    require_exercised: list[str] = field(default_factory=list)
    # Run-level series over the window for the plots: latency_p50/p95/p99 (s, bucket estimates),
    # request_rate and error_rate (requests/s), from the load generator's series.
    traffic: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

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
        """True only when every NFR the window could judge passed (at least one did) and no scrape target
        went down. NOT JUDGED NFRs are listed in every report; with ``strict`` they fail the run."""
        return not self.failure_reasons

    @property
    def failure_reasons(self) -> list[str]:
        """Why the run failed, most important first; empty when it passed. Every report's headline."""
        reasons = []
        if self.scenario_outcome is not None and not self.scenario_outcome.ok:
            reasons.append(self.scenario_outcome.headline)
        allowed = {PASS} if self.strict else {PASS, NOT_JUDGED}
        for r in self.results:
            if r.status not in allowed:
                reasons.append(f"{r.nfr} {r.status}: {r.reason}")
            elif r.nfr in self.require_exercised and r.exercised is not True:
                reasons.append(f"{r.nfr} was to be exercised and was not: {r.exercise or r.reason}")
        if not any(r.status == PASS for r in self.results):
            reasons.append("no NFR could be judged as passed")
        for alert in self.target_down:
            job = alert.labels.get("job", "?")
            reasons.append(f"{alert.name} fired for job {job}: the run could not be watched whole")
        return reasons

    @property
    def not_exercised(self) -> list[str]:
        return [r.nfr for r in self.results if r.status == PASS and r.exercised is False]

    @property
    def not_judged(self) -> list[str]:
        return [r.nfr for r in self.results if r.status == NOT_JUDGED]

    def result(self, nfr_id: str) -> NfrResult:
        for result in self.results:
            if result.nfr == nfr_id:
                return result
        raise KeyError(nfr_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["failure_reasons"] = self.failure_reasons
        data["window_end"] = self.window_end
        return data


def choose_step(start: float, end: float, minimum: float = 1.0) -> float:
    """A range-query step fine enough to see short firings but within Prometheus's point limit."""
    return max(minimum, math.ceil((end - start) / MAX_POINTS))


class WindowNotOver(ValueError):
    """The window's end + settle lies in the future: judging now would miss alerts still to fire."""


def _periods(times: list[float], step: float) -> list[tuple[float, float]]:
    """Contiguous runs of sample times (one step apart) as (from, to) periods."""
    periods: list[tuple[float, float]] = []
    for t in sorted(times):
        if periods and t - periods[-1][1] <= step * 1.5:
            periods[-1] = (periods[-1][0], t)
        else:
            periods.append((t, t))
    return periods


def _rule_for(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rule an alert series came from: same name, and every label the rule sets (``check``,
    ``source``, ``window``, ``severity``) equal to the alert's. Rules that share a name differ there."""
    name = labels.get("alertname")
    candidates = [r for r in rules if r["name"] == name]
    matching = [
        r for r in candidates if all(labels.get(k) == str(v) for k, v in (r.get("labels") or {}).items())
    ]
    if matching:
        return matching[0]
    return candidates[0] if len(candidates) == 1 else None


def _check_of(rule: dict[str, Any] | None, labels: dict[str, str]) -> str:
    """Which check or source fired: the rule's ``check`` or ``source`` label (``check deadlock``)."""
    for key in ("check", "source", "window", "long_window"):
        value = ((rule or {}).get("labels") or {}).get(key) or labels.get(key)
        if value:
            return f"{key} {value}"
    return ""


def _alert_series(
    client: PrometheusClient, start: float, end: float, step: float, selector: str = ""
) -> dict[tuple[tuple[str, str], ...], dict[str, list[float]]]:
    """Every alert series pending or firing in the window: labels → state → sample times."""
    matchers = ",".join(m for m in ('alertstate=~"pending|firing"', selector.strip().strip(",")) if m)
    found: dict[tuple[tuple[str, str], ...], dict[str, list[float]]] = {}
    for item in client.query_range(f"ALERTS{{{matchers}}}", start, end, step):
        labels = {k: v for k, v in item["metric"].items() if k not in ("__name__", "alertstate")}
        state = item["metric"].get("alertstate", "firing")
        key = tuple(sorted(labels.items()))
        found.setdefault(key, {}).setdefault(state, []).extend(float(t) for t, _ in item["values"])
    return found


def _fired_alerts(
    client: PrometheusClient,
    start: float,
    end: float,
    step: float,
    rules: list[dict[str, Any]],
    selector: str = "",
) -> tuple[list[FiredAlert], list[FiredAlert]]:
    """(alerts that fired, alerts that were only pending) in the window; ``selector`` (the config's, e.g.
    ``env="staging"``) keeps only this environment's alerts in a Prometheus shared with others."""
    fired: list[FiredAlert] = []
    pending_only: list[FiredAlert] = []
    for key, states in _alert_series(client, start, end, step, selector).items():
        labels = dict(key)
        name = labels.get("alertname", "?")
        rule = _rule_for(labels, rules)
        times = states.get("firing", [])
        pending = states.get("pending", [])
        alert = FiredAlert(
            name=name,
            nfr=labels.get("nfr", ""),
            labels=labels,
            first_fired=min(times or pending),
            last_firing=max(times or pending),
            resolved=max(times or pending) < end - step / 2,
            summary=str(((rule or {}).get("annotations") or {}).get("summary", "")),
            check=_check_of(rule, labels),
            expr=str((rule or {}).get("query", "")),
            firing_periods=_periods(times, step),
            pending_periods=_periods(pending, step),
        )
        (fired if times else pending_only).append(alert)
    fired.sort(key=lambda a: a.first_fired)
    return fired, pending_only


def _history_needed(
    recorded: dict[str, str] | None, rules: list[dict[str, Any]]
) -> dict[tuple[str, str], float]:
    """(alert, nfr) → seconds of history it needs before it can fire (look-back plus ``for:``); nothing when
    the recording rules could not be read (``recorded`` None): then no NFR is excused as unjudgeable."""
    if recorded is None:
        return {}
    shortest: dict[tuple[str, str], float] = {}
    for rule in rules:
        nfr = str(rule.get("labels", {}).get("nfr", ""))
        # The absent-indicator alert names an NFR but reports missing data, it does not judge the NFR.
        if not nfr.startswith("RNF-") or rule["name"] == INDICATOR_ABSENT_ALERT:
            continue
        needed = promql.lookback(str(rule["query"]), recorded) + float(rule.get("duration") or 0)
        key = (rule["name"], nfr)
        shortest[key] = min(needed, shortest.get(key, needed))
    return shortest


def _history_reaches(client: PrometheusClient, at: float) -> bool:
    """Whether Prometheus holds samples at ``at``: an alert that looks back there could have fired.
    Against a long-running Prometheus the history before the window counts too."""
    try:
        return bool(client.query("count(count_over_time(up[1m]))", at))
    except PrometheusQueryError:
        return True  # cannot tell: judge as usual rather than excuse the NFR


def _too_short(
    client: PrometheusClient, needed_by_alert: dict[tuple[str, str], float], window_end: float
) -> dict[tuple[str, str], float]:
    """The alerts that could not have fired by ``window_end``: their look-back reaches before the data."""
    reaches: dict[float, bool] = {}
    short = {}
    for key, needed in needed_by_alert.items():
        if needed not in reaches:
            reaches[needed] = _history_reaches(client, window_end - needed)
        if not reaches[needed]:
            short[key] = needed
    return short


def _lookback_notes(too_short: dict[tuple[str, str], float], window_end: float, start: float) -> list[str]:
    return [
        f"{name} ({nfr}) needs at least {needed:.0f} s of history (its offset plus its for:); Prometheus "
        f"held less by the end of this {window_end - start:.0f} s window: it could not have fired here "
        "(run longer or use --compress)"
        for (name, nfr), needed in sorted(too_short.items())
    ]


def _unjudgeable(
    needed_by_alert: dict[tuple[str, str], float], too_short: dict[tuple[str, str], float]
) -> dict[str, float]:
    """NFR → the least history that could judge it, for NFRs none of whose alerts could have fired."""
    result: dict[str, float] = {}
    for nfr in {nfr for _name, nfr in needed_by_alert}:
        mine = {key: needed for key, needed in needed_by_alert.items() if key[1] == nfr}
        if all(key in too_short for key in mine):
            result[nfr] = min(mine.values())
    return result


def _value_unit(rule: dict[str, Any] | None, nfr: Nfr | None) -> str:
    """The unit of a rule's value: the NFR's when the rule compares with the NFR's own threshold number
    (``... < <threshold>``), else none (a count of events, a probe's 0/1)."""
    if not rule or nfr is None:
        return ""
    query = str(rule.get("query", ""))
    if re.search(rf"{re.escape(nfr.limit.breach)}\s*{re.escape(nfr.limit.promql)}(?![\d.])", query):
        return nfr.limit.unit
    return ""


def _matches(metric: dict[str, str], alert: FiredAlert) -> bool:
    return all(alert.labels.get(k) == v for k, v in metric.items() if k != "__name__")


def _value_at(client: PrometheusClient, alert: FiredAlert) -> float | None:
    """The fired rule's expression for this alert's series at its first firing (best effort)."""
    if not alert.expr:
        return None
    try:
        result = client.query(alert.expr, alert.first_fired)
    except PrometheusQueryError:
        return None
    for item in result:
        if _matches(item.get("metric", {}), alert):
            value = float(item["value"][1])
            return None if math.isnan(value) else value
    return None


def _worst_value(
    client: PrometheusClient, alert: FiredAlert, step: float, lower_is_worse: bool
) -> float | None:
    """The fired rule's expression at its worst while the alert was pending or firing."""
    if not alert.expr:
        return None
    begin = min([p[0] for p in alert.pending_periods] + [alert.first_fired])
    try:
        result = client.query_range(alert.expr, begin, alert.last_firing, step)
    except PrometheusQueryError:
        return None
    values = [
        float(v)
        for item in result
        if _matches(item.get("metric", {}), alert)
        for _, v in item["values"]
        if not math.isnan(float(v))
    ]
    if not values:
        return None
    if "!=" in alert.expr:
        return max(values, key=abs)
    return min(values) if lower_is_worse else max(values)


def _series(
    client: PrometheusClient,
    nfr: Nfr,
    window: str,
    start: float,
    end: float,
    step: float,
    config: MixinConfig | None = None,
) -> list[tuple[float, float]]:
    result = client.query_range(nfr.indicator_expr(window, config), start, end, step)
    points: list[tuple[float, float]] = []
    for item in result[:1]:
        for t, v in item["values"]:
            value = float(v)
            if not math.isnan(value) and not math.isinf(value):
                points.append((float(t), value))
    return points


def _exercise_minimum(nfr: Nfr, rules: list[dict[str, Any]], recorded: dict[str, str]) -> float:
    """For an exercise without a fixed minimum (RNF-01): the longest for: of the NFR's loaded alerts plus the
    longest range of the recording rules they read — the load must last that long for an alert to judge it."""
    needed = 0.0
    for rule in rules:
        if rule.get("labels", {}).get("nfr") != nfr.id:
            continue
        query = str(rule["query"])
        ranges = [
            seconds
            for name in promql.names(query)
            if name in recorded
            for seconds in promql.ranges(recorded[name])
        ]
        needed = max(needed, float(rule.get("duration") or 0) + max(ranges, default=0.0))
    return needed


def _exercised(
    client: PrometheusClient,
    nfr: Nfr,
    rules: list[dict[str, Any]],
    recorded: dict[str, str],
    start: float,
    window_end: float,
    config: MixinConfig | None,
) -> tuple[bool | None, str]:
    """Whether the window put ``nfr`` to the test, with the condition and the figure measured."""
    if nfr.exercise is None:
        # Judged at all means put to the test (RNF-07: its alerts had the history they look back over).
        return True, "judged: its alerts had the history they need"
    from nfr.mixin.ctx import Ctx, number

    exercise = nfr.exercise
    minimum = exercise.minimum
    if minimum is None:
        minimum = _exercise_minimum(nfr, rules, recorded)
    span = f"{max(1, int(round(window_end - start)))}s"
    expr = (
        exercise.expr(Ctx(config or MixinConfig()))
        .replace("{range}", span)
        .replace("{start}", f"{start:.3f}")
    )
    try:
        figure = client.scalar(expr, window_end)
    except PrometheusQueryError:
        figure = None
    condition = exercise.describe(minimum)
    if exercise.minimum is None:
        condition += f" ({number(minimum)} s)"
    measured = "no data" if figure is None else f"{number(round(figure, 3))} {exercise.unit}"
    ok = figure is not None and figure >= minimum
    return ok, f"{condition}; measured {measured}"


def _summary_figures(
    client: PrometheusClient, start: float, end: float, window_end: float, config: MixinConfig | None
) -> dict[str, float | None]:
    """Run-level figures, each over its own span (``Figure.over``): the load window, evaluated at its end,
    or the judged window. Throughput divides the tickets completed under load by the minutes of load."""
    from nfr.mixin.ctx import Ctx

    figures: dict[str, float | None] = {}
    for figure in catalogue_figures(Ctx(config or MixinConfig())):
        if not figure.expr:
            continue
        at = end if figure.over == "load" else window_end
        span = f"{max(1, int(round(at - start)))}s"
        try:
            promql = figure.expr.replace("{range}", span).replace("{start}", f"{start:.3f}")
            figures[figure.key] = client.scalar(promql, at)
        except PrometheusQueryError:
            figures[figure.key] = None
    completed = figures.get("tickets_completed_under_load")
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


def _range_points(
    client: PrometheusClient, expr: str, start: float, end: float, step: float, shift: float = 0.0
) -> list[tuple[float, float]]:
    """The first series of a range query as finite (time + shift, value) points; [] when it fails."""
    try:
        result = client.query_range(expr, start, end, step)
    except PrometheusQueryError:
        return []
    points = []
    for item in result[:1]:
        for t, v in item["values"]:
            value = float(v)
            if math.isfinite(value):
                points.append((float(t) + shift, value))
    return points


def _traffic(
    client: PrometheusClient, window: str, start: float, end: float, step: float, config: MixinConfig | None
) -> dict[str, list[tuple[float, float]]]:
    """Latency percentiles (bucket estimates), request and error rates over the window, for the plots."""
    from nfr.mixin.ctx import Ctx

    c = Ctx(config or MixinConfig())
    buckets = f"sum by (le) (rate({c.s('loadgen_request_duration_seconds_bucket', 'loadgen')}[{window}]))"
    requests = f"sum(rate({c.s('loadgen_requests_total', 'loadgen')}[{window}]))"
    failures = f"sum(rate({c.s('loadgen_request_failures_total', 'loadgen')}[{window}]))"
    exprs = {
        **{f"latency_p{q}": f"histogram_quantile(0.{q}, {buckets})" for q in ("50", "95", "99")},
        "request_rate": requests,
        "error_rate": f"{failures} or 0 * {requests}",
    }
    return {key: _range_points(client, expr, start, end, step) for key, expr in exprs.items()}


def _relative_lookback(nfr: Nfr, rules: list[dict[str, Any]], recorded: dict[str, str]) -> float:
    """How far back a relative threshold compares (RNF-07: the offset of its growth-ratio rules)."""
    offsets = [
        seconds
        for rule in rules
        if (rule.get("labels") or {}).get("nfr") == nfr.id
        for name in promql.names(str(rule["query"]))
        if name in recorded
        for seconds in promql.offsets(recorded[name])
    ]
    return max(offsets, default=0.0)


def _companions(
    client: PrometheusClient,
    nfr: Nfr,
    rules: list[dict[str, Any]],
    recorded: dict[str, str],
    window: str,
    start: float,
    end: float,
    step: float,
    config: MixinConfig | None,
) -> dict[str, list[tuple[float, float]]]:
    """Lines drawn beside the indicator: the offered load of a throughput NFR (RNF-01 is only judged
    while demand is there), the limit of a relative NFR (RNF-07: its value ``offset`` earlier x factor)."""
    from nfr.mixin.ctx import Ctx

    out: dict[str, list[tuple[float, float]]] = {}
    if nfr.exercise is not None and "offered" in nfr.exercise.expr(Ctx(config or MixinConfig())):
        offered = f"{Ctx(config or MixinConfig()).r(':ticketero_tickets_offered:rate1m')} * 60"
        out["offered"] = _range_points(client, offered, start, end, step)
    if nfr.relative:
        back = _relative_lookback(nfr, rules, recorded)
        if back:
            earlier = _range_points(
                client, nfr.indicator_expr(window, config), start - back, end - back, step, shift=back
            )
            out["limit"] = [(t, v * nfr.limit.value) for t, v in earlier]
            out["earlier"] = earlier
    return out


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
    strict: bool = False,
    scenario_outcome: ScenarioOutcome | None = None,
    config: MixinConfig | None = None,
    require_exercised: Iterable[str] = (),
    now: float | None = None,
) -> Verdict:
    """Judge every NFR over ``[start, end + settle]`` from what ``client``'s Prometheus recorded.

    Raises :class:`WindowNotOver` when ``end + settle`` lies after ``now``: never judge early."""
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    window_end = end + settle
    now = time.time() if now is None else now
    if window_end > now:
        raise WindowNotOver(
            f"the window ends (end + settle) at {window_end:.0f}, {window_end - now:.0f} s from now: alerts "
            "may still fire; wait for it (nfr verdict --wait) rather than judge early"
        )
    step = step or choose_step(start, window_end)
    expected_set = set(expected)
    all_rules = client.alerting_rules()
    names = {rule["name"] for rule in all_rules}
    # The NFR an alert judges comes from its nfr label, so alerts added later need no change here.
    nfr_of_rule = {rule["name"]: str(rule.get("labels", {}).get("nfr", "")) for rule in all_rules}
    try:
        loaded: dict[str, str] | None = {r["name"]: str(r["query"]) for r in client.recording_rules()}
    except PrometheusQueryError:
        loaded = None
    recorded = loaded or {}
    notes = []
    unknown = sorted(expected_set - names)
    if unknown:
        notes.append("expected alert(s) not loaded in Prometheus: " + ", ".join(unknown))
    needed_by_alert = _history_needed(loaded, all_rules)
    too_short = _too_short(client, needed_by_alert, window_end)
    notes += _lookback_notes(too_short, window_end, start)
    unjudgeable = _unjudgeable(needed_by_alert, too_short)
    fired, pending_only = _fired_alerts(
        client, start, window_end, step, all_rules, config.selector if config else ""
    )
    by_id = {n.id: n for n in nfrs}
    for alert in fired:
        nfr_of_alert = by_id.get(alert.nfr)
        alert.value_unit = _value_unit(_rule_for(alert.labels, all_rules), nfr_of_alert)
        alert.value_at_first_fire = _value_at(client, alert)
        lower_is_worse = nfr_of_alert.higher_is_better if nfr_of_alert is not None else False
        alert.worst_value = _worst_value(client, alert, step, lower_is_worse)
    figures = _summary_figures(client, start, end, window_end, config)
    results = []
    for nfr in nfrs:
        series = _series(client, nfr, rate_window, start, window_end, step, config)
        status, reason, failing, expected_fired = _judge(nfr, fired, expected_set, series, names, nfr_of_rule)
        if status == PASS and nfr.id in unjudgeable and not expected_fired:
            status = NOT_JUDGED
            reason = (
                f"none of its alerts could have fired: they need at least {unjudgeable[nfr.id]:.0f} s of "
                "history and Prometheus held less (run a longer scenario, e.g. the soak)"
            )
        first = min((a.first_fired for a in failing), default=None)
        # Measured, in the figure's unit: the NFR's run-level figure over the window (docs/verdict.md says
        # which for each NFR), whatever the verdict; the alert values are per alert. Only an NFR without a
        # figure falls back to its worst indicator sample.
        measured, measured_unit, measured_how = None, nfr.unit, ""
        if nfr.figure:
            figure = figure_by_key(nfr.figure)
            measured, measured_unit, measured_how = figures.get(nfr.figure), figure.unit, figure.label
        if measured is None and not nfr.figure:
            measured, measured_how = nfr.worst([v for _, v in series]), "worst indicator sample"
        if failing:
            reason += " (" + "; ".join(_alert_values_text(a) for a in failing) + ")"
        exercised, exercise_text = None, ""
        if status == PASS:
            exercised, exercise_text = _exercised(client, nfr, all_rules, recorded, start, window_end, config)
        elif status == FAIL:
            exercised = True
        mine = [a for a in fired + pending_only if a.nfr == nfr.id]
        periods = [
            {"alert": a.name, "check": a.check, "state": state, "start": p[0], "end": p[1]}
            for a in mine
            for state, spans in (("pending", a.pending_periods), ("firing", a.firing_periods))
            for p in spans
        ]
        results.append(
            NfrResult(
                nfr=nfr.id,
                title=nfr.title,
                requirement=nfr.requirement_text,
                status=status,
                reason=reason,
                unit=nfr.unit,
                threshold=nfr.threshold,
                higher_is_better=nfr.higher_is_better,
                alerts=failing,
                expected_alerts=expected_fired,
                first_fired=first,
                measured=measured,
                indicator_expr=nfr.indicator_expr(rate_window, config),
                series=series,
                threshold_text=nfr.limit.text(),
                relative_factor=nfr.limit.value if nfr.relative else None,
                exercised=exercised,
                exercise=exercise_text,
                measured_unit=measured_unit,
                measured_how=measured_how,
                periods=periods,
                companions=_companions(
                    client, nfr, all_rules, recorded, rate_window, start, window_end, step, config
                ),
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
        strict=strict,
        scenario_outcome=scenario_outcome,
        require_exercised=sorted(set(require_exercised)),
        traffic=_traffic(client, rate_window, start, window_end, step, config),
    )


def _alert_values_text(alert: FiredAlert) -> str:
    """``check deadlock: 2 violations when it first fired, worst 3``."""
    head = alert.check or alert.name
    return (
        f"{head}: {fmt_value(alert.value_at_first_fire, alert.value_unit)} when it first fired, "
        f"worst {fmt_value(alert.worst_value, alert.value_unit)}"
    )


def wall_clock() -> float:
    return time.time()
