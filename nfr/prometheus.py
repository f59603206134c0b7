"""Run a private Prometheus for tests and the local stack.

The Debian package ships ``/usr/bin/prometheus``; this module starts it on a free port with its own data
directory, waits until it is ready, and answers the HTTP API calls of ``nfr.promclient.PrometheusClient``
(instant and range queries, alerts, rules, reload). It uses only the standard library so that any test or script can
import it without extra dependencies.

``render_config`` writes a ``prometheus.yml`` for a given set of targets, so the repository's recording
rules and alerts can be evaluated against exporters and load generators listening on arbitrary ports.

Example::

    cfg = render_config(tmp / "prometheus.yml", {"ticketero-exporter": ["127.0.0.1:10187"]},
                        rule_files=default_rule_files())
    with PrometheusServer(cfg, tmp / "data") as prom:
        prom.query("up")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from nfr.processes import free_port
from nfr.promclient import PrometheusClient, PrometheusError, PrometheusQueryError

__all__ = [
    "PrometheusClient",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusServer",
    "default_rule_files",
    "free_port",
    "render_config",
]

PROMETHEUS_BINARY = os.environ.get("PROMETHEUS_BINARY", "/usr/bin/prometheus")
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Job → metrics path for targets that do not expose ``/metrics`` (see docs/metrics.md).
METRICS_PATHS = {"ticketero-app": "/actuator/prometheus"}


ASSETS = Path(__file__).resolve().parent / "assets"  # in a wheel: copies of the rules, alerts, dashboards


def default_rule_files(root: Path = REPO_ROOT) -> list[Path]:
    """The repository's recording rules and alerts, as absolute paths (the package's copies when installed
    from a wheel, where there is no repository)."""
    if not (root / "prometheus" / "rules").is_dir():
        return sorted((ASSETS / "rules").glob("*.yml")) + sorted((ASSETS / "alerts").glob("*.yml"))
    return sorted((root / "prometheus" / "rules").glob("*.yml")) + sorted((root / "alerts").glob("*.yml"))


def render_config(
    path: str | os.PathLike[str],
    targets: Mapping[str, Sequence[str]],
    *,
    rule_files: Iterable[str | os.PathLike[str]] = (),
    scrape_interval: str = "5s",
    evaluation_interval: str = "5s",
    scrape_timeout: str | None = None,
    alertmanagers: Sequence[str] = (),
    metrics_paths: Mapping[str, str] | None = None,
    external_labels: Mapping[str, str] | None = None,
    schemes: Mapping[str, str] | None = None,
    remote_write: Sequence[str] = (),
) -> Path:
    """Write a prometheus.yml scraping ``targets`` (job → ["host:port", ...]) and return its path.

    Rule files are written as absolute paths so the config works wherever Prometheus runs from. Jobs listed
    in ``metrics_paths`` (default: :data:`METRICS_PATHS`) get that metrics path, jobs in ``schemes`` that
    scheme (https). ``remote_write`` URLs receive every series, rule results and ``ALERTS`` included.
    """
    paths = dict(METRICS_PATHS if metrics_paths is None else metrics_paths)
    global_cfg: dict[str, Any] = {
        "scrape_interval": scrape_interval,
        "evaluation_interval": evaluation_interval,
    }
    if scrape_timeout:
        global_cfg["scrape_timeout"] = scrape_timeout
    if external_labels:
        global_cfg["external_labels"] = dict(external_labels)
    scrape_configs = []
    for job, addresses in targets.items():
        job_cfg: dict[str, Any] = {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
        if job in paths:
            job_cfg["metrics_path"] = paths[job]
        if schemes and job in schemes:
            job_cfg["scheme"] = schemes[job]
        scrape_configs.append(job_cfg)
    config: dict[str, Any] = {
        "global": global_cfg,
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": scrape_configs,
    }
    if remote_write:
        # Short batches: a run's last samples reach the store within a few seconds of the verdict.
        config["remote_write"] = [
            {"url": url, "queue_config": {"batch_send_deadline": "1s"}} for url in remote_write
        ]
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


class PrometheusServer(PrometheusClient):
    """A Prometheus process owned by the caller: ``start()``/``stop()`` or ``with PrometheusServer(...)``.
    The HTTP API calls (query, query_range, alerts, rules, reload, ...) are those of PrometheusClient.

    ``port=0`` picks a free port. ``data_dir=None`` uses a temporary directory removed on ``stop()``.
    The lifecycle API (``--web.enable-lifecycle``) is always on so :meth:`reload` works.
    """

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        data_dir: str | os.PathLike[str] | None = None,
        port: int = 0,
        extra_args: Sequence[str] = (),
        *,
        binary: str = PROMETHEUS_BINARY,
        start_timeout: float = 30.0,
    ) -> None:
        self.config_path = Path(config_path).resolve()
        self._own_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="prom-"))
        self.port = port or free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.extra_args = list(extra_args)
        self.binary = binary
        self.start_timeout = start_timeout
        self.log_path = self.data_dir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> PrometheusServer:
        """Start Prometheus and block until ``/-/ready`` answers 200; raise with the log tail otherwise."""
        if self._process is not None:
            raise PrometheusError("already started")
        if not Path(self.binary).exists():
            raise PrometheusError(f"{self.binary} not found (install the Debian 'prometheus' package)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tsdb = self.data_dir / "tsdb"
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=info",
            *self.extra_args,
        ]
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                tail = self.log_tail()
                self._process = None
                self._cleanup_process()
                raise PrometheusError(f"prometheus exited with code {code} during start; log tail:\n{tail}")
            if self._ready():
                return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise PrometheusError(f"prometheus not ready after {self.start_timeout:.0f}s; log tail:\n{tail}")

    def stop(self) -> None:
        """Terminate the process (kill after 10 s) and remove a temporary data directory."""
        proc = self._process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._cleanup_process()
        self._process = None
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _cleanup_process(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> Path:
        """Take a TSDB snapshot (admin API: start with ``--web.enable-admin-api``), head block included;
        returns its directory under the data dir's ``tsdb/snapshots/``."""
        data = self._api("/api/v1/admin/tsdb/snapshot", {"skip_head": "false"}, post=True)
        return self.data_dir / "tsdb" / "snapshots" / str(data["name"])

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False
