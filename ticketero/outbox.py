"""Transactional outbox: rows written with the ticket, published to RabbitMQ by the relay.

The relay takes due PENDING rows with ``FOR UPDATE SKIP LOCKED`` (so several instances share the work),
publishes them with publisher confirms and marks them SENT. Every failed attempt counts: ``attempts + 1``,
``last_error``, next attempt after ``min(backoff * 2^attempts, backoff_max)``.

Two kinds of failure end differently:
* the broker refused the message (nack, unroutable, no confirm in time) → FAILED after ``max_attempts``;
* the broker could not be reached → the row stays PENDING however many attempts it has, and when the
  relay reconnects those rows are due at once. A broker outage of any length loses nothing and ends
  nothing in FAILED, while the attempts and the backoff remain visible in the table during the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aio_pika
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ticketero import amqp
from ticketero.config import Settings
from ticketero.domain import ROUTING_KEYS, mask_url

log = logging.getLogger("ticketero.outbox")

INSERT_OUTBOX = """
INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload)
VALUES (%s, %s, %s, %s)
"""

SELECT_DUE = """
SELECT id, routing_key, payload, attempts
FROM outbox_message
WHERE status = 'PENDING' AND next_attempt_at <= now()
ORDER BY next_attempt_at, id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""

MARK_SENT = "UPDATE outbox_message SET status = 'SENT', sent_at = now(), last_error = NULL WHERE id = ANY(%s)"

# attempts here is the value before this failure: first retry after base, then 2*base, 4*base, ...
MARK_FAILED_ATTEMPT = """
UPDATE outbox_message
SET attempts = attempts + 1,
    last_error = %(error)s,
    status = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'FAILED' ELSE 'PENDING' END,
    next_attempt_at = now() + make_interval(secs => least(%(backoff)s * power(2, attempts), %(backoff_max)s))
WHERE id = %(id)s
"""

UNREACHABLE = "broker unreachable"

# Broker away: every due row records the attempt and backs off, but stays PENDING.
MARK_UNREACHABLE_ATTEMPT = """
UPDATE outbox_message
SET attempts = attempts + 1,
    last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => least(%(backoff)s * power(2, attempts), %(backoff_max)s))
WHERE id IN (
    SELECT id FROM outbox_message
    WHERE status = 'PENDING' AND next_attempt_at <= now()
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
"""

# Broker back: rows that were only waiting for it are due now, not after their backoff.
BRING_FORWARD = """
UPDATE outbox_message SET next_attempt_at = now()
WHERE status = 'PENDING' AND next_attempt_at > now() AND starts_with(last_error, %s)
"""

# The failing-relay fault: the relay gives up on the rows it picks (Faults.relay_fails) without trying.
MARK_FAULT_FAILED = """
UPDATE outbox_message
SET status = 'FAILED', attempts = attempts + 1, last_error = 'failing-relay fault: publishing disabled'
WHERE id = ANY(%s)
"""

# The outage-drops fault: the broker is away and every due row is given up instead of held.
MARK_OUTAGE_DROPPED = """
UPDATE outbox_message
SET status = 'FAILED', attempts = attempts + 1, last_error = 'outage-drops fault: broker unreachable, given up'
WHERE status = 'PENDING' AND next_attempt_at <= now()
"""


def ticket_message(ticket_id: int, numero: str, queue_type: str, telefono: str | None) -> dict[str, Any]:
    """The message body the workers read; the same shape the original service publishes."""
    return {"ticketId": ticket_id, "numero": numero, "queueType": queue_type, "telefono": telefono}


async def enqueue(
    conn: AsyncConnection[Any],
    event_type: str,
    ticket_id: int,
    numero: str,
    queue_type: str,
    telefono: str | None,
) -> None:
    """Add an outbox row inside the caller's transaction (so it commits or rolls back with the ticket)."""
    payload = ticket_message(ticket_id, numero, queue_type, telefono)
    await conn.execute(INSERT_OUTBOX, (ticket_id, event_type, ROUTING_KEYS[queue_type], Jsonb(payload)))


class BrokerLost(Exception):
    """The connection to the broker closed under a batch: retry after reconnecting, count no attempt."""


