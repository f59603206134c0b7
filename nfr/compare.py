"""Compare two runs (their results directories): per-NFR and per-endpoint deltas, regressions flagged.

``python -m nfr compare BASELINE CANDIDATE`` reads ``results.json`` of each. A regression is an NFR that
passed in the baseline and not in the candidate, a candidate run that failed where the baseline passed,
or a figure that moved past its allowance: p95 latency (exact, per endpoint and overall) up by more than
``--max-p95-increase``, throughput down by more than ``--max-throughput-drop``, the error rate up by more
than ``--max-error-rate-increase`` (percentage points). Exit 0 no regression, 1 regression, 2 bad input.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nfr.catalogue import figure_by_key
from nfr.report_values import NO_DATA_TEXT, fmt_delta, fmt_value

RESULTS_FILE = "results.json"


class CompareError(ValueError):
    """A results directory that cannot be compared (missing, unreadable, not a verdict)."""


@dataclass(frozen=True)
class Allowances:
    max_p95_increase: float = 0.20  # relative: 0.20 = +20 %
    max_throughput_drop: float = 0.10  # relative
    max_error_rate_increase: float = 0.001  # absolute, as a ratio: 0.001 = 0.1 percentage points


@dataclass
class Row:
    name: str
    baseline: str
    candidate: str
    delta: str
    regression: str = ""  # why this row is a regression; "" when it is not


@dataclass
class Comparison:
    baseline: str
    candidate: str
    baseline_passed: bool
    candidate_passed: bool
    nfrs: list[Row] = field(default_factory=list)
    endpoints: list[Row] = field(default_factory=list)
    figures: list[Row] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)


def load_run(directory: str | Path) -> dict[str, Any]:
    path = Path(directory)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise CompareError(f"{directory}: no {RESULTS_FILE} (expected a results directory of a run)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CompareError(f"{file}: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("results"), list) or "passed" not in data:
        raise CompareError(f"{file}: expected a verdict's results.json (with 'results' and 'passed')")
    return data


def parse_share(text: str) -> float:
    """``20%`` or ``20`` → 0.20; ``0.5%`` → 0.005. Negative or unreadable: ValueError."""
    raw = text.strip().rstrip("%").strip()
    value = float(raw) / 100
    if value < 0:
        raise ValueError(f"{text!r}: expected a percentage >= 0")
    return value


def _relative(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    return after / before - 1


def _endpoints(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    load = (run.get("loadgen_summary") or {}).get("load") or {}
    blocks = dict(load.get("endpoints") or {})
    if load.get("total"):
        blocks["all requests"] = load["total"]
    return blocks


def _p95(block: dict[str, Any]) -> float | None:
    value = (block.get("latency") or {}).get("p95")
    return float(value) if isinstance(value, int | float) and block.get("requests") else None


def _error_rate(block: dict[str, Any]) -> float | None:
    requests = block.get("requests")
    return (block.get("failures") or 0) / requests if requests else None


def compare(
    baseline: dict[str, Any], candidate: dict[str, Any], allow: Allowances | None = None
) -> Comparison:
    allow = allow or Allowances()
    result = Comparison(
        baseline=str(baseline.get("run_id") or "baseline"),
        candidate=str(candidate.get("run_id") or "candidate"),
        baseline_passed=bool(baseline.get("passed")),
        candidate_passed=bool(candidate.get("passed")),
    )
    if result.baseline_passed and not result.candidate_passed:
        reasons = "; ".join(candidate.get("failure_reasons") or []) or "see its report"
        result.regressions.append(f"the candidate run failed where the baseline passed: {reasons}")
    before = {r["nfr"]: r for r in baseline["results"]}
    for now in candidate["results"]:
        old = before.get(now["nfr"], {})
        unit = now.get("measured_unit") or now.get("unit") or ""
        old_status, new_status = old.get("status", "-"), now.get("status", "-")
        delta = None
        if isinstance(old.get("measured"), int | float) and isinstance(now.get("measured"), int | float):
            delta = now["measured"] - old["measured"]
        why = ""
        if old_status == "PASS" and new_status in ("FAIL", "NO DATA"):
            why = f"{now['nfr']} {old_status} → {new_status}: {now.get('reason', '')}"
            result.regressions.append(why)
        result.nfrs.append(
            Row(
                f"{now['nfr']} {now.get('title', '')}".strip(),
                f"{old_status} · {fmt_value(old.get('measured'), unit)}" if old else NO_DATA_TEXT,
                f"{new_status} · {fmt_value(now.get('measured'), unit)}",
                fmt_delta(delta, unit),
                why,
            )
        )
    old_blocks, new_blocks = _endpoints(baseline), _endpoints(candidate)
    for name in sorted(set(old_blocks) | set(new_blocks), key=lambda n: (n == "all requests", n)):
        old_block, new_block = old_blocks.get(name, {}), new_blocks.get(name, {})
        p95_old, p95_new = _p95(old_block), _p95(new_block)
        change = _relative(p95_old, p95_new)
        why = ""
        if change is not None and change > allow.max_p95_increase:
            why = (
                f"{name}: p95 {fmt_value(p95_old, 's')} → {fmt_value(p95_new, 's')} "
                f"({change * 100:+.1f} %, allowed +{allow.max_p95_increase * 100:g} %)"
            )
        err_old, err_new = _error_rate(old_block), _error_rate(new_block)
        if err_old is not None and err_new is not None and err_new - err_old > allow.max_error_rate_increase:
            why = "; ".join(
                filter(
                    None,
                    [
                        why,
                        f"{name}: error rate {fmt_value(err_old, 'ratio')} → {fmt_value(err_new, 'ratio')} "
                        f"(allowed +{allow.max_error_rate_increase * 100:g} pp)",
                    ],
                )
            )
        if why:
            result.regressions.append(why)
        result.endpoints.append(
            Row(
                name,
                f"p95 {fmt_value(p95_old, 's')} · errors {fmt_value(err_old, 'ratio')} · "
                f"{old_block.get('requests', 0)} req",
                f"p95 {fmt_value(p95_new, 's')} · errors {fmt_value(err_new, 'ratio')} · "
                f"{new_block.get('requests', 0)} req",
                "p95 " + (f"{change * 100:+.1f} %" if change is not None else NO_DATA_TEXT),
                why,
            )
        )
    old_figures, new_figures = baseline.get("figures") or {}, candidate.get("figures") or {}
    tp_old, tp_new = old_figures.get("throughput_per_minute"), new_figures.get("throughput_per_minute")
    drop = _relative(tp_old, tp_new)
    why = ""
    if drop is not None and -drop > allow.max_throughput_drop:
        why = (
            f"throughput {fmt_value(tp_old, 'tickets/min')} → {fmt_value(tp_new, 'tickets/min')} "
            f"({drop * 100:+.1f} %, allowed -{allow.max_throughput_drop * 100:g} %)"
        )
        result.regressions.append(why)
    result.figures.append(
        Row(
            "Throughput under load",
            fmt_value(tp_old, "tickets/min"),
            fmt_value(tp_new, "tickets/min"),
            f"{drop * 100:+.1f} %" if drop is not None else NO_DATA_TEXT,
            why,
        )
    )
    for key, label, unit in (
        ("success_ratio", "Requests that succeeded", "ratio"),
        ("ratio_within_2s", figure_by_key("ratio_within_2s").label, "ratio"),
        ("requests", "Requests sent", "requests"),
        ("tickets_completed", "Tickets completed", "tickets"),
        ("memory_growth_ratio", "Service memory growth", "ratio"),
    ):
        old_v, new_v = old_figures.get(key), new_figures.get(key)
        delta = new_v - old_v if isinstance(old_v, int | float) and isinstance(new_v, int | float) else None
        result.figures.append(
            Row(label, fmt_value(old_v, unit), fmt_value(new_v, unit), fmt_delta(delta, unit))
        )
    return result


def _table(title: str, rows: list[Row]) -> list[str]:
    out = ["", f"## {title}", "", "| | baseline | candidate | change | regression |", "|---|---|---|---|---|"]
    for row in rows:
        out.append(
            f"| {row.name} | {row.baseline} | {row.candidate} | {row.delta} | {('**' + row.regression + '**') if row.regression else ''} |"
        )
    return out


def markdown(comparison: Comparison) -> str:
    verdict = "REGRESSION" if comparison.regressions else "NO REGRESSION"
    out = [
        f"# {comparison.candidate} against {comparison.baseline}: {verdict}",
        "",
        f"- Baseline `{comparison.baseline}`: {'PASS' if comparison.baseline_passed else 'FAIL'}",
        f"- Candidate `{comparison.candidate}`: {'PASS' if comparison.candidate_passed else 'FAIL'}",
    ]
    out += [f"- **regression:** {reason}" for reason in comparison.regressions]
    out += _table("Per NFR (verdict · measured)", comparison.nfrs)
    out += _table("Per endpoint (exact latency from the load generator)", comparison.endpoints)
    out += _table("Run figures", comparison.figures)
    return "\n".join(out) + "\n"


def html_page(comparison: Comparison) -> str:
    from nfr.report_html import STYLE

    def table(title: str, rows: list[Row]) -> str:
        body = "".join(
            f"<tr class='{'regressed' if r.regression else 'same'}'><td>{html.escape(r.name)}</td>"
            f"<td>{html.escape(r.baseline)}</td><td>{html.escape(r.candidate)}</td>"
            f"<td class='num'>{html.escape(r.delta)}</td><td class='FAIL'>{html.escape(r.regression)}</td></tr>"
            for r in rows
        )
        return (
            f"<h2>{html.escape(title)}</h2><table><tr><th></th><th>Baseline</th><th>Candidate</th>"
            f"<th>Change</th><th>Regression</th></tr>{body}</table>"
        )

    status = "FAIL" if comparison.regressions else "PASS"
    word = "REGRESSION" if comparison.regressions else "NO REGRESSION"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in comparison.regressions)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Compare {html.escape(comparison.candidate)}</title>
<style>{STYLE} tr.regressed td {{ background: #fdecea; }}</style></head><body><main>
<h1>{html.escape(comparison.candidate)} against {html.escape(comparison.baseline)}
<span class="badge {status}">{word}</span></h1>
<ul class="reasons">{reasons}</ul>
{table("Per NFR (verdict · measured)", comparison.nfrs)}
{table("Per endpoint (exact latency from the load generator)", comparison.endpoints)}
{table("Run figures", comparison.figures)}
</main></body></html>
"""
