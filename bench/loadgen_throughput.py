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
import resource
import shutil
import socket
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(core: int | None, command: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


def _rate(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"no figure in the output: {text[-1500:]}")
    return float(match.group(1))


# -- references: hey (Go) and wrk (C) -----------------------------------------------------------------------


def hey(url: str, post: bool, connections: int, duration: float, core: int | None) -> float | None:
    if shutil.which("hey") is None:
        return None
    command = ["hey", "-z", f"{duration:g}s", "-c", str(connections)]
    if post:
        command += ["-m", "POST", "-T", "application/json", "-d", POST_BYTES.decode()]
    # GOMAXPROCS follows the affinity mask, so hey really runs on the one core it is given
    output = subprocess.run(pinned(core, [*command, url]), capture_output=True, text=True, check=True).stdout
    return _rate(r"Requests/sec:\s+([\d.]+)", output)


def wrk(
    url: str, post: bool, connections: int, duration: float, core: int | None, work: Path
) -> float | None:
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
    output = subprocess.run(pinned(core, [*command, url]), capture_output=True, text=True, check=True).stdout
    return _rate(r"Requests/sec:\s+([\d.]+)", output)


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


def bare(url: str, post: bool, connections: int, duration: float, core: int | None) -> float:
    command = [PYTHON, __file__, "--bare-worker", url, "--connections", str(connections)]
    command += ["--duration", str(duration)] + (["--bare-post"] if post else [])
    output = subprocess.run(pinned(core, command), capture_output=True, text=True, check=True).stdout
    count, elapsed = json.loads(output.strip().splitlines()[-1])
    return count / elapsed


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
) -> float | None:
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
    subprocess.run(pinned(core, command), capture_output=True, text=True, timeout=duration + 60)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return float(row["Requests/s"])
    return None


# -- this generator -----------------------------------------------------------------------------------------


def _scrape_while(process: subprocess.Popen, port: int, counter: dict[str, int]) -> None:
    """Scrape /metrics every second, as Prometheus would, while the run lasts."""
    while process.poll() is None:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as answer,
        ):
            if b"loadgen_requests_total" in answer.read():
                counter["scrapes"] += 1
        time.sleep(1.0)


def loadgen(
    scenario_text: str,
    core: int | None,
    work: Path,
    name: str,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
) -> dict:
    scenario = work / f"{name}.yml"
    scenario.write_text(textwrap.dedent(scenario_text))
    summary = work / f"{name}.json"
    summary.unlink(missing_ok=True)
    port = free_port()
    command = [PYTHON, "-m", "loadgen", "run", str(scenario), "--quiet", "--summary-json", str(summary)]
    command += ["--metrics-port", str(port)]
    if profile is not None:
        py_spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
        command = [
            py_spy,
            "record",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(profile),
            "--",
            *command,
        ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOADGEN_")} | (env or {})
    process = subprocess.Popen(
        pinned(core, command), cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    counter = {"scrapes": 0}
    scraper = threading.Thread(target=_scrape_while, args=(process, port, counter), daemon=True)
    scraper.start()
    _, stderr = process.communicate(timeout=120)
    scraper.join(5)
    if not summary.exists():
        raise RuntimeError(f"loadgen failed ({process.returncode}): {stderr.decode()[-2000:]}")
    load = json.loads(summary.read_text())["load"]
    load["scrapes"] = counter["scrapes"]
    return load


def loadgen_closed(
    url: str, post: bool, connections: int, duration: float, core: int | None, work: Path, env: dict[str, str]
) -> float:
    if post:
        request = f"{{endpoint: create, method: POST, path: {POST_PATH}, body: {json.dumps(POST_BODY)}}}"
    else:
        request = f"{{endpoint: health, path: {GET_PATH}}}"
    load = loadgen(
        f"""
        target: {url}
        duration: {duration}s
        workload: {{model: closed, vus: {connections}}}
        requests: [{request}]
        """,
        core,
        work,
        "closed",
        env,
    )
    if load["total"]["failures"] or not load["scrapes"]:
        raise RuntimeError(
            f"loadgen run not clean: {load['total']['failures']} failures, {load['scrapes']} scrapes"
        )
    return load["total"]["requests"] / load["elapsed_seconds"]


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


def with_cpu_share(contender: Callable[[], float | None]) -> tuple[float | None, float]:
    """The contender's figure, and the CPU time its processes got as a share of the wall time (start-up
    included). On a shared machine a share well below 100 % means others took the core meanwhile."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    value = contender()
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - started
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return value, cpu / wall if wall > 0 else 0.0


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
            cases: dict[str, dict[str, Callable[[], float | None]]] = {
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
                samples: dict[str, list[float]] = {name: [] for name in contenders}
                shares: dict[str, list[float]] = {name: [] for name in contenders}
                names = list(contenders)
                for round_index in range(args.repeat):
                    order = names[round_index % len(names) :] + names[: round_index % len(names)]
                    for name in order:
                        value, share = with_cpu_share(contenders[name])
                        if value is not None:
                            samples[name].append(value)
                            shares[name].append(share)
                print(f"{case}:")
                best: dict[str, float | None] = {}
                for name, values in samples.items():
                    best[name] = max(values) if values else None
                    if values:
                        top = values.index(max(values))
                        rounds = ", ".join(f"{value:.0f}" for value in values)
                        print(
                            f"  {name:<22} best {values[top]:9.0f} req/s (cpu {shares[name][top] * 100:3.0f} %)"
                            f"   rounds: {rounds}"
                        )
                    else:
                        print(f"  {name:<22} not installed (scripts/bootstrap.sh --with-bench)")
                figures[case] = {"best": best, "samples": samples, "cpu_share": shares}
                ours = best["loadgen"] or 0.0
                ratios = figures[case]["ratios"] = {}
                for label, reference, target in (
                    ("vs_locust", "locust FastHttpUser", TARGETS["vs_locust"]),
                    ("vs_hey", "hey (Go)", TARGETS["vs_hey"]),
                    ("vs_bare_aiohttp", "bare aiohttp loop", None),
                    ("vs_wrk", "wrk (C)", None),
                ):
                    if best.get(reference):
                        ratios[label] = ours / best[reference]  # type: ignore[operator]
                        verdict = f"(target >= {target})" if target and case != "GET" else ""
                        if verdict:
                            verdict += " met" if ratios[label] >= target else " MISSED"  # type: ignore[operator]
                        print(f"  ratio loadgen / {reference:<20} {ratios[label]:5.2f}  {verdict}")
                if best.get("loadgen https"):
                    ratios["https_vs_http"] = best["loadgen https"] / ours  # type: ignore[operator]
                    met = "met" if ratios["https_vs_http"] >= TARGETS["https_vs_http"] else "MISSED"
                    print(
                        f"  ratio loadgen https / http           {ratios['https_vs_http']:5.2f}  "
                        f"(target >= {TARGETS['https_vs_http']}) {met}"
                    )

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
