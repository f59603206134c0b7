"""The Ticketero dashboards as Grafana JSON: functions of the mixin config and the NFR catalogue.

``python -m nfr.mixin build`` writes them under grafana/dashboards/ticketero/ (Grafana's file provider loads
them as they are); tests/grafana checks that the committed files match :func:`render_dashboards` for the
default config. No NFR number is written here: thresholds, windows and titles come from ``nfr.catalogue``.

So that a dashboard imports into an existing Grafana that watches more than Ticketero:

* every panel, annotation and variable query uses the ``datasource`` variable (default: ``config.datasource``);
* every selector goes through :class:`~nfr.mixin.ctx.Ctx`, so the config's jobs and extra matchers apply, plus
  the dashboard's own filters: ``job`` and ``instance`` on raw series, one variable per grouping label
  (``env``) on raw and recorded series alike (recording rules keep only the grouping labels);
* annotations mark firing NFR alerts (``ALERTS``) and load runs (``loadgen_run_active``), and a tag link
  joins the dashboards.

The run profile renders four dashboards. The staging profile adds the SLO dashboard, whose recording rules
(``:http_server_requests_seconds_{errors,slow}:ratio_rate<window>``) exist only in the staging rule file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from nfr.catalogue import (
    BURN_RATE_WINDOWS,
    LATENCY_BOUND_SECONDS,
    LE_NAME,
    META_NFR,
    NFRS,
    RNF01,
    RNF02,
    RNF03,
    RNF04,
    RNF05,
    RNF06,
    RNF07,
    SLO_PERIOD,
    SWEEP_STALE_ALERT,
    Nfr,
    Threshold,
    slo_budget,
)
from nfr.mixin.config import MixinConfig, parse_matchers
from nfr.mixin.ctx import Ctx, number
from nfr.promql import parse_duration

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["ticketero", "nfr"]
GREEN, RED, ORANGE, BLUE = "green", "red", "orange", "blue"
FILTERS = ("job", "instance")  # dashboard variables on raw series, besides the grouping labels
#: A recording rule's name (level:metric:operations) where it is used as a series, with its matchers.
_RECORDED = re.compile(r'(?<![\w:"])([a-zA-Z_]*:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+)(\{[^}]*\})?')


@dataclass(frozen=True)
class View:
    """PromQL for one dashboard: the config's selectors with the dashboard's variables pasted in."""

    config: MixinConfig
    nfrs: tuple[Nfr, ...] = NFRS  # the catalogue (a test adds an NFR)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.config.group_labels if g not in FILTERS)

    def group_matchers(self) -> list[str]:
        return [f'{g}=~"${g}"' for g in self.groups]

    @property
    def c(self) -> Ctx:
        """A Ctx whose selector also filters by the dashboard's variables: for raw series."""
        extra = [*(f'{f}=~"${f}"' for f in FILTERS), *self.group_matchers()]
        selector = ",".join(p for p in (self.config.selector.strip().strip(","), *extra) if p)
        return Ctx(replace(self.config, selector=selector))

    @property
    def plain(self) -> Ctx:
        """The config's Ctx without dashboard variables: for the variables' own queries."""
        return Ctx(self.config)

    def scoped(self, expr: str) -> str:
        """Recorded series keep only the grouping labels: filter them by the grouping variables."""
        matchers = self.group_matchers()
        if not matchers:
            return expr

        def add(match: re.Match[str]) -> str:
            inner = (match.group(2) or "{}")[1:-1].strip().strip(",")
            return f"{match.group(1)}{{{','.join(p for p in (inner, *matchers) if p)}}}"

        return _RECORDED.sub(add, expr)

    def alerts(self, *extra: str) -> str:
        """Firing alerts of this mixin (every one carries an ``nfr`` label), in the selected group.

        Not the config's selector: an alert keeps only the labels its expression keeps, which for an
        aggregation are the grouping labels."""
        return "ALERTS{" + ",".join(['alertstate="firing"', 'nfr!=""', *extra, *self.group_matchers()]) + "}"

    def jobs_regex(self) -> str:
        return "|".join(_regex_escape(job) for job in dict.fromkeys(self.config.jobs.values()) if job)


