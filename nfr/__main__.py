"""``ticketero-nfr`` / ``python -m nfr``: judge an external service (``run``), the demo job on the reference
service (``demo``) and the stand-alone verdict (``verdict``, also on a run's kept snapshot).

``compare`` and ``index`` read results directories (see ``nfr/compare.py``, ``nfr/report_index.py``).

Exit codes: 0 every NFR passed, 1 at least one NFR failed or had no data or the scenario itself failed (an
action, a rollback, a probe or a threshold of the load generator), 2 bad input (unknown scenario,
bad option, unreadable file, unreachable Prometheus), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import ticketero_settings as core
from nfr.catalogue import NFR_IDS
from nfr.promclient import HttpOptions, PrometheusClient, PrometheusQueryError
from nfr.report_text import console_table
from nfr.reports import write_reports
from ticketero_settings import SettingsError

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_time(text: str, now: float | None = None) -> float:
    """Unix seconds, RFC 3339 (``2026-11-23T18:00:00Z``), ``now`` or ``now-10m``."""
    now = time.time() if now is None else now
    text = text.strip()
    match = re.fullmatch(r"now(?:\s*([-+])\s*(\S+))?", text)
    if match:
        if not match.group(1):
            return now
        delta = core.parse_duration(match.group(2))
        return now - delta if match.group(1) == "-" else now + delta
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected unix seconds, RFC 3339 (2026-11-23T18:00:00Z), 'now' or 'now-10m'"
        ) from None


def _duration(text: str) -> float:
    try:
        return core.parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {err}") from err


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number > 0")
    return value


STRICT_HELP = "count an NFR the window could not judge (NOT JUDGED) as a failure"
EXERCISED_HELP = (
    "count a PASS the run did not put to the test (PASS (not exercised): too few requests for the target, "
    "no worker died, demand below the throughput target...) as a failure; a scenario's 'exercises: [RNF-05]' "
    "does the same for the NFRs it names"
)


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'Name: value', e.g. 'X-Scope-OrgID: tenant-1'")
    return name.strip(), value.strip()


def add_prometheus_access(parser: argparse.ArgumentParser) -> None:
    """How to reach a secured Prometheus (or Mimir, Cortex, Thanos): the knobs of Prometheus's http_config."""
    group = parser.add_argument_group("secured Prometheus (secrets are read from files)")
    group.add_argument(
        "--prometheus-bearer-token-file", type=Path, metavar="FILE", help="send this bearer token"
    )
    group.add_argument("--prometheus-user", metavar="USER", help="basic auth user")
    group.add_argument(
        "--prometheus-password-file", type=Path, metavar="FILE", help="basic auth password, read from FILE"
    )
    group.add_argument(
        "--prometheus-ca-file", type=Path, metavar="FILE", help="CA that signed its certificate"
    )
    group.add_argument("--prometheus-cert-file", type=Path, metavar="FILE", help="client certificate (mTLS)")
    group.add_argument("--prometheus-key-file", type=Path, metavar="FILE", help="client certificate's key")
    group.add_argument("--prometheus-server-name", metavar="NAME", help="TLS server name to send and verify")
    group.add_argument(
        "--prometheus-insecure-skip-verify", action="store_true", help="do not verify its certificate (tests)"
    )
    group.add_argument(
        "--prometheus-header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra header on every request, e.g. 'X-Scope-OrgID: tenant-1' (Mimir, Cortex); repeatable",
    )
    group.add_argument(
        "--prometheus-path-prefix", default="", metavar="PATH", help="in front of /api/v1, e.g. /prometheus"
    )


def http_options(args: argparse.Namespace) -> HttpOptions:
    return HttpOptions(
        bearer_token_file=args.prometheus_bearer_token_file,
        basic_auth_user=args.prometheus_user,
        basic_auth_password_file=args.prometheus_password_file,
        ca_file=args.prometheus_ca_file,
        cert_file=args.prometheus_cert_file,
        key_file=args.prometheus_key_file,
        server_name=args.prometheus_server_name,
        insecure_skip_verify=args.prometheus_insecure_skip_verify,
        headers=dict(args.prometheus_header),
        path_prefix=args.prometheus_path_prefix,
    )


