"""Plain-text renderings of a verdict: the console table, NFR-TEST-RESULTS.md, JUnit XML and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from nfr.catalogue import FIGURES, NFR_IDS, nfr_by_id
from nfr.report_values import NO_DATA_TEXT, fmt_value, iso
from nfr.verdict import FAIL, NO_DATA, NOT_JUDGED, PASS, FiredAlert, NfrResult, Verdict

__all__ = ["console_table", "fmt_value", "iso", "junit_xml", "json_report", "markdown", "measured_text"]


def threshold_text(result: NfrResult) -> str:
    """The NFR's threshold as the catalogue states it (comparator, number and unit)."""
    return result.threshold_text or result.requirement


def measured_text(result: NfrResult) -> str:
    """The NFR's measured figure in its own unit (``90.00 %``, ``128 tickets/min``, ``no data``)."""
    return fmt_value(result.measured, result.measured_unit or result.unit)


def alert_value_text(alert: FiredAlert) -> str:
    return (
        f"{fmt_value(alert.value_at_first_fire, alert.value_unit)} when it first fired, "
        f"worst {fmt_value(alert.worst_value, alert.value_unit)}"
    )


def offset_text(verdict: Verdict, ts: float | None) -> str:
    if ts is None:
        return "-"
    return f"t+{ts - verdict.start:.0f}s"


def console_table(verdict: Verdict) -> str:
    lines = [f"{'NFR':<7} {'title':<14} {'verdict':<22} {'measured':>16}  detail"]
    for r in verdict.results:
        detail = r.reason
        if r.first_fired is not None:
            detail += f" (first fired {offset_text(verdict, r.first_fired)})"
        if r.exercised is False:
            detail = f"not put to the test: {r.exercise}"
        lines.append(f"{r.nfr:<7} {r.title:<14} {r.label:<22} {measured_text(r):>16}  {detail}")
    for alert in verdict.meta_alerts:
        lines.append(
            f"{'meta':<7} {alert.name:<14} fired {offset_text(verdict, alert.first_fired)} "
            f"{json.dumps({k: v for k, v in alert.labels.items() if k not in ('alertname', 'nfr')})}"
        )
    lines += [f"note: {note}" for note in verdict.notes]
    outcome = verdict.scenario_outcome
    if outcome is not None and outcome.rollback_failed:
        lines.append("WARNING: a rollback failed — the system under test may be left broken (see above)")
    lines.append(f"RESULT: {overall_text(verdict)}")
    lines += [f"  - {reason}" for reason in verdict.failure_reasons]
    return "\n".join(lines)


def overall_text(verdict: Verdict) -> str:
    """PASS or FAIL with the one thing a reader must know next to it."""
    result = "PASS" if verdict.passed else "FAIL"
    outcome = verdict.scenario_outcome
    if outcome is not None and not outcome.ok:
        result += f" ({outcome.headline})"
    else:
        notes = []
        if verdict.not_judged:
            notes.append(
                f"{', '.join(verdict.not_judged)} not judged: the window was too short for its alerts"
            )
        if verdict.not_exercised:
            notes.append(f"{', '.join(verdict.not_exercised)} not exercised by this run")
        if notes:
            result += f" ({'; '.join(notes)})"
    return result


def exact_latency(summary: Any) -> dict[str, float]:
    """The load generator's exact (HdrHistogram) latency of all requests, in seconds; {} without it."""
    if not isinstance(summary, dict):
        return {}
    total = (summary.get("load") or {}).get("total") or {}
    latency = total.get("latency") or {}
    return {k: float(v) for k, v in latency.items() if isinstance(v, int | float) and total.get("requests")}


