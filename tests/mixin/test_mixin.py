"""The mixin: committed files equal the build, both profiles pass promtool and amtool, bad configs exit 2,
and a threshold is written in one place only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nfr.catalogue import NFRS
from nfr.mixin.build import write_all
from nfr.mixin.config import MixinConfig

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")


def mixin(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nfr.mixin", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_committed_files_are_the_build_output() -> None:
    result = mixin("build", "--check")
    assert result.returncode == 0, f"run `python -m nfr.mixin build` and commit:\n{result.stderr}"


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    assert mixin("build", "--out", str(tmp_path)).returncode == 0
    rules = tmp_path / "alerts" / "ticketero-nfr.alerts.yml"
    rules.write_text(rules.read_text().replace("> 0", "> 1", 1))
    result = mixin("build", "--out", str(tmp_path), "--check")
    assert result.returncode == 1
    assert "out of date: alerts/ticketero-nfr.alerts.yml" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobz: {service: x}\n", "jobz: unknown key; expected one of profile, jobs, selector"),
        ("selector: env=staging\n", 'selector: expected label matchers like env="staging"'),
        ("group_labels: env\n", "group_labels: expected a list of label names"),
        ("runbook_url: docs/runbook.md\n", "runbook_url: expected an absolute http(s) URL"),
        ("jobs: {database: pg}\n", "jobs: unknown component(s) database"),
        ("- a list\n", "(top level): expected a mapping of mixin settings"),
        ("sweep_age_limit: 2 days\n", "sweep_age_limit: expected a Prometheus duration above zero"),
        ("sweep_age_limit: 0s\n", "sweep_age_limit: expected a Prometheus duration above zero"),
    ],
)
def test_a_bad_config_exits_2_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "mixin.yml"
    config.write_text(text)
    result = mixin("build", "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(config) in result.stderr and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for a bad config"


@pytest.mark.skipif(PROMTOOL is None or AMTOOL is None, reason="promtool / amtool not installed")
@pytest.mark.parametrize("profile", ["run", "staging"])
def test_each_profile_passes_promtool_and_amtool(tmp_path: Path, profile: str) -> None:
    config = tmp_path / "mixin.yml"
    config.write_text('selector: env="staging"\ngroup_labels: [env]\n')
    out = tmp_path / "out"
    assert mixin("build", "--profile", profile, "--config", str(config), "--out", str(out)).returncode == 0
    files = sorted((out / "prometheus" / "rules").glob("*.yml")) + sorted((out / "alerts").glob("*.yml"))
    assert PROMTOOL and AMTOOL
    check = subprocess.run([PROMTOOL, "check", "rules", *map(str, files)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    am = subprocess.run(
        [AMTOOL, "check-config", str(out / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
    )
    assert am.returncode == 0, am.stdout + am.stderr
    alerts = yaml.safe_load((out / "alerts" / "ticketero-nfr.alerts.yml").read_text())["groups"][0]["rules"]
    for rule in alerts:
        # Every raw selector carries the environment; recorded series carry it through the group label.
        for selector in re.findall(r"[a-z_:]+\{[^}]*\}", rule["expr"]):
            assert 'env="staging"' in selector, (rule["alert"], selector)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
def test_staging_burn_rate_alerts_pass_their_promtool_tests(tmp_path: Path) -> None:
    """Page at 14.4x over 1 h and 5 m, silent at 1x, ticket at 1x over 3 d and 6 h, cleared by the short
    window (alerts/tests/staging/)."""
    write_all(MixinConfig(profile="staging"), tmp_path)
    tests = tmp_path / "alerts" / "tests" / "staging"
    tests.mkdir(parents=True)
    for source in (ROOT / "alerts" / "tests" / "staging").glob("*.yml"):
        shutil.copy(source, tests / source.name)
    assert PROMTOOL
    result = subprocess.run(
        [PROMTOOL, "test", "rules", *sorted(p.name for p in tests.glob("*.yml"))],
        cwd=tests,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_staging_profile_pages_on_slos_and_has_tiers() -> None:
    from nfr.mixin.rules import meta_alert_group, nfr_alert_group, recording_groups

    staging = MixinConfig(profile="staging")
    alerts = nfr_alert_group(staging).rules
    burn = [r for r in alerts if r.name.endswith("BudgetBurn")]
    windows = {
        (r.labels["nfr"], r.labels["long_window"], r.labels["short_window"], r.labels["severity"])
        for r in burn
    }
    assert windows == {
        (nfr, long, short, severity)
        for nfr in ("RNF-02", "RNF-06")
        for long, short, severity in (
            ("1h", "5m", "critical"),
            ("6h", "30m", "critical"),
            ("3d", "6h", "warning"),
        )
    }
    assert not any(r.name == "TicketeroApiLatencyHigh" for r in alerts), "staging judges latency on the SLO"
    memory = {r.labels.get("window") for r in alerts if r.name == "TicketeroMemoryGrowth"}
    assert memory == {"30m", "24h"}
    absent = [r for r in meta_alert_group(staging).rules if r.name == "TicketeroNfrIndicatorAbsent"]
    assert {r.labels["severity"] for r in absent} == {"warning", "critical"}
    assert all("loadgen_run_active" not in r.expr for r in absent), "staging absent alerts need no load run"
    records = {r.name for g in recording_groups(staging) for r in g.rules}
    assert {":http_server_requests_seconds_errors:error_budget_remaining30d"} <= records


def test_each_threshold_is_written_once_in_the_source() -> None:
    """Outside the catalogue, no source file states an NFR's number: the generated files, tests and docs
    aside, searching for 0.999 / 99.9 % / 0.95 / 95 % / 1.2 / 90 s finds the catalogue alone."""
    sources = [
        p
        for pattern in ("nfr/**/*.py", "loadgen/**/*.py", "exporters/**/*.py", "loadgen/scenarios/*.yml")
        for p in ROOT.glob(pattern)
    ]
    patterns = {
        "RNF-06 99.9 %": re.compile(r"0\.999\b|99\.9 ?%"),
        "RNF-02 95 %": re.compile(r"(?<![\w.])0\.95\b(?!,)|\b95 ?%"),
        "RNF-07 1.2": re.compile(r"(?<![\w.])1\.2\b(?!\d)"),
        "RNF-05 90 s": re.compile(r"[<>]=? ?90\b"),  # comparisons; "90s" alone is also a common duration
        "RNF-01 50/min": re.compile(r">= ?50\b|\b50 ?tickets ?(/|completed per) ?min"),
    }
    found: dict[str, list[str]] = {name: [] for name in patterns}
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name, pattern in patterns.items():
                if pattern.search(line) and "histogram_quantile(0.95" not in line:
                    found[name].append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    for name, places in found.items():
        others = [p for p in places if not p.startswith("nfr/catalogue.py")]
        assert not others, f"{name} restated outside the catalogue:\n" + "\n".join(others)
    catalogue = (ROOT / "nfr" / "catalogue.py").read_text()
    for nfr in NFRS:
        assert (
            catalogue.count(f"Threshold({nfr.limit.value:g}")
            + catalogue.count(f"Threshold({nfr.limit.value}")
            >= 1
        )


def test_sweep_stale_alert_follows_the_configured_limit_in_both_profiles() -> None:
    from nfr.mixin.rules import meta_alert_group

    for profile in ("run", "staging"):
        config = MixinConfig(profile=profile, sweep_age_limit="36h", selector='env="staging"')
        [rule] = [r for r in meta_alert_group(config).rules if r.name == "TicketeroConsistencySweepStale"]
        assert rule.expr == (
            'ticketero_consistency_sweep_age_seconds{job="ticketero-exporter",env="staging"} > 129600'
        )
        assert "(limit 36 h)" in rule.annotations["description"]
        assert rule.labels == {"severity": "warning", "nfr": "meta"}