class OutboxRelay:
    """Publishes the outbox; one long-running task, ``start`` / ``stop``."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._link_open()

    def _link_open(self) -> bool:
        # A dropped TCP link shows on the channel at once; the connection object may lag behind.
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    def wake(self) -> None:
        """Called after a ticket commits, so it is published now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Publish what is due (if the broker is there), then stop."""
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_seconds)
        except TimeoutError:
            log.warning("outbox relay did not finish within %.0f s; stopping it", drain_seconds)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        """Sleep between connection attempts; only stopping cuts it short (new tickets do not)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _record_unreachable(self, exc: BaseException) -> None:
        if self._settings.faults.failing_relay:
            return
        settings = self._settings
        try:
            async with self._pool.connection() as conn:
                if settings.faults.outage_drops:
                    cursor = await conn.execute(MARK_OUTAGE_DROPPED)
                    if cursor.rowcount:
                        log.warning("outage-drops fault: gave up on %d outbox rows", cursor.rowcount)
                    return
                cursor = await conn.execute(
                    MARK_UNREACHABLE_ATTEMPT,
                    {
                        "error": f"{UNREACHABLE}: {type(exc).__name__}: {exc}"[:500],
                        "backoff": settings.relay_backoff,
                        # no-backoff fault: every retry after the base delay, never longer
                        "backoff_max": settings.relay_backoff
                        if settings.faults.no_backoff
                        else settings.relay_backoff_max,
                        "limit": 10 * settings.relay_batch_size,
                    },
                )
                if cursor.rowcount:
                    log.debug("broker unreachable: %d outbox rows retry later", cursor.rowcount)
        except psycopg.Error as db_exc:
            log.debug("could not record the failed attempts: %s", db_exc)

    async def _bring_forward(self) -> None:
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(BRING_FORWARD, (UNREACHABLE,))
                if cursor.rowcount:
                    log.info("broker reachable again: %d waiting outbox rows due now", cursor.rowcount)
        except psycopg.Error as exc:
            log.debug("could not bring waiting rows forward: %s", exc)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _run(self) -> None:
        url = self._settings.amqp_url
        backoff = amqp.BACKOFF_FIRST_SECONDS
        outage_logged = False
        while not self._stopping.is_set():
            try:
                self._connection = await amqp.connect(url)
            except amqp.BROKER_ERRORS as exc:
                if not outage_logged:
                    log.warning("outbox relay cannot reach broker %s (%s); retrying", mask_url(url), exc)
                    outage_logged = True
                await self._record_unreachable(exc)
                if self._settings.faults.no_backoff:  # a fixed retry every relay_backoff seconds
                    await self._pause(self._settings.relay_backoff)
                    continue
                await self._pause(backoff)
                backoff = amqp.next_backoff(backoff)
                continue
            backoff = amqp.BACKOFF_FIRST_SECONDS
            outage_logged = False
            log.info("outbox relay connected to %s", mask_url(url))
            try:
                await self._bring_forward()
                # on_return_raises: an unroutable message (queue deleted, wrong key) is a failed attempt,
                # not a silent loss.
                self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
                exchange = await amqp.declare_topology(self._channel)
                await self._publish_loop(exchange)
            except (BrokerLost, *amqp.BROKER_ERRORS) as exc:  # type: ignore[misc]
                log.warning("outbox relay lost the broker (%s); rows stay PENDING, reconnecting", exc)
            finally:
                connection, self._connection, self._channel = self._connection, None, None
                await _close_quietly(connection)
        log.info("outbox relay stopped")

    async def _publish_loop(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        batch_size = self._settings.relay_batch_size
        database_down = False
        while True:
            if not self._link_open():
                raise BrokerLost("channel closed")
            try:
                handled = await self.relay_batch(exchange)
            except psycopg.Error as exc:
                # The rows are safe in the database; try again once it answers.
                if not database_down:
                    log.warning("outbox relay cannot use the database (%s); retrying", exc)
                    database_down = True
                if self._stopping.is_set():
                    return
                await self._idle(amqp.BACKOFF_MAX_SECONDS / 5)
                continue
            if database_down:
                log.info("outbox relay: database back")
                database_down = False
            if self._stopping.is_set() and handled == 0:
                return
            if handled < batch_size and not self._stopping.is_set():
                await self._idle(self._settings.relay_interval)

    async def relay_batch(self, exchange: aio_pika.abc.AbstractExchange) -> int:
        """Publish one batch of due rows; returns how many rows were handled."""
        settings = self._settings
        async with self._pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(SELECT_DUE, (settings.relay_batch_size,))).fetchall()
            handled = len(rows)
            if settings.faults.failing_relay:
                doomed = [row[0] for row in rows if settings.faults.relay_fails(row[0])]
                if doomed:
                    await conn.execute(MARK_FAULT_FAILED, (doomed,))
                    log.warning("failing-relay fault: marked %d outbox rows FAILED", len(doomed))
                rows = [row for row in rows if row[0] not in doomed]
            if not rows:
                return handled
            results = await asyncio.gather(
                *(self._publish(exchange, row[0], row[1], row[2]) for row in rows), return_exceptions=True
            )
            if not self._link_open():
                # Rolling back leaves every row PENDING with its attempts untouched.
                raise BrokerLost("connection closed during publish")
            sent = [row[0] for row, result in zip(rows, results, strict=True) if result is None]
            if sent:
                await conn.execute(MARK_SENT, (sent,))
            for row, result in zip(rows, results, strict=True):
                if result is None:
                    continue
                if not isinstance(result, Exception):
                    raise result
                log.warning("outbox row %s: publish failed (%s)", row[0], result)
                await conn.execute(
                    MARK_FAILED_ATTEMPT,
                    {
                        "id": row[0],
                        "error": f"{type(result).__name__}: {result}"[:500],
                        "max_attempts": settings.relay_max_attempts,
                        "backoff": settings.relay_backoff,
                        "backoff_max": settings.relay_backoff_max,
                    },
                )
        return handled

    @staticmethod
    async def _publish(
        exchange: aio_pika.abc.AbstractExchange, row_id: int, routing_key: str, payload: Any
    ) -> None:
        body = json.dumps(payload).encode()
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(row_id),
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=10)


async def _close_quietly(connection: aio_pika.abc.AbstractConnection | None) -> None:
    if connection is None or connection.is_closed:
        return
    # Closing a dead link may fail in many ways; there is nothing to do about any of them.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), 5)
