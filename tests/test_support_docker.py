import pytest


@pytest.mark.docker
def test_docker_container_fixture_runs_a_real_container(docker_container):
    container = docker_container("echo ready; sleep 30")
    container.reload()
    assert container.status == "running"
    stats = container.stats(stream=False)
    assert stats["memory_stats"].get("usage", 0) > 0
