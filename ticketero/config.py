"""Typed settings of the service, resolved once at start: defaults → config file (TOML) → TICKETERO_* env →
flags.

Every option is declared once in ``OPTIONS`` (a table of the shared settings core, ``ticketero_settings``);
the argument parser, the environment lookup and the config file reader are all generated from it, so
``--help`` can never drift from what is accepted. A bad value anywhere ends the program with a message
naming where it came from, the key and what was expected, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import ticketero_settings as core
from ticketero import __version__
from ticketero.faults import Faults, parse_faults
from ticketero_settings import SettingsError

ENV_PREFIX = "TICKETERO_"
__all__ = ["OPTIONS", "Settings", "SettingsError", "build_parser", "load_settings", "load_settings_or_exit"]


@dataclass(frozen=True)
class Settings:
    database_dsn: str = "postgresql://postgres@127.0.0.1:5432/ticketero"
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
    api_db_pool_size: int = 4
    db_pool_timeout: float = 10.0
    create_database: bool = False
    log_level: str = "INFO"
    faults: Faults = field(default_factory=Faults)

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def _faults(value: Any) -> Faults:
    """Fault switches as --faults writes them ('slow-api=3,stalled-worker'), or a list of such names."""
    return parse_faults(core.as_text(value))


_seconds_or_zero = core.duration()
_seconds = core.duration(positive=True)

OPTIONS = core.Table(
    ENV_PREFIX,
    (
        core.Option("database_dsn", core.dsn(empty=False), "PostgreSQL DSN; the database must exist (see --create-database)",
                    aliases=("--dsn", "TICKETERO_DSN", "dsn"), secret=True),
        core.Option("amqp_url", core.url("amqp", "amqps", empty=False), "RabbitMQ URL (vhost URL-encoded, %2F is the default vhost)",
                    secret=True),
        core.Option("host", core.text(), "address the HTTP API listens on"),
        core.Option("port", core.port(zero_means="pick a free port"), "HTTP port (0 picks a free port)"),
        core.Option("workers_per_queue", core.positive_int(), "consumers on each of the 4 queues"),
        core.Option("advisors", core.integer(minimum=0), "advisors seeded AVAILABLE at start when the advisor table is empty"),
        core.Option("service_time", _seconds_or_zero, "how long an advisor works on a ticket (0 allowed)"),
        core.Option("heartbeat_interval", _seconds, "a busy worker refreshes its heartbeat this often"),
        core.Option("heartbeat_timeout", _seconds, "a BUSY advisor whose heartbeat is older than this is a dead worker"),
        core.Option("recovery_interval", _seconds, "how often the recovery service looks for dead workers"),
        core.Option("recovery", core.boolean(), "run the recovery service (--no-recovery disables it)", negative_flag=True),
        core.Option("relay_interval", _seconds, "outbox relay poll interval when idle"),
        core.Option("relay_batch_size", core.positive_int(), "outbox rows published per relay transaction"),
        core.Option("relay_max_attempts", core.positive_int(),
                    "refused publishes before an outbox row becomes FAILED (an unreachable broker never fails a row)"),
        core.Option("relay_backoff", _seconds_or_zero, "retry delay base: next attempt after base * 2^attempts"),
        core.Option("relay_backoff_max", _seconds_or_zero, "longest delay between two attempts of a row"),
        core.Option("advisor_retry_delay", _seconds_or_zero,
                    "a worker that finds no AVAILABLE advisor waits this long before requeueing the message"),
        core.Option("shutdown_grace", _seconds_or_zero,
                    "on SIGTERM, in-flight tickets get this long to finish before they are handed back"),
        core.Option("readiness_drain", _seconds_or_zero,
                    "on SIGTERM, answer /actuator/health DOWN this long while still serving, so a load balancer stops "
                    "sending requests first (0 = stop at once)"),
        core.Option("db_pool_size", core.positive_int(),
                    "maximum PostgreSQL connections in the pool of the workers, the outbox relay and recovery"),
        core.Option("api_db_pool_size", core.integer(minimum=0),
                    "maximum PostgreSQL connections in the HTTP API's own pool, so busy workers cannot starve ticket "
                    "creation (0 = the API shares the pool of --db-pool-size)"),
        core.Option("db_pool_timeout", _seconds,
                    "how long a request waits for a database connection before failing (HTTP 500)"),
        core.Option("create_database", core.boolean(), "create the database named in --database-dsn when it does not exist"),
        core.Option("log_level", core.enum("DEBUG", "INFO", "WARNING", "ERROR", upper=True), "log level (logs go to stderr)"),
        core.Option(
            "faults",
            core.custom(_faults, "a comma list of fault switches", "SWITCHES"),
            "fault switches that each break one guarantee on purpose: unlocked-claim, memory-leak[=bytes], "
            "slow-api[=seconds], stalled-worker, failing-relay[=share], no-drain, outage-drops, "
            "non-atomic-create[=seconds], chatty-create, no-backoff, duplicate-processing; e.g. 'unlocked-claim,slow-api=3' "
            "(see ticketero/README.md); empty = none",
        ),
    ),
    defaults=Settings(),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketero",
        description=(
            "Ticketero reference service: ticket API, outbox relay, queue workers and dead-worker recovery "
            "on PostgreSQL and RabbitMQ. Settings resolve in this order: built-in default, --config file, "
            "TICKETERO_<NAME> environment variable, command-line flag. Durations: 500ms, 2s, 1m30s, 1h or "
            "seconds."
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
    OPTIONS.add_arguments(parser)
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings; raises SettingsError on any bad value."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    file_data = core.read_file(args.config) if args.config else None
    resolved = OPTIONS.resolve(args, environ, file_data, args.config or "")
    return Settings(**resolved.values)


def load_settings_or_exit(argv: Sequence[str] | None = None) -> Settings:
    try:
        return load_settings(argv)
    except SettingsError as exc:
        print(f"ticketero: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(core.EXIT_BAD_SETTINGS) from exc
