"""The run job: start what is missing, run one scenario, wait a settle period, judge, report, clean up.

``nfr demo`` starts the reference service as the target; ``nfr run --target URL`` judges an external one
(``DemoOptions.external``) and starts only what it was not given (see ``nfr.run``). One path for both:
needs checked → stack up → load → settle → verdict → evidence (TSDB snapshot) → reports → stop. The stack
is stopped in every case (error, Ctrl-C, SIGTERM) unless ``keep_running`` asks to leave it up for a look,
and then it is stopped on Ctrl-C.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from nfr.catalogue import NFR_IDS
from nfr.compare import Comparison, compare, html_page, load_run, markdown
from nfr.processes import free_port
from nfr.promclient import HttpOptions, PrometheusAuthError, PrometheusClient, PrometheusQueryError
from nfr.prometheus import default_rule_files
from nfr.report_text import console_table, fmt_value
from nfr.reports import write_reports
from nfr.rulescale import RuleScaleError, default_floor
from nfr.run import (
    NEEDS,
    NeedsError,
    availability_lines,
    check_reachable,
    declared_needs,
    drop_absent_alerts,
    find_metrics_path,
    inferred_needs,
    missing_needs,
    parts,
)
from nfr.stack import (
    STACK_OWNED_SERVICE_OPTIONS,
    DependencyProxy,
    ExternalTarget,
    LocalStack,
    StackSettings,
    new_run_id,
)
from nfr.timing import AlertDelay, alert_delays, settle_for
from nfr.verdict import ScenarioOutcome, Verdict, compute_verdict
from ticketero.config import OPTIONS as SERVICE_OPTIONS
from ticketero_settings import SettingsError, as_text

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages in a wheel
SCENARIO_DIRS = (PACKAGE_ROOT / "loadgen" / "scenarios", PACKAGE_ROOT / "nfr" / "scenarios")
EVIDENCE_DIR = "evidence"  # under the results: TSDB snapshot, rule files, window (nfr verdict --snapshot)
EXPECT_KEY = "expect_alerts"
EXERCISES_KEY = "exercises"
REPLICAS_KEY = "replicas"
CONFIGURATIONS_KEY = "configurations"
DATABASE_PROXY_NAMES = ("database", "db", "postgres", "postgresql")
BROKER_PROXY_NAMES = ("broker", "rabbitmq", "amqp")
MAX_REPLICAS = 16


class BadInput(ValueError):
    """A scenario or option the demo cannot use (exit code 2)."""


@dataclass
class DemoOptions:
    scenario: str = "PERF-01"
    compress: float = 1.0
    keep_running: bool = False
    results: Path = Path("results")
    run_id: str = field(default_factory=new_run_id)
    duration: float | None = None
    rate: float | None = None
    settle: float | None = None
    scrape_interval: float | None = None
    expect: tuple[str, ...] = ()
    # The reference service's own options, by the names of its table (ticketero.config.OPTIONS), checked
    # by that table and handed on as its flags: {"faults": "slow-api", "service_time": 0.2, "recovery": False}.
    service: dict[str, Any] = field(default_factory=dict)
    replicas: int | None = None  # service replicas behind the balancer (default: the scenario's replicas:, 1)
    floor: float | None = None  # shortest compressed time span (default: 4 scrape intervals)
    strict: bool = False
    require_exercised: bool = False  # every NFR that passed must have been put to the test
    rule_files: list[Path] | None = None
    progress_interval: float = 5.0
    external: ExternalTarget | None = None  # judge this service instead of starting the reference one
    metrics_path: str | None = None  # the external target's own metrics path (None: look for one)
    service_control: bool = False  # the scenario's docker/command steps can act on the external target
    prometheus_url: str | None = None  # a Prometheus to read (it must scrape the load generator itself)
    prometheus_http: HttpOptions = field(default_factory=HttpOptions)
    remote_write: tuple[str, ...] = ()
    loadgen_port: int = 0
    results_dir: Path | None = None  # exactly this directory (default: results/<run-id>)
    configuration: str | None = None  # of a scenario with `configurations:`, run only this one
    keep_evidence: bool = True  # a TSDB snapshot of the private Prometheus under the results
    # Called after the settle period, before the verdict, with the stack still up and the load window
    # (start, end): lets a caller query the same Prometheus (dashboard checks, a second verdict).
    before_verdict: Callable[[LocalStack, float, float], None] | None = None

    @property
    def faults(self) -> tuple[str, ...]:
        """The service's fault switches this run turns on (names, as --faults writes them)."""
        return tuple(name for name in as_text(self.service.get("faults", "")).split(",") if name.strip())

    @property
    def effective_scrape(self) -> float:
        if self.scrape_interval is not None:
            return self.scrape_interval
        return 5.0 if self.compress <= 1 else 1.0

    def settle_after(
        self, load_seconds: float | None, delays: list[AlertDelay], scrape: float
    ) -> tuple[float, str]:
        """The settle period and why: the given one, or the longest time from a fault to its alert firing
        among the alerts of the rules in use (after compression) that can fire in a run this long
        (docs/timing.md); never under 10 scrapes. ``load_seconds`` None: among every alert (an upper bound)."""
        if self.settle is not None:
            return self.settle, "given"
        return settle_for(delays, scrape, scrape, load_seconds)


