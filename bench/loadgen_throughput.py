"""Load generator throughput, HTTPS cost and open-model accuracy against nginx, in ONE run.

The target is Debian's nginx (one worker, pinned to the other core) answering a fixed small JSON body over
http and https (its certificate signed by a private CA made for the run). Each contender runs alone,
pinned to one core (taskset), with the same number of connections:

  hey (Go) and wrk (C)        references; wrk shows how far the target itself goes
  Locust FastHttpUser         headless, wait_time = constant(0)   (pip install -e '.[bench]')
  a bare aiohttp loop         N tasks: request, read, repeat
  this generator              closed model, every metric on: its /metrics endpoint is served and scraped
                              every second during the run, HdrHistograms and counters recorded

Two cases: GET, and POST with a JSON body (the case the targets are judged on); and this generator's
POST over https against the same over http. Rounds interleave the contenders, rotating who goes first,
so that a noisy neighbour on a shared machine hits all of them alike; the best round of each counts.

For each round the kernel's schedstat says how the contender spent the load: on a CPU, or runnable but
waiting for one (another process held its core). "req/s per busy core" divides by the first, which
compares the clients' efficiency even when a shared machine starves all of them; the targets are judged
on plain req/s.

Then the open model's timing accuracy (achieved rate within 1 % of the target, schedule lag p99 < 5 ms,
nothing dropped) at rates up to 10,000/s, and the dispatch spread of a 50-request spike.

    .venv/bin/python bench/loadgen_throughput.py [--duration 5] [--connections 50] [--profile]

--profile records the generator's POST case with py-spy and prints where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nfr.processes import free_port  # noqa: E402
from tests.support.nginx import running_nginx  # noqa: E402
from tests.support.tls import private_ca  # noqa: E402

PYTHON = sys.executable
GET_PATH = "/actuator/health"
POST_PATH = "/api/tickets"
POST_BODY = {"nationalId": "123456789012", "telefono": "+56912345678", "branchOffice": "Centro", "queueType": "CAJA"}  # fmt: skip
POST_BYTES = json.dumps(POST_BODY).encode()

TARGETS = {"vs_locust": 2.5, "vs_hey": 1.0, "https_vs_http": 0.7}
OPEN_RATES = (1000, 3000, 10000)

SERVERS = """
  server {{
    listen 127.0.0.1:{http_port} backlog=4096;
    listen 127.0.0.1:{https_port} ssl backlog=4096;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_session_cache shared:SSL:1m;
    location / {{ default_type application/json; return 200 '{{"status":"UP"}}'; }}
  }}
"""


def pinned(core: int | None, command: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


def _rate(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no figure in the output: {text[-1500:]}")
    return float(match.group(1))


# -- running a contender: its output, and how busy its core was --------------------------------------------

WINDOW_START = 1.5  # seconds after start: every contender's start-up (Python imports) is over by then


def _cpu_seconds(pid: int) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one), summed over the process's threads."""
    running = waiting = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                on_cpu, on_queue, _ = (task / "schedstat").read_text().split()
                running += int(on_cpu)
                waiting += int(on_queue)
    except OSError:
        return None
    return running / 1e9, waiting / 1e9


def run_watched(
    command: list[str],
    duration: float,
    env: dict[str, str] | None = None,
    during: Callable[[subprocess.Popen], None] | None = None,
) -> tuple[str, str, Busy]:
    """Run ``command``; returns stdout, stderr and, between WINDOW_START and ``duration`` seconds after
    start (the load, without start-up and summary), the share of the time its threads ran on a CPU and the
    share they were runnable but waited for one (the kernel's schedstat). Running + waiting near 100 %:
    the contender was CPU-bound (and the machine's other work took part of its core); well below:
    it was waiting for the target."""
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started = time.perf_counter()
    samples: list[tuple[float, tuple[float, float]]] = []

    def sample() -> None:
        while process.poll() is None:
            cpu = _cpu_seconds(process.pid)
            if cpu is not None:
                samples.append((time.perf_counter() - started, cpu))
            time.sleep(0.05)

    threads = [threading.Thread(target=sample, daemon=True)]
    if during is not None:
        threads.append(threading.Thread(target=during, args=(process,), daemon=True))
    for thread in threads:
        thread.start()
    stdout, stderr = process.communicate(timeout=duration + 120)
    for thread in threads:
        thread.join(5)
    window = [(at, cpu) for at, cpu in samples if WINDOW_START <= at <= duration]
    if len(window) < 2 or window[-1][0] - window[0][0] < 0.5:
        return stdout, stderr, (float("nan"), float("nan"))
    (first_at, first), (last_at, last) = window[0], window[-1]
    span = last_at - first_at
    return stdout, stderr, ((last[0] - first[0]) / span, (last[1] - first[1]) / span)


