"""PromQL as this project reads it: durations, range selectors, offsets, metric names and ``or vector()``
fallbacks. The one reader shared by the rule compression (``nfr/rulescale.py``, which rewrites the spans it
finds here) and the verdict (``nfr/verdict.py``, which adds them up into the history an alert needs)."""

from __future__ import annotations

import re
from collections.abc import Callable

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
DURATION = r"(?:\d+(?:ms|s|m|h|d|w|y))+"
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
#: ``[5m]`` or a subquery ``[30m:1m]``: group 1 the range, group 2 the resolution (may be empty).
RANGE = re.compile(rf"\[\s*({DURATION})\s*(?::\s*({DURATION})?\s*)?\]")
#: ``offset 30m`` (group 1 a minus sign for a negative offset, group 2 the duration).
OFFSET = re.compile(rf"\boffset\s+(-?)({DURATION})", re.IGNORECASE)
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_FALLBACK = re.compile(r"\)\s*or\s+vector\s*\(")


class PromqlError(ValueError):
    """Text that is not what the PromQL reader expected (e.g. not a duration)."""


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m``, ``90s`` or ``500ms``."""
    text = text.strip()
    if not re.fullmatch(DURATION, text):
        raise PromqlError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest exact Prometheus duration for ``seconds`` (milliseconds resolution)."""
    millis = int(round(seconds * 1000))
    if millis % 1000 == 0:
        return f"{millis // 1000}s"
    return f"{millis}ms"


def ranges(expr: str) -> list[float]:
    """The range of every range selector and subquery in ``expr``, in seconds."""
    return [parse_duration(m.group(1)) for m in RANGE.finditer(expr)]


def offsets(expr: str) -> list[float]:
    """Every ``offset`` in ``expr``, in seconds (negative offsets look forward and count as 0)."""
    return [0.0 if m.group(1) else parse_duration(m.group(2)) for m in OFFSET.finditer(expr)]


def names(expr: str) -> set[str]:
    """Every identifier in ``expr``: metric and recording-rule names (and functions, keywords, labels)."""
    return set(NAME.findall(expr))


def without_fallback_operands(expr: str) -> str:
    """Drop every ``( ... ) or vector(...)`` left operand: when its history is missing the fallback answers,
    so an offset inside it does not stop the expression from returning (and its alert from firing)."""
    while match := _FALLBACK.search(expr):
        close, depth = match.start(), 0
        open_at = close
        for open_at in range(close, -1, -1):
            depth += {")": 1, "(": -1}.get(expr[open_at], 0)
            if depth == 0:
                break
        expr = expr[:open_at] + "vector(" + expr[match.end() :]
    return expr


def chained(
    expr: str,
    recorded: dict[str, str],
    measure: Callable[[str], float],
    prepare: Callable[[str], str] = str,
    depth: int = 0,
) -> float:
    """``measure`` of ``expr`` (after ``prepare``) plus the most that any recording rule it reads needs by the
    same measure, down the chain of recording rules (``recorded``: name → expression)."""
    text = prepare(expr)
    own = measure(text)
    if depth > 5:
        return own
    used = {name for name in names(text) if name in recorded}
    deeper = (chained(recorded[name], recorded, measure, prepare, depth + 1) for name in used)
    return own + max(deeper, default=0.0)


def lookback(expr: str, recorded: dict[str, str]) -> float:
    """History an expression needs before it can return anything, in seconds: its longest ``offset`` (a range
    selector works on partial data, an offset into time before the data began does not; nor does an offset
    guarded by ``or vector(...)``), plus what the recording rules it uses need themselves."""
    return chained(expr, recorded, lambda text: max(offsets(text), default=0.0), without_fallback_operands)


def window(expr: str, recorded: dict[str, str]) -> float:
    """How long a change in the raw series can take to move ``expr``: its longest range, plus the longest
    range of the recording rules it reads, down the chain (a rate over a recorded 1m rate sees a step
    after both windows)."""
    return chained(expr, recorded, lambda text: max(ranges(text), default=0.0))


def hops(expr: str, recorded: dict[str, str]) -> int:
    """How many recording rules stand between the raw series and ``expr`` (each adds one evaluation)."""
    return int(chained(expr, recorded, lambda text: 1.0) - 1)
