"""Resources (RNF-07): the process backend on real processes, the docker backend on real containers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporters.config import Target
from exporters.docker_resources import DockerResourcesCollector
from exporters.process_resources import ProcessResourcesCollector
from tests.exporters.helpers import registry_with, value


@pytest.fixture
def busy_process(tmp_path):
    """A child that burns CPU for a moment and holds ~40 MB, with its pid in a pid file (like the demo service)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nb = bytearray(40 * 2**20)\nt = time.time()\n"
            "while time.process_time() < 0.3: pass\nopen(__import__('sys').argv[1], 'w').close()\ntime.sleep(60)",
            str(tmp_path / "ready"),
        ]  # fmt: skip
    )
    pid_file = tmp_path / "ticketero.pid"
    pid_file.write_text(f"{child.pid}\n")
    deadline = time.monotonic() + 20
    while not (tmp_path / "ready").exists():  # the child has used its 0.3 s of CPU
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield child, pid_file
    child.kill()
    child.wait()


def test_process_backend_pid_file(busy_process, tmp_path):
    child, pid_file = busy_process
    targets = (
        Target("ticketero-app", "pid_file", str(pid_file)),
        Target("gone", "pid_file", str(tmp_path / "missing.pid")),
    )
    registry = registry_with(ProcessResourcesCollector(targets))
    assert value(registry, "ticketero_container_up", container="ticketero-app") == 1
    memory = value(registry, "ticketero_container_memory_working_set_bytes", container="ticketero-app")
    assert 40 * 2**20 <= memory <= 200 * 2**20
    assert value(registry, "ticketero_container_cpu_usage_seconds_total", container="ticketero-app") >= 0.2
    assert value(registry, "ticketero_container_up", container="gone") == 0
    assert value(registry, "ticketero_container_memory_working_set_bytes", container="gone") is None
    child.kill()
    child.wait()
    assert value(registry, "ticketero_container_up", container="ticketero-app") == 0


def test_process_backend_process_name_sums_all_matches(busy_process):
    child, _ = busy_process
    name = Path(f"/proc/{child.pid}/comm").read_text().strip()
    registry = registry_with(ProcessResourcesCollector((Target("python", "process_name", name),)))
    memory = value(registry, "ticketero_container_memory_working_set_bytes", container="python")
    # At least the child plus this test process itself.
    assert memory >= 40 * 2**20 + 10 * 2**20
    registry_missing = registry_with(
        ProcessResourcesCollector((Target("x", "process_name", "no-such-proc"),))
    )
    assert value(registry_missing, "ticketero_container_up", container="x") == 0


def test_process_backend_cgroup_v2_files(tmp_path):
    # This host runs cgroup v1, so the v2 files are laid out by hand in their kernel format.
    (tmp_path / "memory.current").write_text("104857600\n")
    (tmp_path / "memory.stat").write_text(
        "anon 50000000\nfile 54857600\ninactive_file 4857600\nactive_file 0\n"
    )
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    registry = registry_with(ProcessResourcesCollector((Target("pg", "cgroup", str(tmp_path)),)))
    assert value(registry, "ticketero_container_memory_working_set_bytes", container="pg") == 100_000_000
    assert value(registry, "ticketero_container_cpu_usage_seconds_total", container="pg") == 2.5


@pytest.mark.docker
def test_docker_backend(docker_container, docker_client):
    # The shell keeps 20 MB in a variable: the working set must show it.
    container = docker_container(
        "x=$(head -c 20000000 /dev/zero | tr '\\0' a); while true; do sleep 600; done"
    )
    stopped = docker_container("true")
    targets = (
        Target("ticketero-app", "container", container.name),
        Target("ticketero-postgres", "container", "tnfr-does-not-exist"),
        Target("ticketero-rabbitmq", "container", stopped.name),
    )
    collector = DockerResourcesCollector(targets, timeout=5.0)
    collector.default_timeout = 10.0
    registry = registry_with(collector)
    assert value(registry, "ticketero_container_up", container="ticketero-app") == 1
    deadline = time.monotonic() + 15
    while (
        memory := value(registry, "ticketero_container_memory_working_set_bytes", container="ticketero-app")
    ) < 20e6:
        assert time.monotonic() < deadline, f"working set stayed at {memory}"
        time.sleep(0.5)
    stats = container.stats(stream=False, one_shot=True)["memory_stats"]
    assert 20_000_000 <= memory <= stats["usage"] + 2**20  # usage minus page cache, give or take a page
    assert value(registry, "ticketero_container_cpu_usage_seconds_total", container="ticketero-app") > 0
    assert value(registry, "ticketero_container_up", container="ticketero-postgres") == 0
    assert value(registry, "ticketero_container_up", container="ticketero-rabbitmq") == 0


@pytest.mark.docker
def test_docker_engine_down_fails_fast(tmp_path):
    collector = DockerResourcesCollector(
        (Target("ticketero-app", "container", "x"),), base_url=f"unix://{tmp_path}/none.sock", timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises, the concern must fail
        collector.scrape(time.monotonic() + 1)
    assert time.monotonic() - started < 1
    assert os.path.exists(tmp_path)


@pytest.mark.docker
def test_docker_up_through_the_served_registry(docker_container, tmp_path):
    from exporters.app import build_exporter
    from exporters.config import Settings

    container = docker_container("sleep 600")
    targets = (Target("ticketero-app", "container", container.name),)
    up = build_exporter(Settings(database_dsn="", amqp_url="", health_url="", resources_backend="docker", targets=targets,
                                 docker_timeout=5.0, scrape_timeout=10.0))  # fmt: skip
    assert value(up.registry, "ticketero_docker_up") == 1
    assert value(up.registry, "ticketero_container_up", container="ticketero-app") == 1
    down = build_exporter(Settings(database_dsn="", amqp_url="", health_url="", resources_backend="docker", targets=targets,
                                   docker_url=f"unix://{tmp_path}/no.sock"))  # fmt: skip
    assert value(down.registry, "ticketero_docker_up") == 0
    assert value(down.registry, "ticketero_scrape_collector_success", collector="resources") == 0
    assert value(down.registry, "ticketero_container_up", container="ticketero-app") is None


@pytest.mark.docker
def test_docker_targets_are_sampled_in_parallel(docker_container):
    # The engine answers one-shot stats at its next 1-second tick: asked one after another, three containers
    # take two seconds or more; asked together they take about one tick.
    targets = tuple(Target(f"t{i}", "container", docker_container("sleep 600").name) for i in range(3))
    collector = DockerResourcesCollector(targets)
    for _ in range(2):
        started = time.monotonic()
        collector.scrape(time.monotonic() + 2.0)
        assert time.monotonic() - started < 1.8  # one after another: >= 2 s
    registry = registry_with(collector)
    assert [value(registry, "ticketero_container_up", container=t.name) for t in targets] == [1, 1, 1]
