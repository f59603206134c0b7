"""The keys the demo reads off a scenario before the load generator sees it: ``configurations`` (one run per
way of starting the service, then compared) and ``proxies`` (fault proxies the local stack starts before the
run's own database or broker). Bad input is refused naming the file, the entry and what was expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nfr.demo import BadInput, DemoOptions, prepare_scenario, resolve_scenario, run_demo

BASE: dict[str, Any] = {
    "name": "KEYS",
    "target": "http://127.0.0.1:8080",
    "workload": {"model": "burst", "requests": 1},
    "requests": [{"endpoint": "create_ticket"}],
}


def _scenario(tmp_path: Path, **keys: Any) -> Path:
    path = tmp_path / "keys.yml"
    path.write_text(yaml.safe_dump({**BASE, **keys}, sort_keys=False))
    return path


def test_scal01_declares_two_configurations_the_load_generator_never_sees(tmp_path: Path) -> None:
    prepared = prepare_scenario(resolve_scenario("SCAL-01"), tmp_path)
    assert [(c.name, c.settings) for c in prepared.configurations] == [
        ("workers-3", {"workers_per_queue": 3}),
        ("workers-6", {"workers_per_queue": 6}),
    ]
    copy = yaml.safe_load(prepared.file.read_text())
    assert "configurations" not in copy and copy["name"] == "SCAL-01"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"name": "a", "workers_per_queue": 3}], "expected a list of at least two configurations"),
        ("workers-3", "expected a list of at least two configurations"),
        ([{"name": "a", "workers_per_queue": 3}, "b"], "configurations[1]: expected a mapping"),
        (
            [{"workers_per_queue": 3}, {"name": "b", "workers_per_queue": 6}],
            "configurations[0]: name: expected",
        ),
        (
            [{"name": "a", "workers_per_queue": 3}, {"name": "a", "workers_per_queue": 6}],
            "configurations[1]: name: 'a' is already the name of another configuration",
        ),
        (
            [{"name": "a", "workers_per_queue": 3}, {"name": "b", "workers": 6}],
            "configurations[1]: workers: expected one of database_dsn, amqp_url, host, port, workers_per_queue,",
        ),
        (
            [{"name": "a", "workers_per_queue": 3}, {"name": "b", "workers_per_queue": 2.5}],
            "configurations[1]: workers_per_queue: expected an integer >= 1, got float 2.5",
        ),
        (
            [{"name": "a", "workers_per_queue": 0}, {"name": "b", "workers_per_queue": 6}],
            "configurations[0]: workers_per_queue: expected an integer >= 1, got int 0",
        ),
        (
            [{"name": "a", "service_time": "fast"}, {"name": "b", "workers_per_queue": 6}],
            "configurations[0]: service_time: expected a duration such as 500ms, 2s, 1m30s, 1h or a number of "
            "seconds, got str 'fast'",
        ),
        (
            [{"name": "a", "port": 8080}, {"name": "b", "workers_per_queue": 6}],
            "configurations[0]: port: set by the stack itself, not by a configuration",
        ),
        (
            [{"name": "a"}, {"name": "b", "workers_per_queue": 6}],
            "configurations[0]: expected at least one of the service's options (workers_per_queue, advisors,",
        ),
    ],
)
def test_a_bad_configurations_key_is_refused_naming_the_entry(
    tmp_path: Path, value: Any, message: str
) -> None:
    path = _scenario(tmp_path, configurations=value)
    with pytest.raises(BadInput) as raised:
        prepare_scenario(path, tmp_path)
    assert str(raised.value).startswith(f"{path}: configurations")
    assert message in str(raised.value)


def test_a_run_of_one_configuration_that_the_scenario_lacks_is_refused(tmp_path: Path) -> None:
    options = DemoOptions(scenario="SCAL-01", configuration="workers-9", results=tmp_path)
    with pytest.raises(BadInput, match="--configuration workers-9: .* declares workers-3, workers-6"):
        run_demo(options)
    with pytest.raises(BadInput, match="declares configurations .*: run it as a whole"):
        run_demo(DemoOptions(scenario="SCAL-01", results=tmp_path))


def test_the_cli_refuses_a_bad_configurations_key_with_exit_2(tmp_path: Path) -> None:
    path = _scenario(tmp_path, configurations=[{"name": "only", "workers_per_queue": 3}])
    result = subprocess.run(
        [sys.executable, "-m", "nfr", "demo", "--scenario", str(path), "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}: configurations: expected a list of at least two configurations" in result.stderr
    assert not list(tmp_path.glob("*/results.json"))


def test_proxies_become_proxies_the_local_stack_starts(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        proxies=[
            {"name": "database", "control": "http://127.0.0.1:25433"},
            {"name": "mq", "listen": "127.0.0.1:35672", "target": "127.0.0.1:5672"},
        ],
    )
    prepared = prepare_scenario(path, tmp_path, local_proxies=True)
    assert [(p.name, p.dependency) for p in prepared.proxies] == [("database", "database"), ("mq", "broker")]
    ports = {port for p in prepared.proxies for port in (p.listen_port, p.control_port)}
    assert len(ports) == 4 and 25433 not in ports and 35672 not in ports
    copy = yaml.safe_load(prepared.file.read_text())
    assert copy["proxies"] == [{"name": p.name, "control": p.control_url} for p in prepared.proxies]
    # Against an external target the scenario's own proxies stay as they are.
    untouched = prepare_scenario(path, tmp_path / "ext", local_proxies=False)
    assert untouched.proxies == () and untouched.file == path


def test_a_proxy_before_an_unknown_dependency_is_refused(tmp_path: Path) -> None:
    path = _scenario(
        tmp_path, proxies=[{"name": "cache", "listen": "127.0.0.1:36379", "target": "127.0.0.1:6379"}]
    )
    with pytest.raises(BadInput, match=r"proxies\[0\] \(cache\): cannot tell whether it stands before"):
        prepare_scenario(path, tmp_path, local_proxies=True)
