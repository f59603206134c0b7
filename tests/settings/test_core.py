"""The settings core every tool declares its options with: validators, file < environment < flag,
deprecated aliases, error messages, and the argument parser generated from the table."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ticketero_settings as core
from ticketero_settings import Option, SettingsError, Table


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        (core.port(), "80", 80),
        (core.port(), 65535, 65535),
        (core.port(zero_means="pick a free port"), "0", 0),
        (core.positive_int(), " 3 ", 3),
        (core.integer(0, 5), 0, 0),
        (core.number(), "0", 0.0),
        (core.number(0, above=True), "0.25", 0.25),
        (core.duration(), "1m30s", 90.0),
        (core.duration(), "500ms", 0.5),
        (core.duration(), 2, 2.0),
        (core.duration(positive=True), "1h", 3600.0),
        (core.url("amqp", "amqps"), "amqps://u:p@mq:5671/%2F", "amqps://u:p@mq:5671/%2F"),
        (core.url("http"), "", ""),
        (core.dsn(), "postgresql://u@db/t", "postgresql://u@db/t"),
        (core.dsn(), "host=db dbname=t", "host=db dbname=t"),
        (core.enum("DEBUG", "INFO", upper=True), "debug", "DEBUG"),
        (core.boolean(), "yes", True),
        (core.boolean(), "off", False),
        (core.boolean(), False, False),
        (core.listing(), "a, b,,c", ("a", "b", "c")),
        (core.listing(), ["a", "b"], ("a", "b")),
        (core.text(), 5, "5"),
        (core.host_port(), "db:5432", ("db", 5432)),
        (core.host_port("pick a free port"), "[::1]:0", ("::1", 0)),
    ],
)
def test_validators_accept(kind: core.Kind, raw: Any, value: Any) -> None:
    assert kind(raw) == value


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (core.port(), "0", "a TCP port 1..65535"),
        (core.port(), "65536", "a TCP port 1..65535"),
        (core.port(), "http", "a TCP port 1..65535"),
        (core.port(zero_means="pick a free port"), -1, "a TCP port 1..65535, or 0 to pick a free port"),
        (core.positive_int(), "0", "an integer >= 1"),
        (core.positive_int(), 1.5, "an integer >= 1"),
        (core.positive_int(), True, "an integer >= 1"),
        (core.integer(1, 64), 65, "an integer >= 1 and <= 64"),
        (core.number(0, above=True), "0", "a number > 0"),
        (core.number(), "-1", "a number >= 0"),
        (core.number(), "nan", "a number >= 0"),
        (core.duration(), "2 min", core.DURATION_HELP),
        (core.duration(), -1, core.DURATION_HELP),
        (core.duration(positive=True), "0s", core.DURATION_HELP + ", greater than 0"),
        (core.duration(maximum=60), "2m", core.DURATION_HELP + ", at most 60s"),
        (core.url("amqp", "amqps"), "http://mq", "a URL starting with amqp:// or amqps:// (or empty)"),
        (core.url("http", empty=False), "", "a URL starting with http://"),
        (core.url("http"), "http://", "a URL starting with http:// (or empty)"),
        (core.dsn(empty=False), "db.example", "a PostgreSQL DSN (postgresql://... or libpq key=value pairs)"),
        (core.enum("none", "docker"), "kubernetes", "one of none, docker"),
        (core.boolean(), "maybe", "true or false"),
        (core.listing("queue names"), 5, "a list of queue names (or a comma-separated string)"),
        (core.text(), ["a"], "a string"),
        (core.host_port(), "db:0", "host:port (port 1..65535)"),
        (core.host_port(), "db", "host:port (port 1..65535)"),
        (core.host_port("pick a free port"), ":1", "host:port (port 1..65535, or 0 to pick a free port)"),
    ],
)
def test_validators_refuse_saying_what_was_expected(kind: core.Kind, raw: Any, expected: str) -> None:
    with pytest.raises(ValueError) as error:
        kind(raw)
    assert str(error.value) == expected


def test_a_domain_validator_adds_its_own_reason() -> None:
    def parse(raw: Any) -> int:
        raise ValueError(f"unknown switch {raw!r}")

    with pytest.raises(ValueError, match=r"^a switch \(unknown switch 'x'\)$"):
        core.custom(parse, "a switch")("x")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1m30s", 90.0), ("1h", 3600.0), ("90", 90.0), ("1.5m", 90.0), ("0", 0.0)],
)
def test_one_duration_syntax(text: str, seconds: float) -> None:
    assert core.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1d", "30s1m", "1m1m", "ms", "", "-1s", "1 minute"])
def test_durations_that_are_not_the_syntax(text: str) -> None:
    with pytest.raises(ValueError, match="^a duration such as 500ms, 2s, 1m30s, 1h or a number of seconds$"):
        core.parse_duration(text)


@dataclass(frozen=True)
class Demo:
    database_dsn: str = "postgresql://postgres@127.0.0.1/d"
    port: int = 8080
    timeout: float = 5.0
    verbose: bool = False
    recovery: bool = True


TABLE = Table(
    "DEMO_",
    (
        Option("database_dsn", core.dsn(empty=False), "the database", aliases=("--dsn", "DEMO_DSN", "dsn"),
               secret=True),
        Option("port", core.port(zero_means="pick a free port"), "the port", key="listen.port"),
        Option("timeout", core.duration(positive=True), "the timeout, e.g. 1m30s"),
        Option("verbose", core.boolean(), "say more"),
        Option("recovery", core.boolean(), "recover", negative_flag=True),
    ),
    defaults=Demo(),
)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo")
    TABLE.add_arguments(parser)
    return parser


def test_file_then_environment_then_flag(tmp_path: Path) -> None:
    path = tmp_path / "demo.yml"
    path.write_text("listen:\n  port: 9000\ntimeout: 2s\nverbose: true\n")
    data = core.read_file(path)
    args = _parser().parse_args(["--timeout", "500ms"])
    resolved = TABLE.resolve(args, {"DEMO_PORT": "9100", "DEMO_TIMEOUT": "1m"}, data, str(path))
    assert resolved.values == {"port": 9100, "timeout": 0.5, "verbose": True}
    assert resolved.sources == {
        "port": "environment variable DEMO_PORT",
        "timeout": "flag --timeout",
        "verbose": str(path),
    }
    toml = tmp_path / "demo.toml"
    toml.write_text('timeout = "3s"\n[listen]\nport = 0\n')
    resolved = TABLE.resolve(_parser().parse_args([]), {}, core.read_file(toml), str(toml))
    assert resolved.values == {"timeout": 3.0, "port": 0}
    assert TABLE.resolve(_parser().parse_args(["--no-recovery"])).values == {"recovery": False}


def test_an_old_name_still_works_and_logs_one_deprecation_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "ticketero_settings")
    resolved = TABLE.resolve(_parser().parse_args(["--dsn", "postgresql://u@db/x"]), {})
    assert resolved.values == {"database_dsn": "postgresql://u@db/x"}
    assert [r.getMessage() for r in caplog.records] == ["--dsn is deprecated, use --database-dsn"]
    caplog.clear()
    resolved = TABLE.resolve({}, {"DEMO_DSN": "postgresql://u@db/y"})
    assert resolved.values == {"database_dsn": "postgresql://u@db/y"}
    assert [r.getMessage() for r in caplog.records] == ["DEMO_DSN is deprecated, use DEMO_DATABASE_DSN"]
    caplog.clear()
    resolved = TABLE.resolve({}, {}, {"dsn": "postgresql://u@db/z"}, "f.yml")
    assert resolved.values == {"database_dsn": "postgresql://u@db/z"}
    assert [r.getMessage() for r in caplog.records] == ["dsn (in f.yml) is deprecated, use database_dsn"]
    caplog.clear()
    # the new name wins over the old one from the same source
    resolved = TABLE.resolve(
        {}, {"DEMO_DSN": "postgresql://old@db/a", "DEMO_DATABASE_DSN": "postgresql://new@db/a"}
    )
    assert resolved.values["database_dsn"] == "postgresql://new@db/a"


@pytest.mark.parametrize(
    ("argv", "environ", "file_text", "message"),
    [
        (["--port", "70000"], {}, None,
         "flag --port: listen.port: expected a TCP port 1..65535, or 0 to pick a free port, got str '70000'"),
        ([], {"DEMO_TIMEOUT": "soon"}, None,
         "environment variable DEMO_TIMEOUT: timeout: expected a duration such as 500ms, 2s, 1m30s, 1h or a number "
         "of seconds, greater than 0, got str 'soon'"),
        ([], {}, "listen:\n  prot: 1\n", "{file}: listen.prot: expected a known key: one of listen.port"),
        ([], {}, "colour: red\n", "{file}: colour: expected a known key: one of database_dsn, listen, recovery, "
         "timeout, verbose"),
        ([], {}, "- a\n", "{file}: (top level): expected a mapping of settings, got a list"),
        ([], {}, "listen: 5\n", "{file}: listen: expected a mapping, got int 5"),
        ([], {}, "verbose: [\n", "{file}: (file): expected valid YAML"),
        (["--dsn", "postgresql://u:s3cret@db/x", "--database-dsn", "nope"], {}, None,
         "flag --database-dsn: database_dsn: expected a PostgreSQL DSN (postgresql://... or libpq key=value pairs), "
         "got str 'nope'"),
        ([], {"DEMO_DSN": "mysql://u:s3cret@db/x"}, None,
         "environment variable DEMO_DSN: database_dsn: expected a PostgreSQL DSN (postgresql://... or libpq "
         "key=value pairs), got str 'mysql://u:***@db/x'"),
    ],
)  # fmt: skip
def test_errors_name_the_source_the_key_and_what_was_expected(
    tmp_path: Path, argv: list[str], environ: dict[str, str], file_text: str | None, message: str
) -> None:
    path = tmp_path / "demo.yml"
    with pytest.raises(SettingsError) as error:
        data = None
        if file_text is not None:
            path.write_text(file_text)
            data = core.read_file(path)
        TABLE.resolve(_parser().parse_args(argv), environ, data, str(path))
    assert str(error.value).startswith(message.format(file=path))
    assert "s3cret" not in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope.toml: \(file\): expected a readable file"):
        core.read_file(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = \n")
    with pytest.raises(SettingsError, match=r"bad.toml: \(file\): expected valid TOML"):
        core.read_file(bad)


def test_help_is_generated_from_the_table() -> None:
    text = " ".join(_parser().format_help().split())
    assert (
        "--database-dsn DSN the database; env DEMO_DATABASE_DSN (default: postgresql://postgres@127.0.0.1/d)"
        in text
    )
    assert "--port PORT the port; env DEMO_PORT (default: 8080)" in text
    assert "--timeout DURATION the timeout, e.g. 1m30s; env DEMO_TIMEOUT (default: 5)" in text
    assert "--no-recovery recover; env DEMO_RECOVERY (default: true)" in text
    assert "--verbose say more" in text
    assert "--dsn" not in text  # the old names work but are not advertised


def test_values_handed_on_as_flags_come_back_the_same() -> None:
    values = {
        "port": 0,
        "timeout": 1.5,
        "verbose": True,
        "recovery": False,
        "database_dsn": "postgresql://u@d/x",
    }
    argv = TABLE.argv(values)
    assert argv == ["--port", "0", "--timeout", "1.5", "--verbose", "--no-recovery", "--database-dsn",
                    "postgresql://u@d/x"]  # fmt: skip
    assert TABLE.resolve(_parser().parse_args(argv)).values == values
    assert TABLE.argv({"verbose": False, "recovery": True}) == []


def test_the_service_table_takes_fault_switches_as_text_or_a_list() -> None:
    from ticketero.config import OPTIONS

    checked = OPTIONS.check({"faults": ("unlocked-claim", "slow-api=3"), "recovery": False}, "service option")
    assert checked["faults"].unlocked_claim and checked["faults"].slow_api_seconds == 3.0
    assert OPTIONS.argv({"faults": ("stalled-worker",), "recovery": False, "service_time": 0.2}) == [
        "--faults", "stalled-worker", "--no-recovery", "--service-time", "0.2"
    ]  # fmt: skip
    assert not OPTIONS.check({"faults": ()}, "service option")["faults"].any


def test_check_refuses_unknown_names_and_bad_values() -> None:
    assert TABLE.check({"timeout": "2s", "port": 5}, "service option") == {"timeout": 2.0, "port": 5}
    with pytest.raises(SettingsError, match="^service option: colour: expected one of database_dsn, port"):
        TABLE.check({"colour": "red"}, "service option")
    with pytest.raises(SettingsError, match="^service option: timeout: expected a duration"):
        TABLE.check({"timeout": "soon"}, "service option")


def test_environment_value_reads_the_old_name_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "ticketero_settings")
    assert core.environment_value({"NEW": "1", "OLD": "2"}, "NEW", "d", ("OLD",)) == "1"
    assert core.environment_value({"OLD": "2"}, "NEW", "d", ("OLD",)) == "2"
    assert core.environment_value({}, "NEW", "d", ("OLD",)) == "d"
    assert [r.getMessage() for r in caplog.records] == ["OLD is deprecated, use NEW"]
