"""The NFR catalogue: the one place where an NFR's id, threshold, indicator and alert rules are written.

Everything else derives from it (as kubernetes-mixin derives from its ``_config``): ``python -m nfr.mixin
build`` renders the recording rules, the NFR and meta alerts, the Alertmanager inhibitions, the dashboards'
NFR panels and the README/docs tables; the verdict reads the ids, indicators, units and exercise
conditions; the reports print the thresholds; the tests take the NFR list from here.

Each NFR's rules are functions of a :class:`~nfr.mixin.ctx.Ctx` (selectors, grouping labels, links,
profile) and of the NFR's own :class:`Threshold`, so a number is written once and an operator adapts the
whole set with a config file, never by editing a rule. Two profiles:

* ``run`` — a test run judged by the verdict: short windows, alerts only while a load run is active where
  the indicator is the load generator's.
* ``staging`` — long-running monitoring of the real service: RNF-02 and RNF-06 as SLOs on the service's own
  ``http_server_requests_seconds`` (multiwindow, multi-burn-rate), absent-indicator alerts that need no
  load run, warning and critical tiers, ``for:`` fit for a pager.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from nfr.mixin.config import MixinConfig
from nfr.mixin.ctx import Ctx, bucket, number

META_NFR = "meta"
TARGET_DOWN_ALERT = "TicketeroTargetDown"
INDICATOR_ABSENT_ALERT = "TicketeroNfrIndicatorAbsent"
COLLECTOR_FAILING_ALERT = "TicketeroExporterCollectorFailing"
SWEEP_STALE_ALERT = "TicketeroConsistencySweepStale"

#: Multiwindow, multi-burn-rate alerting (Google SRE workbook ch. 5) over a 30-day budget:
#: (severity, burn-rate factor, long window, short window, for:) — 2 % of the budget in 1 h, 5 % in 6 h
#: page; 10 % in 3 days opens a ticket.
BURN_RATE_WINDOWS: tuple[tuple[str, float, str, str, str], ...] = (
    ("critical", 14.4, "1h", "5m", "2m"),
    ("critical", 6.0, "6h", "30m", "15m"),
    ("warning", 1.0, "3d", "6h", "1h"),
)
SLO_PERIOD = "30d"

_NEGATE = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}
BUSY = 'status="BUSY"'
FAILED = 'status="FAILED"'


@dataclass(frozen=True)
class Threshold:
    """The requirement's number: ``value`` on the passing side of ``comparator`` (e.g. >= 50)."""

    value: float
    comparator: str  # the passing side: >=, >, <, <=
    unit: str  # how people say it: "tickets/min", "s", "ratio", "violations", "growth ratio"

    @property
    def breach(self) -> str:
        """The PromQL comparison that is true when the requirement is broken."""
        return _NEGATE[self.comparator]

    @property
    def higher_is_better(self) -> bool:
        return self.comparator.startswith(">")

    @property
    def promql(self) -> str:
        return number(self.value)

    def text(self) -> str:
        """``>= 50 tickets/min``, ``>= 99.9 %``, ``< 90 s``, ``= 0``."""
        if self.unit == "ratio":
            return f"{self.comparator} {self.value * 100:g} %"
        if self.unit == "violations":
            return "= 0"
        if self.unit == "growth ratio":
            return f"{self.comparator} {(self.value - 1) * 100:g} % growth"
        return f"{self.comparator} {number(self.value)} {self.unit}"


@dataclass(frozen=True)
class Rule:
    """One recording or alerting rule as it is written into a rule file."""

    name: str
    expr: str
    record: bool = False
    for_: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    comment: str = ""


@dataclass(frozen=True)
class Indicator:
    """A series an NFR cannot be judged without; its absence fires TicketeroNfrIndicatorAbsent."""

    metric: str
    source: str
    matchers: tuple[str, ...] = ()
    alternative: Indicator | None = None  # either of the two is enough (RNF-07: container or process)


@dataclass(frozen=True)
class Exercise:
    """Whether a run put the NFR to the test, read from Prometheus over the window.

    ``expr`` gives one figure at the window's end (``{range}`` = the window, ``{start}`` = its start);
    the NFR was exercised when the figure is ``>= minimum``. A ``minimum`` of None is worked out by the
    verdict from the loaded alert rules (RNF-01: the throughput alert's own window)."""

    expr: Callable[[Ctx], str]
    minimum: float | None
    unit: str
    rule: str  # the condition in words, for the reports and docs

    def describe(self, minimum: float) -> str:
        return self.rule.replace("{minimum}", number(minimum))


@dataclass(frozen=True)
class Panel:
    """The NFR's panel on the overview dashboard: one stat against its threshold."""

    title: str
    expr: Callable[[Ctx], str]
    unit: str  # Grafana unit id
    description: str


