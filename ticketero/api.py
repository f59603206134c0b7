"""HTTP API: create and read tickets, health and metrics under Spring Boot's actuator paths.

Creating a ticket is one transaction: the advisory lock on (nationalId, queue) serialises concurrent
requests of the same person for the same queue (the schema deliberately has no unique index there), then
the ticket row, its first ticket_event and the outbox row commit together, so a ticket can never exist
without the message that will bring it to a worker (RNF-04).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from datetime import datetime
from typing import Any

import psycopg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ticketero import outbox
from ticketero.config import Settings
from ticketero.domain import EVENT_TICKET_CREATED, QUEUE_TYPES, QUEUES, ROUTING_KEYS
from ticketero.metrics import ServiceMetrics

log = logging.getLogger("ticketero.api")

NATIONAL_ID = re.compile(r"^[0-9]{1,12}(-[0-9Kk])?$")
TELEFONO = re.compile(r"^\+?[0-9]{8,15}$")
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
# Namespace of the advisory lock taken per (nationalId, queue): the first key of pg_advisory_xact_lock(int, int).
CREATE_LOCK_NAMESPACE = 0x54494B54

TICKET_COLUMNS = (
    "id, numero, codigo_referencia, national_id, telefono, branch_office, queue_type, status, "
    "position_in_queue, estimated_wait_minutes, assigned_module_number, created_at"
)

LOCK_PERSON_QUEUE = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
FIND_ACTIVE = """
SELECT numero FROM ticket
WHERE national_id = %s AND queue_type = %s AND status IN ('WAITING', 'CALLED', 'IN_PROGRESS')
LIMIT 1
"""
COUNT_WAITING = "SELECT count(*) FROM ticket WHERE queue_type = %s AND status = 'WAITING'"
INSERT_TICKET = f"""
INSERT INTO ticket (numero, national_id, telefono, branch_office, queue_type, position_in_queue, estimated_wait_minutes)
VALUES (%(letter)s || lpad(nextval('ticket_numero_seq')::text, 6, '0'),
        %(national_id)s, %(telefono)s, %(branch_office)s, %(queue_type)s, %(position)s, %(wait)s)
RETURNING {TICKET_COLUMNS}
"""
INSERT_CREATED_EVENT = """
INSERT INTO ticket_event (ticket_id, event_type, from_status, to_status) VALUES (%s, 'CREATED', NULL, 'WAITING')
"""
SELECT_BY_NUMERO = f"SELECT {TICKET_COLUMNS} FROM ticket WHERE numero = %s"
SELECT_BY_REFERENCE = f"SELECT {TICKET_COLUMNS} FROM ticket WHERE codigo_referencia = %s"
# Where a WAITING ticket stands now: 1 + WAITING tickets of its queue created before it.
LIVE_POSITION = """
SELECT count(*) + 1 FROM ticket
WHERE queue_type = %s AND status = 'WAITING' AND (created_at, id) < (%s, %s)
"""

POOL = web.AppKey("pool", AsyncConnectionPool)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", ServiceMetrics)
BROKER_STATUS = web.AppKey("broker_status", object)  # () -> bool: is the service connected to RabbitMQ
RELAY_WAKE = web.AppKey("relay_wake", object)  # () -> None: publish new outbox rows now
LEAKED = web.AppKey("leaked", list)  # memory-leak fault: buffers kept forever
DRAINING = web.AppKey("draining", object)  # () -> bool: SIGTERM received, readiness reported DOWN


def error(status: int, message: str, fields: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if fields is not None:
        body["fields"] = fields
    return web.json_response(body, status=status)


def validate(body: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(clean values, {field: reason}); the request is valid when the second is empty."""
    if not isinstance(body, dict):
        return {}, {"body": "must be a JSON object"}
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}

    national_id = body.get("nationalId")
    if not isinstance(national_id, str) or not national_id.strip():
        problems["nationalId"] = "is required"
    elif not NATIONAL_ID.match(national_id.strip()):
        problems["nationalId"] = "must be 1-12 digits, optionally followed by -<check digit>"
    else:
        clean["national_id"] = national_id.strip()

    telefono = body.get("telefono")
    if telefono is None or telefono == "":
        clean["telefono"] = None
    elif not isinstance(telefono, str) or not TELEFONO.match(telefono.strip()):
        problems["telefono"] = "must be 8-15 digits with an optional leading +"
    else:
        clean["telefono"] = telefono.strip()

    branch = body.get("branchOffice")
    if not isinstance(branch, str) or not branch.strip():
        problems["branchOffice"] = "is required"
    elif len(branch.strip()) > 100:
        problems["branchOffice"] = "must be at most 100 characters"
    else:
        clean["branch_office"] = branch.strip()

    queue_type = body.get("queueType")
    if queue_type not in QUEUE_TYPES:
        problems["queueType"] = f"must be one of {', '.join(QUEUE_TYPES)}"
    else:
        clean["queue_type"] = queue_type
    return clean, problems


