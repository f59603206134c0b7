"""The Ticketero dashboards as Grafana JSON, rendered by ``python -m nfr.mixin build``.

The JSON files under grafana/dashboards/ticketero/ are committed (Grafana's file provider loads them as
they are); this module is how they are made, so that every panel shares the same datasource, unit
conventions and threshold colours. tests/grafana checks that the committed files match its output.
"""

from __future__ import annotations

import json
from typing import Any

from nfr.mixin.config import MixinConfig

DATASOURCE = {"type": "prometheus", "uid": "ticketero-prometheus"}
GREEN, RED, ORANGE = "green", "red", "orange"


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


def steps(*pairs: tuple[float | None, str]) -> dict:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in pairs]}


def panel(
    layout: Layout,
    kind: str,
    title: str,
    targets: list[dict],
    *,
    width: int = 8,
    height: int = 8,
    unit: str = "short",
    thresholds: dict | None = None,
    description: str = "",
    decimals: int | None = None,
    options: dict | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
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
    for t in targets:
        t["datasource"] = DATASOURCE
    return {
        "id": panel_id,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": pos,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
    }


def stat_options() -> dict:
    return {
        "colorMode": "background",
        "graphMode": "area",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": "value_and_name",
    }


def dashboard(uid: str, title: str, panels: list[dict], description: str) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ticketero", "nfr"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 38,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


# -- NFR overview ---------------------------------------------------------------------------------------


def nfr_overview() -> dict:
    lay = Layout()
    stat = stat_options()
    panels = [
        panel(
            lay,
            "stat",
            "RNF-01 Throughput (>= 50 tickets/min)",
            [
                target(":ticketero_tickets_completed:rate1m * 60", "completed/min"),
                target(":ticketero_tickets_offered:rate1m * 60", "offered/min", "B"),
            ],
            width=6,
            unit="none",
            decimals=1,
            thresholds=steps((None, RED), (50, GREEN)),
            options=stat,
            description="Tickets completed per minute (red below 50). Judged only when at least 50/min "
            "are offered or the backlog grows; offered load shown beside it.",
        ),
        panel(
            lay,
            "stat",
            "RNF-02 Requests within 2 s (>= 95 %)",
            [target(":loadgen_request_duration_seconds_le2s:ratio_rate1m", "loadgen")],
            width=6,
            unit="percentunit",
            decimals=2,
            thresholds=steps((None, RED), (0.95, GREEN)),
            options=stat,
            description="Share of requests in the 2 s bucket over the last minute: p95 < 2 s "
            "holds exactly when this is at least 95 %.",
        ),
        panel(
            lay,
            "stat",
            "RNF-03 Race conditions (= 0)",
            [
                target(
                    "max(ticketero_advisors_double_assigned)"
                    " + max(ticketero_tickets_duplicate_active)"
                    " + (sum(increase(ticketero_database_deadlocks_total[5m])) or vector(0))"
                    " + (sum(increase(ticketero_tickets_double_assigned_total[5m])) or vector(0))",
                    "violations",
                )
            ],
            width=6,
            unit="none",
            decimals=0,
            thresholds=steps((None, GREEN), (1, RED)),
            options=stat,
            description="Double-assigned advisors + duplicate active tickets, plus deadlocks and tickets "
            "completed while their advisor served another ticket, in the last 5 minutes.",
        ),
        panel(
            lay,
            "stat",
            "RNF-04 Inconsistencies (= 0)",
            [
                target(
                    "sum(ticketero_tickets_inconsistent)"
                    " + sum(ticketero_tickets_without_outbox)"
                    ' + (sum(ticketero_outbox_messages{status="FAILED"}) or vector(0))',
                    "violations",
                )
            ],
            width=6,
            unit="none",
            decimals=0,
            thresholds=steps((None, GREEN), (1, RED)),
            options=stat,
            description="Tickets breaking a state rule + tickets without outbox row + FAILED outbox messages.",
        ),
        panel(
            lay,
            "stat",
            "RNF-05 Oldest BUSY heartbeat (< 90 s)",
            [target("max(ticketero_advisor_busy_heartbeat_age_max_seconds)", "age")],
            width=6,
            unit="s",
            decimals=0,
            thresholds=steps((None, GREEN), (60, ORANGE), (90, RED)),
            options=stat,
            description="A dead worker must be recovered before its heartbeat is 90 s old.",
        ),
        panel(
            lay,
            "stat",
            "RNF-06 Success ratio of the run (>= 99.9 %)",
            [
                target(":loadgen_requests_success:ratio_run", "run"),
                target("min(ticketero_probe_success)", "health probe", "B"),
            ],
            width=6,
            unit="percentunit",
            decimals=3,
            thresholds=steps((None, RED), (0.999, GREEN)),
            options=stat,
            description="Requests that got the expected answer since the run started; the health "
            "probe shows 100 % (UP) or 0 % (DOWN).",
        ),
        panel(
            lay,
            "stat",
            "RNF-07 Memory growth over 30 min (< 1.2x)",
            [
                target(
                    'max(container:ticketero_container_memory_working_set_bytes:growth_ratio30m{container="ticketero-app"})'
                    ' or max(job:process_resident_memory_bytes:growth_ratio30m{job="ticketero-app"})',
                    "growth",
                )
            ],
            width=6,
            unit="none",
            decimals=2,
            thresholds=steps((None, GREEN), (1.1, ORANGE), (1.2, RED)),
            options=stat,
            description="Last 5 minutes' average memory over the average 30 minutes earlier "
            "(empty until 30 minutes of history exist).",
        ),
        panel(
            lay,
            "stat",
            "Load run active",
            [target("max(loadgen_run_active)", "run")],
            width=6,
            unit="none",
            thresholds=steps((None, "blue"), (1, GREEN)),
            options=stat,
            description="1 while the load generator runs a scenario. NFR-01/02/06 are judged under load.",
        ),
        panel(
            lay,
            "table",
            "Firing alerts",
            [target('ALERTS{alertstate="firing"}', "", instant=True, table=True)],
            width=24,
            height=8,
            options={"showHeader": True, "footer": {"show": False}},
            description="Every alert firing now, from Prometheus's ALERTS series (NFR and meta).",
        ),
        panel(
            lay,
            "timeseries",
            "RNF-01 Throughput over time",
            [
                target(":ticketero_tickets_completed:rate1m * 60", "completed/min"),
                target(":ticketero_tickets_offered:rate1m * 60", "offered/min", "B"),
            ],
            width=12,
            unit="none",
            thresholds=steps((None, RED), (50, GREEN)),
        ),
        panel(
            lay,
            "timeseries",
            "RNF-02 Requests within 2 s over time",
            [
                target("endpoint:loadgen_request_duration_seconds_le2s:ratio_rate1m", "{{endpoint}}"),
                target("uri:http_server_requests_seconds_le2s:ratio_rate1m", "service {{uri}}", "B"),
            ],
            width=12,
            unit="percentunit",
            thresholds=steps((None, RED), (0.95, GREEN)),
            max_value=1,
        ),
        panel(
            lay,
            "timeseries",
            "RNF-05 Oldest BUSY heartbeat over time",
            [target("max(ticketero_advisor_busy_heartbeat_age_max_seconds)", "age")],
            width=12,
            unit="s",
            thresholds=steps((None, GREEN), (90, RED)),
        ),
        panel(
            lay,
            "timeseries",
            "RNF-06 Success ratio over time",
            [
                target(":loadgen_requests_success:ratio_rate1m", "last minute"),
                target(":loadgen_requests_success:ratio_run", "run", "B"),
            ],
            width=12,
            unit="percentunit",
            thresholds=steps((None, RED), (0.999, GREEN)),
            max_value=1,
        ),
    ]
    return dashboard(
        "ticketero-nfr-overview",
        "Ticketero / NFR overview",
        panels,
        "One panel per NFR of the plan (RNF-01..07): current value against its threshold, and the firing alerts.",
    )


# -- Soak ------------------------------------------------------------------------------------------------


def soak() -> dict:
    lay = Layout()
    panels = [
        panel(
            lay,
            "timeseries",
            "Memory working set by container",
            [
                target(
                    "container:ticketero_container_memory_working_set_bytes:avg5m", "{{container}} (5m avg)"
                ),
                target("ticketero_container_memory_working_set_bytes", "{{container}}", "B"),
            ],
            width=12,
            unit="bytes",
        ),
        panel(
            lay,
            "timeseries",
            "Service resident memory",
            [target('process_resident_memory_bytes{job="ticketero-app"}', "{{instance}}")],
            width=12,
            unit="bytes",
        ),
        panel(
            lay,
            "timeseries",
            "Memory growth over 30 min (RNF-07, < 1.2x)",
            [
                target(
                    "container:ticketero_container_memory_working_set_bytes:growth_ratio30m", "{{container}}"
                ),
                target("job:process_resident_memory_bytes:growth_ratio30m", "{{job}} RSS", "B"),
            ],
            width=12,
            unit="none",
            thresholds=steps((None, GREEN), (1.2, RED)),
        ),
        panel(
            lay,
            "timeseries",
            "CPU by container",
            [
                target("container:ticketero_container_cpu_usage_seconds:rate1m", "{{container}}"),
                target(
                    'rate(process_cpu_seconds_total{job="ticketero-app"}[$__rate_interval])',
                    "service process",
                    "B",
                ),
            ],
            width=12,
            unit="percentunit",
        ),
        panel(
            lay,
            "timeseries",
            "Throughput (tickets/min)",
            [
                target(":ticketero_tickets_created:rate1m * 60", "created"),
                target(":ticketero_tickets_completed:rate1m * 60", "completed", "B"),
            ],
            width=12,
            unit="none",
            thresholds=steps((None, RED), (50, GREEN)),
        ),
        panel(
            lay,
            "timeseries",
            "Request latency p95 / p99",
            [
                target("endpoint:loadgen_request_duration_seconds:p95_rate1m", "p95 {{endpoint}}"),
                target("endpoint:loadgen_request_duration_seconds:p99_rate1m", "p99 {{endpoint}}", "B"),
            ],
            width=12,
            unit="s",
            thresholds=steps((None, GREEN), (2, RED)),
        ),
        panel(
            lay,
            "timeseries",
            "Requests per second by status class",
            [target("endpoint_status_class:loadgen_requests:rate1m", "{{endpoint}} {{status_class}}")],
            width=12,
            unit="reqps",
        ),
        panel(
            lay,
            "timeseries",
            "Database connections",
            [target("ticketero_database_connections", "connections")],
            width=12,
            unit="none",
        ),
    ]
    return dashboard(
        "ticketero-soak",
        "Ticketero / Soak",
        panels,
        "Memory, CPU, throughput and latency over a long run: a leak or a slow degradation shows as a trend.",
    )


# -- Queues and outbox -------------------------------------------------------------------------------------


def queues_outbox() -> dict:
    lay = Layout()
    panels = [
        panel(
            lay,
            "timeseries",
            "WAITING backlog by queue",
            [target("queue:ticketero_tickets_waiting:sum", "{{queue}}")],
            width=12,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "Oldest WAITING ticket by queue",
            [target("ticketero_ticket_oldest_waiting_age_seconds", "{{queue}}")],
            width=12,
            unit="s",
        ),
        panel(
            lay,
            "bargauge",
            "Active tickets by queue and status",
            [
                target(
                    "sum by (queue, status) (ticketero_tickets_active)", "{{queue}} {{status}}", instant=True
                )
            ],
            width=12,
            unit="none",
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        panel(
            lay,
            "timeseries",
            "Completed per queue (tickets/min)",
            [target("queue:ticketero_tickets_completed:rate1m * 60", "{{queue}}")],
            width=12,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "RabbitMQ messages ready / unacked",
            [
                target("ticketero_queue_messages_ready", "ready {{queue}}"),
                target("ticketero_queue_messages_unacked", "unacked {{queue}}", "B"),
            ],
            width=12,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "Consumers (live workers) per queue",
            [target("ticketero_queue_consumers", "{{queue}}")],
            width=12,
            unit="none",
            thresholds=steps((None, RED), (1, GREEN)),
        ),
        panel(
            lay,
            "timeseries",
            "Outbox PENDING / FAILED",
            [target("ticketero_outbox_messages", "{{status}}")],
            width=8,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "Outbox oldest PENDING and publish lag p95",
            [
                target("ticketero_outbox_oldest_pending_age_seconds", "oldest pending"),
                target(":ticketero_outbox_publish_lag_seconds:p95_rate5m", "publish lag p95", "B"),
            ],
            width=8,
            unit="s",
        ),
        panel(
            lay,
            "timeseries",
            "Outbox sent per second",
            [
                target(":ticketero_outbox_messages_sent:rate1m", "sent"),
                target("ticketero_outbox_pending_attempts_max", "max attempts (pending)", "B"),
            ],
            width=8,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "Ticket wait time p95 by queue",
            [target("queue:ticketero_ticket_wait_seconds:p95_rate5m", "{{queue}}")],
            width=12,
            unit="s",
        ),
        panel(
            lay,
            "timeseries",
            "RabbitMQ broker: publish and deliver rates",
            [
                target("sum(rate(rabbitmq_global_messages_received_total[$__rate_interval]))", "published"),
                target(
                    "sum(rate(rabbitmq_global_messages_delivered_total[$__rate_interval]))", "delivered", "B"
                ),
            ],
            width=12,
            unit="none",
        ),
    ]
    return dashboard(
        "ticketero-queues-outbox",
        "Ticketero / Queues and outbox",
        panels,
        "Where tickets wait: database backlog per queue, RabbitMQ queues and consumers, the outbox.",
    )


# -- Recovery -----------------------------------------------------------------------------------------------


def recovery() -> dict:
    lay = Layout()
    panels = [
        panel(
            lay,
            "gauge",
            "Oldest BUSY heartbeat (RNF-05, < 90 s)",
            [target("max(ticketero_advisor_busy_heartbeat_age_max_seconds)", "age")],
            width=8,
            unit="s",
            thresholds=steps((None, GREEN), (60, ORANGE), (90, RED)),
            min_value=0,
            max_value=180,
            options={"showThresholdMarkers": True},
        ),
        panel(
            lay,
            "stat",
            "Recoveries slower than 90 s (since exporter start)",
            [target(":ticketero_recovery_detection_seconds_over90s:sum", "slow")],
            width=8,
            unit="none",
            thresholds=steps((None, GREEN), (1, RED)),
            options=stat_options(),
        ),
        panel(
            lay,
            "stat",
            "BUSY advisors without a ticket",
            [target("max(ticketero_advisors_busy_without_ticket)", "advisors")],
            width=8,
            unit="none",
            thresholds=steps((None, GREEN), (1, ORANGE)),
            options=stat_options(),
        ),
        panel(
            lay,
            "timeseries",
            "Oldest BUSY heartbeat over time",
            [target("max(ticketero_advisor_busy_heartbeat_age_max_seconds)", "age")],
            width=12,
            unit="s",
            thresholds=steps((None, GREEN), (90, RED)),
        ),
        panel(
            lay,
            "timeseries",
            "Advisors by status",
            [target("sum by (status) (ticketero_advisors)", "{{status}}")],
            width=12,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "Recovery events by type",
            [
                target(
                    "sum by (type) (increase(ticketero_recovery_events_total[$__rate_interval]))", "{{type}}"
                )
            ],
            width=12,
            unit="none",
        ),
        panel(
            lay,
            "timeseries",
            "Detection latency (last heartbeat -> detected)",
            [
                target(
                    "histogram_quantile(0.95, sum by (le) (increase(ticketero_recovery_detection_seconds_bucket[5m])))",
                    "p95 (5m)",
                ),
                target(
                    "sum(increase(ticketero_recovery_detection_seconds_sum[5m]))"
                    " / sum(increase(ticketero_recovery_detection_seconds_count[5m]))",
                    "mean (5m)",
                    "B",
                ),
            ],
            width=12,
            unit="s",
            thresholds=steps((None, GREEN), (90, RED)),
        ),
        panel(
            lay,
            "table",
            "Recovery and probe alerts",
            [target('ALERTS{alertstate="firing", nfr=~"RNF-05|RNF-06|meta"}', "", instant=True, table=True)],
            width=24,
            height=6,
            options={"showHeader": True},
        ),
    ]
    return dashboard(
        "ticketero-recovery",
        "Ticketero / Recovery",
        panels,
        "Dead-worker detection (RNF-05): heartbeat age of BUSY advisors, recovery events and their latency.",
    )


DASHBOARDS = {
    "nfr-overview.json": nfr_overview,
    "soak.json": soak,
    "queues-outbox.json": queues_outbox,
    "recovery.json": recovery,
}


def render_dashboards(config: MixinConfig) -> dict[str, dict[str, Any]]:
    """File name -> dashboard document, for ``config``."""
    return {name: json.loads(json.dumps(build(), sort_keys=True)) for name, build in DASHBOARDS.items()}