def _regex_escape(text: str) -> str:
    return re.sub(r"([.+*?()\[\]{}|^$\\])", r"\\\\\1", text)


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping to a new row."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, width: int, height: int) -> tuple[int, dict[str, int]]:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        pos = {"x": self.x, "y": self.y, "w": width, "h": height}
        self.x += width
        self.row_height = max(self.row_height, height)
        panel_id, self.next_id = self.next_id, self.next_id + 1
        return panel_id, pos


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, table: bool = False) -> dict:
    t: dict[str, Any] = {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if instant:
        t["instant"], t["range"] = True, False
    if table:
        t["format"] = "table"
    return t


def targets(*queries: tuple[str, str]) -> list[dict]:
    """(expr, legend) pairs with refIds A, B, C ..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def steps(*pairs: tuple[float | None, str]) -> dict:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in pairs]}


def nfr_steps(limit: Threshold) -> dict:
    """Green on the passing side of the NFR's threshold, red on the other."""
    if limit.higher_is_better:
        return steps((None, RED), (limit.value, GREEN))
    if limit.comparator == "<":
        return steps((None, GREEN), (limit.value, RED))
    # "<= 0 violations": the values are counts, so the first breaking value is one above the limit.
    return steps((None, GREEN), (limit.value + 1, RED))


def panel(
    v: View,
    layout: Layout,
    kind: str,
    title: str,
    queries: list[dict],
    *,
    unit: str,
    description: str,
    width: int = 8,
    height: int = 8,
    thresholds: dict | None = None,
    decimals: int | None = None,
    options: dict | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict:
    panel_id, pos = layout.place(width, height)
    defaults: dict[str, Any] = {"unit": unit, "thresholds": thresholds or steps((None, GREEN))}
    if decimals is not None:
        defaults["decimals"] = decimals
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    if kind == "timeseries" and thresholds:
        # Draw the NFR threshold as a line on the graph.
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    for t in queries:
        t["datasource"] = DATASOURCE
        t["expr"] = v.scoped(t["expr"])
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": pos,
        "targets": queries,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "links": links or [],
    }


def stat_options() -> dict:
    return {
        "colorMode": "background",
        "graphMode": "area",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": "value_and_name",
    }


def table_options() -> dict:
    return {"showHeader": True, "footer": {"show": False}}


# -- variables, annotations, links ----------------------------------------------------------------------


def _query_variable(
    name: str, query: str, *, multi: bool, all_value: str | None, current: str | None
) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "name": name,
        "label": name,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": query,  # the classic string form every Grafana version reads
        "refresh": 2,  # on time range change: a new instance shows up without reloading
        "sort": 1,
        "regex": "",
        "hide": 0,
        "multi": multi,
        "includeAll": all_value is not None,
        "options": [],
    }
    if all_value is not None:
        variable["allValue"] = all_value
        variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    elif current:
        variable["current"] = {"selected": True, "text": current, "value": current}
    else:
        variable["current"] = {}
    return variable


def templating(v: View) -> dict[str, Any]:
    """datasource, one variable per grouping label, job (the configured jobs), instance (of those jobs)."""
    ours = f'job=~"{v.jobs_regex()}"'
    chosen_jobs = 'job=~"$job"'
    fixed = {name: value for name, op, value in parse_matchers(v.config.selector) if op == "="}
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {"selected": False, "text": v.config.datasource, "value": v.config.datasource},
            "regex": "",
            "hide": 0,
            "refresh": 1,
            "multi": False,
            "includeAll": False,
            "options": [],
        }
    ]
    grouped: list[str] = []
    for group in v.groups:
        query = f"label_values({v.plain.s('up', None, ours, *grouped)}, {group})"
        variables.append(_query_variable(group, query, multi=False, all_value=None, current=fixed.get(group)))
        grouped.append(f'{group}=~"${group}"')
    variables.append(
        _query_variable(
            "job",
            f"label_values({v.plain.s('up', None, ours, *grouped)}, job)",
            multi=True,
            all_value=v.jobs_regex(),
            current=None,
        )
    )
    variables.append(
        _query_variable(
            "instance",
            f"label_values({v.plain.s('up', None, chosen_jobs, *grouped)}, instance)",
            multi=True,
            all_value=".+",
            current=None,
        )
    )
    return {"list": variables}