def ticket_json(row: dict[str, Any]) -> dict[str, Any]:
    created: datetime = row["created_at"]
    return {
        "numero": row["numero"],
        "codigoReferencia": str(row["codigo_referencia"]),
        "nationalId": row["national_id"],
        "telefono": row["telefono"],
        "queueType": row["queue_type"],
        "status": row["status"],
        "positionInQueue": row["position_in_queue"],
        "estimatedWaitMinutes": row["estimated_wait_minutes"],
        "assignedModuleNumber": row["assigned_module_number"],
        "branchOffice": row["branch_office"],
        "createdAt": created.isoformat(),
    }


# The whole creation in one statement, run right after the per-person lock. In READ COMMITTED a statement
# takes its snapshot when it starts, so it sees every ticket committed by whoever held the lock before: the
# active check stays race-free. A data-modifying CTE inserts the ticket, its CREATED event and its outbox row
# (the same message ``outbox.ticket_message`` builds) only when no active ticket exists, and the one row it
# returns says which happened: ``active_numero`` set (409, or this very creation committed by an earlier try
# when ``active_reference`` is its own reference) or the new ticket's columns.
CREATE_TICKET = f"""
WITH active AS (
    SELECT numero, codigo_referencia FROM ticket
    WHERE national_id = %(national_id)s AND queue_type = %(queue_type)s
      AND status IN ('WAITING', 'CALLED', 'IN_PROGRESS')
    LIMIT 1
), waiting AS (
    SELECT count(*) + 1 AS position FROM ticket WHERE queue_type = %(queue_type)s AND status = 'WAITING'
), new_ticket AS (
    INSERT INTO ticket (codigo_referencia, numero, national_id, telefono, branch_office, queue_type,
                        position_in_queue, estimated_wait_minutes)
    SELECT %(reference)s, %(letter)s || lpad(nextval('ticket_numero_seq')::text, 6, '0'), %(national_id)s,
           %(telefono)s,
           %(branch_office)s, %(queue_type)s, waiting.position, waiting.position * %(minutes_per_ticket)s
    FROM waiting
    WHERE NOT EXISTS (SELECT 1 FROM active)
    RETURNING {TICKET_COLUMNS}
), new_event AS (
    INSERT INTO ticket_event (ticket_id, event_type, from_status, to_status)
    SELECT id, 'CREATED', NULL, 'WAITING' FROM new_ticket
), new_outbox AS (
    INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload)
    SELECT id, %(event_type)s, %(routing_key)s,
           jsonb_build_object('ticketId', id, 'numero', numero, 'queueType', queue_type, 'telefono', telefono)
    FROM new_ticket
)
SELECT (SELECT numero FROM active) AS active_numero, (SELECT codigo_referencia FROM active) AS active_reference,
       new_ticket.*
FROM (SELECT 1) AS one LEFT JOIN new_ticket ON true
"""


def _already_active(numero: str, queue_type: str) -> web.Response:
    return error(
        409,
        f"an active ticket {numero} already exists for this nationalId in queue {queue_type}",
        {"nationalId": "already has an active ticket in this queue"},
    )


