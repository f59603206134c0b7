"""Thresholds (the run's own pass/fail), the printed summary and the progress line."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from loadgen.model import Threshold
from loadgen.units import format_seconds

# Exit codes, documented in docs/loadgen.md and `loadgen --help`.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_HYPOTHESIS = 97
EXIT_THRESHOLDS = 99
EXIT_INTERRUPTED = 130

LATENCY_METRICS = ("p50", "p90", "p95", "p99", "max")


def threshold_value(threshold: Threshold, summary: dict[str, Any]) -> float | None:
    metric = threshold.metric
    if metric == "schedule_lag_p99":
        lag = summary.get("schedule_lag", {})
        return lag.get("p99") if lag.get("samples") else None
    if metric == "contention_rounds_failed":
        contention = summary.get("contention")
        return None if contention is None else float(contention["rounds_failed"])
    block = summary["endpoints"].get(threshold.endpoint) if threshold.endpoint else summary["total"]
    if block is None:
        return None
    if metric in LATENCY_METRICS:
        return block["latency"][metric] if block["requests"] else None
    if metric == "dropped":
        return float(block["dropped"])
    return float(block[metric])


def evaluate(thresholds: tuple[Threshold, ...], summary: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for threshold in thresholds:
        value = threshold_value(threshold, summary)
        ok = value is not None
        if ok and threshold.maximum is not None:
            ok = value <= threshold.maximum  # type: ignore[operator]
        if ok and threshold.minimum is not None:
            ok = value >= threshold.minimum  # type: ignore[operator]
        results.append({"threshold": threshold.describe(), "value": value, "ok": bool(ok)})
    return results


def _fmt_value(metric_text: str, value: float | None) -> str:
    if value is None:
        return "no data"
    name = metric_text.split("{")[0].split(" ")[0]
    if name in LATENCY_METRICS or name == "schedule_lag_p99":
        return format_seconds(value)
    if name in ("error_rate", "dropped_ratio"):
        return f"{value * 100:.2f}%"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def print_summary(result: dict[str, Any], out: TextIO = sys.stdout) -> None:
    summary = result["load"]
    total = summary["total"]
    write = out.write
    write(f"\n== {result['scenario']} — {result['outcome']} (exit {result['exit_code']}) ==\n")
    if result.get("error"):
        write(f"error: {result['error']}\n")
    write(
        f"elapsed {summary['elapsed_seconds']:.1f}s, processes {summary['processes']}, "
        f"requests {total['requests']}, failures {total['failures']} ({total['error_rate'] * 100:.2f}%), "
        f"dropped {total['dropped']}, throughput {total['throughput']:.1f}/s ({total['throughput_per_min']:.0f}/min)\n"
    )
    header = f"{'endpoint':<16}{'requests':>9}{'fail':>7}{'drop':>7}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}  statuses\n"
    write(header)
    for name, block in [*summary["endpoints"].items(), ("TOTAL", total)]:
        latency = block["latency"]
        statuses = " ".join(f"{code}:{count}" for code, count in block["statuses"].items())
        write(
            f"{name:<16}{block['requests']:>9}{block['failures']:>7}{block['dropped']:>7}"
            f"{format_seconds(latency['p50']):>10}{format_seconds(latency['p95']):>10}"
            f"{format_seconds(latency['p99']):>10}{format_seconds(latency['max']):>10}  {statuses}\n"
        )
    service = total["service_time"]
    write(
        f"service time (from actual send, not corrected): p95 {format_seconds(service['p95'])}, "
        f"p99 {format_seconds(service['p99'])}\n"
    )
    lag = summary["schedule_lag"]
    if lag["samples"]:
        write(
            f"schedule lag: p50 {format_seconds(lag['p50'])}, p99 {format_seconds(lag['p99'])}, "
            f"max {format_seconds(lag['max'])} over {lag['samples']} arrivals\n"
        )
    if summary.get("stages"):
        write("ramp stages (latency from intended send time):\n")
        for stage in summary["stages"]:
            write(
                f"  stage {stage['stage']:>2}: rate {stage['start_rate']:.1f}→{stage['target_rate']:.1f}/s "
                f"planned {stage['planned_rate']:8.1f}/s achieved {stage['achieved_rate']:8.1f}/s "
                f"p95 {format_seconds(stage['p95']):>9} errors {stage['error_rate'] * 100:6.2f}% "
                f"dropped {stage['dropped']:>6}{'  BROKEN: ' + stage['broken'] if stage['broken'] else ''}\n"
            )
        knee = summary.get("breaking_point")
        if knee:
            write(
                f"breaking point: stage {knee['stage']} at {knee['target_rate']:.1f}/s ({knee['reason']}); "
                f"last good rate {knee['last_good_rate'] if knee['last_good_rate'] is not None else 'none'}/s\n"
            )
        else:
            write("breaking point: not reached\n")
    contention = summary.get("contention")
    if contention:
        write(
            f"contention: {contention['rounds']} round(s), {contention['rounds_failed']} without exactly one "
            f"winner; winners per round {contention['winners']}\n"
        )
    for probe in result.get("probes", []):
        mark = "ok  " if probe["ok"] else "FAIL"
        write(
            f"probe   [{mark}] {probe['phase']}: {probe['name']}: {probe['detail']} ({probe['seconds']:.1f}s)\n"
        )
    for action in result.get("actions", []):
        mark = "ok  " if action["ok"] else "FAIL"
        write(f"action  [{mark}] {action['phase']}: {action['name']}: {action['detail']}\n")
    for item in result.get("thresholds", []):
        mark = "ok  " if item["ok"] else "FAIL"
        write(f"threshold [{mark}] {item['threshold']}: {_fmt_value(item['threshold'], item['value'])}\n")
    out.flush()


CSV_COLUMNS = (
    "scope", "name", "requests", "failures", "dropped", "error_rate", "throughput_per_s",
    "p50_s", "p90_s", "p95_s", "p99_s", "max_s", "planned_rate", "achieved_rate", "broken",
)  # fmt: skip


def summary_csv(result: dict[str, Any]) -> str:
    """Per-endpoint, total and per-stage rows (seed 002's CSV report), for spreadsheets and plots."""
    import csv
    import io

    load = result["load"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()

    def latency_columns(block: dict[str, Any]) -> dict[str, Any]:
        return {f"{key}_s": f"{block[key]:.6f}" for key in ("p50", "p90", "p95", "p99", "max")}

    for name, block in [*load["endpoints"].items(), ("TOTAL", load["total"])]:
        writer.writerow(
            {
                "scope": "endpoint" if name != "TOTAL" else "total",
                "name": name,
                "requests": block["requests"],
                "failures": block["failures"],
                "dropped": block["dropped"],
                "error_rate": f"{block['error_rate']:.6f}",
                "throughput_per_s": f"{block['throughput']:.3f}",
                **latency_columns(block["latency"]),
            }
        )
    for stage in load.get("stages", []):
        writer.writerow(
            {
                "scope": "stage",
                "name": stage["stage"],
                "requests": stage["requests"],
                "failures": stage["failures"],
                "dropped": stage["dropped"],
                "error_rate": f"{stage['error_rate']:.6f}",
                **latency_columns(stage),
                "planned_rate": f"{stage['planned_rate']:.3f}",
                "achieved_rate": f"{stage['achieved_rate']:.3f}",
                "broken": stage["broken"] or "",
            }
        )
    return buffer.getvalue()


def progress_line(progress: dict[str, float], prefix: str = "") -> str:
    return (
        f"{prefix}[{progress['elapsed']:6.1f}s] sent {int(progress['sent'])} done {int(progress['completed'])} "
        f"rate {progress['rate']:.1f}/s p95 {format_seconds(progress['p95'])} "
        f"errors {int(progress['failures'])} dropped {int(progress['dropped'])} in-flight {int(progress['in_flight'])}"
    )
