"""The typed scenario: what a validated scenario file becomes. Nothing here checks values; see
loadgen/validation.py for that, and loadgen/config.py for loading and overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

QUEUE_TYPES = ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")
MODELS = ("closed", "open", "burst", "contention")
BUILTIN_ENDPOINTS = ("create_ticket", "get_ticket", "health")
THRESHOLD_METRICS = (
    "p50",
    "p90",
    "p95",
    "p99",
    "max",
    "error_rate",
    "throughput",
    "throughput_per_min",
    "requests",
    "dropped",
    "dropped_ratio",
    "schedule_lag_p99",
    "contention_rounds_failed",
)
# Longest run a scenario may ask for: every run stops by itself.
MAX_RUN_SECONDS = 24 * 3600.0


class ConfigError(Exception):
    """A scenario value is missing or wrong; the message says where and what was expected."""


# ---------------------------------------------------------------------------------------------------------
# Typed configuration


@dataclass(frozen=True)
class ThinkTime:
    minimum: float = 0.0
    maximum: float = 0.0


@dataclass(frozen=True)
class RequestSpec:
    """One entry of a request mix: an endpoint, how often it is picked, and what answer counts as success."""

    endpoint: str
    weight: float = 1.0
    method: str = "GET"
    path: str = "/"
    body: Any = None
    expect: tuple[int, ...] = (200,)
    timeout: float | None = None


@dataclass(frozen=True)
class UserClass:
    """A kind of user (seed 002): its share of the virtual users or arrivals, its think time and mix."""

    name: str
    weight: float
    think_time: ThinkTime
    requests: tuple[RequestSpec, ...]


@dataclass(frozen=True)
class Stage:
    """Ramp the arrival rate linearly to ``target`` (requests/s) over ``duration`` seconds."""

    duration: float
    target: float


@dataclass(frozen=True)
class Workload:
    model: str = "closed"
    vus: int = 10
    rate: float = 10.0
    start_rate: float = 0.0
    stages: tuple[Stage, ...] = ()
    max_in_flight: int = 1000
    max_backlog: int = 0
    connections: int = 0  # 0: as many as the model can have in flight
    requests: int = 50  # burst
    within: float = 0.0  # burst
    clients: int = 50  # contention
    rounds: int = 1
    round_interval: float = 1.0
    winner_status: int = 201
    loser_status: int = 409
    # breaking-point search (open model with stages): a stage breaks when either limit is exceeded
    break_p95: float | None = None
    break_error_rate: float | None = None
    stop_at_break: bool = False


@dataclass(frozen=True)
class TicketTemplate:
    """How create_ticket bodies are made: weighted queue mix, unique nationalId per request."""

    queues: tuple[tuple[str, float], ...] = tuple((queue, 1.0) for queue in QUEUE_TYPES)
    branch_office: str = "Sucursal Centro"
    telefono: str = "+56912345678"
    national_id_start: int | None = None
    # a reserved range for test identities (seed 001): every generated nationalId starts with these digits
    national_id_prefix: str = ""


@dataclass(frozen=True)
class Threshold:
    metric: str
    endpoint: str | None = None
    maximum: float | None = None
    minimum: float | None = None
    nfr: str = ""  # set when the scenario named the NFR instead of a number

    def describe(self) -> str:
        scope = f"{{endpoint={self.endpoint}}}" if self.endpoint else ""
        unit = "s" if self.metric.startswith("p") or self.metric in ("max", "schedule_lag_p99") else ""
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}{unit}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}{unit}")
        named = f" ({self.nfr})" if self.nfr else ""
        return f"{self.metric}{scope} {' and '.join(bounds)}{named}"


@dataclass(frozen=True)
class Action:
    """A fault or setup step. ``kind`` selects the backend; ``params`` were checked for that backend."""

    kind: str
    params: Mapping[str, Any]
    name: str = ""
    at: float = 0.0  # offset from the start of the load phase (method actions only)
    ignore_failure: bool = False
    # runs alongside the following actions instead of before them (watch actions do by default)
    background: bool = False

    def label(self) -> str:
        return self.name or f"{self.kind}:{self.params.get('op') or self.params.get('run') or ''}".rstrip(":")


@dataclass(frozen=True)
class Probe:
    """A steady-state check: an HTTP answer or an SQL scalar, optionally polled until it holds."""

    kind: str
    params: Mapping[str, Any]
    name: str = ""
    within: float = 0.0
    interval: float = 1.0

    def label(self) -> str:
        return self.name or f"{self.kind} probe"


@dataclass(frozen=True)
class ProxySpec:
    """A fault proxy the run starts (listen → target), or a running `loadgen proxy` driven via ``control``."""

    name: str
    listen_host: str = ""
    listen_port: int = 0
    target_host: str = ""
    target_port: int = 0
    control: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    description: str = ""
    target: str = "http://127.0.0.1:8080"
    allow_targets: tuple[str, ...] = ()
    duration: float = 60.0
    max_requests: int | None = None
    timeout: float = 10.0
    http_client: str = "fast"  # "fast" (loadgen/http.py, http and https) or "aiohttp"
    workload: Workload = field(default_factory=Workload)
    classes: tuple[UserClass, ...] = ()
    ticket: TicketTemplate = field(default_factory=TicketTemplate)
    thresholds: tuple[Threshold, ...] = ()
    services: Mapping[str, str] = field(default_factory=dict)
    proxies: tuple[ProxySpec, ...] = ()
    setup: tuple[Action, ...] = ()
    steady_state: tuple[Probe, ...] = ()
    method: tuple[Action, ...] = ()
    rollbacks: tuple[Action, ...] = ()
    settle: float = 0.0
    verify: tuple[Probe, ...] = ()
    metrics_port: int = 9646
    linger: float = 0.0
    summary_json: str | None = None
    summary_csv: str | None = None
    processes: int = 1
    progress_interval: float = 5.0

    @property
    def endpoints(self) -> list[str]:
        """Every endpoint the request mixes can pick, in order of first mention."""
        return list(dict.fromkeys(spec.endpoint for cls in self.classes for spec in cls.requests))

    def planned_seconds(self) -> float:
        """Upper bound of the load phase, used to bound every run."""
        workload = self.workload
        if workload.model == "open" and workload.stages:
            return sum(stage.duration for stage in workload.stages)
        if workload.model == "burst":
            return workload.within + self.timeout
        if workload.model == "contention":
            return workload.rounds * (workload.round_interval + self.timeout)
        return self.duration


def with_process_share(scenario: Scenario, index: int, count: int) -> Scenario:
    """The part of the load one of ``count`` worker processes generates (rates, users and counts split)."""
    if count <= 1:
        return scenario

    def share(total: int) -> int:
        return total // count + (1 if index < total % count else 0)

    workload = scenario.workload
    workload = replace(
        workload,
        vus=max(1, share(workload.vus)),
        rate=workload.rate / count,
        start_rate=workload.start_rate / count,
        stages=tuple(Stage(stage.duration, stage.target / count) for stage in workload.stages),
        max_in_flight=max(1, share(workload.max_in_flight)),
        max_backlog=share(workload.max_backlog),
        requests=max(1, share(workload.requests)),
    )
    max_requests = scenario.max_requests
    if max_requests is not None:
        max_requests = max(1, share(max_requests))
    return replace(scenario, workload=workload, max_requests=max_requests)
