"""Adding an NFR is one definition: a temporary RNF-08 gets its alert, its absent-indicator rule, its verdict
row and its report rows without touching any other file (docs/adding-an-nfr.md walks through it)."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from nfr.catalogue import NFRS, Indicator, Nfr, Panel, Rule, Threshold, alert
from nfr.mixin.build import write_all
from nfr.mixin.config import MixinConfig
from nfr.mixin.ctx import Ctx
from nfr.prometheus import PrometheusServer, free_port, render_config
from nfr.report_text import junit_xml, markdown
from nfr.verdict import PASS, compute_verdict
from tests.nfr.synthetic import SyntheticTicketero, serve

BACKLOG = Threshold(1000, "<", "tickets")
WAITING = 'status="WAITING"'


def _rules(n: Nfr, c: Ctx) -> list[Rule]:
    waiting = c.s("ticketero_tickets_active", "exporter", WAITING)
    return [
        alert(
            c, n, "TicketeroBacklogTooLong", f"sum{c.by()}({waiting}) {n.limit.breach} {n.limit.promql}", "10s",
            "The WAITING backlog is too long.", "{{ $value }} tickets are WAITING.",
        )
    ]  # fmt: skip


RNF08 = Nfr(
    id="RNF-08",
    title="Backlog",
    requirement="WAITING tickets {threshold}",
    limit=BACKLOG,
    indicator=lambda c: f"sum{c.by()}({c.s('ticketero_tickets_active', 'exporter', WAITING)})",
    unit="tickets",
    rules=_rules,
    indicators=lambda c: [Indicator("ticketero_tickets_active", "exporter")],
    panel=Panel("Backlog", lambda c: "sum(ticketero_tickets_active)", "short", "WAITING tickets."),
)
CATALOGUE = (*NFRS, RNF08)


def test_an_extra_nfr_appears_in_rules_verdict_and_reports(tmp_path: Path) -> None:
    write_all(MixinConfig(), tmp_path, nfrs=CATALOGUE)
    nfr_alerts = (tmp_path / "alerts" / "ticketero-nfr.alerts.yml").read_text()
    meta_alerts = (tmp_path / "alerts" / "ticketero-meta.alerts.yml").read_text()
    assert "alert: TicketeroBacklogTooLong" in nfr_alerts and "nfr: RNF-08" in nfr_alerts
    assert 'sum(ticketero_tickets_active{status="WAITING",job="ticketero-exporter"}) >= 1000' in nfr_alerts
    absent = [
        rule
        for rule in yaml.safe_load(meta_alerts)["groups"][0]["rules"]
        if rule["alert"] == "TicketeroNfrIndicatorAbsent" and rule["labels"]["nfr"] == "RNF-08"
    ]
    assert [rule["labels"]["indicator"] for rule in absent] == ["ticketero_tickets_active"]
    overview = json.loads(
        (tmp_path / "grafana" / "dashboards" / "ticketero" / "nfr-overview.json").read_text()
    )
    titles = [panel.get("title", "") for panel in overview["panels"]]
    assert any(title.startswith("RNF-08 Backlog") for title in titles), titles

    collector = SyntheticTicketero()
    port = free_port()
    server, _thread = serve(collector, port)
    rule_files = sorted((tmp_path / "prometheus" / "rules").glob("*.yml")) + sorted(
        (tmp_path / "alerts").glob("*.yml")
    )
    config = render_config(
        tmp_path / "prometheus.yml",
        {job: [f"127.0.0.1:{port}"] for job in ("ticketero-exporter", "loadgen", "ticketero-app")},
        rule_files=rule_files,
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    prometheus = PrometheusServer(config, tmp_path / "data", port=free_port()).start()
    try:
        start = time.time()
        prometheus.wait_for('ticketero_tickets_active{status="WAITING"}', timeout=30)
        time.sleep(13)  # the alert's for: 10s fits in the window, so the NFR can be judged
        verdict = compute_verdict(
            prometheus, start, time.time(), settle=0, rate_window="4s", step=1, nfrs=CATALOGUE
        )
    finally:
        prometheus.stop()
        server.shutdown()
    row = verdict.result("RNF-08")
    assert row.status == PASS, row.reason
    assert row.threshold_text == "< 1000 tickets" and row.requirement == "WAITING tickets < 1000 tickets"
    report = markdown(verdict)
    assert "| RNF-08 | Backlog | < 1000 tickets |" in report
    cases = [case.get("name") for case in ET.fromstring(junit_xml(verdict)).iter("testcase")]
    assert "RNF-08 Backlog" in cases