@dataclass(frozen=True)
class Nfr:
    """One non-functional requirement: the only place its id and threshold are written."""

    id: str
    title: str
    requirement: str  # wording; "{threshold}" is replaced by the threshold's text
    limit: Threshold
    indicator: Callable[[Ctx], str]  # PromQL with a {w} placeholder for the rate window
    unit: str  # unit of the indicator's values
    rules: Callable[[Nfr, Ctx], list[Rule]]  # alerting rules, per profile
    indicators: Callable[[Ctx], list[Indicator]]
    panel: Panel
    exercise: Exercise | None = None
    figure: str = ""  # run-level figure reported as "measured" when no alert fired
    relative: bool = False  # the threshold compares with the past (RNF-07): no fixed line on a plot
    #: The same requirement as a load-generator threshold (metric, "min" or "max", value), for scenarios
    #: that say ``thresholds: [{nfr: RNF-02}]`` instead of restating the number.
    load_threshold: tuple[str, str, float] | None = None

    @property
    def requirement_text(self) -> str:
        return self.requirement.replace("{threshold}", self.limit.text())

    @property
    def threshold(self) -> float | None:
        """The line drawn on the indicator's plot; None when the threshold is relative."""
        return None if self.relative else self.limit.value

    @property
    def higher_is_better(self) -> bool:
        return self.limit.higher_is_better

    def indicator_expr(self, window: str, config: MixinConfig | None = None) -> str:
        return self.indicator(Ctx(config or MixinConfig())).replace("{w}", window)

    def alert_rules(self, config: MixinConfig | None = None) -> list[Rule]:
        return self.rules(self, Ctx(config or MixinConfig()))

    def alert_names(self, config: MixinConfig | None = None) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.alert_rules(config)))

    @property
    def alerts(self) -> tuple[str, ...]:
        """Alert names in the run profile with the default config (what the verdict expects loaded)."""
        return self.alert_names(MixinConfig(profile="run"))

    def worst(self, values: list[float]) -> float | None:
        """The value furthest on the wrong side: the minimum when higher is better, else the maximum."""
        if not values:
            return None
        return min(values) if self.higher_is_better else max(values)


def alert(
    c: Ctx,
    nfr: Nfr,
    name: str,
    expr: str,
    for_: str,
    summary: str,
    description: str,
    severity: str = "critical",
    comment: str = "",
    **labels: str,
) -> Rule:
    """An NFR alert with the contract every alert keeps: nfr and severity labels, summary, description,
    an absolute runbook_url and the NFR's dashboard."""
    return Rule(
        name=name,
        expr=expr,
        for_=for_,
        labels={"severity": severity, "nfr": nfr.id, **labels},
        annotations={
            "summary": summary,
            "description": description,
            "runbook_url": c.runbook(name),
            "dashboard_url": c.dashboard("ticketero-nfr-overview"),
        },
        comment=comment,
    )


# ---------------------------------------------------------------------------------------------- RNF-01


def _rnf01_rules(n: Nfr, c: Ctx) -> list[Rule]:
    t = n.limit.promql
    staging = c.profile == "staging"
    return [
        alert(
            c, n, "TicketeroThroughputBelowTarget",
            f"({c.r(':ticketero_tickets_completed:rate1m')} * 60 {n.limit.breach} {t})\n"
            f"and {c.on()}\n"
            "(\n"
            f"  ({c.r(':ticketero_tickets_offered:rate1m')} * 60 >= {t})\n"
            f"  or {c.on()}\n"
            f"  ({c.r(':ticketero_tickets_waiting:deriv2m')} * 60 > 1)\n"
            ")",
            "10m" if staging else "1m",
            f"Ticket throughput is below {t} tickets per minute while demand is there.",
            f'{{{{ $value | printf "%.1f" }}}} tickets/min completed (target {n.limit.comparator} {t}) while the offered '
            f"load is at least {t} tickets/min or the WAITING backlog keeps growing.",
            severity="warning" if staging else "critical",
            comment=f"{n.id}: judged only when demand is there: at least {t}/min offered, or a WAITING backlog "
            "growing by more than 1 ticket/min (a trend; one waiting ticket seen by one scrape tilts the "
            "2 minute slope by far less).",
        )
    ]  # fmt: skip


THROUGHPUT = Threshold(50, ">=", "tickets/min")

RNF01 = Nfr(
    id="RNF-01",
    title="Throughput",
    requirement="tickets completed {threshold} while demand is there",
    limit=THROUGHPUT,
    indicator=lambda c: (
        f"sum{c.by()}(rate({c.s('ticketero_tickets_completed_total', 'exporter')}[{{w}}])) * 60"
    ),
    unit="tickets/min",
    rules=_rnf01_rules,
    indicators=lambda c: [Indicator("ticketero_tickets_completed_total", "exporter")],
    panel=Panel(
        "Throughput",
        lambda c: ":ticketero_tickets_completed:rate1m * 60",
        "short",
        "Tickets completed per minute. Judged only while the offered load reaches the target or the WAITING "
        "backlog grows.",
    ),
    exercise=Exercise(
        # Seconds of the window during which the offered load reached the target, sampled every 5 s.
        lambda c: (
            f"sum_over_time(({c.r(':ticketero_tickets_offered:rate1m')} * 60 >= bool "
            + THROUGHPUT.promql
            + ")[{range}:5s]) * 5"
        ),
        None,
        "s",
        "offered load >= the target for at least the throughput alert's for: plus its rate window",
    ),
    figure="throughput_per_minute",
    load_threshold=("throughput_per_min", "min", THROUGHPUT.value),
)

# ---------------------------------------------------------------------------------------------- RNF-02

LATENCY_BOUND_SECONDS = 2.0  # RNF-02: "p95 < 2 s" is read as "at least 95 % of requests within 2 s"
LE = bucket(LATENCY_BOUND_SECONDS)
LE_NAME = f"le{number(LATENCY_BOUND_SECONDS)}s"  # in recording-rule names: ..._le2s:ratio_rate1m
LE_MATCHER = f'le="{LE}"'


