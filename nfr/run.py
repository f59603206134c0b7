"""Judging an external Ticketero: what a scenario needs, what the run was given, what that leaves unjudged.

``python -m nfr run --target URL`` and ``python -m nfr demo`` share one job (:func:`nfr.demo.run_demo`); this
module holds what only an external target raises:

- **needs** — a scenario declares what it needs beyond HTTP (``needs: [database]``) and the rest is read off
  its steps (an ``sql`` step needs the database, ``amqp`` the broker, ``service``/``docker``/``command`` the power to
  stop, freeze or restart the service). A need the run was not given refuses the scenario before any
  request (exit 2), naming it.
- **parts** — which sources feed Prometheus (the load generator always; the exporter only on a DSN; the
  service's own metrics when it serves them) and so which NFRs will be NO DATA: said before the load.
- **rules** — a part that was not given is not scraped (so it is no TargetDown) and its
  ``TicketeroNfrIndicatorAbsent`` alerts are left out of the run's rule copies, so an NFR that another part
  still feeds (RNF-06 by the load generator without the exporter's health probe) is judged, and one no
  part feeds is NO DATA by the verdict's own rule (no sample of its indicator).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nfr.catalogue import INDICATOR_ABSENT_ALERT, NFRS
from nfr.mixin.config import MixinConfig
from nfr.mixin.ctx import Ctx

NEEDS_KEY = "needs"
#: What a scenario may need beyond HTTP, and the option that provides it in ``nfr run``.
NEEDS = {
    "database": "--database-dsn",
    "broker": "--amqp-url",
    "service-control": "--service-control",
}
_STEP_NEEDS = {
    "sql": "database",
    "amqp": "broker",
    "service": "service-control",
    "docker": "service-control",
    "command": "service-control",
}
_STEP_LISTS = ("setup", "steady_state", "method", "rollbacks", "verify")
#: Where a Ticketero serves its own metrics: the Java original (Micrometer), then the usual path.
METRICS_PATHS = ("/actuator/prometheus", "/metrics")


class NeedsError(ValueError):
    """A scenario's ``needs:`` that is not a list of known needs."""


def declared_needs(source: Path | str, doc: dict[str, Any]) -> tuple[str, ...]:
    """Pop the scenario's ``needs:`` (the load generator accepts and ignores it) and check its entries."""
    value = doc.pop(NEEDS_KEY, None) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NeedsError(f"{source}: {NEEDS_KEY}: expected a list of {', '.join(NEEDS)}")
    unknown = [v for v in value if v not in NEEDS]
    if unknown:
        raise NeedsError(f"{source}: {NEEDS_KEY}: {', '.join(unknown)}: expected some of {', '.join(NEEDS)}")
    return tuple(value)


def inferred_needs(doc: dict[str, Any]) -> dict[str, list[str]]:
    """need → the steps that need it, read off the scenario's step types (``sql``, ``amqp``, ...)."""
    found: dict[str, list[str]] = {}
    for key in _STEP_LISTS:
        steps = doc.get(key) or []
        if not isinstance(steps, list):
            continue
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            kind = str(step.get("type") or ("sql" if "query" in step else "http"))
            need = _STEP_NEEDS.get(kind)
            if need:
                found.setdefault(need, []).append(f"{key}[{index}] {step.get('name') or kind}")
    if doc.get("proxies"):
        found.setdefault("service-control", []).append("proxies (a fault proxy in front of a backend)")
    return found


def missing_needs(
    source: Path | str, declared: Iterable[str], inferred: dict[str, list[str]], available: Iterable[str]
) -> str | None:
    """A message naming every need the run was not given (and the option that gives it), or None."""
    have = set(available)
    wanted = dict.fromkeys([*declared, *inferred])
    lines = []
    for need in wanted:
        if need in have:
            continue
        why = "; ".join(inferred.get(need, [])[:3]) or f"declared in {NEEDS_KEY}:"
        lines.append(f"{need} (give {NEEDS[need]}): {why}")
    if not lines:
        return None
    return f"scenario {source} needs what this run was not given — " + " | ".join(lines)


