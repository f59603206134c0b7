"""Scenario files: loaded once at start, overridden by LOADGEN_* environment variables and then by flags,
and validated into typed dataclasses.

The variables and flags are a table of the shared settings core (``ticketero_settings``), checked there;
anything wrong raises :class:`ConfigError` whose message names the file (or the environment variable /
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

import ticketero_settings as core

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
from loadgen.units import RATE_HELP, parse_rate
from loadgen.validation import ScenarioReader, describe_value

# ---------------------------------------------------------------------------------------------------------
# Overrides: environment and flags write into the raw document before validation


@dataclass(frozen=True)
class Override:
    key_path: tuple[str, ...]
    value: Any
    origin: str  # "environment variable LOADGEN_RATE" or "flag --rate"


_RATE = core.Kind(parse_rate, RATE_HELP, "RATE")

# The settings a run takes from LOADGEN_* variables and flags, each with its key in the scenario document.
OPTIONS = core.Table(
    "LOADGEN_",
    (
        core.Option("target", core.url("http", "https", empty=False), "base URL of the service, e.g. http://127.0.0.1:8080"),
        core.Option("duration", core.duration(), "load duration for closed/open models, e.g. 2m, 1m30s"),
        core.Option("rate", _RATE, "open model arrival rate, e.g. 50/min, 200/s, 200", key="workload.rate"),
        core.Option("vus", core.integer(1, 100_000), "closed model: number of virtual users", key="workload.vus"),
        core.Option("max_requests", core.positive_int(), "stop after this many requests"),
        core.Option("timeout", core.duration(positive=True), "per-request timeout, e.g. 5s"),
        core.Option("metrics_port", core.port(zero_means="serve no metrics"), "Prometheus port (9646)"),
        core.Option("linger", core.duration(), "keep serving metrics this long after the run, e.g. 15s"),
        core.Option("summary_json", core.text(), "write the result document here"),
        core.Option("summary_csv", core.text(), "write per-endpoint and per-stage statistics as CSV here"),
        core.Option("processes", core.integer(1, 64), "split the load across N worker processes (one core each)"),
        core.Option("progress_interval", core.duration(), "time between progress lines (0 = none)"),
        core.Option("allow_targets", core.listing("host names or host:port"),
                    "host (or host:port) outside loopback that may receive traffic; repeatable", flag="--allow-target"),
        core.Option("settle", core.duration(), "wait this long after the load before verifying"),
        core.Option("database_dsn", core.dsn(empty=False), "PostgreSQL DSN for sql actions and probes",
                    key="services.database_dsn", secret=True),
        core.Option("amqp_url", core.url("amqp", "amqps", empty=False), "RabbitMQ URL for amqp actions",
                    key="services.amqp_url", secret=True),
        core.Option("service_control", core.text(),
                    "backend of service actions: docker (default), docker:app=NAME,broker=NAME, or the http:// URL "
                    "of a service-control endpoint (the local stack's)", key="services.service_control"),
    ),
)  # fmt: skip


def overrides(args: Any = None, environ: Mapping[str, str] | None = None) -> list[Override]:
    """LOADGEN_* variables (an empty one counts as unset), then flags, each checked by its option; ``args``
    maps option names to flag values (None = not given)."""
    environ = os.environ if environ is None else environ
    given = {name: value for name, value in environ.items() if name.startswith("LOADGEN_") and value != ""}
    try:
        resolved = OPTIONS.resolve(args, given)
    except core.SettingsError as error:
        raise ConfigError(str(error)) from None
    found = []
    for name, value in resolved.values.items():
        key_path = tuple(OPTIONS[name].key.split("."))
        found.append(
            Override(key_path, list(value) if isinstance(value, tuple) else value, resolved.sources[name])
        )
    return found


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
