"""Capacity of the reference service: tickets completed per minute and API p95 under open-loop load.

Starts ``python -m ticketero`` (service time 0, ``--advisors`` advisors) on a fresh database and vhost,
offers POST /api/tickets at increasing fixed rates (open model: requests leave on schedule whatever the
answers do, latency counted from the intended send time), and per step reports the create latency and
the tickets completed per minute from the database. The highest step where completions kept up with
arrivals and p95 stayed under 2 s is the sustained load.

Reference in the same run: the same ramp against a service with ``--reference-workers`` consumers per
queue (1 by default, 4 workers in all), so the scaling ratio 12 vs 4 workers is measured on the same,
shared machine rather than compared with a figure from elsewhere.

    .venv/bin/python bench/service_capacity.py                 # full run, ~3 minutes
    .venv/bin/python bench/service_capacity.py --rates 10,40 --step-seconds 10 --no-reference

Exit code 0 when the sustained throughput reaches --target (600/min = 12 x RNF-01), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nfr.processes import free_port  # noqa: E402
from tests.support.services import temporary_database, temporary_vhost  # noqa: E402

QUEUES = ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")
P95_LIMIT_SECONDS = 2.0  # RNF-02
KEEP_UP_RATIO = 0.95  # completions / creations in a step for the step to count as sustained
MAX_IN_FLIGHT = 400


@dataclass
class Step:
    rate: float
    offered: int
    created: int
    failed: int
    dropped: int
    p50: float
    p95: float
    p99: float
    completed_per_min: float
    created_per_min: float
    backlog: int

    @property
    def kept_up(self) -> bool:
        return (
            self.created > 0
            and self.completed_per_min >= KEEP_UP_RATIO * self.created_per_min
            and self.p95 < P95_LIMIT_SECONDS
            and self.failed + self.dropped <= 0.01 * self.offered
        )


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


async def wait_healthy(base_url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{base_url}/actuator/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"service at {base_url} did not become healthy within {within:.0f} s")


async def count_completed(dsn: str, since: float, until: float) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM ticket WHERE completed_at >= to_timestamp(%s) AND completed_at < to_timestamp(%s)",
                (since, until),
            )
        ).fetchone()
        return int(row[0]) if row else 0


async def service_rss_mib(session: aiohttp.ClientSession, base_url: str) -> float:
    """The service's own process_resident_memory_bytes, in MiB."""
    async with session.get(f"{base_url}/actuator/prometheus") as response:
        text = await response.text()
    match = re.search(r"^process_resident_memory_bytes (\S+)", text, re.M)
    return float(match.group(1)) / 2**20 if match else math.nan


async def backlog(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM ticket WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS')"
            )
        ).fetchone()
        return int(row[0]) if row else 0


async def run_step(
    session: aiohttp.ClientSession,
    base_url: str,
    dsn: str,
    rate: float,
    seconds: float,
    ids: itertools.count[int],
) -> Step:
    latencies: list[float] = []
    created = failed = dropped = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def send(intended: float, national_id: int) -> None:
        nonlocal created, failed
        body = {
            "nationalId": str(national_id),
            "telefono": "+56912345678",
            "branchOffice": "Sucursal Centro",
            "queueType": QUEUES[national_id % 4],
        }
        try:
            async with session.post(f"{base_url}/api/tickets", json=body) as response:
                await response.read()
                ok = response.status == 201
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        latencies.append(time.monotonic() - intended)
        if ok:
            created += 1
        else:
            failed += 1

    offered = int(rate * seconds)
    wall_start = time.time()
    start = time.monotonic()
    for index in range(offered):
        intended = start + index / rate
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= MAX_IN_FLIGHT:
            dropped += 1
            continue
        task = asyncio.create_task(send(intended, next(ids)))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(set(in_flight), timeout=30)
    # Completions inside the arrival window: a service that keeps up completes (almost) all of them there.
    wall_end = wall_start + seconds
    await asyncio.sleep(max(0.0, wall_end - time.time()))
    completed = await count_completed(dsn, wall_start, wall_end)
    return Step(
        rate=rate,
        offered=offered,
        created=created,
        failed=failed,
        dropped=dropped,
        p50=percentile(latencies, 0.50),
        p95=percentile(latencies, 0.95),
        p99=percentile(latencies, 0.99),
        completed_per_min=completed * 60.0 / seconds,
        created_per_min=created * 60.0 / seconds,
        backlog=await backlog(dsn),
    )


def print_step(step: Step) -> None:
    print(
        f"  {step.rate:7.1f}/s offered={step.offered:5d} created={step.created:5d} failed={step.failed:4d} "
        f"dropped={step.dropped:4d}  p50={step.p50 * 1000:7.1f} ms p95={step.p95 * 1000:7.1f} ms "
        f"p99={step.p99 * 1000:7.1f} ms  completed={step.completed_per_min:7.0f}/min "
        f"(created {step.created_per_min:7.0f}/min) backlog={step.backlog:5d}  "
        f"{'sustained' if step.kept_up else 'NOT sustained'}",
        flush=True,
    )