def annotation_list(v: View) -> dict[str, Any]:
    run_active = v.c.s("loadgen_run_active", "loadgen")
    return {
        "list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            {
                "name": "NFR alerts",
                "datasource": DATASOURCE,
                "enable": True,
                "iconColor": RED,
                "expr": v.alerts(),
                "step": "10s",
                "titleFormat": "{{alertname}}",
                "textFormat": "{{nfr}} {{severity}} {{alertname}}",
                "tagKeys": "nfr,severity",
                "useValueForTime": False,
            },
            {
                "name": "Load runs",
                "datasource": DATASOURCE,
                "enable": True,
                "iconColor": BLUE,
                "expr": f"max{v.c.by()}({run_active}) == 1",
                "step": "10s",
                "titleFormat": "Load run",
                "textFormat": "the load generator runs a scenario",
                "tagKeys": "",
                "useValueForTime": False,
            },
        ]
    }


def drill_down(title: str, uid: str) -> dict[str, str]:
    """A panel link to another dashboard with the same time range and variables."""
    return {"title": title, "url": f"/d/{uid}?${{__url_time_range}}&${{__all_variables}}"}


def links() -> list[dict[str, Any]]:
    """A drop-down of every Ticketero dashboard, keeping the time range and the variables."""
    return [
        {
            "title": "Ticketero dashboards",
            "type": "dashboards",
            "tags": ["ticketero"],
            "asDropdown": True,
            "includeVars": True,
            "keepTime": True,
            "targetBlank": False,
            "icon": "external link",
            "tooltip": "",
            "url": "",
        }
    ]


def dashboard(v: View, uid: str, title: str, panels: list[dict], description: str, tags: tuple = ()) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [*TAGS, *tags],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 38,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": templating(v),
        "annotations": annotation_list(v),
        "links": links(),
        "panels": panels,
    }


# -- NFR overview ---------------------------------------------------------------------------------------


def _stat_title(nfr: Nfr) -> str:
    return f"{nfr.id} {nfr.panel.title} ({nfr.limit.text()})"


def _decimals(unit: str, limit: Threshold) -> int:
    if unit == "percentunit":
        return 2
    return 0 if limit.unit in ("violations", "s") else 2


