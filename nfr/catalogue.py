"""The seven NFRs of the Ticketero plan: threshold, indicator series and the alerts that judge them.

The verdict never re-implements an alert: an NFR fails when one of its alerts (label ``nfr``) fired.
The indicator here serves two other purposes: proving the NFR *had data* (no data is never a pass) and
drawing the NFR over the run in the reports, with its threshold line. Indicators are written on the raw
series of ``docs/metrics.md`` so they work whatever recording rules are loaded; ``{w}`` is replaced by
the rate window the caller chooses (a few scrape intervals).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Nfr:
    """One non-functional requirement and how the reports show it."""

    id: str
    title: str
    requirement: str  # the plan's wording of the threshold
    indicator: str  # PromQL with a {w} placeholder for the rate window
    unit: str
    threshold: float | None  # drawn as a line; None when the threshold is relative (RNF-07)
    higher_is_better: bool
    alerts: tuple[str, ...]
    figure: str = ""  # run-level figure reported as "measured" when no alert fired (else the worst sample)

    def indicator_expr(self, window: str) -> str:
        return self.indicator.replace("{w}", window)

    def worst(self, values: list[float]) -> float | None:
        """The value furthest on the wrong side: the minimum when higher is better, else the maximum."""
        if not values:
            return None
        return min(values) if self.higher_is_better else max(values)


LOADGEN_SUCCESS_RATIO = (
    "1 - ((sum(rate(loadgen_request_failures_total[{w}])) or vector(0))"
    " / sum(rate(loadgen_requests_total[{w}])))"
)

NFRS: tuple[Nfr, ...] = (
    Nfr(
        id="RNF-01",
        title="Throughput",
        requirement="tickets completed per minute >= 50 while demand is there",
        indicator="sum(rate(ticketero_tickets_completed_total[{w}])) * 60",
        unit="tickets/min",
        threshold=50.0,
        higher_is_better=True,
        alerts=("TicketeroThroughputBelowTarget",),
        figure="throughput_per_minute",
    ),
    Nfr(
        id="RNF-02",
        title="API latency",
        requirement="p95 < 2 s, i.e. at least 95 % of requests answered within 2 s",
        indicator=(
            'sum(rate(loadgen_request_duration_seconds_bucket{le="2.0"}[{w}]))'
            " / sum(rate(loadgen_request_duration_seconds_count[{w}]))"
        ),
        unit="ratio <= 2 s",
        threshold=0.95,
        higher_is_better=True,
        alerts=("TicketeroApiLatencyHigh",),
        figure="ratio_within_2s",
    ),
    Nfr(
        id="RNF-03",
        title="Concurrency",
        requirement="0 race conditions (double-assigned advisors, duplicate active tickets, deadlocks)",
        indicator=(
            "max(ticketero_advisors_double_assigned)"
            " + (max(ticketero_tickets_duplicate_active) or vector(0))"
            " + (sum(increase(ticketero_database_deadlocks_total[{w}])) or vector(0))"
            " + (sum(increase(ticketero_tickets_double_assigned_total[{w}])) or vector(0))"
        ),
        unit="violations",
        threshold=0.0,
        higher_is_better=False,
        alerts=("TicketeroRaceConditionDetected",),
    ),
    Nfr(
        id="RNF-04",
        title="Consistency",
        requirement="0 inconsistent tickets, tickets without outbox row, FAILED outbox messages",
        indicator=(
            "sum(ticketero_tickets_inconsistent)"
            " + (sum(ticketero_tickets_without_outbox) or vector(0))"
            ' + (sum(ticketero_outbox_messages{status="FAILED"}) or vector(0))'
        ),
        unit="violations",
        threshold=0.0,
        higher_is_better=False,
        alerts=("TicketeroInconsistentTickets",),
    ),
    Nfr(
        id="RNF-05",
        title="Recovery time",
        requirement="a dead worker is detected < 90 s after its last heartbeat",
        indicator="max(ticketero_advisor_busy_heartbeat_age_max_seconds)",
        unit="s (oldest BUSY heartbeat)",
        threshold=90.0,
        higher_is_better=False,
        alerts=("TicketeroDeadWorkerUndetected", "TicketeroDeadWorkerDetectionSlow"),
    ),
    Nfr(
        id="RNF-06",
        title="Availability",
        requirement="success ratio under load >= 99.9 %, health probe up",
        indicator=f"min(({LOADGEN_SUCCESS_RATIO}) or min(ticketero_probe_success))",
        unit="success ratio",
        threshold=0.999,
        higher_is_better=True,
        alerts=("TicketeroAvailabilityBelowTarget", "TicketeroHealthProbeFailing"),
        figure="success_ratio",
    ),
    Nfr(
        id="RNF-07",
        title="Resources",
        requirement="no memory leak: service memory grows < 20 % over 30 min",
        indicator=(
            'max(ticketero_container_memory_working_set_bytes{container="ticketero-app"})'
            ' or max(process_resident_memory_bytes{job="ticketero-app"})'
        ),
        unit="bytes",
        threshold=None,
        higher_is_better=False,
        alerts=("TicketeroMemoryGrowth",),
    ),
)

NFR_IDS = tuple(n.id for n in NFRS)
META_NFR = "meta"
TARGET_DOWN_ALERT = "TicketeroTargetDown"
INDICATOR_ABSENT_ALERT = "TicketeroNfrIndicatorAbsent"


def counted(selector: str, by: str = "") -> str:
    """Growth of a counter over the window, exact for series born inside it.

    ``increase()`` cannot see what a counter gained before its first scrape, which for a series born during
    the run (the load generator's, a new queue's) is most of it. Instead: the highest value in the window
    minus the value at the window's start (``@ {start}``); a series absent at the start counts from zero.
    """
    group = f" by ({by})" if by else ""
    top = f"sum{group} (max_over_time({selector}[{{range}}]))"
    return f"(({top} - sum{group} ({selector} @ {{start}})) or {top})"


#: Run-level figures for the report, evaluated at the end of the settle period; ``{range}`` spans the whole
#: window and ``{start}`` is its start (unix seconds).
SUMMARY_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("tickets_created", counted("ticketero_tickets_created_total"), "tickets"),
    ("tickets_completed", counted("ticketero_tickets_completed_total"), "tickets"),
    ("requests", counted("loadgen_requests_total"), "requests"),
    ("request_failures", counted("loadgen_request_failures_total") + " or vector(0)", "requests"),
    (
        "latency_p95_seconds",
        f"histogram_quantile(0.95, {counted('loadgen_request_duration_seconds_bucket', 'le')})",
        "s",
    ),
    (
        "latency_p99_seconds",
        f"histogram_quantile(0.99, {counted('loadgen_request_duration_seconds_bucket', 'le')})",
        "s",
    ),
    (
        "ratio_within_2s",
        counted('loadgen_request_duration_seconds_bucket{le="2.0"}')
        + " / "
        + counted("loadgen_request_duration_seconds_count"),
        "ratio",
    ),
    (
        "service_ratio_within_2s",
        counted('http_server_requests_seconds_bucket{le="2.0"}')
        + " / "
        + counted("http_server_requests_seconds_count"),
        "ratio",
    ),
    ("probe_success_ratio", "avg(avg_over_time(ticketero_probe_success[{range}]))", "ratio"),
    (
        "max_busy_heartbeat_age_seconds",
        "max(max_over_time(ticketero_advisor_busy_heartbeat_age_max_seconds[{range}]))",
        "s",
    ),
    ("recovery_events", counted("ticketero_recovery_events_total") + " or vector(0)", "events"),
    ("deadlocks", counted("ticketero_database_deadlocks_total") + " or vector(0)", "deadlocks"),
    (
        "max_db_connections",
        "max(max_over_time(ticketero_database_connections[{range}]))",
        "connections",
    ),
    (
        "memory_max_bytes",
        'max(max_over_time(ticketero_container_memory_working_set_bytes{container="ticketero-app"}[{range}]))',
        "bytes",
    ),
    (
        "memory_min_bytes",
        'min(min_over_time(ticketero_container_memory_working_set_bytes{container="ticketero-app"}[{range}]))',
        "bytes",
    ),
)


def nfr_by_id(nfr_id: str) -> Nfr:
    for nfr in NFRS:
        if nfr.id == nfr_id:
            return nfr
    raise KeyError(nfr_id)
