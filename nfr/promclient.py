"""A thin HTTP client for any Prometheus, given its base URL.

``nfr.prometheus.PrometheusServer`` owns a local process; the verdict must also work against a Prometheus
it did not start (a compose stack, a staging server), so the read-only API calls it needs live here, with
only the standard library.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any


class PrometheusError(RuntimeError):
    """Prometheus failed to start, was unreachable, or answered an API call with an error."""


class PrometheusQueryError(PrometheusError):
    """Prometheus was unreachable or answered an API call with an error."""


class PrometheusClient:
    """Read-only access to a Prometheus HTTP API: instant and range queries, alerts, rules, targets."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _api(self, path: str, params: Mapping[str, Any] | None = None, post: bool = False) -> Any:
        data = None
        url = f"{self.url}{path}"
        if params:
            encoded = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
            if post:  # queries go in the body: PromQL can be longer than a URL may be
                data = encoded.encode()
            else:
                url = f"{url}?{encoded}"
        request = urllib.request.Request(url, data=data, method="POST" if post else "GET")
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            try:
                payload = json.loads(detail)
                detail = f"{payload.get('errorType')}: {payload.get('error')}"
            except ValueError:
                pass
            raise PrometheusQueryError(f"{self.url}{path} failed ({err.code}): {detail}") from err
        except (urllib.error.URLError, OSError) as err:
            raise PrometheusQueryError(f"cannot reach Prometheus at {self.url}: {err}") from err
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{path} failed: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; a vector's (or matrix's) ``result`` list, or ``[[t, v]]`` for a scalar."""
        data = self._api("/api/v1/query", {"query": expr, "time": at}, post=True)
        if data["resultType"] in ("vector", "matrix"):
            return list(data["result"])
        return [{"metric": {}, "value": data["result"]}]

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """First value of an instant query as a float, or None when the result is empty or NaN."""
        result = self.query(expr, at)
        if not result or "value" not in result[0]:
            return None
        value = float(result[0]["value"][1])
        return None if value != value else value

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """Range query; ``[{metric, values: [[t, "v"], ...]}, ...]``."""
        data = self._api(
            "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}, post=True
        )
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._api("/api/v1/alerts")["alerts"])

    def alerting_rules(self) -> list[dict[str, Any]]:
        """Every loaded alerting rule: ``{name, query, duration, labels, annotations, state}``."""
        groups = self._api("/api/v1/rules", {"type": "alert"})["groups"]
        return [rule for group in groups for rule in group["rules"] if rule.get("type") == "alerting"]

    def recording_rules(self) -> list[dict[str, Any]]:
        """Every loaded recording rule: ``{name, query, ...}``."""
        groups = self._api("/api/v1/rules", {"type": "record"})["groups"]
        return [rule for group in groups for rule in group["rules"] if rule.get("type") == "recording"]

    def firing_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a.get("state") == "firing"]

    def rules(self) -> list[dict[str, Any]]:
        """Loaded rule groups from ``/api/v1/rules``."""
        return list(self._api("/api/v1/rules")["groups"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self._api("/api/v1/targets")["activeTargets"])

    def reload(self) -> None:
        """Ask Prometheus to re-read its config and rule files (``POST /-/reload``; needs
        ``--web.enable-lifecycle``)."""
        request = urllib.request.Request(f"{self.url}/-/reload", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise PrometheusQueryError(f"reload failed ({err.code}): {detail}") from err
        except (urllib.error.URLError, OSError) as err:
            raise PrometheusQueryError(f"cannot reach Prometheus at {self.url}: {err}") from err

    def wait_for(self, expr: str, timeout: float = 30.0, interval: float = 0.5) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a non-empty result; raise after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise PrometheusQueryError(f"{expr!r} still empty after {timeout:.0f}s")
            time.sleep(interval)

    def config_intervals(self) -> tuple[float, float]:
        """(scrape_interval, evaluation_interval) in seconds from the running config (defaults 60 s)."""
        import yaml

        text = self._api("/api/v1/status/config")["yaml"]
        glob = (yaml.safe_load(text) or {}).get("global", {})
        from nfr.rulescale import parse_duration

        return (
            parse_duration(str(glob.get("scrape_interval", "1m"))),
            parse_duration(str(glob.get("evaluation_interval", "1m"))),
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise PrometheusQueryError(f"Prometheus at {self.url} not ready after {timeout:.0f}s")
            time.sleep(0.2)
