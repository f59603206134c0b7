"""Dead-worker recovery: detected within heartbeat timeout + interval, ticket re-queued and completed."""

from __future__ import annotations

import asyncio

from tests.ticketero.conftest import create_tickets, fetch, scalar, ticket_body, wait_until

TIMEOUT = 3.0
INTERVAL = 1.0


async def test_dead_worker_is_recovered_and_its_ticket_completes(start_service):
    svc = await start_service(
        faults="stalled-worker",
        advisors=2,
        service_time=0.2,
        heartbeat_interval=1.0,
        heartbeat_timeout=TIMEOUT,
        recovery_interval=INTERVAL,
    )
    [(status, created)] = await create_tickets(svc.base_url, [ticket_body(60_000_000, "CAJA")])
    assert status == 201

    async def recovered() -> bool:
        return (
            await scalar(svc.dsn, "SELECT count(*) FROM recovery_event WHERE recovery_type = 'DEAD_WORKER'")
            > 0
        )

    await wait_until(recovered, TIMEOUT + INTERVAL + 10, what="DEAD_WORKER recovery_event")
    [(advisor_id, ticket_id, worker_id, detection)] = await fetch(
        svc.dsn,
        "SELECT advisor_id, ticket_id, worker_id, extract(epoch FROM detected_at - last_heartbeat_at)"
        " FROM recovery_event",
    )
    assert TIMEOUT <= float(detection) <= TIMEOUT + INTERVAL + 1.0  # RNF-05's rule, at test scale
    assert worker_id and ticket_id == await scalar(svc.dsn, "SELECT id FROM ticket")
    assert await scalar(svc.dsn, "SELECT recovery_count FROM advisor WHERE id = %s", advisor_id) == 1

    async def completed() -> bool:
        return await scalar(svc.dsn, "SELECT status FROM ticket") == "COMPLETED"

    await wait_until(completed, 15, what="re-queued ticket COMPLETED")
    events = [row[0] for row in await fetch(svc.dsn, "SELECT event_type FROM ticket_event ORDER BY id")]
    assert events == ["CREATED", "CALLED", "STARTED", "RECOVERED", "CALLED", "STARTED", "COMPLETED"]
    outbox = await fetch(svc.dsn, "SELECT event_type, status FROM outbox_message ORDER BY id")
    assert outbox == [("TICKET_CREATED", "SENT"), ("TICKET_REQUEUED", "SENT")]
    assert created["numero"] == await scalar(svc.dsn, "SELECT numero FROM ticket")


async def test_heartbeats_keep_a_long_ticket_alive(start_service):
    """Without the fault, a ticket longer than the heartbeat timeout is never mistaken for a dead worker."""
    svc = await start_service(
        advisors=1,
        service_time=TIMEOUT + 2.5,
        heartbeat_interval=0.5,
        heartbeat_timeout=TIMEOUT,
        recovery_interval=0.5,
    )
    await create_tickets(svc.base_url, [ticket_body(61_000_000, "GERENCIA")])

    async def completed() -> bool:
        return await scalar(svc.dsn, "SELECT status FROM ticket") == "COMPLETED"

    await wait_until(completed, TIMEOUT + 15, what="long ticket COMPLETED")
    assert await scalar(svc.dsn, "SELECT count(*) FROM recovery_event") == 0
    assert await scalar(svc.dsn, "SELECT total_tickets_served FROM advisor") == 1


async def test_recovery_skips_advisors_another_instance_holds(start_service):
    """FOR UPDATE SKIP LOCKED: an advisor locked elsewhere is left alone, then recovered once."""
    import psycopg

    svc = await start_service(advisors=1, heartbeat_timeout=1.0, recovery_interval=60.0)
    async with await psycopg.AsyncConnection.connect(svc.dsn, autocommit=True) as conn:
        await conn.execute(
            "UPDATE advisor SET status = 'BUSY', worker_id = 'gone', last_heartbeat = now() - interval '1 hour'"
        )
        async with conn.transaction():
            await conn.execute("SELECT id FROM advisor FOR UPDATE")
            assert await svc.service.recovery.recover_once() == 0
        assert await svc.service.recovery.recover_once() == 1
        assert await svc.service.recovery.recover_once() == 0
    assert await scalar(svc.dsn, "SELECT count(*) FROM recovery_event") == 1
    assert await scalar(svc.dsn, "SELECT status FROM advisor") == "AVAILABLE"
    await asyncio.sleep(0)


async def test_worker_whose_advisor_was_taken_drops_the_ticket_and_recovery_requeues_it(start_service):
    """RES-01 as the scenario runs it: heartbeat aged and worker_id changed under a live worker."""
    svc = await start_service(
        advisors=2, service_time=2.0, heartbeat_interval=0.3, heartbeat_timeout=TIMEOUT, recovery_interval=0.5
    )
    await create_tickets(svc.base_url, [ticket_body(62_000_000, "GERENCIA")])

    async def busy() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 1

    await wait_until(busy, 10, interval=0.05, what="an advisor BUSY")
    await fetch(
        svc.dsn,
        "UPDATE advisor SET last_heartbeat = now() - interval '120 seconds',"
        " worker_id = 'crashed-' || coalesce(worker_id, 'worker') WHERE status = 'BUSY' RETURNING id",
    )

    async def completed() -> bool:
        return await scalar(svc.dsn, "SELECT status FROM ticket") == "COMPLETED"

    await wait_until(completed, 20, what="ticket COMPLETED by another worker")
    [(worker_id,)] = await fetch(
        svc.dsn, "SELECT worker_id FROM recovery_event WHERE recovery_type = 'DEAD_WORKER'"
    )
    assert worker_id.startswith("crashed-")
    # The first worker noticed it no longer held the advisor and completed nothing.
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket_event WHERE event_type = 'COMPLETED'") == 1
    assert await scalar(svc.dsn, "SELECT sum(total_tickets_served) FROM advisor") == 1
    assert await scalar(svc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 0


async def test_recovery_racing_live_workers_never_deadlocks_or_double_counts(start_service):
    """Heartbeat timeout equal to the service time, no heartbeats: recovery takes advisors from live
    workers right as they complete. Completions and recoveries race on the same rows; the lock order
    (advisor, then ticket) must keep PostgreSQL free of deadlocks, and every ticket must still complete
    exactly once."""
    svc = await start_service(
        advisors=4, service_time=0.3, heartbeat_interval=10.0, heartbeat_timeout=0.3, recovery_interval=0.02
    )
    deadlocks_before = await scalar(
        svc.dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    await create_tickets(
        svc.base_url, [ticket_body(63_000_000 + i, ("CAJA", "PERSONAL")[i % 2]) for i in range(16)]
    )

    async def all_completed() -> bool:
        return await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'") == 16

    await wait_until(all_completed, 60, what="16 tickets COMPLETED despite the recoveries")
    assert await scalar(svc.dsn, "SELECT count(*) FROM recovery_event") > 0  # the race really happened
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket_event WHERE event_type = 'COMPLETED'") == 16
    assert await scalar(svc.dsn, "SELECT sum(total_tickets_served) FROM advisor") == 16
    assert await scalar(svc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 0
    deadlocks = await scalar(
        svc.dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    assert deadlocks == deadlocks_before
