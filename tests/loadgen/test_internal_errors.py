"""An exception inside the load engine or a recorder is logged, counted and fails the run; never absorbed."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from prometheus_client import CollectorRegistry

from loadgen.engine import InternalError, InternalErrors, LoadEngine, error_source
from loadgen.metrics import LoadgenMetrics
from loadgen.model import RequestSpec
from loadgen.report import EXIT_ERROR
from loadgen.runner import Experiment
from loadgen.stats import EndpointStats, Recorder


class FailingRecorder(Recorder):
    """A recorder whose completions break after ``healthy`` of them, as a bug in the metrics path would."""

    def __init__(self, metrics: LoadgenMetrics | None, healthy: int) -> None:
        super().__init__(metrics)
        self.healthy = healthy
        self.completions = 0

    def complete(
        self, stats: EndpointStats, status: int, ok: bool, intended: float, sent: float, done: float
    ) -> None:
        self.completions += 1
        if self.completions > self.healthy:
            raise RuntimeError(f"recorder broken at completion {self.completions}")
        super().complete(stats, status, ok, intended, sent, done)


class FailingProgressRecorder(Recorder):
    def progress(self) -> dict[str, float]:
        raise ZeroDivisionError("progress is broken")


class FailingEngine(LoadEngine):
    """An engine whose 6th request raises outside any recorder."""

    sends = 0

    async def send(self, spec: RequestSpec, intended: float | None = None, body: bytes | None = None) -> int:
        self.sends += 1
        if self.sends == 6:
            raise KeyError("no such template")
        return await super().send(spec, intended, body)


def internal_errors(metrics: LoadgenMetrics, where: str) -> float | None:
    return metrics.registry.get_sample_value("loadgen_internal_errors_total", {"where": where})


async def test_a_recorder_failing_in_the_open_model_fails_the_run_and_is_counted(
    service, make_scenario, caplog
) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 3s
        workload: {{model: open, rate: 200/s, max_in_flight: 50}}
        requests: [health]
        """
    )
    metrics = LoadgenMetrics(CollectorRegistry())
    recorder = FailingRecorder(metrics, healthy=20)
    with caplog.at_level(logging.ERROR, logger="loadgen.engine"):
        result = await Experiment(scenario, metrics, quiet=True, recorder=recorder).run()
    failed = recorder.completions - 20
    assert result["exit_code"] == EXIT_ERROR == 1
    assert result["outcome"] == "internal error"
    assert result["error"] == (
        f"{failed} unexpected error(s) inside the load generator; "
        "the first: recorder: RuntimeError: recorder broken at completion 21"
    )
    assert result["internal_errors"] == [
        f"recorder: RuntimeError: recorder broken at completion {n}" for n in range(21, 21 + failed)
    ]
    assert internal_errors(metrics, "recorder") == failed
    assert internal_errors(metrics, "engine") == 0.0
    # the load stopped at the first error instead of running its 600 arrivals with broken figures
    assert result["load"]["total"]["requests"] == 20
    assert service.state.total() == recorder.completions < 200
    assert "verify" not in result["phases"]
    # logged once, with the traceback
    logged = [record for record in caplog.records if record.name == "loadgen.engine"]
    assert [record.getMessage() for record in logged] == [
        "unexpected error in the load recorder; stopping the load"
    ]
    assert logged[0].exc_info is not None and "completion 21" in str(logged[0].exc_info[1])


async def test_a_broken_metrics_path_is_no_longer_absorbed(service, make_scenario) -> None:
    """The regression: a metrics path that raises on every completion (once the in-flight gauge set to None)
    was swallowed by the engine's gather; the run went on without counting."""
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 10s
        max_requests: 30
        workload: {{model: closed, vus: 3}}
        requests: [health]
        """
    )
    metrics = LoadgenMetrics(CollectorRegistry())
    recorder = Recorder(metrics)
    recorder.overall = None  # type: ignore[assignment]
    result = await Experiment(scenario, metrics, quiet=True, recorder=recorder).run()
    assert result["exit_code"] == 1 and result["outcome"] == "internal error"
    # each of the 3 virtual users fails on its first completion and ends
    assert (
        result["internal_errors"]
        == ["recorder: AttributeError: 'NoneType' object has no attribute 'record'"] * 3
    )
    assert internal_errors(metrics, "recorder") == 3.0
    assert result["error"] == (
        "3 unexpected error(s) inside the load generator; "
        "the first: recorder: AttributeError: 'NoneType' object has no attribute 'record'"
    )
    assert service.state.total() == 3


async def test_an_engine_failure_outside_the_recorder_is_labelled_engine(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 10s
        max_requests: 50
        workload: {{model: burst, requests: 50, within: 1s}}
        requests: [health]
        """
    )
    metrics = LoadgenMetrics(CollectorRegistry())
    metrics.declare(["health"])
    engine = FailingEngine(scenario, Recorder(metrics))
    with pytest.raises(InternalError) as error:
        await engine.run()
    assert str(error.value) == (
        "1 unexpected error(s) inside the load generator; the first: engine: KeyError: 'no such template'"
    )
    assert internal_errors(metrics, "engine") == 1.0
    assert internal_errors(metrics, "recorder") == 0.0
    assert engine.stopping.is_set()
    assert service.state.total() == 5  # the burst stopped at the failing 6th request


