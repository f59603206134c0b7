"""Queues collector against a private vhost: ready and consumers over AMQP, unacked from the management API."""

from __future__ import annotations

import time

import pika

from exporters.rabbitmq_queues import QueuesCollector
from tests.exporters.helpers import registry_with, value
from tests.support.services import RABBIT_API

QUEUES = ("caja-queue", "personal-queue", "empresas-queue", "gerencia-queue")


def test_ready_consumers_and_unacked(amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for queue in QUEUES[:3]:  # gerencia-queue is not declared: it must be absent, not an error
        channel.queue_declare(queue, durable=True)
    for _ in range(5):
        channel.basic_publish("", "caja-queue", b"{}")
    for _ in range(2):
        channel.basic_publish("", "personal-queue", b"{}")
    # One consumer takes two messages from empresas-queue and holds them unacknowledged.
    for _ in range(2):
        channel.basic_publish("", "empresas-queue", b"{}")
    worker = connection.channel()
    worker.basic_qos(prefetch_count=10)
    worker.basic_consume("empresas-queue", lambda *args: None, auto_ack=False)
    connection.process_data_events(time_limit=0.5)

    collector = QueuesCollector(amqp_url, QUEUES, management_url=RABBIT_API, timeout=2.0)
    registry = registry_with(collector)
    try:
        assert value(registry, "ticketero_queue_messages_ready", queue="caja-queue") == 5
        assert value(registry, "ticketero_queue_messages_ready", queue="personal-queue") == 2
        assert value(registry, "ticketero_queue_messages_ready", queue="empresas-queue") == 0
        assert value(registry, "ticketero_queue_consumers", queue="empresas-queue") == 1
        assert value(registry, "ticketero_queue_consumers", queue="caja-queue") == 0
        assert value(registry, "ticketero_queue_messages_ready", queue="gerencia-queue") is None
        # The management API samples queue figures every few seconds.
        deadline = time.monotonic() + 15
        while value(registry, "ticketero_queue_messages_unacked", queue="empresas-queue") != 2:
            assert time.monotonic() < deadline, "management API never reported the 2 unacked messages"
            connection.process_data_events(time_limit=0.5)
        assert value(registry, "ticketero_queue_messages_unacked", queue="caja-queue") == 0
        # Once declared, the missing queue shows up on the next scrape (the closed channel was reopened).
        channel.queue_declare("gerencia-queue", durable=True)
        assert value(registry, "ticketero_queue_messages_ready", queue="gerencia-queue") == 0
    finally:
        collector.close()
        connection.close()


def test_without_management_url_unacked_is_not_exported(amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_declare("caja-queue")
    collector = QueuesCollector(amqp_url, QUEUES, timeout=2.0)
    registry = registry_with(collector)
    try:
        assert value(registry, "ticketero_queue_messages_ready", queue="caja-queue") == 0
        assert value(registry, "ticketero_queue_messages_unacked", queue="caja-queue") is None
    finally:
        collector.close()
        connection.close()