def _rnf02_rules(n: Nfr, c: Ctx) -> list[Rule]:
    share = f"{n.limit.value * 100:g} %"
    if c.profile == "staging":
        return _burn_rate_alerts(
            c, n, "TicketeroApiLatencyBudgetBurn", "latency",
            f"requests slower than {number(LATENCY_BOUND_SECONDS)} s",
        )  # fmt: skip
    return [
        alert(
            c, n, "TicketeroApiLatencyHigh",
            f"{c.r(f'endpoint:loadgen_request_duration_seconds_{LE_NAME}:ratio_rate1m')} {n.limit.breach} {n.limit.promql}",
            "1m",
            f"Fewer than {share} of API requests are answered within {number(LATENCY_BOUND_SECONDS)} seconds.",
            f"Only {{{{ $value | humanizePercentage }}}} of {{{{ $labels.endpoint }}}} requests seen by the load "
            f"generator finished within {number(LATENCY_BOUND_SECONDS)} s over the last minute (target >= {share}).",
            comment=f"{n.id}: p95 < {number(LATENCY_BOUND_SECONDS)} s, read as \"at least {share} of requests "
            f"within the {number(LATENCY_BOUND_SECONDS)} s bucket\".",
            source="loadgen",
        ),
        alert(
            c, n, "TicketeroApiLatencyHigh",
            f"{c.r(f'uri:http_server_requests_seconds_{LE_NAME}:ratio_rate1m')} {n.limit.breach} {n.limit.promql}",
            "1m",
            f"Fewer than {share} of API requests are answered within {number(LATENCY_BOUND_SECONDS)} seconds.",
            f"Only {{{{ $value | humanizePercentage }}}} of requests to {{{{ $labels.uri }}}} measured by the "
            f"service finished within {number(LATENCY_BOUND_SECONDS)} s over the last minute (target >= {share}).",
            source="service",
        ),
    ]  # fmt: skip


LATENCY_SHARE = Threshold(0.95, ">=", "ratio")


def distinguishable(share: Threshold) -> float:
    """The fewest requests that can tell a share from the next one down: 1 / (1 - target). Fewer, and one
    bad request already decides the run (with 100 requests one failure is 99 %, so 99.9 % cannot be
    shown); so many, and a single failure is exactly the budget."""
    return float(math.ceil(round(1 / (1 - share.value), 6)))


RNF02 = Nfr(
    id="RNF-02",
    title="API latency",
    requirement=f"p95 < {number(LATENCY_BOUND_SECONDS)} s, i.e. a share of requests within "
    f"{number(LATENCY_BOUND_SECONDS)} s {{threshold}}",
    limit=LATENCY_SHARE,
    indicator=lambda c: (
        (
            f"sum{c.by()}(rate({c.s('loadgen_request_duration_seconds_bucket', 'loadgen', LE_MATCHER)}[{{w}}]))"
            f" / sum{c.by()}(rate({c.s('loadgen_request_duration_seconds_count', 'loadgen')}[{{w}}]))"
        )
        if c.profile == "run"
        else "1 - :http_server_requests_seconds_slow:ratio_rate5m"
    ),
    unit=f"ratio <= {number(LATENCY_BOUND_SECONDS)} s",
    rules=_rnf02_rules,
    indicators=lambda c: [
        Indicator("loadgen_request_duration_seconds_bucket", "loadgen", (LE_MATCHER,))
        if c.profile == "run"
        else Indicator("http_server_requests_seconds_bucket", "service", (LE_MATCHER,))
    ],
    panel=Panel(
        f"Requests within {number(LATENCY_BOUND_SECONDS)} s",
        lambda c: (
            f":loadgen_request_duration_seconds_{LE_NAME}:ratio_rate1m"
            if c.profile == "run"
            else "1 - :http_server_requests_seconds_slow:ratio_rate5m"
        ),
        "percentunit",
        f"Share of requests answered within {number(LATENCY_BOUND_SECONDS)} s (the p95 requirement read on "
        "the histogram bucket).",
    ),
    exercise=Exercise(
        lambda c: (
            f"sum(max_over_time({c.s('loadgen_requests_total', 'loadgen')}[{{range}}]))"
            if c.profile == "run"
            else f"sum(increase({c.s('http_server_requests_seconds_count', 'service')}[{{range}}]))"
        ),
        distinguishable(LATENCY_SHARE),
        "requests",
        "at least 1 / (1 - target) = {minimum} requests, so that one bad request does not already decide "
        "the share",
    ),
    figure="ratio_within_2s",
    load_threshold=("p95", "max", LATENCY_BOUND_SECONDS),
)

# ---------------------------------------------------------------------------------------------- RNF-03


