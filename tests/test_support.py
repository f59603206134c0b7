import pika
import psycopg


def test_database_fixture_has_schema(database_dsn):
    with psycopg.connect(database_dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"ticket", "advisor", "outbox_message", "recovery_event", "ticket_event"} <= tables


def test_vhost_fixture_accepts_connections(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ok = ch.queue_declare(queue="probe", durable=False)
        assert ok.method.message_count == 0
    finally:
        conn.close()
