"""Exporter settings: YAML file, then ``EXPORTER_*`` environment variables, then command-line flags.

Every option is declared once in ``OPTIONS``, a table of the shared settings core (``ticketero_settings``):
its key in the file, its environment variable, its flag, its validator; defaults are ``Settings``'s. The
three sources cannot drift apart and ``--help`` lists them all. Settings are validated once, at start, into a
frozen ``Settings``; anything wrong raises ``ConfigError`` naming where the value came from (file, variable
or flag), the key and what was expected — ``main`` turns that into exit 2. What stays here are the
exporter's own checks: the resource targets, the AMQP URL assembled from its parts, timeouts that must nest.
"""

from __future__ import annotations

import argparse
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ticketero_settings as core
from ticketero_settings import SettingsError as ConfigError
from ticketero_settings import mask_secret

__all__ = ["OPTIONS", "ConfigError", "Settings", "Target", "build_parser", "describe_settings", "load_settings",
           "mask_secret"]  # fmt: skip

DEFAULT_QUEUES = ("caja-queue", "personal-queue", "empresas-queue", "gerencia-queue")
RESOURCE_BACKENDS = ("none", "docker", "process")
TARGET_KINDS = ("container", "pid_file", "process_name", "cgroup")
TARGETS_EXPECTED = (
    "a mapping of target name to a container name or to one of "
    "{container|pid_file|process_name|cgroup: value} (env/flag form: name=kind:value,...)"
)


@dataclass(frozen=True)
class Target:
    """One resource target: a container name (docker) or a pid file / process name / cgroup (process)."""

    name: str
    kind: str
    value: str


@dataclass(frozen=True)
class Settings:
    listen_address: str = "127.0.0.1"
    listen_port: int = 10187
    scrape_timeout: float = 1.0
    log_level: str = "INFO"
    # PostgreSQL
    database_dsn: str = "postgresql://postgres@127.0.0.1:5432/ticketero"
    statement_timeout: float = 0.5
    lock_timeout: float = 0.2
    connect_timeout: float = 2.0
    pool_size: int = 2
    counter_slack: float = 30.0
    sweep_seconds: float = 0.01
    first_sweep_seconds: float = 0.5
    custom_queries: str = ""
    # RabbitMQ
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    management_url: str = ""
    queues: tuple[str, ...] = DEFAULT_QUEUES
    rabbitmq_timeout: float = 0.5
    # availability probe
    health_url: str = "http://127.0.0.1:8080/actuator/health"
    probe_timeout: float = 0.5
    # resources
    resources_backend: str = "none"
    docker_url: str = ""
    docker_timeout: float = 2.0
    targets: tuple[Target, ...] = field(default_factory=tuple)


def _targets(raw: Any) -> tuple[Target, ...]:
    """Mapping name -> spec, or the flag/env form ``name=kind:value,name2=value2``."""
    expected = TARGETS_EXPECTED
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        pairs: dict[str, Any] = {}
        for item in raw.split(","):
            name, sep, spec = item.strip().partition("=")
            if not sep or not name or not spec:
                raise ValueError(expected)
            kind, colon, value = spec.partition(":")
            pairs[name] = {kind: value} if colon and kind in TARGET_KINDS else spec
        raw = pairs
    if not isinstance(raw, Mapping):
        raise ValueError(expected)
    targets = []
    for name, spec in raw.items():
        if isinstance(spec, str) and spec:
            targets.append(Target(str(name), "container", spec))
        elif isinstance(spec, Mapping) and len(spec) == 1:
            ((kind, value),) = spec.items()
            if kind not in TARGET_KINDS or not isinstance(value, str | int) or value == "":
                raise ValueError(expected)
            targets.append(Target(str(name), str(kind), str(value)))
        else:
            raise ValueError(expected)
    return tuple(targets)


def _target_spec(raw: Any) -> tuple[Target, ...]:
    try:
        return _targets(raw)
    except ValueError:
        raise core.Refused(TARGETS_EXPECTED) from None


_seconds = core.duration(positive=True)
_http_url = core.url("http", "https")

