"""Versioned SQL migrations: applies ticketero/migrations/V<n>__<name>.sql in order, once each."""

from __future__ import annotations

import re
from importlib import resources

import psycopg

HISTORY_TABLE = "ticketero_schema_history"
_NAME = re.compile(r"^V(\d+)__(\w+)\.sql$")
# One fixed key so that two service instances starting together never apply a migration twice.
_ADVISORY_LOCK_KEY = 0x7469636B


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped migration, lowest version first."""
    found = []
    for entry in resources.files("ticketero.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(dsn: str) -> list[int]:
    """Apply the migrations the database lacks; returns the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute(f"SELECT version FROM {HISTORY_TABLE}")}
            for version, name, sql in available_migrations():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    conn.execute(
                        f"INSERT INTO {HISTORY_TABLE} (version, name) VALUES (%s, %s)", (version, name)
                    )
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return applied_now
