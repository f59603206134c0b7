"""Each fault switch breaks its one guarantee, observably. The tests without the switch (test_api,
test_processing, test_recovery) show the same guarantee holding."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from tests.ticketero.conftest import create_tickets, fetch, scalar, ticket_body, wait_until
from tests.ticketero.test_processing import watch_max_active_per_advisor

MIB = 1024 * 1024


async def test_unlocked_claim_double_assigns_an_advisor(start_service):
    svc = await start_service(faults="unlocked-claim", advisors=1, service_time=0.5)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_max_active_per_advisor(svc.dsn, stop))
    await create_tickets(svc.base_url, [ticket_body(70_000_000 + i, "CAJA") for i in range(6)])
    await asyncio.sleep(2.0)
    stop.set()
    assert await watcher >= 2  # RNF-03 broken: one advisor holding two active tickets


async def _rss(session: aiohttp.ClientSession, base_url: str) -> float:
    async with session.get(f"{base_url}/actuator/prometheus") as response:
        text = await response.text()
    match = re.search(r"^process_resident_memory_bytes (\S+)", text, re.M)
    assert match
    return float(match.group(1))


async def test_memory_leak_grows_rss_and_not_without_it(start_service):
    leaky = await start_service(faults=f"memory-leak={2 * MIB}", advisors=0)
    async with aiohttp.ClientSession() as session:
        before = await _rss(session, leaky.base_url)
        for _ in range(30):
            async with session.get(f"{leaky.base_url}/actuator/health"):
                pass
        grown = await _rss(session, leaky.base_url) - before
    assert grown >= 50 * MIB  # 30 requests x 2 MiB kept (plus the scrapes)

    await leaky.service.stop()
    healthy = await start_service(advisors=0)
    async with aiohttp.ClientSession() as session:
        before = await _rss(session, healthy.base_url)
        for _ in range(30):
            async with session.get(f"{healthy.base_url}/actuator/health"):
                pass
        grown_without = await _rss(session, healthy.base_url) - before
    assert grown_without < 10 * MIB


async def test_slow_api_pushes_create_latency_over_2_seconds(start_service):
    svc = await start_service(faults="slow-api=2.2", advisors=0)
    started = time.monotonic()
    results = await create_tickets(svc.base_url, [ticket_body(80_000_000 + i) for i in range(5)])
    assert time.monotonic() - started >= 2.2
    assert [status for status, _ in results] == [201] * 5
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{svc.base_url}/actuator/prometheus") as response,
    ):
        text = await response.text()
    labels = 'method="POST",outcome="SUCCESS",status="201",uri="/api/tickets"'
    assert f'http_server_requests_seconds_bucket{{le="2.0",{labels}}} 0.0' in text
    assert f"http_server_requests_seconds_count{{{labels}}} 5.0" in text


async def test_stalled_worker_without_recovery_leaves_a_stale_busy_advisor(start_service):
    svc = await start_service(
        faults="stalled-worker", recovery=False, advisors=2, heartbeat_interval=0.5, heartbeat_timeout=2.0
    )
    await create_tickets(svc.base_url, [ticket_body(90_000_000, "CAJA")])

    async def stuck() -> bool:
        age = await scalar(
            svc.dsn,
            "SELECT extract(epoch FROM now() - last_heartbeat) FROM advisor WHERE status = 'BUSY'",
        )
        return age is not None and float(age) > 3.0

    await wait_until(stuck, 10, what="BUSY advisor with a heartbeat older than 3 s")
    assert await scalar(svc.dsn, "SELECT status FROM ticket") == "IN_PROGRESS"
    assert await scalar(svc.dsn, "SELECT count(*) FROM recovery_event") == 0


async def test_failing_relay_marks_outbox_failed(start_service):
    svc = await start_service(faults="failing-relay", advisors=2)
    await create_tickets(svc.base_url, [ticket_body(91_000_000 + i, "PERSONAL") for i in range(5)])

    async def all_failed() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'FAILED'") == 5

    await wait_until(all_failed, 10, what="5 outbox rows FAILED")
    rows = await fetch(svc.dsn, "SELECT DISTINCT last_error FROM outbox_message")
    assert "failing-relay" in rows[0][0]
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'WAITING'") == 5
