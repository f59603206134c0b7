"""Prometheus config, recording rules and alerts: promtool checks, unit tests and the alert contract.

promtool is the judge of syntax and of the rule unit tests (``alerts/tests``, ``prometheus/tests``); on
failure the test shows promtool's own output. The contract tests read the YAML to check what promtool
cannot: the names, labels and annotations the verdict and the runbook rely on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfr.catalogue import NFR_IDS as CATALOGUE_IDS
from nfr.catalogue import NFRS, TARGET_DOWN_ALERT
from nfr.mixin.config import MixinConfig

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CONFIG = ROOT / "prometheus" / "prometheus.yml"
RECORDING_RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
ALERT_FILES = sorted((ROOT / "alerts").glob("*.yml"))
RULE_FILES = RECORDING_RULE_FILES + ALERT_FILES
RUNBOOK = ROOT / "docs" / "runbook.md"

#: The alert contract: alert name -> the nfr label it must carry (from the catalogue, profile run).
CONTRACT = {name: nfr.id for nfr in NFRS for name in nfr.alerts} | {TARGET_DOWN_ALERT: "meta"}
NFR_IDS = set(CATALOGUE_IDS)
LINKS = MixinConfig()
SEVERITIES = {"critical", "warning", "info"}
#: Jobs and their metrics paths, as docs/metrics.md names them.
JOBS = {
    "ticketero-exporter": "/metrics",
    "loadgen": "/metrics",
    "ticketero-app": "/actuator/prometheus",
    "rabbitmq": "/metrics",
    "prometheus": "/metrics",
}

pytestmark = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool is not installed")


def promtool(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"promtool failed:\n{result.stdout}\n{result.stderr}"


def alert_rules() -> list[tuple[Path, dict[str, Any]]]:
    rules = []
    for path in ALERT_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [(path, rule) for rule in group["rules"] if "alert" in rule]
    return rules


def recording_rules() -> list[dict[str, Any]]:
    rules = []
    for path in RECORDING_RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "record" in rule]
    return rules


# -- promtool -------------------------------------------------------------------------------------------


def test_config_is_valid_and_finds_every_rule_file() -> None:
    result = promtool("check", "config", CONFIG)
    assert_ok(result)
    assert f"{len(RULE_FILES)} rule files found" in result.stdout, result.stdout


def test_rule_files_are_valid() -> None:
    assert RECORDING_RULE_FILES and ALERT_FILES
    assert_ok(promtool("check", "rules", *RULE_FILES))


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_every_rule_file_has_a_unit_test_file(rule_file: Path) -> None:
    # alerts/x.yml -> alerts/tests/x.test.yml; prometheus/rules/x.yml -> prometheus/tests/x.test.yml
    folder = rule_file.parent.parent if rule_file.parent.name == "rules" else rule_file.parent
    test_file = folder / "tests" / f"{rule_file.stem}.test.yml"
    assert test_file.exists(), f"missing promtool test file {test_file.relative_to(ROOT)}"
    listed = {(test_file.parent / f).resolve() for f in yaml.safe_load(test_file.read_text())["rule_files"]}
    assert rule_file.resolve() in listed, f"{test_file.name} does not load {rule_file.name}"


@pytest.mark.parametrize(
    "test_file",
    sorted((ROOT / "alerts" / "tests").glob("*.test.yml"))
    + sorted((ROOT / "prometheus" / "tests").glob("*.test.yml")),
    ids=lambda p: p.name,
)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    # promtool resolves rule_files relative to its working directory: run it beside the test file.
    assert_ok(promtool("test", "rules", test_file.name, cwd=test_file.parent))


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test_file in (ROOT / "alerts" / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for _, rule in alert_rules()}
    assert names - firing == set(), "alerts without a firing test case"
    assert names - silent == set(), "alerts without a silent test case (or for: boundary)"


def test_every_recording_rule_is_unit_tested() -> None:
    tested = set()
    for test_file in (ROOT / "prometheus" / "tests").glob("*.test.yml"):
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case.get("promql_expr_test", []):
                tested |= set(re.findall(r"[a-z_]*:[a-z0-9_]+:[a-z0-9_]+", check["expr"]))
    assert {rule["record"] for rule in recording_rules()} - tested == set()


# -- contract -------------------------------------------------------------------------------------------


def test_prometheus_config_scrapes_every_job_of_the_metric_contract() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job.get("metrics_path", "/metrics") for job in config["scrape_configs"]}
    assert jobs == JOBS
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]


def test_alert_contract_names_and_nfr_labels() -> None:
    by_name: dict[str, set[str]] = {}
    for _, rule in alert_rules():
        by_name.setdefault(rule["alert"], set()).add(rule["labels"]["nfr"])
    for name, nfr in CONTRACT.items():
        assert by_name.get(name) == {nfr}, f"{name}: nfr labels {by_name.get(name)}, expected {nfr}"
    assert by_name["TicketeroNfrIndicatorAbsent"] == NFR_IDS, "an NFR has no absent-indicator rule"


@pytest.mark.parametrize(
    "rule", [rule for _, rule in alert_rules()], ids=lambda r: f"{r['alert']}-{r['labels'].get('nfr')}"
)
def test_alert_rule_follows_the_style(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert re.fullmatch(r"Ticketero[A-Z][A-Za-z]+", name)
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name} has no for:"
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["severity"] in SEVERITIES
    assert labels["nfr"] in NFR_IDS | {"meta"}
    assert "{{" not in annotations["summary"], "summary must be fixed text"
    assert "$value" in annotations["description"]
    assert annotations["runbook_url"] == f"{LINKS.runbook_url}#{name.lower()}"
    assert annotations["dashboard_url"].startswith(LINKS.dashboard_url + "/d/")


def test_rules_with_the_same_alert_name_are_told_apart_by_a_label() -> None:
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for _, rule in alert_rules():
        key = (rule["alert"], tuple(sorted(rule["labels"].items())))
        assert key not in seen, f"two {rule['alert']} rules with the same labels: {rule['expr']!r}"
        seen[key] = rule["expr"]


def test_recording_rule_names_follow_level_metric_operations() -> None:
    for rule in recording_rules():
        assert re.fullmatch(r"[a-z_]*:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]
        aggregations = re.findall(r"\b(sum|avg|max|min|count)\s*(by|without)?\s*\(", rule["expr"])
        # Every aggregation names its grouping, except a deliberate total (level ":" = no labels).
        for _, grouping in aggregations:
            level = rule["record"].split(":")[0]
            assert grouping or level == "", rule["record"]


def test_runbook_has_an_entry_per_alert_and_defines_severities() -> None:
    text = RUNBOOK.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", text, re.M)
    }
    for name in {rule["alert"] for _, rule in alert_rules()}:
        assert name.lower() in anchors, f"docs/runbook.md has no section '{name}'"
    for severity in SEVERITIES:
        assert re.search(rf"\b{severity}\b", text), f"severity {severity} is not defined in the runbook"
