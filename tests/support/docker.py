"""A real Docker engine for the docker backends' tests.

`scripts/dockerd.sh` reuses a running engine or starts one (vfs storage, host network) and imports a
busybox image. When no engine can run the tests fail; set TICKETERO_NFR_SKIP_DOCKER=1 to skip them instead
on a host where Docker is knowingly unavailable.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def ensure_engine() -> str:
    """Start (or reuse) the engine; returns the test image name."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "dockerd.sh")], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        message = f"no Docker engine: {result.stderr.strip()}"
        if os.environ.get("TICKETERO_NFR_SKIP_DOCKER") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def docker_image() -> str:
    """Name of a local image with busybox (sh, sleep, dd, ...)."""
    return ensure_engine()


@pytest.fixture(scope="session")
def docker_client(docker_image: str):
    import docker

    client = docker.from_env(timeout=30)
    yield client
    client.close()


@pytest.fixture
def docker_container(docker_client, docker_image) -> Iterator[Callable[..., object]]:
    """Factory: start a busybox container with a unique name (host network); all removed after the test.

    Usage: ``container = docker_container("sleep 300")`` → a docker SDK Container, ``container.name``.
    """
    started = []

    def start(command: str = "sleep 600", name: str | None = None):
        container = docker_client.containers.run(
            docker_image,
            ["sh", "-c", command],
            name=name or f"tnfr-{uuid.uuid4().hex[:10]}",
            network_mode="host",
            detach=True,
        )
        started.append(container)
        return container

    yield start
    for container in started:
        with contextlib.suppress(Exception):  # already gone: nothing to clean
            container.remove(force=True)
