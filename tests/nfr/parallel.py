"""Run several demo jobs at once, each on its own stack, and keep each one's result or error for its test."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_all(
    jobs: dict[str, Callable[[], T]], timeout: float = 400, at_once: int | None = None
) -> dict[str, T | BaseException]:
    """Start every job in its own thread (at most ``at_once`` at a time, in the given order); a job that
    raised (or timed out) is reported by its own test."""
    outcomes: dict[str, T | BaseException] = {}
    with ThreadPoolExecutor(max_workers=at_once or len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        for name, future in futures.items():
            try:
                outcomes[name] = future.result(timeout=timeout)
            except BaseException as err:
                outcomes[name] = err
    return outcomes
