"""Scenario files: loaded once at start, overridden by LOADGEN_* environment variables and then by flags,
and validated into typed dataclasses.

Anything wrong raises :class:`ConfigError` whose message names the file (or the environment variable /
flag the value came from), the key path and what was expected; the command line turns it into exit code 2.
Nothing downstream re-checks a value: once a :class:`Scenario` exists, it is valid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The typed model is re-exported: callers import everything about scenarios from here.
from loadgen.model import (  # noqa: F401
    BUILTIN_ENDPOINTS,
    MAX_RUN_SECONDS,
    MODELS,
    QUEUE_TYPES,
    THRESHOLD_METRICS,
    Action,
    ConfigError,
    Probe,
    ProxySpec,
    RequestSpec,
    Scenario,
    Stage,
    ThinkTime,
    Threshold,
    TicketTemplate,
    UserClass,
    Workload,
    with_process_share,
)
from loadgen.validation import ScenarioReader, describe_value

# ---------------------------------------------------------------------------------------------------------
# Overrides: environment and flags write into the raw document before validation


@dataclass(frozen=True)
class Override:
    key_path: tuple[str, ...]
    value: Any
    origin: str  # "LOADGEN_RATE (environment)" or "--rate (flag)"


# setting name → (key path in the document, environment variable, flag)
SETTINGS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "target": (("target",), "LOADGEN_TARGET", "--target"),
    "duration": (("duration",), "LOADGEN_DURATION", "--duration"),
    "rate": (("workload", "rate"), "LOADGEN_RATE", "--rate"),
    "vus": (("workload", "vus"), "LOADGEN_VUS", "--vus"),
    "max_requests": (("max_requests",), "LOADGEN_MAX_REQUESTS", "--max-requests"),
    "timeout": (("timeout",), "LOADGEN_TIMEOUT", "--timeout"),
    "metrics_port": (("metrics_port",), "LOADGEN_METRICS_PORT", "--metrics-port"),
    "linger": (("linger",), "LOADGEN_LINGER", "--linger"),
    "summary_json": (("summary_json",), "LOADGEN_SUMMARY_JSON", "--summary-json"),
    "summary_csv": (("summary_csv",), "LOADGEN_SUMMARY_CSV", "--summary-csv"),
    "processes": (("processes",), "LOADGEN_PROCESSES", "--processes"),
    "progress_interval": (("progress_interval",), "LOADGEN_PROGRESS_INTERVAL", "--progress-interval"),
    "allow_targets": (("allow_targets",), "LOADGEN_ALLOW_TARGETS", "--allow-target"),
    "settle": (("settle",), "LOADGEN_SETTLE", "--settle"),
    "database_dsn": (("services", "database_dsn"), "LOADGEN_DATABASE_DSN", "--database-dsn"),
    "amqp_url": (("services", "amqp_url"), "LOADGEN_AMQP_URL", "--amqp-url"),
    "service_control": (("services", "service_control"), "LOADGEN_SERVICE_CONTROL", "--service-control"),
}


def environment_overrides(environ: Mapping[str, str] | None = None) -> list[Override]:
    environ = os.environ if environ is None else environ
    found = []
    for setting, (path, variable, _flag) in SETTINGS.items():
        if variable in environ and environ[variable] != "":
            raw: Any = environ[variable]
            if setting == "allow_targets":
                raw = [part.strip() for part in raw.split(",") if part.strip()]
            found.append(Override(path, _scalar(raw), f"{variable} (environment)"))
    return found


def flag_overrides(values: Mapping[str, Any]) -> list[Override]:
    """Overrides from parsed flags; ``values`` maps setting names to the flag value (None = not given)."""
    found = []
    for setting, (path, _variable, flag) in SETTINGS.items():
        value = values.get(setting)
        if value is None or value == []:
            continue
        found.append(Override(path, _scalar(value), f"{flag} (flag)"))
    return found


def _scalar(value: Any) -> Any:
    """Flags and variables arrive as strings; YAML's rules turn "10" into 10 the way a file would."""
    if isinstance(value, str):
        try:
            return yaml.safe_load(value) if value.strip() else value
        except yaml.YAMLError:
            return value
    return value


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_scenario(path: str | os.PathLike[str], overrides: list[Override] | None = None) -> Scenario:
    """Read, override and validate one scenario file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{source}: cannot read the file: {error.strerror or error}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from error
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: (top level): expected a mapping of settings, got {describe_value(document)}"
        )
    origins: dict[tuple[str, ...], str] = {}
    for override in overrides or []:
        _apply(document, override.key_path, override.value)
        origins[override.key_path] = override.origin
    return ScenarioReader(source, origins).scenario(document)


def _apply(document: dict, key_path: tuple[str, ...], value: Any) -> None:
    node = document
    for key in key_path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[key_path[-1]] = value