SERVICE_DEST = "service__"
# What `run` is given to reach the external service's own database and broker (a variable keeps a DSN with a
# password out of `ps`).
RUN_OPTIONS = core.Table(
    "TICKETERO_NFR_RUN_",
    (
        core.Option("database_dsn", core.dsn(empty=False),
                    "PostgreSQL DSN of the service's database: starts the exporter, allows sql steps",
                    aliases=("--dsn",), secret=True),
        core.Option("amqp_url", core.url("amqp", "amqps", empty=False),
                    "its RabbitMQ: the exporter's queue figures, allows amqp steps", secret=True),
    ),
)  # fmt: skip


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """The reference service's own options, generated from its table (``ticketero.config.OPTIONS``) less the
    ones the stack sets: --workers-per-queue, --service-time, --faults, --no-recovery, ... are the service's
    flags, with its validation and help."""
    from nfr.stack import STACK_OWNED_SERVICE_OPTIONS
    from ticketero.config import OPTIONS

    group = parser.add_argument_group(
        "reference service options (flags of the service started for the run, which also reads its own "
        "TICKETERO_* variables from this environment; durations 500ms, 2s, 1m30s, 1h or seconds)"
    )
    passed = [o.name for o in OPTIONS if o.name not in STACK_OWNED_SERVICE_OPTIONS]
    OPTIONS.add_arguments(group, only=passed, dest_prefix=SERVICE_DEST)


def service_options(args: argparse.Namespace) -> dict[str, object]:
    """The service options given on the command line, checked by the service's table (SettingsError)."""
    from ticketero.config import OPTIONS

    return dict(OPTIONS.resolve(args, {}, dest_prefix=SERVICE_DEST).values)


