"""Fixtures every test package can use: a private database and a private vhost per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import temporary_database, temporary_vhost


@pytest.fixture
def database_dsn() -> Iterator[str]:
    """DSN of a fresh database holding Ticketero's schema, dropped after the test."""
    with temporary_database() as dsn:
        yield dsn


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """AMQP URL of a fresh vhost on the machine's RabbitMQ, deleted after the test."""
    with temporary_vhost() as url:
        yield url


# Docker fixtures (docker_image, docker_client, docker_container) for tests marked `docker`.
from tests.support.docker import docker_client, docker_container, docker_image  # noqa: E402,F401
