"""Inline SVG time-series plots for the HTML reports: clock-time axis, grid, units, shaded periods.

A plot is one SVG element sized by its viewBox (it scales to its column), with no script: the x axis is
UTC clock time with ticks on round minutes (or round seconds for short runs), the y axis has "nice"
1-2-5 ticks in the plotted unit, and the load window, settle period and each alert's pending and firing
periods are shaded behind the lines.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nfr.report_values import clock, fmt_value, short_unit

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 78, 18, 30, 46

#: Candidate x tick steps, seconds: round seconds for short (compressed) runs, round minutes otherwise.
TIME_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)


@dataclass
class Line:
    label: str
    points: Sequence[tuple[float, float]]
    css: str = "series"  # series, series2, series3, companion, threshold
    step: float = 0.0  # a gap wider than 1.5 steps breaks the line (a series that went missing)


@dataclass
class Band:
    """A shaded time span: the load window, the settle period, an alert's pending or firing period."""

    start: float
    end: float
    css: str  # load, settle, pending, firing
    title: str = ""


@dataclass
class Plot:
    key: str  # data-plot (and data-nfr for an NFR's plot)
    title: str
    unit: str
    x0: float
    x1: float
    lines: list[Line] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    threshold: float | None = None
    threshold_label: str = ""
    bad_above: bool = True  # which side of the threshold breaks the requirement
    include_zero: bool = False
    nfr: str = ""


