"""The run's own database and RabbitMQ vhost on the machine's PostgreSQL and RabbitMQ.

Every run gets names of its own (``nfr_<run id>``) so runs never share state and the shared services are
left as they were: both are removed when the run stops. Where the services are comes from the
environment, which the Makefile fills in when it had to start private ones:

* ``TICKETERO_NFR_DATABASE_DSN`` admin DSN (default ``postgresql://postgres@127.0.0.1:5432/postgres``;
  ``TICKETERO_NFR_PG_DSN``, its old name, still works)
* ``TICKETERO_NFR_AMQP_URL``   AMQP URL of the broker (default ``amqp://guest:guest@127.0.0.1:5672/``)
* ``TICKETERO_NFR_RABBIT_API`` management API (default ``http://127.0.0.1:15672``)
* ``TICKETERO_NFR_RABBIT_PROMETHEUS`` the broker's ``rabbitmq_prometheus`` host:port (default: AMQP host:15692)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import psycopg

from ticketero_settings import environment_value


@dataclass(frozen=True)
class Backends:
    """Where PostgreSQL and RabbitMQ are, and credentials to create a database and a vhost there."""

    pg_admin_dsn: str
    amqp_url: str
    rabbit_api: str
    rabbit_prometheus: str = ""

    @classmethod
    def from_env(cls) -> Backends:
        return cls(
            pg_admin_dsn=environment_value(
                os.environ,
                "TICKETERO_NFR_DATABASE_DSN",
                "postgresql://postgres@127.0.0.1:5432/postgres",
                aliases=("TICKETERO_NFR_PG_DSN",),
            ),
            amqp_url=os.environ.get("TICKETERO_NFR_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
            rabbit_api=os.environ.get("TICKETERO_NFR_RABBIT_API", "http://127.0.0.1:15672"),
            rabbit_prometheus=os.environ.get("TICKETERO_NFR_RABBIT_PROMETHEUS", ""),
        )

    # -- PostgreSQL ------------------------------------------------------------------------------------

    def database_dsn(self, name: str) -> str:
        parts = urllib.parse.urlsplit(self.pg_admin_dsn)
        return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN (the service applies the schema at start)."""
        with psycopg.connect(self.pg_admin_dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.database_dsn(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.pg_admin_dsn, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- RabbitMQ --------------------------------------------------------------------------------------

    @property
    def _amqp_parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.amqp_url)

    def vhost_url(self, vhost: str) -> str:
        parts = self._amqp_parts
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(vhost, safe="")))

    @property
    def management_url(self) -> str:
        """The management API URL with the broker's credentials, as the exporter expects it."""
        parts = urllib.parse.urlsplit(self.rabbit_api)
        user = urllib.parse.quote(self._amqp_parts.username or "guest", safe="")
        password = urllib.parse.quote(self._amqp_parts.password or "guest", safe="")
        return urllib.parse.urlunsplit(
            parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}")
        )

    def _rabbit_api(self, method: str, path: str, body: dict[str, str] | None = None) -> None:
        parts = self._amqp_parts
        user, password = parts.username or "guest", parts.password or "guest"
        token = base64.b64encode(f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode())
        request = urllib.request.Request(
            self.rabbit_api.rstrip("/") + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": "Basic " + token.decode(), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def create_vhost(self, vhost: str) -> str:
        """Create a vhost the broker's user may use fully; return its AMQP URL."""
        quoted = urllib.parse.quote(vhost, safe="")
        user = urllib.parse.unquote(self._amqp_parts.username or "guest")
        try:
            self._rabbit_api("PUT", f"/api/vhosts/{quoted}", {})
            self._rabbit_api(
                "PUT", f"/api/permissions/{quoted}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}
            )
        except (urllib.error.URLError, OSError):
            if not shutil.which("rabbitmqctl"):
                raise
            subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
            subprocess.run(
                ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                check=True,
                capture_output=True,
            )
        return self.vhost_url(vhost)

    def delete_vhost(self, vhost: str) -> None:
        quoted = urllib.parse.quote(vhost, safe="")
        try:
            self._rabbit_api("DELETE", f"/api/vhosts/{quoted}")
        except (urllib.error.URLError, OSError):
            if shutil.which("rabbitmqctl"):
                subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)

    def rabbit_prometheus_address(self) -> str | None:
        """The broker's rabbitmq_prometheus address when it answers there, else None (job left out)."""
        address = self.rabbit_prometheus or f"{self._amqp_parts.hostname or '127.0.0.1'}:15692"
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=3) as response:
                response.read(1)
            return address
        except (urllib.error.URLError, OSError):
            return None
