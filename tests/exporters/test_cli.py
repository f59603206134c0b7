"""The command line: settings precedence, exit 2 on bad settings, and /metrics end to end over HTTP."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from exporters.build_info import version
from exporters.config import build_parser, load_settings, mask_secret
from nfr.processes import free_port
from tests.exporters.helpers import add_ticket, connect

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "exporters", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
        timeout=30,
    )


def test_file_then_env_then_flags(tmp_path):
    path = tmp_path / "exporter.yml"
    path.write_text(
        "listen:\n  port: 9300\n  address: 0.0.0.0\npostgres:\n  database_dsn: postgresql://u:filepw@db/ticketero\n"
        "rabbitmq:\n  queues: [a-queue]\nresources:\n  backend: process\n  targets:\n"
        "    ticketero-app: {pid_file: /run/app.pid}\n"
    )
    args = build_parser().parse_args(["--config", str(path), "--listen-port", "9400"])
    settings, sources = load_settings(
        args, {"EXPORTER_LISTEN_PORT": "9350", "EXPORTER_QUEUES": "x-queue,y-queue"}
    )
    assert settings.listen_port == 9400 and sources["listen_port"] == "flag --listen-port"
    assert settings.listen_address == "0.0.0.0"
    assert settings.queues == ("x-queue", "y-queue")
    assert settings.database_dsn == "postgresql://u:filepw@db/ticketero"
    assert settings.targets[0].kind == "pid_file" and settings.targets[0].value == "/run/app.pid"


def test_amqp_url_from_parts(tmp_path):
    path = tmp_path / "exporter.yml"
    path.write_text("rabbitmq:\n  host: mq.internal\n  vhost: ticketero\n  user: svc\n")
    args = build_parser().parse_args(["--config", str(path), "--amqp-port", "5673"])
    settings, _ = load_settings(args, {"EXPORTER_AMQP_PASSWORD": "p@ss/word"})
    assert settings.amqp_url == "amqp://svc:p%40ss%2Fword@mq.internal:5673/ticketero"
    result = run_cli("--config", str(path), "--check-config", env={"EXPORTER_AMQP_PASSWORD": "p@ss/word"})
    assert result.returncode == 0, result.stderr
    assert "svc:***@mq.internal:5672/ticketero" in result.stdout and "p@ss" not in result.stdout


def test_mask_secret():
    assert mask_secret("postgresql://u:s3cret@db:5432/t") == "postgresql://u:***@db:5432/t"
    assert mask_secret("host=db user=u password=s3cret dbname=t") == "host=db user=u password=*** dbname=t"
    assert mask_secret("amqp://guest:guest@127.0.0.1:5672/%2F") == "amqp://guest:***@127.0.0.1:5672/%2F"


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        ("listen:\n  port: 99999\n", {}, ["listen.port", "TCP port"]),
        ("listen:\n  prot: 10187\n", {}, ["listen.prot", "one of listen.address, listen.port"]),
        ("postgress:\n  dsn: x\n", {}, ["postgress", "one of"]),
        ("resources:\n  backend: kubernetes\n", {}, ["resources.backend", "docker, process"]),
        ("resources:\n  backend: docker\n", {}, ["resources.targets", "at least one target"]),
        (
            "resources:\n  backend: docker\n  targets:\n    app: {pid_file: /x}\n",
            {},
            ["resources.targets.app", "container"],
        ),
        (
            "postgres:\n  statement_timeout_seconds: 2\n",
            {},
            ["statement_timeout_seconds", "less than scrape"],
        ),
        ("listen: [1, 2\n", {}, ["(file)", "valid YAML"]),
        (
            "",
            {"EXPORTER_PROBE_TIMEOUT": "soon"},
            ["environment variable EXPORTER_PROBE_TIMEOUT", "probe.timeout"],
        ),
        ("", {"EXPORTER_AMQP_URL": "http://x"}, ["EXPORTER_AMQP_URL", "rabbitmq.url", "amqp://"]),
    ],
)
def test_bad_settings_exit_2_naming_file_and_key(tmp_path, yaml_text, env, expected):
    path = tmp_path / "bad.yml"
    path.write_text(yaml_text)
    result = run_cli("--config", str(path), "--check-config", env=env)
    assert result.returncode == 2, result.stderr
    for fragment in expected:
        assert fragment in result.stderr
    if not env:
        assert str(path) in result.stderr


def test_bad_flag_and_missing_file_exit_2(tmp_path):
    result = run_cli("--listen-port", "http", "--check-config")
    assert result.returncode == 2 and "flag --listen-port" in result.stderr and "listen.port" in result.stderr
    missing = tmp_path / "nope.yml"
    result = run_cli("--config", str(missing))
    assert result.returncode == 2 and str(missing) in result.stderr
    custom = tmp_path / "custom.yml"
    custom.write_text("metrics:\n  - metric_name: a\n    help: h\n    values: []\n    query: q\n")
    result = run_cli("--custom-queries", str(custom), "--check-config")
    assert result.returncode == 2 and str(custom) in result.stderr and "metrics[0].values" in result.stderr


def test_old_dsn_names_still_work_with_one_deprecation_line(tmp_path):
    result = run_cli("--dsn", "postgresql://u@db/flag", "--check-config")
    assert result.returncode == 0, result.stderr
    assert '"postgres.database_dsn": "postgresql://u@db/flag"' in result.stdout
    assert result.stderr.count("--dsn is deprecated, use --database-dsn") == 1
    result = run_cli("--check-config", env={"EXPORTER_DSN": "postgresql://u@db/env"})
    assert '"postgres.database_dsn": "postgresql://u@db/env"' in result.stdout
    assert "EXPORTER_DSN is deprecated, use EXPORTER_DATABASE_DSN" in result.stderr
    path = tmp_path / "old.yml"
    path.write_text("postgres:\n  dsn: postgresql://u@db/file\n")
    result = run_cli("--config", str(path), "--check-config")
    assert '"postgres.database_dsn": "postgresql://u@db/file"' in result.stdout
    assert (
        "postgres.dsn (in " in result.stderr and "is deprecated, use postgres.database_dsn" in result.stderr
    )
    result = run_cli("--dsn", "mysql://u@db/x", "--check-config")
    assert (
        result.returncode == 2
        and "flag --dsn: postgres.database_dsn: expected a PostgreSQL DSN" in result.stderr
    )


def test_durations_take_the_one_syntax():
    result = run_cli("--scrape-timeout", "1m30s", "--statement-timeout", "500ms", "--check-config")
    assert result.returncode == 0, result.stderr
    assert '"scrape_timeout_seconds": 90.0' in result.stdout
    assert '"postgres.statement_timeout_seconds": 0.5' in result.stdout


def test_help_explains_the_order():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "EXPORTER_DATABASE_DSN" in result.stdout and "environment variables" in result.stdout


def test_metrics_endpoint_end_to_end(database_dsn, amqp_url, tmp_path):
    with connect(database_dsn) as conn:
        add_ticket(conn, queue="PERSONAL")
        add_ticket(conn, queue="PERSONAL")
    parts = urllib.parse.urlsplit(database_dsn)
    secret_dsn = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username}:Sup3rSecretPw@{parts.hostname}:{parts.port}")
    )
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(str(os.getpid()))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    env.update(
        EXPORTER_DATABASE_DSN=secret_dsn,
        EXPORTER_AMQP_URL=amqp_url,
        EXPORTER_HEALTH_URL=f"http://127.0.0.1:{free_port()}/actuator/health",
        EXPORTER_RESOURCES_BACKEND="process",
        EXPORTER_RESOURCES_TARGETS=f"ticketero-app=pid_file:{pid_file}",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "exporters", "--listen-port", str(port)],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    body = response.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        lines = set(body.splitlines())
        assert 'ticketero_tickets_active{queue="PERSONAL",status="WAITING"} 2.0' in lines
        assert "ticketero_postgres_up 1.0" in lines
        assert "ticketero_rabbitmq_up 1.0" in lines
        assert "ticketero_probe_success 0.0" in lines
        assert 'ticketero_container_up{container="ticketero-app"} 1.0' in lines
        assert 'ticketero_scrape_collector_success{collector="tickets"} 1.0' in lines
        assert "Sup3rSecretPw" not in body
        # The exporter's own process, interpreter and build.
        assert any(line.startswith("process_resident_memory_bytes ") for line in lines)
        assert any(line.startswith("process_cpu_seconds_total ") for line in lines)
        assert any(line.startswith("python_info{") for line in lines)
        assert (
            f'ticketero_exporter_build_info{{pythonversion="{platform.python_version()}",version="{version()}"}} 1.0'
            in lines
        )
        assert version() != "unknown"
        # Prometheus's own linter: naming, units, counter suffixes, histogram layout.
        lint = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Sup3rSecretPw" not in stderr
    assert f"{parts.username}:***@" in stderr  # the start-up line shows the masked DSN


def test_shipped_settings_example_is_valid():
    result = run_cli("--config", str(REPO / "exporters" / "examples" / "exporter.yml"), "--check-config")
    assert result.returncode == 0, result.stderr
    assert '"resources.backend": "process"' in result.stdout


def test_version_flag_names_the_build() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporters", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == f"python -m exporters {version()}"
