"""Consistency (RNF-03, RNF-04): the test plan's integrity checks as gauges, plus deadlocks and connections.

Each check means what the plan's SQL (validate-consistency.sh, the race-condition test) means, evaluated on what
``PostgresState`` read in this scrape's snapshot: the checks on active tickets and advisors from the active
tickets it tracks, the checks over the whole history (COMPLETED without completed_at, ticket without an outbox
row, served-counter drift) from its sweep, each published with the age of the last complete sweep
(``ticketero_consistency_sweep_age_seconds{check}``): a violation older than that age is in the figure.

A double assignment lasts only while both tickets are active (about one service time, 2 s by default), so
the ``ticketero_advisors_double_assigned`` gauge, sampled every scrape, usually misses it. The counter
``ticketero_tickets_double_assigned_total`` looks back instead: each ticket seen completing is checked once
against the other tickets of its advisor (still holding it, or completed recently).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.postgres import one
from exporters.postgres_state import SWEEP_CHECKS, PostgresConcernCollector

DATABASE_SQL = """
SELECT d.deadlocks, (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = current_database())
FROM pg_stat_database d WHERE d.datname = current_database()
"""

RULES = ("in_progress_without_started_at", "completed_without_completed_at", "called_without_advisor")


class ConsistencyCollector(PostgresConcernCollector):
    """The plan's consistency checks (inconsistent tickets, advisors, duplicates, outbox atomicity, drift)."""

    name = "consistency"

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_tickets_inconsistent",
                "Tickets breaking a state rule (in_progress_without_started_at, completed_without_completed_at, "
                "called_without_advisor); completed_without_completed_at covers the whole history (see "
                "ticketero_consistency_sweep_age_seconds).",
                labels=["rule"],
            ),
            GaugeMetricFamily(
                "ticketero_advisors_busy_without_ticket", "BUSY advisors with no CALLED / IN_PROGRESS ticket."
            ),
            GaugeMetricFamily(
                "ticketero_advisors_double_assigned",
                "Advisors holding more than one CALLED / IN_PROGRESS ticket (race condition).",
            ),
            GaugeMetricFamily(
                "ticketero_tickets_duplicate_active",
                "(national_id, queue) pairs with more than one active ticket.",
            ),
            GaugeMetricFamily(
                "ticketero_tickets_without_outbox",
                "Tickets with no outbox_message row (ticket + outbox atomicity broken), over the whole history "
                "(see ticketero_consistency_sweep_age_seconds).",
            ),
            GaugeMetricFamily(
                "ticketero_advisor_served_drift",
                "sum(advisor.total_tickets_served) minus COMPLETED tickets with an advisor. The history is counted "
                "by the sweep (absent until the first one is complete), completions since then added as they are "
                "read.",
            ),
            CounterMetricFamily(
                "ticketero_tickets_double_assigned",
                "Tickets that completed while their advisor was serving another ticket (their started_at.."
                "completed_at overlaps another ticket's of the same advisor; race condition), counted once at "
                "completion since the exporter started; survives DELETE FROM ticket.",
            ),
            CounterMetricFamily(
                "ticketero_database_deadlocks", "pg_stat_database.deadlocks of the Ticketero database."
            ),
            GaugeMetricFamily(
                "ticketero_database_connections", "Backends connected to the Ticketero database."
            ),
            GaugeMetricFamily(
                "ticketero_consistency_sweep_age_seconds",
                "Time since the last complete sweep of the history behind a check started: a violation older "
                "than this is in the check's figure (0 when the check reads the whole history at every scrape "
                "through an index).",
                labels=["check"],
            ),
            GaugeMetricFamily(
                "ticketero_consistency_sweep_duration_seconds",
                "How long the last complete sweep of the history took (the first one after start-up included).",
                labels=["check"],
            ),
        ]

    def scrape(self, deadline: float) -> list[Metric]:
        state = self.state
        state.refresh(deadline, "tickets", "outbox", "advisors")
        with state.client.cursor(deadline) as cur:
            cur.execute(DATABASE_SQL)
            deadlocks, connections = one(cur)
        (
            rules_f,
            busy_f,
            double_f,
            dup_f,
            outbox_f,
            drift_f,
            double_total_f,
            deadlocks_f,
            conn_f,
            age_f,
            duration_f,
        ) = self.families()
        out: list[Metric] = []
        swept = state.last_sweep is not None
        if state.active_known:
            summary = state.summary()
            rules_f.add_metric(["in_progress_without_started_at"], summary.in_progress_without_started_at)
            rules_f.add_metric(["called_without_advisor"], summary.called_without_advisor)
            busy_without = sum(1 for a in state.advisors if a[1] == "BUSY" and a[0] not in summary.holders)
            busy_f.add_metric([], busy_without)
            double_f.add_metric([], sum(1 for n in summary.holders.values() if n > 1))
            dup_f.add_metric([], sum(1 for n in summary.pairs.values() if n > 1))
            out += [busy_f, double_f, dup_f]
        if state.completed_rule_by_index or swept:
            rules_f.add_metric(["completed_without_completed_at"], len(state.completed_without_completed_at))
        out.insert(0, rules_f)
        if state.columns.outbox.get("aggregate_id") and swept:
            outbox_f.add_metric([], len(state.without_outbox))
            out.append(outbox_f)
        drift = state.served_drift()
        if drift is not None:
            drift_f.add_metric([], drift)
            out.append(drift_f)
        double_total_f.add_metric([], state.double_assigned_total)
        deadlocks_f.add_metric([], deadlocks)
        conn_f.add_metric([], connections)
        out += [double_total_f, deadlocks_f, conn_f]
        age = state.sweep_age()
        if state.last_sweep is not None and age is not None:
            for check in SWEEP_CHECKS:
                if check == "without_outbox" and not state.columns.outbox.get("aggregate_id"):
                    continue
                fresh = check == "completed_without_completed_at" and state.completed_rule_by_index
                age_f.add_metric([check], 0.0 if fresh else age)
                duration_f.add_metric([check], state.last_sweep.duration)
            out += [age_f, duration_f]
        elif state.completed_rule_by_index:
            age_f.add_metric(["completed_without_completed_at"], 0.0)
            out.append(age_f)
        return out