def _rnf03_rules(n: Nfr, c: Ctx) -> list[Rule]:
    for_ = "1m" if c.profile == "staging" else "10s"
    summary = "A race condition left the database in a state locking should prevent."
    exporter = "reported by {{ $labels.instance }}"
    return [
        alert(
            c, n, "TicketeroRaceConditionDetected",
            f"{c.s('ticketero_advisors_double_assigned', 'exporter')} > 0", for_, summary,
            "{{ $value }} advisor(s) hold more than one CALLED / IN_PROGRESS ticket "
            f"(check double_assigned_advisor, {exporter}).",
            comment=f"{n.id}: zero race conditions.",
            check="double_assigned_advisor",
        ),
        alert(
            c, n, "TicketeroRaceConditionDetected",
            f"{c.s('ticketero_tickets_duplicate_active', 'exporter')} > 0", for_, summary,
            "{{ $value }} (nationalId, queue) pair(s) have more than one active ticket "
            f"(check duplicate_active_ticket, {exporter}).",
            check="duplicate_active_ticket",
        ),
        alert(
            c, n, "TicketeroRaceConditionDetected",
            f"increase({c.s('ticketero_database_deadlocks_total', 'exporter')}[5m]) > 0", for_, summary,
            'PostgreSQL reported {{ $value | printf "%.0f" }} deadlock(s) in the Ticketero database over the last '
            "5 minutes "
            f"(check deadlock, {exporter}).",
            check="deadlock",
        ),
        alert(
            c, n, "TicketeroRaceConditionDetected",
            f"increase({c.s('ticketero_tickets_double_assigned_total', 'exporter')}[5m]) > 0", for_, summary,
            '{{ $value | printf "%.0f" }} ticket(s) completed over the last 5 minutes while their advisor was '
            f"serving another ticket (check double_assignment_completed, {exporter}).",
            comment="A double assignment lasts one service time, shorter than the gauge rule's for: and often "
            "than a scrape interval; the exporter counts it afterwards, at the ticket's completion.",
            check="double_assignment_completed",
        ),
    ]  # fmt: skip


def violations(c: Ctx, terms: list[tuple[str, str]], window: str, grouped: bool = True) -> str:
    """The sum of an NFR's violation counts: ``(aggregation, expression)`` terms, ``{w}`` the window.

    Grouped (the indicator), the first term is required — no exporter, no data — and the others fall back to
    a 0 that keeps the grouping labels; ungrouped (a panel), every term falls back to ``vector(0)``."""
    parts = []
    for index, (aggregation, expr) in enumerate(terms):
        term = f"{aggregation}{c.by() if grouped else ''}({expr.replace('{w}', window)})"
        if grouped and index == 0:
            parts.append(term)
        else:
            parts.append(f"({term} or {c.zero() if grouped else 'vector(0)'})")
    return " + ".join(parts)


def _rnf03_terms(c: Ctx) -> list[tuple[str, str]]:
    return [
        ("max", c.s("ticketero_advisors_double_assigned", "exporter")),
        ("max", c.s("ticketero_tickets_duplicate_active", "exporter")),
        ("sum", f"increase({c.s('ticketero_database_deadlocks_total', 'exporter')}[{{w}}])"),
        ("sum", f"increase({c.s('ticketero_tickets_double_assigned_total', 'exporter')}[{{w}}])"),
    ]


def _rnf04_terms(c: Ctx) -> list[tuple[str, str]]:
    return [
        ("sum", c.s("ticketero_tickets_inconsistent", "exporter")),
        ("sum", c.s("ticketero_tickets_without_outbox", "exporter")),
        ("sum", c.s("ticketero_outbox_messages", "exporter", FAILED)),
        ("sum", f"abs({c.s('ticketero_advisor_served_drift', 'exporter')})"),
    ]


RNF03 = Nfr(
    id="RNF-03",
    title="Concurrency",
    requirement="0 race conditions (double-assigned advisors, duplicate active tickets, deadlocks)",
    limit=Threshold(0, "<=", "violations"),
    indicator=lambda c: violations(c, _rnf03_terms(c), "{w}"),
    unit="violations",
    rules=_rnf03_rules,
    indicators=lambda c: [
        Indicator("ticketero_advisors_double_assigned", "exporter"),
        Indicator("ticketero_tickets_duplicate_active", "exporter"),
        Indicator("ticketero_database_deadlocks_total", "exporter"),
    ],
    figure="race_conditions",
    panel=Panel(
        "Race conditions",
        lambda c: violations(c, _rnf03_terms(c), "5m", grouped=False),
        "short",
        "Double-assigned advisors + duplicate active tickets + deadlocks and completed double assignments over "
        "5 minutes. Must stay 0.",
    ),
    exercise=Exercise(
        # Two claims held at once: the most advisors BUSY at the same moment of the window.
        lambda c: f"max(max_over_time({c.s('ticketero_advisors', 'exporter', BUSY)}[{{range}}]))",
        2,
        "advisors",
        "real concurrency: at least {minimum} advisors BUSY at the same moment (claims held at once)",
    ),
)

# ---------------------------------------------------------------------------------------------- RNF-04


