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

from nfr.catalogue import (
    INDICATOR_ABSENT_ALERT,
    NFRS,
    SUMMARY_FIGURES,
    TARGET_DOWN_ALERT,
    Nfr,
)
from nfr.mixin.config import MixinConfig
from nfr.promclient import PrometheusClient, PrometheusQueryError
from nfr.rulescale import parse_duration

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


def _fired_alerts(
    client: PrometheusClient,
    start: float,
    end: float,
    step: float,
    rules: dict[str, dict[str, Any]],
    selector: str = "",
) -> list[FiredAlert]:
    """Every alert series firing in the window; ``selector`` (the config's, e.g. ``env="staging"``) keeps
    only this environment's alerts in a Prometheus shared with others."""
    matchers = ",".join(m for m in ('alertstate="firing"', selector.strip().strip(",")) if m)
    series = client.query_range(f"ALERTS{{{matchers}}}", start, end, step)
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


_FALLBACK = re.compile(r"\)\s*or\s+vector\s*\(")


def _without_fallback_operands(expr: str) -> str:
    """Drop every ``( ... ) or vector(...)`` left operand: when its history is missing the fallback answers,
    so an offset inside it does not stop the expression from returning (and its alert from firing)."""
    while match := _FALLBACK.search(expr):
        close, depth = match.start(), 0
        for open_at in range(close, -1, -1):
            depth += {")": 1, "(": -1}.get(expr[open_at], 0)
            if depth == 0:
                break
        expr = expr[:open_at] + "vector(" + expr[match.end() :]
    return expr


def _lookback(expr: str, recorded: dict[str, str], depth: int = 0) -> float:
    """History an expression needs before it can return anything, in seconds: its longest ``offset``
    (a range selector works on partial data, an offset into time before the data began does not; nor
    does an offset guarded by ``or vector(...)``), plus what the recording rules it uses need themselves."""
    expr = _without_fallback_operands(expr)
    offsets = [parse_duration(m.group(2)) for m in _SPAN.finditer(expr) if m.group(2)]
    own = max(offsets, default=0.0)
    if depth > 5:
        return own
    used = {name for name in _NAME.findall(expr) if name in recorded}
    return own + max((_lookback(recorded[name], recorded, depth + 1) for name in used), default=0.0)


def _history_needed(client: PrometheusClient, rules: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(alert, nfr) → seconds of history it needs before it can fire (look-back plus ``for:``)."""
    try:
        recorded = {r["name"]: str(r["query"]) for r in client.recording_rules()}
    except PrometheusQueryError:
        return {}
    shortest: dict[tuple[str, str], float] = {}
    for rule in rules:
        nfr = str(rule.get("labels", {}).get("nfr", ""))
        # The absent-indicator alert names an NFR but reports missing data, it does not judge the NFR.
        if not nfr.startswith("RNF-") or rule["name"] == INDICATOR_ABSENT_ALERT:
            continue
        needed = _lookback(str(rule["query"]), recorded) + float(rule.get("duration") or 0)
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
            parse_duration(m.group(1))
            for name in _NAME.findall(query)
            if name in recorded
            for m in _SPAN.finditer(recorded[name])
            if m.group(1)
        ]
        needed = max(needed, float(rule.get("duration") or 0) + max(ranges, default=0.0))
    return needed


def _exercised(
    client: PrometheusClient,
    nfr: Nfr,
    rules: list[dict[str, Any]],
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
        try:
            recorded = {r["name"]: str(r["query"]) for r in client.recording_rules()}
        except PrometheusQueryError:
            recorded = {}
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
    strict: bool = False,
    scenario_outcome: ScenarioOutcome | None = None,
    config: MixinConfig | None = None,
    require_exercised: Iterable[str] = (),
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
    needed_by_alert = _history_needed(client, all_rules)
    too_short = _too_short(client, needed_by_alert, window_end)
    notes += _lookback_notes(too_short, window_end, start)
    unjudgeable = _unjudgeable(needed_by_alert, too_short)
    fired = _fired_alerts(client, start, window_end, step, rules, config.selector if config else "")
    for alert in fired:
        alert.value_at_first_fire = _value_at(client, rules.get(alert.name), alert)
    figures = _summary_figures(client, start, end, window_end)
    results = []
    for nfr in nfrs:
        series = _series(client, nfr, rate_window, start, window_end, step, config)
        status, reason, failing, expected_fired = _judge(
            nfr, fired, expected_set, series, set(rules), nfr_of_rule
        )
        if status == PASS and nfr.id in unjudgeable and not expected_fired:
            status = NOT_JUDGED
            reason = (
                f"none of its alerts could have fired: they need at least {unjudgeable[nfr.id]:.0f} s of "
                "history and Prometheus held less (run a longer scenario, e.g. the soak)"
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
        exercised, exercise_text = None, ""
        if status == PASS:
            exercised, exercise_text = _exercised(client, nfr, all_rules, start, window_end, config)
        elif status == FAIL:
            exercised = True
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
    )


def wall_clock() -> float:
    return time.time()
