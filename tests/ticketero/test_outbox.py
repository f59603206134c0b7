"""Outbox relay: refused publishes back off exponentially and end FAILED; rows locked elsewhere are skipped;
two service instances share one database without losing or double-serving a ticket."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg.types.json import Jsonb

from tests.ticketero.conftest import create_tickets, fetch, scalar, ticket_body, wait_until


async def test_unroutable_message_retries_with_exponential_backoff_then_fails(start_service):
    svc = await start_service(advisors=0, relay_max_attempts=3, relay_backoff=0.4)
    [(status, created)] = await create_tickets(svc.base_url, [ticket_body(12121212)])
    assert status == 201
    ticket_id = await scalar(svc.dsn, "SELECT id FROM ticket")
    async with await psycopg.AsyncConnection.connect(svc.dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload)"
            " VALUES (%s, 'TICKET_CREATED', 'no-such-queue', %s)",
            (ticket_id, Jsonb({"ticketId": ticket_id, "numero": created["numero"]})),
        )
    samples: list[tuple[int, float]] = []

    async def failed() -> bool:
        rows = await fetch(
            svc.dsn,
            "SELECT attempts, status, extract(epoch FROM next_attempt_at - now()) FROM outbox_message"
            " WHERE routing_key = 'no-such-queue'",
        )
        attempts, state, wait = rows[0]
        if state == "PENDING" and attempts and (not samples or samples[-1][0] != attempts):
            samples.append((attempts, float(wait)))
        return state == "FAILED"

    await wait_until(failed, 15, interval=0.05, what="unroutable row FAILED after 3 attempts")
    [(attempts, error)] = await fetch(
        svc.dsn, "SELECT attempts, last_error FROM outbox_message WHERE routing_key = 'no-such-queue'"
    )
    assert attempts == 3
    assert error
    # Delays after the 1st and 2nd failure: 0.4 * 2^0 and 0.4 * 2^1 seconds.
    delays = dict(samples)
    assert 0.2 <= delays[1] <= 0.45 and 0.6 <= delays[2] <= 0.85, samples
    # The good row of the same ticket was not held back by the bad one.
    assert (
        await scalar(svc.dsn, "SELECT status FROM outbox_message WHERE routing_key = 'caja-queue'") == "SENT"
    )


async def test_relay_skips_rows_locked_by_another_instance(start_service):
    svc = await start_service(advisors=0, relay_interval=60.0)
    # Stop the background relay so only the explicit batches below run.
    await svc.service.relay.stop()
    await create_tickets(svc.base_url, [ticket_body(1000 + i) for i in range(3)])
    relay = type(svc.service.relay)(svc.service.pool, svc.service.settings)

    class RecordingExchange:
        def __init__(self) -> None:
            self.published: list[str] = []

        async def publish(self, message, routing_key, **_kwargs):
            self.published.append(routing_key)

    exchange = RecordingExchange()
    relay._link_open = lambda: True  # the recording exchange stands in for a live channel
    async with await psycopg.AsyncConnection.connect(svc.dsn) as other:
        await other.execute("SELECT id FROM outbox_message ORDER BY id LIMIT 2 FOR UPDATE")
        assert await relay.relay_batch(exchange) == 1  # two rows are another relay's: skipped, not waited for
        await other.rollback()
    assert await relay.relay_batch(exchange) == 2
    assert await relay.relay_batch(exchange) == 0
    assert len(exchange.published) == 3
    assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'SENT'") == 3


async def test_two_instances_share_the_work(start_service):
    first = await start_service(advisors=4, service_time=0.05)
    second = await start_service(advisors=4, service_time=0.05)
    bodies = [ticket_body(2_000_000 + i, ("CAJA", "PERSONAL")[i % 2]) for i in range(60)]
    results = await asyncio.gather(
        create_tickets(first.base_url, bodies[::2]), create_tickets(second.base_url, bodies[1::2])
    )
    assert [status for part in results for status, _ in part] == [201] * 60

    async def done() -> bool:
        return await scalar(first.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'") == 60

    await wait_until(done, 60, what="60 tickets completed by two instances")
    assert await scalar(first.dsn, "SELECT sum(total_tickets_served) FROM advisor") == 60
    assert await scalar(first.dsn, "SELECT count(*) FROM advisor") == 4  # seeded once, not twice
    assert await scalar(first.dsn, "SELECT count(*) FROM ticket_event WHERE event_type = 'COMPLETED'") == 60
    workers = await fetch(
        first.dsn,
        "SELECT count(DISTINCT split_part(worker_id, '-', 2)) FROM advisor WHERE worker_id IS NOT NULL",
    )
    assert workers  # query runs; ownership is cleared after each ticket
