"""Time compression of Prometheus rule files for short proof runs.

The shipped rules keep the NFR plan's time spans (a 30 minute memory window, ``for: 2m`` on an alert...).
A proof run of a few minutes cannot wait for them, so this module writes a *copy* of each rule file in
which every time span is divided by a factor:

* the ``for:`` duration of each alerting rule,
* every range selector ``x[5m]``, and both parts of a subquery ``x[30m:1m]``,
* every ``offset 30m`` modifier.

Each scaled span is floored at ``floor`` seconds (a few scrape intervals, so ``rate()`` still sees enough
samples) and a span already at or below the floor is left as it was. Nothing else changes: thresholds,
comparison values, label matchers, numeric function arguments (``predict_linear(x[1h], 3600)``'s horizon),
names (a recording rule called ``...:rate1m`` keeps its name though it now averages over a shorter
window), labels and annotations are copied unchanged. Rules that compare a per-second rate keep their
meaning; a rule comparing an absolute ``increase()`` with a fixed number would not, which is why the
shipped rules use ``rate()``.

The shipped files are never modified; compressed copies are written wherever the caller says (the run's
temporary directory).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from nfr.promql import OFFSET, RANGE, PromqlError, format_duration, parse_duration

_RANGE = RANGE
_OFFSET = OFFSET
RuleScaleError = PromqlError  # a rule file the transform cannot read raises the reader's error


def scale_seconds(seconds: float, factor: float, floor: float) -> float:
    """``seconds / factor`` but never below ``floor``; spans already at or under the floor stay."""
    if seconds <= floor:
        return seconds
    return max(seconds / factor, floor)


def _scale_text(duration: str, factor: float, floor: float) -> str:
    return format_duration(scale_seconds(parse_duration(duration), factor, floor))


def _split_strings(expr: str) -> list[tuple[bool, str]]:
    """Split a PromQL expression into (is_string_literal, text) chunks so literals are never rewritten."""
    chunks: list[tuple[bool, str]] = []
    i, start = 0, 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            if start < i:
                chunks.append((False, expr[start:i]))
            j = i + 1
            while j < len(expr) and expr[j] != char:
                j += 2 if expr[j] == "\\" and char != "`" else 1
            chunks.append((True, expr[i : j + 1]))
            i = start = j + 1
        elif char == "#":  # a comment runs to the end of the line
            end = expr.find("\n", i)
            end = len(expr) if end < 0 else end
            if start < i:
                chunks.append((False, expr[start:i]))
            chunks.append((True, expr[i:end]))
            i = start = end
        else:
            i += 1
    if start < len(expr):
        chunks.append((False, expr[start:]))
    return chunks


def scale_expr(expr: str, factor: float, floor: float) -> str:
    """Rewrite range selectors, subqueries and offsets of a PromQL expression (see module docstring)."""

    def rewrite_range(match: re.Match[str]) -> str:
        window = _scale_text(match.group(1), factor, floor)
        if ":" not in match.group(0):
            return f"[{window}]"
        resolution = match.group(2)
        if resolution is None:
            return f"[{window}:]"
        return f"[{window}:{_scale_text(resolution, factor, floor)}]"

    def rewrite_offset(match: re.Match[str]) -> str:
        return f"offset {match.group(1)}{_scale_text(match.group(2), factor, floor)}"

    out = []
    for is_literal, text in _split_strings(expr):
        if not is_literal:
            text = _OFFSET.sub(rewrite_offset, _RANGE.sub(rewrite_range, text))
        out.append(text)
    return "".join(out)


def scale_rules(document: dict[str, Any], factor: float, floor: float) -> dict[str, Any]:
    """A compressed copy of one parsed rule file (``{"groups": [...]}``)."""
    if factor < 1:
        raise RuleScaleError(f"compression factor must be >= 1, got {factor}")
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        raise RuleScaleError("expected a mapping with a 'groups' list")
    out: dict[str, Any] = {"groups": []}
    for group in document["groups"]:
        new_group = dict(group)
        if "interval" in group:
            new_group["interval"] = _scale_text(str(group["interval"]), factor, floor)
        new_rules = []
        for rule in group.get("rules") or []:
            new_rule = dict(rule)
            new_rule["expr"] = scale_expr(str(rule["expr"]), factor, floor)
            if "for" in rule:
                new_rule["for"] = _scale_text(str(rule["for"]), factor, floor)
            new_rules.append(new_rule)
        new_group["rules"] = new_rules
        out["groups"].append(new_group)
    return out


def compress_rule_files(
    sources: Iterable[str | Path], out_dir: str | Path, factor: float, floor: float
) -> list[Path]:
    """Write a compressed copy of every rule file into ``out_dir``; return the new paths.

    With ``factor == 1`` the copies are identical in meaning to the sources (useful to run the shipped
    timings through the same code path).
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for index, source in enumerate(sources):
        path = Path(source)
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise RuleScaleError(f"{path}: cannot read rule file: {err}") from err
        try:
            scaled = scale_rules(document, factor, floor)
        except RuleScaleError as err:
            raise RuleScaleError(f"{path}: {err}") from err
        header = (
            f"# Compressed copy of {path.name}: every for:, range selector and offset divided by "
            f"{factor:g} (floor {format_duration(floor)}). Generated; do not edit.\n"
        )
        dest = target / f"{index:02d}-{path.name}"
        dest.write_text(header + yaml.safe_dump(scaled, sort_keys=False, width=10_000))
        written.append(dest)
    return written


def default_floor(scrape_interval: float) -> float:
    """The floor used when none is given: four scrape intervals, so rate() always has samples."""
    return float(math.ceil(4 * scrape_interval))
