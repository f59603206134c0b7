"""alertmanager/alertmanager.yml: amtool validation, routing by severity, and inhibition in a real Alertmanager."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nfr.prometheus import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
AMTOOL = shutil.which("amtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert AMTOOL
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed")
def test_config_is_valid() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed")
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "nfr=RNF-01"], "pager"),
        (["severity=warning", "nfr=meta"], "work-queue"),
        (["severity=info", "nfr=meta"], "discard"),
        (["nfr=RNF-02"], "work-queue"),
    ],
)
def test_routes_by_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


@contextlib.contextmanager
def running_alertmanager(config: Path, data: Path) -> Iterator[str]:
    """A real Alertmanager on a free port with ``config``; yields its URL, stops it afterwards."""
    assert ALERTMANAGER
    port = free_port()
    log = open(data / "log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((data / "log").read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.skip("alertmanager is not installed")
    with running_alertmanager(CONFIG, tmp_path_factory.mktemp("alertmanager")) as url:
        yield url


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    body = json.dumps(alerts).encode()
    req = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def alert_states(url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as resp:
        alerts = json.loads(resp.read())
    return {
        a["labels"]["alertname"] + "/" + a["labels"].get("job", "-"): a["status"]["state"] for a in alerts
    }


def alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name}}


def test_target_down_inhibits_nfr_alerts_but_loadgen_down_does_not(alertmanager: str) -> None:
    post_alerts(
        alertmanager,
        [
            alert("TicketeroTargetDown", severity="info", nfr="meta", job="loadgen"),
            alert("TicketeroThroughputBelowTarget", severity="critical", nfr="RNF-01", job="x"),
        ],
    )
    time.sleep(1)
    states = alert_states(alertmanager)
    assert states["TicketeroThroughputBelowTarget/x"] == "active", states

    post_alerts(
        alertmanager,
        [alert("TicketeroTargetDown", severity="critical", nfr="meta", job="ticketero-exporter")],
    )
    deadline = time.monotonic() + 15
    while alert_states(alertmanager)["TicketeroThroughputBelowTarget/x"] != "suppressed":
        assert time.monotonic() < deadline, alert_states(alertmanager)
        time.sleep(0.5)
    states = alert_states(alertmanager)
    # The meta alerts themselves are never muted.
    assert states["TicketeroTargetDown/ticketero-exporter"] == "active"
    assert states["TicketeroTargetDown/loadgen"] == "active"