@dataclass(frozen=True)
class Part:
    """A source of series: the job it is scraped as, whether the run has it, what gives it."""

    source: str  # catalogue source: loadgen, exporter, service
    job: str
    available: bool
    how: str


def parts(exporter: bool, service_metrics: str | None, config: MixinConfig | None = None) -> list[Part]:
    jobs = (config or MixinConfig()).jobs
    return [
        Part("loadgen", jobs["loadgen"], True, "the load generator"),
        Part("exporter", jobs["exporter"], exporter, "the exporter (--database-dsn)"),
        Part(
            "service",
            jobs["service"],
            service_metrics is not None,
            f"the target's own metrics ({service_metrics})"
            if service_metrics
            else "the target's own metrics",
        ),
    ]


def nfrs_without_data(
    available_sources: Iterable[str],
    config: MixinConfig | None = None,
    service_metrics: str | None = None,
) -> list[str]:
    """NFRs none of whose indicators (or their alternatives) any available part feeds. ``service_metrics``
    (the target's exposition text, when known) narrows the service to the series it really serves."""
    have = set(available_sources)
    ctx = Ctx(config or MixinConfig())
    out = []
    for nfr in NFRS:
        fed = False
        for indicator in nfr.indicators(ctx):
            option: Any = indicator
            while option is not None:
                served = (
                    option.source != "service" or service_metrics is None or option.metric in service_metrics
                )
                if option.source in have and served:
                    fed = True
                option = option.alternative
        if not fed:
            out.append(nfr.id)
    return out


def availability_lines(
    run_parts: Sequence[Part], config: MixinConfig | None = None, service_metrics: str | None = None
) -> list[str]:
    """What the run has and has not, and the NFRs that will be NO DATA for it — printed before the load."""
    lines = []
    missing = [p for p in run_parts if not p.available]
    for part in run_parts:
        state = "yes" if part.available else "NOT AVAILABLE"
        lines.append(f"{part.source:9} {state:13} {part.how} (job {part.job})")
    no_data = nfrs_without_data([p.source for p in run_parts if p.available], config, service_metrics)
    if missing or no_data:
        lines.append(
            "NFRs without a source here (they will be NO DATA, never PASS): " + (", ".join(no_data) or "none")
        )
    return lines


def drop_absent_alerts(rule_files: Sequence[Path], missing_jobs: Iterable[str], out_dir: Path) -> list[Path]:
    """Copies of the rule files without the indicator-absent alerts of parts the run does not have, so the
    NFRs another part still feeds are judged. Unchanged files are returned as they are."""
    jobs = [j for j in missing_jobs if j]
    if not jobs:
        return list(rule_files)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = []
    for path in rule_files:
        document = yaml.safe_load(Path(path).read_text()) or {}
        changed = False
        for group in document.get("groups") or []:
            kept = []
            for rule in group.get("rules") or []:
                expr = str(rule.get("expr", ""))
                if rule.get("alert") == INDICATOR_ABSENT_ALERT and any(f'"{job}"' in expr for job in jobs):
                    changed = True
                    continue
                kept.append(rule)
            group["rules"] = kept
        if changed:
            copy = out_dir / Path(path).name
            copy.write_text(yaml.safe_dump(document, sort_keys=False))
            result.append(copy)
        else:
            result.append(Path(path))
    return result


def find_metrics_path(url: str, explicit: str | None = None, timeout: float = 5.0) -> tuple[str | None, str]:
    """(path, exposition text) where the service serves Prometheus metrics: ``explicit`` or the first of
    METRICS_PATHS that answers 200 with exposition text; (None, "") when it serves none."""
    for path in [explicit] if explicit else METRICS_PATHS:
        try:
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout) as response:
                text = response.read(4_000_000).decode(errors="replace")
        except (urllib.error.URLError, OSError, ValueError):
            continue
        if "# TYPE" in text or "# HELP" in text:
            return path, text
    return None, ""


def check_reachable(url: str, timeout: float = 5.0) -> str | None:
    """None when the target answers HTTP at all (any status), else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"{url} does not answer: {getattr(err, 'reason', err)}"