def nfr_overview(v: View) -> dict:
    c = v.c
    lay = Layout()
    offered = (":ticketero_tickets_offered:rate1m * 60", "offered/min")
    probe = (f"min({c.s('ticketero_probe_success', 'exporter')})", "health probe")
    beside: dict[str, list[tuple[str, str]]] = {RNF01.id: [offered], RNF06.id: [probe]}
    # Where to look next: the dashboard that shows the NFR's causes.
    details = {
        RNF01.id: ("Queues and outbox", "ticketero-queues-outbox"),
        RNF04.id: ("Queues and outbox", "ticketero-queues-outbox"),
        RNF05.id: ("Recovery", "ticketero-recovery"),
        RNF07.id: ("Soak", "ticketero-soak"),
    }
    if v.config.profile == "staging":
        details |= {slo[0].id: ("SLOs", "ticketero-slo") for slo in SLOS}
    panels = []
    for nfr in v.nfrs:
        panels.append(
            panel(
                v, lay, "stat", _stat_title(nfr),
                targets((nfr.panel.expr(c), nfr.title.lower()), *beside.get(nfr.id, [])),
                width=6,
                unit=nfr.panel.unit,
                decimals=_decimals(nfr.panel.unit, nfr.limit),
                thresholds=nfr_steps(nfr.limit),
                options=stat_options(),
                description=f"{nfr.panel.description} Requirement: {nfr.requirement_text}.",
                links=[drill_down(*details[nfr.id])] if nfr.id in details else None,
            )
        )  # fmt: skip
    panels.append(
        panel(
            v, lay, "stat", "Load run active",
            targets((f"max({c.s('loadgen_run_active', 'loadgen')})", "run")),
            width=6,
            unit="none",
            thresholds=steps((None, BLUE), (1, GREEN)),
            options=stat_options(),
            description="1 while the load generator runs a scenario; the NFRs judged under load need it.",
        )
    )  # fmt: skip
    panels.append(
        panel(
            v, lay, "table", "Firing alerts",
            [target(v.alerts(), "", instant=True, table=True)],
            width=24,
            unit="none",
            options=table_options(),
            description="Every alert of this mixin firing now, from Prometheus's ALERTS series (NFR and meta).",
        )
    )  # fmt: skip
    within = f"within {number(LATENCY_BOUND_SECONDS)} s"
    latency = [(RNF02.panel.expr(c), "as judged")]
    if v.config.profile == "run":
        latency.append((f"endpoint:loadgen_request_duration_seconds_{LE_NAME}:ratio_rate1m", "{{endpoint}}"))
    latency.append((f"uri:http_server_requests_seconds_{LE_NAME}:ratio_rate1m", "service {{uri}}"))
    success = [(RNF06.panel.expr(c), "as judged")]
    if v.config.profile == "run":
        success.append((":loadgen_requests_success:ratio_rate1m", "last minute"))
    panels += [
        panel(
            v, lay, "timeseries", f"{RNF01.id} Throughput over time",
            targets((RNF01.panel.expr(c), "completed/min"), offered),
            width=12,
            unit=RNF01.panel.unit,
            thresholds=nfr_steps(RNF01.limit),
            description=f"Tickets completed and offered per minute; the line is the target "
            f"({RNF01.limit.text()}).",
        ),
        panel(
            v, lay, "timeseries", f"{RNF02.id} Requests {within} over time",
            targets(*latency),
            width=12,
            unit="percentunit",
            thresholds=nfr_steps(RNF02.limit),
            max_value=1,
            description=f"Share of requests answered {within}: the judged figure, then by endpoint (load "
            f"generator) and by uri (the service's own histogram). Target {RNF02.limit.text()}.",
        ),
        panel(
            v, lay, "timeseries", f"{RNF03.id} / {RNF04.id} Violations over time",
            targets((RNF03.panel.expr(c), RNF03.panel.title.lower()), (RNF04.panel.expr(c), RNF04.panel.title.lower())),
            width=12,
            unit="short",
            thresholds=nfr_steps(RNF03.limit),
            description="Race conditions and inconsistencies as the overview's stats count them; a series the "
            "exporter has not published yet counts as 0. Both must stay 0.",
        ),
        panel(
            v, lay, "timeseries", f"{RNF05.id} {RNF05.panel.title} over time",
            targets((RNF05.panel.expr(c), "age")),
            width=12,
            unit=RNF05.panel.unit,
            thresholds=nfr_steps(RNF05.limit),
            description=f"{RNF05.panel.description} Requirement: {RNF05.requirement_text}.",
        ),
        panel(
            v, lay, "timeseries", f"{RNF06.id} {RNF06.panel.title} over time",
            targets(*success),
            width=12,
            unit="percentunit",
            thresholds=nfr_steps(RNF06.limit),
            max_value=1,
            description=f"{RNF06.panel.description} Target {RNF06.limit.text()}.",
        ),
        panel(
            v, lay, "timeseries", f"{RNF07.id} {RNF07.panel.title}, trend",
            targets((RNF07.panel.expr(c), "growth")),
            width=12,
            unit=RNF07.panel.unit,
            thresholds=nfr_steps(RNF07.limit),
            description=f"{RNF07.panel.description} Empty until that much history exists. Requirement: "
            f"{RNF07.requirement_text}.",
        ),
    ]  # fmt: skip
    return dashboard(
        v,
        "ticketero-nfr-overview",
        "Ticketero / NFR overview",
        panels,
        f"One panel per NFR of the plan ({v.nfrs[0].id}..{v.nfrs[-1].id}): current value against its threshold, "
        "and the firing alerts.",
    )


# -- Soak ------------------------------------------------------------------------------------------------