async def _insert_ticket(
    app: web.Application, values: dict[str, Any], reference: uuid.UUID
) -> dict[str, Any] | web.Response:
    """One transaction: the ticket (its ``codigo_referencia`` = ``reference``), its CREATED event and its
    outbox row; a 409 when another ticket is active.

    BEGIN, the lock, the creation statement and COMMIT go out together in pipeline mode: one round trip to
    the database instead of one per statement (eight before), which is what a create costs when the database
    is far away. An error anywhere rolls the whole transaction back, as before. Called again with the same
    ``reference`` after a try whose COMMIT went through but whose answer was lost, it returns that ticket.
    """
    faults = app[SETTINGS].faults
    if faults.non_atomic_create_seconds or faults.chatty_create:
        return await _insert_ticket_stepwise(app, values, faults.non_atomic_create_seconds)
    letter, _, minutes_per_ticket = QUEUES[values["queue_type"]]
    params = {
        **values,
        "reference": reference,
        "letter": letter,
        "minutes_per_ticket": minutes_per_ticket,
        "event_type": EVENT_TICKET_CREATED,
        "routing_key": ROUTING_KEYS[values["queue_type"]],
    }
    lock_key = (CREATE_LOCK_NAMESPACE, f"{values['national_id']}:{values['queue_type']}")
    async with app[POOL].connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        try:
            # Plain BEGIN/COMMIT, not conn.transaction(): that one waits for the server at BEGIN and COMMIT.
            async with conn.pipeline():
                await conn.execute("BEGIN")
                await conn.execute(LOCK_PERSON_QUEUE, lock_key)
                await cursor.execute(CREATE_TICKET, params)
                await conn.execute("COMMIT")
        except BaseException:
            if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
            raise
        row = await cursor.fetchone()
        assert row is not None
        if row["active_reference"] == reference:  # created by an earlier try of this very request
            mine = await (
                await conn.cursor(row_factory=dict_row).execute(SELECT_BY_REFERENCE, (reference,))
            ).fetchone()
            assert mine is not None
            log.warning(
                "ticket %s: an earlier try of this creation had committed; answering it", mine["numero"]
            )
            return mine
    if row["active_numero"] is not None:
        return _already_active(row["active_numero"], values["queue_type"])
    del row["active_numero"], row["active_reference"]
    return row


async def _insert_ticket_stepwise(
    app: web.Application, values: dict[str, Any], pause: float
) -> dict[str, Any] | web.Response:
    """The creation one statement (one round trip) at a time: what the chatty-create fault restores, and what
    the non-atomic-create fault needs (``pause`` > 0: the outbox row in a second transaction)."""
    letter, _, minutes_per_ticket = QUEUES[values["queue_type"]]
    async with app[POOL].connection() as conn:
        async with conn.transaction():
            await conn.execute(
                LOCK_PERSON_QUEUE, (CREATE_LOCK_NAMESPACE, f"{values['national_id']}:{values['queue_type']}")
            )
            existing = await (
                await conn.execute(FIND_ACTIVE, (values["national_id"], values["queue_type"]))
            ).fetchone()
            if existing is not None:
                return _already_active(existing[0], values["queue_type"])
            waiting = (await (await conn.execute(COUNT_WAITING, (values["queue_type"],))).fetchone() or (0,))[
                0
            ]
            position = waiting + 1
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                INSERT_TICKET,
                {**values, "letter": letter, "position": position, "wait": position * minutes_per_ticket},
            )
            row = await cursor.fetchone()
            assert row is not None
            await conn.execute(INSERT_CREATED_EVENT, (row["id"],))
            if not pause:
                await outbox.enqueue(
                    conn, EVENT_TICKET_CREATED, row["id"], row["numero"], row["queue_type"], row["telefono"]
                )
        if pause:
            # non-atomic-create fault: the ticket is committed alone; its outbox row follows in a second
            # transaction on the same connection, so a database cut in between leaves the ticket without it.
            await asyncio.sleep(pause)
            async with conn.transaction():
                await outbox.enqueue(
                    conn, EVENT_TICKET_CREATED, row["id"], row["numero"], row["queue_type"], row["telefono"]
                )
    return row


