"""``python -m nfr.mixin build``: render rules, alerts, Alertmanager config, dashboards and NFR tables.

    python -m nfr.mixin build                                   # the committed files (profile run)
    python -m nfr.mixin build --profile staging --out /tmp/stg  # staging monitoring
    python -m nfr.mixin build --config mine.yml --out deploy/   # your jobs, selectors, links
    python -m nfr.mixin build --check                           # exit 1 when a committed file differs

Exit codes: 0 done (or, with --check, up to date), 1 --check found a difference, 2 bad config or option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nfr.mixin.build import render_all, write_all
from nfr.mixin.config import PROFILES, ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nfr.mixin",
        description=(
            "Render every artefact derived from the NFR catalogue (nfr/catalogue.py) for a config: recording "
            "rules, NFR alerts, meta alerts, Alertmanager inhibitions, Grafana dashboards, and the NFR tables "
            "between <!-- nfr-table:... --> markers in README.md and docs/mixin.md."
        ),
        epilog="Exit codes: 0 done / up to date, 1 --check found a difference, 2 bad config or option.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the generated files", description=parser.description)
    build.add_argument(
        "--config", type=Path, help="YAML with jobs, selector, group_labels, runbook_url, dashboard_url, ..."
    )
    build.add_argument("--profile", choices=PROFILES, help="run (test runs, default) or staging (monitoring)")
    build.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT,
        help="directory to write into, repository layout (the repository)",
    )
    build.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file in --out differs"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.profile)
    except ConfigError as err:
        print(f"python -m nfr.mixin: {err}", file=sys.stderr)
        return 2
    root = REPO_ROOT if args.out.resolve() == REPO_ROOT else None
    if args.check:
        stale = [
            relative
            for relative, text in render_all(config, root).items()
            if not (args.out / relative).is_file() or (args.out / relative).read_text() != text
        ]
        for relative in stale:
            print(f"out of date: {relative} (run: python -m nfr.mixin build)", file=sys.stderr)
        return 1 if stale else 0
    written = write_all(config, args.out, root)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} file(s) changed, profile {config.profile}, in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
