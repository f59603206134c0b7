"""The mixin's small config: which series are Ticketero's, how alerts group, where links point, the profile.

Everything an operator adapts to their Prometheus lives here, never in a rule: the job of each component,
extra label matchers pasted into every selector (``env="staging"``), the labels that keep environments
apart in aggregations and inhibitions, and the base URLs of the runbook and the dashboards. A YAML file
overrides any key; unknown keys and wrong types are refused with the file, the key and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from nfr.promql import PromqlError, parse_duration

PROFILES = ("run", "staging")
SOURCES = ("service", "exporter", "loadgen", "broker")

_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


class ConfigError(ValueError):
    """A config the mixin cannot use: says where (file), which key and what was expected."""


@dataclass(frozen=True)
class MixinConfig:
    """Selectors, grouping and links. Defaults fit the stacks this repository runs (compose, local)."""

    profile: str = "run"
    #: Prometheus job of each component. The broker's job only feeds TargetDown (its own exporter).
    jobs: dict[str, str] = field(
        default_factory=lambda: {
            "service": "ticketero-app",
            "exporter": "ticketero-exporter",
            "loadgen": "loadgen",
            "broker": "rabbitmq",
        }
    )
    #: Extra matchers pasted into every selector of every rule and panel, e.g. ``env="staging"``.
    selector: str = ""
    #: Labels kept by every aggregation and required equal by every inhibition (e.g. ``[env]``).
    group_labels: tuple[str, ...] = ()
    #: The service's container name, as the exporter's container metrics label it.
    service_container: str = "ticketero-app"
    #: Absolute base of the runbook; each alert links ``<base>#<alert-name-lowercase>``.
    runbook_url: str = "https://ticketero-nfr.invalid/docs/runbook.md"
    #: Grafana's base URL; alerts link their NFR's dashboard under it.
    dashboard_url: str = "http://localhost:3000"
    #: Grafana datasource the dashboards select by default (a variable lets the viewer change it).
    datasource: str = "Prometheus"
    #: Oldest acceptable age of a history-wide consistency check's last complete sweep (a Prometheus
    #: duration): older, and an RNF-04 violation on an old row may have gone unseen that long (a warning).
    #: On a primary-key-only database of 10 M rows one sweep takes ~18-21 h at a 15 s scrape interval.
    sweep_age_limit: str = "2d"

    def __post_init__(self) -> None:
        validate(self)

    def with_profile(self, profile: str) -> MixinConfig:
        return replace(self, profile=profile)


def parse_matchers(text: str, where: str = "selector") -> list[tuple[str, str, str]]:
    """``a="x",b=~"y"`` → [(a, =, x), (b, =~, y)]; refuses anything that is not a list of matchers."""
    out: list[tuple[str, str, str]] = []
    rest = text.strip().strip(",")
    while rest:
        match = _MATCHER.match(rest)
        if not match:
            raise ConfigError(
                f'{where}: expected label matchers like env="staging",cluster=~"eu-.*", got {text!r}'
            )
        out.append((match.group(1), match.group(2), match.group(3)))
        rest = rest[match.end() :].lstrip()
        if rest.startswith(","):
            rest = rest[1:].lstrip()
        elif rest:
            raise ConfigError(f"{where}: expected ',' between matchers in {text!r}")
    return out


def validate(config: MixinConfig) -> None:
    if config.profile not in PROFILES:
        raise ConfigError(f"profile: expected one of {', '.join(PROFILES)}, got {config.profile!r}")
    for source in ("service", "exporter", "loadgen"):
        if not config.jobs.get(source):
            raise ConfigError(f"jobs.{source}: expected the Prometheus job name of the {source}")
    unknown = sorted(set(config.jobs) - set(SOURCES))
    if unknown:
        raise ConfigError(f"jobs: unknown component(s) {', '.join(unknown)}; expected {', '.join(SOURCES)}")
    parse_matchers(config.selector)
    for label in config.group_labels:
        if not _LABEL.fullmatch(label):
            raise ConfigError(f"group_labels: {label!r} is not a label name")
    try:
        sweep_age_limit = parse_duration(config.sweep_age_limit)
    except PromqlError:
        sweep_age_limit = 0.0
    if sweep_age_limit <= 0:
        raise ConfigError(
            f"sweep_age_limit: expected a Prometheus duration above zero such as 2d or 36h, "
            f"got {config.sweep_age_limit!r}"
        )
    for key in ("runbook_url", "dashboard_url"):
        value = getattr(config, key)
        if not re.match(r"https?://", value):
            raise ConfigError(f"{key}: expected an absolute http(s) URL, got {value!r}")


def load_config(path: str | Path | None = None, profile: str | None = None) -> MixinConfig:
    """Defaults, then the YAML file's keys, then ``profile`` when given."""
    values: dict[str, Any] = {}
    if path is not None:
        source = Path(path)
        try:
            document = yaml.safe_load(source.read_text()) or {}
        except OSError as err:
            raise ConfigError(f"{source}: cannot read: {err.strerror or err}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML: {err}") from err
        if not isinstance(document, dict):
            raise ConfigError(f"{source}: (top level): expected a mapping of mixin settings")
        known = {f.name: f for f in fields(MixinConfig)}
        for key, value in document.items():
            if key not in known:
                raise ConfigError(f"{source}: {key}: unknown key; expected one of {', '.join(known)}")
            values[key] = _coerce(source, key, value)
    if profile is not None:
        values["profile"] = profile
    try:
        base = MixinConfig()
        if "jobs" in values:
            values["jobs"] = {**base.jobs, **values["jobs"]}
        return replace(base, **values)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path else str(err)) from None


def _coerce(source: Path, key: str, value: Any) -> Any:
    if key == "jobs":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{source}: jobs: expected a mapping of component to job name")
        return {str(k): v for k, v in value.items()}
    if key == "group_labels":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: group_labels: expected a list of label names")
        return tuple(value)
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key}: expected a string, got {type(value).__name__}")
    return value
