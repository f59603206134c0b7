"""Queue workers: ``workers_per_queue`` consumers on each ticket queue, each serving one ticket at a time.

A delivery goes through: claim an advisor (ticket CALLED) → IN_PROGRESS → work for ``service_time`` while
heart-beating → COMPLETED, advisor AVAILABLE, ack. Every step is one short transaction that also writes a
ticket_event, and every step after the claim is conditional on the worker still holding the ticket and the
advisor: if the recovery service declared the worker dead and re-queued the ticket meanwhile, the worker
notices (zero rows updated), changes nothing and acks.

Redelivered or duplicated messages are harmless: a ticket that is not WAITING is acked untouched (CONC-02).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

import aio_pika
import psycopg
from aio_pika.abc import AbstractIncomingMessage
from psycopg_pool import AsyncConnectionPool

from ticketero import amqp
from ticketero.config import Settings
from ticketero.domain import ROUTING_KEYS, mask_url
from ticketero.requeue import requeue_held_tickets

log = logging.getLogger("ticketero.worker")

# How long the unlocked-claim fault sleeps between reading an AVAILABLE advisor and taking it.
UNLOCKED_CLAIM_WINDOW_SECONDS = 0.3

LOCK_TICKET = "SELECT status FROM ticket WHERE id = %s FOR UPDATE"

# Least-used free advisor first, so work spreads; SKIP LOCKED so racing workers pick different advisors.
CLAIM_ADVISOR = """
SELECT id, module_number FROM advisor
WHERE status = 'AVAILABLE'
ORDER BY total_tickets_served, id
LIMIT 1
FOR UPDATE SKIP LOCKED
"""

# The unlocked-claim fault: the same choice, read without any lock.
PEEK_ADVISOR = "SELECT id, module_number FROM advisor WHERE status = 'AVAILABLE' ORDER BY id LIMIT 1"

MARK_ADVISOR_BUSY = """
UPDATE advisor SET status = 'BUSY', last_heartbeat = now(), worker_id = %s, updated_at = now()
WHERE id = %s
"""

MARK_CALLED = """
UPDATE ticket
SET status = 'CALLED', assigned_advisor_id = %s, assigned_module_number = %s, called_at = now(), updated_at = now()
WHERE id = %s
RETURNING numero, queue_type, telefono
"""

MARK_IN_PROGRESS = """
UPDATE ticket t SET status = 'IN_PROGRESS', started_at = now(), updated_at = now()
FROM advisor a
WHERE t.id = %(ticket)s AND t.status = 'CALLED' AND t.assigned_advisor_id = %(advisor)s
  AND a.id = t.assigned_advisor_id AND a.worker_id = %(worker)s
"""

HEARTBEAT = """
UPDATE advisor SET last_heartbeat = now()
WHERE id = %s AND status = 'BUSY' AND worker_id = %s
"""

MARK_COMPLETED = """
UPDATE ticket t SET status = 'COMPLETED', completed_at = now(), updated_at = now()
FROM advisor a
WHERE t.id = %(ticket)s AND t.status = 'IN_PROGRESS' AND t.assigned_advisor_id = %(advisor)s
  AND a.id = t.assigned_advisor_id AND a.worker_id = %(worker)s
"""

RELEASE_ADVISOR_SERVED = """
UPDATE advisor
SET status = 'AVAILABLE', worker_id = NULL, last_heartbeat = now(),
    total_tickets_served = total_tickets_served + 1, updated_at = now()
