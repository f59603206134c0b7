"""One Prometheus shared by two Ticketero environments and another team's job that is down.

Environment ``a`` is healthy, environment ``b`` has a double-assigned advisor (RNF-03), and the job
``other-team`` points at a port nobody listens on. The rules of both environments are built from the same
catalogue with their own config (``selector: env="a"`` / ``env="b"``, ``group_labels: [env]``) and loaded
side by side. Only b's fault fires, and only with env="b"; the foreign job fires none of our alerts; the
verdict of each environment reads its own alerts; in Alertmanager, b's TargetDown mutes b's NFR alerts but
not a's, and a foreign TargetDown mutes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nfr.mixin.build import write_all
from nfr.mixin.config import MixinConfig
from nfr.promclient import PrometheusClient
from nfr.prometheus import PrometheusServer, free_port
from nfr.verdict import FAIL, PASS, compute_verdict
from tests.nfr.synthetic import SyntheticTicketero, serve
from tests.rules.test_alertmanager import ALERTMANAGER, alert, post_alerts, running_alertmanager

JOBS = ("ticketero-exporter", "loadgen", "ticketero-app")


def env_config(env: str) -> MixinConfig:
    return MixinConfig(selector=f'env="{env}"', group_labels=("env",))


@dataclass
class Shared:
    client: PrometheusClient
    start: float
    rules: dict[str, Path]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    work = tmp_path_factory.mktemp("shared")
    healthy, broken = SyntheticTicketero(), SyntheticTicketero()
    broken.set(double_assigned=1.0)
    ports = {"a": free_port(), "b": free_port()}
    servers = [serve(healthy, ports["a"]), serve(broken, ports["b"])]
    scrape_configs = [
        {
            # Each environment's endpoint plays the three components, relabelled to the jobs the rules select.
            "job_name": f"{env}-{job}",
            "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"env": env}}],
            "relabel_configs": [{"target_label": "job", "replacement": job}],
        }
        for env, port in ports.items()
        for job in JOBS
    ]
    scrape_configs.append(
        {"job_name": "other-team", "static_configs": [{"targets": [f"127.0.0.1:{free_port()}"]}]}
    )
    rules: dict[str, Path] = {}
    rule_files: list[str] = []
    for env in ports:
        out = work / f"rules-{env}"
        write_all(env_config(env), out)
        rules[env] = out
        rule_files += [str(p) for p in sorted((out / "prometheus" / "rules").glob("*.yml"))]
        rule_files += [str(p) for p in sorted((out / "alerts").glob("*.yml"))]
    config = work / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": rule_files,
                "scrape_configs": scrape_configs,
            }
        )
    )
    prometheus = PrometheusServer(config, work / "data", port=free_port()).start()
    try:
        start = time.time()
        # The race alert has for: 10s; TargetDown (for: 15s) would have fired by 25 s if it were going to.
        prometheus.wait_for(
            'ALERTS{alertname="TicketeroRaceConditionDetected",alertstate="firing"}', timeout=60
        )
        time.sleep(max(0.0, start + 25 - time.time()))
        yield Shared(prometheus, start, rules)
    finally:
        prometheus.stop()
        for server, _thread in servers:
            server.shutdown()


def firing(client: PrometheusClient) -> list[dict[str, str]]:
    return [item["metric"] for item in client.query('ALERTS{alertstate="firing"}')]


def test_only_the_broken_environment_fires_and_the_foreign_job_fires_nothing_of_ours(shared: Shared) -> None:
    alerts = firing(shared.client)
    assert shared.client.scalar('up{job="other-team"}') == 0, "the foreign job must really be down"
    race = [a for a in alerts if a["alertname"] == "TicketeroRaceConditionDetected"]
    assert race and all(a["env"] == "b" for a in race), race
    ours = [
        a for a in alerts if a.get("nfr", "").startswith("RNF-") or a["alertname"] == "TicketeroTargetDown"
    ]
    assert all(a.get("env") == "b" for a in ours), ours
    assert not [a for a in alerts if a["alertname"] == "TicketeroTargetDown"], alerts


def test_each_environment_gets_its_own_verdict(shared: Shared) -> None:
    end = time.time() - 1
    a = compute_verdict(
        shared.client, shared.start + 5, end, settle=0, rate_window="4s", step=1, config=env_config("a")
    )
    b = compute_verdict(
        shared.client, shared.start + 5, end, settle=0, rate_window="4s", step=1, config=env_config("b")
    )
    assert a.result("RNF-03").status == PASS, a.result("RNF-03").reason
    assert b.result("RNF-03").status == FAIL
    assert {alert.labels["env"] for alert in b.result("RNF-03").alerts} == {"b"}
    # Neither verdict is touched by the other team's job being down.
    assert not a.target_down and not b.target_down
    assert 'env="a"' in a.result("RNF-03").indicator_expr
    # The report's figures read each environment's own series too: b's double assignment is not a's.
    assert a.figures["race_conditions"] == 0
    assert b.figures["race_conditions"] == 1


@pytest.mark.skipif(ALERTMANAGER is None, reason="alertmanager is not installed")
def test_inhibition_stays_inside_its_environment(shared: Shared, tmp_path: Path) -> None:
    config = shared.rules["a"] / "alertmanager" / "alertmanager.yml"
    assert yaml.safe_load(config.read_text())["inhibit_rules"][0]["equal"] == ["env"]
    with running_alertmanager(config, tmp_path) as url:
        post_alerts(
            url,
            [
                alert("TicketeroRaceConditionDetected", severity="critical", nfr="RNF-03", env="a", job="x"),
                alert("TicketeroRaceConditionDetected", severity="critical", nfr="RNF-03", env="b", job="x"),
                # Another team's down target, under any name, inhibits nothing of ours.
                alert("TicketeroTargetDown", severity="critical", nfr="meta", env="a", job="other-team"),
            ],
        )
        time.sleep(2)
        assert _states(url) == {"a": "active", "b": "active"}
        post_alerts(
            url, [alert("TicketeroTargetDown", severity="critical", nfr="meta", env="b", job="ticketero-app")]
        )
        deadline = time.monotonic() + 15
        while _states(url)["b"] != "suppressed":
            assert time.monotonic() < deadline, _states(url)
            time.sleep(0.5)
        assert _states(url)["a"] == "active"


def _states(url: str) -> dict[str, str]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as resp:
        alerts = json.loads(resp.read())
    return {
        a["labels"]["env"]: a["status"]["state"]
        for a in alerts
        if a["labels"]["alertname"] == "TicketeroRaceConditionDetected"
    }
