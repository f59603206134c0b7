"""RabbitMQ plumbing shared by the relay and the workers: connecting and declaring the topology.

The service starts and keeps serving while the broker is away (tickets wait in the outbox), so nothing here
blocks start-up: callers retry ``connect`` with a capped exponential backoff.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from ticketero.domain import EXCHANGE, ROUTING_KEYS

CONNECT_TIMEOUT_SECONDS = 5.0
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0

# Errors that mean "the broker or the link to it went away"; anything else is a bug and should surface.
BROKER_ERRORS: tuple[type[Exception], ...] = (
    aio_pika.exceptions.AMQPError,
    ConnectionError,
    OSError,
    TimeoutError,
)


async def connect(url: str) -> aio_pika.abc.AbstractConnection:
    """One plain (non-robust) connection: reconnection is the caller's loop, so its state stays visible."""
    return await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)


async def declare_topology(channel: AbstractChannel) -> AbstractExchange:
    """Direct durable exchange and the four durable queues bound by their own name; returns the exchange."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    for routing_key in ROUTING_KEYS.values():
        queue = await channel.declare_queue(routing_key, durable=True)
        await queue.bind(exchange, routing_key)
    return exchange


def next_backoff(current: float) -> float:
    return min(current * 2, BACKOFF_MAX_SECONDS)
