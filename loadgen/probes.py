"""Steady-state probes: an HTTP answer or an SQL scalar that must hold, optionally polled until it does.

A probe with ``within`` is retried every ``interval`` until it holds or the time is up; the time it took is
reported, which is how "recovery detected within RNF-05's bound" (RES-01) is measured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadgen.context import ActionContext, sql_scalar
from loadgen.model import Probe


@dataclass
class ProbeResult:
    name: str
    ok: bool
    value: Any
    detail: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        value = (
            self.value
            if isinstance(self.value, int | float | str | bool) or self.value is None
            else str(self.value)
        )
        return {
            "name": self.name,
            "ok": self.ok,
            "value": value,
            "detail": self.detail,
            "seconds": self.seconds,
        }


async def check_probe(probe: Probe, context: ActionContext) -> ProbeResult:
    """Evaluate the probe, polling until ``within`` elapses when it is set."""
    started = time.perf_counter()
    deadline = started + probe.within
    while True:
        ok, value, detail = await _once(probe, context)
        elapsed = time.perf_counter() - started
        if ok or time.perf_counter() + probe.interval > deadline:
            return ProbeResult(probe.label(), ok, value, detail, elapsed)
        await asyncio.sleep(probe.interval)


async def _once(probe: Probe, context: ActionContext) -> tuple[bool, Any, str]:
    try:
        if probe.kind == "http":
            return await _http(probe, context)
        return await _sql(probe, context)
    except Exception as error:  # a probe that cannot run does not hold; say why
        return False, None, f"{type(error).__name__}: {error}"


async def _http(probe: Probe, context: ActionContext) -> tuple[bool, Any, str]:
    params = probe.params
    url = str(params.get("url") or context.target + str(params["path"]))
    timeout = aiohttp.ClientTimeout(total=float(params.get("timeout", 5)))
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        text = await response.text()
        if response.status not in params.get("expect_status", [200]):
            return False, response.status, f"GET {url}: status {response.status}"
        expected = params.get("expect_json")
        if expected:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                return False, text[:200], f"GET {url}: answer is not JSON"
            missing = {
                k: v for k, v in expected.items() if not isinstance(answer, dict) or answer.get(k) != v
            }
            if missing:
                return False, text[:200], f"GET {url}: answer lacks {missing}"
        return True, response.status, f"GET {url}: {response.status}"


async def _sql(probe: Probe, context: ActionContext) -> tuple[bool, Any, str]:
    params = probe.params
    dsn = context.service(params, "dsn", "database_dsn")
    value = await asyncio.to_thread(sql_scalar, dsn, str(params["query"]))
    checks = []
    ok = True
    if "equals" in params:
        ok &= _equal(value, params["equals"])
        checks.append(f"== {params['equals']}")
    if "max" in params:
        ok &= value is not None and float(value) <= float(params["max"])
        checks.append(f"<= {params['max']}")
    if "min" in params:
        ok &= value is not None and float(value) >= float(params["min"])
        checks.append(f">= {params['min']}")
    return bool(ok), value, f"value {value!r} (expected {' and '.join(checks)})"


def _equal(value: Any, expected: Any) -> bool:
    if isinstance(expected, int | float) and not isinstance(expected, bool) and value is not None:
        try:
            return float(value) == float(expected)
        except (TypeError, ValueError):
            return False
    return value == expected or str(value) == str(expected)