WHERE id = %s AND worker_id = %s
"""

# duplicate-processing fault: a redelivery of a COMPLETED ticket is counted and recorded once more.
SERVE_AGAIN = """
WITH done AS (SELECT id, assigned_advisor_id FROM ticket WHERE id = %s AND status = 'COMPLETED'),
counted AS (
    UPDATE advisor SET total_tickets_served = total_tickets_served + 1, updated_at = now()
    WHERE id = (SELECT assigned_advisor_id FROM done)
)
INSERT INTO ticket_event (ticket_id, event_type, from_status, to_status, advisor_id)
SELECT id, 'COMPLETED', 'IN_PROGRESS', 'COMPLETED', assigned_advisor_id FROM done
"""

# Every transaction that touches both rows locks the advisor before the ticket (recovery does the same).
LOCK_OWN_ADVISOR = "SELECT id FROM advisor WHERE id = %s AND worker_id = %s AND status = 'BUSY' FOR UPDATE"

INSERT_EVENT = """
INSERT INTO ticket_event (ticket_id, event_type, from_status, to_status, advisor_id)
VALUES (%s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class Assignment:
    ticket_id: int
    advisor_id: int
    numero: str


class _NoAdvisor:
    """Claim result: every advisor is busy; the message goes back to the queue after a pause."""


class _NotWaiting:
    """Claim result: the ticket is gone or already past WAITING (a redelivery); ack and change nothing."""


NO_ADVISOR = _NoAdvisor()
NOT_WAITING = _NotWaiting()


class WorkerPool:
    """All consumers of this process on one broker connection, reconnecting when it drops."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._prefix = f"{socket.gethostname()}-{os.getpid()}"
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._consumers: list[tuple[aio_pika.abc.AbstractQueue, str]] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stall_taken = False  # stalled-worker fault: only the first ticket of the process stalls
        self._shutdown = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    @property
    def in_flight(self) -> int:
        return len(self._handlers)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="worker-pool")

    async def stop(self, grace: float) -> None:
        """Stop consuming, give in-flight tickets ``grace`` seconds, hand back the rest, disconnect."""
        self._stopping.set()
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.cancel(tag), 5)
        self._consumers.clear()
        if self._handlers:
            log.info("waiting up to %.1f s for %d in-flight tickets", grace, len(self._handlers))
            _, pending = await asyncio.wait(set(self._handlers), timeout=grace)
            if pending:
                log.warning("grace period over: handing back %d tickets", len(pending))
                self._shutdown.set()
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)
        log.info("workers stopped")

    async def _run(self) -> None:
        url = self._settings.amqp_url
        backoff = amqp.BACKOFF_FIRST_SECONDS
        outage_logged = False
        while not self._stopping.is_set():
            try:
                connection = await amqp.connect(url)
            except amqp.BROKER_ERRORS as exc:
                if not outage_logged:
                    log.warning("workers cannot reach broker %s (%s); retrying", mask_url(url), exc)
                    outage_logged = True
                await asyncio.sleep(backoff)
                backoff = amqp.next_backoff(backoff)
                continue
            backoff = amqp.BACKOFF_FIRST_SECONDS
            outage_logged = False
            closed = asyncio.Event()
            connection.close_callbacks.add(lambda *_, event=closed: event.set())
            self._connection = connection
            try:
                await self._start_consumers(connection, closed)
                log.info(
                    "workers consuming: %d per queue on %s",
                    self._settings.workers_per_queue,
                    ", ".join(ROUTING_KEYS.values()),
                )
                await closed.wait()
                if not self._stopping.is_set():
                    log.warning("workers lost the broker; reconnecting")
            except amqp.BROKER_ERRORS as exc:
                log.warning("workers lost the broker while subscribing (%s); reconnecting", exc)
            finally:
                self._consumers.clear()
                # On stop, stop() closes the connection itself once the in-flight tickets are settled.
                if not connection.is_closed and not self._stopping.is_set():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 5)

    async def _start_consumers(
        self, connection: aio_pika.abc.AbstractConnection, lost: asyncio.Event
    ) -> None:
        """One channel per consumer (prefetch 1). A channel the broker closes sets ``lost``: the whole
        connection is then rebuilt, so no queue silently ends up with fewer consumers."""
        setup = await connection.channel()
        await amqp.declare_topology(setup)
        await setup.close()
        for queue_name in ROUTING_KEYS.values():
            for index in range(1, self._settings.workers_per_queue + 1):
                worker_id = f"{self._prefix}-{queue_name}-{index}"
                channel = await connection.channel()
                channel.close_callbacks.add(lambda *_, event=lost: event.set())
                await channel.set_qos(prefetch_count=1)
                queue = await channel.declare_queue(queue_name, durable=True, passive=True)
                tag = await queue.consume(self._dispatcher(worker_id), no_ack=False)
                self._consumers.append((queue, tag))

    def _dispatcher(self, worker_id: str) -> Any:
        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(self._handle(worker_id, message), name=f"ticket@{worker_id}")
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

        return on_message

    async def _handle(self, worker_id: str, message: AbstractIncomingMessage) -> None:
        try:
            ticket_id = int(json.loads(message.body)["ticketId"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("%s: dropping unreadable message %r (%s)", worker_id, message.body[:200], exc)
            await _settle(message, "reject")
            return
        assignment: Assignment | None = None
        try:
            claim = await self._claim(worker_id, ticket_id)
            if claim is NOT_WAITING:
                if self._settings.faults.duplicate_processing:
                    async with self._pool.connection() as conn:
                        await conn.execute(SERVE_AGAIN, (ticket_id,))
                    log.warning("duplicate-processing fault: %s served ticket %s again", worker_id, ticket_id)
                log.debug("%s: ticket %s is not WAITING; acking a redelivery", worker_id, ticket_id)
                await _settle(message, "ack")
                return
            if claim is NO_ADVISOR:
                await asyncio.sleep(self._settings.advisor_retry_delay)
                await _settle(message, "requeue")
                return
            assert isinstance(claim, Assignment)
            assignment = claim
            await self._serve(worker_id, assignment)
            await _settle(message, "ack")
        except asyncio.CancelledError:
            # Shutdown grace is over (or the process is stopping): give the ticket back, then let go.
            if assignment is not None:
                await asyncio.shield(self._hand_back(worker_id, assignment))
                await _settle(message, "ack")
            else:
                await _settle(message, "requeue")
            raise
        except Exception as exc:
            if isinstance(exc, psycopg.Error):  # database away: expected, one line is enough
                log.warning("%s: ticket %s: database error (%s)", worker_id, ticket_id, str(exc).strip())
            else:
                log.exception("%s: ticket %s failed", worker_id, ticket_id)
            if assignment is not None:
                with contextlib.suppress(Exception):
                    await self._hand_back(worker_id, assignment)
                await _settle(message, "ack")
            else:
                await asyncio.sleep(self._settings.advisor_retry_delay)
                await _settle(message, "requeue")

    async def _claim(self, worker_id: str, ticket_id: int) -> Assignment | _NoAdvisor | _NotWaiting:
        faults = self._settings.faults
        async with self._pool.connection() as conn:
            peeked = None
            if faults.unlocked_claim:
                peeked = await (await conn.execute(PEEK_ADVISOR)).fetchone()
                if peeked is None:
                    return NO_ADVISOR
                await asyncio.sleep(UNLOCKED_CLAIM_WINDOW_SECONDS)
            async with conn.transaction():
                row = await (await conn.execute(LOCK_TICKET, (ticket_id,))).fetchone()
                if row is None or row[0] != "WAITING":
                    return NOT_WAITING
                advisor = (
                    peeked if faults.unlocked_claim else await (await conn.execute(CLAIM_ADVISOR)).fetchone()
                )
                if advisor is None:
                    return NO_ADVISOR
                advisor_id, module_number = advisor
                await conn.execute(MARK_ADVISOR_BUSY, (worker_id, advisor_id))
                called = await (
                    await conn.execute(MARK_CALLED, (advisor_id, module_number, ticket_id))
                ).fetchone()
                assert called is not None
                await conn.execute(INSERT_EVENT, (ticket_id, "CALLED", "WAITING", "CALLED", advisor_id))
        log.debug("%s: ticket %s called to advisor %s", worker_id, called[0], advisor_id)
        return Assignment(ticket_id=ticket_id, advisor_id=advisor_id, numero=called[0])

    async def _serve(self, worker_id: str, assignment: Assignment) -> None:
        keys = {"ticket": assignment.ticket_id, "advisor": assignment.advisor_id, "worker": worker_id}
        async with self._pool.connection() as conn, conn.transaction():
            started = await conn.execute(MARK_IN_PROGRESS, keys)
            if started.rowcount == 0:
                log.warning("%s: ticket %s was taken back before it started", worker_id, assignment.numero)
                return
            await conn.execute(
                INSERT_EVENT,
                (assignment.ticket_id, "STARTED", "CALLED", "IN_PROGRESS", assignment.advisor_id),
            )

        if self._settings.faults.stalled_worker and not self._stall_taken:
            self._stall_taken = True
            log.warning(
                "stalled-worker fault: %s stops heart-beating on ticket %s", worker_id, assignment.numero
            )
            await self._shutdown.wait()  # hangs until shutdown hands the ticket back
            raise asyncio.CancelledError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.service_time
        while (remaining := deadline - loop.time()) > 0:
            await asyncio.sleep(min(remaining, self._settings.heartbeat_interval))
            if loop.time() < deadline and not await self._heartbeat(worker_id, assignment):
                log.warning(
                    "%s: lost advisor %s (recovered as dead); dropping ticket %s",
                    worker_id,
                    assignment.advisor_id,
                    assignment.numero,
                )
                return

        async with self._pool.connection() as conn, conn.transaction():
            # Advisor first, then ticket: the order recovery and hand-back lock them in, so a completion
            # racing a recovery of the same advisor waits (or is skipped) instead of deadlocking.
            owned = await (
                await conn.execute(LOCK_OWN_ADVISOR, (assignment.advisor_id, worker_id))
            ).fetchone()
            completed = await conn.execute(MARK_COMPLETED, keys) if owned else None
            if completed is None or completed.rowcount == 0:
                log.warning("%s: ticket %s was taken back before it completed", worker_id, assignment.numero)
                return
            await conn.execute(
                INSERT_EVENT,
                (assignment.ticket_id, "COMPLETED", "IN_PROGRESS", "COMPLETED", assignment.advisor_id),
            )
            await conn.execute(RELEASE_ADVISOR_SERVED, (assignment.advisor_id, worker_id))

    async def _heartbeat(self, worker_id: str, assignment: Assignment) -> bool:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(HEARTBEAT, (assignment.advisor_id, worker_id))
            return cursor.rowcount == 1

    async def _hand_back(self, worker_id: str, assignment: Assignment) -> None:
        """Ticket back to WAITING and re-queued, advisor AVAILABLE, if this worker still holds them."""
        async with self._pool.connection() as conn, conn.transaction():
            owned = await (
                await conn.execute(LOCK_OWN_ADVISOR, (assignment.advisor_id, worker_id))
            ).fetchone()
            if owned is None:
                return
            requeued = await requeue_held_tickets(
                conn, assignment.advisor_id, "HANDED_BACK", count_recovery=False
            )
        log.info("%s: handed back ticket %s (%d requeued)", worker_id, assignment.numero, len(requeued))


async def _settle(message: AbstractIncomingMessage, how: str) -> None:
    """Ack / requeue / reject, ignoring a channel that is already gone (the broker redelivers then)."""
    try:
        if how == "ack":
            await message.ack()
        elif how == "requeue":
            await message.nack(requeue=True)
        else:
            await message.reject(requeue=False)
    except Exception as exc:  # noqa: BLE001 - a closed channel raises several types; redelivery covers it
        log.debug("could not %s message: %s", how, exc)