def soak(v: View) -> dict:
    c = v.c
    lay = Layout()
    memory = c.s("ticketero_container_memory_working_set_bytes", "exporter")
    rss = c.s("process_resident_memory_bytes", "service")
    cpu = c.s("process_cpu_seconds_total", "service")
    panels = [
        panel(
            v, lay, "timeseries", "Memory working set by container",
            targets(
                ("container:ticketero_container_memory_working_set_bytes:avg5m", "{{container}} (5m avg)"),
                (memory, "{{container}}"),
            ),
            width=12,
            unit="bytes",
            description="Working set of each watched container (raw and averaged over 5 minutes): a leak is a "
            "rising trend under a steady load.",
        ),
        panel(
            v, lay, "timeseries", "Service resident memory",
            targets((rss, "{{instance}}")),
            width=12,
            unit="bytes",
            description="Resident memory the service process reports itself, per instance.",
        ),
        panel(
            v, lay, "timeseries", f"Memory growth over 30 min ({RNF07.id}, {RNF07.limit.text()})",
            targets(
                ("container:ticketero_container_memory_working_set_bytes:growth_ratio30m", "{{container}}"),
                ("job:process_resident_memory_bytes:growth_ratio30m", "{{job}} RSS"),
            ),
            width=12,
            unit="short",
            thresholds=nfr_steps(RNF07.limit),
            description=f"{RNF07.panel.description} The line is the limit.",
        ),
        panel(
            v, lay, "timeseries", "CPU by container",
            targets(
                ("container:ticketero_container_cpu_usage_seconds:rate1m", "{{container}}"),
                (f"rate({cpu}[$__rate_interval])", "service process {{instance}}"),
            ),
            width=12,
            unit="percentunit",
            description="CPU time per second of each watched container and of the service process (1 = one core).",
        ),
        panel(
            v, lay, "timeseries", "Throughput (tickets/min)",
            targets((":ticketero_tickets_created:rate1m * 60", "created"), (RNF01.panel.expr(c), "completed")),
            width=12,
            unit=RNF01.panel.unit,
            thresholds=nfr_steps(RNF01.limit),
            description=f"Tickets created and completed per minute; the line is {RNF01.id}'s target "
            f"({RNF01.limit.text()}).",
        ),
        panel(
            v, lay, "timeseries", "Request latency p95 / p99",
            targets(
                ("endpoint:loadgen_request_duration_seconds:p95_rate1m", "p95 {{endpoint}}"),
                ("endpoint:loadgen_request_duration_seconds:p99_rate1m", "p99 {{endpoint}}"),
            ),
            width=12,
            unit="s",
            thresholds=steps((None, GREEN), (LATENCY_BOUND_SECONDS, RED)),
            description=f"Latency the load generator measured, estimated from its histogram; the line is "
            f"{RNF02.id}'s bound ({number(LATENCY_BOUND_SECONDS)} s).",
        ),
        panel(
            v, lay, "timeseries", "Requests per second by status class",
            targets(("endpoint_status_class:loadgen_requests:rate1m", "{{endpoint}} {{status_class}}")),
            width=12,
            unit="reqps",
            description="Requests the load generator sent, by endpoint and answer class (2xx, 4xx, 5xx, error).",
        ),
        panel(
            v, lay, "timeseries", "Database connections",
            targets((c.s("ticketero_database_connections", "exporter"), "connections")),
            width=12,
            unit="none",
            description="Connections to the Ticketero database: a pool that grows over a soak leaks connections.",
        ),
    ]  # fmt: skip
    return dashboard(
        v,
        "ticketero-soak",
        "Ticketero / Soak",
        panels,
        "Memory, CPU, throughput and latency over a long run: a leak or a slow degradation shows as a trend.",
    )


# -- Queues and outbox -------------------------------------------------------------------------------------


