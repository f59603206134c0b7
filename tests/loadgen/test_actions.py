"""Fault actions and probes against the real PostgreSQL, RabbitMQ and Docker engine."""

from __future__ import annotations

import asyncio
import json
import time

import pika
import psycopg
import pytest

from loadgen.actions import ActionContext, ActionError, run_action
from loadgen.config import Action, Probe
from loadgen.probes import check_probe
from loadgen.runner import Experiment


def _context(**services: str) -> ActionContext:
    return ActionContext("http://127.0.0.1:1", services, {})


def _seed_busy_advisor(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO advisor (name, status, module_number, last_heartbeat) "
            "VALUES ('Ana', 'BUSY', 1, now()) RETURNING id"
        ).fetchone()
        assert row is not None
        return int(row[0])


async def test_sql_action_ages_a_heartbeat_and_probe_sees_it(database_dsn: str) -> None:
    advisor_id = _seed_busy_advisor(database_dsn)
    context = _context(database_dsn=database_dsn)
    stale = Probe(
        "sql",
        {
            "query": "SELECT count(*) FROM advisor WHERE last_heartbeat < now() - interval '90 seconds'",
            "equals": 1,
        },
    )
    assert not (await check_probe(stale, context)).ok
    detail = await run_action(
        Action(
            "sql",
            {
                "sql": "UPDATE advisor SET last_heartbeat = now() - interval '120 seconds' "
                "WHERE id = (SELECT id FROM advisor WHERE status = 'BUSY' LIMIT 1)"
            },
        ),
        context,
    )
    assert "1 row(s)" in detail
    result = await check_probe(stale, context)
    assert result.ok and result.value == 1
    with psycopg.connect(database_dsn) as conn:
        age = conn.execute(
            "SELECT extract(epoch FROM now() - last_heartbeat) FROM advisor WHERE id = %s", (advisor_id,)
        )
        assert 119 <= float(age.fetchone()[0]) <= 130  # type: ignore[index]


async def test_sql_reset_statement_runs_several_statements(database_dsn: str) -> None:
    _seed_busy_advisor(database_dsn)
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ticket (numero, national_id, branch_office, queue_type, position_in_queue) "
            "VALUES ('C000001', '11111111', 'Centro', 'CAJA', 1)"
        )
    reset = (
        "DELETE FROM ticket_event; DELETE FROM recovery_event; DELETE FROM outbox_message; DELETE FROM ticket; "
        "UPDATE advisor SET status = 'AVAILABLE', total_tickets_served = 0, recovery_count = 0"
    )
    await run_action(Action("sql", {"sql": reset}), _context(database_dsn=database_dsn))
    with psycopg.connect(database_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM ticket").fetchone() == (0,)
        assert conn.execute("SELECT DISTINCT status FROM advisor").fetchall() == [("AVAILABLE",)]


async def test_sql_probe_polls_until_the_condition_holds(database_dsn: str) -> None:
    context = _context(database_dsn=database_dsn)

    async def later() -> None:
        await asyncio.sleep(0.6)
        await run_action(
            Action("sql", {"sql": "INSERT INTO recovery_event (recovery_type) VALUES ('DEAD_WORKER')"}),
            context,
        )

    probe = Probe(
        "sql",
        {"query": "SELECT count(*) FROM recovery_event WHERE recovery_type = 'DEAD_WORKER'", "min": 1},
        within=5.0,
        interval=0.2,
    )
    task = asyncio.ensure_future(later())
    result = await check_probe(probe, context)
    await task
    assert result.ok
    assert 0.5 <= result.seconds < 3  # found soon after the row appeared, not at the deadline
    never = Probe("sql", {"query": "SELECT 0", "equals": 1}, within=0.5, interval=0.1)
    failed = await check_probe(never, context)
    assert not failed.ok and "expected == 1" in failed.detail


async def test_sql_action_reports_a_bad_statement(database_dsn: str) -> None:
    with pytest.raises(ActionError, match="UndefinedTable"):
        await run_action(
            Action("sql", {"sql": "UPDATE no_such_table SET x = 1"}), _context(database_dsn=database_dsn)
        )


async def test_amqp_action_republishes_a_processed_tickets_message(database_dsn: str, amqp_url: str) -> None:
    payload = {"ticketId": 7, "numero": "C000007", "queueType": "CAJA", "telefono": "+56912345678"}
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload, status, sent_at) "
            "VALUES (7, 'TICKET_CREATED', 'caja-queue', %s, 'SENT', now())",
            (json.dumps(payload),),
        )
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare("ticketero-exchange", exchange_type="direct", durable=True)
    channel.queue_declare("caja-queue", durable=True)
    channel.queue_bind("caja-queue", "ticketero-exchange", routing_key="caja-queue")
    try:
        detail = await run_action(
            Action(
                "amqp",
                {
                    "exchange": "ticketero-exchange",
                    "routing_key": "caja-queue",
                    "body_sql": "SELECT payload::text FROM outbox_message WHERE event_type = 'TICKET_CREATED' "
                    "ORDER BY id DESC LIMIT 1",
                    "count": 3,
                },
            ),
            _context(database_dsn=database_dsn, amqp_url=amqp_url),
        )
        assert "published 3" in detail
        bodies = []
        deadline = time.monotonic() + 5
        while len(bodies) < 3 and time.monotonic() < deadline:
            method, properties, body = channel.basic_get("caja-queue", auto_ack=True)
            if method is None:
                await asyncio.sleep(0.05)
                continue
            assert properties.delivery_mode == 2  # persistent, like the relay's messages
            bodies.append(json.loads(body))
        assert bodies == [payload] * 3
    finally:
        connection.close()