def _rnf04_rules(n: Nfr, c: Ctx) -> list[Rule]:
    staging = c.profile == "staging"
    for_ = "1m" if staging else "10s"
    summary = "Tickets or outbox messages are in an inconsistent state."
    return [
        alert(
            c, n, "TicketeroInconsistentTickets",
            f"{c.s('ticketero_tickets_inconsistent', 'exporter')} > 0", for_, summary,
            "{{ $value }} ticket(s) break the rule {{ $labels.rule }} (check inconsistent_ticket).",
            comment=f"{n.id}: zero inconsistent tickets; ticket and outbox row written atomically; no FAILED "
            "outbox row; advisors' served counters match their completed tickets.",
            check="inconsistent_ticket",
        ),
        alert(
            c, n, "TicketeroInconsistentTickets",
            f"{c.s('ticketero_tickets_without_outbox', 'exporter')} > 0", for_, summary,
            "{{ $value }} ticket(s) have no outbox_message row: ticket and message were not written in one "
            "transaction (check ticket_without_outbox).",
            check="ticket_without_outbox",
        ),
        alert(
            c, n, "TicketeroInconsistentTickets",
            f"{c.s('ticketero_outbox_messages', 'exporter', FAILED)} > 0", for_, summary,
            "{{ $value }} outbox message(s) are in status {{ $labels.status }} and will never be published "
            "(check outbox_failed).",
            check="outbox_failed",
        ),
        alert(
            c, n, "TicketeroInconsistentTickets",
            f"{c.s('ticketero_advisor_served_drift', 'exporter')} != 0", "5m" if staging else "1m", summary,
            "The advisors' total_tickets_served differ from their completed tickets by {{ $value }} "
            "(check served_counter_drift: a redelivered message counted twice, or a completion not counted).",
            comment="Counted over the whole history; for: covers a completion committed between the exporter's "
            "two reads.",
            check="served_counter_drift",
        ),
        alert(
            c, n, "TicketeroInconsistentTickets",
            f"{c.s('ticketero_advisors_busy_without_ticket', 'exporter')} > 0", "10m" if staging else "2m",
            summary,
            "{{ $value }} advisor(s) have been BUSY without a CALLED / IN_PROGRESS ticket for longer than "
            "recovery needs (check busy_without_ticket).",
            severity="warning",
            comment="The plan reads a BUSY advisor without a ticket as a warning (recovery pending); it is an "
            "inconsistency once it outlasts the dead-worker bound.",
            check="busy_without_ticket",
        ),
    ]  # fmt: skip


RNF04 = Nfr(
    id="RNF-04",
    title="Consistency",
    requirement="0 inconsistent tickets, tickets without outbox row, FAILED outbox messages, counter drift",
    limit=Threshold(0, "<=", "violations"),
    indicator=lambda c: violations(c, _rnf04_terms(c), "{w}"),
    unit="violations",
    rules=_rnf04_rules,
    indicators=lambda c: [
        Indicator("ticketero_tickets_inconsistent", "exporter"),
        Indicator("ticketero_tickets_without_outbox", "exporter"),
        Indicator("ticketero_outbox_messages", "exporter"),
    ],
    figure="inconsistencies",
    panel=Panel(
        "Inconsistencies",
        lambda c: violations(c, _rnf04_terms(c), "5m", grouped=False),
        "short",
        "Inconsistent tickets + tickets without outbox row + FAILED outbox messages + served-counter drift. "
        "Must stay 0.",
    ),
    exercise=Exercise(
        lambda c: (
            f"sum(max_over_time({c.s('ticketero_tickets_completed_total', 'exporter')}[{{range}}]))"
            f" - (sum({c.s('ticketero_tickets_completed_total', 'exporter')} @ {{start}}) or vector(0))"
        ),
        1,
        "tickets",
        "at least {minimum} ticket completed through the outbox and a worker in the window",
    ),
)

# ---------------------------------------------------------------------------------------------- RNF-05


def _rnf05_rules(n: Nfr, c: Ctx) -> list[Rule]:
    t = n.limit.promql
    for_ = "1m" if c.profile == "staging" else "10s"
    detection = "ticketero_recovery_detection_seconds"
    detection_le = f'le="{bucket(n.limit.value)}"'
    return [
        alert(
            c, n, "TicketeroDeadWorkerUndetected",
            f"{c.s('ticketero_advisor_busy_heartbeat_age_max_seconds', 'exporter')} > {t}", for_,
            f"A BUSY advisor has sent no heartbeat for more than {t} seconds and was not recovered.",
            'The oldest heartbeat among BUSY advisors is {{ $value | printf "%.0f" }} s old '
            f"(limit {t} s): recovery has not detected the dead worker (reported by {{{{ $labels.instance }}}}).",
            comment=f"{n.id}: a dead worker is detected within {t} s.",
        ),
        alert(
            c, n, "TicketeroDeadWorkerDetectionSlow",
            "(\n"
            f"  sum{c.by()}({c.s(detection + '_count', 'exporter')})\n"
            f"  - sum{c.by()}({c.s(detection + '_bucket', 'exporter', detection_le)})\n"
            ")\n>\n(\n  (\n"
            f"    sum{c.by()}({c.s(detection + '_count', 'exporter')} offset 10m)\n"
            f"    - sum{c.by()}({c.s(detection + '_bucket', 'exporter', detection_le)} offset 10m)\n"
            f"  )\n  or {c.zero()}\n)",
            for_,
            f"Recovery detected a dead worker more than {t} seconds after its last heartbeat.",
            '{{ $value | printf "%.0f" }} recovery event(s) since the exporter started were detected more '
            f"than {t} s after the worker's last heartbeat, at least one of them in the last 10 minutes.",
            comment="Fires when the count of recoveries slower than the bound grew over the last 10 minutes (a "
            "missing sample 10 minutes ago, e.g. a freshly started exporter, counts as zero).",
        ),
    ]  # fmt: skip


RNF05 = Nfr(
    id="RNF-05",
    title="Recovery time",
    requirement="a dead worker is detected {threshold} after its last heartbeat",
    limit=Threshold(90, "<", "s"),
    indicator=lambda c: f"max{c.by()}({c.s('ticketero_advisor_busy_heartbeat_age_max_seconds', 'exporter')})",
    unit="s (oldest BUSY heartbeat)",
    rules=_rnf05_rules,
    indicators=lambda c: [Indicator("ticketero_advisor_busy_heartbeat_age_max_seconds", "exporter")],
    figure="max_busy_heartbeat_age_seconds",
    panel=Panel(
        "Oldest BUSY heartbeat",
        lambda c: f"max({c.s('ticketero_advisor_busy_heartbeat_age_max_seconds', 'exporter')})",
        "s",
        "Age of the oldest heartbeat among BUSY advisors; recovery must free a dead worker's advisor before it "
        "reaches the threshold.",
    ),
    exercise=Exercise(
        # A worker actually stopped heart-beating and recovery freed its advisor.
        lambda c: (
            f"sum(max_over_time({c.s('ticketero_recovery_events_total', 'exporter')}[{{range}}]))"
            f" - (sum({c.s('ticketero_recovery_events_total', 'exporter')} @ {{start}}) or vector(0))"
            " or vector(0)"  # no recovery event ever: none in the window either
        ),
        1,
        "events",
        "a worker stopped heart-beating: at least {minimum} recovery event in the window",
    ),
)

