"""What ``nfr demo`` reads off a scenario for service control: ``replicas:``, a broker the scenario stops, and
the ``service-control`` need; and the balancer's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nfr.demo import BadInput, prepare_scenario, resolve_scenario
from nfr.run import inferred_needs
from nfr.stack import haproxy_config


def test_replicas_are_read_by_the_judge_and_left_out_of_the_load_generators_copy(tmp_path: Path) -> None:
    prepared = prepare_scenario(resolve_scenario("SHUT-02"), tmp_path)
    assert prepared.replicas == 2 and not prepared.controls_broker
    copy = yaml.safe_load(prepared.file.read_text())
    assert "replicas" not in copy and copy["name"] == "SHUT-02"
    assert prepared.inferred_needs["service-control"] == [
        "method[0] restart replica 1",
        "method[1] restart replica 2",
        "rollbacks[0] replica 1 running",
        "rollbacks[1] replica 2 running",
    ]


def test_a_scenario_stopping_the_broker_gets_a_relay(tmp_path: Path) -> None:
    prepared = prepare_scenario(resolve_scenario("RES-02-docker"), tmp_path)
    assert prepared.controls_broker and prepared.replicas == 1
    assert prepared.expected == ("TicketeroHealthProbeFailing",)
    assert not prepare_scenario(resolve_scenario("RES-03"), tmp_path).controls_broker


@pytest.mark.parametrize("value", [0, 17, "two", True])
def test_bad_replicas_are_refused_naming_the_file_and_key(tmp_path: Path, value: object) -> None:
    source = tmp_path / "s.yml"
    source.write_text(yaml.safe_dump({"name": "S", "replicas": value}))
    with pytest.raises(BadInput) as error:
        prepare_scenario(source, tmp_path)
    assert str(error.value) == f"{source}: replicas: expected an integer 1..16, got {value!r}"


def test_service_steps_need_service_control() -> None:
    doc = {"method": [{"type": "service", "op": "stop"}], "rollbacks": [{"type": "service", "op": "start"}]}
    assert inferred_needs(doc) == {"service-control": ["method[0] service", "rollbacks[0] service"]}


def test_the_balancer_checks_health_and_retries_only_connections() -> None:
    config = haproxy_config(8080, [9001, 9002], 0.5)
    lines = [line.strip() for line in config.splitlines()]
    assert "bind 127.0.0.1:8080" in lines
    assert "option httpchk GET /actuator/health" in lines
    assert "default-server inter 500ms fall 1 rise 1" in lines
    assert "retry-on conn-failure" in lines and "option redispatch 1" in lines
    assert [line for line in lines if line.startswith("server ")] == [
        "server app-1 127.0.0.1:9001 check",
        "server app-2 127.0.0.1:9002 check",
    ]


def test_haproxy_accepts_the_configuration(tmp_path: Path) -> None:
    import shutil
    import subprocess

    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    assert haproxy, "haproxy is installed by scripts/bootstrap.sh"
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(8080, [9001, 9002], 0.5))
    result = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr


def test_a_bad_replicas_option_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from nfr.demo import DemoOptions, run_demo

    with pytest.raises(BadInput, match=r"^--replicas: expected 1\.\.16, got 0$"):
        run_demo(DemoOptions(scenario="SHUT-02", replicas=0, results=tmp_path))
    assert not any(tmp_path.iterdir())  # no results: nothing ran
