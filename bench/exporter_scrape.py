"""Scrape cost of the Ticketero exporter against postgres_exporter running the test plan's SQL, same data, same run.

For each history size (``--sizes``, default 1,000,000 and 10,000,000) the script builds a database of its own:
the plan's tables and columns with **primary keys only** (no secondary index, no unique constraint: what the Java
original's staging database may have), holding that many COMPLETED tickets (each with a SENT outbox row) spread
over 30 days, plus ``--active`` active tickets (WAITING / IN_PROGRESS, one outbox row in twenty PENDING), 20
advisors whose served counters match, and a few recovery events. Each table is filled by one
``INSERT … SELECT generate_series``. Then, on that database:

1. ``primary_keys_only``: this exporter (``python -m exporters``, default settings: 1 s scrape budget, PostgreSQL
   collectors only) from a fresh start: the first sweep of the history (scrapes until
   ``ticketero_consistency_sweep_age_seconds`` appears), then ``--scrapes`` timed scrapes, then scrapes until the
   next sweep is complete, which gives the detection bound for a violation planted on an old row;
2. Debian's ``prometheus-postgres-exporter`` with ``--extend.query-path bench/exporter_reference_queries.yml``
   (the plan's consistency SQL), ``--reference-scrapes`` timed scrapes;
3. ``indexed``: the same after ``exporters/sql/indexes.sql`` (the recommended partial indexes), this exporter again.

4. ``paired``: a primary-key-only exporter per size, all running at once, scraped in alternating blocks: every
   size under the same machine load, which is what the 10 M / 1 M ratio is taken from (and the 1 M target);
5. ``--many-active`` active tickets (10,000): this exporter again, for its memory with many active tickets.

It prints p50 / p95 of full scrape time, the ratio to the reference, the first sweep's duration, the scrapes one
sweep takes in steady state (and what that is at Prometheus's 15 s interval), the resident memory, and whether a
collector ever failed. Every scrape is checked: a collector failing at any scrape is a missed target.

Usage:
    python bench/exporter_scrape.py                          # 1M and 10M history, 10,000 active tickets
    python bench/exporter_scrape.py --sizes 1000000 --keep   # keep the database for a later --reuse

Targets: primary-key-only p95 <= 50 ms at 1M, at 10M <= 1.2x the 1M figure; no collector failure; RSS <= 80 MB.
Exit code 1 when a target is missed. The machine is shared: note other load when reading the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nfr.processes import free_port  # noqa: E402
from ticketero.migrate import migrate  # noqa: E402

ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REFERENCE_QUERIES = REPO / "bench" / "exporter_reference_queries.yml"
INDEXES = REPO / "exporters" / "sql" / "indexes.sql"
ADVISORS = 20
SCRAPE_INTERVAL = 15.0  # Prometheus's default, for the detection bound
P95_TARGET_MS = 50.0
GROWTH_TARGET = 1.2
RSS_TARGET_MB = 80.0

HISTORY_SQL = """
INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue,
                    assigned_advisor_id, assigned_module_number, created_at, called_at, started_at,
                    completed_at, updated_at, codigo_referencia)
SELECT 'H' || g, (10000000 + g)::text, 'Centro', (ARRAY['CAJA','PERSONAL','EMPRESAS','GERENCIA'])[1 + g %% 4],
       'COMPLETED', 1, 1 + g %% %(advisors)s, 1 + g %% %(advisors)s, ts, ts + interval '1 minute',
       ts + interval '2 minutes', ts + interval '7 minutes', ts + interval '7 minutes',
       md5(g::text)::uuid
FROM (SELECT g, now() - interval '31 days' + g * (interval '30 days' / %(n)s) AS ts
      FROM generate_series(1, %(n)s) g) s
"""
HISTORY_OUTBOX_SQL = """
INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload, status, attempts, created_at,
                            next_attempt_at, sent_at)
SELECT id, 'TICKET_CREATED', lower(queue_type) || '-queue', '{}', 'SENT', 1, created_at, created_at,
       created_at + interval '50 milliseconds'
FROM ticket
"""
ACTIVE_SQL = """
INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue,
                    assigned_advisor_id, created_at, started_at)
SELECT 'A' || g, (90000000 + g)::text, 'Centro', (ARRAY['CAJA','PERSONAL','EMPRESAS','GERENCIA'])[1 + g %% 4],
       CASE WHEN g <= %(advisors)s THEN 'IN_PROGRESS' ELSE 'WAITING' END, g,
       CASE WHEN g <= %(advisors)s THEN g END, now() - g * interval '1 second',
       CASE WHEN g <= %(advisors)s THEN now() END
