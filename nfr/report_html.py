"""The HTML report: one self-contained page, an inline SVG plot per NFR, nothing fetched.

Each plot draws the NFR's indicator over the run (load window shaded, settle period after it), its
threshold as a dashed red line and a marker where an alert first fired. No script, no external style
sheet or font, so the page opens the same from a CI artefact store as from disk.
"""

from __future__ import annotations

import html
from typing import Any

from nfr.catalogue import figure_by_key
from nfr.report_svg import Band, Line, Plot, render
from nfr.report_text import (
    console_table,
    exact_latency,
    figure_rows,
    measured_text,
    offset_text,
    threshold_text,
)
from nfr.report_values import NO_DATA_TEXT, clock, fmt_value, iso, short_unit
from nfr.verdict import FAIL, NO_DATA, NOT_JUDGED, PASS, NfrResult, Verdict

STYLE = """
:root { --fail: #b3261e; --pass: #107a3a; --warn: #a15c00; --ink: #1d2330; --muted: #5b6577; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--ink);
       background: #f5f6f8; }
main { max-width: 1560px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { margin: 0 0 6px; font-size: 26px; } h2 { margin: 28px 0 10px; font-size: 19px; }
.meta { color: var(--muted); margin: 2px 0; font-size: 14px; }
.badge { display: inline-block; padding: 2px 12px; border-radius: 14px; color: #fff; font-size: 20px; }
.badge.PASS { background: var(--pass); } .badge.FAIL { background: var(--fail); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 10px 14px; }
.card .v { font-size: 22px; font-weight: 650; } .card .k { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0; background: #fff; font-size: 14px; width: 100%; }
td, th { border: 1px solid #dde1e8; padding: 5px 9px; vertical-align: top; text-align: left; }
th { background: #eef0f4; } td.num { text-align: right; white-space: nowrap; }
.PASS { color: var(--pass); font-weight: 600; } .FAIL { color: var(--fail); font-weight: 700; }
.NODATA { color: var(--warn); font-weight: 700; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr)); gap: 16px; }
.plot { background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 10px 12px; min-width: 0; }
.plot h3 { margin: 2px 0 6px; font-size: 15px; } .plot .meta code { font-size: 11px; word-break: break-all; }
svg { display: block; }
svg .series { fill: none; stroke: #2f6fdf; stroke-width: 2; }
svg .series2 { fill: none; stroke: #e07b00; stroke-width: 1.8; }
svg .series3 { fill: none; stroke: #8e44ad; stroke-width: 1.8; }
svg .companion { fill: none; stroke: #6b7280; stroke-width: 1.5; stroke-dasharray: 3 3; }
svg .threshold { fill: none; stroke: #d62728; stroke-dasharray: 7 4; stroke-width: 1.5; }
svg .bad { fill: #d62728; opacity: 0.04; }
svg .grid { stroke: #e6e9ef; stroke-width: 1; } svg .axis { stroke: #8a93a3; stroke-width: 1; fill: none; }
svg .load { fill: #eaf1ff; } svg .settle { fill: #f1f2f4; }
svg .pending { fill: #f4b400; opacity: 0.8; } svg .firing { fill: #d62728; opacity: 0.16; }
svg text { font-size: 11.5px; fill: #4a5363; } svg .axis-title { font-size: 11px; fill: #6b7280; }
svg .legend { font-size: 11px; } svg .nodata { font-size: 15px; fill: var(--warn); font-weight: 600; }
.badge.PASS, .badge.FAIL { color: #fff; font-weight: 650; }
pre { background: #eef0f4; padding: 10px; overflow-x: auto; font-size: 12px; }
ul.reasons li { color: var(--fail); }
"""


