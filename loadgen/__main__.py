"""Command line: `loadgen run <scenario.yml>` and `loadgen validate <file...>`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from loadgen import __version__, eventloop
from loadgen.config import OPTIONS, ConfigError, Scenario, load_scenario, overrides
from loadgen.metrics import LoadgenMetrics
from loadgen.report import EXIT_CONFIG, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, print_summary, summary_csv
from loadgen.runner import Experiment, run_worker
from loadgen.safety import check_scenario
from ticketero_settings import host_port

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

DESCRIPTION = """\
Load generator and fault injector for Ticketero.

A scenario file (YAML, see loadgen/scenarios/) describes the target, the workload (closed virtual users,
open arrival rate, burst or contention), request mix, thresholds, and a chaos experiment around the load:
setup, steady-state probes, timed fault actions, settle, verify, and rollbacks that always run.
"""

EPILOG = f"""\
settings are resolved in this order (later wins):
  scenario file  →  LOADGEN_* environment variables  →  command-line flags
  e.g. LOADGEN_TARGET, LOADGEN_RATE, LOADGEN_DURATION, LOADGEN_METRICS_PORT, LOADGEN_DATABASE_DSN,
  LOADGEN_AMQP_URL, LOADGEN_SERVICE_CONTROL, LOADGEN_ALLOW_TARGETS (comma separated); each flag below
  names its variable.
  Durations: 500ms, 2s, 1m30s, 1h or a number of seconds.

safety: a target (or probe URL) outside 127.0.0.0/8, ::1 and localhost is refused (exit 2) unless its host
is listed in allow_targets. Every run is bounded by its duration/schedule and stops by itself.

metrics: the loadgen_* series of docs/metrics.md are served on --metrics-port (default 9646; 0 disables)
during the run and for --linger after it. With --processes N, worker i serves on port + i.

