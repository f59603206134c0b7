"""The HTML report: one self-contained page, an inline SVG plot per NFR, nothing fetched.

Each plot draws the NFR's indicator over the run (load window shaded, settle period after it), its
threshold as a dashed red line and a marker where an alert first fired. No script, no external style
sheet or font, so the page opens the same from a CI artefact store as from disk.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from nfr.report_text import console_table, fmt_value, iso, offset_text, threshold_text
from nfr.verdict import FAIL, NO_DATA, NOT_JUDGED, PASS, NfrResult, Verdict

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 14, 34

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d2330; background: #fafbfc; }
h1 { margin-bottom: 4px; } .meta { color: #566; margin: 2px 0; }
table { border-collapse: collapse; margin: 12px 0; } td, th { border: 1px solid #ccd; padding: 4px 8px; }
th { background: #eef0f4; text-align: left; }
.PASS { color: #107a3a; font-weight: 600; } .FAIL { color: #b3261e; font-weight: 700; }
.NODATA { color: #a15c00; font-weight: 700; }
.plot { display: inline-block; margin: 10px 16px 10px 0; vertical-align: top; }
.plot h3 { margin: 4px 0; font-size: 15px; }
svg { background: #fff; border: 1px solid #dde; }
svg .series { fill: none; stroke: #2f6fdf; stroke-width: 1.8; }
svg .threshold { stroke: #d62728; stroke-dasharray: 6 4; stroke-width: 1.25; }
svg .alert { stroke: #b3261e; stroke-width: 1.5; }
svg .axis { stroke: #889; stroke-width: 1; fill: none; }
svg .load { fill: #e8f0ff; } svg .settle { fill: #f4f4f4; }
svg text { font-size: 11px; fill: #445; }
pre { background: #f0f2f5; padding: 8px; overflow-x: auto; }
"""


def _scale(values: Sequence[float], lo: float, hi: float, out_lo: float, out_hi: float) -> list[float]:
    span = hi - lo or 1.0
    return [out_lo + (v - lo) / span * (out_hi - out_lo) for v in values]


def _threshold_value(result: NfrResult) -> float | None:
    """The line to draw: the fixed threshold, or the relative limit over the first sample (RNF-07)."""
    if result.threshold is not None:
        return result.threshold
    if result.relative_factor is not None and result.series:
        return result.series[0][1] * result.relative_factor
    return None