def _bands(verdict: Verdict, periods: list[dict[str, Any]]) -> list[Band]:
    bands = [
        Band(verdict.start, verdict.end, "load", "load window"),
        Band(verdict.end, verdict.window_end, "settle", "settle period"),
    ]
    for p in periods:
        end = p["end"] + verdict.step  # a period of one evaluation is a step wide
        what = f"{p['alert']}{' (' + p['check'] + ')' if p.get('check') else ''} {p['state']}"
        bands.append(Band(p["start"], end, p["state"], f"{what} {clock(p['start'])}-{clock(end)} UTC"))
    return bands


def nfr_plot(verdict: Verdict, result: NfrResult) -> Plot:
    """The NFR's indicator with its threshold (or, for a relative one, its value earlier x factor), the
    offered load beside RNF-01's throughput, and its alerts' pending and firing periods."""
    step = verdict.step
    lines = [Line(f"{result.nfr} indicator ({short_unit(result.unit)})", result.series, "series", step)]
    threshold = result.threshold
    label = f"threshold {fmt_value(threshold, result.unit)}" if threshold is not None else ""
    if "offered" in result.companions:
        lines.append(Line("offered load", result.companions["offered"], "companion", step))
    if "limit" in result.companions:
        back = ""
        earlier = result.companions.get("earlier") or []
        if earlier and result.series:
            back = ""
        lines.append(
            Line(
                f"limit: value earlier x {result.relative_factor:g}{back}",
                result.companions["limit"],
                "threshold",
                step,
            )
        )
        lines.append(Line("value earlier", earlier, "companion", step))
    return Plot(
        key=result.nfr,
        nfr=result.nfr,
        title=f"{result.nfr} {result.title} over the run",
        unit=result.unit,
        x0=verdict.start,
        x1=verdict.window_end,
        lines=lines,
        bands=_bands(verdict, result.periods),
        threshold=threshold,
        threshold_label=label,
        bad_above=not result.higher_is_better,
        include_zero=not result.higher_is_better or short_unit(result.unit) == "tickets/min",
    )


def plot_svg(verdict: Verdict, result: NfrResult) -> str:
    """An SVG of ``result.series`` over [start, end + settle]; the data path has class ``series``."""
    return render(nfr_plot(verdict, result))


def traffic_plots(verdict: Verdict) -> list[Plot]:
    """Latency percentiles, request and error rates over the run (the load generator's series)."""
    t = verdict.traffic
    step = verdict.step
    bands = _bands(verdict, [])
    latency_bound = next(
        (r for r in verdict.results if short_unit(r.unit) == "ratio" and "s" in r.unit), None
    )
    bound = None
    if latency_bound is not None and "<=" in latency_bound.unit:
        try:
            bound = float(latency_bound.unit.split("<=")[1].split()[0])
        except (IndexError, ValueError):
            bound = None
    return [
        Plot(
            key="latency", title="API latency p50 / p95 / p99 (estimates from histogram buckets)", unit="s",
            x0=verdict.start, x1=verdict.window_end,
            lines=[
                Line("p50", t.get("latency_p50", []), "series", step),
                Line("p95", t.get("latency_p95", []), "series2", step),
                Line("p99", t.get("latency_p99", []), "series3", step),
            ],
            bands=bands, threshold=bound, threshold_label=f"{fmt_value(bound, 's')} bound" if bound else "",
            include_zero=True,
        ),
        Plot(
            key="requests", title="Requests and errors per second (load generator)", unit="requests/s",
            x0=verdict.start, x1=verdict.window_end,
            lines=[
                Line("requests/s", t.get("request_rate", []), "series", step),
                Line("errors/s", t.get("error_rate", []), "series2", step),
            ],
            bands=bands, include_zero=True,
        ),
    ]  # fmt: skip


def _status_class(status: str) -> str:
    return {PASS: "PASS", FAIL: "FAIL", NO_DATA: "NODATA", NOT_JUDGED: "NODATA"}[status]


def _notes_html(notes: list[str]) -> str:
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>"


