"""Fixtures for the service tests: an in-process service on a private database and vhost, and DB helpers.

Timings are shortened (service time 0, heartbeat 1 s, relay poll 0.1 s) so the package runs in minutes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from loadgen.proxy import FaultProxy
from nfr.processes import free_port
from ticketero.app import Service
from ticketero.config import Settings
from ticketero.faults import parse_faults

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

FAST = {
    "service_time": 0.0,
    "heartbeat_interval": 1.0,
    "relay_interval": 0.1,
    "relay_backoff": 0.2,
    "advisor_retry_delay": 0.05,
    "shutdown_grace": 2.0,
    "db_pool_size": 6,
    "port": 0,
}


# No client call in these tests waits longer than this: a hang fails at the call that hung, with its own
# traceback, long before the test's overall timeout.
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=30)
TASK_DUMP_AFTER_SECONDS = 240.0  # before the 300 s test timeout (pyproject.toml)


@dataclass
class Running:
    service: Service
    base_url: str
    dsn: str


async def fetch(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await (await conn.execute(query, params)).fetchall()


async def database_proxy(database_dsn: str) -> tuple[FaultProxy, str]:
    """A started fault proxy in front of the test database, and the DSN that reaches the database through it
    (same user, password and database; only host and port change)."""
    parts = urllib.parse.urlsplit(database_dsn)
    proxy = FaultProxy("127.0.0.1", 0, parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return proxy, urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def scalar(dsn: str, query: str, *params: Any) -> Any:
    rows = await fetch(dsn, query, *params)
    return rows[0][0] if rows else None


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float, interval: float = 0.1, what: str = "condition"
) -> float:
    """Poll ``check`` until true; returns the seconds it took, fails the test after ``within`` seconds."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            pytest.fail(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


def ticket_body(national_id: int | str, queue: str = "CAJA") -> dict[str, str]:
    return {
        "nationalId": str(national_id),
        "telefono": "+56912345678",
        "branchOffice": "Sucursal Centro",
        "queueType": queue,
    }


async def create_tickets(base_url: str, bodies: list[dict[str, str]]) -> list[tuple[int, dict[str, Any]]]:
    """POST all bodies at once; returns (status, json) per request in order."""
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:

        async def post(body: dict[str, str]) -> tuple[int, dict[str, Any]]:
            async with session.post(f"{base_url}/api/tickets", json=body) as response:
                return response.status, await response.json()

        return list(await asyncio.gather(*(post(body) for body in bodies)))


@pytest.fixture
async def start_service(database_dsn: str, amqp_url: str) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """``await start_service(advisors=1, faults="unlocked-claim")`` → a running in-process service."""
    started: list[Service] = []

    async def start(wait_for_broker: bool = True, faults: str = "", **overrides: Any) -> Running:
        values: dict[str, Any] = {"database_dsn": database_dsn, "amqp_url": amqp_url, **FAST, **overrides}
        service = Service(Settings(faults=parse_faults(faults), **values))
        port = await service.start()
        started.append(service)
        if wait_for_broker:
            deadline = time.monotonic() + 15
            while not service.broker_connected():
                assert time.monotonic() < deadline, "service did not connect to RabbitMQ"
                await asyncio.sleep(0.05)
        return Running(service, f"http://127.0.0.1:{port}", database_dsn)

    # Should the test hang, pytest-timeout shows only the threads; this shows where each task waits.
    watchdog = asyncio.get_running_loop().call_later(TASK_DUMP_AFTER_SECONDS, dump_task_stacks)
    yield start
    watchdog.cancel()
    for service in reversed(started):
        await service.stop()


def dump_task_stacks() -> None:
    """Print every asyncio task's stack to stderr (pytest shows it with the failing test)."""
    print(f"--- asyncio tasks still waiting after {TASK_DUMP_AFTER_SECONDS:.0f} s ---", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=sys.stderr)


@dataclass
class Subprocess:
    process: subprocess.Popen[bytes]
    base_url: str
    dsn: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def spawn_service(database_dsn: str, amqp_url: str, tmp_path: Path) -> Iterator[Callable[..., Subprocess]]:
    """Start ``python -m ticketero`` as a real process (for signal handling); killed at teardown if alive."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str, env: dict[str, str] | None = None) -> Subprocess:
        port = free_port()
        log_path = tmp_path / f"service-{len(processes)}.log"
        command = [
            PYTHON,
            "-m",
            "ticketero",
            "--database-dsn",
            database_dsn,
            "--amqp-url",
            amqp_url,
            "--port",
            str(port),
            *args,
        ]
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        processes.append(process)
        return Subprocess(process, f"http://127.0.0.1:{port}", database_dsn, log_path)

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def wait_healthy(base_url: str, within: float = 20.0) -> None:
    async def healthy() -> bool:
        try:
            async with (
                aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session,
                session.get(f"{base_url}/actuator/health") as response,
            ):
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await wait_until(healthy, within, interval=0.1, what="service health UP")