# ---------------------------------------------------------------------------------------------- RNF-06


def _rnf06_rules(n: Nfr, c: Ctx) -> list[Rule]:
    share = f"{n.limit.value * 100:g} %"
    staging = c.profile == "staging"
    probe = alert(
        c, n, "TicketeroHealthProbeFailing",
        f"{c.s('ticketero_probe_success', 'exporter')} == 0", "5m" if staging else "15s",
        "The service health endpoint does not answer UP.",
        "/actuator/health probed by {{ $labels.instance }} has not answered 200 {\"status\":\"UP\"} "
        f"for at least {'5 min' if staging else '15 s'} (probe success {{{{ $value }}}}).",
    )  # fmt: skip
    if staging:
        return [
            *_burn_rate_alerts(c, n, "TicketeroAvailabilityBudgetBurn", "availability", "5xx answers"),
            probe,
        ]
    return [
        alert(
            c, n, "TicketeroAvailabilityBelowTarget",
            f"{c.r(':loadgen_requests_success:ratio_run')} {n.limit.breach} {n.limit.promql}\n"
            f"and {c.on()}\n"
            f"max{c.by()}(max_over_time({c.s('loadgen_run_active', 'loadgen')}[2m])) == 1",
            "1m",
            f"Less than {share} of requests succeeded over the load run.",
            "{{ $value | humanizePercentage }} of the requests sent since the run started succeeded "
            f"(target >= {share}).",
            comment=f"{n.id}: {share} of requests succeed over the run, and the health probe answers UP. "
            "\"Under load\" = a run was active in the last 2 minutes, so failures in the run's last minute "
            "can still fire during the settle period while the load generator keeps its counters.",
        ),
        probe,
    ]  # fmt: skip


AVAILABILITY = Threshold(0.999, ">=", "ratio")

RNF06 = Nfr(
    id="RNF-06",
    title="Availability",
    requirement="success ratio under load {threshold}, health probe up",
    limit=AVAILABILITY,
    indicator=lambda c: (
        (
            "min(("
            f"1 - ((sum{c.by()}(rate({c.s('loadgen_request_failures_total', 'loadgen')}[{{w}}])) or {c.zero('loadgen')})"
            f" / sum{c.by()}(rate({c.s('loadgen_requests_total', 'loadgen')}[{{w}}])))"
            f") or min({c.s('ticketero_probe_success', 'exporter')}))"
        )
        if c.profile == "run"
        else "1 - :http_server_requests_seconds_errors:ratio_rate5m"
    ),
    unit="success ratio",
    rules=_rnf06_rules,
    indicators=lambda c: [
        Indicator("loadgen_requests_total", "loadgen")
        if c.profile == "run"
        else Indicator("http_server_requests_seconds_count", "service"),
        Indicator("ticketero_probe_success", "exporter"),
    ],
    panel=Panel(
        "Success ratio",
        lambda c: (
            ":loadgen_requests_success:ratio_run"
            if c.profile == "run"
            else "1 - :http_server_requests_seconds_errors:ratio_rate5m"
        ),
        "percentunit",
        "Share of requests answered without error (the load run's in a test run, the service's own 5xx in "
        "staging).",
    ),
    exercise=Exercise(
        lambda c: (
            f"sum(max_over_time({c.s('loadgen_requests_total', 'loadgen')}[{{range}}]))"
            if c.profile == "run"
            else f"sum(increase({c.s('http_server_requests_seconds_count', 'service')}[{{range}}]))"
        ),
        distinguishable(AVAILABILITY),
        "requests",
        "at least 1 / (1 - target) = {minimum} requests, so that one failure does not already decide the ratio",
    ),
    figure="success_ratio",
    load_threshold=("error_rate", "max", round(1 - AVAILABILITY.value, 12)),
)

# ---------------------------------------------------------------------------------------------- RNF-07


def _rnf07_rules(n: Nfr, c: Ctx) -> list[Rule]:
    t = n.limit.promql
    growth = f"{(n.limit.value - 1) * 100:g} %"
    windows = ("30m", "24h") if c.profile == "staging" else ("30m",)
    rules = []
    for window in windows:
        long = window == "24h"
        for source, series, who in (
            ("container", f"container:ticketero_container_memory_working_set_bytes:growth_ratio{window}",
             "The working set of {{ $labels.container }}"),
            ("process", f"job:process_resident_memory_bytes:growth_ratio{window}",
             "The resident memory reported by {{ $labels.job }}"),
        ):  # fmt: skip
            span = "24 hours" if long else "30 minutes"
            rules.append(
                alert(
                    c, n, "TicketeroMemoryGrowth", f"{c.r(series)} > {t}",
                    "1h" if long else ("15m" if c.profile == "staging" else "2m"),
                    f"Service memory grew more than {growth} over {span}.",
                    f"{who} averaged over the last 5 minutes is {{{{ $value | printf \"%.2f\" }}}} times its "
                    f"average {span} earlier (limit {t}).",
                    severity="warning" if c.profile == "staging" else "critical",
                    comment=f"{n.id}: no memory leak; {growth} growth over {span} is the tolerance."
                    if source == "container"
                    else "",
                    source=source,
                    **({"window": window} if c.profile == "staging" else {}),
                )
            )  # fmt: skip
    return rules


