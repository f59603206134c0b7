"""Names shared by the API, the relay and the workers: queues, statuses, routing, and the log-safe URL."""

from __future__ import annotations

import urllib.parse

EXCHANGE = "ticketero-exchange"

# queueType → (numero letter, routing key = queue name, average minutes per ticket for the wait estimate)
QUEUES: dict[str, tuple[str, str, int]] = {
    "CAJA": ("C", "caja-queue", 5),
    "PERSONAL": ("P", "personal-queue", 15),
    "EMPRESAS": ("E", "empresas-queue", 20),
    "GERENCIA": ("G", "gerencia-queue", 30),
}
QUEUE_TYPES = tuple(QUEUES)
ROUTING_KEYS = {queue_type: routing for queue_type, (_, routing, _) in QUEUES.items()}

ACTIVE_STATUSES = ("WAITING", "CALLED", "IN_PROGRESS")

EVENT_TICKET_CREATED = "TICKET_CREATED"
EVENT_TICKET_REQUEUED = "TICKET_REQUEUED"


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and error messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
