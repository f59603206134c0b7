"""HTTP API: creation, validation, duplicates, lookup, health, metrics, and creation under concurrency."""

from __future__ import annotations

import re
import time
from typing import Any

import aiohttp

from tests.ticketero.conftest import (
    CLIENT_TIMEOUT,
    create_tickets,
    database_proxy,
    fetch,
    scalar,
    ticket_body,
    wait_healthy,
    wait_until,
)


async def test_create_returns_201_with_the_ticket_and_writes_ticket_event_and_outbox(start_service):
    svc = await start_service(service_time=30.0)  # keep it WAITING/CALLED long enough to read it
    [(status, body)] = await create_tickets(svc.base_url, [ticket_body(12345678, "PERSONAL")])

    assert status == 201
    assert re.fullmatch(r"P\d{6}", body["numero"])
    assert re.fullmatch(r"[0-9a-f-]{36}", body["codigoReferencia"])
    assert body["nationalId"] == "12345678"
    assert body["queueType"] == "PERSONAL"
    assert body["status"] == "WAITING"
    assert body["positionInQueue"] == 1
    assert body["estimatedWaitMinutes"] == 15
    assert body["branchOffice"] == "Sucursal Centro"
    assert body["createdAt"]

    rows = await fetch(svc.dsn, "SELECT id, numero, queue_type FROM ticket")
    assert [(r[1], r[2]) for r in rows] == [(body["numero"], "PERSONAL")]
    ticket_id = rows[0][0]
    outbox = await fetch(svc.dsn, "SELECT aggregate_id, routing_key, payload FROM outbox_message")
    assert outbox[0][0] == ticket_id and outbox[0][1] == "personal-queue"
    assert outbox[0][2]["numero"] == body["numero"] and outbox[0][2]["ticketId"] == ticket_id
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket_event WHERE event_type = 'CREATED'") == 1


async def test_position_counts_waiting_tickets_of_the_same_queue(start_service):
    svc = await start_service(advisors=0)  # nobody serves: everything stays WAITING
    results = []
    for national_id in range(1000, 1003):
        results += await create_tickets(svc.base_url, [ticket_body(national_id, "GERENCIA")])
    assert [body["positionInQueue"] for _, body in results] == [1, 2, 3]
    assert [body["estimatedWaitMinutes"] for _, body in results] == [30, 60, 90]
    # GET reports where a WAITING ticket stands now, not where it started.
    await fetch(
        svc.dsn,
        "UPDATE ticket SET status = 'CANCELLED' WHERE numero = %s RETURNING id",
        results[0][1]["numero"],
    )
    url = f"{svc.base_url}/api/tickets/{results[2][1]['numero']}"
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session, session.get(url) as response:
        body = await response.json()
    assert (body["positionInQueue"], body["estimatedWaitMinutes"]) == (2, 60)


async def test_invalid_fields_get_400_naming_each_field(start_service):
    svc = await start_service()
    bad = {"nationalId": "", "telefono": "abc", "branchOffice": "   ", "queueType": "VIP"}
    [(status, body)] = await create_tickets(svc.base_url, [bad])
    assert status == 400
    assert set(body["fields"]) == {"nationalId", "telefono", "branchOffice", "queueType"}
    assert body["error"]

    [(status, body)] = await create_tickets(svc.base_url, [{**ticket_body(1), "queueType": "caja"}])
    assert status == 400 and set(body["fields"]) == {"queueType"}
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket") == 0