def plot_svg(verdict: Verdict, result: NfrResult) -> str:
    """An SVG of ``result.series`` over [start, end + settle]; the data path has class ``series``."""
    x0, x1 = verdict.start, verdict.window_end
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    threshold = _threshold_value(result)
    values = [v for _, v in result.series]
    candidates = values + ([threshold] if threshold is not None else [])
    lo = min(candidates + [0.0]) if candidates else 0.0
    hi = max(candidates) if candidates else 1.0
    if hi - lo < 1e-9:
        hi = lo + (abs(lo) or 1.0)
    hi += (hi - lo) * 0.08

    def x_of(t: float) -> float:
        return LEFT + (t - x0) / ((x1 - x0) or 1.0) * plot_w

    def y_of(v: float) -> float:
        return TOP + plot_h - (v - lo) / (hi - lo) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" data-nfr="{result.nfr}" role="img" '
        f'aria-label="{html.escape(result.nfr + " " + result.title)} over the run">',
        f'<rect class="load" x="{LEFT}" y="{TOP}" width="{x_of(verdict.end) - LEFT:.1f}" height="{plot_h}"/>',
        f'<rect class="settle" x="{x_of(verdict.end):.1f}" y="{TOP}" '
        f'width="{LEFT + plot_w - x_of(verdict.end):.1f}" height="{plot_h}"/>',
        f'<path class="axis" d="M{LEFT},{TOP} V{TOP + plot_h} H{LEFT + plot_w}"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = lo + (hi - lo) * frac
        parts.append(
            f'<text x="{LEFT - 6}" y="{y_of(value) + 4:.1f}" text-anchor="end">'
            f"{html.escape(fmt_value(value, result.unit))}</text>"
        )
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 12}" text-anchor="middle">t+0</text>')
    if LEFT + plot_w - x_of(verdict.end) > 45:  # room for the load-end label before the last one
        parts.append(
            f'<text x="{x_of(verdict.end):.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
            f"{offset_text(verdict, verdict.end)}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 12}" text-anchor="end">{offset_text(verdict, x1)}</text>'
    )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 1}">load window blue, settle period grey, alert firing red</text>'
    )
    if threshold is not None:
        y = y_of(threshold)
        parts.append(f'<line class="threshold" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text x="{LEFT + plot_w - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#d62728">threshold '
            f"{html.escape(fmt_value(threshold, result.unit))}</text>"
        )
    if result.series:
        xs = _scale([t for t, _ in result.series], x0, x1 or 1, LEFT, LEFT + plot_w)
        ys = [y_of(v) for _, v in result.series]
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        if len(xs) == 1:
            d += f" L{xs[0] + 2:.1f},{ys[0]:.1f}"
        parts.append(f'<path class="series" d="{d}"/>')
    else:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            f'class="nodata">no data</text>'
        )
    for alert in result.alerts + result.expected_alerts:
        x = x_of(alert.first_fired)
        parts.append(f'<line class="alert" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        parts.append(f'<text x="{x + 3:.1f}" y="{TOP + 12}">{html.escape(alert.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _status_class(status: str) -> str:
    return {PASS: "PASS", FAIL: "FAIL", NO_DATA: "NODATA", NOT_JUDGED: "NODATA"}[status]


def _notes_html(notes: list[str]) -> str:
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>"


def _scenario_html(summary: Any) -> str:
    """The load generator's account (outcome, exact percentiles, failed checks), when there is one."""
    if not isinstance(summary, dict):
        return ""
    total = (summary.get("load") or {}).get("total") or {}
    latency = total.get("latency") or {}
    items = [
        f"<li>Scenario <code>{html.escape(str(summary.get('scenario', '-')))}</code>: outcome "
        f"<b>{html.escape(str(summary.get('outcome', '-')))}</b></li>"
    ]
    if total:
        items.append(
            f"<li>{total.get('requests', 0)} requests, {total.get('failures', 0)} failed, "
            f"{total.get('dropped', 0)} dropped; {html.escape(fmt_value(total.get('throughput_per_min')))} "
            "requests/min</li>"
        )
    if latency:
        parts = ", ".join(
            f"{k} {fmt_value(latency[k] * 1000)} ms" for k in ("p50", "p95", "p99", "max") if k in latency
        )
        items.append(f"<li>Latency (exact, HdrHistogram): {html.escape(parts)}</li>")
    checks = (
        (summary.get("thresholds") or []) + (summary.get("probes") or []) + (summary.get("actions") or [])
    )
    failed = [c for c in checks if not c.get("ok")]
    for check in failed:
        label = check.get("threshold") or f"{check.get('phase')}: {check.get('name')}"
        items.append(f'<li class="FAIL">check failed: {html.escape(str(label))}</li>')
    return "<h2>Scenario run (load generator)</h2><ul>" + "".join(items) + "</ul>"


def html_report(
    verdict: Verdict, title: str = "Ticketero NFR results", extra: dict[str, Any] | None = None
) -> str:
    rows = []
    for r in verdict.results:
        fired = f"{iso(r.first_fired)} ({offset_text(verdict, r.first_fired)})" if r.first_fired else "-"
        rows.append(
            f"<tr><td>{r.nfr}</td><td>{html.escape(r.title)}</td>"
            f"<td>{html.escape(threshold_text(r))}</td><td>{html.escape(fmt_value(r.measured, r.unit))}</td>"
            f'<td class="{_status_class(r.status)}">{r.label}</td><td>{html.escape(_detail(r))}</td>'
            f"<td>{html.escape(fired)}</td></tr>"
        )
    plots = []
    for r in verdict.results:
        plots.append(
            f'<div class="plot"><h3>{r.nfr} {html.escape(r.title)} — '
            f'<span class="{_status_class(r.status)}">{r.label}</span></h3>'
            f"{plot_svg(verdict, r)}<div class='meta'><code>{html.escape(r.indicator_expr)}</code></div></div>"
        )
    overall = "PASS" if verdict.passed else "FAIL"
    unjudged = (
        f' <small class="NODATA">({", ".join(verdict.not_judged)} not judged)</small>'
        if verdict.not_judged
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)} — <span class="{overall}">{overall}</span>{unjudged}</h1>
{_reasons_html(verdict)}
<p class="meta">Run <code>{html.escape(verdict.run_id or "-")}</code>, scenario
<code>{html.escape(verdict.scenario or "-")}</code>; {iso(verdict.start)} → {iso(verdict.end)}
+ {verdict.settle:.0f} s settle; Prometheus {html.escape(verdict.prometheus)}</p>
<table><tr><th>NFR</th><th>Title</th><th>Threshold</th><th>Measured</th><th>Verdict</th><th>Detail</th>
<th>First fired</th></tr>
{"".join(rows)}
</table>
{_notes_html(verdict.notes)}
{_scenario_html((extra or {}).get("loadgen_summary"))}
<h2>Indicators over the run</h2>
{"".join(plots)}
<h2>Console summary</h2>
<pre>{html.escape(console_table(verdict))}</pre>
</body></html>
"""


def _reasons_html(verdict: Verdict) -> str:
    """Why the run failed, under the headline; a failed rollback in bold red above everything else."""
    items = "".join(f"<li>{html.escape(reason)}</li>" for reason in verdict.failure_reasons)
    warning = ""
    if verdict.scenario_outcome is not None and verdict.scenario_outcome.rollback_failed:
        warning = '<p class="FAIL"><strong>A rollback failed: the system under test may be left broken.</strong></p>'
    return warning + (f'<ul class="reasons">{items}</ul>' if items else "")


def _detail(result: NfrResult) -> str:
    if result.exercise:
        return f"{result.reason}; {'exercised' if result.exercised else 'NOT exercised'}: {result.exercise}"
    return result.reason
