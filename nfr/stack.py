"""The stack a run needs, without Docker: the run's database and vhost, the reference service, the exporter,
a private Prometheus with the repository's rules (optionally time-compressed) and the load generator.

Given an external target (``StackSettings.target``) the stack starts only what is missing: no database,
vhost or service of its own; the exporter only on a DSN it was given; no Prometheus when one is given
(``prometheus_url``), else a private one that scrapes only what exists — the target's own metrics when it has
them, the exporter when it runs, the load generator — so a part left out is never a TargetDown.

The reference service runs as ``replicas`` supervised processes (:mod:`nfr.supervisor`); with more than one
they sit behind HAProxy (active health checks on /actuator/health, retries and redispatch when a connection
fails) and the run's target is the balancer. With ``broker_relay`` the service reaches RabbitMQ through a
relay process (``loadgen proxy``) the stack supervises, so a scenario can stop "the broker" without touching
the machine's shared RabbitMQ. The stack serves a service-control endpoint (``ControlServer``) that the load
generator's ``service`` actions call.

Everything here is started by the stack and stopped by it (``stop()`` is idempotent and is what the demo
calls from ``finally``), in reverse order; the database and the vhost are removed last.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nfr.backends import Backends
from nfr.processes import ManagedProcess, ProcessError, free_port, python_module
from nfr.promclient import HttpOptions, PrometheusClient
from nfr.prometheus import PrometheusServer, default_rule_files, render_config
from nfr.promql import format_duration
from nfr.rulescale import compress_rule_files, default_floor
from nfr.supervisor import ControlServer, Supervised
from ticketero.config import OPTIONS as SERVICE_OPTIONS

log = logging.getLogger("nfr.stack")

SERVICE_CONTAINER_NAME = "ticketero-app"
# The reference service's options the stack sets itself (service_command); the others pass through.
STACK_OWNED_SERVICE_OPTIONS = ("database_dsn", "amqp_url", "host", "port", "create_database")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


@dataclass
class StackSettings:
    """What to start. Times in seconds; ``compress`` > 1 divides every rule time span (see rulescale)."""

    run_dir: Path
    run_id: str = field(default_factory=new_run_id)
    backends: Backends = field(default_factory=Backends.from_env)
    compress: float = 1.0
    scrape_interval: float = 5.0
    floor: float | None = None
    rule_files: list[Path] | None = None
    # The reference service's own options (names of ticketero.config.OPTIONS) → values, handed on as its
    # flags: e.g. {"service_time": 0.2, "faults": "stalled-worker", "recovery": False}.
    service: Mapping[str, Any] = field(default_factory=dict)
    service_args: tuple[str, ...] = ()
    start_timeout: float = 60.0
    external: ExternalTarget | None = None  # judge this service instead of starting the reference one
    prometheus_url: str | None = None  # read (and let scrape) this Prometheus instead of a private one
    prometheus_http: HttpOptions = field(default_factory=HttpOptions)
    remote_write: tuple[str, ...] = ()  # the private Prometheus also sends every series there
    loadgen_port: int = 0  # 0: a free port (a given Prometheus must be told to scrape a fixed one)
    replicas: int = 1  # > 1: that many service processes behind HAProxy, which is the target
    broker_relay: bool = False  # the service reaches RabbitMQ through a supervised relay ("broker" service)
    check_interval: float = 0.5  # HAProxy's health check interval
    # Fault proxies between the reference service and its database or broker (see DependencyProxy).
    proxies: tuple[DependencyProxy, ...] = ()

    @property
    def rate_window(self) -> str:
        """Window for the verdict's rate() indicators: a minute, compressed, never under 4 scrapes."""
        return format_duration(max(60.0 / self.compress, 4 * self.scrape_interval))