def _scenario_html(summary: Any) -> str:
    """The load generator's account (outcome, exact percentiles per endpoint, failed checks)."""
    if not isinstance(summary, dict):
        return ""
    load = summary.get("load") or {}
    total = load.get("total") or {}
    items = [
        f"<li>Scenario <code>{html.escape(str(summary.get('scenario', '-')))}</code>: outcome "
        f"<b>{html.escape(str(summary.get('outcome', '-')))}</b></li>"
    ]
    if total:
        items.append(
            f"<li>{total.get('requests', 0)} requests, {total.get('failures', 0)} failed, "
            f"{total.get('dropped', 0)} dropped; "
            f"{html.escape(fmt_value(total.get('throughput_per_min'), 'requests/min'))}</li>"
        )
    checks = (
        (summary.get("thresholds") or []) + (summary.get("probes") or []) + (summary.get("actions") or [])
    )
    for check in [c for c in checks if not c.get("ok")]:
        label = check.get("threshold") or f"{check.get('phase')}: {check.get('name')}"
        items.append(f'<li class="FAIL">check failed: {html.escape(str(label))}</li>')
    rows = []
    for name, block in [*(load.get("endpoints") or {}).items(), ("all", total)]:
        if not block:
            continue
        lat = block.get("latency") or {}
        cells = "".join(
            f'<td class="num">{html.escape(fmt_value(lat.get(k), "s") if block.get("requests") else NO_DATA_TEXT)}</td>'
            for k in ("p50", "p95", "p99", "max")
        )
        rows.append(
            f"<tr><td>{html.escape(str(name))}</td><td class='num'>{block.get('requests', 0)}</td>"
            f"<td class='num'>{block.get('failures', 0)}</td>{cells}</tr>"
        )
    table = (
        "<table><tr><th>Endpoint</th><th>Requests</th><th>Failed</th><th>p50</th><th>p95</th><th>p99</th>"
        "<th>max</th></tr>" + "".join(rows) + "</table>"
        if rows
        else ""
    )
    return (
        "<h2>Scenario run (load generator, exact HdrHistogram latency)</h2><ul>"
        + "".join(items)
        + "</ul>"
        + table
    )


def _cards(verdict: Verdict, summary: Any) -> str:
    exact = exact_latency(summary)
    figures = verdict.figures
    cards = [
        ("Throughput under load", fmt_value(figures.get("throughput_per_minute"), "tickets/min")),
        (
            "p95 latency (exact)" if exact else "p95 latency (bucket estimate)",
            fmt_value(exact.get("p95") if exact else figures.get("latency_p95_seconds"), "s"),
        ),
        (
            figure_by_key("ratio_within_2s").label if "ratio_within_2s" in figures else "",
            fmt_value(figures.get("ratio_within_2s"), "ratio"),
        ),
        ("Requests that succeeded", fmt_value(figures.get("success_ratio"), "ratio")),
        ("Requests sent", fmt_value(figures.get("requests"), "requests")),
        ("Alerts fired", str(len(_fired(verdict)))),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
            for k, v in cards
            if k
        )
        + "</div>"
    )


def _fired(verdict: Verdict) -> list[Any]:
    alerts = [a for r in verdict.results for a in r.alerts + r.expected_alerts] + verdict.meta_alerts
    return sorted(alerts, key=lambda a: a.first_fired)


def _alerts_html(verdict: Verdict) -> str:
    fired = _fired(verdict)
    if not fired:
        return "<h2>Alerts fired in the window</h2><p>None.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(a.name)}</td><td>{html.escape(a.check or '-')}</td><td>{html.escape(a.nfr)}</td>"
        f"<td>{clock(a.first_fired)} ({offset_text(verdict, a.first_fired)})</td><td>{clock(a.last_firing)}</td>"
        f"<td>{'yes' if a.resolved else 'no'}</td>"
        f'<td class="num">{html.escape(fmt_value(a.value_at_first_fire, a.value_unit))}</td>'
        f'<td class="num">{html.escape(fmt_value(a.worst_value, a.value_unit))}</td></tr>'
        for a in fired
    )
    return (
        "<h2>Alerts fired in the window</h2><table><tr><th>Alert</th><th>Check / source</th><th>NFR</th>"
        "<th>First fired (UTC)</th><th>Last firing</th><th>Resolved</th><th>Value when first fired</th>"
        f"<th>Worst value</th></tr>{rows}</table>"
    )


