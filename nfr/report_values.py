"""How every report writes a value: its unit always, "no data" for a missing one, never a bare 0."""

from __future__ import annotations

from datetime import UTC, datetime

NO_DATA_TEXT = "no data"


def iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clock(ts: float, seconds: bool = True) -> str:
    """UTC wall-clock time of day: ``18:40:05`` (``18:40`` without seconds)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S" if seconds else "%H:%M")


def number(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def short_unit(unit: str) -> str:
    """``s (oldest BUSY heartbeat)`` → ``s``; ``ratio <= 2 s`` → ``ratio``."""
    return unit.split(" (")[0].split(" <")[0].strip()


def fmt_value(value: float | None, unit: str = "") -> str:
    """A value with its unit: bytes in MiB, ratios in %, growth ratios as +N % growth, seconds as s or
    ms; ``no data`` when there is none."""
    if value is None:
        return NO_DATA_TEXT
    unit = unit.strip()
    base = short_unit(unit)
    if base == "bytes":
        return f"{value / 1048576:.1f} MiB"
    if base == "growth ratio":
        return f"{(value - 1) * 100:+.1f} % growth"
    if "ratio" in base:
        return f"{value * 100:.2f} %"
    if base == "s":
        if value != 0 and abs(value) < 1:
            return f"{value * 1000:.3g} ms"
        return f"{number(value)} s"
    if not base:
        return number(value)
    if value == 1 and base.endswith("s") and "/" not in base:
        base = base[:-1]  # 1 violation, 1 request, 1 event
    return f"{number(value)} {base}"


def fmt_delta(value: float | None, unit: str = "") -> str:
    """A difference with its unit and sign: ``+12.0 %`` for ratios (points), ``-3 tickets/min``."""
    if value is None:
        return NO_DATA_TEXT
    base = short_unit(unit)
    if "ratio" in base:
        return f"{value * 100:+.2f} pp"
    text = fmt_value(abs(value), unit)
    return ("-" if value < 0 else "+") + text
