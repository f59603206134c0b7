"""One scenario run, in Chaos Toolkit's shape:

    setup → steady-state hypothesis → load + timed actions → settle → verify → rollbacks (always)

Rollbacks run whatever happened before them: an action error, a failed hypothesis, Ctrl-C (SIGINT) or
SIGTERM. A second signal while rolling back is ignored, so a hasty double Ctrl-C cannot leave a container
stopped or a proxy cut. With ``processes > 1`` this process runs the experiment and starts worker processes
(``loadgen run --worker-index i``) that only generate load; their results are merged exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadgen.actions import ActionContext, ActionError, SteadyStateViolated, run_action
from loadgen.engine import InternalError, InternalErrors, LoadEngine
from loadgen.metrics import LoadgenMetrics
from loadgen.model import Action, Probe, Scenario, Threshold, with_process_share
from loadgen.probes import check_probe
from loadgen.proxy import FaultProxy, RemoteProxy
from loadgen.report import (
    EXIT_ERROR,
    EXIT_HYPOTHESIS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_THRESHOLDS,
    evaluate,
    progress_line,
)
from loadgen.stats import Recorder, summarize

# The `outcome` of a run that an unexpected exception of the load generator itself ended (exit 1).
OUTCOME_INTERNAL_ERROR = "internal error"

log = logging.getLogger(__name__)


class HypothesisFailed(Exception):
    """A steady-state probe did not hold."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""