@dataclass(frozen=True)
class ExternalTarget:
    """A service this stack did not start: its URL and what else the run was given to reach it."""

    url: str
    dsn: str | None = None  # PostgreSQL: feeds the exporter (RNF-01, 03, 04, 05) and the scenario's SQL
    amqp_url: str | None = None  # RabbitMQ: the exporter's queue figures and the scenario's AMQP actions
    metrics_path: str | None = None  # where the service serves its own metrics, None when it has none
    health_path: str = "/actuator/health"


@dataclass(frozen=True)
class DependencyProxy:
    """A `loadgen proxy` the stack starts in front of the run's database or broker: the reference service
    connects through it, the exporter and the load generator's own SQL do not. A scenario drives it (cut,
    latency, restore) through its control URL."""

    name: str
    dependency: str  # "database" or "broker"
    listen_port: int
    control_port: int

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"


def _through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by 127.0.0.1:``port`` (user, password and path kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _proxy_command(listen_port: int, upstream: str, control_port: int) -> list[str]:
    """`loadgen proxy` on 127.0.0.1:``listen_port`` in front of the database or broker URL ``upstream``,
    driven through 127.0.0.1:``control_port`` (the fault proxies and the broker relay)."""
    parts = urlsplit(upstream)
    default_port = 5432 if parts.scheme.startswith("postgres") else 5672
    return python_module(
        "loadgen", "proxy",
        "--listen", f"127.0.0.1:{listen_port}",
        "--target", f"{parts.hostname or '127.0.0.1'}:{parts.port or default_port}",
        "--control", f"127.0.0.1:{control_port}",
    )  # fmt: skip


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


class LocalStack:
    """Start with :meth:`start`, run load with :meth:`start_loadgen`, always :meth:`stop`."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.name = "nfr_" + settings.run_id.replace("-", "_")
        self.dir = settings.run_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.database_dsn: str | None = None
        self.amqp_url: str | None = None
        self.replicas: list[Supervised] = []
        self.proxies: list[ManagedProcess] = []
        self.service_ports: list[int] = []
        self.balancer: ManagedProcess | None = None
        self.balancer_port = 0
        self.relay: Supervised | None = None
        self.relay_port = 0
        self.control: ControlServer | None = None
        self.exporter: ManagedProcess | None = None
        self.loadgen: ManagedProcess | None = None
        self.prometheus: PrometheusServer | None = None
        self.exporter_port = 0
        self.loadgen_port = 0
        self.rule_files: list[Path] = []
        self._db_created = False
        self._vhost_created = False
        self._targets: dict[str, list[str]] = {}
        self._stopped = False

    # -- addresses ---------------------------------------------------------------------------------------

    @property
    def service(self) -> ManagedProcess | None:
        """The (first) service process."""
        return self.replicas[0].process if self.replicas else None

    @property
    def service_port(self) -> int:
        return self.service_ports[0] if self.service_ports else 0

    @property
    def service_url(self) -> str:
        if self.settings.external is not None:
            return self.settings.external.url.rstrip("/")
        if self.balancer_port:
            return f"http://127.0.0.1:{self.balancer_port}"
        return f"http://127.0.0.1:{self.service_port}"

    def replica_name(self, index: int) -> str:
        """``ticketero-app`` alone, ``ticketero-app-N`` (1-based) among replicas, as compose names them."""
        return (
            SERVICE_CONTAINER_NAME if self.settings.replicas == 1 else f"{SERVICE_CONTAINER_NAME}-{index + 1}"
        )

    def replica_pid_file(self, index: int) -> Path:
        return self.dir / f"{self.replica_name(index)}.pid"

    @property
    def pid_file(self) -> Path:
        return self.replica_pid_file(0)

    @property
    def service_amqp_url(self) -> str:
        """The broker as the service reaches it: through the relay when there is one."""
        assert self.amqp_url
        if not self.relay_port:
            return self.amqp_url
        parts = urlsplit(self.amqp_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.relay_port}" if auth else f"127.0.0.1:{self.relay_port}"
        return parts._replace(netloc=netloc).geturl()

    def controlled(self) -> dict[str, list[Supervised]]:
        """What the service-control endpoint can act on: the service's replicas, and the broker relay."""
        services: dict[str, list[Supervised]] = {"app": list(self.replicas)}
        if self.relay is not None:
            services["broker"] = [self.relay]
        return services

    @property
    def client(self) -> PrometheusClient:
        if self.settings.prometheus_url is not None:
            return PrometheusClient(self.settings.prometheus_url, http=self.settings.prometheus_http)
        if self.prometheus is None:
            raise ProcessError("Prometheus not started")
        return PrometheusClient(self.prometheus.url)

    # -- start ---------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Database + vhost, service, exporter, Prometheus; raises ProcessError with logs on failure."""
        s = self.settings
        try:
            if s.external is None:
                self.database_dsn = s.backends.create_database(self.name)
                self._db_created = True
                self.amqp_url = s.backends.create_vhost(self.name)
                self._vhost_created = True
                self.start_proxies()
                if s.broker_relay:
                    self.start_relay()
                self.start_service()
                self.start_exporter()
                self.control = ControlServer(self.controlled)
                self.control.start()
            else:
                self.database_dsn, self.amqp_url = s.external.dsn, s.external.amqp_url
                if self.database_dsn:
                    self.start_exporter()
            if s.prometheus_url is None:
                self.start_prometheus()
            else:
                self.client.check()
        except BaseException:
            self.stop()
            raise
        return self

    def _through_proxy(self, dependency: str, url: str) -> str:
        """Where the service reaches ``dependency``: through its fault proxy when the run has one."""
        for proxy in self.settings.proxies:
            if proxy.dependency == dependency:
                return _through(url, proxy.listen_port)
        return url

    def start_proxies(self) -> None:
        """One `loadgen proxy` per DependencyProxy, each answering on its control URL before the service starts."""
        assert self.database_dsn and self.amqp_url
        for spec in self.settings.proxies:
            url = self.database_dsn if spec.dependency == "database" else self.amqp_url
            process = ManagedProcess(
                f"proxy-{spec.name}",
                _proxy_command(spec.listen_port, url, spec.control_port),
                self.dir / "logs" / f"proxy-{spec.name}.log",
            ).start()
            self.proxies.append(process)
            process.wait_http(spec.control_url + "/status", self.settings.start_timeout)

    def service_command(self, faults: tuple[str, ...] | None = None, port: int | None = None) -> list[str]:
        s = self.settings
        assert self.database_dsn and self.amqp_url
        args = [
            "--database-dsn", self._through_proxy("database", self.database_dsn),
            "--amqp-url", self._through_proxy("broker", self.service_amqp_url),
            "--host", "127.0.0.1",
            "--port", str(self.service_port if port is None else port),
        ]  # fmt: skip
        options = dict(s.service) if faults is None else {**s.service, "faults": faults}
        if "readiness_drain" not in options and s.replicas > 1:
            # behind the balancer, unless the run says otherwise: health DOWN for four checks before the
            # listener closes, so HAProxy stops sending first
            options["readiness_drain"] = 4 * s.check_interval
        return python_module("ticketero", *args, *SERVICE_OPTIONS.argv(options), *s.service_args)

    def start_service(self, faults: tuple[str, ...] | None = None) -> ManagedProcess:
        """(Re)start the reference service's replicas, each on its own port (kept across restarts), then the
        balancer in front of them when there are several; the pid files follow the new processes."""
        for replica in self.replicas:
            replica.shutdown()
        count = max(1, self.settings.replicas)
        if len(self.service_ports) != count:
            self.service_ports = [free_port() for _ in range(count)]
        self.replicas = [self._replica(index, faults) for index in range(count)]
        for replica in self.replicas:
            replica.start()
        if count > 1 and self.balancer is None:
            self.start_balancer()
        assert self.service is not None
        return self.service

    def _replica(self, index: int, faults: tuple[str, ...] | None) -> Supervised:
        port = self.service_ports[index]
        name = self.replica_name(index)
        command = self.service_command(faults, port)
        log_name = "ticketero.log" if self.settings.replicas == 1 else f"ticketero-{index + 1}.log"
        pid_file = self.replica_pid_file(index)
        timeout = self.settings.start_timeout

        def ready(process: ManagedProcess) -> None:
            process.wait_http(f"http://127.0.0.1:{port}/actuator/health", timeout)

        return Supervised(
            name,
            lambda: ManagedProcess(name, command, self.dir / "logs" / log_name),
            ready,
            started=lambda process: pid_file.write_text(f"{process.pid}\n"),
        )

    def start_balancer(self) -> ManagedProcess:
        """HAProxy in front of the replicas: health-checked, retries and redispatch on connection failure."""
        self.balancer_port = free_port()
        config = self.dir / "haproxy.cfg"
        config.write_text(
            haproxy_config(self.balancer_port, self.service_ports, self.settings.check_interval)
        )
        haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
        if haproxy is None:
            raise ProcessError(
                f"{self.settings.replicas} replicas need the HAProxy load balancer: haproxy not found "
                "(scripts/bootstrap.sh installs the Debian package haproxy)"
            )
        self.balancer = ManagedProcess(
            "haproxy", [haproxy, "-db", "-f", str(config)], self.dir / "logs" / "haproxy.log"
        ).start()
        self.balancer.wait_http(f"{self.service_url}/actuator/health", self.settings.start_timeout)
        return self.balancer

    def start_relay(self) -> Supervised:
        """A TCP relay in front of the broker (``loadgen proxy``): the "broker" a scenario may stop."""
        assert self.amqp_url
        self.relay_port = free_port()
        control_port = free_port()
        args = _proxy_command(self.relay_port, self.amqp_url, control_port)
        timeout = self.settings.start_timeout
        self.relay = Supervised(
            "broker-relay",
            lambda: ManagedProcess("broker-relay", args, self.dir / "logs" / "broker-relay.log"),
            lambda process: process.wait_http(f"http://127.0.0.1:{control_port}/status", timeout),
        )
        self.relay.start()
        return self.relay

    def start_exporter(self) -> ManagedProcess:
        s = self.settings
        assert self.database_dsn
        self.exporter_port = free_port()
        env = {
            "EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
            "EXPORTER_LISTEN_PORT": str(self.exporter_port),
            "EXPORTER_DATABASE_DSN": self.database_dsn,
        }
        if s.external is None:
            assert self.amqp_url
            env |= {
                "EXPORTER_AMQP_URL": self.amqp_url,
                "EXPORTER_RABBITMQ_MANAGEMENT_URL": s.backends.management_url,
                "EXPORTER_HEALTH_URL": f"{self.service_url}/actuator/health",
                "EXPORTER_RESOURCES_BACKEND": "process",
                "EXPORTER_RESOURCES_TARGETS": ",".join(
                    f"{self.replica_name(i)}=pid_file:{self.replica_pid_file(i)}"
                    for i in range(len(self.replicas))
                ),
            }
        else:  # a service we did not start: no pid to read; its memory comes from its own process_* series
            env["EXPORTER_HEALTH_URL"] = self.service_url + s.external.health_path
            if self.amqp_url:
                env["EXPORTER_AMQP_URL"] = self.amqp_url
        self.exporter = ManagedProcess(
            "exporter", python_module("exporters"), self.dir / "logs" / "exporter.log", env=env
        ).start()
        self.exporter.wait_http(f"http://127.0.0.1:{self.exporter_port}/metrics", s.start_timeout)
        return self.exporter

    def start_prometheus(self) -> PrometheusServer:
        s = self.settings
        sources = s.rule_files if s.rule_files is not None else default_rule_files()
        if s.compress > 1:
            floor = s.floor if s.floor is not None else default_floor(s.scrape_interval)
            self.rule_files = compress_rule_files(sources, self.dir / "rules", s.compress, floor)
        else:
            self.rule_files = [Path(p) for p in sources]
        port = free_port()
        # Only what exists is scraped: a job without a target has no `up` series, so no TargetDown.
        self._targets = {"prometheus": [f"127.0.0.1:{port}"]}
        if self.exporter is not None:
            self._targets["ticketero-exporter"] = [f"127.0.0.1:{self.exporter_port}"]
        if s.external is None:
            self._targets["ticketero-app"] = [f"127.0.0.1:{port}" for port in self.service_ports]
            rabbit = s.backends.rabbit_prometheus_address()
            if rabbit:
                self._targets["rabbitmq"] = [rabbit]
        elif s.external.metrics_path is not None:
            self._targets["ticketero-app"] = [_host_port(s.external.url)]
        self._render()
        self.prometheus = PrometheusServer(
            self.dir / "prometheus.yml",
            self.dir / "prometheus",
            port=port,
            start_timeout=s.start_timeout,
            extra_args=["--web.enable-admin-api", "--storage.tsdb.retention.time=100y"],
        )
        self.prometheus.start()
        return self.prometheus

    def _render(self) -> None:
        s = self.settings
        interval = format_duration(s.scrape_interval)
        paths = {}
        schemes = {}
        if s.external is None:
            paths["ticketero-app"] = "/actuator/prometheus"
        elif s.external.metrics_path is not None:
            paths["ticketero-app"] = s.external.metrics_path
            schemes["ticketero-app"] = urlsplit(s.external.url).scheme
        render_config(
            self.dir / "prometheus.yml",
            self._targets,
            rule_files=self.rule_files,
            scrape_interval=interval,
            evaluation_interval=interval,
            metrics_paths=paths,
            schemes=schemes,
            remote_write=s.remote_write,
        )

    def snapshot(self, dest: Path) -> Path | None:
        """A TSDB snapshot of the private Prometheus (admin API) copied to ``dest``/tsdb, with the rule files
        it evaluated and its config beside it: what ``nfr verdict --snapshot`` needs to judge the run again.
        None when the run read a Prometheus it did not start (that one keeps its own data)."""
        if self.prometheus is None:
            return None
        source = self.prometheus.snapshot()
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest / "tsdb", dirs_exist_ok=True)
        shutil.rmtree(source, ignore_errors=True)
        rules = dest / "rules"
        rules.mkdir(exist_ok=True)
        for index, rule_file in enumerate(self.rule_files):
            shutil.copyfile(rule_file, rules / f"{index:02d}-{Path(rule_file).name}")
        shutil.copyfile(self.dir / "prometheus.yml", dest / "prometheus.yml")
        return dest

    def add_target(self, job: str, address: str) -> None:
        """Add a scrape target and reload Prometheus (used for the load generator once it listens).
        A Prometheus this stack did not start is not touched: it must scrape the target itself."""
        if self.settings.prometheus_url is not None:
            return
        self._targets.setdefault(job, [])
        if address not in self._targets[job]:
            self._targets[job].append(address)
        self._render()
        if self.prometheus is not None:
            self.prometheus.reload()

    # -- load ----------------------------------------------------------------------------------------

    def start_loadgen(
        self,
        scenario: Path,
        *,
        duration: float | None = None,
        rate: float | None = None,
        linger: float = 30.0,
        extra_args: tuple[str, ...] = (),
    ) -> ManagedProcess:
        """Run the scenario against the service; its metrics port is added to Prometheus once it serves."""
        self.loadgen_port = self.settings.loadgen_port or free_port()
        args = [
            "run", str(scenario),
            "--target", self.service_url,
            "--metrics-port", str(self.loadgen_port),
            "--linger", format_duration(linger),
            "--summary-json", str(self.dir / "loadgen-summary.json"),
        ]  # fmt: skip
        if duration is not None:
            args += ["--duration", format_duration(duration)]
        if rate is not None:
            args += ["--rate", f"{rate:g}"]
        if self.database_dsn:
            args += ["--database-dsn", self.database_dsn]
        if self.amqp_url:
            args += ["--amqp-url", self.amqp_url]
        if self.control is not None:
            args += ["--service-control", self.control.url]
        # Command actions of a scenario (freeze, kill, restart the service) find the process through this.
        env = {"TICKETERO_NFR_SERVICE_PID_FILE": str(self.pid_file), "TICKETERO_NFR_RUN_DIR": str(self.dir)}
        self.loadgen = ManagedProcess(
            "loadgen",
            python_module("loadgen", *args, *extra_args),
            self.dir / "logs" / "loadgen.log",
            env=env,
        ).start()
        self.loadgen.wait_http(f"http://127.0.0.1:{self.loadgen_port}/metrics", self.settings.start_timeout)
        self.add_target("loadgen", f"127.0.0.1:{self.loadgen_port}")
        return self.loadgen

    def loadgen_sample(self, name: str) -> float | None:
        """A sample straight from the load generator's endpoint (not via Prometheus), e.g. run_active."""
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.loadgen_port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                try:
                    return float(line.rsplit(" ", 1)[1])
                except ValueError:
                    return None
        return None

    # -- stop ----------------------------------------------------------------------------------------

    def stop(self, keep_data: bool = False) -> None:
        """Stop everything this stack started, newest first; drop the database and the vhost."""
        if self._stopped:
            return
        self._stopped = True
        if self.control is not None:
            self.control.stop()
        for process in (self.loadgen, self.exporter, self.balancer):
            if process is not None:
                try:
                    process.stop()
                except Exception as err:  # keep stopping the rest
                    log.warning("stopping %s: %s", process.name, err)
        for replica in self.replicas:
            replica.shutdown()
        if self.relay is not None:
            self.relay.shutdown()
        for proxy in reversed(self.proxies):
            try:
                proxy.stop()
            except Exception as err:  # keep stopping the rest
                log.warning("stopping %s: %s", proxy.name, err)
        if self.prometheus is not None:
            self.prometheus.stop()
        backends = self.settings.backends
        if self._vhost_created:
            try:
                backends.delete_vhost(self.name)
            except Exception as err:
                log.warning("deleting vhost %s: %s", self.name, err)
        if self._db_created and not keep_data:
            try:
                backends.drop_database(self.name)
            except Exception as err:
                log.warning("dropping database %s: %s", self.name, err)
        if not keep_data:
            shutil.rmtree(self.dir / "prometheus" / "tsdb", ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def haproxy_config(port: int, servers: list[int], check_interval: float) -> str:
    """HAProxy in front of the replicas. A server is taken out at its first failed health check (a replica
    that drains answers 503) and back at its first good one; a refused connection is retried on another
    server (``retry-on conn-failure`` + ``redispatch``), never a request that was already sent (a POST is
    not repeated). One request per server connection, so no request goes out on a connection the replica
    is closing."""
    inter = f"{max(1, round(check_interval * 1000))}ms"
    lines = [
        "global",
        "    maxconn 2000",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    retries 3",
        "    retry-on conn-failure",
        "    option redispatch 1",
        "    option http-server-close",
        "frontend ticketero",
        f"    bind 127.0.0.1:{port}",
        "    default_backend replicas",
        "backend replicas",
        "    balance roundrobin",
        "    option httpchk GET /actuator/health",
        "    http-check expect status 200",
        f"    default-server inter {inter} fall 1 rise 1",
    ]
    lines += [f"    server app-{i + 1} 127.0.0.1:{server} check" for i, server in enumerate(servers)]
    return "\n".join(lines) + "\n"
