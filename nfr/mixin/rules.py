"""Rule groups rendered from the catalogue and a config: recording rules, NFR alerts, meta alerts, and the
Alertmanager inhibitions that go with them.

Recording rules are named ``level:metric:operations``; with grouping labels configured (``[env]``) every
aggregation keeps them, so a shared Prometheus holding several environments never mixes them. Meta alerts
(TargetDown, absent indicators, failing collectors) watch only the configured jobs: a foreign job that is
down in the same Prometheus fires nothing of ours and inhibits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from nfr.catalogue import (
    BURN_RATE_WINDOWS,
    COLLECTOR_FAILING_ALERT,
    INDICATOR_ABSENT_ALERT,
    LATENCY_BOUND_SECONDS,
    LE_MATCHER,
    LE_NAME,
    META_NFR,
    NFRS,
    RNF02,
    RNF05,
    RNF06,
    SLO_PERIOD,
    SWEEP_STALE_ALERT,
    TARGET_DOWN_ALERT,
    Indicator,
    Nfr,
    Rule,
    slo_budget,
)
from nfr.mixin.config import MixinConfig, parse_matchers
from nfr.mixin.ctx import Ctx, bucket, number
from nfr.promql import parse_duration

CREATE = 'endpoint="create_ticket"'
SERVER_ERROR = 'status=~"5.."'


@dataclass(frozen=True)
class Group:
    name: str
    rules: list[Rule]
    comment: str = ""


def _rate(c: Ctx, metric: str, source: str, window: str, *matchers: str, by: tuple[str, ...] = ()) -> str:
    return f"sum{c.by(*by)}(rate({c.s(metric, source, *matchers)}[{window}]))"


def recording_groups(config: MixinConfig) -> list[Group]:
    c = Ctx(config)
    lg = "loadgen"
    ex = "exporter"
    created = "ticketero_tickets_created_total"
    completed = "ticketero_tickets_completed_total"
    waiting = c.s("ticketero_tickets_active", ex, 'status="WAITING"')
    groups = [
        Group(
            "ticketero-throughput.rules",
            [
                Rule(
                    "queue:ticketero_tickets_completed:rate1m",
                    _rate(c, completed, ex, "1m", by=("queue",)),
                    True,
                ),
                Rule(":ticketero_tickets_completed:rate1m", _rate(c, completed, ex, "1m"), True),
                Rule(
                    "queue:ticketero_tickets_created:rate1m", _rate(c, created, ex, "1m", by=("queue",)), True
                ),
                Rule(":ticketero_tickets_created:rate1m", _rate(c, created, ex, "1m"), True),
                Rule(
                    ":ticketero_tickets_offered:rate1m",
                    f"max{c.by()}(\n"
                    f'  label_replace({_rate(c, created, ex, "1m")}, "source", "service", "", "")\n'
                    "  or\n"
                    "  label_replace(\n"
                    f"    {_rate(c, 'loadgen_requests_total', lg, '1m', CREATE)}\n"
                    f"    + ({_rate(c, 'loadgen_arrivals_dropped_total', lg, '1m', CREATE)}"
                    f" or {c.zero('loadgen')}),\n"
                    '    "source", "loadgen", "", ""\n'
                    "  )\n"
                    ")",
                    True,
                    comment="Offered demand: the larger of what the service accepted and what the load generator "
                    "tried to send (answered or failed, plus arrivals it had to drop). Either source alone is "
                    "enough.",
                ),
                Rule("queue:ticketero_tickets_waiting:sum", f"sum{c.by('queue')}({waiting})", True),
                Rule(":ticketero_tickets_waiting:sum", f"sum{c.by()}({waiting})", True),
                Rule(
                    ":ticketero_tickets_waiting:deriv2m",
                    f"deriv({c.r(':ticketero_tickets_waiting:sum')}[2m])",
                    True,
                    comment="Slope of the WAITING backlog (tickets per second, least squares over 2 minutes).",
                ),
            ],
            "Rates are per second over the window in the name; alerts multiply by 60 where the NFR speaks per "
            "minute.",
        ),
        Group("ticketero-latency.rules", _latency_rules(c)),
        Group("ticketero-availability.rules", _availability_rules(c)),
        Group("ticketero-resources.rules", _resource_rules(c)),
        Group("ticketero-queues.rules", _queue_rules(c)),
    ]
    if config.profile == "staging":
        groups.append(Group("ticketero-slo.rules", _slo_rules(c), "SLO ratios per window (Sloth's shape)."))
    return groups


def _latency_rules(c: Ctx) -> list[Rule]:
    lg = "loadgen"
    bucket = "loadgen_request_duration_seconds_bucket"
    count = "loadgen_request_duration_seconds_count"
    service_bucket = "http_server_requests_seconds_bucket"
    service_count = "http_server_requests_seconds_count"
    bound = number(LATENCY_BOUND_SECONDS)
    return [
        Rule(
            "endpoint:loadgen_requests:rate1m",
            _rate(c, "loadgen_requests_total", lg, "1m", by=("endpoint",)),
            True,
        ),
        Rule("job:loadgen_requests:rate1m", _rate(c, "loadgen_requests_total", lg, "1m", by=("job",)), True),
        Rule(
            "endpoint_status_class:loadgen_requests:rate1m",
            _rate(c, "loadgen_requests_total", lg, "1m", by=("endpoint", "status_class")),
            True,
        ),
        Rule(
            "endpoint:loadgen_request_failures:rate1m",
            _rate(c, "loadgen_request_failures_total", lg, "1m", by=("endpoint",)),
            True,
        ),
        Rule(
            f"endpoint:loadgen_request_duration_seconds_{LE_NAME}:ratio_rate1m",
            f"{_rate(c, bucket, lg, '1m', LE_MATCHER, by=('endpoint',))}\n/\n"
            f"{_rate(c, count, lg, '1m', by=('endpoint',))}",
            True,
            comment=f"RNF-02 reads the {bound} s bucket directly: the share of requests answered within {bound} s.",
        ),
        Rule(
            f":loadgen_request_duration_seconds_{LE_NAME}:ratio_rate1m",
            f"{_rate(c, bucket, lg, '1m', LE_MATCHER)}\n/\n{_rate(c, count, lg, '1m')}",
            True,
        ),
        Rule(
            f"uri:http_server_requests_seconds_{LE_NAME}:ratio_rate1m",
            f"{_rate(c, service_bucket, 'service', '1m', LE_MATCHER, by=('uri',))}\n/\n"
            f"{_rate(c, service_count, 'service', '1m', by=('uri',))}",
            True,
        ),
        Rule(
            "endpoint:loadgen_request_duration_seconds:p95_rate1m",
            f"histogram_quantile(0.95, {_rate(c, bucket, lg, '1m', by=('endpoint', 'le'))})",
            True,
        ),
        Rule(
            "endpoint:loadgen_request_duration_seconds:p99_rate1m",
            f"histogram_quantile(0.99, {_rate(c, bucket, lg, '1m', by=('endpoint', 'le'))})",
            True,
        ),
    ]


def _availability_rules(c: Ctx) -> list[Rule]:
    lg = "loadgen"
    failures = c.s("loadgen_request_failures_total", lg)
    requests = c.s("loadgen_requests_total", lg)
    return [
        Rule(
            ":loadgen_requests_success:ratio_run",
            f"1 - (\n  (sum{c.by()}({failures}) or {c.zero(lg)})\n  /\n  sum{c.by()}({requests})\n)",
            True,
            comment="Success ratio over the run window. The load generator's counters start at zero with each "
            "run, so the cumulative counters are the run window; no failure series yet means no failure.",
        ),
        Rule(
            ":loadgen_requests_success:ratio_rate1m",
            f"1 - (\n  ({_rate(c, 'loadgen_request_failures_total', lg, '1m')} or {c.zero(lg)})\n  /\n"
            f"  {_rate(c, 'loadgen_requests_total', lg, '1m')}\n)",
            True,
        ),
    ]


def _growth(c: Ctx, level: str, series: str, window: str) -> str:
    return (
        f"avg{c.by(level)}(avg_over_time({series}[5m]))\n/\n"
        f"avg{c.by(level)}(avg_over_time({series}[5m] offset {window}))"
    )


def _resource_rules(c: Ctx) -> list[Rule]:
    memory = c.s("ticketero_container_memory_working_set_bytes", "exporter")
    rss = c.s("process_resident_memory_bytes", "service")
    windows = ("30m", "24h") if c.profile == "staging" else ("30m",)
    rules = [
        Rule(
            "container:ticketero_container_memory_working_set_bytes:avg5m",
            f"avg{c.by('container')}(avg_over_time({memory}[5m]))",
            True,
        )
    ]
    for window in windows:
        rules.append(
            Rule(
                f"container:ticketero_container_memory_working_set_bytes:growth_ratio{window}",
                _growth(
                    c,
                    "container",
                    c.s("ticketero_container_memory_working_set_bytes", "exporter", c.container()),
                    window,
                ),
                True,
                comment=f"RNF-07: average of the last 5 minutes over the average of the 5 minutes {window} "
                "earlier. Averages smooth garbage-collection saw-teeth; the alert compares the ratio with RNF-07's "
                "limit."
                if window == "30m"
                else "",
            )
        )
        rules.append(
            Rule(
                f"job:process_resident_memory_bytes:growth_ratio{window}",
                _growth(c, "job", rss, window),
                True,
            )
        )
    rules.append(
        Rule(
            "container:ticketero_container_cpu_usage_seconds:rate1m",
            _rate(c, "ticketero_container_cpu_usage_seconds_total", "exporter", "1m", by=("container",)),
            True,
        )
    )
    return rules


def _queue_rules(c: Ctx) -> list[Rule]:
    ex = "exporter"
    detection = "ticketero_recovery_detection_seconds"
    detection_le = f'le="{bucket(RNF05.limit.value)}"'
    return [
        Rule(
            ":ticketero_outbox_messages_sent:rate1m",
            _rate(c, "ticketero_outbox_messages_sent_total", ex, "1m"),
            True,
        ),
        Rule(
            ":ticketero_outbox_publish_lag_seconds:p95_rate5m",
            f"histogram_quantile(0.95, {_rate(c, 'ticketero_outbox_publish_lag_seconds_bucket', ex, '5m', by=('le',))})",
            True,
        ),
        Rule(
            "queue:ticketero_ticket_wait_seconds:p95_rate5m",
            f"histogram_quantile(0.95, {_rate(c, 'ticketero_ticket_wait_seconds_bucket', ex, '5m', by=('queue', 'le'))})",
            True,
        ),
        Rule(
            f":ticketero_recovery_detection_seconds_over{number(RNF05.limit.value)}s:sum",
            f"sum{c.by()}({c.s(detection + '_count', ex)})\n-\n"
            f"sum{c.by()}({c.s(detection + '_bucket', ex, detection_le)})",
            True,
            comment="RNF-05: recoveries detected later than the bound after the worker's last heartbeat, since "
            "exporter start.",
        ),
    ]


def _slo_windows() -> list[str]:
    windows = {w for _sev, _f, long, short, _for in BURN_RATE_WINDOWS for w in (long, short)}
    order = {"m": 60, "h": 3600, "d": 86400}
    return sorted(windows | {SLO_PERIOD}, key=lambda w: int(w[:-1]) * order[w[-1]])


def _slo_rules(c: Ctx) -> list[Rule]:
    """Bad-event ratios of the service's own requests per window, and the budget left over 30 days."""
    svc = "service"
    count = "http_server_requests_seconds_count"
    rules = []
    for index, window in enumerate(_slo_windows()):
        total = _rate(c, count, svc, window)
        rules.append(
            Rule(
                f":http_server_requests_seconds_errors:ratio_rate{window}",
                f"({_rate(c, count, svc, window, SERVER_ERROR)} or {total} * 0)\n/\n{total}",
                True,
                comment="RNF-06 SLO: share of requests answered 5xx (Micrometer's status label)."
                if index == 0
                else "",
            )
        )
        rules.append(
            Rule(
                f":http_server_requests_seconds_slow:ratio_rate{window}",
                f"1 - (\n{_rate(c, 'http_server_requests_seconds_bucket', svc, window, LE_MATCHER)}\n/\n{total}\n)",
                True,
                comment=f"RNF-02 SLO: share of requests slower than {number(LATENCY_BOUND_SECONDS)} s."
                if index == 0
                else "",
            )
        )
    for nfr, kind in ((RNF06, "errors"), (RNF02, "slow")):
        rules.append(
            Rule(
                f":http_server_requests_seconds_{kind}:error_budget_remaining{SLO_PERIOD}",
                f"1 - {c.r(f':http_server_requests_seconds_{kind}:ratio_rate{SLO_PERIOD}')} / {number(slo_budget(nfr))}",
                True,
                comment=f"{nfr.id}: share of the {SLO_PERIOD} error budget left (1 = untouched, < 0 = overspent).",
            )
        )
    return rules