async def test_a_failing_progress_report_fails_the_run(service, make_scenario) -> None:
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 3s
        progress_interval: 200ms
        workload: {{model: closed, vus: 2}}
        think_time: 10ms
        requests: [health]
        """
    )
    metrics = LoadgenMetrics(CollectorRegistry())
    out = io.StringIO()
    experiment = Experiment(scenario, metrics, out=out, recorder=FailingProgressRecorder(metrics))
    result = await experiment.run()
    assert result["exit_code"] == 1 and result["outcome"] == "internal error"
    assert result["error"] == (
        "1 unexpected error(s) inside the load generator; "
        "the first: recorder: ZeroDivisionError: progress is broken"
    )
    assert internal_errors(metrics, "recorder") == 1.0
    assert result["load"]["elapsed_seconds"] < 2.0  # the load was stopped, not run for its 3 s


def test_error_source_and_counting_without_metrics() -> None:
    def outside() -> None:
        raise ValueError("x")

    try:
        outside()
    except ValueError as error:
        assert error_source(error) == "engine"
    recorder = Recorder()
    try:
        recorder.complete(recorder.endpoint("health"), 200, True, 0.0, 0.0, "late")  # type: ignore[arg-type]
    except TypeError as error:
        assert error_source(error) == "recorder"
    errors = InternalErrors(None)
    errors.check()  # nothing reported: no exception
    errors.report(ValueError("first"))
    errors.report(KeyError("second"))
    assert errors.errors == ["engine: ValueError: first", "engine: KeyError: 'second'"]
    with pytest.raises(
        InternalError, match=r"^2 unexpected error\(s\) inside the load generator; the first: "
    ):
        errors.check()


def test_the_counter_is_exported_at_zero_before_anything_fails() -> None:
    metrics = LoadgenMetrics(CollectorRegistry())
    assert internal_errors(metrics, "engine") is None
    metrics.declare(["health"])
    assert internal_errors(metrics, "engine") == 0.0
    assert internal_errors(metrics, "recorder") == 0.0


async def test_a_worker_process_reports_its_internal_errors_in_its_result(
    service, make_scenario, monkeypatch
) -> None:
    """What `loadgen run --worker-index i` does: the load share, then a result that carries the errors."""
    import loadgen.runner

    monkeypatch.setattr(loadgen.runner, "Recorder", lambda metrics: FailingRecorder(metrics, healthy=4))
    scenario = make_scenario(
        f"""
        target: {service.url}
        duration: 10s
        max_requests: 40
        workload: {{model: closed, vus: 1}}
        requests: [health]
        """
    )
    metrics = LoadgenMetrics(CollectorRegistry())
    raw = await loadgen.runner.run_worker(scenario, 0, 1, metrics, quiet=True)
    assert raw["internal_errors"] == ["recorder: RuntimeError: recorder broken at completion 5"]
    assert raw["endpoints"]["health"]["requests"] == 4
    assert internal_errors(metrics, "recorder") == 1.0
    assert metrics.registry.get_sample_value("loadgen_run_active") == 0.0


WORKER = """
import json, sys
path = sys.argv[sys.argv.index("--raw-json") + 1]
index = sys.argv[sys.argv.index("--worker-index") + 1]
errors = ["recorder: RuntimeError: broken"] if index == "1" else []
json.dump({"elapsed": 1.0, "endpoints": {}, "internal_errors": errors}, open(path, "w"))
sys.exit(1 if errors else 0)
"""


async def test_the_coordinator_fails_the_run_when_a_worker_had_internal_errors(
    make_scenario, tmp_path
) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    scenario = make_scenario(
        """
        target: http://127.0.0.1:9
        processes: 2
        workload: {model: closed, vus: 2}
        requests: [health]
        """
    )
    metrics = LoadgenMetrics(CollectorRegistry())
    experiment = Experiment(scenario, metrics, worker_argv=[sys.executable, str(worker)], quiet=True)
    result = await experiment.run()
    assert result["exit_code"] == 1 and result["outcome"] == "internal error"
    assert result["internal_errors"] == ["worker 1: recorder: RuntimeError: broken"]
    assert result["error"] == (
        "1 unexpected error(s) inside the load generator; the first: worker 1: recorder: RuntimeError: broken"
    )
    await experiment.wait_for_workers()