async def ramp(args: argparse.Namespace, workers_per_queue: int, label: str) -> Step | None:
    """Start a service, run the rate steps until one is not sustained; returns the best sustained step."""
    with temporary_database() as dsn, temporary_vhost() as amqp_url:
        port = free_port()
        log_path = Path(args.log_dir) / f"service_capacity-{label}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "ticketero", "--database-dsn", dsn, "--amqp-url", amqp_url, "--port", str(port),
            "--service-time", "0", "--workers-per-queue", str(workers_per_queue),
            "--advisors", str(args.advisors), "--db-pool-size", str(args.db_pool_size),
            "--relay-interval", "0.1", "--log-level", "WARNING",
        ]  # fmt: skip
        with open(log_path, "wb") as log_file:  # noqa: ASYNC230 - once, before any load
            service = await asyncio.create_subprocess_exec(
                *command, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT
            )
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_healthy(base_url)
            print(
                f"\n{label}: {4 * workers_per_queue} workers, {args.advisors} advisors, service time 0",
                flush=True,
            )
            best: Step | None = None
            ids = itertools.count(10_000_000)
            connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                rss_start = await service_rss_mib(session, base_url)
                for rate in args.rates:
                    step = await run_step(session, base_url, dsn, rate, args.step_seconds, ids)
                    print_step(step)
                    if not step.kept_up:
                        break
                    best = step
                    # Let any backlog drain so the next step starts clean.
                    deadline = time.monotonic() + 15
                    while await backlog(dsn) > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                print(
                    f"  service RSS {rss_start:.1f} MiB before the ramp, "
                    f"{await service_rss_mib(session, base_url):.1f} MiB after",
                    flush=True,
                )
            return best
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(service.wait(), 60)
            except TimeoutError:
                service.kill()
                code = await service.wait()
            if code != 0:
                print(f"  service exited {code}; log: {log_path}", flush=True)


def describe(step: Step | None) -> str:
    if step is None:
        return "no step sustained"
    return (
        f"{step.completed_per_min:.0f} tickets/min completed at {step.rate:g} req/s offered, "
        f"API p95 {step.p95 * 1000:.0f} ms (p99 {step.p99 * 1000:.0f} ms)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates",
        default="10,20,40,80,120,160,200,240",
        help="request rates per second, in order (default: %(default)s)",
    )
    parser.add_argument(
        "--step-seconds", type=float, default=15.0, help="seconds per rate step (default: %(default)s)"
    )
    parser.add_argument(
        "--workers-per-queue",
        type=int,
        default=3,
        help="consumers per queue (default: %(default)s = 12 workers)",
    )
    parser.add_argument("--advisors", type=int, default=12, help="advisors seeded (default: %(default)s)")
    parser.add_argument("--db-pool-size", type=int, default=16, help="service DB pool (default: %(default)s)")
    parser.add_argument(
        "--reference-workers",
        type=int,
        default=1,
        help="consumers per queue of the reference run (default: %(default)s)",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the reference run")
    parser.add_argument(
        "--target",
        type=float,
        default=600.0,
        help="tickets/min to reach (default: %(default)s = 12 x RNF-01)",
    )
    parser.add_argument(
        "--log-dir",
        default=os.environ.get("TMPDIR", "/tmp"),
        help="where service logs go (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    return args


async def main_async(args: argparse.Namespace) -> int:
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load:.2f} at start (shared machine: figures include contention)"
    )
    print(f"steps: {', '.join(f'{r:g}/s' for r in args.rates)} x {args.step_seconds:g} s each")
    main = await ramp(args, args.workers_per_queue, "main")
    reference = None if args.no_reference else await ramp(args, args.reference_workers, "reference")

    print("\nresult")
    print(f"  sustained ({4 * args.workers_per_queue} workers): {describe(main)}")
    if not args.no_reference:
        print(f"  reference ({4 * args.reference_workers} workers): {describe(reference)}")
        if main and reference and reference.completed_per_min:
            print(f"  ratio main / reference: {main.completed_per_min / reference.completed_per_min:.2f}")
    achieved = main.completed_per_min if main else 0.0
    verdict = "PASS" if achieved >= args.target else "FAIL"
    print(
        f"  target >= {args.target:g} tickets/min (12 x RNF-01 = 12 x 50): {verdict} ({achieved / args.target:.1f}x)"
    )
    if main:
        print(
            f"  RNF-02 p95 < 2 s at the sustained load: {'PASS' if main.p95 < P95_LIMIT_SECONDS else 'FAIL'}"
        )
    print(f"  load average at end: {os.getloadavg()[0]:.2f}")
    return 0 if verdict == "PASS" else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