Busy = tuple[float, float]  # shares of the load's wall time: on a CPU, runnable but waiting for a CPU
Figure = tuple[float, Busy]  # requests per second, and how busy the contender was


# -- references: hey (Go) and wrk (C) -----------------------------------------------------------------------


def hey(url: str, post: bool, connections: int, duration: float, core: int | None) -> Figure | None:
    if shutil.which("hey") is None:
        return None
    command = ["hey", "-z", f"{duration:g}s", "-c", str(connections)]
    if post:
        command += ["-m", "POST", "-T", "application/json", "-d", POST_BYTES.decode()]
    # GOMAXPROCS follows the affinity mask, so hey really runs on the one core it is given
    output, _, busy = run_watched(pinned(core, [*command, url]), duration)
    return _rate(r"Requests/sec:\s+([\d.]+)", output), busy


def wrk(
    url: str, post: bool, connections: int, duration: float, core: int | None, work: Path
) -> Figure | None:
    if shutil.which("wrk") is None:
        return None
    command = ["wrk", "-t1", "-c", str(connections), "-d", f"{duration:g}s"]
    if post:
        script = work / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = '{POST_BYTES.decode()}'\n"
        )
        command += ["-s", str(script)]
    output, _, busy = run_watched(pinned(core, [*command, url]), duration)
    return _rate(r"Requests/sec:\s+([\d.]+)", output), busy


# -- a bare aiohttp loop ------------------------------------------------------------------------------------


async def _bare_loop(url: str, post: bool, connections: int, duration: float) -> tuple[int, float]:
    import aiohttp

    count = 0
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + duration

        async def user() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                if post:
                    async with session.post(url, data=POST_BYTES, headers=headers) as response:
                        await response.read()
                else:
                    async with session.get(url) as response:
                        await response.read()
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(connections)))
        return count, time.perf_counter() - started


def bare(url: str, post: bool, connections: int, duration: float, core: int | None) -> Figure:
    command = [PYTHON, __file__, "--bare-worker", url, "--connections", str(connections)]
    command += ["--duration", str(duration)] + (["--bare-post"] if post else [])
    output, _, busy = run_watched(pinned(core, command), duration)
    count, elapsed = json.loads(output.strip().splitlines()[-1])
    return count / elapsed, busy


# -- Locust FastHttpUser ------------------------------------------------------------------------------------

LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def one(self):
        %s