def nice_step(span: float, target: int = 5) -> float:
    """A 1-2-5 step giving about ``target`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def time_ticks(x0: float, x1: float) -> tuple[list[float], bool]:
    """Ticks on round clock times between x0 and x1 (4 to 10 of them); True when labels need seconds."""
    span = x1 - x0
    step = next((s for s in TIME_STEPS if span / s <= 8), TIME_STEPS[-1])
    ticks: list[float] = []
    t = float(math.ceil(x0 / step) * step)
    while t <= x1 + 1e-6:
        ticks.append(t)
        t += step
    return ticks, step < 60


def y_domain(plot: Plot) -> tuple[float, float, list[float]]:
    values = [v for line in plot.lines for _, v in line.points if math.isfinite(v)]
    if plot.threshold is not None:
        values.append(plot.threshold)
    if plot.include_zero or not values:
        values.append(0.0)
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        # A flat line (all zeros on a zero threshold): give it room so line and threshold stay readable.
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = (lo - pad * 0.25, hi + pad) if lo == 0 else (lo - pad, hi + pad)
    scale = 1048576.0 if short_unit(plot.unit) == "bytes" else 1.0  # nice ticks in MiB, not in bytes
    step = nice_step((hi - lo) / scale) * scale
    lo_tick = math.floor(lo / step) * step
    hi_tick = math.ceil(hi / step) * step
    if hi_tick - hi < step * 0.15:
        hi_tick += step
    base = short_unit(plot.unit)
    if "ratio" in base and base != "growth ratio" and hi <= 1.0 < hi_tick:
        hi_tick = 1.0  # a share cannot pass 100 %
    if lo == 0 and lo_tick == 0 and plot.include_zero and plot.threshold == 0:
        lo_tick = -step * 0.25  # the zero line just above the x axis, not on it
    ticks = []
    t = math.ceil(lo_tick / step) * step
    while t <= hi_tick + step * 1e-6:
        ticks.append(round(t, 12))
        t += step
    return lo_tick, hi_tick, ticks


def _path(
    points: Sequence[tuple[float, float]],
    x_of: Callable[[float], float],
    y_of: Callable[[float], float],
    step: float,
) -> str:
    parts = []
    last_t: float | None = None
    for t, v in points:
        if not math.isfinite(v):
            continue
        cmd = "M" if last_t is None or (step and t - last_t > step * 1.5) else "L"
        parts.append(f"{cmd}{x_of(t):.1f},{y_of(v):.1f}")
        last_t = t
    if len(parts) == 1:
        parts.append("h2")
    return " ".join(parts)


def render(plot: Plot) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x0, x1 = plot.x0, plot.x1 if plot.x1 > plot.x0 else plot.x0 + 1
    lo, hi, y_ticks = y_domain(plot)

    def x_of(t: float) -> float:
        return LEFT + (min(max(t, x0), x1) - x0) / (x1 - x0) * plot_w

    def y_of(v: float) -> float:
        return TOP + plot_h - (v - lo) / (hi - lo) * plot_h

    data_nfr = f' data-nfr="{plot.nfr}"' if plot.nfr else ""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'data-plot="{html.escape(plot.key)}"{data_nfr} role="img" aria-label="{html.escape(plot.title)}">',
        f"<title>{html.escape(plot.title)}</title>",
    ]
    for band in plot.bands:
        a, b = x_of(band.start), x_of(band.end)
        h = 6.0 if band.css == "pending" else float(plot_h)
        out.append(
            f'<rect class="{band.css}" x="{a:.1f}" y="{TOP}" width="{max(b - a, 1.5):.1f}" height="{h}">'
            f"<title>{html.escape(band.title)}</title></rect>"
        )
    if plot.threshold is not None:
        y = y_of(plot.threshold)
        top, bottom = (float(TOP), y) if plot.bad_above else (y, float(TOP + plot_h))
        out.append(
            f'<rect class="bad" x="{LEFT}" y="{top:.1f}" width="{plot_w}" height="{max(0.0, bottom - top):.1f}"/>'
        )
    time_tick_list, with_seconds = time_ticks(x0, x1)
    for t in time_tick_list:
        x = x_of(t)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}"/>')
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{TOP + plot_h + 15}" text-anchor="middle">'
            f"{clock(t, with_seconds)}</text>"
        )
    for v in y_ticks:
        yv = y_of(v)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yv:.1f}" y2="{yv:.1f}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{yv + 4:.1f}" text-anchor="end">'
            f"{html.escape(_tick_text(v, plot.unit, y_ticks))}</text>"
        )
    out.append(f'<path class="axis" d="M{LEFT},{TOP} V{TOP + plot_h} H{LEFT + plot_w}"/>')
    out.append(
        f'<text class="axis-title" x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">time (UTC)</text>'
    )
    out.append(
        f'<text class="axis-title" transform="translate(14,{TOP + plot_h / 2}) rotate(-90)" '
        f'text-anchor="middle">{html.escape(_axis_unit(plot.unit))}</text>'
    )
    if plot.threshold is not None:
        yt = y_of(plot.threshold)
        out.append(f'<line class="threshold" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yt:.1f}" y2="{yt:.1f}"/>')
    drawn = 0
    for line in plot.lines:
        if not line.points:
            continue
        out.append(
            f'<path class="{line.css}" d="{_path(line.points, x_of, y_of, line.step)}">'
            f"<title>{html.escape(line.label)}</title></path>"
        )
        drawn += line.css.startswith("series")
    if not drawn:
        out.append(
            f'<text class="nodata" x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">'
            "no data</text>"
        )
    out.append(_legend(plot))
    out.append("</svg>")
    return "".join(out)


def _legend(plot: Plot) -> str:
    items = [(line.css, line.label) for line in plot.lines if line.points]
    if plot.threshold is not None:
        items.append(("threshold", plot.threshold_label or "threshold"))
    css_of_band = {b.css for b in plot.bands}
    if "pending" in css_of_band:
        items.append(("pending", "alert pending"))
    if "firing" in css_of_band:
        items.append(("firing", "alert firing"))
    x = LEFT
    out = []
    for css, label in items:
        shape = (
            f'<rect class="{css}" x="{x}" y="8" width="14" height="10"/>'
            if css in ("pending", "firing")
            else f'<line class="{css}" x1="{x}" x2="{x + 14}" y1="13" y2="13"/>'
        )
        out.append(shape + f'<text class="legend" x="{x + 18}" y="17">{html.escape(label)}</text>')
        x += 26 + int(len(label) * 6.2)
    return "".join(out)


def _axis_unit(unit: str) -> str:
    base = short_unit(unit)
    if "ratio" in base and base != "growth ratio":
        return "%"
    return {"bytes": "MiB", "": "value"}.get(base, base)


def _tick_text(value: float, unit: str, ticks: Sequence[float]) -> str:
    base = short_unit(unit)
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if base == "bytes":
        return f"{value / 1048576:.{_decimals(step / 1048576)}f}"
    if "ratio" in base and base != "growth ratio":
        return f"{value * 100:.{_decimals(step * 100)}f}"
    if base == "s":
        return fmt_value(value, "s")
    return f"{value:.{_decimals(step)}f}"


def _decimals(step: float) -> int:
    if step <= 0 or step >= 1:
        return 0
    return min(6, max(0, -math.floor(math.log10(step) + 1e-9)))
