"""A thin HTTP client for any Prometheus-compatible API, given its base URL and how to authenticate.

``nfr.prometheus.PrometheusServer`` owns a local process; the verdict must also work against a Prometheus
it did not start (a compose stack, a staging server behind TLS and a password, Mimir, Cortex or Thanos), so
the read-only API calls it needs live here, with only the standard library. :class:`HttpOptions` carries
what a secured endpoint asks for, the same knobs as Prometheus's own ``http_config``: bearer token or basic
auth (secrets read from files, never from flags), a CA, a client certificate, the TLS server name, extra
headers (``X-Scope-OrgID`` for Mimir/Cortex) and a path prefix (``/prometheus`` in front of ``/api/v1``).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class PrometheusError(RuntimeError):
    """Prometheus failed to start, was unreachable, or answered an API call with an error."""


class PrometheusQueryError(PrometheusError):
    """Prometheus was unreachable or answered an API call with an error."""


class PrometheusAuthError(PrometheusQueryError):
    """The endpoint refused the credentials (401/403) or its TLS certificate could not be verified."""


@dataclass(frozen=True)
class HttpOptions:
    """How to reach a secured Prometheus-compatible API. Secrets are read from files at each request, so a
    rotated token is picked up and nothing secret sits in a command line or a process list."""

    bearer_token_file: Path | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None  # TLS server name to send and verify, when it differs from the URL's host
    insecure_skip_verify: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"X-Scope-OrgID": "tenant-1"}
    path_prefix: str = ""  # e.g. "/prometheus" (Mimir) in front of /api/v1/...

    def __post_init__(self) -> None:
        if self.bearer_token_file is not None and self.basic_auth_user is not None:
            raise ValueError("choose one of bearer token and basic auth, not both")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both its certificate file and its key file")

    def auth_header(self) -> str | None:
        if self.bearer_token_file is not None:
            return "Bearer " + _read_secret(self.bearer_token_file, "bearer token file")
        if self.basic_auth_user is not None:
            password = ""
            if self.basic_auth_password_file is not None:
                password = _read_secret(self.basic_auth_password_file, "basic auth password file")
            pair = f"{self.basic_auth_user}:{password}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        return None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context for https URLs when any TLS option is set (else Python's default verification)."""
        if not (self.ca_file or self.cert_file or self.server_name or self.insecure_skip_verify):
            return None
        context = _ServerNameContext(ssl.PROTOCOL_TLS_CLIENT)
        context.server_name = self.server_name
        try:
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            else:
                context.load_default_certs()
            if self.cert_file is not None and self.key_file is not None:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as err:
            raise PrometheusQueryError(f"TLS files: {err}") from err
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class _ServerNameContext(ssl.SSLContext):
    """Sends (and verifies) ``server_name`` instead of the URL's host: a Prometheus reached by IP or
    through a tunnel whose certificate names its public host."""

    server_name: str | None = None

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        if self.server_name:
            kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def _read_secret(path: Path, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as err:
        raise PrometheusQueryError(f"{what} {path}: {err.strerror or err}") from err


class PrometheusClient:
    """Read-only access to a Prometheus HTTP API: instant and range queries, alerts, rules, targets.

    ``http`` says how to authenticate; ``rule_files`` (optional) makes :meth:`rules` and friends answer from
    those files instead of ``/api/v1/rules`` — for a long-term store that holds the run's series (ALERTS
    included, as remote write sends them) but does not evaluate the rules itself."""

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        http: HttpOptions | None = None,
        rule_files: list[Path] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.http = http or HttpOptions()
        self.rule_files = rule_files
        self._context = self.http.ssl_context() if self.url.startswith("https://") else None
        self._base = (
            self.url + "/" + self.http.path_prefix.strip("/")
            if self.http.path_prefix.strip("/")
            else self.url
        )

    def _request(self, path: str, data: bytes | None = None, method: str = "GET") -> bytes:
        """One HTTP call with the configured credentials; raises PrometheusQueryError (Auth on 401/403/TLS)."""
        request = urllib.request.Request(f"{self._base}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        for name, value in self.http.headers.items():
            request.add_header(name, value)
        auth = self.http.auth_header()
        if auth is not None:
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace").strip()
            try:
                payload = json.loads(detail)
                detail = f"{payload.get('errorType')}: {payload.get('error')}"
            except ValueError:
                pass
            if err.code in (401, 403):
                raise PrometheusAuthError(
                    f"{self.url} refused the credentials ({err.code} {err.reason}): {detail or 'no detail'}; "
                    "check the bearer token / basic auth options"
                ) from err
            raise PrometheusQueryError(f"{self._base}{path} failed ({err.code}): {detail}") from err
        except urllib.error.URLError as err:
            if isinstance(err.reason, ssl.SSLError):
                raise PrometheusAuthError(
                    f"TLS with {self.url} failed: {err.reason}; check the CA, the client certificate and "
                    "the server name options"
                ) from err
            raise PrometheusQueryError(f"cannot reach Prometheus at {self.url}: {err}") from err
        except (OSError, http.client.HTTPException) as err:
            raise PrometheusQueryError(f"cannot reach Prometheus at {self.url}: {err}") from err

    def _api(self, path: str, params: Mapping[str, Any] | None = None, post: bool = False) -> Any:
        data = None
        if params:
            encoded = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
            if post:  # queries go in the body: PromQL can be longer than a URL may be
                data = encoded.encode()
            else:
                path = f"{path}?{encoded}"
        raw = self._request(path, data, "POST" if post else "GET")
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise PrometheusQueryError(
                f"{self._base}{path}: not a Prometheus API answer: {raw[:200]!r}"
            ) from err
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
        return [rule for group in self.rules() for rule in group["rules"] if rule.get("type") == "alerting"]

    def recording_rules(self) -> list[dict[str, Any]]:
        """Every loaded recording rule: ``{name, query, ...}``."""
        return [rule for group in self.rules() for rule in group["rules"] if rule.get("type") == "recording"]

    def firing_alerts(self) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a.get("state") == "firing"]

    def rules(self) -> list[dict[str, Any]]:
        """Loaded rule groups from ``/api/v1/rules`` (or, given ``rule_files``, read from those files)."""
        if self.rule_files is not None:
            return rule_groups_from_files(self.rule_files)
        return list(self._api("/api/v1/rules")["groups"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self._api("/api/v1/targets")["activeTargets"])

    def reload(self) -> None:
        """Ask Prometheus to re-read its config and rule files (``POST /-/reload``; needs
        ``--web.enable-lifecycle``)."""
        self._request("/-/reload", b"", "POST")

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
        from nfr.promql import parse_duration

        return (
            parse_duration(str(glob.get("scrape_interval", "1m"))),
            parse_duration(str(glob.get("evaluation_interval", "1m"))),
        )

    def check(self) -> None:
        """One cheap authenticated API call: raises PrometheusAuthError on refused credentials or TLS, so a
        run stops before any load rather than after it."""
        self._api("/api/v1/status/buildinfo")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._api("/api/v1/status/buildinfo")
                return
            except PrometheusAuthError:
                raise
            except PrometheusQueryError:
                pass
            if time.monotonic() > deadline:
                raise PrometheusQueryError(f"Prometheus at {self.url} not ready after {timeout:.0f}s")
            time.sleep(0.2)


def rule_groups_from_files(paths: list[Path]) -> list[dict[str, Any]]:
    """Rule groups in the shape of ``/api/v1/rules`` (``query``, ``duration`` in seconds, ``type``), read
    from Prometheus rule files."""
    import yaml

    from nfr.promql import parse_duration

    groups = []
    for path in paths:
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise PrometheusQueryError(f"rule file {path}: {err}") from err
        for group in document.get("groups") or []:
            rules = []
            for rule in group.get("rules") or []:
                common = {"query": str(rule.get("expr", "")), "labels": dict(rule.get("labels") or {})}
                if "alert" in rule:
                    rules.append({
                        **common,
                        "type": "alerting",
                        "name": rule["alert"],
                        "duration": parse_duration(str(rule["for"])) if rule.get("for") else 0.0,
                        "annotations": dict(rule.get("annotations") or {}),
                        "state": "inactive",
                    })  # fmt: skip
                else:
                    rules.append({**common, "type": "recording", "name": rule.get("record", "")})
            groups.append({"name": group.get("name", ""), "file": str(path), "rules": rules})
    return groups
