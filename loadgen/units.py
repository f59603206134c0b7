"""Parsing of the human-friendly values scenario files use: durations ("2m", "1m30s", "500ms": the settings
core's one syntax, re-exported here) and rates ("50/min")."""

from __future__ import annotations

import re

from ticketero_settings import DURATION_HELP, parse_duration, parse_quantity

__all__ = ["DURATION_HELP", "RATE_HELP", "format_seconds", "parse_duration", "parse_rate"]
RATE_HELP = "a rate such as 50/min, 10/s or a number per second"

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(ms|s|sec|m|min|h|hour))?\s*$")
_RATE_PERIODS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def _rate_text(value: str) -> float | None:
    match = _RATE.match(value)
    return float(match.group(1)) / _RATE_PERIODS[match.group(2)] if match else None


def parse_rate(value: object) -> float:
    """Requests per second from a number (per second) or a string such as "50/min", "10/s", "3000"."""
    return parse_quantity(value, RATE_HELP, "a non-negative rate", _rate_text)


def format_seconds(seconds: float) -> str:
    """Compact rendering for summaries: 0.0123 → "12.3ms", 2.5 → "2.500s"."""
    if seconds < 1.0:
        return f"{seconds * 1000:.1f}ms"
    return f"{seconds:.3f}s"
