"""Resources (RNF-07) without Docker: memory and CPU of a process (pid file or name) or of a cgroup v2.

* ``pid_file``: the process whose pid the file holds — RSS from ``/proc/<pid>/status`` (VmRSS), CPU from
  ``/proc/<pid>/stat`` (utime + stime).
* ``process_name``: every process whose ``/proc/<pid>/comm`` equals the name, summed (PostgreSQL is many
  processes). The CPU sum can step down when a child exits; prefer a cgroup where one exists.
* ``cgroup``: a cgroup v2 directory — working set ``memory.current − inactive_file`` (as the docker backend and
  the kubelet compute it), CPU from ``cpu.stat`` ``usage_usec``.

A target that cannot be found is reported with ``ticketero_container_up{container} 0`` and no other series.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.base import ConcernCollector
from exporters.config import Target

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def resource_families() -> list[Any]:
    """The three RNF-07 families, shared by the docker and process backends."""
    return [
        GaugeMetricFamily(
            "ticketero_container_memory_working_set_bytes",
            "Working set: docker/cgroup memory usage minus inactive file cache; process: RSS.",
            labels=["container"],
        ),
        CounterMetricFamily("ticketero_container_cpu_usage_seconds", "CPU time used.", labels=["container"]),
        GaugeMetricFamily(
            "ticketero_container_up", "1 when the named target was found and running.", labels=["container"]
        ),
    ]


def _pid_usage(pid: int) -> tuple[float, float]:
    """(rss bytes, cpu seconds) of one process; raises OSError when it is gone."""
    stat = (PROC / str(pid) / "stat").read_text()
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based).
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = 0.0
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = float(line.split()[1]) * 1024
            break
    return rss, cpu


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _cgroup_usage(path: Path) -> tuple[float, float]:
    current = float((path / "memory.current").read_text())
    inactive = 0.0
    for line in (path / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "inactive_file":
            inactive = float(value)
    usage_usec = 0.0
    for line in (path / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            usage_usec = float(value)
    return max(0.0, current - inactive), usage_usec / 1e6


def target_usage(target: Target) -> tuple[float, float] | None:
    """(working set bytes, cpu seconds) of the target, or None when it is not there."""
    try:
        if target.kind == "pid_file":
            pid = int(Path(target.value).read_text().strip())
            return _pid_usage(pid)
        if target.kind == "process_name":
            totals = [0.0, 0.0]
            found = False
            for pid in _pids_named(target.value):
                try:
                    rss, cpu = _pid_usage(pid)
                except OSError:
                    continue
                totals[0] += rss
                totals[1] += cpu
                found = True
            return (totals[0], totals[1]) if found else None
        if target.kind == "cgroup":
            return _cgroup_usage(Path(target.value))
    except (OSError, ValueError):
        return None
    raise ValueError(f"target kind {target.kind!r} is not for the process backend")


class ProcessResourcesCollector(ConcernCollector):
    """Memory and CPU of local processes or cgroups, for hosts that run the stack without Docker."""

    name = "resources"
    backend = "process"

    def __init__(self, targets: tuple[Target, ...]) -> None:
        self.targets = targets

    def families(self) -> list[Any]:
        return resource_families()

    def scrape(self, deadline: float) -> list[Metric]:
        memory_f, cpu_f, up_f = self.families()
        for target in self.targets:
            usage = target_usage(target)
            up_f.add_metric([target.name], 0.0 if usage is None else 1.0)
            if usage is not None:
                memory_f.add_metric([target.name], usage[0])
                cpu_f.add_metric([target.name], usage[1])
        return [memory_f, cpu_f, up_f]
