"""The reference service with and without its unlocked-claim fault: the race is counted after it is over.

A double assignment lasts about one service time, so the ``ticketero_advisors_double_assigned`` gauge,
sampled at scrape time, misses it. ``ticketero_tickets_double_assigned_total`` must still show it when the
first scrape comes only after every ticket has completed, and must stay at 0 for the same run without the
fault. With the fault the losing worker cannot complete its ticket (the advisor's worker_id is no longer its
own), so the test closes those tickets itself, as an operator would, before the scrape.
"""

from __future__ import annotations

import time

import pytest

from exporters.postgres import PostgresClient
from exporters.postgres_consistency import ConsistencyCollector
from exporters.postgres_state import PostgresState
from tests.exporters.helpers import connect, registry_with, value
from tests.ticketero.conftest import (  # noqa: F401 - start_service is a fixture
    create_tickets,
    scalar,
    start_service,
    ticket_body,
    wait_until,
)

TICKETS = 6
CLOSE_STUCK_SQL = """
UPDATE ticket SET status = 'COMPLETED', started_at = COALESCE(started_at, now()), completed_at = now()
WHERE status IN ('CALLED', 'IN_PROGRESS')
"""


@pytest.mark.parametrize("faulty", [True, False], ids=["unlocked-claim", "no-fault"])
async def test_race_is_counted_after_it_is_over(start_service, faulty):  # noqa: F811 - the fixture
    svc = await start_service(
        faults="unlocked-claim" if faulty else "", advisors=2, service_time=0.3, workers_per_queue=3
    )
    client = PostgresClient(svc.dsn)
    registry = registry_with(ConsistencyCollector(PostgresState(client, start_epoch=time.time())))
    created = await create_tickets(
        svc.base_url, [ticket_body(71_000_000 + i, "CAJA") for i in range(TICKETS)]
    )
    assert all(status == 201 for status, _ in created), created

    async def idle() -> bool:
        """Nothing left to claim and no advisor serving: the run is over."""
        waiting = await scalar(svc.dsn, "SELECT count(*) FROM ticket WHERE status = 'WAITING'")
        busy = await scalar(svc.dsn, "SELECT count(*) FROM advisor WHERE status = 'BUSY'")
        return waiting == 0 and busy == 0

    await wait_until(idle, 30, what="every ticket claimed and every advisor free")
    with connect(svc.dsn) as conn:
        stuck = conn.execute(CLOSE_STUCK_SQL).rowcount
    # No ticket is active any more when the exporter first looks: the gauge sees nothing.
    try:
        assert value(registry, "ticketero_advisors_double_assigned") == 0
        counted = value(registry, "ticketero_tickets_double_assigned_total")
    finally:
        client.close()
    if faulty:
        assert stuck > 0  # the fault's losers, left IN_PROGRESS by the service
        assert counted >= 2  # a winner and its loser, each counted at its completion
    else:
        assert stuck == 0
        assert counted == 0
