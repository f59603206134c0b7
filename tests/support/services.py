"""Per-test-run PostgreSQL databases and RabbitMQ vhosts on the real local services.

Every test run gets names of its own (``tnfr_<random>``), so concurrent runs never collide and the
machine's services are left as they were: databases and vhosts are dropped when the fixture ends.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_ADMIN_DSN = os.environ.get("TICKETERO_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_HOST = os.environ.get("TICKETERO_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("TICKETERO_TEST_AMQP_PORT", "5672"))
AMQP_USER = os.environ.get("TICKETERO_TEST_AMQP_USER", "guest")
AMQP_PASSWORD = os.environ.get("TICKETERO_TEST_AMQP_PASSWORD", "guest")
RABBIT_API = os.environ.get("TICKETERO_TEST_RABBIT_API", "http://127.0.0.1:15672")


def unique_name(prefix: str = "tnfr") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def dsn_for(database: str) -> str:
    parts = urllib.parse.urlsplit(PG_ADMIN_DSN)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


@contextmanager
def temporary_database(migrate: bool = True) -> Iterator[str]:
    """A fresh database (with Ticketero's schema unless migrate=False); yields its DSN, drops it after."""
    name = unique_name()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = dsn_for(name)
    try:
        if migrate:
            from ticketero.migrate import migrate as apply_migrations

            apply_migrations(dsn)
        yield dsn
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rabbit_api(method: str, path: str, body: dict | None = None) -> None:
    token = base64.b64encode(f"{AMQP_USER}:{AMQP_PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        RABBIT_API + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _create_vhost(vhost: str) -> None:
    quoted = urllib.parse.quote(vhost, safe="")
    try:
        _rabbit_api("PUT", f"/api/vhosts/{quoted}", {})
        _rabbit_api(
            "PUT", f"/api/permissions/{quoted}/{AMQP_USER}", {"configure": ".*", "write": ".*", "read": ".*"}
        )
    except (urllib.error.URLError, OSError):
        # Management plugin not enabled: fall back to rabbitmqctl on the same machine.
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )


def _delete_vhost(vhost: str) -> None:
    quoted = urllib.parse.quote(vhost, safe="")
    try:
        _rabbit_api("DELETE", f"/api/vhosts/{quoted}")
    except (urllib.error.URLError, OSError):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


def amqp_url(vhost: str, host: str = AMQP_HOST, port: int = AMQP_PORT) -> str:
    return f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@{host}:{port}/{urllib.parse.quote(vhost, safe='')}"


@contextmanager
def temporary_vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost; yields its AMQP URL, deletes the vhost (and its queues) after."""
    vhost = unique_name()
    _create_vhost(vhost)
    try:
        yield amqp_url(vhost)
    finally:
        _delete_vhost(vhost)