"""


def locust(
    url: str, post: bool, connections: int, duration: float, core: int | None, work: Path
) -> Figure | None:
    executable = Path(PYTHON).with_name("locust")
    if not executable.exists():
        return None
    locustfile = work / "locustfile.py"
    call = (
        f"self.client.post({POST_PATH!r}, json={POST_BODY!r})" if post else f"self.client.get({GET_PATH!r})"
    )
    locustfile.write_text(LOCUSTFILE % call)
    prefix = work / "locust"
    command = [
        str(executable), "-f", str(locustfile), "--headless", "--host", url,
        "-u", str(connections), "-r", str(connections * 100), "-t", f"{int(duration)}s",
        "--csv", str(prefix), "--only-summary", "--loglevel", "ERROR",
    ]  # fmt: skip
    _, _, busy = run_watched(pinned(core, command), duration)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return float(row["Requests/s"]), busy
    return None


# -- this generator -----------------------------------------------------------------------------------------


def _scrape(port: int) -> bytes:
    with (
        contextlib.suppress(OSError),
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as answer,
    ):
        return bytes(answer.read())
    return b""


def loadgen(
    scenario_text: str,
    core: int | None,
    work: Path,
    name: str,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
    duration: float = 0.0,
) -> dict:
    """Run this generator on ``scenario_text`` with its metrics endpoint scraped every second, as
    Prometheus would; ``profile`` attaches py-spy for the load (not the start-up) and writes its stacks."""
    scenario = work / f"{name}.yml"
    scenario.write_text(textwrap.dedent(scenario_text))
    summary = work / f"{name}.json"
    summary.unlink(missing_ok=True)
    port = free_port()
    command = [PYTHON, "-m", "loadgen", "run", str(scenario), "--quiet", "--summary-json", str(summary)]
    command += ["--metrics-port", str(port)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")} | (env or {})
    scrapes = {"count": 0}

    def watch(process: subprocess.Popen) -> None:
        profiled = profile is None
        while process.poll() is None:
            text = _scrape(port)
            if b"loadgen_requests_total" in text:
                scrapes["count"] += 1
            if not profiled and b"loadgen_run_active 1.0" in text:
                profiled = True
                py_spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
                subprocess.run(
                    [py_spy, "record", "--pid", str(process.pid), "--rate", "250", "--format", "raw",
                     "--duration", str(max(1, int(duration) - 1)), "--output", str(profile), "--nonblocking"],
                    capture_output=True, check=False,
                )  # fmt: skip
                continue
            time.sleep(1.0 if profiled else 0.1)

    _, stderr, busy = run_watched(pinned(core, command), duration, environment, watch)
    if not summary.exists():
        raise RuntimeError(f"loadgen failed: {stderr[-2000:]}")
    load = json.loads(summary.read_text())["load"]
    load["scrapes"] = scrapes["count"]
    load["busy"] = busy
    return load


def loadgen_closed(
    url: str, post: bool, connections: int, duration: float, core: int | None, work: Path, env: dict[str, str]
) -> Figure:
    if post:
        request = f"{{endpoint: create, method: POST, path: {POST_PATH}, body: {json.dumps(POST_BODY)}}}"
    else:
        request = f"{{endpoint: health, path: {GET_PATH}}}"
    scenario = f"""
        target: {url}
        duration: {duration}s
        workload: {{model: closed, vus: {connections}}}
        requests: [{request}]
        """
    load = loadgen(scenario, core, work, "closed", env, duration=duration)
    if load["total"]["failures"] or not load["scrapes"]:
        raise RuntimeError(
            f"loadgen run not clean: {load['total']['failures']} failures, {load['scrapes']} scrapes"
        )
    return load["total"]["requests"] / load["elapsed_seconds"], load["busy"]


def open_model(url: str, rate: int, duration: float, core: int | None, work: Path) -> dict:
    load = loadgen(
        f"""
        target: {url}
        duration: {duration}s
        workload: {{model: open, rate: {rate}, max_in_flight: 2000}}
        requests: [{{endpoint: create, method: POST, path: {POST_PATH}, body: {json.dumps(POST_BODY)}}}]
        """,
        core,
        work,
        f"open{rate}",
        duration=duration,
    )
    planned = rate * duration
    return {
        "rate": rate,
        "planned": planned,
        "sent": load["total"]["requests"],
        "dropped": load["total"]["dropped"],
        # achieved over the planned window: a generator that falls behind stretches its run
        "achieved_rate": load["total"]["requests"] / max(load["elapsed_seconds"], duration),
        "lag_p99_ms": load["schedule_lag"]["p99"] * 1000,
        "lag_max_ms": load["schedule_lag"]["max"] * 1000,
        "p99_ms": load["total"]["latency"]["p99"] * 1000,
    }


def spike(url: str, core: int | None, work: Path) -> dict:
    load = loadgen(
        f"""
        target: {url}
        workload: {{model: burst, requests: 50, within: 0s}}
        requests: [{{endpoint: health, path: {GET_PATH}}}]
        """,
        core,
        work,
        "spike",
    )
    return {"requests": load["total"]["requests"], "dispatch_spread_ms": load["schedule_lag"]["max"] * 1000}


def cpu_pressure() -> str:
    """Linux PSI: the share of time some runnable task waited for a CPU (avg over 60 s)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                return line.split()[2].split("=")[1] + " %"
    return "n/a"


