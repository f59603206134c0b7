"""Resources (RNF-07) from the Docker engine: working set and CPU time of each named container.

``containers.get(name).stats(stream=False, one_shot=True)`` returns one sample without the engine's usual
one-second wait for a second sample (the exporter needs no rate: Prometheus computes it from the counter).
Working set is ``memory_stats.usage`` minus the inactive file cache (``inactive_file`` on cgroup v2,
``total_inactive_file`` on v1), the figure ``docker stats`` and the kubelet show; CPU is
``cpu_stats.cpu_usage.total_usage`` (nanoseconds).
"""

from __future__ import annotations

from typing import Any

import docker
import docker.errors
from prometheus_client.core import Metric

from exporters.base import ConcernCollector
from exporters.config import Target
from exporters.process_resources import resource_families


def working_set(memory_stats: dict) -> float:
    usage = float(memory_stats.get("usage") or 0)
    stats = memory_stats.get("stats") or {}
    inactive = stats.get("inactive_file", stats.get("total_inactive_file", 0)) or 0
    return max(0.0, usage - float(inactive))


class DockerResourcesCollector(ConcernCollector):
    """Memory and CPU of the stack's containers, read from the engine at scrape time."""

    name = "resources"
    backend = "docker"

    def __init__(self, targets: tuple[Target, ...], *, base_url: str = "", timeout: float = 0.5) -> None:
        self.targets = targets
        self.base_url = base_url
        self.timeout = timeout
        self._client: docker.DockerClient | None = None

    def families(self) -> list[Any]:
        return resource_families()

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            # Creating the client does not contact the engine; the first call does.
            if self.base_url:
                self._client = docker.DockerClient(base_url=self.base_url, timeout=self.timeout)
            else:
                self._client = docker.from_env(timeout=self.timeout)
        return self._client

    def scrape(self, deadline: float) -> list[Metric]:
        client = self._docker()
        try:
            client.ping()  # engine down raises here: the whole concern fails and docker_up is 0
        except Exception:
            self._client = None
            raise
        memory_f, cpu_f, up_f = self.families()
        for target in self.targets:
            try:
                container = client.containers.get(target.value)
            except docker.errors.NotFound:
                up_f.add_metric([target.name], 0.0)
                continue
            if container.status != "running":
                up_f.add_metric([target.name], 0.0)
                continue
            stats = container.stats(stream=False, one_shot=True)
            up_f.add_metric([target.name], 1.0)
            memory_f.add_metric([target.name], working_set(stats.get("memory_stats") or {}))
            total_ns = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
            cpu_f.add_metric([target.name], float(total_ns) / 1e9)
        return [memory_f, cpu_f, up_f]
