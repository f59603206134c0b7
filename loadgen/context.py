"""What actions and probes share: the run's context (services, target, proxies) and one SQL helper.

Kept apart from ``actions`` and ``probes`` so that neither has to import the other's internals: actions
use probes (``wait``, ``watch``), and both use this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadgen.proxy import FaultProxy, RemoteProxy


class ActionError(Exception):
    """An action could not do what it was asked; the message says which action and why."""


class ActionContext:
    """What actions need besides their own settings: services, the target, the running proxies."""

    def __init__(
        self, target: str, services: Mapping[str, str], proxies: Mapping[str, FaultProxy | RemoteProxy]
    ) -> None:
        self.target = target
        self.services = dict(services)
        self.proxies = dict(proxies)
        self._docker: Any = None

    def service(self, params: Mapping[str, Any], key: str, service: str) -> str:
        value = params.get(key) or self.services.get(service)
        if not value:
            raise ActionError(f"no {key} given and services.{service} is not set")
        return str(value)

    def docker(self) -> Any:
        if self._docker is None:
            import docker

            self._docker = docker.from_env(timeout=60)
        return self._docker

    def close(self) -> None:
        if self._docker is not None:
            self._docker.close()
            self._docker = None


def sql_scalar(dsn: str, query: str) -> Any:
    """The first column of the first row of ``query`` (None when no row), on a short-lived connection."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(query).fetchone()
        return None if row is None else row[0]
