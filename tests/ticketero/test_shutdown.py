"""SIGTERM on a real process: exit 0, no ticket lost, no advisor left BUSY."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from tests.ticketero.conftest import CLIENT_TIMEOUT, fetch, scalar, ticket_body, wait_healthy, wait_until

COMMON = ("--heartbeat-interval", "0.5", "--relay-interval", "0.1", "--advisor-retry-delay", "0.05")


async def _no_ticket_lost(dsn: str, created: list[str]) -> None:
    rows = await fetch(dsn, "SELECT numero, status, id FROM ticket")
    by_numero = {numero: (status, ticket_id) for numero, status, ticket_id in rows}
    assert set(created) <= set(by_numero), "a ticket answered 201 is missing"
    for numero, (status, ticket_id) in by_numero.items():
        assert status in ("COMPLETED", "WAITING"), f"{numero} left {status}"
        if status == "WAITING":
            assert (
                await scalar(dsn, "SELECT count(*) FROM outbox_message WHERE aggregate_id = %s", ticket_id)
                >= 1
            )
    assert await scalar(dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 0


async def test_sigterm_under_load_exits_0_and_loses_nothing(spawn_service):
    proc = spawn_service(
        *COMMON, "--service-time", "0.3", "--advisors", "6", "--shutdown-grace", "5", "--log-level", "INFO"
    )
    await wait_healthy(proc.base_url)
    created: list[str] = []

    async def load(session: aiohttp.ClientSession) -> None:
        for i in range(80):
            try:
                async with session.post(
                    f"{proc.base_url}/api/tickets",
                    json=ticket_body(10_000_000 + i, ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")[i % 4]),
                ) as response:
                    if response.status == 201:
                        created.append((await response.json())["numero"])
            except aiohttp.ClientError:
                pass  # the server has stopped listening: expected once SIGTERM arrives
            await asyncio.sleep(0.025)

    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        loader = asyncio.create_task(load(session))

        async def busy() -> bool:
            return (
                await scalar(
                    proc.dsn, "SELECT count(*) FROM ticket WHERE status IN ('CALLED', 'IN_PROGRESS')"
                )
                > 0
            )

        await wait_until(busy, 10, interval=0.02, what="tickets in flight")
        await asyncio.sleep(0.5)
        in_flight = await scalar(
            proc.dsn, "SELECT count(*) FROM ticket WHERE status IN ('CALLED', 'IN_PROGRESS')"
        )
        code = await asyncio.to_thread(proc.terminate, 30)
        await loader

    assert code == 0, proc.log()
    assert len(created) > 0 and in_flight > 0
    assert "in-flight tickets" in proc.log()  # the drain really had work to wait for
    await _no_ticket_lost(proc.dsn, created)
    assert "stopped" in proc.log()
    assert "guest:guest" not in proc.log()  # password masked


async def test_grace_over_hands_tickets_back_and_a_restart_completes_them(spawn_service):
    first = spawn_service(*COMMON, "--service-time", "60", "--advisors", "3", "--shutdown-grace", "0.5")
    await wait_healthy(first.base_url)
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for i in range(3):
            async with session.post(
                f"{first.base_url}/api/tickets", json=ticket_body(11_000_000 + i)
            ) as response:
                assert response.status == 201

    async def all_in_progress() -> bool:
        return await scalar(first.dsn, "SELECT count(*) FROM ticket WHERE status = 'IN_PROGRESS'") == 3

    await wait_until(all_in_progress, 10, what="3 tickets IN_PROGRESS")
    code = await asyncio.to_thread(first.terminate, 20)
    assert code == 0, first.log()

    await _no_ticket_lost(first.dsn, [])
    assert await scalar(first.dsn, "SELECT count(*) FROM ticket WHERE status = 'WAITING'") == 3
    assert await scalar(first.dsn, "SELECT count(*) FROM ticket_event WHERE event_type = 'HANDED_BACK'") == 3
    assert (
        await scalar(first.dsn, "SELECT count(*) FROM outbox_message WHERE event_type = 'TICKET_REQUEUED'")
        == 3
    )
    assert await scalar(first.dsn, "SELECT count(*) FROM advisor WHERE worker_id IS NOT NULL") == 0

    second = spawn_service(*COMMON, "--service-time", "0", "--advisors", "3")
    await wait_healthy(second.base_url)

    async def all_completed() -> bool:
        return await scalar(second.dsn, "SELECT count(*) FROM ticket WHERE status = 'COMPLETED'") == 3

    await wait_until(all_completed, 20, what="handed-back tickets COMPLETED after restart")
    assert await scalar(second.dsn, "SELECT sum(total_tickets_served) FROM advisor") == 3
    assert await asyncio.to_thread(second.terminate, 20) == 0


async def test_readiness_drain_reports_down_while_still_serving_then_stops(spawn_service):
    proc = spawn_service(*COMMON, "--readiness-drain", "1.5", "--service-time", "0")
    await wait_healthy(proc.base_url)
    proc.process.send_signal(signal.SIGTERM)
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:

        async def draining() -> bool:
            async with session.get(f"{proc.base_url}/actuator/health") as response:
                return response.status == 503

        await wait_until(draining, 1.0, interval=0.02, what="health DOWN after SIGTERM")
        async with session.get(f"{proc.base_url}/actuator/health") as response:
            body = await response.json()
        assert body["status"] == "DOWN" and body["components"]["readiness"]["status"] == "DOWN"
        assert body["components"]["db"]["status"] == "UP"
        async with session.post(f"{proc.base_url}/api/tickets", json=ticket_body(20_000_001)) as response:
            assert response.status == 201  # still served during the drain
    assert await asyncio.to_thread(proc.process.wait, 30) == 0
    assert "readiness drain: health DOWN for 1.5s" in proc.log()
    assert await scalar(proc.dsn, "SELECT count(*) FROM ticket WHERE national_id = '20000001'") == 1


async def test_no_drain_fault_exits_at_once_leaving_work_behind(spawn_service):
    proc = spawn_service(
        *COMMON, "--readiness-drain", "5", "--service-time", "30", "--faults", "no-drain", "--advisors", "2"
    )
    await wait_healthy(proc.base_url)
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.post(f"{proc.base_url}/api/tickets", json=ticket_body(20_000_002)) as response:
            assert response.status == 201

        async def busy() -> bool:
            return await scalar(proc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 1

        await wait_until(busy, 10, interval=0.05, what="a ticket in progress")
    code = await asyncio.to_thread(proc.terminate, 3)  # well before the 5 s readiness drain would end
    assert code == 0
    assert "no-drain fault: exiting at once" in proc.log() and "stopped" not in proc.log()
    assert (
        await scalar(proc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'") == 1
    )  # not handed back
