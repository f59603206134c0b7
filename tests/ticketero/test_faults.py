"""Each fault switch breaks its one guarantee, observably, and the same run without the switch keeps it.

Every test runs twice, ``faulty`` and ``healthy``, with identical load and timings; only the switch differs.
"""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest

from tests.ticketero.conftest import create_tickets, fetch, scalar, ticket_body, wait_until
from tests.ticketero.test_processing import watch_max_active_per_advisor

MIB = 1024 * 1024
ON_OFF = pytest.mark.parametrize("faulty", [True, False], ids=["faulty", "healthy"])


@ON_OFF
async def test_unlocked_claim_double_assigns_an_advisor(start_service, faulty):
    svc = await start_service(faults="unlocked-claim" if faulty else "", advisors=1, service_time=0.5)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_max_active_per_advisor(svc.dsn, stop))
    await create_tickets(svc.base_url, [ticket_body(70_000_000 + i, "CAJA") for i in range(6)])
    await asyncio.sleep(2.0)
    stop.set()
    worst = await watcher
    if faulty:
        assert worst >= 2  # RNF-03 broken: one advisor holding two active tickets
    else:
        assert worst == 1


async def _rss(session: aiohttp.ClientSession, base_url: str) -> float:
    async with session.get(f"{base_url}/actuator/prometheus") as response:
        text = await response.text()
    match = re.search(r"^process_resident_memory_bytes (\S+)", text, re.M)
    assert match
    return float(match.group(1))


@ON_OFF
async def test_memory_leak_grows_rss(start_service, faulty):
    svc = await start_service(faults=f"memory-leak={2 * MIB}" if faulty else "", advisors=0)
    async with aiohttp.ClientSession() as session:
        before = await _rss(session, svc.base_url)
        for _ in range(30):
            async with session.get(f"{svc.base_url}/actuator/health"):
                pass
        grown = await _rss(session, svc.base_url) - before
    if faulty:
        assert grown >= 50 * MIB  # RNF-07 broken: 30 requests x 2 MiB kept (plus the scrapes)
    else:
        assert grown < 10 * MIB


@ON_OFF
async def test_slow_api_pushes_create_latency_over_2_seconds(start_service, faulty):
    svc = await start_service(faults="slow-api=2.2" if faulty else "", advisors=0)
    started = time.monotonic()
    results = await create_tickets(svc.base_url, [ticket_body(80_000_000 + i) for i in range(5)])
    elapsed = time.monotonic() - started
    assert [status for status, _ in results] == [201] * 5
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{svc.base_url}/actuator/prometheus") as response,
    ):
        text = await response.text()
    labels = 'method="POST",outcome="SUCCESS",status="201",uri="/api/tickets"'
    assert f"http_server_requests_seconds_count{{{labels}}} 5.0" in text
    under_2s = f'http_server_requests_seconds_bucket{{le="2.0",{labels}}}'
    if faulty:
        assert elapsed >= 2.2 and f"{under_2s} 0.0" in text  # RNF-02 broken: nothing under 2 s
    else:
        assert elapsed < 2.0 and f"{under_2s} 5.0" in text


@ON_OFF
async def test_stalled_worker_without_recovery_leaves_a_stale_busy_advisor(start_service, faulty):
    svc = await start_service(
        faults="stalled-worker" if faulty else "",
        recovery=False,
        advisors=2,
        service_time=4.0,
        heartbeat_interval=0.5,
        heartbeat_timeout=2.0,
    )
    await create_tickets(svc.base_url, [ticket_body(90_000_000, "CAJA")])

    async def busy() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 1

    await wait_until(busy, 10, interval=0.05, what="an advisor BUSY")
    await asyncio.sleep(3.0)  # longer than the heartbeat timeout, shorter than the service time
    age = await scalar(
        svc.dsn, "SELECT extract(epoch FROM now() - last_heartbeat) FROM advisor WHERE status = 'BUSY'"
    )
    if faulty:
        assert float(age) > 2.0  # RNF-05 broken (recovery off): a dead worker nobody notices
        assert await scalar(svc.dsn, "SELECT status FROM ticket") == "IN_PROGRESS"
    else:
        assert float(age) < 1.5  # a live worker keeps its heartbeat fresh

        async def completed() -> bool:
            return await scalar(svc.dsn, "SELECT status FROM ticket") == "COMPLETED"

        await wait_until(completed, 10, what="ticket COMPLETED")
    assert await scalar(svc.dsn, "SELECT count(*) FROM recovery_event") == 0


@ON_OFF
async def test_failing_relay_marks_outbox_failed(start_service, faulty):
    svc = await start_service(faults="failing-relay" if faulty else "", advisors=2)
    await create_tickets(svc.base_url, [ticket_body(91_000_000 + i, "PERSONAL") for i in range(5)])
    expected = "FAILED" if faulty else "SENT"

    async def all_settled() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = %s", expected) == 5

    await wait_until(all_settled, 10, what=f"5 outbox rows {expected}")
    if faulty:  # RNF-04 broken: messages never published, tickets never served
        [(error,)] = await fetch(svc.dsn, "SELECT DISTINCT last_error FROM outbox_message")
        assert "failing-relay" in error
        assert await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'WAITING'") == 5
    else:

        async def completed() -> bool:
            return await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'") == 5

        await wait_until(completed, 10, what="5 tickets COMPLETED")


async def test_failing_relay_share_fails_only_that_share(start_service):
    # failing-relay=0.5: RNF-04 broken for half the messages, the other half still flows (RNF-01 holds).
    svc = await start_service(faults="failing-relay=0.5", advisors=4)
    await create_tickets(svc.base_url, [ticket_body(92_000_000 + i, "CAJA") for i in range(40)])

    async def all_settled() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'PENDING'") == 0

    await wait_until(all_settled, 15, what="no outbox row PENDING")
    rows = await fetch(svc.dsn, "SELECT id, status FROM outbox_message")
    failed = {row_id for row_id, status in rows if status == "FAILED"}
    assert failed == {row_id for row_id, _ in rows if (row_id * 7919) % 1000 < 500}
    assert 0 < len(failed) < 40

    async def rest_completed() -> bool:
        done = await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'")
        return done == 40 - len(failed)

    await wait_until(rest_completed, 15, what="the tickets whose message was sent COMPLETED")


def test_failing_relay_share_is_validated():
    from ticketero.faults import FaultSpecError, parse_faults

    assert parse_faults("failing-relay=0.25").failing_relay_fraction == 0.25
    assert parse_faults("failing-relay").failing_relay_fraction == 1.0
    for bad in ("failing-relay=0", "failing-relay=1.5", "failing-relay=half"):
        with pytest.raises(FaultSpecError, match="failing-relay"):
            parse_faults(bad)
