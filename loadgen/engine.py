"""The load phase: closed (virtual users), open (arrival rate, constant or ramping), burst and contention.

Open model and coordinated omission: every arrival has an intended send time from the schedule; its
latency is measured from that time, not from when the generator got round to sending it. If the service
stalls and the generator falls behind, the wait shows up in the percentiles instead of being hidden. The
generator keeps at most ``max_in_flight`` requests outstanding; an arrival that finds them all busy waits in
a backlog of ``max_backlog`` (0 by default) and is otherwise dropped and counted.

An unexpected exception inside the engine or a recorder is never absorbed: it is logged, counted in
``loadgen_internal_errors_total{where}``, stops the load and fails the run (:class:`InternalError`), since
figures recorded by broken code cannot be trusted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp

from loadgen.http import FastHTTPClient
from loadgen.metrics import LoadgenMetrics
from loadgen.model import RequestSpec, Scenario, Stage, UserClass
from loadgen.stats import EndpointStats, Recorder, StageStats
from loadgen.templates import ClassPicker, RequestFactory

log = logging.getLogger(__name__)

NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)
JSON_HEADERS = {"Content-Type": "application/json"}
DEFAULT_OPEN_CONNECTIONS = 256


class InternalError(Exception):
    """An unexpected exception inside the load engine or a recorder: the run's figures cannot be trusted."""


def error_source(error: BaseException) -> str:
    """``recorder`` when a recorder's method was running where ``error`` was raised, else ``engine``."""
    frame = error.__traceback__
    while frame is not None:
        if isinstance(frame.tb_frame.f_locals.get("self"), Recorder | StageStats | EndpointStats):
            return "recorder"
        frame = frame.tb_next
    return "engine"


class InternalErrors:
    """Unexpected exceptions of one process's load: the first is logged with its traceback, every one is
    counted in ``loadgen_internal_errors_total{where}`` and kept for the result."""

    def __init__(self, metrics: LoadgenMetrics | None) -> None:
        self.metrics = metrics
        self.errors: list[str] = []

    def report(self, error: BaseException) -> None:
        where = error_source(error)
        description = f"{where}: {type(error).__name__}: {error}"
        if not self.errors:
            log.error("unexpected error in the load %s; stopping the load", where, exc_info=error)
        self.errors.append(description)
        if self.metrics is not None:
            self.metrics.internal_errors.labels(where).inc()

    def check(self) -> None:
        """Raise :class:`InternalError` if anything was reported."""
        if self.errors:
            raise InternalError(
                f"{len(self.errors)} unexpected error(s) inside the load generator; the first: {self.errors[0]}"
            )


@dataclass
class Arrival:
    intended: float
    spec: RequestSpec
    stage: int | None = None


def constant_schedule(rate: float, duration: float) -> Iterator[float]:
    """Offsets (s) of arrivals at a fixed rate for ``duration`` seconds."""
    count = int(math.floor(rate * duration + 1e-9))
    for index in range(count):
        yield index / rate


def ramping_schedule(start_rate: float, stages: tuple[Stage, ...]) -> Iterator[float]:
    """Offsets of arrivals whose rate changes linearly within each stage (k6's ramping-arrival-rate).

    The number of arrivals by time t is the integral of the rate; arrival k happens where that integral
    reaches k, found per stage by solving r0·t + (r1−r0)/(2d)·t² = k.
    """
    offset = 0.0
    base = 0.0  # arrivals due by the start of the stage (the integral so far)
    k = 0
    rate = start_rate
    for stage in stages:
        r0, r1, d = rate, stage.target, stage.duration
        expected = (r0 + r1) / 2.0 * d
        while d > 0 and k < base + expected - 1e-9:
            local = k - base
            if abs(r1 - r0) < 1e-12:
                t = local / r0
            else:
                a = (r1 - r0) / (2.0 * d)
                t = (-r0 + math.sqrt(max(r0 * r0 + 4.0 * a * local, 0.0))) / (2.0 * a)
            yield offset + min(max(t, 0.0), d)
            k += 1
        base += expected
        offset += d
        rate = r1