async def test_malformed_json_gets_400(start_service):
    svc = await start_service()
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for payload in (b"{not json", b"", b"[1, 2]"):
            async with session.post(
                f"{svc.base_url}/api/tickets", data=payload, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 400, payload
                body = await response.json()
                assert "error" in body and "fields" in body
    assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message") == 0


async def test_second_active_ticket_for_same_person_and_queue_is_409(start_service):
    svc = await start_service(advisors=0)
    [(first, _)] = await create_tickets(svc.base_url, [ticket_body(55555555, "CAJA")])
    [(second, body)] = await create_tickets(svc.base_url, [ticket_body(55555555, "CAJA")])
    [(other_queue, _)] = await create_tickets(svc.base_url, [ticket_body(55555555, "EMPRESAS")])
    assert (first, second, other_queue) == (201, 409, 201)
    assert "error" in body


async def test_concurrent_duplicates_yield_exactly_one_ticket(start_service):
    svc = await start_service(advisors=0)
    results = await create_tickets(svc.base_url, [ticket_body(77777777, "CAJA")] * 20)
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE national_id = '77777777'") == 1


async def test_get_by_numero_and_404(start_service):
    svc = await start_service(advisors=0)
    [(_, created)] = await create_tickets(svc.base_url, [ticket_body(4242)])
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(f"{svc.base_url}/api/tickets/{created['numero']}") as response:
            assert response.status == 200
            body = await response.json()
        async with session.get(f"{svc.base_url}/api/tickets/Z999999") as missing:
            assert missing.status == 404
    assert body["numero"] == created["numero"]
    assert body["codigoReferencia"] == created["codigoReferencia"]
    assert body["status"] == "WAITING"


async def test_health_up(start_service):
    svc = await start_service()
    async with (
        aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session,
        session.get(f"{svc.base_url}/actuator/health") as response,
    ):
        assert response.status == 200
        assert await response.json() == {
            "status": "UP",
            "components": {"db": {"status": "UP"}, "rabbit": {"status": "UP"}},
        }


async def test_health_pings_the_database_in_one_round_trip_and_reports_it_down(start_service, database_dsn):
    """200 ms each way to PostgreSQL: the health answer takes one round trip (0.4 s), within a 0.5 s probe
    timeout (a pooled connection would cost two); cut, the database is reported DOWN, and UP once back."""
    latency = 0.2
    proxy, proxied = await database_proxy(database_dsn)
    try:
        assert proxied != database_dsn
        svc = await start_service(advisors=0, database_dsn=proxied)

        async def health() -> tuple[int, dict[str, Any], float]:
            started = time.monotonic()
            async with (
                aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session,
                session.get(f"{svc.base_url}/actuator/health") as r,
            ):
                return r.status, await r.json(), time.monotonic() - started

        assert (await health())[0] == 200  # connects the health check's connection
        proxy.set_latency(latency)
        timings = []
        for _ in range(3):
            status, body, elapsed = await health()
            assert status == 200 and body["components"]["db"] == {"status": "UP"}, body
            timings.append(elapsed)
        assert 2 * latency <= min(timings) and max(timings) < 0.5, timings
        proxy.restore()
        proxy.cut()
        status, body, _ = await health()
        assert status == 503 and body["components"]["db"] == {"status": "DOWN"}, body
        proxy.restore()
        await wait_healthy(svc.base_url)
        await svc.service.stop()  # while its database is still reachable
    finally:
        await proxy.stop()


async def test_health_503_when_broker_unreachable_but_tickets_still_created(start_service):
    from nfr.processes import free_port

    svc = await start_service(
        wait_for_broker=False, amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    )
    async with (
        aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session,
        session.get(f"{svc.base_url}/actuator/health") as response,
    ):
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "DOWN"
    assert body["components"]["rabbit"]["status"] == "DOWN"
    assert body["components"]["db"]["status"] == "UP"
    # The outbox keeps the API available while the broker is away.
    [(status, _)] = await create_tickets(svc.base_url, [ticket_body(31337)])
    assert status == 201
    assert await scalar(svc.dsn, "SELECT status FROM outbox_message") == "PENDING"


async def test_prometheus_exposes_micrometer_named_histogram_and_process_metrics(start_service):
    svc = await start_service(advisors=0)
    await create_tickets(svc.base_url, [ticket_body(1), {"queueType": "X"}])
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(f"{svc.base_url}/api/tickets/C000001"):
            pass
        async with session.get(f"{svc.base_url}/actuator/prometheus") as response:
            assert response.status == 200
            text = await response.text()
    assert re.search(
        r'http_server_requests_seconds_bucket\{le="2\.0",method="POST",outcome="SUCCESS",status="201",'
        r'uri="/api/tickets"\} 1\.0',
        text,
    )
    assert 'outcome="CLIENT_ERROR",status="400",uri="/api/tickets"' in text
    assert 'uri="/api/tickets/{numero}"' in text  # the route template, never the ticket number
    assert "C000001" not in text
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
    assert re.search(r"^process_cpu_seconds_total \d", text, re.M)
    assert re.search(r'^ticketero_build_info\{python_version="[0-9.]+",version="[^"]+"\} 1\.0$', text, re.M)
    assert "_created" not in text


async def test_100_concurrent_creations_all_sent_and_completed(start_service):
    svc = await start_service(advisors=12)
    results = await create_tickets(
        svc.base_url,
        [
            ticket_body(20_000_000 + i, ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")[i % 4])
            for i in range(100)
        ],
    )
    assert [status for status, _ in results] == [201] * 100
    assert len({body["numero"] for _, body in results}) == 100
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket") == 100
    assert await scalar(svc.dsn, "SELECT count(DISTINCT aggregate_id) FROM outbox_message") == 100

    async def all_done() -> bool:
        sent = await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE status = 'SENT'")
        done = await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'")
        return sent == 100 and done == 100

    await wait_until(all_done, 60, what="100 tickets SENT and COMPLETED")
    assert await scalar(svc.dsn, "SELECT sum(total_tickets_served) FROM advisor") == 100
    assert await scalar(svc.dsn, "SELECT count(*) FROM advisor WHERE status <> 'AVAILABLE'") == 0
    assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message WHERE attempts > 0") == 0


async def test_the_api_has_its_own_pool_unless_its_size_is_0(start_service):
    own = await start_service(advisors=0, api_db_pool_size=2)
    shared = await start_service(advisors=0, api_db_pool_size=0)
    assert own.service.api_pool is not None and own.service.api_pool.max_size == 2
    assert own.service.api_pool is not own.service.pool
    assert shared.service.api_pool is None
    for svc, national_id in ((own, 31_000_000), (shared, 31_000_001)):
        [(status, body)] = await create_tickets(svc.base_url, [ticket_body(national_id)])
        assert status == 201, body


async def test_a_retried_creation_whose_first_commit_went_through_answers_that_ticket(start_service):
    """The creation's second try (after a connection lost during COMMIT) carries the first try's reference:
    when that try did commit, the client gets its own ticket (201), not a 409 against itself; a different
    creation for the same person and queue still gets the 409, and there is only ever one ticket."""
    import uuid

    from ticketero.api import _insert_ticket

    svc = await start_service(advisors=0)
    runner = svc.service._runner
    assert runner is not None
    app = runner.app
    values = {
        "national_id": "31415926",
        "telefono": None,
        "branch_office": "Sucursal Centro",
        "queue_type": "CAJA",
    }
    reference = uuid.uuid4()
    first = await _insert_ticket(app, values, reference)
    again = await _insert_ticket(app, values, reference)  # as the retry does after a lost COMMIT answer
    other = await _insert_ticket(app, values, uuid.uuid4())  # another client's creation
    assert isinstance(first, dict) and isinstance(again, dict)
    assert again["numero"] == first["numero"] and again["codigo_referencia"] == reference
    assert set(again) == set(first)
    assert getattr(other, "status", None) == 409
    assert await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE national_id = '31415926'") == 1
    assert await scalar(svc.dsn, "SELECT count(*) FROM outbox_message") == 1