async def create_ticket(request: web.Request) -> web.Response:
    app = request.app
    faults = app[SETTINGS].faults
    if faults.slow_api_seconds:
        await asyncio.sleep(faults.slow_api_seconds)
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "malformed JSON body", {"body": "is not valid JSON"})
    values, problems = validate(body)
    if problems:
        return error(400, "invalid ticket request", problems)

    # A connection lost in the middle of the transaction (a database restart, a cut link) committed
    # nothing: the creation is tried once more on a fresh connection. Lost during COMMIT, the first try may
    # have committed; the second then finds that ticket by the reference both tries carry and answers it
    # (201, the same ticket), never a second ticket and never a 409 for the client's own creation.
    reference = uuid.uuid4()
    for attempt in (1, 2):
        try:
            created = await _insert_ticket(app, values, reference)
            break
        except psycopg.OperationalError as err:
            if attempt == 2 or isinstance(err, PoolTimeout):  # no connection came: no second wait
                raise
            log.warning("ticket creation lost its database connection; trying once more")
    if isinstance(created, web.Response):
        return created
    row = created
    app[RELAY_WAKE]()  # type: ignore[operator]
    return web.json_response(ticket_json(row), status=201)


async def get_ticket(request: web.Request) -> web.Response:
    numero = request.match_info["numero"]
    async with request.app[POOL].connection() as conn:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(SELECT_BY_NUMERO, (numero,))
        row = await cursor.fetchone()
        if row is not None and row["status"] == "WAITING":
            position = await (
                await conn.execute(LIVE_POSITION, (row["queue_type"], row["created_at"], row["id"]))
            ).fetchone()
            assert position is not None
            row["position_in_queue"] = position[0]
            row["estimated_wait_minutes"] = position[0] * QUEUES[row["queue_type"]][2]
    if row is None:
        return error(404, f"ticket {numero} not found")
    return web.json_response(ticket_json(row))


class DatabasePing:
    """The health check's own connection to PostgreSQL: ``SELECT 1`` on it is one round trip, where a pooled
    connection costs two (the pool checks a connection before handing it out). With the database far away
    that is what keeps the health answer within a prober's timeout. A failed ping drops the connection; the
    next one connects afresh."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def up(self) -> bool:
        try:
            return await asyncio.wait_for(self._ping(), HEALTH_CHECK_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - any failure (the timeout too) means DOWN
            await self.close()
            return False

    async def _ping(self) -> bool:
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=int(HEALTH_CHECK_TIMEOUT_SECONDS)
                )
            await self._conn.execute("SELECT 1")
            return True

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


DATABASE_PING = web.AppKey("database_ping", DatabasePing)


async def health(request: web.Request) -> web.Response:
    db_up = await request.app[DATABASE_PING].up()
    rabbit_up = bool(request.app[BROKER_STATUS]())  # type: ignore[operator]
    draining = bool(request.app[DRAINING]())  # type: ignore[operator]
    up = db_up and rabbit_up and not draining
    body: dict[str, Any] = {
        "status": "UP" if up else "DOWN",
        "components": {
            "db": {"status": "UP" if db_up else "DOWN"},
            "rabbit": {"status": "UP" if rabbit_up else "DOWN"},
        },
    }
    if draining:  # still serving, but a load balancer must stop sending new requests here
        body["components"]["readiness"] = {"status": "DOWN", "details": {"reason": "shutting down"}}
    return web.json_response(body, status=200 if up else 503)


async def prometheus(request: web.Request) -> web.Response:
    payload = request.app[METRICS].exposition()
    return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})


def leak_middleware(size: int) -> Any:
    """memory-leak fault: every request keeps ``size`` bytes forever (pages written, so RSS really grows)."""

    @web.middleware
    async def leak(request: web.Request, handler: Any) -> web.StreamResponse:
        request.app[LEAKED].append(b"\x01" * size)
        return await handler(request)

    return leak


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/tickets", create_ticket)
    app.router.add_get("/api/tickets/{numero}", get_ticket)
    app.router.add_get("/actuator/health", health)
    app.router.add_get("/actuator/prometheus", prometheus)