class Experiment:
    """Runs one scenario; ``run()`` returns the result document (also written as the JSON summary)."""

    def __init__(
        self,
        scenario: Scenario,
        metrics: LoadgenMetrics | None,
        *,
        worker_argv: Sequence[str] = (),
        quiet: bool = False,
        out=sys.stderr,
        recorder: Recorder | None = None,
    ) -> None:
        self.scenario = scenario
        self.metrics = metrics
        self.worker_argv = list(worker_argv)  # how to start a worker process (multi-process mode)
        self.quiet = quiet
        self.out = out
        self.recorder = recorder if recorder is not None else Recorder(metrics)
        self.internal_errors = InternalErrors(metrics)
        if metrics is not None:
            metrics.declare(scenario.endpoints)
        self.engine: LoadEngine | None = None
        self.proxies: dict[str, FaultProxy] = {}
        self.context = ActionContext(scenario.target, scenario.services, self.proxies)
        self.probe_results: list[dict[str, Any]] = []
        self.action_results: list[dict[str, Any]] = []
        self.interrupted: int | None = None
        self.rolling_back = False
        self._phase_task: asyncio.Future[Any] | None = None
        self._workers: list[asyncio.subprocess.Process] = []
        self._worker_raw: list[dict[str, Any]] = []
        self.phase_times: dict[str, float] = {}

    # -- signals ----------------------------------------------------------------------------------------

    def interrupt(self, signum: int) -> None:
        """Stop the load gracefully and cancel the current phase; rollbacks still run."""
        if self.rolling_back or self.interrupted:
            self._say(f"signal {signum} ignored: already stopping, rollbacks run to completion")
            return
        self.interrupted = signum
        self._say(f"signal {signum}: stopping the run; rollbacks will run")
        if self.engine is not None:
            self.engine.stop()
        for worker in self._workers:
            if worker.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGINT)
        if self._phase_task is not None and not self._phase_task.done():
            self._phase_task.cancel()

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.out, flush=True)

    def _phase(self, name: str) -> None:
        self.phase_times[name] = time.time()
        if self.metrics is not None:
            self.metrics.set_phase(self.scenario.name, name)
        self._say(f"--- {self.scenario.name}: {name}")

    async def _guard(self, coroutine: Any) -> Any:
        """Run a phase step so a signal can cancel it; turn that cancellation into Interrupted."""
        self._phase_task = asyncio.ensure_future(coroutine)
        try:
            return await self._phase_task
        except asyncio.CancelledError:
            if self.interrupted:
                raise Interrupted() from None
            raise
        finally:
            self._phase_task = None

    # -- the run ----------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        scenario = self.scenario
        outcome, exit_code, error = "passed", EXIT_OK, None
        if self.metrics is not None:
            self.metrics.run_active.set(1)
        try:
            self._phase("setup")
            await self._guard(self._setup())
            self._check_interrupt()
            self._phase("steady_state")
            await self._guard(self._probes(scenario.steady_state, "steady_state"))
            self._check_interrupt()
            self._phase("load")
            await self._load()
            self._check_interrupt()
            if scenario.settle > 0:
                self._phase("settle")
                await self._guard(asyncio.sleep(scenario.settle))
            self._check_interrupt()
            self._phase("verify")
            await self._guard(self._probes(scenario.steady_state + scenario.verify, "verify"))
        except Interrupted:
            outcome, exit_code = "interrupted", EXIT_INTERRUPTED
        except InternalError as failed:
            outcome, exit_code, error = OUTCOME_INTERNAL_ERROR, EXIT_ERROR, str(failed)
        except (HypothesisFailed, SteadyStateViolated) as failed:
            outcome, exit_code, error = "steady state not met", EXIT_HYPOTHESIS, str(failed)
        except ActionError as failed:
            outcome, exit_code, error = "action failed", EXIT_ERROR, str(failed)
        except Exception as failed:
            log.exception("run failed")
            outcome, exit_code, error = "error", EXIT_ERROR, f"{type(failed).__name__}: {failed}"
        finally:
            if self.engine is not None:
                self.engine.stop()
            await self._rollback()
        failed_rollbacks = [
            a["name"] for a in self.action_results if a["phase"] == "rollback" and not a["ok"]
        ]
        if failed_rollbacks:
            self._say(
                "WARNING: rollback failed ("
                + ", ".join(failed_rollbacks)
                + "): the system under test may be "
                "left broken — check it before the next run"
            )
            if exit_code == EXIT_OK:
                outcome, exit_code = "rollback failed", EXIT_ERROR
                error = "rollback failed: " + ", ".join(failed_rollbacks)
        self._phase("done")
        if self.metrics is not None:
            self.metrics.run_active.set(0)
        self.recorder.stop()
        result = self._result(outcome, exit_code, error)
        result["rollback_failed"] = bool(failed_rollbacks)
        return result

    def _check_interrupt(self) -> None:
        if self.interrupted:
            raise Interrupted()

    async def _setup(self) -> None:
        for spec in self.scenario.proxies:
            if spec.control:
                remote = RemoteProxy(spec.control)
                try:
                    state = await remote.status()
                except Exception as error:
                    raise ActionError(
                        f"proxy {spec.name}: no `loadgen proxy` answers at {spec.control}: {error}"
                    ) from error
                self.context.proxies[spec.name] = remote
                self._say(f"proxy {spec.name}: running at {spec.control} ({state})")
                continue
            proxy = FaultProxy(spec.listen_host, spec.listen_port, spec.target_host, spec.target_port)
            try:
                await proxy.start()
            except OSError as error:
                raise ActionError(
                    f"proxy {spec.name}: cannot listen on {spec.listen_host}:{spec.listen_port}: "
                    f"{error.strerror or error}"
                ) from error
            self.proxies[spec.name] = proxy
            self.context.proxies[spec.name] = proxy
            self._say(
                f"proxy {spec.name}: {spec.listen_host}:{proxy.port} -> {spec.target_host}:{spec.target_port}"
            )
        for action in self.scenario.setup:
            await self._action(action, "setup")

    async def _action(self, action: Action, phase: str) -> None:
        started = time.perf_counter()
        violated: SteadyStateViolated | None = None
        try:
            detail = await run_action(action, self.context)
            ok = True
        except SteadyStateViolated as error:
            detail, ok, violated = str(error), False, error
        except ActionError as error:
            detail, ok = str(error), False
        self.action_results.append(
            {
                "phase": phase,
                "name": action.label(),
                "ok": ok,
                "detail": detail,
                "at": action.at,
                "seconds": time.perf_counter() - started,
            }
        )
        self._say(f"action {phase}: {action.label()}: {'ok' if ok else 'FAILED'}: {detail}")
        if violated is not None and phase != "rollback":
            raise violated
        if not ok and not action.ignore_failure and phase != "rollback":
            raise ActionError(f"{phase}: {action.label()}: {detail}")

    async def _probes(self, probes: tuple[Probe, ...], phase: str) -> None:
        """Probes in file order (so "every ticket processed within 120 s" can come before the checks that
        assume it); all are evaluated, then the phase fails if any did not hold."""
        failed = []
        for probe in probes:
            result = await check_probe(probe, self.context)
            self.probe_results.append({"phase": phase, **result.to_json()})
            self._say(f"probe {phase}: {result.name}: {'ok' if result.ok else 'FAILED'}: {result.detail}")
            if not result.ok:
                failed.append(f"{result.name}: {result.detail}")
        if failed:
            raise HypothesisFailed(f"{phase}: " + "; ".join(failed))

    async def _method(self, started: float) -> None:
        """Timed actions at their offsets from the start of the load.

        Each action starts at its ``at`` offset, after the previous foreground action has finished (so "wait
        until an advisor is BUSY, then age its heartbeat" reads top to bottom). Background actions (watches)
        run alongside the rest; the first failure anywhere cancels the others.
        """

        async def sequence(group: asyncio.TaskGroup) -> None:
            for action in sorted(self.scenario.method, key=lambda item: item.at):
                delay = started + action.at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if action.background:
                    group.create_task(self._action(action, "method"))
                else:
                    await self._action(action, "method")

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(sequence(group))
        except BaseExceptionGroup as failures:
            raise failures.exceptions[0] from None

    async def _progress(self) -> None:
        interval = self.scenario.progress_interval
        if interval <= 0 or self.quiet or self.scenario.processes > 1:  # workers print their own
            return
        while True:
            await asyncio.sleep(interval)
            try:
                line = progress_line(self.recorder.progress())
            except Exception as error:
                self.internal_errors.report(error)
                if self.engine is not None:
                    self.engine.stop()
                return
            self._say(line)

    async def _load(self) -> None:
        started = time.perf_counter()
        self.recorder.started = started
        method = asyncio.ensure_future(self._method(started))
        progress = asyncio.ensure_future(self._progress())
        self._phase_task = method
        try:
            if self.scenario.processes > 1:
                load = asyncio.ensure_future(self._run_workers())
            else:
                self.engine = LoadEngine(self.scenario, self.recorder, internal_errors=self.internal_errors)
                load = asyncio.ensure_future(self.engine.run())
            # An action that fails ends the load early; the load ending does not cut remaining actions.
            done, _ = await asyncio.wait({load, method}, return_when=asyncio.FIRST_EXCEPTION)
            if method in done and not method.cancelled() and method.exception() is not None:
                if self.engine is not None:
                    self.engine.stop()
                self._stop_workers()
                with contextlib.suppress(Exception):
                    await load
                raise method.exception()  # type: ignore[misc]
            await load
            self.recorder.stop()
            self.internal_errors.check()
            try:
                await method
            except asyncio.CancelledError:
                if self.interrupted:
                    raise Interrupted() from None
                raise
        finally:
            progress.cancel()
            self._phase_task = None
            if not method.done():
                method.cancel()
            if self.recorder.finished is None:
                self.recorder.stop()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            if worker.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.send_signal(signal.SIGINT)

    async def _run_workers(self) -> None:
        """Start one worker process per share of the load and collect their raw results."""
        count = self.scenario.processes
        with tempfile.TemporaryDirectory(prefix="loadgen-") as directory:
            paths = [Path(directory) / f"worker-{index}.json" for index in range(count)]
            for index, path in enumerate(paths):
                argv = [
                    *self.worker_argv,
                    "--worker-index",
                    str(index),
                    "--worker-count",
                    str(count),
                    "--raw-json",
                    str(path),
                ]
                self._workers.append(await asyncio.create_subprocess_exec(*argv, env=dict(os.environ)))
            # A worker writes its result when its load ends, then keeps serving metrics for the linger; the
            # result is merged as soon as every worker has written one (see wait_for_workers for the rest).
            while not all(path.exists() for path in paths):
                for index, (worker, path) in enumerate(zip(self._workers, paths, strict=True)):
                    if worker.returncode is not None and not path.exists():
                        raise ActionError(
                            f"worker process {index} exited {worker.returncode} without a result"
                        )
                await asyncio.sleep(0.05)
            for index, path in enumerate(paths):
                raw = json.loads(path.read_text())
                self._worker_raw.append(raw)
                self.internal_errors.errors += [
                    f"worker {index}: {item}" for item in raw.get("internal_errors", [])
                ]
            self.internal_errors.check()

    async def wait_for_workers(self) -> None:
        """Wait for worker processes still serving metrics (their linger); a signal ends their linger."""
        if not self._workers:
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop_workers)
        try:
            for worker in self._workers:
                await worker.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _rollback(self) -> None:
        self.rolling_back = True
        if self.scenario.rollbacks:
            self._phase("rollback")
        for action in self.scenario.rollbacks:
            # Each rollback runs even if an earlier one failed; none can be cancelled by a signal.
            try:
                await asyncio.shield(self._action(action, "rollback"))
            except asyncio.CancelledError:
                self._say(f"rollback {action.label()} was cancelled")
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                await proxy.stop()
        self.context.close()

    # -- result -----------------------------------------------------------------------------------------

    def load_summary(self) -> dict[str, Any]:
        raw = self._worker_raw or [self.recorder.to_raw()]
        workload = self.scenario.workload
        return summarize(
            raw,
            self.scenario.name,
            max(1, len(self._worker_raw)),
            workload.break_p95,
            workload.break_error_rate,
        )

    def _result(self, outcome: str, exit_code: int, error: str | None) -> dict[str, Any]:
        load = self.load_summary()
        thresholds = list(self.scenario.thresholds)
        if self.scenario.workload.model == "contention" and not any(
            t.metric == "contention_rounds_failed" for t in thresholds
        ):
            thresholds.append(Threshold("contention_rounds_failed", maximum=0))
        checked = evaluate(tuple(thresholds), load) if "load" in self.phase_times else []
        if exit_code == EXIT_OK and any(not item["ok"] for item in checked):
            outcome, exit_code = "thresholds failed", EXIT_THRESHOLDS
        return {
            "scenario": self.scenario.name,
            "source": self.scenario.source,
            "outcome": outcome,
            "exit_code": exit_code,
            "error": error,
            "interrupted_by_signal": self.interrupted,
            "phases": self.phase_times,
            "load": load,
            "thresholds": checked,
            "probes": self.probe_results,
            "actions": self.action_results,
            "internal_errors": self.internal_errors.errors,
        }


