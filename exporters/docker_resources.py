"""Resources (RNF-07) from the Docker engine: working set and CPU time of each named container.

``containers.get(name).stats(stream=False, one_shot=True)`` returns one sample without the engine's usual
wait for a second sample (the exporter needs no rate: Prometheus computes it from the counter). The engine
still serves it from its stats loop, which samples every second: the first request after a quiet spell is
answered at once, the others at the next tick, up to a second later. So the targets are asked in parallel (one
tick for all, not one per target), and with this backend the scrape budget defaults to 2 s.
Working set is ``memory_stats.usage`` minus the inactive file cache (``inactive_file`` on cgroup v2,
``total_inactive_file`` on v1), the figure ``docker stats`` and the kubelet show; CPU is
``cpu_stats.cpu_usage.total_usage`` (nanoseconds).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
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
    default_timeout = 2.0

    def __init__(self, targets: tuple[Target, ...], *, base_url: str = "", timeout: float = 2.0) -> None:
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
        pool = ThreadPoolExecutor(max_workers=len(self.targets) or 1, thread_name_prefix="docker-stats")
        try:
            futures = [pool.submit(self._sample, client, target) for target in self.targets]
            done, pending = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            pool.shutdown(wait=False)
        if pending:
            raise TimeoutError(
                f"{len(pending)} of {len(futures)} container stats not back within the scrape budget"
            )
        memory_f, cpu_f, up_f = self.families()
        for target, future in zip(self.targets, futures, strict=True):
            sample = future.result()
            up_f.add_metric([target.name], 0.0 if sample is None else 1.0)
            if sample is not None:
                memory_f.add_metric([target.name], sample[0])
                cpu_f.add_metric([target.name], sample[1])
        return [memory_f, cpu_f, up_f]

    @staticmethod
    def _sample(client: docker.DockerClient, target: Target) -> tuple[float, float] | None:
        """(working set bytes, cpu seconds) of a running container, None when absent or not running."""
        try:
            container = client.containers.get(target.value)
        except docker.errors.NotFound:
            return None
        if container.status != "running":
            return None
        stats = container.stats(stream=False, one_shot=True)
        total_ns = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
        return working_set(stats.get("memory_stats") or {}), float(total_ns) / 1e9
