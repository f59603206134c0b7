"""Create latency of the reference service with PostgreSQL far away: pipelined creation vs ``chatty-create``.

Two services side by side in this process, each on a fresh database and vhost and each behind its own fault
proxy adding ``--latency`` each way to PostgreSQL (CHAOS-DB-LATENCY's second step: 200 ms): one as shipped,
one with the ``chatty-create`` fault (the creation one statement per round trip). Both get the same open-loop
load at the same time (``--rate`` POST /api/tickets per second for ``--seconds``, latency counted from the
intended send time) with their 12 workers and advisors busy on the database too, so the figures are a pair
measured in the same time span.

    .venv/bin/python bench/create_latency.py                     # 200 ms each way, 2/s for 40 s
    .venv/bin/python bench/create_latency.py --latency 0.1 --seconds 20

Exit code 0 when the shipped creation keeps p95 under 2 s (RNF-02) with no error, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from loadgen.proxy import FaultProxy  # noqa: E402
from tests.support.services import temporary_database, temporary_vhost  # noqa: E402
from ticketero.app import Service  # noqa: E402
from ticketero.config import Settings  # noqa: E402
from ticketero.faults import parse_faults  # noqa: E402

P95_LIMIT_SECONDS = 2.0  # RNF-02
QUEUES = ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")
_ids = itertools.count(60_000_000)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def drive(base_url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """Open loop: request i leaves at i / rate; returns (latencies of the 201s, failures)."""
    latencies: list[float] = []
    failures = 0
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(intended: float, national_id: int, queue: str) -> None:
            nonlocal failures
            body = {"nationalId": str(national_id), "branchOffice": "Centro", "queueType": queue}
            try:
                async with session.post(f"{base_url}/api/tickets", json=body) as response:
                    await response.read()
                    if response.status == 201:
                        latencies.append(time.monotonic() - intended)
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            failures += 1

        start = time.monotonic()
        tasks = []
        for i in range(int(rate * seconds)):
            intended = start + i / rate
            await asyncio.sleep(max(0.0, intended - time.monotonic()))
            tasks.append(asyncio.create_task(one(intended, next(_ids), QUEUES[i % len(QUEUES)])))
        await asyncio.gather(*tasks)
    return latencies, failures


async def measure(dsn: str, amqp_url: str, faults: str, args: argparse.Namespace) -> dict[str, Any]:
    host_port = dsn.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    proxy = FaultProxy("127.0.0.1", 0, host, int(port or 5432))
    await proxy.start()
    service = Service(
        Settings(
            database_dsn=dsn.replace(host_port, f"127.0.0.1:{proxy.port}"),
            amqp_url=amqp_url,
            port=0,
            service_time=args.service_time,
            faults=parse_faults(faults),
        )
    )
    try:
        http_port = await service.start()
        for _ in range(300):  # up to 15 s for the broker connection
            if service.broker_connected():
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit(f"service with faults {faults!r} did not connect to RabbitMQ in 15 s")
        proxy.set_latency(args.latency)
        latencies, failures = await drive(f"http://127.0.0.1:{http_port}", args.rate, args.seconds)
        proxy.restore()
    finally:
        proxy.restore()
        await service.stop()
        await proxy.stop()
    return {
        "faults": faults or "(none)",
        "created": len(latencies),
        "failed": failures,
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies, default=math.nan),
    }


async def main_async(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        shipped = (stack.enter_context(temporary_database()), stack.enter_context(temporary_vhost()))
        chatty = (stack.enter_context(temporary_database()), stack.enter_context(temporary_vhost()))
        results = await asyncio.gather(measure(*shipped, "", args), measure(*chatty, "chatty-create", args))
    print(
        f"{args.latency * 1000:.0f} ms each way to PostgreSQL, {args.rate:g} creates/s for {args.seconds:g} s, "
        f"service time {args.service_time:g} s"
    )
    print(f"{'faults':<15} {'created':>8} {'failed':>7} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for r in results:
        print(
            f"{r['faults']:<15} {r['created']:>8} {r['failed']:>7} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['max']:>7.2f}"
        )
    ok = results[0]["failed"] == 0 and results[0]["p95"] < P95_LIMIT_SECONDS
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added each way (%(default)s)")
    parser.add_argument("--rate", type=float, default=2.0, help="creates per second (%(default)s)")
    parser.add_argument("--seconds", type=float, default=40.0, help="load duration (%(default)s)")
    parser.add_argument("--service-time", type=float, default=2.0, help="advisor service time (%(default)s)")
    args = parser.parse_args()
    if args.latency < 0 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--latency must be >= 0, --rate and --seconds > 0")
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
