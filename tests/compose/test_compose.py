"""docker-compose.yml: structure, health-gated start order, mounts and the wiring to prometheus.yml.

No registry is reachable here, so images are neither pulled nor built. When a Compose implementation is
installed (`docker compose` or Debian's `docker-compose`), its own `config -q` check runs too; the
structural checks below run always and cover what a broken edit would break: a dependency on a missing
service, a health condition on a service without healthcheck, a mount of a path that is not in the
repository, a scrape target that does not resolve to a service.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def names(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every DNS name on the compose network (service and container names) -> service."""
    result = {name: name for name in services}
    result.update({svc["container_name"]: name for name, svc in services.items() if "container_name" in svc})
    return result


def test_compose_implementation_accepts_the_file() -> None:
    if shutil.which("docker-compose"):
        command = ["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    elif (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        command = ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    else:
        pytest.skip("no Compose implementation installed; the structural tests below still run")
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    if "Unsupported config option" in result.stderr or "Invalid top-level property" in result.stderr:
        pytest.skip(f"this Compose version is too old for the file: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr


def test_services_images_and_container_names(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "postgres",
        "rabbitmq",
        "ticketero-app",
        "exporter",
        "prometheus",
        "alertmanager",
        "grafana",
        "loadgen",
    }
    assert set(services) == expected
    assert services["postgres"]["image"].startswith("postgres:16")
    assert (
        services["rabbitmq"]["image"].startswith("rabbitmq:3.13")
        and "management" in services["rabbitmq"]["image"]
    )
    assert services["ticketero-app"]["image"] == "${TICKETERO_IMAGE:-ticketero-nfr:latest}"
    containers = {name: svc.get("container_name") for name, svc in services.items()}
    assert containers["ticketero-app"] == "ticketero-app"
    assert containers["postgres"] == "ticketero-postgres"
    assert containers["rabbitmq"] == "ticketero-rabbitmq"


def test_rabbitmq_enables_the_management_and_prometheus_plugins(services: dict[str, dict[str, Any]]) -> None:
    command = services["rabbitmq"]["command"]
    assert "rabbitmq_prometheus" in command and "rabbitmq_management" in command


def test_python_image_is_built_from_the_root_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    builders = [svc for svc in services.values() if "build" in svc]
    assert (
        len(builders) == 1 and builders[0]["build"] == "." and builders[0]["image"] == "ticketero-nfr:latest"
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    # The commands the compose file runs are console scripts the image installs.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in ("ticketero-app", "exporter", "loadgen"):
        program = services[name]["command"][0]
        assert program in scripts, f"{name} runs {program!r}, not a console script of pyproject.toml"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if name == "loadgen":
            continue
        check = svc.get("healthcheck", {})
        assert check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_depends_on_refers_to_services_with_valid_conditions(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for dependency, spec in svc.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert spec["condition"] in CONDITIONS, f"{name} -> {dependency}: {spec['condition']}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency}'s health, which has none"
                )
            if "profiles" not in svc:
                assert "profiles" not in services[dependency], f"{name} depends on profile-only {dependency}"


def test_start_order_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        assert state.get(name) != "visiting", f"dependency cycle: {' -> '.join([*path, name])}"
        if state.get(name) == "done":
            return
        state[name] = "visiting"
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, [*path, name])
        state[name] = "done"

    for name in services:
        visit(name, [])


def test_app_waits_for_healthy_database_and_broker(services: dict[str, dict[str, Any]]) -> None:
    needs = services["ticketero-app"]["depends_on"]
    assert needs["postgres"]["condition"] == needs["rabbitmq"]["condition"] == "service_healthy"
    assert services["loadgen"]["depends_on"]["ticketero-app"]["condition"] == "service_healthy"
    assert services["loadgen"]["profiles"] == ["load"]


def test_every_mounted_path_exists_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            elif not source.startswith("/"):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_prometheus_mounts_config_rules_and_alerts_where_prometheus_yml_expects_them(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = {v.split(":")[0]: v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert mounts["./prometheus"] == "/etc/prometheus"
    config = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    for pattern in config["rule_files"]:
        in_container = os.path.normpath(os.path.join("/etc/prometheus", pattern))
        host_dir = next(host for host, inside in mounts.items() if str(in_container).startswith(inside + "/"))
        relative = str(in_container)[len(mounts[host_dir]) + 1 :]
        assert list((ROOT / host_dir).glob(relative)), (
            f"rule_files {pattern} matches nothing in the container"
        )
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_scrape_targets_resolve_to_services_on_their_ports(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text())
    dns = names(services)
    expected_ports = {
        "ticketero-exporter": "10187",
        "loadgen": "9646",
        "ticketero-app": "8080",
        "rabbitmq": "15692",
    }
    for job in config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.rsplit(":", 1)
            if job["job_name"] == "prometheus":
                assert host == "localhost"
                continue
            assert host in dns, f"job {job['job_name']}: {host} is not a service of docker-compose.yml"
            assert port == expected_ports[job["job_name"]]
    exporter_env = services["exporter"]["environment"]
    assert (
        exporter_env["EXPORTER_LISTEN_PORT"] == "10187"
        and exporter_env["EXPORTER_LISTEN_ADDRESS"] == "0.0.0.0"
    )
    assert services["loadgen"]["environment"]["LOADGEN_METRICS_PORT"] == "9646"
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert dns.get(alertmanager.split(":")[0]) == "alertmanager"


def test_exporter_watches_the_three_containers(services: dict[str, dict[str, Any]]) -> None:
    env = services["exporter"]["environment"]
    assert env["EXPORTER_RESOURCES_BACKEND"] == "docker"
    targets = dict(item.split("=") for item in env["EXPORTER_RESOURCES_TARGETS"].split(","))
    for container in ("ticketero-app", "ticketero-postgres", "ticketero-rabbitmq"):
        assert targets[container] == container
        assert container in names(services)
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in services["exporter"]["volumes"]
    assert env["EXPORTER_HEALTH_URL"] == "http://ticketero-app:8080/actuator/health"


def test_variables_have_defaults() -> None:
    """`docker compose up` must work without an .env file."""
    for match in re.finditer(r"\$\{([^}]+)\}", COMPOSE_FILE.read_text()):
        assert ":-" in match.group(1), f"${{{match.group(1)}}} has no default"


def test_host_ports_bind_to_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
