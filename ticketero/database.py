"""Database start-up: check (or create) the database, apply migrations, open the pool, seed advisors."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from ticketero.domain import mask_url
from ticketero.migrate import migrate

log = logging.getLogger("ticketero.database")

START_WAIT_SECONDS = 30.0
SEED_LOCK_KEY = 0x7469636C
SEED_ADVISORS = """
INSERT INTO advisor (name, email, module_number)
SELECT 'Advisor ' || n, 'advisor' || n || '@ticketero.local', n
FROM generate_series(1, %s) AS n
WHERE NOT EXISTS (SELECT 1 FROM advisor)
"""


# A link that dies without a reset (a dropped route, a frozen peer, a full firewall table) answers nothing:
# without these a pooled connection would wait on it for ever. libpq's keepalives find an idle dead link in
# ~25 s, data sent and never acknowledged drops the connection after 30 s (tcp_user_timeout, instead of the
# kernel's ~15 min of retransmissions), and a connection attempt gives up after 10 s. A DSN that sets one of
# these keeps its own value.
LINK_OPTIONS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
# The checkout check (an empty query) is bounded too; psycopg then cancels the query and closes the
# connection, which together take at most a few more seconds.
CHECK_TIMEOUT_SECONDS = 5.0


class DatabaseUnavailable(Exception):
    """The database is missing or unreachable; the message says which and what to do."""


def _database_name(dsn: str) -> str:
    path = urllib.parse.urlsplit(dsn).path.lstrip("/")
    return urllib.parse.unquote(path) or "postgres"


def _create_database(dsn: str) -> None:
    name = _database_name(dsn)
    parts = urllib.parse.urlsplit(dsn)
    admin_dsn = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        return  # another instance created it a moment ago
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot create database {name!r} on {mask_url(admin_dsn)}: {exc}") from exc
    log.info("created database %s", name)


def prepare_schema(dsn: str, create_database: bool) -> list[int]:
    """Make sure the database exists (creating it only when asked) and apply the migrations it lacks.

    A server that does not answer yet (a stack starting up) is retried for START_WAIT_SECONDS.
    """
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        try:
            return migrate(dsn)
        except psycopg.OperationalError as exc:
            if f'database "{_database_name(dsn)}" does not exist' in str(exc):
                break
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {mask_url(dsn)}: {exc}") from exc
            log.warning("PostgreSQL at %s not answering yet (%s); retrying", mask_url(dsn), exc)
            time.sleep(2)
    if not create_database:
        raise DatabaseUnavailable(
            f"database {_database_name(dsn)!r} does not exist on {mask_url(dsn)}; create it, "
            "or start with --create-database (TICKETERO_CREATE_DATABASE=true)"
        )
    _create_database(dsn)
    return migrate(dsn)


async def open_pool(
    dsn: str, max_size: int, checkout_seconds: float, name: str = "ticketero"
) -> AsyncConnectionPool:
    """Autocommit connections: multi-statement work uses explicit ``conn.transaction()`` blocks."""
    pool = AsyncConnectionPool(
        dsn,
        min_size=min(2, max_size),
        max_size=max_size,
        timeout=checkout_seconds,
        kwargs=connection_options(dsn),
        # Checked on checkout: after a database restart the pool hands out fresh connections, not dead ones.
        check=bounded_check(min(checkout_seconds, CHECK_TIMEOUT_SECONDS)),
        open=False,
        name=name,
    )
    await pool.open(wait=True, timeout=15)
    return pool


def connection_options(dsn: str) -> dict[str, Any]:
    """Autocommit, and the link options the DSN does not set itself."""
    given = conninfo_to_dict(dsn)
    return {"autocommit": True, **{key: value for key, value in LINK_OPTIONS.items() if key not in given}}


def bounded_check(seconds: float) -> Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]:
    """The pool's checkout check, failing (the connection is discarded) when no answer comes in ``seconds``."""

    async def check(conn: psycopg.AsyncConnection[Any]) -> None:
        await asyncio.wait_for(AsyncConnectionPool.check_connection(conn), seconds)

    return check


async def seed_advisors(pool: AsyncConnectionPool, count: int) -> int:
    """Create ``count`` AVAILABLE advisors when the table is empty; returns how many were created."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))
        cursor = await conn.execute(SEED_ADVISORS, (count,))
        return cursor.rowcount