# ------------------------------------------------------------------------------------------ alert groups


def nfr_alert_group(config: MixinConfig, nfrs: tuple[Nfr, ...] = NFRS) -> Group:
    rules = [rule for nfr in nfrs for rule in nfr.alert_rules(config)]
    return Group("ticketero-nfr.alerts", rules)


def _absent_expr(c: Ctx, indicator: Indicator) -> str:
    parts = [f"absent({c.s(indicator.metric, indicator.source, *indicator.matchers, regex=True)})"]
    if indicator.alternative is not None:
        alt = indicator.alternative
        parts.append(f"absent({c.s(alt.metric, alt.source, *alt.matchers, regex=True)})")
    if c.profile == "run":
        parts.append(f"max({c.s('loadgen_run_active', 'loadgen')}) == 1")
    return "\nand on () ".join(parts) if len(parts) > 2 else " and on () ".join(parts)


def meta_alert_group(config: MixinConfig, nfrs: tuple[Nfr, ...] = NFRS) -> Group:
    c = Ctx(config)
    staging = config.profile == "staging"
    needed = [config.jobs[s] for s in ("service", "exporter", "broker") if config.jobs.get(s)]
    jobs = "|".join(needed)
    down_for = "5m" if staging else "15s"
    rules = [
        _target_down(
            c, c.s("up", None, f'job=~"{jobs}"'), down_for, "critical", "",
            "A scrape target of Ticketero is down. Only the configured jobs: another team's job that is down in "
            "the same Prometheus is none of ours.",
        )
    ]  # fmt: skip
    if not staging:
        rules.append(
            _target_down(
                c, c.s("up", "loadgen"), down_for, "info", "; expected between load runs",
                "The load generator only runs during a load run: its absence is context (info).",
            )
        )  # fmt: skip
    rules.append(
        Rule(
            COLLECTOR_FAILING_ALERT,
            f"{c.s('ticketero_scrape_collector_success', 'exporter')} == 0",
            for_="15m" if staging else "15s",
            labels={"severity": "warning", "nfr": META_NFR},
            annotations=_meta_annotations(
                c,
                COLLECTOR_FAILING_ALERT,
                "An exporter collector fails; its metrics are missing.",
                "Collector {{ $labels.collector }} of {{ $labels.instance }} has failed for "
                f"{'15 min' if staging else '15 s'} (success = {{{{ $value }}}}); the NFRs it feeds will report "
                + ("absent indicators." if staging else "absent indicators during a run."),
            ),
        )
    )
    limit = config.sweep_age_limit
    rules.append(
        Rule(
            SWEEP_STALE_ALERT,
            f"{c.s('ticketero_consistency_sweep_age_seconds', 'exporter')} > {number(parse_duration(limit))}",
            # The age only grows until a sweep completes: the limit is the debounce. A short for: keeps the
            # settle period a run derives from its rules (nfr/timing.py) as it was.
            for_="1m",
            labels={"severity": "warning", "nfr": META_NFR},
            annotations=_meta_annotations(
                c,
                SWEEP_STALE_ALERT,
                "A history-wide consistency check has not swept the whole history in time.",
                "Check {{ $labels.check }} of {{ $labels.instance }} last began a complete sweep "
                "{{ $value | humanizeDuration }} ago (limit " + _spoken(limit) + "): an RNF-04 violation on "
                "an old row may have gone unseen that long.",
            ),
            comment="The sweep age grows between sweeps and falls back when one completes: a check that "
            "keeps growing past the limit is stuck or too slow for its database (sweep_age_limit).",
        )
    )
    tiers = (("warning", "10m"), ("critical", "1h")) if staging else (("critical", "30s"),)
    for nfr in nfrs:
        for indicator in nfr.indicators(c):
            for severity, for_ in tiers:
                missing = f"{indicator.metric} has had no sample"
                if indicator.alternative is not None:
                    missing = (
                        f"Neither {indicator.metric} nor {indicator.alternative.metric} of "
                        f"{config.service_container} has had a sample"
                    )
                when = "" if staging else " while loadgen_run_active == 1"
                rules.append(
                    Rule(
                        INDICATOR_ABSENT_ALERT,
                        _absent_expr(c, indicator),
                        for_=for_,
                        labels={
                            "severity": severity,
                            "nfr": nfr.id,
                            "indicator": indicator.metric,
                            **_selector_labels(config),
                        },
                        annotations=_meta_annotations(
                            c,
                            INDICATOR_ABSENT_ALERT,
                            "An NFR indicator is missing; the NFR cannot be judged."
                            if staging
                            else "An NFR indicator is missing during a load run; the NFR cannot be judged.",
                            f"{missing} for {_spoken(for_)}{when}, so {nfr.id} cannot be judged "
                            "(absent = {{ $value }}).",
                        ),
                    )
                )
    return Group("ticketero-meta.alerts", rules)


