"""Queues: ready messages, unacknowledged messages and consumers of each ticket queue.

Where each figure comes from:

* ``ticketero_queue_messages_ready`` and ``ticketero_queue_consumers``: AMQP ``queue.declare`` with
  ``passive=True`` over one long-lived connection (exact, at scrape time; it never creates a queue).
* ``ticketero_queue_messages_unacked``: the management API (``GET /api/queues/<vhost>``), only when a
  management URL is configured; AMQP has no way to ask. The management figures are sampled by the broker
  (every 5 s by default), so they may lag the AMQP ones by that much.

Broker-wide figures (memory, connections, channels, rates) come from the ``rabbitmq_prometheus`` plugin and
are not duplicated here. A queue that does not exist yet is simply absent from the metrics.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import urllib.parse
import urllib.request
from typing import Any

import pika
import pika.exceptions
from prometheus_client.core import GaugeMetricFamily, Metric

from exporters.base import ConcernCollector

log = logging.getLogger(__name__)

MANAGEMENT_QUEUES_PATH = "/api/queues/{vhost}?columns=name,messages_unacknowledged"


class QueuesCollector(ConcernCollector):
    """Per-queue depth and consumers of the ticket queues, read at scrape time."""

    name = "queues"
    backend = "rabbitmq"

    def __init__(
        self, amqp_url: str, queues: tuple[str, ...], *, management_url: str = "", timeout: float = 0.5
    ) -> None:
        self.queues = queues
        self.timeout = timeout
        self.params = pika.URLParameters(amqp_url)
        # No heartbeats: the connection sits idle between scrapes and is checked by using it.
        self.params.heartbeat = 0
        self.params.socket_timeout = timeout
        self.params.stack_timeout = timeout
        self.params.blocked_connection_timeout = timeout
        self.params.connection_attempts = 1
        self.params.retry_delay = 0
        self.management_url = management_url.rstrip("/")
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._missing: set[str] = set()

    def families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "ticketero_queue_messages_ready",
                "Messages ready in each ticket queue (AMQP).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "ticketero_queue_messages_unacked",
                "Messages delivered, not yet acknowledged (management API, sampled by the broker).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "ticketero_queue_consumers",
                "Consumers (live workers) on each ticket queue (AMQP).",
                labels=["queue"],
            ),
        ]

    def _open_channel(self):
        if self._connection is None or not self._connection.is_open:
            self._connection = pika.BlockingConnection(self.params)
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
        return self._channel

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
                connection.close()

    def _declare(self, queue: str) -> tuple[int, int] | None:
        channel = self._open_channel()
        try:
            frame = channel.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:  # queue not declared (yet): the channel is closed, reopen next time
                self._channel = None
                if queue not in self._missing:
                    log.info("queue %s does not exist (yet): its metrics are absent until it does", queue)
                    self._missing.add(queue)
                return None
            raise
        self._missing.discard(queue)
        return frame.method.message_count, frame.method.consumer_count

    def _unacked(self, deadline: float) -> dict[str, int]:
        vhost = urllib.parse.quote(self.params.virtual_host, safe="")
        parts = urllib.parse.urlsplit(self.management_url)
        user = parts.username or self.params.credentials.username
        password = parts.password or self.params.credentials.password
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        base = urllib.parse.urlunsplit(parts._replace(netloc=netloc)).rstrip("/")
        request = urllib.request.Request(base + MANAGEMENT_QUEUES_PATH.format(vhost=vhost))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        timeout = max(0.05, min(self.timeout, deadline - time.monotonic()))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            rows = json.load(response)
        return {row["name"]: int(row.get("messages_unacknowledged") or 0) for row in rows}

    def scrape(self, deadline: float) -> list[Metric]:
        if deadline - time.monotonic() <= 0.005:
            raise TimeoutError("scrape budget used up before this collector ran")
        found: dict[str, tuple[int, int]] = {}
        try:
            for queue in self.queues:
                result = self._declare(queue)
                if result is not None:
                    found[queue] = result
        except Exception:
            self._drop()  # reconnect on the next scrape
            raise
        unacked = self._unacked(deadline) if self.management_url else {}

        ready_f, unacked_f, consumers_f = self.families()
        for queue, (ready, consumers) in found.items():
            ready_f.add_metric([queue], ready)
            consumers_f.add_metric([queue], consumers)
            if self.management_url:
                unacked_f.add_metric([queue], unacked.get(queue, 0))
        return [ready_f, unacked_f, consumers_f]

    def close(self) -> None:
        self._drop()
