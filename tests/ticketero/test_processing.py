"""Workers and relay: one advisor never holds two tickets, redelivery is idempotent, outages lose nothing."""

from __future__ import annotations

import asyncio
import json
import time

import aio_pika
import aiohttp

from loadgen.proxy import FaultProxy
from tests.support.services import AMQP_HOST, AMQP_PORT
from tests.ticketero.conftest import (
    CLIENT_TIMEOUT,
    create_tickets,
    database_proxy,
    fetch,
    scalar,
    ticket_body,
    wait_healthy,
    wait_until,
)

ACTIVE_PER_ADVISOR = """
SELECT coalesce(max(n), 0) FROM (
    SELECT count(*) AS n FROM ticket
    WHERE status IN ('CALLED', 'IN_PROGRESS') AND assigned_advisor_id IS NOT NULL
    GROUP BY assigned_advisor_id
) per_advisor
"""


async def watch_max_active_per_advisor(dsn: str, stop: asyncio.Event) -> int:
    """Poll the database while the run goes on; the highest count of active tickets on one advisor."""
    worst = 0
    while not stop.is_set():
        worst = max(worst, await scalar(dsn, ACTIVE_PER_ADVISOR))
        await asyncio.sleep(0.01)
    return worst


async def test_one_advisor_five_tickets_never_double_assigned_and_all_complete(start_service):
    svc = await start_service(advisors=1, service_time=0.2)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_max_active_per_advisor(svc.dsn, stop))
    results = await create_tickets(svc.base_url, [ticket_body(30_000_000 + i, "CAJA") for i in range(5)])
    assert [status for status, _ in results] == [201] * 5

    async def all_completed() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'") == 5

    await wait_until(all_completed, 30, what="5 tickets COMPLETED by one advisor")
    stop.set()
    assert await watcher == 1  # the advisor did work, and never on two tickets at once
    assert await scalar(svc.dsn, "SELECT total_tickets_served FROM advisor") == 5
    assert await scalar(svc.dsn, "SELECT status FROM advisor") == "AVAILABLE"
    # Completions of one advisor never overlap in time.
    spans = await fetch(svc.dsn, "SELECT called_at, completed_at FROM ticket ORDER BY called_at")
    for (_, previous_end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert next_start >= previous_end


async def test_republished_message_changes_nothing(start_service):
    svc = await start_service(advisors=2)
    [(status, created)] = await create_tickets(svc.base_url, [ticket_body(40404040, "EMPRESAS")])
    assert status == 201

    async def completed() -> bool:
        return await scalar(svc.dsn, "SELECT status FROM ticket") == "COMPLETED"

    await wait_until(completed, 20, what="ticket COMPLETED")
    events_before = await scalar(svc.dsn, "SELECT count(*) FROM ticket_event")
    served_before = await scalar(svc.dsn, "SELECT sum(total_tickets_served) FROM advisor")
    completed_at = await scalar(svc.dsn, "SELECT completed_at FROM ticket")
    payload = await scalar(svc.dsn, "SELECT payload FROM outbox_message")

    connection = await aio_pika.connect(svc.service.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange("ticketero-exchange")
        for _ in range(3):  # the same message published again, three times
            await exchange.publish(
                aio_pika.Message(json.dumps(payload).encode()), routing_key="empresas-queue"
            )
        queue = await channel.declare_queue("empresas-queue", durable=True, passive=True)

        async def consumed() -> bool:
            declared = await queue.declare()
            return declared.message_count == 0

        await wait_until(consumed, 10, what="duplicates consumed")
    await asyncio.sleep(0.5)  # let a wrongly-processing worker finish its writes, if there were one

    assert created["numero"] == payload["numero"]
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket_event") == events_before
    assert await scalar(svc.dsn, "SELECT sum(total_tickets_served) FROM advisor") == served_before
    assert await scalar(svc.dsn, "SELECT completed_at FROM ticket") == completed_at


async def test_broker_cut_while_creating_loses_nothing(start_service, amqp_url):
    proxy = FaultProxy("127.0.0.1", 0, AMQP_HOST, AMQP_PORT)
    await proxy.start()
    try:
        proxied = amqp_url.replace(f"{AMQP_HOST}:{AMQP_PORT}", f"127.0.0.1:{proxy.port}")
        # Two refusals would make a row FAILED; an unreachable broker must never count as a refusal.
        svc = await start_service(advisors=4, amqp_url=proxied, relay_max_attempts=2, relay_backoff=0.3)
        [(status, _)] = await create_tickets(svc.base_url, [ticket_body(50_000_000, "CAJA")])
        assert status == 201

        async def first_done() -> bool:
            return await scalar(svc.dsn, "SELECT status FROM ticket") == "COMPLETED"

        await wait_until(first_done, 15, what="first ticket through the proxy")

        proxy.cut()

        async def broker_down() -> bool:
            return not svc.service.broker_connected()

        await wait_until(broker_down, 10, what="service noticing the cut")
        results = await create_tickets(
            svc.base_url, [ticket_body(50_000_001 + i, "PERSONAL") for i in range(20)]
        )
        assert [status for status, _ in results] == [201] * 20  # the API keeps working

        async def retried_with_backoff() -> bool:
            return (
                await scalar(svc.dsn, "SELECT min(attempts) FROM outbox_message WHERE status = 'PENDING'")
                >= 3
            )

        await wait_until(retried_with_backoff, 20, what="every PENDING row retried 3 times")
        assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'PENDING'") == 20
        assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'FAILED'") == 0
        errors = await fetch(
            svc.dsn,
            "SELECT DISTINCT split_part(last_error, ':', 1) FROM outbox_message WHERE status = 'PENDING'",
        )
        assert errors == [("broker unreachable",)]
        # Exponential: after n failures the next try is 0.3 * 2^(n-1) s away, never a tight loop.
        [(attempts, wait)] = await fetch(
            svc.dsn,
            "SELECT attempts, extract(epoch FROM next_attempt_at - now()) FROM outbox_message"
            " WHERE status = 'PENDING' ORDER BY attempts DESC LIMIT 1",
        )
        assert float(wait) <= 0.3 * 2 ** (attempts - 1)
        assert await scalar(svc.dsn, "SELECT max(attempts) FROM outbox_message") <= 8

        proxy.restore()

        async def all_through() -> bool:
            sent = await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'SENT'")
            done = await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'")
            return sent == 21 and done == 21

        took = await wait_until(
            all_through, 45, what="all 21 tickets SENT and COMPLETED after the broker is back"
        )
        assert took < 10  # rows waiting only for the broker are due as soon as it is back
        assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'FAILED'") == 0
    finally:
        await proxy.stop()


async def test_database_cut_is_survived_by_relay_and_workers(start_service, database_dsn):
    proxy, proxied = await database_proxy(database_dsn)
    try:
        # A cut can land between COMMIT and its answer: the worker then cannot know its claim holds, stops
        # heart-beating, and the recovery service gives the ticket back. Short timings keep that quick.
        svc = await start_service(
            advisors=4,
            database_dsn=proxied,
            db_pool_timeout=2.0,
            heartbeat_interval=0.5,
            heartbeat_timeout=2.0,
            recovery_interval=0.5,
        )
        first = await create_tickets(svc.base_url, [ticket_body(52_000_000 + i) for i in range(5)])
        assert [status for status, _ in first] == [201] * 5

        proxy.cut()
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
            async with session.get(f"{svc.base_url}/actuator/health") as response:
                assert response.status == 503
                assert (await response.json())["components"]["db"]["status"] == "DOWN"
            async with session.post(f"{svc.base_url}/api/tickets", json=ticket_body(52_999_999)) as response:
                assert response.status == 500  # no ticket half-written: the transaction never committed
        await asyncio.sleep(1.0)  # relay, workers and recovery all hit the dead connections
        proxy.restore()
        await wait_healthy(svc.base_url)  # the pool reconnects with its own backoff

        second = await create_tickets(
            svc.base_url, [ticket_body(52_000_100 + i, "EMPRESAS") for i in range(5)]
        )
        assert [status for status, _ in second] == [201] * 5

        async def all_done() -> bool:
            return await scalar(database_dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'") == 10

        await wait_until(all_done, 30, what="10 tickets COMPLETED after the database came back")
        assert await scalar(database_dsn, "SELECT count(*) FROM ticket WHERE national_id = '52999999'") == 0
        # Every row SENT (a ticket recovered after an unanswered COMMIT has a second, re-queue row).
        assert await scalar(database_dsn, "SELECT count(*) FROM outbox_message WHERE status <> 'SENT'") == 0
        assert await scalar(database_dsn, "SELECT count(DISTINCT aggregate_id) FROM outbox_message") == 10
    finally:
        await proxy.stop()


async def test_frozen_database_link_fails_the_request_instead_of_hanging(start_service, database_dsn):
    """A link that answers nothing (no reset, no data: a dropped route, a frozen peer) must not hold a request
    for ever: the checkout check gives up, and the client gets a 500 within seconds."""
    proxy, proxied = await database_proxy(database_dsn)
    try:
        svc = await start_service(database_dsn=proxied, db_pool_timeout=2.0)
        first = await create_tickets(svc.base_url, [ticket_body(53_000_000)])
        assert [status for status, _ in first] == [201]

        proxy.set_latency(3600.0)  # every byte on the existing connections now waits an hour
        started = time.monotonic()
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.post(f"{svc.base_url}/api/tickets", json=ticket_body(53_000_001)) as response,
        ):
            assert response.status == 500
        # 2 s checkout check, then psycopg's own bounded cancel (<= 10 s); far below the client's 60 s
        assert time.monotonic() - started < 20
        assert await scalar(database_dsn, "SELECT count(*) FROM ticket WHERE national_id = '53000001'") == 0
    finally:
        await proxy.stop()  # resets every frozen connection, so the service stops at once
