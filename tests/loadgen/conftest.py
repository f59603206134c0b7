"""Fixtures of the load generator's tests: a real local HTTP service, scenario files, free ports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadgen.config import Scenario, load_scenario
from tests.loadgen.fake_service import FakeTicketero
from tests.support.docker import docker_client, docker_container, docker_image  # noqa: F401

REPO = Path(__file__).resolve().parents[2]

# The HTTP client's tests run on both loops the CLI may use: uvloop, and asyncio's own when uvloop is absent.
BOTH_LOOPS_MODULES = ("tests.loadgen.test_http", "tests.loadgen.test_http_edges")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict:
    module = getattr(item, "module", None)
    if module is None or module.__name__ not in BOTH_LOOPS_MODULES:
        return {"asyncio": asyncio.new_event_loop}  # one factory: test names stay as they are
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def service() -> Iterator[FakeTicketero]:
    with FakeTicketero(record_arrivals=True) as running:
        yield running


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a scenario (YAML text, dedented) into tmp_path; returns its path."""
    counter = {"n": 0}

    def write(text: str) -> Path:
        counter["n"] += 1
        path = tmp_path / f"scenario{counter['n']}.yml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def make_scenario(scenario_file: Callable[[str], Path]) -> Callable[[str], Scenario]:
    def make(text: str) -> Scenario:
        return load_scenario(scenario_file(text))

    return make


def loadgen_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "loadgen", *args]


def run_loadgen(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment = {k: v for k, v in environment.items() if not k.startswith("LOADGEN_") or k in (env or {})}
    return subprocess.run(
        loadgen_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout, env=environment
    )


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
