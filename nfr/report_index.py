"""``results/index.html``: every run of a results directory with its verdict and the trend of its key
figures (throughput, exact p95, success ratio, share of requests within the latency bound), oldest to newest.

Written by the reports writer after each run and by ``python -m nfr index [DIR]``. Reads only each run's
``results.json``; a directory without one (or with a broken one) is listed as unreadable, never dropped.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nfr.catalogue import figure_by_key
from nfr.report_values import NO_DATA_TEXT, fmt_value, iso

INDEX_FILE = "index.html"

#: (key, label, unit, higher is better) of the trend columns.
TREND = (
    ("throughput", "Throughput under load", "tickets/min", True),
    ("p95", "p95 latency (exact)", "s", False),
    ("success", "Requests that succeeded", "ratio", True),
    ("within", figure_by_key("ratio_within_2s").label, "ratio", True),
)


@dataclass
class RunRow:
    run_id: str
    path: str
    start: float | None
    scenario: str
    passed: bool | None  # None: unreadable
    reasons: list[str]
    figures: dict[str, float | None]
    has_report: bool


def _figures(data: dict[str, Any]) -> dict[str, float | None]:
    figures = data.get("figures") or {}
    total = ((data.get("loadgen_summary") or {}).get("load") or {}).get("total") or {}
    p95 = (total.get("latency") or {}).get("p95") if total.get("requests") else None
    return {
        "throughput": figures.get("throughput_per_minute"),
        "p95": p95 if p95 is not None else figures.get("latency_p95_seconds"),
        "success": figures.get("success_ratio"),
        "within": figures.get("ratio_within_2s"),
    }


def scan(root: Path) -> list[RunRow]:
    rows = []
    for results in sorted(root.glob("*/results.json")):
        run_dir = results.parent
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
            rows.append(
                RunRow(
                    run_id=str(data.get("run_id") or run_dir.name),
                    path=run_dir.name,
                    start=data.get("start"),
                    scenario=str(data.get("scenario") or "-"),
                    passed=bool(data.get("passed")),
                    reasons=list(data.get("failure_reasons") or []),
                    figures=_figures(data),
                    has_report=(run_dir / "report.html").is_file(),
                )
            )
        except (OSError, ValueError, AttributeError) as err:
            rows.append(RunRow(run_dir.name, run_dir.name, None, "-", None, [str(err)], {}, False))
    rows.sort(key=lambda r: (r.start is None, r.start or 0.0, r.run_id))
    return rows


def _sparkline(values: list[float | None], unit: str, width: int = 360, height: int = 90) -> str:
    points = [(i, v) for i, v in enumerate(values) if isinstance(v, int | float)]
    if not points:
        return f'<svg viewBox="0 0 {width} {height}" width="100%" data-trend="empty"><text x="8" y="50">no data</text></svg>'
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    if hi - lo < 1e-12:
        lo, hi = lo - (abs(lo) * 0.05 or 1), hi + (abs(hi) * 0.05 or 1)
        if unit == "ratio":
            hi = min(hi, 1.0)  # a share cannot pass 100 %
    n = max(1, len(values) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 104 + i / n * (width - 120), 12 + (hi - v) / (hi - lo) * (height - 34)

    path = " ".join(
        f"{'M' if k == 0 else 'L'}{x:.1f},{y:.1f}" for k, (x, y) in enumerate(xy(i, v) for i, v in points)
    )
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>run {i + 1}: {html.escape(fmt_value(v, unit))}</title></circle>'
        for i, v in points
        for x, y in [xy(i, v)]
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" data-trend="{len(points)}">'
        f'<path class="grid" d="M104,{height - 22} H{width - 16}"/>'
        f'<text x="98" y="16" text-anchor="end">{html.escape(fmt_value(hi, unit))}</text>'
        f'<text x="98" y="{height - 22}" text-anchor="end">{html.escape(fmt_value(lo, unit))}</text>'
        f'<text x="104" y="{height - 6}">run 1</text>'
        f'<text x="{width - 16}" y="{height - 6}" text-anchor="end">run {len(values)}</text>'
        f'<path class="series" d="{path}"/><g class="dots">{dots}</g></svg>'
    )


def index_html(rows: list[RunRow], title: str = "Ticketero NFR runs") -> str:
    from nfr.report_html import STYLE

    body = []
    for number, row in enumerate(rows, 1):
        status = {True: "PASS", False: "FAIL", None: "unreadable"}[row.passed]
        css = {True: "PASS", False: "FAIL", None: "NODATA"}[row.passed]
        link = (
            f'<a href="{html.escape(row.path)}/report.html">{html.escape(row.run_id)}</a>'
            if row.has_report
            else html.escape(row.run_id)
        )
        cells = "".join(
            f"<td class='num'>{html.escape(fmt_value(row.figures.get(key), unit) if row.figures else NO_DATA_TEXT)}</td>"
            for key, _label, unit, _better in TREND
        )
        why = html.escape("; ".join(row.reasons))
        body.append(
            f"<tr><td class='num'>{number}</td><td>{link}</td><td>{iso(row.start)}</td>"
            f"<td>{html.escape(row.scenario)}</td><td class='{css}'>{status}</td>{cells}<td>{why}</td></tr>"
        )
    head = "".join(f"<th>{html.escape(label)}</th>" for _key, label, _unit, _better in TREND)
    trends = "".join(
        f'<div class="plot"><h3>{html.escape(label)} ({"higher" if better else "lower"} is better)</h3>'
        f"{_sparkline([r.figures.get(key) for r in rows], unit)}</div>"
        for key, label, unit, better in TREND
    )
    passed = sum(r.passed is True for r in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE} svg circle {{ fill: #2f6fdf; }} .plots {{ grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }}</style>
</head><body><main>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(rows)} run(s), {passed} passed; oldest first. Each run links to its report.</p>
<h2>Trend of the key figures</h2>
<div class="plots">{trends}</div>
<h2>Runs</h2>
<table><tr><th>#</th><th>Run</th><th>Start (UTC)</th><th>Scenario</th><th>Verdict</th>{head}<th>Why it failed</th></tr>
{"".join(body)}</table>
</main></body></html>
"""


def write_index(root: str | Path) -> Path:
    """Write (or refresh) ``root/index.html`` over every run directory in ``root``."""
    target = Path(root)
    path = target / INDEX_FILE
    path.write_text(index_html(scan(target)), encoding="utf-8")
    return path