def html_report(
    verdict: Verdict, title: str = "Ticketero NFR results", extra: dict[str, Any] | None = None
) -> str:
    summary = (extra or {}).get("loadgen_summary")
    rows = []
    for r in verdict.results:
        fired = f"{clock(r.first_fired)} ({offset_text(verdict, r.first_fired)})" if r.first_fired else "-"
        rows.append(
            f"<tr><td>{r.nfr}</td><td>{html.escape(r.title)}</td>"
            f"<td>{html.escape(threshold_text(r))}</td><td class='num'>{html.escape(measured_text(r))}</td>"
            f'<td class="{_status_class(r.status)}">{r.label}</td><td>{html.escape(_detail(r))}</td>'
            f"<td>{html.escape(fired)}</td></tr>"
        )
    plots = []
    for r in verdict.results:
        plots.append(
            f'<div class="plot"><h3>{r.nfr} {html.escape(r.title)} — '
            f'<span class="{_status_class(r.status)}">{r.label}</span> · measured {html.escape(measured_text(r))}'
            f"</h3>{plot_svg(verdict, r)}<div class='meta'><code>{html.escape(r.indicator_expr)}</code></div></div>"
        )
    for plot in traffic_plots(verdict):
        plots.append(f'<div class="plot"><h3>{html.escape(plot.title)}</h3>{render(plot)}</div>')
    metrics = "".join(
        f"<tr><td>{html.escape(label)}</td><td class='num'>{html.escape(value)}</td><td>{html.escape(limit)}</td></tr>"
        for label, value, limit in figure_rows(verdict, summary)
    )
    how = "".join(
        f"<li>{r.nfr}: {html.escape(r.measured_how or 'no run-level figure')}</li>" for r in verdict.results
    )
    overall = "PASS" if verdict.passed else "FAIL"
    unjudged = (
        f' <small class="NODATA">({", ".join(verdict.not_judged)} not judged)</small>'
        if verdict.not_judged
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body><main>
<h1>{html.escape(title)} <span class="badge {overall}">{overall}</span>{unjudged}</h1>
{_reasons_html(verdict)}
<p class="meta">Run <code>{html.escape(verdict.run_id or "-")}</code> · scenario
<code>{html.escape(verdict.scenario or "-")}</code> · load {iso(verdict.start)} → {clock(verdict.end)} UTC
({verdict.end - verdict.start:.0f} s) + {verdict.settle:.0f} s settle · Prometheus {html.escape(verdict.prometheus)}</p>
{_cards(verdict, summary)}
<h2>Verdict per NFR</h2>
<table><tr><th>NFR</th><th>Title</th><th>Threshold</th><th>Measured</th><th>Verdict</th><th>Detail</th>
<th>First fired (UTC)</th></tr>
{"".join(rows)}
</table>
{_alerts_html(verdict)}
<h2>Over the run</h2>
<p class="meta">Blue background: load window; grey: settle period; red: an alert firing; amber strip: pending.
Red dashed line: the threshold (the shaded side breaks it).</p>
<div class="plots">{"".join(plots)}</div>
{_notes_html(verdict.notes)}
{_scenario_html(summary)}
<h2>Metrics captured</h2>
<table><tr><th>Metric</th><th>Value</th><th>Threshold</th></tr>{metrics}</table>
<h2>How each measured figure was computed</h2><ul>{how}</ul>
<h2>Console summary</h2>
<pre>{html.escape(console_table(verdict))}</pre>
</main></body></html>
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