async def run_worker(
    scenario: Scenario, index: int, count: int, metrics: LoadgenMetrics | None, quiet: bool
) -> dict:
    """A worker process's whole job: its share of the load, no setup, probes, actions or rollbacks.

    Its unexpected exceptions travel in the result's ``internal_errors``; the coordinator fails the run."""
    share = with_process_share(scenario, index, count)
    recorder = Recorder(metrics)
    if metrics is not None:
        metrics.declare(share.endpoints)
    internal_errors = InternalErrors(metrics)
    engine = LoadEngine(share, recorder, process_index=index, internal_errors=internal_errors)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, engine.stop)
    if metrics is not None:
        metrics.run_active.set(1)
        metrics.set_phase(scenario.name, "load")

    async def progress() -> None:
        while scenario.progress_interval > 0 and not quiet:
            await asyncio.sleep(scenario.progress_interval)
            print(progress_line(recorder.progress(), f"worker {index}: "), file=sys.stderr, flush=True)

    reporter = asyncio.ensure_future(progress())
    try:
        await engine.run()
    except InternalError:
        pass  # already logged and counted; reported below through the result
    finally:
        reporter.cancel()
        recorder.stop()
        if metrics is not None:
            metrics.set_phase(scenario.name, "done")
            metrics.run_active.set(0)
    try:
        raw = recorder.to_raw()
    except Exception as error:
        internal_errors.report(error)
        raw = {}
    raw["internal_errors"] = internal_errors.errors
    return raw