def _selector_labels(config: MixinConfig) -> dict[str, str]:
    """absent() yields no labels; its alert carries the config's equality matchers (``env="staging"``) as
    labels, so it is routed, inhibited and judged with the rest of its environment."""
    return {name: value for name, op, value in parse_matchers(config.selector) if op == "="}


def _target_down(c: Ctx, up: str, for_: str, severity: str, aside: str, comment: str) -> Rule:
    return Rule(
        TARGET_DOWN_ALERT,
        f"{up} == 0",
        for_=for_,
        labels={"severity": severity, "nfr": META_NFR},
        annotations=_meta_annotations(
            c,
            TARGET_DOWN_ALERT,
            "A scrape target is down; NFRs that depend on it cannot be judged.",
            "Prometheus could not scrape {{ $labels.instance }} of job {{ $labels.job }} for "
            f"{_spoken(for_)} (up = {{{{ $value }}}}){aside}.",
        ),
        comment=comment,
    )


def _spoken(duration: str) -> str:
    """``15s`` → ``15 s``, ``10m`` → ``10 min``; a compound duration (``1d12h``) is left as written."""
    units = {"s": "s", "m": "min", "h": "h", "d": "d"}
    if not (duration[:-1].isdigit() and duration[-1] in units):
        return duration
    return f"{duration[:-1]} {units[duration[-1]]}"


def _meta_annotations(c: Ctx, name: str, summary: str, description: str) -> dict[str, str]:
    return {
        "summary": summary,
        "description": description,
        "runbook_url": c.runbook(name),
        "dashboard_url": c.dashboard("ticketero-nfr-overview"),
    }


def inhibit_rules(config: MixinConfig) -> list[dict[str, object]]:
    """A Ticketero target that is down mutes the NFR alerts it feeds — in its own environment only."""
    jobs = "|".join(config.jobs[s] for s in ("service", "exporter", "broker") if config.jobs.get(s))
    ids = "|".join(n.id for n in NFRS)
    rule: dict[str, object] = {
        "source_matchers": [f'alertname="{TARGET_DOWN_ALERT}"', f'job=~"{jobs}"', 'severity="critical"'],
        "target_matchers": [f'nfr=~"{ids}"'],
    }
    if config.group_labels:
        rule["equal"] = list(config.group_labels)
    return [rule]