def _memory_indicators(c: Ctx) -> list[Indicator]:
    process = Indicator("process_resident_memory_bytes", "service")
    return [
        Indicator(
            "ticketero_container_memory_working_set_bytes",
            "exporter",
            (c.container(),),
            alternative=process,
        )
    ]


RNF07 = Nfr(
    id="RNF-07",
    title="Resources",
    requirement="no memory leak: service memory {threshold} over 30 min",
    limit=Threshold(1.2, "<", "growth ratio"),
    indicator=lambda c: (
        f"max{c.by()}({c.s('ticketero_container_memory_working_set_bytes', 'exporter', c.container())})"
        f" or max{c.by()}({c.s('process_resident_memory_bytes', 'service')})"
    ),
    unit="bytes",
    rules=_rnf07_rules,
    indicators=_memory_indicators,
    figure="memory_growth_ratio",
    panel=Panel(
        "Memory growth over 30 min",
        lambda c: (
            "max(container:ticketero_container_memory_working_set_bytes:growth_ratio30m)"
            " or max(job:process_resident_memory_bytes:growth_ratio30m)"
        ),
        "short",
        "Service memory (last 5 min average) over its average 30 minutes earlier.",
    ),
    relative=True,
)

NFRS: tuple[Nfr, ...] = (RNF01, RNF02, RNF03, RNF04, RNF05, RNF06, RNF07)
NFR_IDS = tuple(n.id for n in NFRS)


# ----------------------------------------------------------------------------------- SLO burn-rate alerts


def slo_budget(nfr: Nfr) -> float:
    """Error budget = 1 - objective (99.9 % → 0.001)."""
    return round(1 - nfr.limit.value, 12)


def _burn_rate_alerts(c: Ctx, n: Nfr, name: str, slo: str, bad: str) -> list[Rule]:
    budget = slo_budget(n)
    record = f":http_server_requests_seconds_{'slow' if slo == 'latency' else 'errors'}:ratio_rate"
    rules = []
    for severity, factor, long, short, for_ in BURN_RATE_WINDOWS:
        limit = number(factor * budget)
        spent = "page" if severity == "critical" else "ticket"
        rules.append(
            alert(
                c, n, name,
                f"{c.r(record + long)} > {limit}\nand {c.on()}\n{c.r(record + short)} > {limit}",
                for_,
                f"The {slo} SLO ({n.limit.text()} over {SLO_PERIOD}) burns its error budget {number(factor)}x too fast.",
                f"{{{{ $value | humanizePercentage }}}} {bad} over the last {long} (and over {short}), against a "
                f"budget of {budget * 100:g} %: at this pace the {SLO_PERIOD} budget is gone in "
                f"{_budget_time(factor)}.",
                severity=severity,
                comment=f"{n.id} SLO: burn rate {number(factor)} over {long} and {short} ({spent})."
                if factor == BURN_RATE_WINDOWS[0][1] or severity == "warning"
                else "",
                slo=slo,
                long_window=long,
                short_window=short,
            )
        )  # fmt: skip
    return rules


def _budget_time(factor: float) -> str:
    days = 30 / factor
    return f"{days:.1f} days" if days >= 1 else f"{days * 24:.0f} hours"


# ------------------------------------------------------------------------------------- run-level figures


def counted(selector: str, by: str = "") -> str:
    """Growth of a counter over the window, exact for series born inside it.

    ``increase()`` cannot see what a counter gained before its first scrape, which for a series born during
    the run (the load generator's, a new queue's) is most of it. Instead: the highest value in the window
    minus the value at the window's start (``@ {start}``); a series absent at the start counts from zero.
    """
    group = f" by ({by})" if by else ""
    top = f"sum{group} (max_over_time({selector}[{{range}}]))"
    return f"(({top} - sum{group} ({selector} @ {{start}})) or {top})"


@dataclass(frozen=True)
class Figure:
    """A run-level figure of the reports.

    ``over`` says which span it covers: ``load`` = the load window (evaluated at its end), ``window`` = the
    judged window, load plus settle (work finished or faults seen during the settle period count)."""

    key: str
    label: str
    expr: str  # {range} spans the figure's window, {start} is its start (unix seconds)
    unit: str
    nfr: str = ""  # the NFR whose threshold the report prints beside it
    over: str = "window"
    estimate: bool = (
        False  # read from histogram buckets: an estimate, the load generator has the exact figure
    )


def _peak(metric: str) -> str:
    return f"max(max_over_time({metric}[{{range}}]))"


def _share_within_bound(c: Ctx, histogram: str, source: str) -> str:
    """Share of ``histogram``'s observations in its latency-bound bucket over the window."""
    return f"{counted(c.s(f'{histogram}_bucket', source, LE_MATCHER))} / {counted(c.s(f'{histogram}_count', source))}"


