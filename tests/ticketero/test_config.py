"""Settings: defaults → config file → env → flags, and exit code 2 with a clear message on bad input."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.support.services import PG_ADMIN_DSN, dsn_for, unique_name
from tests.ticketero.conftest import PYTHON, REPO
from ticketero.config import OPTIONS, SettingsError, load_settings
from ticketero.faults import parse_faults


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [PYTHON, "-m", "ticketero", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_precedence_default_file_env_flag(tmp_path):
    config = tmp_path / "ticketero.toml"
    config.write_text('workers_per_queue = 4\nadvisors = 7\nservice-time = 1.5\nfaults = "slow-api=1"\n')
    settings = load_settings(
        ["--config", str(config), "--advisors", "9"],
        environ={"TICKETERO_ADVISORS": "8", "TICKETERO_SERVICE_TIME": "0"},
    )
    assert settings.workers_per_queue == 4  # file
    assert settings.service_time == 0.0  # env over file
    assert settings.advisors == 9  # flag over env
    assert settings.faults.slow_api_seconds == 1.0
    assert settings.heartbeat_timeout == 60.0  # default
    assert load_settings(["--no-recovery"], environ={}).recovery is False


def test_bad_values_name_source_key_and_expectation(tmp_path):
    with pytest.raises(
        SettingsError,
        match=r"environment variable TICKETERO_PORT: port: expected a TCP port 1..65535, or 0 to pick a free port",
    ):
        load_settings([], environ={"TICKETERO_PORT": "http"})
    config = tmp_path / "bad.toml"
    config.write_text("worker_count = 3\n")
    with pytest.raises(
        SettingsError, match=r"bad.toml: worker_count: expected a known key: one of advisor_retry_delay"
    ):
        load_settings(["--config", str(config)], environ={})


def test_old_dsn_names_still_work_with_one_deprecation_line(caplog):
    caplog.set_level("WARNING", "ticketero_settings")
    settings = load_settings([], environ={"TICKETERO_DSN": "postgresql://u@db/old"})
    assert settings.database_dsn == "postgresql://u@db/old"
    assert [r.getMessage() for r in caplog.records] == [
        "TICKETERO_DSN is deprecated, use TICKETERO_DATABASE_DSN"
    ]
    result = run_cli("--dsn", "postgresql://u@127.0.0.1:1/x", "--port", "65536")
    assert result.returncode == 2
    assert result.stderr.count("--dsn is deprecated, use --database-dsn") == 1
    assert "flag --port: port: expected a TCP port 1..65535, or 0 to pick a free port" in result.stderr


def test_durations_take_the_one_syntax(tmp_path):
    config = tmp_path / "ticketero.toml"
    config.write_text('shutdown_grace = "1m30s"\nheartbeat_timeout = 90\n')
    settings = load_settings(["--config", str(config), "--service-time", "500ms"], environ={})
    assert (settings.shutdown_grace, settings.heartbeat_timeout, settings.service_time) == (90.0, 90.0, 0.5)


def test_fault_parsing():
    faults = parse_faults("unlocked-claim, memory-leak, slow-api=0.5,stalled-worker,failing-relay")
    assert faults.unlocked_claim and faults.stalled_worker and faults.failing_relay
    assert faults.memory_leak_bytes == 256 * 1024 and faults.slow_api_seconds == 0.5
    assert not parse_faults("").any
    with pytest.raises(ValueError, match="unknown fault 'oops'"):
        parse_faults("oops")


def test_cli_bad_config_exits_2():
    result = run_cli("--workers-per-queue", "0")
    assert result.returncode == 2
    assert "workers_per_queue" in result.stderr and "expected an integer >= 1" in result.stderr
    result = run_cli(env={"TICKETERO_FAULTS": "explode"})
    assert result.returncode == 2 and "TICKETERO_FAULTS" in result.stderr


def test_help_lists_every_option_and_its_default():
    result = run_cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in OPTIONS:
        flag = "--no-recovery" if option.name == "recovery" else "--" + option.name.replace("_", "-")
        assert flag in text
        assert f"TICKETERO_{option.name.upper()}" in text
    assert text.count("(default:") >= len(OPTIONS.options)


def test_missing_database_exits_2_or_is_created_on_request():
    name = unique_name()
    dsn = dsn_for(name)
    result = run_cli("--database-dsn", dsn, "--port", "0")
    assert result.returncode == 2
    assert f"database '{name}' does not exist" in result.stderr and "--create-database" in result.stderr
    try:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "ticketero",
                "--database-dsn",
                dsn,
                "--port",
                "0",
                "--create-database",
                "--amqp-url",
                "amqp://guest:guest@127.0.0.1:1/%2F",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            if "HTTP API listening" in line:
                break
        process.terminate()
        assert process.wait(20) == 0
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM advisor").fetchone() == (5,)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_port_in_use_exits_2(database_dsn):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            "--database-dsn",
            database_dsn,
            "--port",
            str(port),
            "--amqp-url",
            "amqp://guest:guest@127.0.0.1:1/%2F",
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