https: certificates and host names are checked against the system's CAs; for a private CA set
SSL_CERT_FILE=/path/to/ca.pem (OpenSSL's variable, also followed by probes and http actions).

exit codes:
  0   run passed (steady state held, thresholds met)
  1   an action failed, or the run hit an unexpected error (outcome "internal error" when it was inside
      the load engine or a recorder: counted in loadgen_internal_errors_total, the load stops)
  2   invalid scenario or settings, or a target refused by the allow-list (nothing was sent)
  97  the steady-state hypothesis did not hold (before or after the load)
  99  a threshold failed (as k6 does)
  130 interrupted by SIGINT/SIGTERM (rollbacks were run)

shipped scenarios: {SCENARIO_DIR}
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadgen",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run one scenario",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("scenario", help="scenario file (YAML); a bare name looks in the shipped scenarios")
    OPTIONS.add_arguments(run, only=[o.name for o in OPTIONS if o.name != "allow_targets"])
    allow = OPTIONS["allow_targets"]
    run.add_argument(allow.flag, dest=allow.name, action="append", help=OPTIONS.help_text(allow))
    run.add_argument(
        "--quiet", action="store_true", help="no progress or phase lines (summary still printed)"
    )
    # internal: how the coordinating process starts its workers
    run.add_argument("--worker-index", dest="worker_index", type=int, help=argparse.SUPPRESS)
    run.add_argument("--worker-count", dest="worker_count", type=int, help=argparse.SUPPRESS)
    run.add_argument("--raw-json", dest="raw_json", help=argparse.SUPPRESS)

    proxy = commands.add_parser(
        "proxy",
        help="run a fault proxy that outlives scenario runs, driven over HTTP",
        description=(
            "Forward TCP from --listen to --target until SIGINT/SIGTERM. Scenarios drive it with "
            "proxies: [{name: db, control: http://HOST:PORT}] and proxy actions (cut, restore, latency); by hand: "
            "curl -X POST http://HOST:PORT/cut | /restore | '/latency?seconds=0.2', GET /status. "
            "Start it before the service so the service connects through it from the start."
        ),
    )
    proxy.add_argument("--listen", required=True, help="host:port to accept connections on")
    proxy.add_argument("--target", required=True, help="host:port of the dependency")
    proxy.add_argument("--control", required=True, help="host:port of the HTTP control API")

    validate = commands.add_parser(
        "validate", help="check scenario files without running them (exit 2 on the first problem file)"
    )
    validate.add_argument("files", nargs="*", help="scenario files (default: every shipped scenario)")
    return parser


def resolve_path(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    shipped = SCENARIO_DIR / f"{name}.yml"
    return shipped if shipped.exists() else path


def cmd_validate(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files] or sorted(SCENARIO_DIR.glob("*.yml"))
    status = 0
    for path in files:
        try:
            scenario = load_scenario(resolve_path(str(path)))
            check_scenario(scenario)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            status = EXIT_CONFIG
            continue
        print(f"ok: {path} ({scenario.name}, {scenario.workload.model} model)")
    return status


def worker_argv(args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "loadgen", "run", str(resolve_path(args.scenario))]
    for option in OPTIONS:
        value = getattr(args, option.name, None)
        if option.name == "allow_targets":
            for host in value or []:
                argv += [option.flag, host]
        elif value is not None and option.name not in ("summary_json", "summary_csv", "processes"):
            argv += [option.flag, str(value)]
    if args.quiet:
        argv.append("--quiet")
    return argv


def cmd_run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(resolve_path(args.scenario), overrides(args))
        check_scenario(scenario)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if args.worker_index is not None:
        return eventloop.run(_worker_main(scenario, args))
    return eventloop.run(_main(scenario, args))


def _serve_metrics(metrics: LoadgenMetrics, port: int) -> None:
    try:
        metrics.serve(port)
    except OSError as error:
        raise ConfigError(f"metrics_port: cannot listen on port {port}: {error.strerror or error}") from error


async def _linger(seconds: float) -> None:
    if seconds <= 0:
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    _write_text(path, json.dumps(document, indent=2, default=str) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Written to a temporary name, then renamed: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


async def _main(scenario: Scenario, args: argparse.Namespace) -> int:
    metrics = LoadgenMetrics()
    if scenario.processes == 1 and scenario.metrics_port:
        try:
            _serve_metrics(metrics, scenario.metrics_port)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_CONFIG
    experiment = Experiment(scenario, metrics, worker_argv=worker_argv(args), quiet=args.quiet)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, experiment.interrupt, signum)
    try:
        result = await experiment.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if result["exit_code"] == EXIT_INTERRUPTED and experiment.interrupted == signal.SIGTERM:
        result["exit_code"] = 128 + signal.SIGTERM
    print_summary(result)
    if scenario.summary_json:
        _write_json(Path(scenario.summary_json), result)
    if scenario.summary_csv:
        _write_text(Path(scenario.summary_csv), summary_csv(result))
    if scenario.processes > 1:
        await experiment.wait_for_workers()  # they serve the metrics and linger themselves
    else:
        await _linger(scenario.linger if not experiment.interrupted else 0)
    metrics.shutdown()
    return int(result["exit_code"])


async def _worker_main(scenario: Scenario, args: argparse.Namespace) -> int:
    metrics = LoadgenMetrics()
    index, count = args.worker_index, args.worker_count or 1
    if scenario.metrics_port:
        try:
            _serve_metrics(metrics, scenario.metrics_port + index)
        except ConfigError as error:
            print(f"error: worker {index}: {error}", file=sys.stderr)
            return EXIT_CONFIG
    raw = await run_worker(scenario, index, count, metrics, args.quiet)
    if args.raw_json:
        _write_json(Path(args.raw_json), raw)
    await _linger(scenario.linger)
    metrics.shutdown()
    return EXIT_ERROR if raw["internal_errors"] else EXIT_OK


def _host_port(text: str, flag: str) -> tuple[str, int]:
    kind = host_port() if flag == "--target" else host_port("pick a free port")
    try:
        return kind(text)
    except ValueError as error:
        raise ConfigError(f"flag {flag}: expected {error}, got {text!r}") from None


def cmd_proxy(args: argparse.Namespace) -> int:
    from loadgen.proxy import run_standalone

    try:
        listen = _host_port(args.listen, "--listen")
        target = _host_port(args.target, "--target")
        control = _host_port(args.control, "--control")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        eventloop.run(run_standalone(listen, target, control))
    except OSError as error:
        print(f"error: cannot listen: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.command == "validate":
        return cmd_validate(args)
    if args.command == "proxy":
        return cmd_proxy(args)
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