def print_profile(raw: Path, top: int = 18) -> list[tuple[str, float]]:
    """Self time per function from py-spy's raw (collapsed) stacks, largest first."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        own[re.sub(r" \((?:/[^ ]*/)?(?:site-packages/|lib/python3[.\d]*/)?", " (", stack.split(";")[-1])] += (
            int(count)
        )
    rows = [(frame, count / total) for frame, count in own.most_common(top)]
    print(f"profile of the generator's POST case (py-spy, {total} samples, self time):")
    for frame, share in rows:
        print(f"  {share * 100:5.1f} %  {frame}")
    return rows


# -- the run ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per contender and round")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--open-duration", type=float, default=5.0, help="seconds per open-model rate")
    parser.add_argument("--client-core", type=int, default=0)
    parser.add_argument("--target-core", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of the generator's POST case")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--bare-worker", help=argparse.SUPPRESS)  # internal: run the aiohttp loop here
    parser.add_argument("--bare-post", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        count, elapsed = asyncio.run(
            _bare_loop(args.bare_worker, args.bare_post, args.connections, args.duration)
        )
        print(json.dumps([count, elapsed]))
        return 0
    cores = os.cpu_count() or 1
    client_core = args.client_core if cores > 1 else None
    target_core = args.target_core if cores > 1 else None
    figures: dict = {"connections": args.connections, "duration": args.duration, "cores": cores}
    figures["load_before"] = os.getloadavg()
    figures["cpu_pressure_before"] = cpu_pressure()

    with tempfile.TemporaryDirectory(prefix="loadgen-bench-") as directory:
        work = Path(directory)
        tls = private_ca(work / "tls")
        http_port, https_port = free_port(), free_port()
        servers = SERVERS.format(http_port=http_port, https_port=https_port, cert=tls.cert, key=tls.key)
        http, https = f"http://127.0.0.1:{http_port}", f"https://127.0.0.1:{https_port}"
        trust = {"SSL_CERT_FILE": str(tls.ca)}
        nginx_prefix = ("taskset", "-c", str(target_core)) if target_core is not None else ()
        with running_nginx(work / "nginx", servers, (http_port, https_port), nginx_prefix):
            print(
                f"target nginx (1 worker) on core {target_core}; contenders on core {client_core}; "
                f"{args.connections} connections; {args.duration:g}s each, best of {args.repeat} interleaved rounds"
            )
            d, c, core = args.duration, args.connections, client_core
            cases: dict[str, dict[str, Callable[[], Figure | None]]] = {
                "GET": {
                    "wrk (C)": lambda: wrk(http + GET_PATH, False, c, d, core, work),
                    "hey (Go)": lambda: hey(http + GET_PATH, False, c, d, core),
                    "locust FastHttpUser": lambda: locust(http, False, c, d, core, work),
                    "bare aiohttp loop": lambda: bare(http + GET_PATH, False, c, d, core),
                    "loadgen": lambda: loadgen_closed(http, False, c, d, core, work, trust),
                },
                "POST with a JSON body": {
                    "wrk (C)": lambda: wrk(http + POST_PATH, True, c, d, core, work),
                    "hey (Go)": lambda: hey(http + POST_PATH, True, c, d, core),
                    "locust FastHttpUser": lambda: locust(http, True, c, d, core, work),
                    "bare aiohttp loop": lambda: bare(http + POST_PATH, True, c, d, core),
                    "loadgen": lambda: loadgen_closed(http, True, c, d, core, work, trust),
                    "loadgen https": lambda: loadgen_closed(https, True, c, d, core, work, trust),
                },
            }
            for case, contenders in cases.items():
                samples: dict[str, list[Figure]] = {name: [] for name in contenders}
                names = list(contenders)
                for round_index in range(args.repeat):
                    order = names[round_index % len(names) :] + names[: round_index % len(names)]
                    for name in order:
                        figure = contenders[name]()
                        if figure is not None:
                            samples[name].append(figure)
                print(
                    f"{case}: best req/s; req/s per busy core; each round: req/s "
                    "(share of the load on a CPU / runnable but waiting for a CPU)"
                )
                best: dict[str, float | None] = {}
                per_core: dict[str, float | None] = {}
                for name, figures_of in samples.items():
                    if not figures_of:
                        best[name] = per_core[name] = None
                        print(f"  {name:<22} not installed (scripts/bootstrap.sh --with-bench)")
                        continue
                    rate = max(r for r, _ in figures_of)
                    best[name] = rate
                    capacities = [
                        r / on_cpu for r, (on_cpu, _) in figures_of if on_cpu == on_cpu and on_cpu > 0.05
                    ]
                    per_core[name] = max(capacities) if capacities else None
                    rounds = ", ".join(
                        f"{r:.0f} ({on_cpu * 100:.0f}/{waiting * 100:.0f} %)"
                        for r, (on_cpu, waiting) in figures_of
                    )
                    capacity = f"{per_core[name]:8.0f}" if per_core[name] else "     n/a"
                    print(f"  {name:<22} {rate:8.0f}  {capacity}   rounds: {rounds}")
                figures[case] = {"best": best, "per_busy_core": per_core, "samples": samples}
                ratios = figures[case]["ratios"] = {}
                ratios_per_core = figures[case]["ratios_per_busy_core"] = {}
                print("  ratio loadgen / reference          wall   per busy core")
                for label, reference, target in (
                    ("vs_locust", "locust FastHttpUser", TARGETS["vs_locust"]),
                    ("vs_hey", "hey (Go)", TARGETS["vs_hey"]),
                    ("vs_bare_aiohttp", "bare aiohttp loop", None),
                    ("vs_wrk", "wrk (C)", None),
                ):
                    if not best.get(reference) or not best.get("loadgen"):
                        continue
                    ratios[label] = best["loadgen"] / best[reference]  # type: ignore[operator]
                    line = f"  {reference:<32} {ratios[label]:5.2f}"
                    if per_core.get(reference) and per_core.get("loadgen"):
                        ratios_per_core[label] = per_core["loadgen"] / per_core[reference]  # type: ignore[operator]
                        line += f"   {ratios_per_core[label]:5.2f}"
                    if target and case != "GET":
                        line += f"   (target >= {target}: {'met' if ratios[label] >= target else 'MISSED'} on wall)"
                    print(line)
                if best.get("loadgen https") and best.get("loadgen"):
                    ratios["https_vs_http"] = best["loadgen https"] / best["loadgen"]  # type: ignore[operator]
                    line = f"  loadgen https / http             {ratios['https_vs_http']:5.2f}"
                    if per_core.get("loadgen https") and per_core.get("loadgen"):
                        ratios_per_core["https_vs_http"] = per_core["loadgen https"] / per_core["loadgen"]  # type: ignore[operator]
                        line += f"   {ratios_per_core['https_vs_http']:5.2f}"
                    met = "met" if ratios["https_vs_http"] >= TARGETS["https_vs_http"] else "MISSED"
                    print(line + f"   (target >= {TARGETS['https_vs_http']}: {met} on wall)")

            print(
                f"open model, POST, {args.open_duration:g}s per rate, best of {args.repeat} "
                "(target: within 1 % of the rate, schedule lag p99 < 5 ms, nothing dropped):"
            )
            figures["open"] = []
            for rate in OPEN_RATES:
                rows = []
                for _ in range(args.repeat):
                    row = open_model(http, rate, args.open_duration, client_core, work)
                    row["rate_error"] = row["achieved_rate"] / rate - 1.0
                    row["ok"] = (
                        abs(row["rate_error"]) <= 0.01 and row["lag_p99_ms"] < 5.0 and row["dropped"] == 0
                    )
                    rows.append(row)
                row = min(rows, key=lambda item: (not item["ok"], item["lag_p99_ms"]))
                row["lag_p99_ms_rounds"] = [item["lag_p99_ms"] for item in rows]
                figures["open"].append(row)
                print(
                    f"  {rate:6d}/s: sent {row['sent']:.0f}/{row['planned']:.0f}, achieved {row['achieved_rate']:8.1f}/s "
                    f"({row['rate_error'] * 100:+.2f} %), lag p99 {row['lag_p99_ms']:.2f} ms max {row['lag_max_ms']:.1f} ms "
                    f"(rounds: {', '.join(f'{lag:.2f}' for lag in row['lag_p99_ms_rounds'])}), "
                    f"dropped {row['dropped']}, latency p99 {row['p99_ms']:.2f} ms  {'ok' if row['ok'] else 'MISSED'}"
                )
            spikes = [spike(http, client_core, work) for _ in range(args.repeat)]
            figures["spike"] = min(spikes, key=lambda item: item["dispatch_spread_ms"])
            print(
                f"spike: {figures['spike']['requests']} requests dispatched within "
                f"{figures['spike']['dispatch_spread_ms']:.2f} ms (target < 5 ms)"
            )
            if args.profile:
                raw = work / "profile.txt"
                request = (
                    f"{{endpoint: create, method: POST, path: {POST_PATH}, body: {json.dumps(POST_BODY)}}}"
                )
                loadgen(
                    f"""
                    target: {http}
                    duration: {args.duration}s
                    workload: {{model: closed, vus: {args.connections}}}
                    requests: [{request}]
                    """,
                    client_core,
                    work,
                    "profiled",
                    profile=raw,
                    duration=args.duration,
                )
                figures["profile"] = print_profile(raw)
    load_average = os.getloadavg()
    figures["load_average"] = load_average
    figures["cpu_pressure"] = cpu_pressure()
    print(
        f"machine load average (1 min) before {figures['load_before'][0]:.2f}, after {load_average[0]:.2f} "
        f"on {cores} cores; CPU pressure (some, 60 s) before {figures['cpu_pressure_before']}, after "
        f"{figures['cpu_pressure']} (shared machine: other work competes for the same cores)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
