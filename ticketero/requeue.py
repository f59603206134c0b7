"""Give a held ticket back to its queue: ticket WAITING, advisor AVAILABLE, a new outbox row to republish it.

Used by the recovery service (dead worker) and by a worker at shutdown (grace period over). Both run it
inside their own transaction, so the ticket, the advisor and the re-queue commit together.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from ticketero import outbox
from ticketero.domain import EVENT_TICKET_REQUEUED

# The advisor's tickets that a worker still holds; locked so a worker finishing at this moment waits for us
# and then finds the ticket no longer IN_PROGRESS on its advisor.
SELECT_HELD_TICKETS = """
SELECT id, numero, queue_type, telefono, status
FROM ticket
WHERE assigned_advisor_id = %s AND status IN ('CALLED', 'IN_PROGRESS')
FOR UPDATE
"""

RESET_TICKET = """
UPDATE ticket
SET status = 'WAITING', assigned_advisor_id = NULL, assigned_module_number = NULL,
    called_at = NULL, started_at = NULL, updated_at = now()
WHERE id = %s
"""

INSERT_EVENT = """
INSERT INTO ticket_event (ticket_id, event_type, from_status, to_status, advisor_id)
VALUES (%s, %s, %s, 'WAITING', %s)
"""

RELEASE_ADVISOR = """
UPDATE advisor
SET status = 'AVAILABLE', worker_id = NULL, updated_at = now(),
    recovery_count = recovery_count + %s
WHERE id = %s
"""


async def requeue_held_tickets(
    conn: AsyncConnection[Any], advisor_id: int, event_type: str, count_recovery: bool
) -> list[int]:
    """Requeue the advisor's CALLED / IN_PROGRESS tickets and free the advisor; returns the ticket ids."""
    rows = await (await conn.execute(SELECT_HELD_TICKETS, (advisor_id,))).fetchall()
    for ticket_id, numero, queue_type, telefono, status in rows:
        await conn.execute(RESET_TICKET, (ticket_id,))
        await conn.execute(INSERT_EVENT, (ticket_id, event_type, status, advisor_id))
        await outbox.enqueue(conn, EVENT_TICKET_REQUEUED, ticket_id, numero, queue_type, telefono)
    await conn.execute(RELEASE_ADVISOR, (1 if count_recovery else 0, advisor_id))
    return [row[0] for row in rows]