@dataclass
class DemoResult:
    verdict: Verdict
    reports: dict[str, Path]
    results_dir: Path
    extra: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.verdict.passed


@dataclass
class ConfigurationsResult:
    """A scenario with ``configurations:``: one run per configuration, each compared with the first."""

    runs: dict[str, DemoResult]  # by configuration name, in the scenario's order
    comparisons: dict[str, Comparison]  # by candidate configuration name, against the first
    reports: dict[str, Path]  # COMPARISON.md, compare.html
    results_dir: Path

    @property
    def passed(self) -> bool:
        """Every configuration passed (a comparison shows the difference; it does not decide)."""
        return all(run.passed for run in self.runs.values())


def resolve_scenario(name: str) -> Path:
    """A path to a scenario file, or a shipped scenario by id (``PERF-01`` → loadgen/scenarios/...)."""
    path = Path(name)
    if path.suffix in (".yml", ".yaml"):
        if not path.is_file():
            raise BadInput(f"scenario file {path} does not exist")
        return path
    wanted = name.lower()
    candidates = [c for d in SCENARIO_DIRS if d.is_dir() for c in sorted(d.glob("*.y*ml"))]
    # The scenario's own name first: PERF-01 is perf-01-sustained.yml, not perf-01-http.yml (PERF-01-HTTP).
    for candidate in candidates:
        if candidate.stem.lower() == wanted:
            return candidate
    for candidate in candidates:
        try:
            doc = yaml.safe_load(candidate.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and str(doc.get("name", "")).lower() == wanted:
            return candidate
    for candidate in candidates:
        stem = candidate.stem.lower()
        if stem.startswith(wanted + "-") or stem.startswith(wanted + "_"):
            return candidate
    known = ", ".join(c.stem for c in candidates) or "(none shipped yet)"
    raise BadInput(f"unknown scenario {name!r}: not a .yml file and not one of {known}")


@dataclass(frozen=True)
class Configuration:
    """One way of starting the service that a scenario with ``configurations:`` is run under."""

    name: str
    settings: dict[str, Any]  # the service's own options (ticketero.config.OPTIONS), by name


@dataclass(frozen=True)
class PreparedScenario:
    file: Path  # what the load generator runs
    expected: tuple[str, ...]  # alerts the scenario expects to fire and clear (fault scenarios)
    name: str
    exercises: tuple[str, ...]  # NFRs the scenario must put to the test, or the run fails
    needs: tuple[str, ...] = ()  # declared in needs:
    inferred_needs: dict[str, list[str]] = field(default_factory=dict)  # read off its steps
    replicas: int = 1  # service replicas the scenario runs against (replicas:)
    controls_broker: bool = False  # a service action stops/starts the broker: the stack puts a relay there
    configurations: tuple[Configuration, ...] = ()  # run once per configuration, then compared
    proxies: tuple[DependencyProxy, ...] = ()  # fault proxies the stack starts before the service


def _names(source: Path, doc: dict[str, Any], key: str, what: str) -> tuple[str, ...]:
    value = doc.pop(key, None) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
        raise BadInput(f"{source}: {key}: expected a list of {what}")
    return tuple(value)


def _configurations(source: Path, doc: dict[str, Any]) -> tuple[Configuration, ...]:
    """``configurations: [{name: workers-3, workers_per_queue: 3}, ...]``: at least two, unique names."""
    value = doc.pop(CONFIGURATIONS_KEY, None)
    if value is None:
        return ()
    allowed = ", ".join(o.name for o in SERVICE_OPTIONS if o.name not in STACK_OWNED_SERVICE_OPTIONS)
    if not isinstance(value, list) or len(value) < 2:
        raise BadInput(
            f"{source}: {CONFIGURATIONS_KEY}: expected a list of at least two configurations "
            f"(mappings with a name and the service's options), got {value!r}"
        )
    found: list[Configuration] = []
    for index, item in enumerate(value):
        where = f"{source}: {CONFIGURATIONS_KEY}[{index}]"
        if not isinstance(item, dict):
            raise BadInput(f"{where}: expected a mapping with a name and service options, got {item!r}")
        name = item.get("name")
        if (
            not isinstance(name, str)
            or not name.strip()
            or not name.replace("-", "").replace("_", "").isalnum()
        ):
            raise BadInput(f"{where}: name: expected a name of letters, digits, - and _, got {name!r}")
        if name in {c.name for c in found}:
            raise BadInput(f"{where}: name: {name!r} is already the name of another configuration")
        settings = {key: raw for key, raw in item.items() if key != "name"}
        owned = sorted(set(settings) & set(STACK_OWNED_SERVICE_OPTIONS))
        if owned:
            raise BadInput(f"{where}: {owned[0]}: set by the stack itself, not by a configuration")
        if not settings:
            raise BadInput(f"{where}: expected at least one of the service's options ({allowed})")
        try:  # the service's own option table checks them, as it would on its command line
            SERVICE_OPTIONS.check(settings, where)
        except SettingsError as err:
            raise BadInput(str(err)) from err
        found.append(Configuration(name, settings))
    return tuple(found)


def _plan_proxies(source: Path, doc: dict[str, Any]) -> tuple[DependencyProxy, ...]:
    """Each of the scenario's ``proxies:`` becomes a `loadgen proxy` the local stack starts in front of the
    run's own database or broker (on free ports), and the copy drives it through its control URL."""
    proxies = doc.get("proxies")
    if not proxies:
        return ()
    if not isinstance(proxies, list):
        raise BadInput(f"{source}: proxies: expected a list of proxies, got {proxies!r}")
    planned: list[DependencyProxy] = []
    for index, item in enumerate(proxies):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadInput(f"{source}: proxies[{index}]: expected a mapping with a name, got {item!r}")
        name = item["name"]
        target = str(item.get("target", ""))
        port = target.rpartition(":")[2]
        if port == "5432" or (not target and name.lower() in DATABASE_PROXY_NAMES):
            dependency = "database"
        elif port == "5672" or (not target and name.lower() in BROKER_PROXY_NAMES):
            dependency = "broker"
        else:
            raise BadInput(
                f"{source}: proxies[{index}] ({name}): cannot tell whether it stands before the database or "
                f"the broker: expected target HOST:5432 or HOST:5672, or a name among "
                f"{', '.join(DATABASE_PROXY_NAMES + BROKER_PROXY_NAMES)}"
            )
        if dependency in {p.dependency for p in planned}:
            raise BadInput(f"{source}: proxies[{index}] ({name}): a second proxy before the {dependency}")
        planned.append(DependencyProxy(name, dependency, free_port(), free_port()))
    doc["proxies"] = [{"name": p.name, "control": p.control_url} for p in planned]
    return tuple(planned)


# Prometheus hands target changes to its scrapers at most every 5 s (its discovery manager's throttle).
TARGET_UPDATE_SECONDS = 5.0


def first_scrape_wait(scrape: float) -> float:
    """How long after the load generator serves its metrics Prometheus has surely scraped them once: the
    target update (up to 5 s after the reload) plus two scrape intervals and a second to spare."""
    return TARGET_UPDATE_SECONDS + 2 * scrape + 1


def prepare_scenario(
    source: Path, run_dir: Path, first_scrape_wait: float = 0.0, local_proxies: bool = False
) -> PreparedScenario:
    """Read the keys the judge needs — ``expect_alerts`` (alerts a fault scenario expects) and ``exercises``
    (NFRs it must put to the test) — and hand the load generator a copy without them.

    ``first_scrape_wait`` > 0 ends the copy's setup with a pause that long, so Prometheus scrapes the
    load generator's series at 0 before the first request: a burst shorter than a scrape interval would
    otherwise never show as an increase.

    ``configurations`` (run the scenario once per way of starting the service, then compare) is read and
    removed too; ``local_proxies`` turns the scenario's ``proxies:`` into proxies the local stack starts."""
    try:
        doc = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BadInput(f"{source}: cannot read scenario: {err}") from err
    if not isinstance(doc, dict):
        raise BadInput(f"{source}: (top level): expected a mapping of scenario settings")
    name = str(doc.get("name") or source.stem)
    expected = _names(source, doc, EXPECT_KEY, "alert names")
    exercises = _names(source, doc, EXERCISES_KEY, "NFR ids")
    unknown = [nfr for nfr in exercises if nfr not in NFR_IDS]
    if unknown:
        raise BadInput(
            f"{source}: {EXERCISES_KEY}: {', '.join(unknown)}: expected NFR ids ({', '.join(NFR_IDS)})"
        )
    try:
        needs = declared_needs(source, doc)
    except NeedsError as err:
        raise BadInput(str(err)) from err
    inferred = inferred_needs(doc)
    replicas = doc.pop(REPLICAS_KEY, 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
        raise BadInput(f"{source}: {REPLICAS_KEY}: expected an integer 1..{MAX_REPLICAS}, got {replicas!r}")
    broker = _controls_broker(doc)
    configurations = _configurations(source, doc)
    proxies = _plan_proxies(source, doc) if local_proxies else ()
    setup = doc.get("setup") or []
    if first_scrape_wait > 0 and isinstance(setup, list):
        pause = {"name": "Prometheus scrapes the load generator once", "type": "sleep"}
        doc["setup"] = [*setup, {**pause, "duration": f"{first_scrape_wait:g}s"}]
    elif not expected and not exercises and replicas == 1 and not configurations and not proxies:
        return PreparedScenario(source, (), name, (), needs, inferred, replicas, broker)
    copy = run_dir / source.name
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return PreparedScenario(
        copy, expected, name, exercises, needs, inferred, replicas, broker, configurations, proxies
    )


def _controls_broker(doc: dict[str, Any]) -> bool:
    """Whether a ``service`` action of the scenario acts on the broker."""
    for key in ("setup", "method", "rollbacks"):
        steps = doc.get(key) or []
        if isinstance(steps, list) and any(
            isinstance(step, dict) and step.get("type") == "service" and step.get("service") == "broker"
            for step in steps
        ):
            return True
    return False


class Progress:
    """Phase lines and a live line of key figures (rewritten in place on a terminal)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr  # looked up now: a test may have replaced it
        self.t0 = time.monotonic()
        self.tty = self.stream.isatty()
        self._live = False

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.t0:6.1f}s"

    def phase(self, text: str) -> None:
        if self._live and self.tty:
            self.stream.write("\n")
        self._live = False
        self.stream.write(f"[{self.elapsed()}] == {text}\n")
        self.stream.flush()

    def live(self, text: str) -> None:
        line = f"[{self.elapsed()}]    {text}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self._live = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def live_figures(stack: LocalStack, window: str) -> str:
    """One line: completed/min, p95, errors, in flight, firing alerts — straight from Prometheus."""
    client = stack.client
    queries = {
        "done/min": f"sum(rate(ticketero_tickets_completed_total[{window}])) * 60",
        "p95": f"histogram_quantile(0.95, sum by (le) (rate(loadgen_request_duration_seconds_bucket[{window}])))",
        "errors": "sum(loadgen_request_failures_total) or vector(0)",
        "sent": "sum(loadgen_requests_total)",
    }
    parts = []
    for label, expr in queries.items():
        try:
            value = client.scalar(expr)
        except PrometheusQueryError:
            value = None
        parts.append(f"{label}={fmt_value(value, 's' if label == 'p95' else '')}")
    try:
        firing = sorted({a["labels"]["alertname"] for a in client.alerts() if a.get("state") == "firing"})
    except PrometheusQueryError:
        firing = []
    parts.append("firing=" + (",".join(firing) if firing else "none"))
    return "  ".join(parts)


def _wait_load(stack: LocalStack, options: DemoOptions, progress: Progress) -> tuple[float, float]:
    """Block while the load generator runs; return (load start, load end) wall-clock times."""
    assert stack.loadgen is not None
    start = stack.loadgen.started_at or time.time()
    seen_active = False
    next_live = time.monotonic()
    while True:
        active = stack.loadgen_sample("loadgen_run_active")
        if active == 1 and not seen_active:
            seen_active = True
        if (seen_active and active == 0) or not stack.loadgen.alive():
            break
        if time.monotonic() >= next_live:
            progress.live(live_figures(stack, stack.settings.rate_window))
            next_live = time.monotonic() + options.progress_interval
        time.sleep(0.25)
    return start, time.time()


def run_demo(options: DemoOptions, progress: Progress | None = None) -> DemoResult:
    """Run the whole job; returns the verdict and report paths (raises BadInput for bad input)."""
    progress = progress or Progress()
    if options.compress < 1:
        raise BadInput(f"--compress: expected a factor >= 1, got {options.compress:g}")
    owned = sorted(set(options.service) & set(STACK_OWNED_SERVICE_OPTIONS))
    if owned:
        raise BadInput(
            f"service option {owned[0]}: set by the stack itself (its database, vhost and free port)"
        )
    try:
        SERVICE_OPTIONS.check(options.service, "service option")
    except SettingsError as err:
        raise BadInput(str(err)) from err
    scenario_source = resolve_scenario(options.scenario)
    external = options.external
    if options.prometheus_url is not None and options.compress > 1:
        raise BadInput(
            "--compress applies to a private Prometheus's rules; a given --prometheus keeps its own"
        )
    scrape = options.effective_scrape
    if options.prometheus_url is not None and options.scrape_interval is None:
        scrape = _given_scrape_interval(options)
    work = Path(tempfile.mkdtemp(prefix=f"nfr-{options.run_id}-"))
    try:
        prepared = prepare_scenario(
            scenario_source, work, first_scrape_wait=first_scrape_wait(scrape), local_proxies=external is None
        )
        options = _configured(options, prepared, scenario_source)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    scenario_file, scenario_name = prepared.file, prepared.name
    if options.configuration is not None:
        scenario_name = f"{prepared.name} ({options.configuration})"
    available = set(NEEDS)
    if external is not None:  # refused before any request: the scenario cannot do what it says
        available = {"database"} if external.dsn else set()
        available |= {"broker"} if external.amqp_url else set()
        available |= {"service-control"} if options.service_control else set()
    missing = missing_needs(scenario_source, prepared.needs, prepared.inferred_needs, available)
    if missing:
        shutil.rmtree(work, ignore_errors=True)
        raise BadInput(missing)
    rule_files = options.rule_files
    run_parts = parts(exporter=True, service_metrics="/actuator/prometheus")
    service_metrics: str | None = None
    if external is not None:
        # The load generator's allow-list guards our own probes too: checked before the first request.
        refused = _loadgen_refuses(prepared.file, external.url, work)
        if refused:
            shutil.rmtree(work, ignore_errors=True)
            raise BadInput(refused)
        unreachable = check_reachable(external.url.rstrip("/") + external.health_path)
        if unreachable:
            shutil.rmtree(work, ignore_errors=True)
            raise BadInput(f"--target: {unreachable}")
        metrics_path, service_metrics = find_metrics_path(external.url, options.metrics_path)
        external = _with_metrics_path(external, metrics_path)
        if options.metrics_path and external.metrics_path is None:
            shutil.rmtree(work, ignore_errors=True)
            raise BadInput(
                f"--metrics-path: {external.url}{options.metrics_path} serves no Prometheus metrics"
            )
        run_parts = parts(exporter=bool(external.dsn), service_metrics=external.metrics_path)
        absent_jobs = [p.job for p in run_parts if not p.available]
        rule_files = drop_absent_alerts(rule_files or default_rule_files(), absent_jobs, work / "rules-run")
    replicas = options.replicas if options.replicas is not None else prepared.replicas
    if not 1 <= replicas <= MAX_REPLICAS:
        shutil.rmtree(work, ignore_errors=True)
        raise BadInput(f"--replicas: expected 1..{MAX_REPLICAS}, got {replicas}")
    if external is not None:  # the target is what it is (a scenario's replicas: describe it, start nothing)
        if options.replicas is not None and options.replicas > 1:
            shutil.rmtree(work, ignore_errors=True)
            raise BadInput(
                "--replicas: only the local stack starts replicas; an external --target is one URL"
            )
        replicas = 1
    expected = tuple(dict.fromkeys(prepared.expected + options.expect))
    must_exercise = NFR_IDS if options.require_exercised else prepared.exercises
    settings = StackSettings(
        run_dir=work,
        run_id=options.run_id,
        compress=options.compress,
        scrape_interval=scrape,
        rule_files=rule_files,
        service=options.service,
        external=external,
        prometheus_url=options.prometheus_url,
        prometheus_http=options.prometheus_http,
        remote_write=options.remote_write,
        loadgen_port=options.loadgen_port,
        floor=options.floor,
        replicas=replicas,
        broker_relay=prepared.controls_broker and external is None,
        proxies=prepared.proxies,
    )
    floor = options.floor if options.floor is not None else default_floor(scrape)
    try:
        delays = alert_delays(rule_files or default_rule_files(), options.compress, floor)
    except RuleScaleError as err:
        shutil.rmtree(work, ignore_errors=True)
        raise BadInput(str(err)) from err
    longest_settle, _ = options.settle_after(None, delays, scrape)
    results_dir = options.results_dir or Path(options.results) / options.run_id
    stack = LocalStack(settings)
    reported = False
    previous_term = signal.getsignal(signal.SIGTERM)
    in_main_thread = _in_main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        progress.phase(
            f"run {options.run_id}: scenario {scenario_name} ({scenario_source}), compress x{options.compress:g}, "
            f"scrape {settings.scrape_interval:g}s, faults {','.join(options.faults) or 'none'}"
        )
        if external is None:
            progress.phase("starting database, vhost, service, exporter, Prometheus")
        else:
            progress.phase(f"target {external.url}: what this run has (said before any load)")
            for line in availability_lines(run_parts, service_metrics=service_metrics):
                progress.phase("  " + line)
            if options.prometheus_url is not None:
                progress.phase(
                    f"  Prometheus {options.prometheus_url} is read, not configured: it must scrape the load "
                    f"generator on port {options.loadgen_port or '(a free port: give --loadgen-port)'} as job "
                    "loadgen, and the exporter and the service itself, with this repository's rules loaded"
                )
        stack.start()
        progress.phase(
            f"stack up: service {stack.service_url}, exporter "
            f"{':' + str(stack.exporter_port) if stack.exporter is not None else 'none'}, "
            f"Prometheus {stack.client.url}, {len(stack.rule_files)} rule files (work dir {work})"
        )
        progress.phase("load: running the scenario through the load generator")
        stack.start_loadgen(
            scenario_file,
            duration=options.duration,
            rate=options.rate,
            linger=longest_settle + 4 * settings.scrape_interval + 10,
        )
        load_start, load_end = _wait_load(stack, options, progress)
        settle, why = options.settle_after(load_end - load_start, delays, scrape)
        progress.phase(f"load finished after {load_end - load_start:.0f}s; settling for {settle:g}s ({why})")
        deadline = time.time() + settle + settings.scrape_interval
        while time.time() < deadline:
            progress.live(live_figures(stack, settings.rate_window))
            time.sleep(min(options.progress_interval, max(0.1, deadline - time.time())))
        if options.before_verdict is not None:
            options.before_verdict(stack, load_start, load_end)
        loadgen_summary = read_loadgen_summary(work)
        outcome = ScenarioOutcome.from_summary(
            loadgen_summary, stack.loadgen.returncode() if stack.loadgen is not None else None
        )
        if not outcome.ok:
            progress.phase(f"the scenario failed — the run fails whatever the alerts say: {outcome.headline}")
        progress.phase("verdict: reading alerts and indicators from Prometheus")
        verdict = compute_verdict(
            stack.client,
            load_start,
            load_end,
            settle=settle,
            expected=expected,
            rate_window=settings.rate_window,
            step=settings.scrape_interval,
            strict=options.strict,
            scenario_outcome=outcome,
            require_exercised=must_exercise,
        )
        verdict.run_id = options.run_id
        verdict.scenario = scenario_name
        extra = _extra(options, stack, verdict, load_start, loadgen_summary)
        if options.keep_evidence:
            extra["evidence"] = _keep_evidence(
                stack,
                results_dir / EVIDENCE_DIR,
                load_start,
                load_end,
                settle,
                expected,
                scenario_name,
                options,
            )
            if extra["evidence"].get("path"):
                progress.phase(
                    f"evidence: TSDB snapshot {extra['evidence']['path']} "
                    f"({extra['evidence']['bytes'] / 1e6:.1f} MB): nfr verdict --snapshot judges it again"
                )
        reports = write_reports(verdict, results_dir, extra)
        _copy_logs(work, results_dir)
        reported = True
        print(console_table(verdict), flush=True)
        progress.phase(f"reports written to {results_dir}/ ({', '.join(p.name for p in reports.values())})")
        if options.keep_running:
            progress.phase(
                f"--keep-running: Prometheus {stack.client.url}, service {stack.service_url}; Ctrl-C to stop"
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return DemoResult(verdict, reports, results_dir, extra)
    finally:
        progress.phase("stopping everything the run started")
        stack.stop()
        if reported:  # logs are in the results; on failure the work dir stays for a look
            shutil.rmtree(work, ignore_errors=True)
        else:
            progress.phase(f"work dir kept for inspection: {work}")
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_term)


def _configured(options: DemoOptions, prepared: PreparedScenario, source: Path) -> DemoOptions:
    """The options of one configuration of a scenario with ``configurations:`` (run_job runs them all)."""
    from dataclasses import replace

    names = [c.name for c in prepared.configurations]
    if options.configuration is None:
        if names:
            raise BadInput(
                f"{source}: declares {CONFIGURATIONS_KEY} ({', '.join(names)}): run it as a whole with "
                "run_job (ticketero-nfr demo) or choose one with --configuration"
            )
        return options
    chosen = [c for c in prepared.configurations if c.name == options.configuration]
    if not chosen:
        raise BadInput(
            f"--configuration {options.configuration}: {source} declares "
            + (f"{', '.join(names)}" if names else f"no {CONFIGURATIONS_KEY}")
        )
    if options.external is not None:
        raise BadInput(
            f"{source}: {CONFIGURATIONS_KEY} choose how the reference service is started; "
            "an external target is started by its owner"
        )
    return replace(options, service={**options.service, **chosen[0].settings})


def run_job(options: DemoOptions, progress: Progress | None = None) -> DemoResult | ConfigurationsResult:
    """One run, or — for a scenario with ``configurations:`` and no chosen one — one run per configuration
    (one after the other, each on its own stack, so they do not share the machine), then each compared with
    the first through ``nfr compare``. Reports: each configuration's under ``<results>-<name>/``, the
    comparison under ``<results>/``."""
    from dataclasses import replace

    progress = progress or Progress()
    source = resolve_scenario(options.scenario)
    try:
        doc = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BadInput(f"{source}: cannot read scenario: {err}") from err
    configurations = _configurations(source, dict(doc)) if isinstance(doc, dict) else ()
    if not configurations or options.configuration is not None:
        return run_demo(options, progress)
    if options.external is not None:
        raise BadInput(
            f"{source}: {CONFIGURATIONS_KEY} choose how the reference service is started; "
            "an external target is started by its owner (run one configuration's settings by hand)"
        )
    base = options.results_dir or Path(options.results) / options.run_id
    runs: dict[str, DemoResult] = {}
    for configuration in configurations:
        progress.phase(f"configuration {configuration.name}: {configuration.settings}")
        runs[configuration.name] = run_demo(
            replace(
                options,
                scenario=str(source),
                configuration=configuration.name,
                run_id=f"{options.run_id}-{configuration.name}",
                results_dir=base.parent / f"{base.name}-{configuration.name}",
            ),
            progress,
        )
    base.mkdir(parents=True, exist_ok=True)
    first, *others = configurations
    comparisons: dict[str, Comparison] = {}
    pages: list[str] = []
    html_pages: list[str] = []
    for other in others:
        comparison = compare(load_run(runs[first.name].results_dir), load_run(runs[other.name].results_dir))
        comparisons[other.name] = comparison
        pages.append(markdown(comparison))
        html_pages.append(html_page(comparison))
    reports = {"markdown": base / "COMPARISON.md", "html": base / "compare.html"}
    summary = [
        f"# {source.stem}: {len(configurations)} configurations, "
        + ("every one passed" if all(r.passed for r in runs.values()) else "not every one passed"),
        "",
    ]
    summary += [
        f"- `{c.name}` ({', '.join(f'{k}={v}' for k, v in c.settings.items())}): "
        f"{'PASS' if runs[c.name].passed else 'FAIL'}, reports in {runs[c.name].results_dir}"
        for c in configurations
    ]
    reports["markdown"].write_text("\n".join(summary) + "\n\n" + "\n".join(pages), encoding="utf-8")
    reports["html"].write_text("\n".join(html_pages), encoding="utf-8")
    for name, comparison in comparisons.items():
        found = "; ".join(comparison.regressions) or "no regression"
        progress.phase(f"compare {first.name} -> {name}: {found}")
    progress.phase(f"comparison written to {reports['markdown']}")
    return ConfigurationsResult(runs, comparisons, reports, base)


def _given_scrape_interval(options: DemoOptions) -> float:
    """The scrape interval of a Prometheus the run was given (15 s when its config cannot be read)."""
    assert options.prometheus_url is not None
    try:
        scrape, _ = PrometheusClient(options.prometheus_url, http=options.prometheus_http).config_intervals()
    except PrometheusAuthError as err:  # refused credentials or TLS: before any load, never a verdict
        raise BadInput(f"--prometheus: {err}") from err
    except PrometheusQueryError as err:
        if "cannot reach" in str(err):
            raise BadInput(f"--prometheus: {err}") from err
        return 15.0  # reachable, but its config is not readable (Mimir, Thanos): Prometheus's default
    return scrape


def _loadgen_refuses(scenario: Path, target: str, work: Path) -> str | None:
    """``loadgen validate`` on the scenario aimed at ``target``: its schema and its allow-list (the scenario's
    ``allow_targets``, ``LOADGEN_ALLOW_TARGETS``), asked of the load generator itself. None when it accepts."""
    import os
    import subprocess

    from nfr.processes import python_module

    doc = yaml.safe_load(scenario.read_text())
    doc["target"] = target
    # `validate` reads the file only; the run adds LOADGEN_ALLOW_TARGETS, so the check does the same.
    extra = [e.strip() for e in os.environ.get("LOADGEN_ALLOW_TARGETS", "").split(",") if e.strip()]
    if extra:
        allowed = doc.get("allow_targets") or []
        doc["allow_targets"] = [*([allowed] if isinstance(allowed, str) else allowed), *extra]
    aimed = work / f"validate-{scenario.name}"
    aimed.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(python_module("loadgen", "validate", str(aimed)), capture_output=True, text=True)
    if result.returncode == 0:
        return None
    return "the load generator refuses the scenario: " + (result.stderr.strip() or result.stdout.strip())


def _with_metrics_path(target: ExternalTarget, path: str | None) -> ExternalTarget:
    from dataclasses import replace

    return replace(target, metrics_path=path)


def _keep_evidence(
    stack: LocalStack,
    dest: Path,
    start: float,
    end: float,
    settle: float,
    expected: tuple[str, ...],
    scenario: str,
    options: DemoOptions,
) -> dict[str, Any]:
    """Snapshot the private Prometheus under the results with what judging it again takes: rule files and
    the window. A failed snapshot is reported, it does not fail the run."""
    meta: dict[str, Any] = {
        "run_id": options.run_id,
        "scenario": scenario,
        "start": start,
        "end": end,
        "settle": settle,
        "expected": list(expected),
        "rate_window": stack.settings.rate_window,
        "scrape_interval": stack.settings.scrape_interval,
        "strict": options.strict,
        "require_exercised": options.require_exercised,
    }
    try:
        path = stack.snapshot(dest)
    except (PrometheusQueryError, OSError) as err:
        return {**meta, "path": None, "error": str(err)}
    if path is None:
        return {**meta, "path": None, "error": f"kept by {options.prometheus_url} (not started by this run)"}
    (path / "evidence.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(f.stat().st_size for f in (path / "tsdb").rglob("*") if f.is_file())
    return {**meta, "path": str(path), "bytes": size}


def read_loadgen_summary(work: Path) -> dict[str, Any] | None:
    """The load generator's summary JSON (written when its run ends), or None when it wrote none."""
    summary_path = work / "loadgen-summary.json"
    try:
        document = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _extra(
    options: DemoOptions,
    stack: LocalStack,
    verdict: Verdict,
    load_start: float,
    loadgen_summary: dict[str, Any] | None,
) -> dict[str, Any]:
    """Settings and timings that belong in results.json: among them fault → first alert per NFR."""
    fault_to_alert = {
        r.nfr: round(r.first_fired - load_start, 1) for r in verdict.results if r.first_fired is not None
    }
    return {
        "faults": list(options.faults),
        "compress": options.compress,
        "scrape_interval_seconds": stack.settings.scrape_interval,
        "rate_window": stack.settings.rate_window,
        "fault_started_at": load_start if options.faults else None,
        "fault_to_alert_seconds": fault_to_alert if options.faults else {},
        "service": (
            " ".join(stack.service_command()[2:]).replace(stack.database_dsn or "", "<dsn>")
            if stack.settings.external is None
            else stack.service_url
        ),
        "loadgen_summary": loadgen_summary,
    }


def _copy_logs(work: Path, results_dir: Path) -> None:
    logs = work / "logs"
    if logs.is_dir():
        target = results_dir / "logs"
        target.mkdir(parents=True, exist_ok=True)
        for log_file in logs.iterdir():
            (target / log_file.name).write_bytes(log_file.read_bytes()[-2_000_000:])


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