async def test_amqp_action_without_a_source_row_fails(database_dsn: str, amqp_url: str) -> None:
    action = Action(
        "amqp",
        {
            "exchange": "",
            "routing_key": "x",
            "body_sql": "SELECT payload FROM outbox_message LIMIT 1",
            "count": 1,
        },
    )
    with pytest.raises(ActionError, match="no row"):
        await run_action(action, _context(database_dsn=database_dsn, amqp_url=amqp_url))


async def test_experiment_runs_setup_sql_and_verify_probes(database_dsn: str, service, make_scenario) -> None:
    _seed_busy_advisor(database_dsn)
    scenario = make_scenario(
        f"""
        target: {service.url}
        max_requests: 5
        workload: {{vus: 1}}
        requests: [health]
        services: {{database_dsn: "{database_dsn}"}}
        setup:
          - {{type: sql, sql: "UPDATE advisor SET status = 'AVAILABLE'"}}
        steady_state:
          - {{type: sql, query: "SELECT count(*) FROM advisor WHERE status = 'BUSY'", equals: 0}}
          - {{type: http, path: /actuator/health, expect_json: {{status: UP}}}}
        method:
          - {{type: sql, sql: "INSERT INTO recovery_event (recovery_type) VALUES ('DEAD_WORKER')"}}
        verify:
          - {{type: sql, query: "SELECT count(*) FROM recovery_event", equals: 1}}
        rollbacks:
          - {{type: sql, sql: "DELETE FROM recovery_event"}}
        """
    )
    result = await Experiment(scenario, None, quiet=True).run()
    assert result["exit_code"] == 0, result
    assert [p["phase"] for p in result["probes"]] == [
        "steady_state",
        "steady_state",
        "verify",
        "verify",
        "verify",
    ]
    with psycopg.connect(database_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM recovery_event").fetchone() == (0,)  # rolled back


async def test_watch_action_breaking_during_the_load_fails_the_hypothesis(
    database_dsn: str, service, make_scenario
) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 5s
        workload: {{vus: 1}}
        think_time: 50ms
        requests: [health]
        services: {{database_dsn: "{database_dsn}"}}
        method:
          - {{type: watch, query: "SELECT count(*) FROM recovery_event", equals: 0, within: 5s, interval: 100ms}}
          - {{at: 500ms, type: sql, sql: "INSERT INTO recovery_event (recovery_type) VALUES ('DEAD_WORKER')"}}
        """
    )
    started = time.monotonic()
    result = await Experiment(scenario, None, quiet=True).run()
    assert result["exit_code"] == 97
    assert "watch: broke" in result["error"]
    assert time.monotonic() - started < 4  # the violation ended the load early


async def test_proxy_actions_through_an_experiment(service, make_scenario) -> None:
    """The service is reached through the scenario's proxy; a cut makes requests fail until restored."""
    from nfr.processes import free_port

    port = free_port()
    scenario = make_scenario(
        f"""
        target: http://127.0.0.1:{port}
        duration: 3s
        timeout: 1s
        workload: {{model: open, rate: 50/s}}
        requests: [health]
        proxies:
          - {{name: api, listen: "127.0.0.1:{port}", target: "127.0.0.1:{service.port}"}}
        method:
          - {{at: 1s, type: proxy, proxy: api, op: cut}}
          - {{at: 2s, type: proxy, proxy: api, op: restore}}
          - {{at: 2s, type: proxy, proxy: api, op: latency, seconds: 100ms}}
        """
    )
    result = await Experiment(scenario, None, quiet=True).run()
    total = result["load"]["total"]
    assert total["requests"] == 150
    errors = total["statuses"].get("0", 0)
    assert 30 <= errors <= 70  # about one second of 50/s refused
    assert total["statuses"]["200"] == 150 - errors
    assert total["latency"]["max"] >= 0.2  # the added 100 ms each way after the restore
    assert result["exit_code"] == 0


@pytest.mark.docker
async def test_docker_actions_and_rollback_restart_a_stopped_container(
    docker_container, service, make_scenario
) -> None:
    container = docker_container("sleep 600")
    context = _context()
    assert "now paused" in await run_action(
        Action("docker", {"container": container.name, "op": "pause"}), context
    )
    assert "now running" in await run_action(
        Action("docker", {"container": container.name, "op": "unpause"}), context
    )
    context.close()
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 10s
        workload: {{vus: 1}}
        think_time: 100ms
        requests: [health]
        method:
          - {{type: docker, container: {container.name}, op: stop, timeout: 1s}}
          - {{type: command, run: "exit 4"}}
        rollbacks:
          - {{type: docker, container: {container.name}, op: start}}
        """
    )
    result = await Experiment(scenario, None, quiet=True).run()
    assert result["exit_code"] == 1
    assert [a["ok"] for a in result["actions"]] == [True, False, True]
    assert "now exited" in result["actions"][0]["detail"]
    container.reload()
    assert container.status == "running"  # the rollback started it again
    kill = await run_action(
        Action("docker", {"container": container.name, "op": "kill", "signal": "SIGKILL"}), _context()
    )
    assert "kill" in kill