OPTIONS = core.Table(
    "EXPORTER_",
    (
        core.Option("listen_address", core.text(), "address to serve /metrics on", key="listen.address"),
        core.Option("listen_port", core.port(), "port to serve /metrics on", key="listen.port"),
        core.Option("scrape_timeout", _seconds, "budget for one whole scrape; a collector still running past it is "
                    "dropped (2s with the docker backend, whose stats can take one 1-second engine tick)",
                    key="scrape_timeout_seconds"),
        core.Option("log_level", core.enum("DEBUG", "INFO", "WARNING", "ERROR", upper=True), "log level"),
        core.Option("database_dsn", core.dsn(), "PostgreSQL DSN of the Ticketero database; empty disables the "
                    "PostgreSQL collectors. Prefer the file or EXPORTER_DATABASE_DSN for a DSN with a password "
                    "(flags show in `ps`)", key="postgres.database_dsn",
                    aliases=("--dsn", "EXPORTER_DSN", "postgres.dsn"), secret=True),
        core.Option("statement_timeout", _seconds, "statement_timeout of every exporter query",
                    key="postgres.statement_timeout_seconds"),
        core.Option("lock_timeout", _seconds, "lock_timeout: how long a query waits behind a table lock",
                    key="postgres.lock_timeout_seconds"),
        core.Option("connect_timeout", _seconds, "PostgreSQL connect timeout (libpq's minimum is 2s)",
                    key="postgres.connect_timeout_seconds"),
        core.Option("pool_size", core.positive_int(), "most PostgreSQL connections the exporter holds",
                    key="postgres.pool_size"),
        core.Option("counter_slack", _seconds, "how long an id skipped below the newest row is waited for, to catch "
                    "late commits", key="postgres.counter_slack_seconds"),
        core.Option("sweep_seconds", _seconds, "time per scrape spent sweeping the history for the history-wide "
                    "checks", key="postgres.sweep_seconds"),
        core.Option("first_sweep_seconds", _seconds, "time per scrape for the sweep until the first one after "
                    "start-up is complete", key="postgres.first_sweep_seconds"),
        core.Option("custom_queries", core.text(), "YAML file of extra SQL metrics (sql_exporter shape); empty for "
                    "none", key="postgres.custom_queries_file"),
        core.Option("amqp_url", core.url("amqp", "amqps"), "AMQP URL of the broker; empty disables the queue "
                    "collector", key="rabbitmq.url", secret=True),
        core.Option("amqp_host", core.text(), "broker host; with the other rabbitmq.* parts, replaces that part of "
                    "the AMQP URL", key="rabbitmq.host"),
        core.Option("amqp_port", core.port(), "broker AMQP port", key="rabbitmq.port"),
        core.Option("amqp_vhost", core.text(), "broker virtual host", key="rabbitmq.vhost"),
        core.Option("amqp_user", core.text(), "broker user", key="rabbitmq.user"),
        core.Option("amqp_password", core.text(), "broker password (prefer the file or the variable)",
                    key="rabbitmq.password", secret=True),
        core.Option("management_url", _http_url, "RabbitMQ management API (e.g. http://127.0.0.1:15672) for unacked "
                    "counts; credentials from the AMQP URL unless given in this URL", key="rabbitmq.management_url",
                    env="EXPORTER_RABBITMQ_MANAGEMENT_URL", secret=True),
        core.Option("queues", core.listing("queue names"), "ticket queues to watch", key="rabbitmq.queues"),
        core.Option("rabbitmq_timeout", _seconds, "socket timeout for AMQP and the management API",
                    key="rabbitmq.timeout_seconds"),
        core.Option("health_url", _http_url, "health endpoint probed at every scrape; empty disables the probe",
                    key="probe.url"),
        core.Option("probe_timeout", _seconds, "probe timeout", key="probe.timeout_seconds"),
        core.Option("resources_backend", core.enum(*RESOURCE_BACKENDS), "where RNF-07 figures come from",
                    key="resources.backend"),
        core.Option("docker_url", core.text(), "Docker engine URL (default: DOCKER_HOST or the local socket)",
                    key="resources.docker_url"),
        core.Option("docker_timeout", _seconds, "Docker API timeout", key="resources.docker_timeout_seconds"),
        core.Option("targets", core.custom(_target_spec, TARGETS_EXPECTED, "NAME=SPEC,..."),
                    "name=container or name=pid_file:/path | process_name:NAME | cgroup:/sys/fs/cgroup/..., "
                    "comma-separated", key="resources.targets", env="EXPORTER_RESOURCES_TARGETS",
                    flag="--resources-targets"),
    ),
    defaults=Settings(),
)  # fmt: skip