def _version() -> str:
    from nfr import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketero-nfr",
        description=(
            "Prove Ticketero's NFRs (RNF-01..07) with the alerts that watch it: 'demo' runs a scenario on a "
            "local stack and judges it, 'verdict' judges any window on any Prometheus. An NFR FAILS when one "
            "of its alerts (label nfr) fired in the window plus a settle period, has NO DATA when its "
            "indicator series is missing (never a pass), is NOT JUDGED when the window is shorter than each "
            "of its alerts needs (RNF-07 needs 30 min: the soak), and PASSES otherwise — as PASS (not "
            "exercised) when the run did not put it to the test (too few requests for the target, no worker "
            "died, demand below the throughput target). A failed scenario fails the run whatever the alerts say."
        ),
        epilog=(
            "Exit codes: 0 every NFR the window could judge passed, 1 the scenario failed (action, rollback, "
            "probe, threshold) or an NFR failed or had no data (or, with "
            "--strict, was not judged), 2 bad input, 130 interrupted."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="judge an external service: start only what is missing, run a scenario, verdict, reports",
        description=(
            "Runs a scenario against TARGET and judges it from Prometheus's alerts. Starts only what it was "
            "not given: the exporter when --database-dsn is given, a private Prometheus (this repository's rules) "
            "unless --prometheus is given, and the load generator. Scrapes the target's own metrics when it "
            "serves them (/actuator/prometheus or /metrics, or --metrics-path). What is not available is said "
            "before the load; the NFRs it feeds are NO DATA, never PASS. A scenario that needs what was not "
            "given (database, broker, service control: 'needs:' or its sql/amqp/docker/command steps) is "
            "refused before any request, exit 2. A target outside 127.0.0.0/8 must be in the scenario's "
            "allow_targets (or LOADGEN_ALLOW_TARGETS)."
        ),
        epilog=(
            "examples: 'run --target http://10.0.0.5:8080' (PERF-01-HTTP, needs nothing but HTTP); "
            "'run --target URL --scenario PERF-01 --database-dsn postgresql://ro@db/ticketero' (with the exporter); "
            "'run --target URL --compress 60' (a short run). Reports and the TSDB snapshot: "
            "results/<run-id>/ or --results DIR."
        ),
    )
    run.add_argument("--target", required=True, help="base URL of the service under test")
    run.add_argument(
        "--scenario",
        default="PERF-01-HTTP",
        help="scenario id or YAML file (PERF-01-HTTP: PERF-01 over HTTP only)",
    )
    RUN_OPTIONS.add_arguments(run)
    run.add_argument(
        "--metrics-path", help="where the target serves its own metrics (default: look for them)"
    )
    run.add_argument(
        "--service-control",
        action="store_true",
        help="the scenario's docker/command steps can act on the target (stop, freeze, restart it)",
    )
    run.add_argument(
        "--prometheus",
        help="read this Prometheus instead of starting one; it must scrape the load generator "
        "(--loadgen-port) and have this repository's rules loaded",
    )
    run.add_argument(
        "--loadgen-port", type=int, default=0, help="the load generator's metrics port (default: a free one)"
    )
    run.add_argument(
        "--remote-write",
        action="append",
        default=[],
        metavar="URL",
        help="the private Prometheus also sends every series here (a long-term store); repeatable",
    )
    run.add_argument("--results", type=Path, help="reports and evidence go here (results/<run-id>)")
    _add_run_options(run)
    add_prometheus_access(run)

    demo = sub.add_parser(
        "demo",
        help="start the local stack, run a scenario, print the verdict, write reports, stop everything",
        description=(
            "Creates a database and a vhost of its own on the local PostgreSQL/RabbitMQ "
            "(TICKETERO_NFR_DATABASE_DSN, TICKETERO_NFR_AMQP_URL, TICKETERO_NFR_RABBIT_API), starts the reference "
            "service, the exporter (process backend on the service's pid) and Prometheus (Debian package) "
            "with the repository's rules and alerts, runs the scenario through the load generator, waits a "
            "settle period and judges the run. Everything it started is stopped on exit, error or Ctrl-C."
        ),
        epilog=(
            "examples: 'demo' (PERF-01, shipped timings, ~5 min); 'demo --compress 60' (same, alert time "
            "spans / 60); 'demo --compress 60 --faults slow-api' (RNF-02 must fail); "
            "'demo --scenario LOCAL-FREEZE --compress 60' (expected alerts fire and clear). "
            "Reports: results/<run-id>/NFR-TEST-RESULTS.md, junit.xml, results.json, report.html."
        ),
    )
    demo.add_argument(
        "--scenario",
        default="PERF-01",
        help="scenario id (file stem or name) in loadgen/scenarios or nfr/scenarios, or a YAML file (PERF-01)",
    )
    demo.add_argument(
        "--results", type=Path, default=Path("results"), help="reports go to DIR/<run-id>/ (results)"
    )
    _add_run_options(demo)
    add_service_options(demo)
    demo.add_argument(
        "--replicas",
        type=int,
        help="service replicas behind an HAProxy load balancer, which becomes the target "
        "(default: the scenario's replicas:, else 1)",
    )
    demo.add_argument(
        "--configuration",
        metavar="NAME",
        help="of a scenario with configurations: (SCAL-01), run only this one (default: each, then compare)",
    )

    verdict = sub.add_parser(
        "verdict",
        help="judge a time window from a Prometheus's alerts",
        description=(
            "Reads ALERTS{alertstate='firing'} over [start, end + settle] and each NFR's indicator series from "
            "PROMETHEUS. Works against any Prometheus that loaded the repository's alerts (local, compose, "
            "staging). Prints the table; --results DIR also writes the reports."
        ),
    )
    source = verdict.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", help="base URL, e.g. http://127.0.0.1:9090")
    source.add_argument(
        "--snapshot",
        type=Path,
        metavar="DIR",
        help="a run's evidence directory (results/<run-id>/evidence): starts a Prometheus on a copy of its "
        "TSDB snapshot with the rule files kept beside it and judges the run's window again",
    )
    verdict.add_argument(
        "--rules-from",
        type=Path,
        metavar="DIR",
        help="read the alerting and recording rules from these rule files instead of the Prometheus (a "
        "long-term store that received the run's series and ALERTS by remote write but evaluates nothing)",
    )
    verdict.add_argument("--start", type=parse_time, help="window start: unix s, RFC 3339, now-10m")
    verdict.add_argument("--end", type=parse_time, help="end of the load (same forms)")
    verdict.add_argument(
        "--settle",
        type=_duration,
        default=None,
        help="extra time after --end to watch alerts (default: derived from the rules the Prometheus has "
        "loaded — the longest time from a fault to its alert firing, docs/timing.md; with --snapshot the "
        "run's own)",
    )
    verdict.add_argument(
        "--expect", nargs="*", default=[], metavar="ALERT", help="alerts expected to fire and clear"
    )
    verdict.add_argument(
        "--rate-window", default=None, help="rate() window of the indicators (default: 4 scrapes, >= 1m)"
    )
    verdict.add_argument(
        "--results", type=Path, help="write NFR-TEST-RESULTS.md, junit.xml, results.json, report.html here"
    )
    verdict.add_argument("--scenario", default="", help="scenario name to print in the reports")
    verdict.add_argument(
        "--scenario-summary",
        type=Path,
        metavar="FILE",
        help="the load generator's --summary-json of the run: a failed scenario fails the run",
    )
    verdict.add_argument("--strict", action="store_true", help=STRICT_HELP)
    verdict.add_argument("--require-exercised", action="store_true", help=EXERCISED_HELP)
    verdict.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help='the mixin config the rules were built with (jobs, selector such as env="staging"): judges only '
        "that environment's alerts and series in a shared Prometheus",
    )
    verdict.add_argument(
        "--wait",
        action="store_true",
        help="when end + settle lies in the future, wait for it (printing the time left) instead of refusing "
        "with exit 2; a window is never judged before its end",
    )
    verdict.add_argument("--json", action="store_true", help="print the verdict as JSON instead of the table")
    verdict.add_argument(
        "--fault-at", type=parse_time, help="when a fault was injected: reports fault -> first alert per NFR"
    )
    add_prometheus_access(verdict)
    compare = sub.add_parser(
        "compare",
        help="compare a candidate run with a baseline run (results directories): exit 1 on a regression",
        description=(
            "Reads results.json of BASELINE and CANDIDATE (results directories of two runs, e.g. SCAL-01 with "
            "3 and with 6 workers) and prints per-NFR and per-endpoint deltas as markdown. A regression: an NFR "
            "that passed and now fails or has no data, a candidate run that fails where the baseline passed, "
            "or a figure past its allowance."
        ),
        epilog="Exit codes: 0 no regression, 1 regression, 2 bad input (missing or unreadable results.json).",
    )
    compare.add_argument("baseline", type=Path, help="results directory of the baseline run")
    compare.add_argument("candidate", type=Path, help="results directory of the candidate run")
    compare.add_argument(
        "--max-p95-increase", type=_share, default="20%", metavar="PCT",
        help="allowed relative increase of the exact p95 latency, per endpoint and overall (20%%)",
    )  # fmt: skip
    compare.add_argument(
        "--max-throughput-drop", type=_share, default="10%", metavar="PCT",
        help="allowed relative drop of the throughput under load (10%%)",
    )  # fmt: skip
    compare.add_argument(
        "--max-error-rate-increase", type=_share, default="0.1%", metavar="PCT",
        help="allowed increase of the error rate, in percentage points (0.1%%)",
    )  # fmt: skip
    compare.add_argument("--markdown", type=Path, metavar="FILE", help="also write the markdown here")
    compare.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML page here")

    index = sub.add_parser(
        "index",
        help="write DIR/index.html: every run in DIR with its verdict and the trend of its key figures",
    )
    index.add_argument(
        "dir", nargs="?", type=Path, default=Path("results"), help="results directory (results)"
    )
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by run and demo (one job underneath)."""
    parser.add_argument(
        "--compress", type=float, default=1.0, metavar="FACTOR",
        help="divide every rule for:/range/offset by FACTOR (floor: 4 scrape intervals) for short runs (1)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the stack up after the verdict, until Ctrl-C"
    )
    parser.add_argument("--run-id", default=None, help="name of the run (default: UTC time + random suffix)")
    parser.add_argument("--duration", type=_duration, help="override the scenario's load duration (e.g. 60s)")
    parser.add_argument("--rate", type=_positive, help="override the scenario's arrival rate (requests/s)")
    parser.add_argument(
        "--settle",
        type=_duration,
        help="wait after the load before judging (default: derived from the rules in use, after --compress: the "
        "longest time from a fault to its alert firing, docs/timing.md; >= 10 scrapes)",
    )
    parser.add_argument(
        "--scrape-interval", type=_duration, help="scrape and evaluation interval (5s; 1s when compressed)"
    )
    parser.add_argument(
        "--expect", nargs="*", default=[], metavar="ALERT", help="alerts this run expects to fire and clear"
    )
    parser.add_argument("--strict", action="store_true", help=STRICT_HELP)
    parser.add_argument("--require-exercised", action="store_true", help=EXERCISED_HELP)


def _share(text: str) -> float:
    from nfr.compare import parse_share

    try:
        return parse_share(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a percentage like 20% or 0.5%") from None


def _cmd_compare(args: argparse.Namespace) -> int:
    from nfr.compare import Allowances, CompareError, compare, html_page, load_run, markdown

    try:
        baseline, candidate = load_run(args.baseline), load_run(args.candidate)
    except CompareError as err:
        print(f"ticketero-nfr compare: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = compare(
        baseline,
        candidate,
        Allowances(args.max_p95_increase, args.max_throughput_drop, args.max_error_rate_increase),
    )
    text = markdown(result)
    print(text, end="")
    try:
        if args.markdown:
            args.markdown.write_text(text, encoding="utf-8")
        if args.html:
            args.html.write_text(html_page(result), encoding="utf-8")
    except OSError as err:
        print(f"ticketero-nfr compare: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FAIL if result.regressions else EXIT_PASS


def _cmd_index(args: argparse.Namespace) -> int:
    from nfr.report_index import write_index

    if not args.dir.is_dir():
        print(f"ticketero-nfr index: {args.dir}: not a directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(write_index(args.dir))
    return EXIT_PASS


def _cmd_verdict(args: argparse.Namespace) -> int:
    try:
        http = http_options(args)
    except ValueError as err:
        print(f"ticketero-nfr verdict: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.snapshot is not None:
        return _cmd_verdict_snapshot(args)
    if args.start is None or args.end is None:
        print("ticketero-nfr verdict: --start and --end are needed with --prometheus", file=sys.stderr)
        return EXIT_BAD_INPUT
    rule_files = None
    if args.rules_from is not None:
        rule_files = sorted(args.rules_from.glob("*.yml"))
        if not rule_files:
            print(
                f"ticketero-nfr verdict: --rules-from {args.rules_from}: no *.yml rule file", file=sys.stderr
            )
            return EXIT_BAD_INPUT
    client = PrometheusClient(args.prometheus, http=http, rule_files=rule_files)
    if args.settle is None:
        from nfr.timing import loaded_alert_delays, settle_for

        try:
            scrape, evaluation = client.config_intervals()
            args.settle, why = settle_for(
                loaded_alert_delays(client.rules()), scrape, evaluation, args.end - args.start
            )
        except PrometheusQueryError as err:
            print(f"ticketero-nfr verdict: cannot read the rules to derive --settle: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"ticketero-nfr verdict: settle {args.settle:g}s ({why})", file=sys.stderr)
    return _judge_and_report(args, client)


def _cmd_verdict_snapshot(args: argparse.Namespace) -> int:
    """Judge a kept run again: a Prometheus on a copy of its snapshot, the rule files it evaluated."""
    import shutil
    import tempfile

    import yaml

    from nfr.prometheus import PrometheusError, PrometheusServer, render_config
    from nfr.promql import format_duration

    evidence = args.snapshot
    meta_path = evidence / "evidence.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        print(f"ticketero-nfr verdict: --snapshot {evidence}: no evidence.json ({err})", file=sys.stderr)
        return EXIT_BAD_INPUT
    rule_files = sorted((evidence / "rules").glob("*.yml"))
    if not (evidence / "tsdb").is_dir() or not rule_files:
        print(
            f"ticketero-nfr verdict: --snapshot {evidence}: expected tsdb/ and rules/*.yml", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    args.start = meta["start"] if args.start is None else args.start
    args.end = meta["end"] if args.end is None else args.end
    args.settle = float(meta["settle"]) if args.settle is None else args.settle
    args.rate_window = args.rate_window or meta.get("rate_window")
    args.expect = args.expect or list(meta.get("expected") or [])
    args.scenario = args.scenario or str(meta.get("scenario") or "")
    work = Path(tempfile.mkdtemp(prefix="nfr-snapshot-"))
    try:
        # A copy: Prometheus writes to its storage (WAL, compaction); the kept evidence stays as it was.
        shutil.copytree(evidence / "tsdb", work / "data" / "tsdb")
        interval = format_duration(float(meta.get("scrape_interval") or 5.0))
        # The rules are loaded for their definitions only: an evaluation interval of a year means none
        # runs while the verdict reads the run's own ALERTS from the snapshot.
        rules_copy = work / "rules"
        rules_copy.mkdir()
        for rule_file in rule_files:  # a group's own interval would evaluate it: none runs on evidence
            document = yaml.safe_load(rule_file.read_text()) or {}
            for group in document.get("groups") or []:
                group["interval"] = "365d"
            (rules_copy / rule_file.name).write_text(yaml.safe_dump(document, sort_keys=False))
        config = render_config(
            work / "prometheus.yml",
            {},
            rule_files=sorted(rules_copy.glob("*.yml")),
            scrape_interval=interval,
            evaluation_interval="365d",
        )
        server = PrometheusServer(
            config, work / "data", extra_args=["--storage.tsdb.retention.time=100y"], start_timeout=60
        )
        try:
            server.start()
        except PrometheusError as err:
            print(f"ticketero-nfr verdict: Prometheus on {evidence}: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            # Step = the run's scrape interval (the restored config says a year for evaluations).
            return _judge_and_report(args, server, step=float(meta.get("scrape_interval") or 5.0))
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _judge_and_report(args: argparse.Namespace, client: PrometheusClient, step: float | None = None) -> int:
    from nfr.promql import format_duration
    from nfr.report_text import json_report
    from nfr.verdict import ScenarioOutcome, WindowNotOver, compute_verdict

    mixin_config = None
    if args.config is not None:
        from nfr.mixin.config import ConfigError, load_config

        try:
            mixin_config = load_config(args.config)
        except ConfigError as err:
            print(f"ticketero-nfr verdict: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
    outcome = None
    if args.scenario_summary is not None:
        try:
            summary = json.loads(args.scenario_summary.read_text())
        except (OSError, ValueError) as err:
            print(
                f"ticketero-nfr verdict: --scenario-summary {args.scenario_summary}: {err}", file=sys.stderr
            )
            return EXIT_BAD_INPUT
        if not isinstance(summary, dict) or "outcome" not in summary:
            print(
                f"ticketero-nfr verdict: --scenario-summary {args.scenario_summary}: expected the load "
                "generator's summary JSON (an object with 'outcome' and 'exit_code')",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        outcome = ScenarioOutcome.from_summary(summary)
        args.scenario = args.scenario or str(summary.get("scenario") or "")
    if args.end <= args.start:
        print(
            f"ticketero-nfr verdict: --end must be after --start ({args.start} >= {args.end})",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    window_end = args.end + args.settle
    if window_end > time.time():
        if not args.wait:
            print(
                f"ticketero-nfr verdict: the window ends (end + settle) {window_end - time.time():.0f} s from now; "
                "alerts may still fire, so it cannot be judged yet (add --wait to wait for it)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        _wait_until(window_end, client)
    try:
        window = args.rate_window
        scrape = step
        if window is None or scrape is None:
            configured, _ = client.config_intervals()
            scrape = scrape or configured
            window = window or format_duration(max(60.0, 4 * scrape))
        result = compute_verdict(
            client,
            args.start,
            args.end,
            settle=args.settle,
            expected=args.expect,
            rate_window=window,
            step=scrape,
            strict=args.strict,
            scenario_outcome=outcome,
            config=mixin_config,
            require_exercised=NFR_IDS if args.require_exercised else (),
        )
    except (PrometheusQueryError, WindowNotOver) as err:
        print(f"ticketero-nfr verdict: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result.scenario = args.scenario
    extra = {}
    if args.fault_at is not None:
        extra = {
            "fault_started_at": args.fault_at,
            "fault_to_alert_seconds": {
                r.nfr: round(r.first_fired - args.fault_at, 1)
                for r in result.results
                if r.first_fired is not None
            },
        }
        print(f"fault -> first alert: {extra['fault_to_alert_seconds']}", file=sys.stderr)
    print(json_report(result, extra) if args.json else console_table(result))
    if args.results:
        paths = write_reports(result, args.results, extra)
        print(f"reports: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return EXIT_PASS if result.passed else EXIT_FAIL


def _wait_until(window_end: float, client: PrometheusClient, every: float = 10.0) -> None:
    """Sleep until ``window_end`` plus one evaluation interval (so the last evaluation has landed),
    printing the time left."""
    try:
        _, evaluation = client.config_intervals()
    except PrometheusQueryError:
        evaluation = 1.0
    deadline = window_end + evaluation
    while (left := deadline - time.time()) > 0:
        print(f"ticketero-nfr verdict: waiting for the window to end: {left:.0f} s left", file=sys.stderr)
        time.sleep(min(every, left))


def _cmd_demo(args: argparse.Namespace) -> int:
    return _run_job(args, "demo")


def _cmd_run(args: argparse.Namespace) -> int:
    return _run_job(args, "run")


def _run_job(args: argparse.Namespace, command: str) -> int:
    """demo and run: one job; run names an external target and what else it was given."""
    from nfr.demo import BadInput, DemoOptions, run_job
    from nfr.processes import ProcessError
    from nfr.stack import ExternalTarget, new_run_id

    external: dict[str, object] = {}
    if command == "run":
        if not args.target.startswith(("http://", "https://")):
            print(f"ticketero-nfr run: --target {args.target!r}: expected an http(s) URL", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            http = http_options(args)
        except ValueError as err:
            print(f"ticketero-nfr run: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            given = RUN_OPTIONS.resolve(args, os.environ).values
        except SettingsError as err:
            print(f"ticketero-nfr run: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.prometheus and args.remote_write:
            print(
                "ticketero-nfr run: --remote-write is for the private Prometheus, not --prometheus",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        external = {
            "external": ExternalTarget(
                args.target.rstrip("/"), given.get("database_dsn"), given.get("amqp_url")
            ),
            "metrics_path": args.metrics_path,
            "service_control": args.service_control,
            "prometheus_url": args.prometheus,
            "prometheus_http": http,
            "remote_write": tuple(args.remote_write),
            "loadgen_port": args.loadgen_port,
            "results_dir": args.results,
        }
    else:
        try:
            service = service_options(args)
        except SettingsError as err:
            print(f"ticketero-nfr {command}: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        external = {
            "service": service,
            "replicas": args.replicas,
            "results": args.results,
            "configuration": args.configuration,
        }
    options = DemoOptions(
        scenario=args.scenario,
        compress=args.compress,
        keep_running=args.keep_running,
        run_id=args.run_id or new_run_id(),
        duration=args.duration,
        rate=args.rate,
        settle=args.settle,
        scrape_interval=args.scrape_interval,
        expect=tuple(args.expect),
        strict=args.strict,
        require_exercised=args.require_exercised,
        **external,  # type: ignore[arg-type]
    )
    try:
        result = run_job(options)
    except BadInput as err:
        print(f"ticketero-nfr {command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProcessError as err:
        print(f"ticketero-nfr {command}: the stack did not start: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PrometheusQueryError as err:  # refused credentials, TLS, unreachable: never a verdict
        print(f"ticketero-nfr {command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_PASS if result.passed else EXIT_FAIL


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "verdict":
            return _cmd_verdict(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "index":
            return _cmd_index(args)
        return _cmd_demo(args)
    except KeyboardInterrupt:
        print("ticketero-nfr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