def queues_outbox(v: View) -> dict:
    c = v.c
    lay = Layout()
    ex = "exporter"
    panels = [
        panel(
            v, lay, "timeseries", "WAITING backlog by queue",
            targets(("queue:ticketero_tickets_waiting:sum", "{{queue}}")),
            width=12,
            unit="none",
            description="Tickets WAITING per queue: a backlog that keeps growing means the workers cannot keep up.",
        ),
        panel(
            v, lay, "timeseries", "Oldest WAITING ticket by queue",
            targets((c.s("ticketero_ticket_oldest_waiting_age_seconds", ex), "{{queue}}")),
            width=12,
            unit="s",
            description="Age of the oldest WAITING ticket per queue.",
        ),
        panel(
            v, lay, "bargauge", "Active tickets by queue and status",
            [target(f"sum{c.by('queue', 'status')}({c.s('ticketero_tickets_active', ex)})", "{{queue}} {{status}}", instant=True)],
            width=12,
            unit="none",
            options={"displayMode": "basic", "orientation": "horizontal"},
            description="Tickets not yet completed, per queue and status, now.",
        ),
        panel(
            v, lay, "timeseries", "Completed per queue (tickets/min)",
            targets(("queue:ticketero_tickets_completed:rate1m * 60", "{{queue}}")),
            width=12,
            unit="none",
            description="Tickets completed per minute and queue.",
        ),
        panel(
            v, lay, "timeseries", "RabbitMQ messages ready / unacked",
            targets(
                (c.s("ticketero_queue_messages_ready", ex), "ready {{queue}}"),
                (c.s("ticketero_queue_messages_unacked", ex), "unacked {{queue}}"),
            ),
            width=12,
            unit="none",
            description="Messages waiting in each RabbitMQ queue, and delivered but not yet acknowledged.",
        ),
        panel(
            v, lay, "timeseries", "Consumers (live workers) per queue",
            targets((c.s("ticketero_queue_consumers", ex), "{{queue}}")),
            width=12,
            unit="none",
            thresholds=steps((None, RED), (1, GREEN)),
            description="Consumers on each queue: a queue without one is served by nobody.",
        ),
        panel(
            v, lay, "timeseries", "Outbox PENDING / FAILED",
            targets((c.s("ticketero_outbox_messages", ex), "{{status}}")),
            width=8,
            unit="none",
            description=f"Outbox rows not yet published, by status; a FAILED row breaks {RNF04.id}.",
        ),
        panel(
            v, lay, "timeseries", "Outbox oldest PENDING and publish lag p95",
            targets(
                (c.s("ticketero_outbox_oldest_pending_age_seconds", ex), "oldest pending"),
                (":ticketero_outbox_publish_lag_seconds:p95_rate5m", "publish lag p95"),
            ),
            width=8,
            unit="s",
            description="Age of the oldest PENDING outbox row, and the time from insert to publish (p95, 5 min).",
        ),
        panel(
            v, lay, "timeseries", "Outbox sent per second",
            targets(
                (":ticketero_outbox_messages_sent:rate1m", "sent"),
                (c.s("ticketero_outbox_pending_attempts_max", ex), "max attempts (pending)"),
            ),
            width=8,
            unit="none",
            description="Outbox messages the relay published per second, and the most publish attempts of a "
            "row still PENDING.",
        ),
        panel(
            v, lay, "timeseries", "Ticket wait time p95 by queue",
            targets(("queue:ticketero_ticket_wait_seconds:p95_rate5m", "{{queue}}")),
            width=12 if v.config.jobs.get("broker") else 24,
            unit="s",
            description="Time from creation to being called, p95 over 5 minutes, per queue.",
        ),
    ]  # fmt: skip
    if v.config.jobs.get("broker"):
        received = c.s("rabbitmq_global_messages_received_total", "broker")
        delivered = c.s("rabbitmq_global_messages_delivered_total", "broker")
        panels.append(
            panel(
                v, lay, "timeseries", "RabbitMQ broker: publish and deliver rates",
                targets(
                    (f"sum(rate({received}[$__rate_interval]))", "published"),
                    (f"sum(rate({delivered}[$__rate_interval]))", "delivered"),
                ),
                width=12,
                unit="reqps",
                description="Messages published to and delivered by the whole broker (rabbitmq_prometheus).",
            )
        )  # fmt: skip
    limit = v.config.sweep_age_limit
    panels.append(
        panel(
            v, lay, "timeseries", "History-wide consistency checks: age of the last complete sweep",
            targets((c.s("ticketero_consistency_sweep_age_seconds", ex), "{{check}}")),
            width=24,
            unit="s",
            thresholds=steps((None, GREEN), (parse_duration(limit), RED)),
            description="Time since the last complete sweep of the history began, per history-wide check "
            f"({RNF04.id}): a violation on an old row older than this is counted; 0 means the check is read "
            f"whole at every scrape through an index. Past {limit} (sweep_age_limit) "
            f"{SWEEP_STALE_ALERT} fires.",
        )
    )  # fmt: skip
    return dashboard(
        v,
        "ticketero-queues-outbox",
        "Ticketero / Queues and outbox",
        panels,
        "Where tickets wait: database backlog per queue, RabbitMQ queues and consumers, the outbox.",
    )


# -- Recovery -----------------------------------------------------------------------------------------------


