"""Typed settings of the service, resolved once at start: defaults → config file → TICKETERO_* env → flags.

Every option is declared once in ``OPTIONS``; the argument parser, the environment lookup and the config
file reader are all generated from that table, so ``--help`` can never drift from what is accepted.
A bad value anywhere ends the program with a message naming where it came from, the key and what was
expected, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ticketero import __version__
from ticketero.faults import Faults, FaultSpecError, parse_faults

ENV_PREFIX = "TICKETERO_"


class SettingsError(Exception):
    """A setting could not be read: says where it came from, which key, and what was expected."""


@dataclass(frozen=True)
class Settings:
    dsn: str = "postgresql://postgres@127.0.0.1:5432/ticketero"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    host: str = "127.0.0.1"
    port: int = 8080
    workers_per_queue: int = 3
    advisors: int = 5
    service_time: float = 2.0
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 60.0
    recovery_interval: float = 10.0
    recovery: bool = True
    relay_interval: float = 0.5
    relay_batch_size: int = 100
    relay_max_attempts: int = 5
    relay_backoff: float = 1.0
    relay_backoff_max: float = 30.0
    advisor_retry_delay: float = 0.5
    shutdown_grace: float = 15.0
    readiness_drain: float = 0.0
    db_pool_size: int = 10
    db_pool_timeout: float = 10.0
    create_database: bool = False
    log_level: str = "INFO"
    faults: Faults = field(default_factory=Faults)

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be 0..65535")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _boolean(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _log_level(text: str) -> str:
    upper = text.upper()
    if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return upper


def _faults(text: str) -> Faults:
    try:
        return parse_faults(text)
    except FaultSpecError as exc:
        raise ValueError(str(exc)) from exc


@dataclass(frozen=True)
class Option:
    name: str  # Settings field
    convert: Callable[[str], Any]
    expected: str
    help: str
    flag_kind: str = "value"  # "value", or "switch-off" for --no-<x> style flags


OPTIONS: tuple[Option, ...] = (
    Option("dsn", str, "a PostgreSQL URL", "PostgreSQL DSN; the database must exist (see --create-database)"),
    Option("amqp_url", str, "an AMQP URL", "RabbitMQ URL (vhost URL-encoded, %%2F is the default vhost)"),
    Option("host", str, "a host name or address", "address the HTTP API listens on"),
    Option("port", _port, "an integer 0..65535", "HTTP port (0 picks a free port)"),
    Option("workers_per_queue", _positive_int, "an integer >= 1", "consumers on each of the 4 queues"),
    Option(
        "advisors",
        _non_negative_int,
        "an integer >= 0",
        "advisors seeded AVAILABLE at start when the advisor table is empty",
    ),
    Option(
        "service_time",
        _non_negative_float,
        "seconds >= 0",
        "how long an advisor works on a ticket (0 allowed)",
    ),
    Option(
        "heartbeat_interval",
        _positive_float,
        "seconds > 0",
        "a busy worker refreshes its heartbeat this often",
    ),
    Option(
        "heartbeat_timeout",
        _positive_float,
        "seconds > 0",
        "a BUSY advisor whose heartbeat is older than this is a dead worker",
    ),
    Option(
        "recovery_interval",
        _positive_float,
        "seconds > 0",
        "how often the recovery service looks for dead workers",
    ),
    Option(
        "recovery",
        _boolean,
        "true or false",
        "run the recovery service (--no-recovery disables it)",
        flag_kind="switch-off",
    ),
    Option("relay_interval", _positive_float, "seconds > 0", "outbox relay poll interval when idle"),
    Option(
        "relay_batch_size", _positive_int, "an integer >= 1", "outbox rows published per relay transaction"
    ),
    Option(
        "relay_max_attempts",
        _positive_int,
        "an integer >= 1",
        "refused publishes before an outbox row becomes FAILED (an unreachable broker never fails a row)",
    ),
    Option(
        "relay_backoff",
        _non_negative_float,
        "seconds >= 0",
        "retry delay base: next attempt after base * 2^attempts",
    ),
    Option(
        "relay_backoff_max",
        _non_negative_float,
        "seconds >= 0",
        "longest delay between two attempts of a row",
    ),
    Option(
        "advisor_retry_delay",
        _non_negative_float,
        "seconds >= 0",
        "a worker that finds no AVAILABLE advisor waits this long before requeueing the message",
    ),
    Option(
        "shutdown_grace",
        _non_negative_float,
        "seconds >= 0",
        "on SIGTERM, in-flight tickets get this long to finish before they are handed back",
    ),
    Option(
        "readiness_drain",
        _non_negative_float,
        "seconds >= 0",
        "on SIGTERM, answer /actuator/health DOWN this long while still serving, so a load balancer stops "
        "sending requests first (0 = stop at once)",
    ),
    Option("db_pool_size", _positive_int, "an integer >= 1", "maximum PostgreSQL connections in the pool"),
    Option(
        "db_pool_timeout",
        _positive_float,
        "seconds > 0",
        "how long a request waits for a database connection before failing (HTTP 500)",
    ),
    Option(
        "create_database",
        _boolean,
        "true or false",
        "create the database named in --dsn when it does not exist",
    ),
    Option("log_level", _log_level, "DEBUG, INFO, WARNING or ERROR", "log level (logs go to stderr)"),
    Option(
        "faults",
        _faults,
        "a comma list of fault switches",
        "fault switches that each break one guarantee on purpose: unlocked-claim, memory-leak[=bytes], "
        "slow-api[=seconds], stalled-worker, failing-relay[=share], no-drain, outage-drops; e.g. 'unlocked-claim,slow-api=3' "
        "(see ticketero/README.md); empty = none",
    ),
)


def _flag(option: Option) -> str:
    return "--" + option.name.replace("_", "-")


def env_name(option: Option) -> str:
    return ENV_PREFIX + option.name.upper()


def _default_text(value: Any) -> str:
    if isinstance(value, Faults):
        return "'" + value.describe() + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="ticketero",
        description=(
            "Ticketero reference service: ticket API, outbox relay, queue workers and dead-worker recovery "
            "on PostgreSQL and RabbitMQ. Settings resolve in this order: built-in default, --config file, "
            "TICKETERO_<NAME> environment variable, command-line flag."
        ),
        epilog="Exit codes: 0 clean shutdown, 2 bad configuration, missing database or HTTP port unavailable, 1 runtime failure.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get(ENV_PREFIX + "CONFIG"),
        help="TOML file with any of the settings below as keys (e.g. workers_per_queue = 3); "
        "env TICKETERO_CONFIG (default: none)",
    )
    for option in OPTIONS:
        # argparse %-formats help strings, and URLs carry %2F.
        default = _default_text(getattr(defaults, option.name)).replace("%", "%%")
        help_text = f"{option.help}; env {env_name(option)} (default: {default})"
        if option.flag_kind == "switch-off":
            parser.add_argument(
                "--no-" + option.name.replace("_", "-"),
                dest=option.name,
                action="store_const",
                const="false",
                default=None,
                help=help_text,
            )
        elif option.convert is _boolean:
            parser.add_argument(
                _flag(option),
                dest=option.name,
                action="store_const",
                const="true",
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                _flag(option), dest=option.name, metavar=option.name.upper(), default=None, help=help_text
            )
    return parser


def _convert(option: Option, raw: Any, source: str) -> Any:
    try:
        return option.convert(str(raw) if not isinstance(raw, str) else raw)
    except ValueError as exc:
        raise SettingsError(
            f"{source}: {option.name}: expected {option.expected}, got {raw!r} ({exc})"
        ) from exc


def _read_config_file(path: str) -> Mapping[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: not valid TOML ({exc})") from exc
    known = {option.name for option in OPTIONS}
    normalised = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(normalised) - known)
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown key {unknown[0]!r}; expected one of {sorted(known)}"
        )
    return normalised


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings; raises SettingsError on any bad value."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    file_values = _read_config_file(args.config) if args.config else {}
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.name in file_values:
            values[option.name] = _convert(option, file_values[option.name], f"config file {args.config}")
        if env_name(option) in environ:
            values[option.name] = _convert(
                option, environ[env_name(option)], f"environment {env_name(option)}"
            )
        flag_value = getattr(args, option.name)
        if flag_value is not None:
            values[option.name] = _convert(option, flag_value, f"command line {_flag(option)}")
    return Settings(**values)


def load_settings_or_exit(argv: Sequence[str] | None = None) -> Settings:
    try:
        return load_settings(argv)
    except SettingsError as exc:
        print(f"ticketero: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
