"""Exporter settings: YAML file, then ``EXPORTER_*`` environment variables, then command-line flags.

Every option is declared once in ``OPTIONS`` (its key in the file, its environment variable, its flag, its
type and default), so the three sources cannot drift apart and ``--help`` lists them all. Settings are
validated once, at start, into a frozen ``Settings``; anything wrong raises ``ConfigError`` naming where the
value came from (file, variable or flag), the key and what was expected — ``main`` turns that into exit 2.
"""

from __future__ import annotations

import argparse
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_QUEUES = ("caja-queue", "personal-queue", "empresas-queue", "gerencia-queue")
RESOURCE_BACKENDS = ("none", "docker", "process")
TARGET_KINDS = ("container", "pid_file", "process_name", "cgroup")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names source, key and expectation."""

    def __init__(self, source: str, key: str, expected: str, got: object = None) -> None:
        self.source, self.key, self.expected = source, key, expected
        shown = "" if got is None else f", got {got!r}"
        super().__init__(f"{source}: {key}: expected {expected}{shown}")


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
    dsn: str = "postgresql://postgres@127.0.0.1:5432/ticketero"
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


# --- value parsers: each takes the raw value and returns the typed one or raises ValueError(expected) ---


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str | int | float):
        raise ValueError("a string")
    return str(raw)


def _port(raw: Any) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError("a TCP port number (1-65535)") from None
    if isinstance(raw, bool) or not 1 <= value <= 65535:
        raise ValueError("a TCP port number (1-65535)")
    return value


def _positive_int(raw: Any) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError("a positive integer") from None
    if isinstance(raw, bool) or value < 1:
        raise ValueError("a positive integer")
    return value


def _seconds(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError("a duration in seconds (a number > 0)") from None
    if isinstance(raw, bool) or value <= 0:
        raise ValueError("a duration in seconds (a number > 0)")
    return value


def _queues(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        items = [q.strip() for q in raw.split(",") if q.strip()]
    elif isinstance(raw, list) and all(isinstance(q, str) and q for q in raw):
        items = list(raw)
    else:
        raise ValueError("a list of queue names (or a comma-separated string)")
    return tuple(items)


def _backend(raw: Any) -> str:
    if raw not in RESOURCE_BACKENDS:
        raise ValueError("one of " + ", ".join(RESOURCE_BACKENDS))
    return str(raw)


def _log_level(raw: Any) -> str:
    value = str(raw).upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("one of DEBUG, INFO, WARNING, ERROR")
    return value


def _url(schemes: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = _text(raw)
        if value and urllib.parse.urlsplit(value).scheme not in schemes:
            raise ValueError("a URL starting with " + " or ".join(s + "://" for s in schemes) + " (or empty)")
        return value

    return parse


def _dsn(raw: Any) -> str:
    value = _text(raw)
    if value and not (value.startswith(("postgresql://", "postgres://")) or "=" in value):
        raise ValueError("a libpq DSN (postgresql://... or key=value pairs), or empty to disable")
    return value


def _targets(raw: Any) -> tuple[Target, ...]:
    """Mapping name -> spec, or the flag/env form ``name=kind:value,name2=value2``."""
    expected = (
        "a mapping of target name to a container name or to one of "
        "{container|pid_file|process_name|cgroup: value} (env/flag form: name=kind:value,...)"
    )
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


@dataclass(frozen=True)
class Option:
    attr: str  # Settings attribute
    key: str  # dotted key in the YAML file
    env: str
    flag: str
    parse: Callable[[Any], Any]
    help: str
    secret: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("listen_address", "listen.address", "EXPORTER_LISTEN_ADDRESS", "--listen-address", _text,
           "address to serve /metrics on (default 127.0.0.1)"),
    Option("listen_port", "listen.port", "EXPORTER_LISTEN_PORT", "--listen-port", _port,
           "port to serve /metrics on (default 10187)"),
    Option("scrape_timeout", "scrape_timeout_seconds", "EXPORTER_SCRAPE_TIMEOUT", "--scrape-timeout", _seconds,
           "budget for one whole scrape; a collector still running past it is dropped (default 1.0; 2.0 with the "
           "docker backend, whose stats can take one 1-second engine tick)"),
    Option("log_level", "log_level", "EXPORTER_LOG_LEVEL", "--log-level", _log_level,
           "DEBUG, INFO, WARNING or ERROR (default INFO)"),
    Option("dsn", "postgres.dsn", "EXPORTER_DSN", "--dsn", _dsn,
           "PostgreSQL DSN of the Ticketero database; empty disables the PostgreSQL collectors. "
           "Prefer the file or EXPORTER_DSN for a DSN with a password (flags show in `ps`)", secret=True),
    Option("statement_timeout", "postgres.statement_timeout_seconds", "EXPORTER_STATEMENT_TIMEOUT",
           "--statement-timeout", _seconds, "statement_timeout of every exporter query (default 0.5)"),
    Option("lock_timeout", "postgres.lock_timeout_seconds", "EXPORTER_LOCK_TIMEOUT", "--lock-timeout",
           _seconds, "lock_timeout: how long a query waits behind a table lock (default 0.2)"),
    Option("connect_timeout", "postgres.connect_timeout_seconds", "EXPORTER_CONNECT_TIMEOUT",
           "--connect-timeout", _seconds, "PostgreSQL connect timeout (default 2; libpq's minimum is 2)"),
    Option("pool_size", "postgres.pool_size", "EXPORTER_POOL_SIZE", "--pool-size", _positive_int,
           "most PostgreSQL connections the exporter holds (default 2)"),
    Option("counter_slack", "postgres.counter_slack_seconds", "EXPORTER_COUNTER_SLACK", "--counter-slack",
           _seconds, "how long an id skipped below the newest row is waited for, to catch late commits (default 30)"),
    Option("sweep_seconds", "postgres.sweep_seconds", "EXPORTER_SWEEP_SECONDS", "--sweep-seconds", _seconds,
           "time per scrape spent sweeping the history for the history-wide checks (default 0.01)"),
    Option("first_sweep_seconds", "postgres.first_sweep_seconds", "EXPORTER_FIRST_SWEEP_SECONDS",
           "--first-sweep-seconds", _seconds,
           "time per scrape for the sweep until the first one after start-up is complete (default 0.5)"),
    Option("custom_queries", "postgres.custom_queries_file", "EXPORTER_CUSTOM_QUERIES", "--custom-queries",
           _text, "YAML file of extra SQL metrics (sql_exporter shape); empty for none"),
    Option("amqp_url", "rabbitmq.url", "EXPORTER_AMQP_URL", "--amqp-url", _url(("amqp", "amqps")),
           "AMQP URL of the broker; empty disables the queue collector", secret=True),
    Option("amqp_host", "rabbitmq.host", "EXPORTER_AMQP_HOST", "--amqp-host", _text,
           "broker host; with the other rabbitmq.* parts, replaces that part of the AMQP URL"),
    Option("amqp_port", "rabbitmq.port", "EXPORTER_AMQP_PORT", "--amqp-port", _port, "broker AMQP port"),
    Option("amqp_vhost", "rabbitmq.vhost", "EXPORTER_AMQP_VHOST", "--amqp-vhost", _text, "broker virtual host"),
    Option("amqp_user", "rabbitmq.user", "EXPORTER_AMQP_USER", "--amqp-user", _text, "broker user"),
    Option("amqp_password", "rabbitmq.password", "EXPORTER_AMQP_PASSWORD", "--amqp-password", _text,
           "broker password (prefer the file or the variable)", secret=True),
    Option("management_url", "rabbitmq.management_url", "EXPORTER_RABBITMQ_MANAGEMENT_URL", "--management-url",
           _url(("http", "https")), "RabbitMQ management API (e.g. http://127.0.0.1:15672) for unacked counts; "
           "credentials from the AMQP URL unless given in this URL", secret=True),
    Option("queues", "rabbitmq.queues", "EXPORTER_QUEUES", "--queues", _queues,
           "ticket queues to watch (default: " + ",".join(DEFAULT_QUEUES) + ")"),
    Option("rabbitmq_timeout", "rabbitmq.timeout_seconds", "EXPORTER_RABBITMQ_TIMEOUT", "--rabbitmq-timeout",
           _seconds, "socket timeout for AMQP and the management API (default 0.5)"),
    Option("health_url", "probe.url", "EXPORTER_HEALTH_URL", "--health-url", _url(("http", "https")),
           "health endpoint probed at every scrape; empty disables the probe"),
    Option("probe_timeout", "probe.timeout_seconds", "EXPORTER_PROBE_TIMEOUT", "--probe-timeout", _seconds,
           "probe timeout (default 0.5)"),
    Option("resources_backend", "resources.backend", "EXPORTER_RESOURCES_BACKEND", "--resources-backend",
           _backend, "where RNF-07 figures come from: docker, process or none (default none)"),
    Option("docker_url", "resources.docker_url", "EXPORTER_DOCKER_URL", "--docker-url", _text,
           "Docker engine URL (default: DOCKER_HOST or the local socket)"),
    Option("docker_timeout", "resources.docker_timeout_seconds", "EXPORTER_DOCKER_TIMEOUT", "--docker-timeout",
           _seconds, "Docker API timeout (default 2)"),
    Option("targets", "resources.targets", "EXPORTER_RESOURCES_TARGETS", "--resources-targets", _targets,
           "name=container or name=pid_file:/path | process_name:NAME | cgroup:/sys/fs/cgroup/..., comma-separated"),
)  # fmt: skip

_SECTION_KEYS = {"listen", "postgres", "rabbitmq", "probe", "resources"}


def mask_secret(value: str) -> str:
    """The URL or DSN with its password replaced by ***, safe for logs."""
    if not value:
        return value
    if "://" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.password is not None:
            netloc = parts.netloc.rsplit("@", 1)
            user = netloc[0].split(":", 1)[0]
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
        return re.sub(r"(password=)[^&\s]*", r"\1***", value)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", value)


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


def _flatten(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """File mapping -> {dotted key: value}, rejecting keys no option knows."""
    known = {o.key for o in OPTIONS}
    flat: dict[str, Any] = {}
    for top, value in data.items():
        if top in _SECTION_KEYS and top not in known:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(source, str(top), "a mapping", value)
            for sub, subvalue in value.items():
                key = f"{top}.{sub}"
                if key not in known:
                    options = sorted(k for k in known if k.startswith(top + "."))
                    raise ConfigError(source, key, "one of " + ", ".join(options))
                flat[key] = subvalue
        elif top in known:
            flat[str(top)] = value
        else:
            tops = sorted({k.split(".")[0] for k in known})
            raise ConfigError(source, str(top), "one of " + ", ".join(tops))
    return flat


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporters",
        description=(
            "Serve Ticketero's Prometheus metrics (tickets, consistency, outbox, advisors, queues, resources, "
            "availability) on /metrics. Everything is read at scrape time; no background polling."
        ),
        epilog=(
            "Settings resolve in this order, later wins: --config file, then EXPORTER_* environment variables, "
            "then flags. A bad setting exits with code 2 naming the file, key and what was expected. "
            "See docs/exporters.md."
        ),
    )
    from exporters.build_info import version

    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("--config", metavar="FILE", help="YAML settings file (keys: " + ", ".join(
        o.key for o in OPTIONS) + ")", default=os.environ.get("EXPORTER_CONFIG"))  # fmt: skip
    metavars: dict[Any, str] = {
        _seconds: "SECONDS",
        _port: "PORT",
        _positive_int: "N",
        _queues: "Q1,Q2",
        _targets: "NAME=SPEC,...",
    }
    for option in OPTIONS:
        metavar = metavars.get(
            option.parse, "URL" if "url" in option.attr or option.attr == "dsn" else "VALUE"
        )
        parser.add_argument(
            option.flag, dest=option.attr, default=None, metavar=metavar, help=f"{option.help} [{option.env}]"
        )
    parser.add_argument("--check-config", action="store_true", help="validate the settings, print them, exit")
    return parser


def load_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Resolve file -> env -> flags into Settings; also returns where each non-default value came from."""
    environ = os.environ if environ is None else environ
    raw: dict[str, tuple[Any, str]] = {}
    config_file = getattr(args, "config", None)
    if config_file:
        path = Path(config_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(str(path), "(file)", f"a readable YAML file ({exc.strerror})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), "(file)", f"valid YAML ({exc})".replace("\n", " ")) from None
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(str(path), "(top level)", "a mapping of settings")
        for key, value in _flatten(data, str(path)).items():
            raw[key] = (value, str(path))
    for option in OPTIONS:
        if option.env in environ:
            raw[option.key] = (environ[option.env], f"environment variable {option.env}")
        flag_value = getattr(args, option.attr, None)
        if flag_value is not None:
            raw[option.key] = (flag_value, f"flag {option.flag}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if option.key not in raw:
            continue
        value, source = raw[option.key]
        try:
            values[option.attr] = option.parse(value)
        except ValueError as exc:
            shown = mask_secret(str(value)) if option.secret else value
            raise ConfigError(source, option.key, str(exc), shown) from None
        sources[option.attr] = source
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
        if not hasattr(settings, option.attr):
            continue  # the rabbitmq.* parts are folded into rabbitmq.url
        value = getattr(settings, option.attr)
        if option.secret:
            value = mask_secret(value)
        elif option.attr == "targets":
            value = {t.name: {t.kind: t.value} for t in value}
        elif isinstance(value, tuple):
            value = list(value)
        shown[option.key] = value
    return shown