def recovery(v: View) -> dict:
    c = v.c
    lay = Layout()
    ex = "exporter"
    bound = f"{number(RNF05.limit.value)} s"
    age = RNF05.panel.expr(c)
    detection = "ticketero_recovery_detection_seconds"
    panels = [
        panel(
            v, lay, "gauge", f"{RNF05.panel.title} ({RNF05.id}, {RNF05.limit.text()})",
            targets((age, "age")),
            width=8,
            unit=RNF05.panel.unit,
            thresholds=nfr_steps(RNF05.limit),
            min_value=0,
            max_value=2 * RNF05.limit.value,
            options={"showThresholdMarkers": True},
            description=RNF05.panel.description,
        ),
        panel(
            v, lay, "stat", f"Recoveries slower than {bound} (since exporter start)",
            targets((f":ticketero_recovery_detection_seconds_over{number(RNF05.limit.value)}s:sum", "slow")),
            width=8,
            unit="none",
            thresholds=steps((None, GREEN), (1, RED)),
            options=stat_options(),
            description=f"Dead workers detected more than {bound} after their last heartbeat: each one breaks "
            f"{RNF05.id}.",
        ),
        panel(
            v, lay, "stat", "BUSY advisors without a ticket",
            targets((f"max({c.s('ticketero_advisors_busy_without_ticket', ex)})", "advisors")),
            width=8,
            unit="none",
            thresholds=steps((None, GREEN), (1, ORANGE)),
            options=stat_options(),
            description="Advisors BUSY with no CALLED / IN_PROGRESS ticket: recovery pending, or an "
            f"inconsistency ({RNF04.id}) once it lasts.",
        ),
        panel(
            v, lay, "timeseries", f"{RNF05.panel.title} over time",
            targets((age, "age")),
            width=12,
            unit=RNF05.panel.unit,
            thresholds=nfr_steps(RNF05.limit),
            description=f"{RNF05.panel.description} The line is the bound.",
        ),
        panel(
            v, lay, "timeseries", "Advisors by status",
            targets((f"sum{c.by('status')}({c.s('ticketero_advisors', ex)})", "{{status}}")),
            width=12,
            unit="none",
            description="Advisors AVAILABLE, BUSY and OFFLINE.",
        ),
        panel(
            v, lay, "timeseries", "Recovery events by type",
            targets(
                (f"sum{c.by('type')}(increase({c.s('ticketero_recovery_events_total', ex)}[$__rate_interval]))", "{{type}}")
            ),
            width=12,
            unit="none",
            description="Recoveries per interval: advisors freed from a dead worker, tickets handed back.",
        ),
        panel(
            v, lay, "timeseries", "Detection latency (last heartbeat -> detected)",
            targets(
                (
                    f"histogram_quantile(0.99, sum{c.by('le')}(increase({c.s(detection + '_bucket', ex)}[5m])))",
                    "p99 (5m)",
                ),
                (
                    f"sum(increase({c.s(detection + '_sum', ex)}[5m])) / sum(increase({c.s(detection + '_count', ex)}[5m]))",
                    "mean (5m)",
                ),
            ),
            width=12,
            unit="s",
            thresholds=nfr_steps(RNF05.limit),
            description=f"Time from a dead worker's last heartbeat to its detection, over 5 minutes; the line is "
            f"{RNF05.id}'s bound.",
        ),
        panel(
            v, lay, "table", "Recovery and probe alerts",
            [target(v.alerts(f'nfr=~"{RNF05.id}|{RNF06.id}|{META_NFR}"'), "", instant=True, table=True)],
            width=24,
            height=6,
            unit="none",
            options=table_options(),
            description=f"Firing alerts of {RNF05.id}, {RNF06.id} (health probe) and the meta alerts (targets down).",
        ),
    ]  # fmt: skip
    return dashboard(
        v,
        "ticketero-recovery",
        "Ticketero / Recovery",
        panels,
        f"Dead-worker detection ({RNF05.id}): heartbeat age of BUSY advisors, recovery events and their latency.",
    )


# -- SLO (staging) ----------------------------------------------------------------------------------------

#: The SLOs of the staging profile: NFR, the bad-event kind of its recording rules, the SLO's name, a good
#: request in words.
SLOS = (
    (RNF02, "slow", "latency", f"answered within {number(LATENCY_BOUND_SECONDS)} s"),
    (RNF06, "errors", "availability", "answered without a 5xx"),
)


def slo_windows() -> list[str]:
    """Every window the staging rules record a ratio for: the burn-rate windows and the SLO period."""
    seconds = {"m": 60, "h": 3600, "d": 86400}
    windows = {w for _severity, _factor, long, short, _for in BURN_RATE_WINDOWS for w in (long, short)}
    return sorted(windows | {SLO_PERIOD}, key=lambda w: int(w[:-1]) * seconds[w[-1]])


def burn_steps() -> dict:
    """A line per burn-rate factor the alerts use: orange for the ticket, red for the page."""
    factors = sorted({(factor, severity) for severity, factor, *_ in BURN_RATE_WINDOWS})
    return steps((None, GREEN), *((f, RED if s == "critical" else ORANGE) for f, s in factors))


