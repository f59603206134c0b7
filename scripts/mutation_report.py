#!/usr/bin/env python3
"""The result of `make mutation`: per module killed/reachable and kill rate, then every mutant left alive.

Reads mutmut's results (``mutants/<module>.meta``) for the modules listed under ``[tool.mutmut] only_mutate``
in pyproject.toml (or the ones given with --module). A mutant is *reachable* when at least one of the
selected unit tests runs its function; it is *killed* when a test failed, timed out or the mutant could not
even load. A survivor documented as equivalent in docs/testing.md (its mutant name in backticks) is marked
so; any other survivor is work to do. Exit 1 when a module is under --min-kill-rate or was not run.

    scripts/mutation_report.py [--module loadgen/units.py ...] [--min-kill-rate 90] [--no-diff]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "testing.md"

# mutmut 3's exit codes per mutant (mutmut/stats.py: status_by_exit_code)
KILLED = {1, 3, 36, 37, -24, 24, 152, 255}  # test failure, pytest error, timeouts, type check
NOT_REACHED = {5, 33}  # no selected test runs the mutated function
SURVIVED = {0}
NOT_RUN = {None, 2, 34}  # not checked, interrupted, skipped


def configured_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(config["tool"]["mutmut"]["only_mutate"])


def documented_equivalents() -> set[str]:
    if not DOCS.exists():
        return set()
    return set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", DOCS.read_text()))


def diff_of(name: str) -> list[str]:
    """The changed lines of one mutant, as `mutmut show` prints them."""
    try:
        from mutmut.__main__ import find_mutant, get_diff_for_mutant

        diff = get_diff_for_mutant(name, path=find_mutant(name).path)
    except Exception as error:  # the report still lists the name when mutmut cannot rebuild the diff
        return [f"(no diff: {type(error).__name__}: {error})"]
    return [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--module", action="append", help="a module path such as loadgen/units.py (repeatable)"
    )
    parser.add_argument("--min-kill-rate", type=float, default=90.0, help="percent (default 90)")
    parser.add_argument("--no-diff", action="store_true", help="list survivors by name only")
    args = parser.parse_args(argv)

    modules = args.module or configured_modules()
    equivalents = documented_equivalents()
    rows, survivors, failed = [], [], False
    for module in modules:
        meta = REPO / "mutants" / f"{module}.meta"
        if not meta.exists():
            rows.append((module, "-", "not run", "", ""))
            failed = True
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        killed = sum(1 for code in codes.values() if code in KILLED)
        not_reached = sum(1 for code in codes.values() if code in NOT_REACHED)
        not_run = sum(1 for code in codes.values() if code in NOT_RUN)
        reachable = len(codes) - not_reached - not_run
        rate = 100.0 * killed / reachable if reachable else 0.0
        if not_run or rate < args.min_kill_rate:
            failed = True
        rows.append(
            (
                module,
                f"{killed}/{reachable}",
                f"{rate:.1f} %",
                str(not_reached),
                str(not_run) if not_run else "",
            )
        )
        survivors += sorted(
            name for name, code in codes.items() if code not in KILLED | NOT_REACHED | NOT_RUN
        )

    header = ("module", "killed/reachable", "kill-rate", "not reached", "not run")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    unexplained = [name for name in survivors if name not in equivalents]
    print(
        f"\nsurvivors: {len(survivors)} ({len(survivors) - len(unexplained)} equivalent per docs/testing.md)"
    )
    for name in survivors:
        mark = "equivalent" if name in equivalents else "UNEXPLAINED"
        print(f"  {mark:<11}  {name}")
        if not args.no_diff:
            for line in diff_of(name):
                print(f"                 {line.strip()[:1]} {line[1:].strip()}")
    if failed:
        print(
            f"\nFAILED: a module is under {args.min_kill_rate:g} % or was not run completely", file=sys.stderr
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