def _amqp_url_with(url: str, parts: dict[str, Any]) -> str:
    """The AMQP URL with host / port / vhost / user / password replaced by the separately given ones."""
    base = urllib.parse.urlsplit(url or Settings.amqp_url)
    q = urllib.parse.quote
    user = parts.get("amqp_user", urllib.parse.unquote(base.username or "guest"))
    password = parts.get("amqp_password", urllib.parse.unquote(base.password or "guest"))
    host = parts.get("amqp_host", base.hostname or "127.0.0.1")
    port = parts.get("amqp_port", base.port or 5672)
    vhost = parts.get("amqp_vhost", urllib.parse.unquote(base.path[1:]) if len(base.path) > 1 else "/")
    netloc = f"{q(user, safe='')}:{q(password, safe='')}@{host}:{port}"
    return urllib.parse.urlunsplit((base.scheme or "amqp", netloc, "/" + q(vhost, safe=""), "", ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporters",
        description=(
            "Serve Ticketero's Prometheus metrics (tickets, consistency, outbox, advisors, queues, resources, "
            "availability) on /metrics. Everything is read at scrape time; no background polling."
        ),
        epilog=(
            "Settings resolve in this order, later wins: --config file, then EXPORTER_* environment variables, "
            "then flags. Durations: 500ms, 2s, 1m30s, 1h or seconds. A bad setting exits with code 2 naming the "
            "file, key and what was expected. See docs/exporters.md."
        ),
    )
    from exporters.build_info import version

    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--config", metavar="FILE", help="YAML settings file (keys: " + ", ".join(
        OPTIONS.keys) + ")", default=os.environ.get("EXPORTER_CONFIG"))  # fmt: skip
    OPTIONS.add_arguments(parser)
    parser.add_argument("--check-config", action="store_true", help="validate the settings, print them, exit")
    return parser


def load_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Resolve file -> env -> flags into Settings; also returns where each non-default value came from."""
    environ = os.environ if environ is None else environ
    config_file = getattr(args, "config", None)
    data = core.read_file(config_file) if config_file else None
    resolved = OPTIONS.resolve(args, environ, data, str(config_file or ""))
    values, sources = resolved.values, resolved.sources
    if values.get("resources_backend") == "docker" and "scrape_timeout" not in values:
        values["scrape_timeout"] = 2.0  # container stats can wait for the engine's next 1-second sample
    parts: dict[str, Any] = {k: values.pop(k) for k in ("amqp_host", "amqp_port", "amqp_vhost", "amqp_user", "amqp_password")
             if k in values}  # fmt: skip
    if parts:
        values["amqp_url"] = _amqp_url_with(values.get("amqp_url", Settings.amqp_url), parts)
    settings = Settings(**values)
    if settings.statement_timeout >= settings.scrape_timeout:
        source = sources.get("statement_timeout", sources.get("scrape_timeout", "defaults"))
        raise ConfigError(
            source,
            "postgres.statement_timeout_seconds",
            "less than scrape_timeout_seconds",
            settings.statement_timeout,
        )
    if settings.resources_backend != "none" and not settings.targets:
        raise ConfigError(
            sources.get("resources_backend", "defaults"),
            "resources.targets",
            "at least one target for this backend",
        )
    for target in settings.targets:
        wanted = (
            ("container",)
            if settings.resources_backend == "docker"
            else ("pid_file", "process_name", "cgroup")
        )
        if settings.resources_backend != "none" and target.kind not in wanted:
            raise ConfigError(
                sources.get("targets", "defaults"),
                f"resources.targets.{target.name}",
                f"{' or '.join(wanted)} for the {settings.resources_backend} backend",
                target.kind,
            )
    return settings, sources


def describe_settings(settings: Settings) -> dict[str, Any]:
    """Settings as a dict with secrets masked, for the start-up log line and --check-config."""
    shown: dict[str, Any] = {}
    for option in OPTIONS:
        if not hasattr(settings, option.name):
            continue  # the rabbitmq.* parts are folded into rabbitmq.url
        value = getattr(settings, option.name)
        if option.secret:
            value = mask_secret(value)
        elif option.name == "targets":
            value = {t.name: {t.kind: t.value} for t in value}
        elif isinstance(value, tuple):
            value = list(value)
        shown[option.key] = value
    return shown