def figures(c: Ctx) -> tuple[Figure, ...]:
    """Run-level figures for the report, read with ``c``'s selectors (the same ones the rules use, so on a
    shared Prometheus a figure counts only the judged environment). An empty ``expr`` is worked out by the
    verdict from the others. No ``or vector(0)`` on a figure whose source may be missing: a missing
    exporter is "no data", never 0."""
    memory = c.s("ticketero_container_memory_working_set_bytes", "exporter", c.container())
    rss = c.s("process_resident_memory_bytes", "service")
    return (
        Figure("throughput_per_minute", "Throughput under load (completed / minutes of load)", "", "tickets/min", "RNF-01"),
        Figure("success_ratio", "Requests that succeeded (whole run)", "", "ratio", "RNF-06"),
        Figure("memory_growth_ratio", "Service memory growth (max / min - 1)", "", "ratio", "RNF-07"),
        Figure("tickets_created", "Tickets created", counted(c.s("ticketero_tickets_created_total", "exporter")), "tickets"),
        Figure("tickets_completed", "Tickets completed (load + settle)", counted(c.s("ticketero_tickets_completed_total", "exporter")), "tickets"),
        Figure(
            "tickets_completed_under_load", "Tickets completed under load",
            counted(c.s("ticketero_tickets_completed_total", "exporter")), "tickets", over="load",
        ),
        Figure("requests", "Requests sent", counted(c.s("loadgen_requests_total", "loadgen")), "requests"),
        Figure(
            "request_failures",
            "Requests failed",
            f"{counted(c.s('loadgen_request_failures_total', 'loadgen'))} or 0 * {counted(c.s('loadgen_requests_total', 'loadgen'))}",
            "requests",
        ),
        *(
            Figure(
                f"latency_p{q}_seconds",
                f"API latency p{q} (estimate from histogram buckets)",
                f"histogram_quantile(0.{q}, {counted(c.s('loadgen_request_duration_seconds_bucket', 'loadgen'), 'le')})",
                "s",
                estimate=True,
            )
            for q in ("95", "99")
        ),
        Figure(
            "ratio_within_2s",
            f"Requests answered within {number(LATENCY_BOUND_SECONDS)} s (whole run)",
            _share_within_bound(c, "loadgen_request_duration_seconds", "loadgen"),
            "ratio",
            "RNF-02",
        ),
        Figure(
            "service_ratio_within_2s",
            f"Requests within {number(LATENCY_BOUND_SECONDS)} s (service histogram)",
            _share_within_bound(c, "http_server_requests_seconds", "service"),
            "ratio",
            "RNF-02",
        ),
        Figure(
            "probe_success_ratio",
            "Health probe success",
            f"avg(avg_over_time({c.s('ticketero_probe_success', 'exporter')}[{{range}}]))",
            "ratio",
            "RNF-06",
        ),
        Figure(
            "race_conditions",
            "Race conditions seen (peak gauges + counted events)",
            f"{_peak(c.s('ticketero_advisors_double_assigned', 'exporter'))}"
            f" + ({_peak(c.s('ticketero_tickets_duplicate_active', 'exporter'))} or vector(0))"
            f" + ({counted(c.s('ticketero_database_deadlocks_total', 'exporter'))} or vector(0))"
            f" + ({counted(c.s('ticketero_tickets_double_assigned_total', 'exporter'))} or vector(0))",
            "violations",
            "RNF-03",
        ),
        Figure(
            "inconsistencies",
            "Inconsistencies seen (peak of each check, summed)",
            f"sum(max_over_time({c.s('ticketero_tickets_inconsistent', 'exporter')}[{{range}}]))"
            f" + ({_peak(c.s('ticketero_tickets_without_outbox', 'exporter'))} or vector(0))"
            f" + ({_peak(c.s('ticketero_outbox_messages', 'exporter', FAILED))} or vector(0))"
            f" + (max(max_over_time(abs({c.s('ticketero_advisor_served_drift', 'exporter')})[{{range}}:])) or vector(0))",
            "violations",
            "RNF-04",
        ),
        Figure(
            "max_busy_heartbeat_age_seconds",
            "Oldest BUSY heartbeat",
            _peak(c.s("ticketero_advisor_busy_heartbeat_age_max_seconds", "exporter")),
            "s",
            "RNF-05",
        ),
        Figure("recovery_events", "Recovery events", counted(c.s("ticketero_recovery_events_total", "exporter")), "events"),
        Figure("deadlocks", "Deadlocks", counted(c.s("ticketero_database_deadlocks_total", "exporter")), "deadlocks"),
        Figure(
            "max_db_connections",
            "DB connections (max)",
            _peak(c.s("ticketero_database_connections", "exporter")),
            "connections",
        ),  # fmt: skip
        Figure(
            "memory_max_bytes", "Service memory (max)",
            f"max(max_over_time({memory}[{{range}}])) or max(max_over_time({rss}[{{range}}]))", "bytes",
        ),
        Figure(
            "memory_min_bytes", "Service memory (min)",
            f"min(min_over_time({memory}[{{range}}])) or min(min_over_time({rss}[{{range}}]))", "bytes",
        ),
    )  # fmt: skip


#: The figures with the default config: their keys, labels and units (the same under every config).
FIGURES: tuple[Figure, ...] = figures(Ctx(MixinConfig()))


def figure_by_key(key: str) -> Figure:
    for figure in FIGURES:
        if figure.key == key:
            return figure
    raise KeyError(key)


def nfr_by_id(nfr_id: str) -> Nfr:
    for nfr in NFRS:
        if nfr.id == nfr_id:
            return nfr
    raise KeyError(nfr_id)