def burst_schedule(requests: int, within: float) -> Iterator[float]:
    """``requests`` arrivals spread evenly over ``within`` seconds (all at once when within is 0)."""
    for index in range(requests):
        yield within * index / requests if within > 0 else 0.0


class LoadEngine:
    """Runs the load phase of one scenario in this process until its schedule, duration or count ends."""

    def __init__(
        self,
        scenario: Scenario,
        recorder: Recorder,
        process_index: int = 0,
        rng: random.Random | None = None,
        internal_errors: InternalErrors | None = None,
    ) -> None:
        self.scenario = scenario
        self.recorder = recorder
        self.internal_errors = internal_errors or InternalErrors(recorder.metrics)
        self.rng = rng or random.Random()
        self.factory = RequestFactory(scenario.target, scenario.ticket, process_index, self.rng)
        self.picker = ClassPicker(scenario.classes, self.rng)
        self.stopping = asyncio.Event()
        self._issued = 0
        self._session: aiohttp.ClientSession | None = None
        self._fast: FastHTTPClient | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._stats = {}
        for user_class in scenario.classes:
            for spec in user_class.requests:
                self._stats[spec.endpoint] = recorder.endpoint(spec.endpoint)
        # get_ticket needs a ticket number; until a create has answered, a get becomes a create.
        self._first_create = RequestSpec("create_ticket", method="POST", path="/api/tickets", expect=(201,))

    def stop(self) -> None:
        """Ask the load to end early (Ctrl-C, a failed action); in-flight requests finish or time out."""
        self.stopping.set()

    def _internal_error(self, error: Exception) -> None:
        """Count and log an unexpected exception and end the load; run() then raises InternalError."""
        self.internal_errors.report(error)
        self.stopping.set()

    # -- one request ------------------------------------------------------------------------------------

    def _timeout(self, spec: RequestSpec) -> aiohttp.ClientTimeout:
        seconds = spec.timeout or self.scenario.timeout
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def send(self, spec: RequestSpec, intended: float | None = None, body: bytes | None = None) -> int:
        """Send one request and record it; returns the HTTP status (0 when no answer came)."""
        if spec.endpoint == "get_ticket" and not self.factory.known_numeros and "{numero}" in spec.path:
            spec = self._first_create
            if "create_ticket" not in self._stats:
                self._stats["create_ticket"] = self.recorder.endpoint("create_ticket")
        method, path, built_body = self.factory.build(spec)
        if body is not None:
            built_body = body
        recorder = self.recorder
        sent = time.perf_counter()
        if intended is None:
            intended = sent
        recorder.begin()
        status = 0
        payload = b""
        fast = self._fast
        try:
            if fast is not None:
                status, payload = await fast.request(
                    method, path, built_body, spec.timeout or self.scenario.timeout
                )
            else:
                assert self._session is not None
                async with self._session.request(
                    method,
                    self.scenario.target + path,
                    data=built_body,
                    headers=JSON_HEADERS if built_body is not None else None,
                    timeout=self._timeout(spec),
                ) as response:
                    payload = await response.read()
                    status = response.status
        except NETWORK_ERRORS:
            status = 0
        done = time.perf_counter()
        recorder.complete(self._stats[spec.endpoint], status, status in spec.expect, intended, sent, done)
        if status == 201:
            self.factory.remember(spec, status, payload)
        return status

    def _budget(self) -> bool:
        """True while the run may issue another request (count bound)."""
        limit = self.scenario.max_requests
        if limit is not None and self._issued >= limit:
            return False
        self._issued += 1
        return True

    # -- models -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        # What exists before the load (modules, the scenario, the metrics) is never garbage. Frozen, the
        # collector stops walking it: a full collection during the load took ~30 ms, a hole in the
        # open model's schedule that showed as lag in its p99.
        gc.collect()
        gc.freeze()
        try:
            await self._run()
        finally:
            gc.unfreeze()

    async def _run(self) -> None:
        workload = self.scenario.workload
        if workload.model == "closed":
            limit = workload.connections or workload.vus
        elif workload.model == "contention":
            limit = workload.connections or workload.clients
        else:
            # Bounded by default: if the service stalls, an unbounded pool would open a connection per queued
            # arrival, and connecting costs the generator more CPU than sending - it would fall further behind.
            limit = workload.connections or min(workload.max_in_flight, DEFAULT_OPEN_CONNECTIONS)
        if self.scenario.http_client == "fast":
            self._fast = FastHTTPClient(self.scenario.target, limit)
            try:
                await self._guarded_generate()
            finally:
                self._fast.close()
                self._fast = None
        else:
            connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=300)
            async with aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            ) as session:
                self._session = session
                try:
                    await self._guarded_generate()
                finally:
                    self._session = None
        self.internal_errors.check()

    async def _guarded_generate(self) -> None:
        try:
            await self._generate()
        except Exception as error:
            self._internal_error(error)

    async def _generate(self) -> None:
        workload = self.scenario.workload
        if workload.model == "closed":
            await self._closed()
        elif workload.model == "open":
            if workload.stages:
                schedule = ramping_schedule(workload.start_rate, workload.stages)
            else:
                schedule = constant_schedule(workload.rate, self.scenario.duration)
            await self._open(schedule)
        elif workload.model == "burst":
            await self._open(burst_schedule(workload.requests, workload.within))
        else:
            await self._contention()

    async def _closed(self) -> None:
        """Virtual users: send, wait for the answer, think, repeat — until duration or request count ends."""
        deadline = time.perf_counter() + self.scenario.duration
        users = self.picker.assign(self.scenario.workload.vus)
        await asyncio.gather(*(self._virtual_user(user_class, deadline) for user_class in users))

    async def _virtual_user(self, user_class: UserClass, deadline: float) -> None:
        think = user_class.think_time
        picker = self.picker
        stopping = self.stopping
        uniform = self.rng.uniform
        try:
            while not stopping.is_set() and time.perf_counter() < deadline and self._budget():
                await self.send(picker.pick_request(user_class))
                if think.maximum > 0:
                    pause = uniform(think.minimum, think.maximum)
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), min(pause, remaining))
        except Exception as error:
            self._internal_error(error)

    async def _open(self, schedule: Iterator[float]) -> None:
        """Dispatch arrivals at their intended times; backlog or drop when ``max_in_flight`` are busy."""
        workload = self.scenario.workload
        cap = workload.max_in_flight
        backlog: collections.deque[Arrival] = collections.deque()
        max_backlog = workload.max_backlog
        picker = self.picker
        recorder = self.recorder
        running: set[asyncio.Task[None]] = set()
        state = {"busy": 0, "done": 0}
        stage_ends: list[float] = []
        if workload.stages:
            elapsed, start_rate = 0.0, workload.start_rate
            for stage in workload.stages:
                elapsed += stage.duration
                stage_ends.append(elapsed)
                recorder.stages.append(StageStats(stage.target, stage.duration, start_rate))
                start_rate = stage.target
        stages = recorder.stages
        current_stage = 0
        hard_end = time.perf_counter() + self.scenario.planned_seconds() + self.scenario.timeout + 5

        # Workers stay for the run: between requests one parks on a future that the dispatcher resolves
        # with the next arrival, which costs a fraction of starting a task per arrival.
        parked: collections.deque[asyncio.Future[Arrival | None]] = collections.deque()
        loop = asyncio.get_running_loop()
        stopping = self.stopping

        async def worker(first: Arrival) -> None:
            arrival: Arrival | None = first
            try:
                while arrival is not None:
                    recorder.lag(time.perf_counter() - arrival.intended)
                    status = await self.send(arrival.spec, arrival.intended)
                    if arrival.stage is not None:
                        stages[arrival.stage].record(
                            time.perf_counter() - arrival.intended, status in arrival.spec.expect
                        )
                    if backlog and not stopping.is_set():
                        arrival = backlog.popleft()
                        continue
                    state["busy"] -= 1
                    if state["done"] or stopping.is_set():
                        return
                    seat: asyncio.Future[Arrival | None] = loop.create_future()
                    parked.append(seat)
                    arrival = await seat
            except Exception as error:
                state["busy"] -= 1  # the arrival it was serving
                self._internal_error(error)

        start = time.perf_counter()
        loop_sleep = asyncio.sleep
        try:
            for offset in schedule:
                if self.stopping.is_set() or not self._budget():
                    break
                intended = start + offset
                delay = intended - time.perf_counter()
                if delay > 0.0005:
                    await loop_sleep(delay)
                if self.stopping.is_set() or time.perf_counter() > hard_end:
                    break
                spec = picker.pick_request(picker.pick_class())
                stage_index = None
                if stage_ends:
                    while current_stage < len(stage_ends) - 1 and offset >= stage_ends[current_stage]:
                        current_stage += 1
                        # the stage before the one just finished has had a whole stage to complete its requests
                        if (
                            workload.stop_at_break
                            and current_stage >= 2
                            and self._stage_broke(current_stage - 2)
                        ):
                            self.stopping.set()
                    stage_index = current_stage
                if self.stopping.is_set():
                    break
                arrival = Arrival(intended, spec, stage_index)
                if state["busy"] < cap:
                    state["busy"] += 1
                    if parked:
                        parked.pop().set_result(arrival)
                    else:
                        task = asyncio.create_task(worker(arrival))
                        running.add(task)
                        task.add_done_callback(running.discard)
                elif len(backlog) < max_backlog:
                    backlog.append(arrival)
                else:
                    recorder.drop(self._stats[spec.endpoint])
                    if stage_index is not None:
                        stages[stage_index].dropped += 1
        except BaseException:
            self.stopping.set()  # the workers still running end after their current request
            raise
        finally:
            # also when the phase is cancelled: parked workers end instead of waiting forever
            state["done"] = 1
            while parked:
                parked.pop().set_result(None)
            if running:
                # the workers catch their own exceptions: nothing is hidden by this gather
                await asyncio.gather(*running)
        # arrivals still queued when the run was stopped were never sent
        while backlog:
            recorder.drop(self._stats[backlog.popleft().spec.endpoint])

    def _stage_broke(self, index: int) -> bool:
        workload = self.scenario.workload
        return self.recorder.stages[index].verdict(workload.break_p95, workload.break_error_rate) is not None

    async def _contention(self) -> None:
        """Seed 003: ``clients`` identical requests at the same instant; exactly one may win each round."""
        workload = self.scenario.workload
        user_class = self.scenario.classes[0]
        spec = user_class.requests[0]
        if self._fast is not None:
            # every client already holds a connection, so the race starts at the request, not at connect()
            await self._fast.warm(workload.clients)
        for round_index in range(workload.rounds):
            if self.stopping.is_set():
                break
            if spec.body is None and spec.endpoint == "create_ticket":
                body = self.factory.ticket_body()
            else:
                body = spec.body
            encoded = json.dumps(body).encode() if body is not None else None
            contention_spec = RequestSpec(
                endpoint=spec.endpoint,
                weight=1.0,
                method=spec.method,
                path=spec.path,
                body=body,
                expect=(workload.winner_status, workload.loser_status),
                timeout=spec.timeout,
            )
            intended = time.perf_counter()
            statuses = await asyncio.gather(
                *(self.send(contention_spec, intended, encoded) for _ in range(workload.clients))
            )
            winners = sum(1 for status in statuses if status == workload.winner_status)
            losers = sum(1 for status in statuses if status == workload.loser_status)
            others = len(statuses) - winners - losers
            self.recorder.contention_rounds.append(
                {
                    "round": round_index,
                    "winners": winners,
                    "losers": losers,
                    "others": others,
                    "ok": winners == 1 and others == 0,
                }
            )
            if round_index + 1 < workload.rounds:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), workload.round_interval)
