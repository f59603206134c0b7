"""Plain-text renderings of a verdict: the console table, NFR-TEST-RESULTS.md, JUnit XML and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from nfr.catalogue import FIGURES, NFR_IDS, nfr_by_id
from nfr.verdict import FAIL, NO_DATA, NOT_JUDGED, PASS, NfrResult, Verdict


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_value(value: float | None, unit: str = "") -> str:
    """Human formatting: bytes in MiB, ratios in %, small numbers with 3 significant digits."""
    if value is None:
        return "-"
    if unit == "bytes":
        return f"{value / 1048576:.1f} MiB"
    if "ratio" in unit:
        return f"{value * 100:.2f} %"
    suffix = " s" if unit == "s" or unit.startswith("s (") else ""
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}{suffix}"
    return f"{value:.3g}{suffix}"


def threshold_text(result: NfrResult) -> str:
    """The NFR's threshold as the catalogue states it (comparator, number and unit)."""
    return result.threshold_text or result.requirement


def offset_text(verdict: Verdict, ts: float | None) -> str:
    if ts is None:
        return "-"
    return f"t+{ts - verdict.start:.0f}s"


def console_table(verdict: Verdict) -> str:
    lines = [f"{'NFR':<7} {'title':<14} {'verdict':<22} {'measured':>14}  detail"]
    for r in verdict.results:
        detail = r.reason
        if r.first_fired is not None:
            detail += f" (first fired {offset_text(verdict, r.first_fired)})"
        if r.exercised is False:
            detail = f"not put to the test: {r.exercise}"
        lines.append(f"{r.nfr:<7} {r.title:<14} {r.label:<22} {fmt_value(r.measured, r.unit):>14}  {detail}")
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


def _figure_rows() -> list[tuple[str, str, str, str]]:
    """(key, label, unit, the threshold of the NFR it belongs to) for the metrics table."""
    rows = []
    for figure in FIGURES:
        limit = nfr_by_id(figure.nfr).limit.text() if figure.nfr in NFR_IDS else ""
        rows.append((figure.key, figure.label, figure.unit, limit))
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
            f"{fmt_value(total.get('throughput_per_min'))} requests/min"
        )
    if latency:
        out.append(
            "- latency (exact, HdrHistogram): "
            + ", ".join(
                f"{key} {fmt_value(latency[key] * 1000)} ms"
                for key in ("p50", "p95", "p99", "max")
                if key in latency
            )
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
            f"| {r.nfr} | {r.title} | {threshold_text(r)} | {fmt_value(r.measured, r.unit)} | "
            f"{icon[r.status] if r.exercised is not False else '*PASS (not exercised)*'} | {detail} |"
        )
    out += ["", "## Metrics captured", "", "| Metric | Value | Threshold |", "|---|---|---|"]
    for key, label, unit, limit in _figure_rows():
        if key in verdict.figures:
            out.append(f"| {label} | {fmt_value(verdict.figures[key], unit)} | {limit} |")
    out += scenario_section(summary if isinstance(summary, dict) else None)
    fired = [a for r in verdict.results for a in r.alerts + r.expected_alerts] + verdict.meta_alerts
    out += ["", "## Alerts fired in the window", ""]
    if not fired:
        out.append("None.")
    else:
        out += ["| Alert | NFR | First fired | Last firing | Resolved | Value |", "|---|---|---|---|---|---|"]
        for a in sorted(fired, key=lambda a: a.first_fired):
            out.append(
                f"| {a.name} | {a.nfr} | {iso(a.first_fired)} ({offset_text(verdict, a.first_fired)}) | "
                f"{iso(a.last_firing)} | {'yes' if a.resolved else 'no'} | "
                f"{fmt_value(a.value_at_first_fire)} |"
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


def junit_xml(verdict: Verdict) -> str:
    """One testcase per NFR: ``failure`` for FAIL, ``error`` for NO DATA (missing data is no pass)."""
    outcome = verdict.scenario_outcome
    failures = sum(r.status == FAIL for r in verdict.results) + (outcome is not None and not outcome.ok)
    errors = sum(r.status == NO_DATA for r in verdict.results)
    skipped = sum(r.status == NOT_JUDGED or r.exercised is False for r in verdict.results)
    suite = ET.Element(
        "testsuite",
        name=f"ticketero-nfr {verdict.scenario}".strip(),
        tests=str(len(verdict.results) + (outcome is not None)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{verdict.window_end - verdict.start:.1f}",
        timestamp=iso(verdict.start),
    )
    if outcome is not None:
        # The scenario first: a failed fault injection makes every NFR testcase below meaningless.
        case = ET.SubElement(
            suite,
            "testcase",
            classname="ticketero.scenario",
            name=f"scenario {verdict.scenario}".strip(),
            time="0",
        )
        if not outcome.ok:
            element = ET.SubElement(case, "failure", message=outcome.headline, type="ScenarioFailed")
            element.text = "\n".join(outcome.reasons)
    for r in verdict.results:
        case = ET.SubElement(
            suite, "testcase", classname="ticketero.nfr", name=f"{r.nfr} {r.title}", time="0"
        )
        message = f"{r.reason}; measured {fmt_value(r.measured, r.unit)} (threshold {threshold_text(r)})"
        if r.status == FAIL:
            element = ET.SubElement(case, "failure", message=message, type="AlertFired")
            element.text = "\n".join(
                f"{a.name} first fired {iso(a.first_fired)} labels={json.dumps(a.labels, sort_keys=True)}"
                for a in r.alerts
            )
        elif r.status == NO_DATA:
            ET.SubElement(case, "error", message=message, type="NoData")
        elif r.status == NOT_JUDGED:
            ET.SubElement(case, "skipped", message=r.reason)
        elif r.exercised is False:
            # Passed without being put to the test: shown as skipped so CI says so.
            ET.SubElement(case, "skipped", message=f"PASS (not exercised): {r.exercise}")
        if r.exercise:
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="exercised", value=str(bool(r.exercised)).lower())
            ET.SubElement(props, "property", name="exercise", value=r.exercise)
        out = ET.SubElement(case, "system-out")
        out.text = f"indicator: {r.indicator_expr}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def json_report(verdict: Verdict, extra: dict[str, Any] | None = None) -> str:
    data = verdict.to_dict()
    data.update(extra or {})
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
