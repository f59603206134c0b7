"""Shipped scenarios against the reference service on the real PostgreSQL and RabbitMQ.

Proves that the scenario files' SQL matches the schema and that their verdict follows the service's
behaviour: a clean service passes, a service with a race fault is caught by CONC-01's watch.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nfr.processes import free_port
from tests.loadgen.conftest import REPO, read_json, run_loadgen


@contextmanager
def reference_service(dsn: str, amqp_url: str, *flags: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ticketero",
            "--database-dsn",
            dsn,
            "--amqp-url",
            amqp_url,
            "--port",
            str(port),
            *flags,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/actuator/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("the reference service did not start")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _run(scenario: str, url: str, dsn: str, amqp_url: str, summary: Path, *extra: str):
    return run_loadgen(
        "run", scenario, "--target", url, "--database-dsn", dsn, "--amqp-url", amqp_url,
        "--metrics-port", "0", "--summary-json", str(summary), "--progress-interval", "0", *extra,
        timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_spike_outbox_and_contention_scenarios_pass_on_the_reference_service(
    database_dsn: str, amqp_url: str, tmp_path: Path
) -> None:
    with reference_service(database_dsn, amqp_url, "--service-time", "0.05") as url:
        for scenario in ("perf-02-spike", "conc-03-outbox-burst", "contention-one-winner"):
            summary = tmp_path / f"{scenario}.json"
            result = _run(scenario, url, database_dsn, amqp_url, summary)
            document = read_json(summary)
            assert result.returncode == 0, (
                scenario,
                document["error"],
                document["probes"],
                result.stderr[-2000:],
            )
            assert all(probe["ok"] for probe in document["probes"])
        contention = read_json(tmp_path / "contention-one-winner.json")["load"]["contention"]
        assert contention["winners"] == [1] * 5 and contention["losers"] == [49] * 5


@pytest.mark.slow
def test_advisor_race_is_caught_when_the_claim_is_unlocked(
    database_dsn: str, amqp_url: str, tmp_path: Path
) -> None:
    with reference_service(
        database_dsn, amqp_url, "--faults", "unlocked-claim", "--service-time", "3"
    ) as url:
        summary = tmp_path / "conc-01.json"
        result = _run("conc-01-advisor-race", url, database_dsn, amqp_url, summary)
        document = read_json(summary)
        assert result.returncode == 97, document
        assert "watch: broke" in document["error"]
        # the rollback put the advisors back whatever happened
        assert document["actions"][-1]["phase"] == "rollback" and document["actions"][-1]["ok"]