def slo(v: View) -> dict:
    lay = Layout()
    panels = []
    for nfr, kind, name, good in SLOS:
        ratio = f":http_server_requests_seconds_{kind}:ratio_rate"
        remaining = f":http_server_requests_seconds_{kind}:error_budget_remaining{SLO_PERIOD}"
        budget = number(slo_budget(nfr))
        share = f"{slo_budget(nfr) * 100:g} %"
        objective = f"{nfr.limit.text()} over {SLO_PERIOD}"
        pages = ", ".join(
            f"{number(f)} over {long} and {short} ({s})" for s, f, long, short, _for in BURN_RATE_WINDOWS
        )
        panels += [
            panel(
                v, lay, "stat", f"{nfr.id} {name} SLI over {SLO_PERIOD}",
                targets((f"1 - {ratio}{SLO_PERIOD}", "SLI")),
                width=6,
                unit="percentunit",
                decimals=3,
                thresholds=nfr_steps(nfr.limit),
                options=stat_options(),
                description=f"Share of the service's own requests {good} over {SLO_PERIOD} (objective "
                f"{objective}), from its http_server_requests_seconds histogram.",
            ),
            panel(
                v, lay, "stat", f"{nfr.id} {name} error budget remaining ({SLO_PERIOD})",
                targets((remaining, "remaining")),
                width=6,
                unit="percentunit",
                decimals=1,
                thresholds=steps((None, RED), (0, GREEN)),
                options=stat_options(),
                description=f"Share of the {SLO_PERIOD} error budget ({share} of requests) left: 1 = untouched, "
                "below 0 = overspent.",
            ),
            panel(
                v, lay, "timeseries", f"{nfr.id} {name} error budget remaining over time",
                targets((remaining, "remaining")),
                width=12,
                unit="percentunit",
                thresholds=steps((None, RED), (0, GREEN)),
                description=f"The {SLO_PERIOD} error budget left, over time: a steep fall is a burn the alerts "
                "below watch.",
            ),
            panel(
                v, lay, "timeseries", f"{nfr.id} {name} SLI per window",
                targets(*((f"1 - {ratio}{w}", w) for w in slo_windows())),
                width=12,
                unit="percentunit",
                thresholds=nfr_steps(nfr.limit),
                description=f"Share of requests {good} over each window the burn-rate alerts read; the line is "
                f"the objective ({nfr.limit.text()}).",
            ),
            panel(
                v, lay, "timeseries", f"{nfr.id} {name} burn rate per window",
                targets(*((f"{ratio}{w} / {budget}", w) for w in slo_windows())),
                width=12,
                unit="none",
                thresholds=burn_steps(),
                description=f"Bad-request ratio over the error budget ({budget}): 1 spends the budget in exactly "
                f"{SLO_PERIOD}. The alerts fire at {pages}.",
            ),
        ]  # fmt: skip
    panels.append(
        panel(
            v, lay, "table", "SLO alerts",
            [target(v.alerts(f'nfr=~"{"|".join(slo[0].id for slo in SLOS)}"'), "", instant=True, table=True)],
            width=24,
            height=6,
            unit="none",
            options=table_options(),
            description="Firing alerts of the SLO NFRs: burn-rate alerts with their slo, long_window and "
            "short_window labels, and the health probe.",
        )
    )  # fmt: skip
    return dashboard(
        v,
        "ticketero-slo",
        "Ticketero / SLOs",
        panels,
        f"{' and '.join(slo[0].id for slo in SLOS)} as SLOs over {SLO_PERIOD} on the service's own requests: "
        "SLI per window, burn rate against the alerts' factors, error budget left.",
        tags=("slo",),
    )


DASHBOARDS: dict[str, Callable[[View], dict]] = {
    "nfr-overview.json": nfr_overview,
    "soak.json": soak,
    "queues-outbox.json": queues_outbox,
    "recovery.json": recovery,
}
STAGING_DASHBOARDS: dict[str, Callable[[View], dict]] = {"slo.json": slo}


def render_dashboards(config: MixinConfig, nfrs: tuple[Nfr, ...] = NFRS) -> dict[str, dict[str, Any]]:
    """File name -> dashboard document, for ``config`` (the SLO dashboard only in the staging profile)."""
    chosen = dict(DASHBOARDS)
    if config.profile == "staging":
        chosen.update(STAGING_DASHBOARDS)
    view = View(config, nfrs)
    return {name: json.loads(json.dumps(build(view), sort_keys=True)) for name, build in chosen.items()}
