"""Dead-worker recovery: a BUSY advisor whose heartbeat is older than ``heartbeat_timeout`` has a dead worker.

Every ``recovery_interval`` the service looks for such advisors (``FOR UPDATE SKIP LOCKED``, so two service
instances never recover the same advisor twice), records a DEAD_WORKER recovery_event, frees the advisor
and re-queues its ticket through the outbox. Worst-case detection is timeout + interval after the last
heartbeat (60 + 10 s with the defaults, inside RNF-05's 90 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from psycopg_pool import AsyncConnectionPool

from ticketero.config import Settings
from ticketero.requeue import requeue_held_tickets

log = logging.getLogger("ticketero.recovery")

# A BUSY advisor that never beat (NULL) is judged by when it last changed.
SELECT_DEAD = """
SELECT id, worker_id, coalesce(last_heartbeat, updated_at)
FROM advisor
WHERE status = 'BUSY'
  AND coalesce(last_heartbeat, updated_at) < now() - make_interval(secs => %s)
ORDER BY id
FOR UPDATE SKIP LOCKED
"""

INSERT_RECOVERY = """
INSERT INTO recovery_event (recovery_type, advisor_id, ticket_id, worker_id, last_heartbeat_at, details)
VALUES ('DEAD_WORKER', %s, %s, %s, %s, %s)
"""


class RecoveryService:
    def __init__(
        self, pool: AsyncConnectionPool, settings: Settings, on_requeue: Callable[[], None] | None = None
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._on_requeue = on_requeue
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recovery")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        log.info(
            "recovery service running: every %.1f s, heartbeat timeout %.1f s",
            self._settings.recovery_interval,
            self._settings.heartbeat_timeout,
        )
        while not self._stopping.is_set():
            try:
                await self.recover_once()
            except Exception:
                log.exception("recovery pass failed; retrying next interval")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.recovery_interval)

    async def recover_once(self) -> int:
        """One pass; returns how many dead workers were recovered."""
        recovered = 0
        async with self._pool.connection() as conn, conn.transaction():
            dead = await (await conn.execute(SELECT_DEAD, (self._settings.heartbeat_timeout,))).fetchall()
            for advisor_id, worker_id, last_heartbeat in dead:
                tickets = await requeue_held_tickets(conn, advisor_id, "RECOVERED", count_recovery=True)
                held: list[int | None] = list(tickets) or [
                    None
                ]  # one event per ticket, or one with no ticket
                for ticket_id in held:
                    await conn.execute(
                        INSERT_RECOVERY,
                        (
                            advisor_id,
                            ticket_id,
                            worker_id,
                            last_heartbeat,
                            f"no heartbeat for more than {self._settings.heartbeat_timeout:g} s; "
                            f"{len(tickets)} ticket(s) re-queued",
                        ),
                    )
                log.warning(
                    "dead worker %s: advisor %s freed, tickets %s re-queued", worker_id, advisor_id, tickets
                )
                recovered += 1
        if recovered and self._on_requeue is not None:
            self._on_requeue()
        return recovered