def figure_rows(verdict: Verdict, summary: Any = None) -> list[tuple[str, str, str]]:
    """(label, value with unit, threshold) of the metrics table. Latency percentiles are the load
    generator's exact ones when its summary is there; otherwise the bucket estimates, labelled so."""
    exact = exact_latency(summary)
    rows = []
    if exact:
        for key in ("p50", "p95", "p99", "max"):
            if key in exact:
                rows.append(
                    (
                        f"API latency {key} (exact, load generator HdrHistogram)",
                        fmt_value(exact[key], "s"),
                        "",
                    )
                )
    for figure in FIGURES:
        if figure.key not in verdict.figures or (figure.estimate and exact):
            continue
        limit = nfr_by_id(figure.nfr).limit.text() if figure.nfr in NFR_IDS else ""
        rows.append((figure.label, fmt_value(verdict.figures[figure.key], figure.unit), limit))
    return rows


def scenario_section(summary: dict[str, Any] | None) -> list[str]:
    """The load generator's own account of the scenario: outcome, exact (HDR) percentiles, its thresholds,
    probes and fault actions. Informative: the NFR verdict above comes from the alerts."""
    if not summary:
        return []
    out = ["", "## Scenario run (load generator)", ""]
    total = (summary.get("load") or {}).get("total") or {}
    latency = total.get("latency") or {}
    out.append(
        f"- `{summary.get('scenario', '-')}`: outcome **{summary.get('outcome', '-')}** "
        f"(exit code {summary.get('exit_code', '-')})"
        + (f" — {summary['error']}" if summary.get("error") else "")
    )
    if total:
        out.append(
            f"- {total.get('requests', 0)} requests, {total.get('failures', 0)} failed "
            f"({fmt_value(total.get('error_rate'), 'ratio')}), {total.get('dropped', 0)} dropped, "
            f"{fmt_value(total.get('throughput_per_min'), 'requests/min')}"
        )
    if latency:
        out.append(
            "- latency (exact, HdrHistogram): "
            + ", ".join(
                f"{key} {fmt_value(latency[key], 's')}"
                for key in ("p50", "p95", "p99", "max")
                if key in latency
            )
        )
    endpoints = (summary.get("load") or {}).get("endpoints") or {}
    if endpoints:
        out += [
            "",
            "| Endpoint | Requests | Failed | p50 | p95 | p99 | max |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, block in endpoints.items():
            lat = block.get("latency") or {}
            cells = [
                fmt_value(lat.get(k), "s") if block.get("requests") else NO_DATA_TEXT
                for k in ("p50", "p95", "p99", "max")
            ]
            out.append(
                f"| {name} | {block.get('requests', 0)} | {block.get('failures', 0)} | "
                + " | ".join(cells)
                + " |"
            )
    checks = [
        (item.get("threshold", "?"), item.get("ok"), item.get("value"))
        for item in summary.get("thresholds") or []
    ]
    checks += [
        (f"{item.get('phase')}: {item.get('name')}", item.get("ok"), item.get("detail"))
        for item in (summary.get("probes") or []) + (summary.get("actions") or [])
    ]
    if checks:
        out += ["", "| Check | OK | Value |", "|---|---|---|"]
        for name, ok, value in checks:
            shown = fmt_value(value) if isinstance(value, int | float) else str(value or "")
            out.append(f"| {name} | {'yes' if ok else '**no**'} | {shown.replace('|', '/')} |")
    return out


def markdown(verdict: Verdict, extra: dict[str, Any] | None = None) -> str:
    """NFR-TEST-RESULTS.md: scenarios run, metrics against thresholds, PASS/FAIL per NFR."""
    extra = dict(extra or {})
    summary = extra.pop("loadgen_summary", None)
    extra = {k: v for k, v in extra.items() if not isinstance(v, dict | list) or k == "faults"}
    icon = {PASS: "PASS", FAIL: "**FAIL**", NO_DATA: "**NO DATA**", NOT_JUDGED: "*NOT JUDGED*"}
    out = [
        "# NFR test results",
        "",
        f"- Run: `{verdict.run_id or '-'}`",
        f"- Scenario: `{verdict.scenario or '-'}`",
        f"- Window: {iso(verdict.start)} → {iso(verdict.end)} (+ {verdict.settle:.0f} s settle), "
        f"{verdict.end - verdict.start:.0f} s under load",
        f"- Prometheus: {verdict.prometheus}",
        f"- Overall: **{overall_text(verdict)}**",
    ]
    out += [f"  - {reason}" for reason in verdict.failure_reasons]
    if verdict.scenario_outcome is not None and verdict.scenario_outcome.rollback_failed:
        out.append("- **WARNING: a rollback failed — the system under test may be left broken.**")
    for key, value in extra.items():
        shown = ", ".join(map(str, value)) or "none" if isinstance(value, list) else value
        out.append(f"- {key}: {shown if shown is not None else '-'}")
    if verdict.expected:
        out.append(f"- Alerts the scenario expects: {', '.join(verdict.expected)}")
    out += [
        "",
        "## Verdict per NFR",
        "",
        "| NFR | Requirement | Threshold | Measured | Verdict | Detail |",
        "|---|---|---|---|---|---|",
    ]
    for r in verdict.results:
        detail = r.reason
        if r.first_fired is not None:
            detail += f"; first fired {iso(r.first_fired)} ({offset_text(verdict, r.first_fired)})"
        if r.exercise:
            detail += f"; {'exercised' if r.exercised else 'NOT exercised'}: {r.exercise}"
        out.append(
            f"| {r.nfr} | {r.title} | {threshold_text(r)} | {measured_text(r)} | "
            f"{icon[r.status] if r.exercised is not False else '*PASS (not exercised)*'} | {detail} |"
        )
    out += ["", "## How each measured figure was computed", ""]
    out += [f"- {r.nfr}: {r.measured_how or 'no run-level figure'}" for r in verdict.results]
    out += ["", "## Metrics captured", "", "| Metric | Value | Threshold |", "|---|---|---|"]
    for label, value, limit in figure_rows(verdict, summary):
        out.append(f"| {label} | {value} | {limit} |")
    out += scenario_section(summary if isinstance(summary, dict) else None)
    fired = [a for r in verdict.results for a in r.alerts + r.expected_alerts] + verdict.meta_alerts
    out += ["", "## Alerts fired in the window", ""]
    if not fired:
        out.append("None.")
    else:
        out += [
            "| Alert | Check / source | NFR | First fired | Last firing | Resolved | Value when first fired | Worst value |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a in sorted(fired, key=lambda a: a.first_fired):
            out.append(
                f"| {a.name} | {a.check or '-'} | {a.nfr} | {iso(a.first_fired)} ({offset_text(verdict, a.first_fired)}) | "
                f"{iso(a.last_firing)} | {'yes' if a.resolved else 'no'} | "
                f"{fmt_value(a.value_at_first_fire, a.value_unit)} | {fmt_value(a.worst_value, a.value_unit)} |"
            )
    if verdict.notes:
        out += ["", "## Notes", ""] + [f"- {note}" for note in verdict.notes]
    out += [
        "",
        "## How this verdict was reached",
        "",
        "An NFR fails when one of its Prometheus alerts (label `nfr`) fired between the start of the load "
        "and the end of the settle period; it has NO DATA when its indicator series was missing; it is "
        "NOT JUDGED when the window was shorter than every one of its alerts needs; otherwise it passes. "
        "Indicators used:",
        "",
    ]
    for r in verdict.results:
        out.append(f"- {r.nfr}: `{r.indicator_expr}`")
    return "\n".join(out) + "\n"


def _testcase(
    suite: ET.Element,
    classname: str,
    name: str,
    seconds: float,
    outcome: str = "",
    message: str = "",
    text: str = "",
) -> ET.Element:
    """A testcase; ``outcome`` failure / error / skipped / "" (passed)."""
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{max(0.0, seconds):.1f}")
    if outcome:
        element = ET.SubElement(case, outcome, message=message)
        if outcome in ("failure", "error"):
            element.set("type", {"failure": "Failed", "error": "NoData"}[outcome])
        if text:
            element.text = text
    return case


def junit_xml(verdict: Verdict) -> str:
    """One testcase per NFR, one for the scenario, one per meta failure (a TargetDown, no NFR passed) and
    a ``result`` testcase that fails exactly when the run's exit code does. Counts follow the testcases,
    so --strict, --require-exercised and a failed scenario show in the XML as in the exit code.

    ``time``: the scenario's and the result's are the load duration and the judged window; an NFR's is
    the time from the load start to its first firing when it failed, else the judged window."""
    outcome = verdict.scenario_outcome
    window = verdict.window_end - verdict.start
    suite = ET.Element(
        "testsuite", name=f"ticketero-nfr {verdict.scenario}".strip(), timestamp=iso(verdict.start)
    )
    if outcome is not None:
        # The scenario first: a failed fault injection makes every NFR testcase below meaningless.
        _testcase(
            suite, "ticketero.scenario", f"scenario {verdict.scenario}".strip(), verdict.end - verdict.start,
            "" if outcome.ok else "failure", outcome.headline, "\n".join(outcome.reasons),
        )  # fmt: skip
    for r in verdict.results:
        message = f"{r.label}: {r.reason}; measured {measured_text(r)} (threshold {threshold_text(r)})"
        must_exercise = r.nfr in verdict.require_exercised and r.exercised is not True and r.status == PASS
        if r.status == FAIL:
            kind, text = (
                "failure",
                "\n".join(
                    f"{a.display} first fired {iso(a.first_fired)}: {alert_value_text(a)}; "
                    f"labels={json.dumps(a.labels, sort_keys=True)}"
                    for a in r.alerts
                ),
            )
        elif r.status == NO_DATA:
            kind, text = "error", ""
        elif r.status == NOT_JUDGED:
            kind, text = ("failure" if verdict.strict else "skipped"), ""
            if verdict.strict:
                message = f"NOT JUDGED counts as a failure (--strict): {message}"
        elif must_exercise:
            kind, text = "failure", ""
            message = f"to be exercised and was not: {r.exercise}; {message}"
        elif r.exercised is False:
            # Passed without being put to the test: shown as skipped so CI says so.
            kind, text = "skipped", ""
            message = f"PASS (not exercised): {r.exercise}; measured {measured_text(r)}"
        else:
            kind, text = "", ""
        seconds = (r.first_fired - verdict.start) if r.first_fired is not None else window
        case = _testcase(suite, "ticketero.nfr", f"{r.nfr} {r.title}", seconds, kind, message, text)
        props = ET.SubElement(case, "properties")
        for name, value in (
            ("verdict", r.label),
            ("measured", measured_text(r)),
            ("measured_value", "" if r.measured is None else repr(r.measured)),
            ("measured_how", r.measured_how),
            ("threshold", threshold_text(r)),
            ("exercised", "" if r.exercised is None else str(bool(r.exercised)).lower()),
            ("exercise", r.exercise),
        ):
            if value:
                ET.SubElement(props, "property", name=name, value=value)
        out = ET.SubElement(case, "system-out")
        out.text = f"measured {measured_text(r)} ({r.measured_how or 'no run-level figure'}); indicator: {r.indicator_expr}"
    for alert in verdict.target_down:
        job = alert.labels.get("job", "?")
        _testcase(
            suite, "ticketero.meta", f"{alert.name} job={job}", alert.last_firing - alert.first_fired, "failure",
            f"{alert.name} fired for job {job} from {iso(alert.first_fired)}: the run could not be watched whole",
        )  # fmt: skip
    if not any(r.status == PASS for r in verdict.results):
        _testcase(
            suite,
            "ticketero.meta",
            "at least one NFR passed",
            window,
            "failure",
            "no NFR could be judged as passed",
        )
    reasons = verdict.failure_reasons
    _testcase(
        suite, "ticketero.result", "run result", window, "failure" if reasons else "",
        "RESULT: " + overall_text(verdict), "\n".join(reasons),
    )  # fmt: skip
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(case.find(kind) is not None for case in cases)))
    suite.set("time", f"{window:.1f}")
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def json_report(verdict: Verdict, extra: dict[str, Any] | None = None) -> str:
    data = verdict.to_dict()
    data.update(extra or {})
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