FROM generate_series(1, %(active)s) g
"""
ACTIVE_OUTBOX_SQL = """
INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload, status, created_at, sent_at)
SELECT id, 'TICKET_CREATED', lower(queue_type) || '-queue', '{}',
       CASE WHEN id %% 20 = 0 THEN 'PENDING' ELSE 'SENT' END, created_at,
       CASE WHEN id %% 20 = 0 THEN NULL ELSE created_at + interval '30 milliseconds' END
FROM ticket WHERE id > %s
"""


def dsn_for(database: str) -> str:
    parts = urllib.parse.urlsplit(ADMIN_DSN)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{database}"))


def database_name(size: int) -> str:
    return f"ticketero_bench_pk_{size}"


def build_database(size: int, active: int, reuse: bool) -> str:
    """The plan's schema with primary keys only, filled; reused when --reuse and already built the same way."""
    name = database_name(size)
    dsn = dsn_for(name)
    info = f"{size}:{active}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and reuse:
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute("SELECT value FROM bench_info WHERE key = 'built'").fetchone()
                if row and row[0] == info:
                    print(f"[{size:,}] reusing database {name}")
                    drop_recommended_indexes(conn)
                    return dsn
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    migrate(dsn)
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        for table, constraint in conn.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint"
            " WHERE contype = 'u' AND connamespace = current_schema()::regnamespace"
        ).fetchall():
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
        for (index,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            " AND indexname NOT LIKE '%\\_pkey'"
        ).fetchall():
            conn.execute(f'DROP INDEX "{index}"')
        conn.execute(
            "INSERT INTO advisor (name, status, module_number) SELECT 'Asesor ' || g, 'AVAILABLE', g"
            " FROM generate_series(1, %s) g",
            (ADVISORS,),
        )
        conn.execute(HISTORY_SQL, {"advisors": ADVISORS, "n": size})
        print(f"[{size:,}] tickets loaded ({time.monotonic() - started:.0f} s)", flush=True)
        conn.execute(HISTORY_OUTBOX_SQL)
        print(f"[{size:,}] outbox rows loaded ({time.monotonic() - started:.0f} s)", flush=True)
        last_history = conn.execute("SELECT max(id) FROM ticket").fetchone()[0]  # type: ignore[index]
        conn.execute(ACTIVE_SQL, {"advisors": ADVISORS, "active": active})
        conn.execute(ACTIVE_OUTBOX_SQL, (last_history,))
        conn.execute(
            "UPDATE advisor a SET total_tickets_served = s.n,"
            " status = CASE WHEN a.id <= %s THEN 'BUSY' ELSE 'AVAILABLE' END, last_heartbeat = now()"
            " FROM (SELECT 1 + g %% %s AS id, count(*) AS n FROM generate_series(1, %s) g GROUP BY 1) s"
            " WHERE s.id = a.id",
            (min(ADVISORS, active), ADVISORS, size),
        )
        conn.execute(
            "INSERT INTO recovery_event (recovery_type, advisor_id, last_heartbeat_at, detected_at)"
            " SELECT 'DEAD_WORKER', 1, now() - interval '2 days' - g * interval '1 hour',"
            " now() - interval '2 days' - g * interval '1 hour' + interval '65 seconds'"
            " FROM generate_series(1, 50) g"
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute("CREATE TABLE bench_info (key text PRIMARY KEY, value text)")
        conn.execute("INSERT INTO bench_info VALUES ('built', %s)", (info,))
    print(f"[{size:,}] built in {time.monotonic() - started:.0f} s", flush=True)
    return dsn


def add_active(conn: psycopg.Connection, count: int) -> None:
    """More WAITING tickets (numero 'M…'), each with a SENT outbox row."""
    if count <= 0:
        return
    last = conn.execute("SELECT max(id) FROM ticket").fetchone()[0]  # type: ignore[index]
    conn.execute(
        "INSERT INTO ticket (numero, national_id, branch_office, queue_type, status, position_in_queue, created_at)"
        " SELECT 'M' || g, (80000000 + g)::text, 'Centro', 'CAJA', 'WAITING', g, now() - g * interval '1 second'"
        " FROM generate_series(1, %s) g",
        (count,),
    )
    conn.execute(
        "INSERT INTO outbox_message (aggregate_id, event_type, routing_key, payload, status, created_at, sent_at)"
        " SELECT id, 'TICKET_CREATED', 'caja-queue', '{}', 'SENT', created_at, created_at FROM ticket WHERE id > %s",
        (last,),
    )


def drop_recommended_indexes(conn: psycopg.Connection) -> None:
    for name in re.findall(r"CREATE INDEX IF NOT EXISTS (\w+)", INDEXES.read_text()):
        conn.execute(f'DROP INDEX IF EXISTS "{name}"')


def wait_http(url: str, timeout: float = 30) -> str:
    """The first answer of a starting exporter."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def timed_get(url: str, timeout: float = 60) -> tuple[float, str]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read().decode()
    return time.perf_counter() - started, body


def sample(body: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    return float(match.group(1)) if match else None


def failed_collectors(body: str) -> set[str]:
    return set(
        re.findall(r'^ticketero_scrape_collector_success\{collector="(\w+)"\} 0\.0$', body, re.MULTILINE)
    )


def rss_mb(pid: int) -> tuple[float, float]:
    current = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return current, peak


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


SWEEP_AGE = 'ticketero_consistency_sweep_age_seconds{check="served_drift"}'
SWEEP_DURATION = 'ticketero_consistency_sweep_duration_seconds{check="served_drift"}'


def measure_ours(size: int, schema: str, dsn: str, scrapes: int, max_sweep_scrapes: int) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    env.update(EXPORTER_DATABASE_DSN=dsn, EXPORTER_AMQP_URL="", EXPORTER_HEALTH_URL="")
    ours = subprocess.Popen(
        [sys.executable, "-m", "exporters", "--listen-port", str(port), "--log-level", "WARNING"],
        env=env,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        failed = failed_collectors(wait_http(url))  # the first scrape counts too
        # The first sweep: until the sweep age appears.
        warm_started, warm_scrapes = time.monotonic(), 0
        while True:
            _took, body = timed_get(url)
            warm_scrapes += 1
            failed |= failed_collectors(body)
            if sample(body, SWEEP_AGE) is not None:
                break
            if time.monotonic() - warm_started > 900:
                raise RuntimeError("first sweep not complete in 15 minutes")
        warm = time.monotonic() - warm_started
        first_sweep = sample(body, SWEEP_DURATION) or 0.0
        assert sample(body, "ticketero_postgres_up") == 1.0, "exporter not connected"
        times = []
        last_age = sample(body, SWEEP_AGE) or 0.0
        steady_scrapes, sweep_scrapes = 0, 0.0
        # Timed scrapes, then on until the next sweep is complete (its age drops): the steady sweep's length.
        while True:
            took, body = timed_get(url)
            steady_scrapes += 1
            failed |= failed_collectors(body)
            if len(times) < scrapes:
                times.append(took)
            age = sample(body, SWEEP_AGE) or 0.0
            if age < last_age and not sweep_scrapes:
                sweep_scrapes = steady_scrapes
            last_age = age
            if len(times) >= scrapes and (sweep_scrapes or steady_scrapes >= max_sweep_scrapes):
                break
        rss, peak = rss_mb(ours.pid)
        per_collector = ", ".join(
            f"{name} {float(v) * 1000:.1f} ms"
            for name, v in re.findall(
                r'^ticketero_scrape_collector_duration_seconds\{collector="(\w+)"\} (\S+)$',
                body,
                re.MULTILINE,
            )
        )
    finally:
        ours.terminate()
        ours.wait(timeout=10)
    result = {
        "p50_ms": percentile(times, 50) * 1000,
        "p95_ms": percentile(times, 95) * 1000,
        "rss_mb": rss,
        "rss_peak_mb": peak,
        "first_sweep_s": first_sweep,
        "warm_scrapes": warm_scrapes,
        "warm_s": warm,
        "sweep_scrapes": sweep_scrapes,
        "failed": len(failed),
    }
    bound = (
        f"{sweep_scrapes:.0f} scrapes = {sweep_scrapes * SCRAPE_INTERVAL / 60:.0f} min at a {SCRAPE_INTERVAL:.0f} s interval"
        if sweep_scrapes
        else f"more than {steady_scrapes} scrapes (not measured)"
    )
    print(
        f"[{size:,} {schema}] ticketero-exporter p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms"
        f"  RSS {rss:.1f} MB (peak {peak:.1f} MB)  failed collectors: {sorted(failed) or 'none'}\n"
        f"[{size:,} {schema}]   first sweep {first_sweep:.1f} s ({warm_scrapes} back-to-back scrapes);"
        f" steady sweep: {bound}\n"
        f"[{size:,} {schema}]   last scrape per collector: {per_collector}",
        flush=True,
    )
    return result


def start_ours(dsn: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    env.update(EXPORTER_DATABASE_DSN=dsn, EXPORTER_AMQP_URL="", EXPORTER_HEALTH_URL="")
    process = subprocess.Popen(
        [sys.executable, "-m", "exporters", "--listen-port", str(port), "--log-level", "WARNING"],
        env=env,
        cwd=REPO,
    )
    return process, f"http://127.0.0.1:{port}/metrics"


def measure_paired(dsns: dict[int, str], scrapes: int, blocks: int = 4) -> dict[int, dict[str, float]]:
    """A primary-key-only exporter per size, all running, scraped in alternating blocks after their first sweep:
    every size under the same machine load, so the ratio between sizes is the history's doing, not the load's."""
    started = {size: start_ours(dsn) for size, dsn in dsns.items()}
    times: dict[int, list[float]] = {size: [] for size in dsns}
    failed: dict[int, set[str]] = {size: set() for size in dsns}
    try:
        for size, (_process, url) in started.items():
            failed[size] |= failed_collectors(wait_http(url))
            deadline = time.monotonic() + 900
            while True:
                _took, body = timed_get(url)
                failed[size] |= failed_collectors(body)
                if sample(body, SWEEP_AGE) is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("first sweep not complete in 15 minutes")
        for _block in range(blocks):
            for size, (_process, url) in started.items():
                for _ in range(scrapes // blocks):
                    took, body = timed_get(url)
                    times[size].append(took)
                    failed[size] |= failed_collectors(body)
    finally:
        for process, _url in started.values():
            process.terminate()
            process.wait(timeout=10)
    result = {}
    for size in dsns:
        result[size] = {
            "p50_ms": percentile(times[size], 50) * 1000,
            "p95_ms": percentile(times[size], 95) * 1000,
            "failed": len(failed[size]),
        }
        print(
            f"[{size:,} primary_keys_only, paired] ticketero-exporter p50 {result[size]['p50_ms']:6.1f} ms"
            f"  p95 {result[size]['p95_ms']:6.1f} ms  failed collectors: {sorted(failed[size]) or 'none'}",
            flush=True,
        )
    return result


def measure_reference(size: int, dsn: str, scrapes: int) -> dict[str, float]:
    port = free_port()
    ref = subprocess.Popen(
        [
            shutil.which("prometheus-postgres-exporter") or "prometheus-postgres-exporter",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--extend.query-path={REFERENCE_QUERIES}",
            "--log.level=warn",
        ],
        env=dict(os.environ, DATA_SOURCE_NAME=dsn + "?sslmode=disable"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_http(f"http://127.0.0.1:{port}/")  # the landing page: /metrics runs the plan's SQL
        timed_get(url, timeout=900)
        times, body = [], ""
        for _ in range(scrapes):
            took, body = timed_get(url, timeout=900)
            times.append(took)
        assert "ticketero_plan_tickets_completed" in body, "postgres_exporter did not run the plan's queries"
    finally:
        ref.terminate()
        ref.wait(timeout=10)
    result = {"p50_ms": percentile(times, 50) * 1000, "p95_ms": percentile(times, 95) * 1000}
    print(
        f"[{size:,} primary_keys_only] postgres_exporter  p50 {result['p50_ms']:6.1f} ms  p95 {result['p95_ms']:6.1f} ms"
        "  (plan SQL via --extend.query-path, default collectors on)",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated history sizes")
    parser.add_argument("--active", type=int, default=1_000, help="active tickets (default 1000)")
    parser.add_argument(
        "--many-active",
        type=int,
        default=10_000,
        help="active tickets of the last run per size (default 10000)",
    )
    parser.add_argument(
        "--scrapes", type=int, default=200, help="timed scrapes of this exporter (default 200)"
    )
    parser.add_argument("--reference-scrapes", type=int, default=5, help="timed scrapes of postgres_exporter")
    parser.add_argument(
        "--max-sweep-scrapes",
        type=int,
        default=6000,
        help="give up measuring the steady sweep after this many",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database built by an earlier --keep run"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench databases (default: dropped)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    load = os.getloadavg()
    print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    results: dict[tuple[int, str], dict[str, float]] = {}
    references: dict[int, dict[str, float]] = {}
    dsns: dict[int, str] = {}
    many = f"primary_keys_only, {args.many_active:,} active"
    try:
        for size in sizes:
            dsn = dsns[size] = build_database(size, args.active, args.reuse)
            results[(size, "primary_keys_only")] = measure_ours(
                size, "primary_keys_only", dsn, args.scrapes, args.max_sweep_scrapes
            )
            references[size] = measure_reference(size, dsn, args.reference_scrapes)
            with psycopg.connect(dsn, autocommit=True) as conn:
                started = time.monotonic()
                conn.execute(INDEXES.read_text())
                conn.execute("ANALYZE")
                print(
                    f"[{size:,}] recommended indexes built in {time.monotonic() - started:.0f} s", flush=True
                )
            results[(size, "indexed")] = measure_ours(
                size, "indexed", dsn, args.scrapes, args.max_sweep_scrapes
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                drop_recommended_indexes(conn)
        paired = measure_paired(dsns, args.scrapes) if len(sizes) > 1 else {}
        for size, dsn in dsns.items():
            with psycopg.connect(dsn, autocommit=True) as conn:
                add_active(conn, args.many_active - args.active)
            try:
                results[(size, many)] = measure_ours(size, many, dsn, args.scrapes, 0)
            finally:  # back to what --reuse expects
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(
                        "DELETE FROM outbox_message WHERE aggregate_id IN (SELECT id FROM ticket WHERE numero LIKE 'M%')"
                    )
                    conn.execute("DELETE FROM ticket WHERE numero LIKE 'M%'")
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                for size in sizes:
                    admin.execute(f'DROP DATABASE IF EXISTS "{database_name(size)}" WITH (FORCE)')
    print("\nsummary (ratio = this exporter's p95 / postgres_exporter's p95 on the same database, same run)")
    print(f"{'history':>11} {'schema':<36} {'p50 ms':>7} {'p95 ms':>7} {'ratio':>6} {'1st sweep s':>11}"
          f" {'sweep scrapes':>13} {'bound min':>9} {'RSS MB':>7}")  # fmt: skip
    for (size, schema), r in results.items():
        bound = f"{r['sweep_scrapes'] * SCRAPE_INTERVAL / 60:.0f}" if r["sweep_scrapes"] else "-"
        print(
            f"{size:>11,} {schema:<36} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f}"
            f" {r['p95_ms'] / references[size]['p95_ms']:6.3f} {r['first_sweep_s']:11.1f}"
            f" {r['sweep_scrapes']:13.0f} {bound:>9} {r['rss_mb']:7.1f}"
        )
    for size, ref in references.items():
        print(f"{size:>11,} {'postgres_exporter (plan SQL)':<36} {ref['p50_ms']:7.1f} {ref['p95_ms']:7.1f}")
    for size, r in paired.items():
        print(
            f"{size:>11,} {'primary_keys_only, paired':<36} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f}"
            f"   ({r['p95_ms'] / paired[sizes[0]]['p95_ms']:.2f}x the {sizes[0]:,} p95, same blocks of time)"
        )
    ok = True
    # The targets on the primary-key-only schema: from the paired run when there is one (every size under the
    # same load), else from the size's own run.
    pk = paired or {size: results[(size, "primary_keys_only")] for size in sizes}
    for size, r in pk.items():
        if size <= 1_000_000 and r["p95_ms"] > P95_TARGET_MS:
            print(f"MISSED: primary_keys_only p95 {r['p95_ms']:.1f} ms > {P95_TARGET_MS:.0f} ms at {size:,}")
            ok = False
        if size > sizes[0] and r["p95_ms"] > GROWTH_TARGET * pk[sizes[0]]["p95_ms"]:
            print(
                f"MISSED: primary_keys_only p95 at {size:,} is {r['p95_ms'] / pk[sizes[0]]['p95_ms']:.2f}x the {sizes[0]:,} one"
            )
            ok = False
        if r["failed"]:
            print(f"MISSED: a collector failed at {size:,} (paired)")
            ok = False
    for (size, schema), r in results.items():
        if r["failed"]:
            print(f"MISSED: a collector failed at {size:,} {schema}")
            ok = False
        if r["rss_mb"] > RSS_TARGET_MB:
            print(f"MISSED: RSS {r['rss_mb']:.1f} MB > {RSS_TARGET_MB:.0f} MB at {size:,} {schema}")
            ok = False
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
