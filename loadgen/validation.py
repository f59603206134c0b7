"""Validation of a raw scenario document into the typed model, with messages that name the file (or the
environment variable / flag a value came from), the key path and what was expected. Integers, numbers,
ports and durations are checked by the settings core's validators (``ticketero_settings``), as the
variables and flags are; what is here is the scenario's own shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from loadgen.model import (
    BUILTIN_ENDPOINTS,
    MAX_RUN_SECONDS,
    MODELS,
    QUEUE_TYPES,
    THRESHOLD_METRICS,
    Action,
    ConfigError,
    Probe,
    ProxySpec,
    RequestSpec,
    Scenario,
    Stage,
    ThinkTime,
    Threshold,
    TicketTemplate,
    UserClass,
    Workload,
)
from loadgen.units import parse_duration, parse_rate
from ticketero_settings import describe_value, host_port, integer, number, port

T = TypeVar("T")


class ScenarioReader:
    """Walks the raw document; every accessor knows the key path it reads for error messages."""

    def __init__(self, source: str, origins: Mapping[tuple[str, ...], str]) -> None:
        self.source = source
        self.origins = origins

    # -- primitives --------------------------------------------------------------------------------------

    @staticmethod
    def dotted(path: tuple[str | int, ...]) -> str:
        text = ""
        for part in path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text or "(top level)"

    def fail(self, path: tuple[str | int, ...], expected: str, got: Any) -> ConfigError:
        origin = self.origins.get(tuple(str(part) for part in path))
        where = origin or self.source
        return ConfigError(f"{where}: {self.dotted(path)}: expected {expected}, got {describe_value(got)}")

    def known_keys(self, node: Mapping, path: tuple[str | int, ...], allowed: tuple[str, ...]) -> None:
        for key in node:
            if key not in allowed:
                raise ConfigError(
                    f"{self.source}: {self.dotted((*path, str(key)))}: unknown key; expected one of "
                    f"{', '.join(allowed)}"
                )

    def mapping(self, node: Mapping, key: str, path: tuple) -> dict:
        value = node.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail((*path, key), "a mapping", value)
        return value

    def listing(self, node: Mapping, key: str, path: tuple) -> list:
        value = node.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail((*path, key), "a list", value)
        return value

    def text(self, node: Mapping, key: str, path: tuple, default: str | None = None) -> str:
        value = node.get(key, default)
        if value is None:
            raise self.fail((*path, key), "a string", None)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail((*path, key), "a string", value)
        return str(value)

    def integer(
        self,
        node: Mapping,
        key: str,
        path: tuple,
        default: int | None,
        minimum: int = 0,
        maximum: int | None = None,
    ) -> int:
        value = node.get(key, default)
        if isinstance(value, str):  # in a scenario file an integer is written as one
            raise self.fail((*path, key), integer(minimum, maximum).expected, value)
        return self.parsed(node, key, path, default, integer(minimum, maximum))

    def number(self, node: Mapping, key: str, path: tuple, default: float, minimum: float = 0.0) -> float:
        value = node.get(key, default)
        if isinstance(value, str):
            raise self.fail((*path, key), number(minimum).expected, value)
        return self.parsed(node, key, path, default, number(minimum))

    def parsed(self, node: Mapping, key: str, path: tuple, default: Any, parser: Callable[[Any], T]) -> T:
        value = node.get(key, default)
        try:
            return parser(value)
        except ValueError as error:
            raise self.fail((*path, key), str(error), value) from None

    def duration(self, node: Mapping, key: str, path: tuple, default: Any) -> float:
        seconds = self.parsed(node, key, path, default, parse_duration)
        if seconds > MAX_RUN_SECONDS:
            raise self.fail((*path, key), f"a duration of at most {MAX_RUN_SECONDS / 3600:g}h", node.get(key))
        return seconds

    # -- sections ---------------------------------------------------------------------------------------

    TOP_KEYS = (
        "name",
        "description",
        "hypothesis",
        "target",
        "allow_targets",
        "duration",
        "max_requests",
        "timeout",
        "http_client",
        "workload",
        "think_time",
        "requests",
        "user_classes",
        "ticket",
        "thresholds",
        "services",
        "proxies",
        "setup",
        "steady_state",
        "method",
        "rollbacks",
        "settle",
        "verify",
        "metrics_port",
        "linger",
        "summary_json",
        "summary_csv",
        "processes",
        "progress_interval",
        "notes",
        # Read by the judge (python -m nfr), not by the load generator: the alerts a fault scenario expects
        # to fire and clear, the NFRs the scenario must put to the test, and what it needs beyond HTTP
        # (database, broker, service-control) so a run without it is refused before any request; how many
        # replicas of the service the local stack runs behind its load balancer; and the configurations of
        # the service the judge runs the scenario under, one run each, then compared.
        "expect_alerts",
        "exercises",
        "needs",
        "replicas",
        "configurations",
    )

    def scenario(self, doc: dict) -> Scenario:
        self.known_keys(doc, (), self.TOP_KEYS)
        name = self.text(doc, "name", (), Path(self.source).stem)
        target = self.text(doc, "target", (), "http://127.0.0.1:8080").rstrip("/")
        if not target.startswith(("http://", "https://")):
            raise self.fail(("target",), "an http:// or https:// URL", target)
        allow = doc.get("allow_targets") or []
        if isinstance(allow, str):
            allow = [allow]
        if not isinstance(allow, list) or not all(isinstance(item, str) for item in allow):
            raise self.fail(("allow_targets",), "a list of host names or host:port", allow)
        max_requests = doc.get("max_requests")
        if max_requests is not None:
            max_requests = self.integer(doc, "max_requests", (), None, minimum=1)
        timeout = self.duration(doc, "timeout", (), "10s")
        if timeout <= 0:
            raise self.fail(("timeout",), "a duration greater than 0", doc.get("timeout"))
        services = self.mapping(doc, "services", ())
        for key, value in services.items():
            if not isinstance(value, str):
                raise self.fail(("services", key), "a string (a DSN or URL)", value)
        if "service_control" in services:
            from loadgen.service_control import check_control

            problem = check_control(services["service_control"])
            if problem:
                raise self.fail(("services", "service_control"), problem, services["service_control"])
        workload = self.workload(self.mapping(doc, "workload", ()))
        processes = self.integer(doc, "processes", (), 1, minimum=1, maximum=64)
        if processes > 1 and workload.model == "contention":
            raise self.fail(
                ("processes",), "1 for the contention model (all clients must race in one process)", processes
            )
        scenario = Scenario(
            name=name,
            source=self.source,
            description=str(doc.get("description") or ""),
            target=target,
            allow_targets=tuple(allow),
            duration=self.duration(doc, "duration", (), "60s"),
            max_requests=max_requests,
            timeout=timeout,
            http_client=self.http_client(doc),
            workload=workload,
            classes=self.user_classes(doc),
            ticket=self.ticket(self.mapping(doc, "ticket", ())),
            thresholds=tuple(
                self.threshold(item, ("thresholds", index))
                for index, item in enumerate(self.listing(doc, "thresholds", ()))
            ),
            services={str(key): str(value) for key, value in services.items()},
            proxies=tuple(
                self.proxy(item, ("proxies", index))
                for index, item in enumerate(self.listing(doc, "proxies", ()))
            ),
            setup=self.actions(doc, "setup", timed=False),
            steady_state=self.probes(doc, "steady_state"),
            method=self.actions(doc, "method", timed=True),
            rollbacks=self.actions(doc, "rollbacks", timed=False),
            settle=self.duration(doc, "settle", (), 0),
            verify=self.probes(doc, "verify"),
            metrics_port=self.parsed(doc, "metrics_port", (), 9646, port(zero_means="serve no metrics")),
            linger=self.duration(doc, "linger", (), 0),
            summary_json=str(doc["summary_json"]) if doc.get("summary_json") else None,
            summary_csv=str(doc["summary_csv"]) if doc.get("summary_csv") else None,
            processes=processes,
            progress_interval=self.duration(doc, "progress_interval", (), "5s"),
        )
        self.check_proxy_references(scenario)
        return scenario

    def http_client(self, doc: dict) -> str:
        value = doc.get("http_client", "fast")
        if value not in ("fast", "aiohttp"):
            raise self.fail(("http_client",), "fast or aiohttp", value)
        return str(value)

    def workload(self, node: dict) -> Workload:
        path = ("workload",)
        self.known_keys(
            node,
            path,
            (
                "model",
                "vus",
                "rate",
                "start_rate",
                "stages",
                "max_in_flight",
                "max_backlog",
                "connections",
                "requests",
                "within",
                "clients",
                "rounds",
                "round_interval",
                "winner_status",
                "loser_status",
                "breaking_point",
            ),
        )
        model = node.get("model", "closed")
        if model not in MODELS:
            raise self.fail((*path, "model"), f"one of {', '.join(MODELS)}", model)
        stages = []
        for index, item in enumerate(self.listing(node, "stages", path)):
            stage_path = (*path, "stages", index)
            if not isinstance(item, dict):
                raise self.fail(stage_path, "a mapping with duration and target", item)
            self.known_keys(item, stage_path, ("duration", "target"))
            stages.append(
                Stage(
                    duration=self.duration(item, "duration", stage_path, None),
                    target=self.parsed(item, "target", stage_path, None, parse_rate),
                )
            )
        rate = self.parsed(node, "rate", path, 10.0, parse_rate)
        breaking = self.mapping(node, "breaking_point", path)
        break_path = (*path, "breaking_point")
        self.known_keys(breaking, break_path, ("p95", "error_rate", "stop"))
        if breaking and not stages:
            raise self.fail((*path, "stages"), "stages (a ramp) when breaking_point is set", None)
        break_p95 = self.duration(breaking, "p95", break_path, None) if "p95" in breaking else None
        break_error_rate = (
            self.number(breaking, "error_rate", break_path, 0.0) if "error_rate" in breaking else None
        )
        stop_at_break = breaking.get("stop", False)
        if not isinstance(stop_at_break, bool):
            raise self.fail((*break_path, "stop"), "true or false", stop_at_break)
        if model == "open" and not stages and rate <= 0:
            raise self.fail((*path, "rate"), "a rate greater than 0 for the open model", node.get("rate"))
        return Workload(
            model=model,
            vus=self.integer(node, "vus", path, 10, minimum=1, maximum=100_000),
            rate=rate,
            start_rate=self.parsed(node, "start_rate", path, 0.0, parse_rate),
            stages=tuple(stages),
            max_in_flight=self.integer(node, "max_in_flight", path, 1000, minimum=1),
            max_backlog=self.integer(node, "max_backlog", path, 0, minimum=0),
            connections=self.integer(node, "connections", path, 0, minimum=0),
            requests=self.integer(node, "requests", path, 50, minimum=1, maximum=1_000_000),
            within=self.duration(node, "within", path, 0),
            clients=self.integer(node, "clients", path, 50, minimum=2, maximum=100_000),
            rounds=self.integer(node, "rounds", path, 1, minimum=1, maximum=100_000),
            round_interval=self.duration(node, "round_interval", path, "1s"),
            winner_status=self.integer(node, "winner_status", path, 201, minimum=100, maximum=599),
            loser_status=self.integer(node, "loser_status", path, 409, minimum=100, maximum=599),
            break_p95=break_p95,
            break_error_rate=break_error_rate,
            stop_at_break=stop_at_break,
        )

    def think_time(self, node: Mapping, key: str, path: tuple, default: ThinkTime) -> ThinkTime:
        value = node.get(key)
        if value is None:
            return default
        if isinstance(value, dict):
            self.known_keys(value, (*path, key), ("min", "max"))
            low = self.duration(value, "min", (*path, key), 0)
            high = self.duration(value, "max", (*path, key), value.get("min", 0))
            if high < low:
                raise self.fail((*path, key, "max"), f"a duration >= min ({low:g}s)", value.get("max"))
            return ThinkTime(low, high)
        seconds = self.duration(node, key, path, None)
        return ThinkTime(seconds, seconds)

    def user_classes(self, doc: dict) -> tuple[UserClass, ...]:
        default_think = self.think_time(doc, "think_time", (), ThinkTime())
        classes = []
        raw_classes = self.listing(doc, "user_classes", ())
        if raw_classes and doc.get("requests"):
            raise ConfigError(f"{self.source}: requests: give either requests or user_classes, not both")
        for index, item in enumerate(raw_classes):
            path = ("user_classes", index)
            if not isinstance(item, dict):
                raise self.fail(path, "a mapping with name, weight, think_time and requests", item)
            self.known_keys(item, path, ("name", "weight", "think_time", "requests"))
            weight = self.number(item, "weight", path, 1.0)
            if weight <= 0:
                raise self.fail((*path, "weight"), "a number > 0", item.get("weight"))
            classes.append(
                UserClass(
                    name=self.text(item, "name", path, f"class{index}"),
                    weight=weight,
                    think_time=self.think_time(item, "think_time", path, default_think),
                    requests=self.request_mix(item, path),
                )
            )
        if not classes:
            classes.append(UserClass("default", 1.0, default_think, self.request_mix(doc, ())))
        return tuple(classes)

    def request_mix(self, node: Mapping, path: tuple) -> tuple[RequestSpec, ...]:
        items = self.listing(node, "requests", path)
        if not items:
            items = [{"endpoint": "create_ticket"}]
        specs = []
        for index, item in enumerate(items):
            item_path = (*path, "requests", index)
            if isinstance(item, str):
                item = {"endpoint": item}
            if not isinstance(item, dict):
                raise self.fail(item_path, "an endpoint name or a mapping with endpoint", item)
            specs.append(self.request(item, item_path))
        return tuple(specs)

    def request(self, item: dict, path: tuple) -> RequestSpec:
        self.known_keys(item, path, ("endpoint", "weight", "method", "path", "body", "expect", "timeout"))
        endpoint = self.text(item, "endpoint", path)
        if not endpoint.replace("_", "").isalnum():
            raise self.fail((*path, "endpoint"), "a name of letters, digits and _", endpoint)
        defaults = {
            "create_ticket": ("POST", "/api/tickets", (201,)),
            "get_ticket": ("GET", "/api/tickets/{numero}", (200,)),
            "health": ("GET", "/actuator/health", (200,)),
        }
        method, default_path, expect = defaults.get(endpoint, ("GET", None, (200,)))
        if endpoint not in defaults and "path" not in item:
            raise self.fail(
                (*path, "path"),
                f"a request path for the custom endpoint {endpoint!r} (built-in: {', '.join(BUILTIN_ENDPOINTS)})",
                None,
            )
        method = self.text(item, "method", path, method).upper()
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
            raise self.fail((*path, "method"), "an HTTP method", method)
        raw_expect = item.get("expect", list(expect))
        if isinstance(raw_expect, int) and not isinstance(raw_expect, bool):
            raw_expect = [raw_expect]
        if (
            not isinstance(raw_expect, list)
            or not raw_expect
            or not all(
                isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
                for code in raw_expect
            )
        ):
            raise self.fail((*path, "expect"), "an HTTP status or a list of them", raw_expect)
        weight = self.number(item, "weight", path, 1.0)
        if weight <= 0:
            raise self.fail((*path, "weight"), "a number > 0", item.get("weight"))
        timeout = None
        if "timeout" in item:
            timeout = self.duration(item, "timeout", path, None)
        request_path = self.text(item, "path", path, default_path)
        if not request_path.startswith("/"):
            raise self.fail((*path, "path"), "a path starting with /", request_path)
        return RequestSpec(
            endpoint=endpoint,
            weight=weight,
            method=method,
            path=request_path,
            body=item.get("body"),
            expect=tuple(raw_expect),
            timeout=timeout,
        )

    def ticket(self, node: dict) -> TicketTemplate:
        path = ("ticket",)
        self.known_keys(
            node, path, ("queues", "branch_office", "telefono", "national_id_start", "national_id_prefix")
        )
        prefix = self.text(node, "national_id_prefix", path, "")
        if prefix and (not prefix.isdigit() or len(prefix) > 4):
            raise self.fail((*path, "national_id_prefix"), "up to 4 digits", prefix)
        queues = node.get("queues")
        mix: tuple[tuple[str, float], ...] = TicketTemplate.queues
        if queues is not None:
            if isinstance(queues, list):
                queues = dict.fromkeys(queues, 1)
            if not isinstance(queues, dict) or not queues:
                raise self.fail(
                    (*path, "queues"), f"a mapping of queue type to weight ({', '.join(QUEUE_TYPES)})", queues
                )
            pairs = []
            for queue, weight in queues.items():
                if queue not in QUEUE_TYPES:
                    raise self.fail(
                        (*path, "queues", queue), f"a queue type among {', '.join(QUEUE_TYPES)}", queue
                    )
                if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                    raise self.fail((*path, "queues", queue), "a weight >= 0", weight)
                pairs.append((queue, float(weight)))
            if sum(weight for _, weight in pairs) <= 0:
                raise self.fail((*path, "queues"), "at least one weight > 0", queues)
            mix = tuple(pairs)
        start = node.get("national_id_start")
        if start is not None:
            start = self.integer(node, "national_id_start", path, None, minimum=1)
        return TicketTemplate(
            queues=mix,
            branch_office=self.text(node, "branch_office", path, TicketTemplate.branch_office),
            telefono=self.text(node, "telefono", path, TicketTemplate.telefono),
            national_id_start=start,
            national_id_prefix=prefix,
        )

    def threshold(self, item: Any, path: tuple) -> Threshold:
        if not isinstance(item, dict):
            raise self.fail(path, "a mapping with metric and max or min, or nfr", item)
        if "nfr" in item:
            return self.nfr_threshold(item, path)
        self.known_keys(item, path, ("metric", "endpoint", "max", "min"))
        metric = item.get("metric")
        if metric not in THRESHOLD_METRICS:
            raise self.fail((*path, "metric"), f"one of {', '.join(THRESHOLD_METRICS)}", metric)
        if "max" not in item and "min" not in item:
            raise self.fail(path, "max or min", item)
        is_time = metric.startswith("p") or metric in ("max", "schedule_lag_p99")

        def bound(key: str) -> float | None:
            if key not in item:
                return None
            if is_time:
                return self.duration(item, key, path, None)
            return self.number(item, key, path, 0.0)

        endpoint = item.get("endpoint")
        if endpoint is not None and not isinstance(endpoint, str):
            raise self.fail((*path, "endpoint"), "an endpoint name", endpoint)
        return Threshold(metric=metric, endpoint=endpoint, maximum=bound("max"), minimum=bound("min"))

    def nfr_threshold(self, item: dict, path: tuple) -> Threshold:
        """``{nfr: RNF-02, endpoint: create_ticket}``: the NFR's own number, from the NFR catalogue."""
        from nfr.catalogue import NFR_IDS, nfr_by_id

        self.known_keys(item, path, ("nfr", "endpoint"))
        nfr_id = item["nfr"]
        if nfr_id not in NFR_IDS:
            raise self.fail((*path, "nfr"), f"one of {', '.join(NFR_IDS)}", nfr_id)
        nfr = nfr_by_id(nfr_id)
        if nfr.load_threshold is None:
            with_one = ", ".join(n.id for n in map(nfr_by_id, NFR_IDS) if n.load_threshold)
            raise self.fail(
                (*path, "nfr"),
                f"an NFR the load generator can measure ({with_one}); {nfr_id} is judged by its alerts",
                nfr_id,
            )
        metric, side, value = nfr.load_threshold
        endpoint = item.get("endpoint")
        if endpoint is not None and not isinstance(endpoint, str):
            raise self.fail((*path, "endpoint"), "an endpoint name", endpoint)
        bounds = {"maximum": value} if side == "max" else {"minimum": value}
        return Threshold(metric=metric, endpoint=endpoint, nfr=nfr_id, **bounds)

    def proxy(self, item: Any, path: tuple) -> ProxySpec:
        if not isinstance(item, dict):
            raise self.fail(path, "a mapping with name and either listen and target, or control", item)
        self.known_keys(item, path, ("name", "listen", "target", "control"))
        name = self.text(item, "name", path)
        if "control" in item:
            control = self.text(item, "control", path)
            if not control.startswith("http://"):
                raise self.fail(
                    (*path, "control"), "the http:// URL of a `loadgen proxy` control API", control
                )
            return ProxySpec(name, control=control.rstrip("/"))
        listen_host, listen_port = self.host_port(item, "listen", path)
        target_host, target_port = self.host_port(item, "target", path)
        return ProxySpec(name, listen_host, listen_port, target_host, target_port)

    def host_port(self, node: Mapping, key: str, path: tuple) -> tuple[str, int]:
        # a proxy may listen on port 0 (a free one); its target is a real port
        kind = host_port("pick a free port") if key == "listen" else host_port()
        return self.parsed(node, key, path, None, kind)

    # -- actions and probes -----------------------------------------------------------------------------

    ACTION_KEYS: dict[str, tuple[str, ...]] = {
        "sql": ("dsn", "sql"),
        "service": ("service", "op", "replica", "grace", "signal"),
        "docker": ("container", "op", "signal", "timeout"),
        "command": ("run", "timeout", "background"),
        "amqp": ("url", "exchange", "routing_key", "body", "body_sql", "dsn", "count"),
        "proxy": ("proxy", "op", "seconds"),
        "sleep": ("duration",),
        "http": ("url", "path", "method", "body", "expect_status", "timeout"),
        # wait until a probe holds (e.g. "an advisor is BUSY") before the next action
        "wait": (
            "dsn",
            "query",
            "equals",
            "max",
            "min",
            "url",
            "path",
            "expect_status",
            "expect_json",
            "timeout",
            "within",
            "interval",
        ),
    }
    # the probe must hold at every poll for the whole window ("no double assignment during the load")
    ACTION_KEYS["watch"] = ACTION_KEYS["wait"]
    DOCKER_OPS = ("stop", "start", "restart", "pause", "unpause", "kill")
    PROXY_OPS = ("cut", "restore", "latency")

    def typed_entry(
        self,
        item: Any,
        path: tuple[str | int, ...],
        kinds: Mapping[str, tuple[str, ...]],
        common: tuple[str, ...],
    ) -> tuple[str, dict]:
        """An action or probe entry: a mapping whose ``type`` is one of ``kinds`` and whose other keys are
        the common ones or that type's own; returns (type, its own settings)."""
        if not isinstance(item, dict):
            raise self.fail(path, "a mapping with type and its settings", item)
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in kinds:
            raise self.fail((*path, "type"), f"one of {', '.join(kinds)}", kind)
        self.known_keys(item, path, common + kinds[kind])
        return kind, {k: v for k, v in item.items() if k not in common}

    def actions(self, doc: dict, key: str, timed: bool) -> tuple[Action, ...]:
        """Setup, method or rollback steps. Method steps run in file order: a step without ``at`` follows the
        one before it, and an ``at`` earlier than the step before it is refused (it would not run there)."""
        result: list[Action] = []
        for index, item in enumerate(self.listing(doc, key, ())):
            path = (key, index)
            common = ("type", "name", "ignore_failure") + (("at", "background") if timed else ())
            kind, params = self.typed_entry(item, path, self.ACTION_KEYS, common)
            self.check_action(kind, params, path)
            previous = result[-1].at if result else 0.0
            at = self.duration(item, "at", path, previous) if timed else 0.0
            if at < previous:
                raise self.fail(
                    (*path, "at"),
                    f"an offset at or after the step before it ({previous:g}s): steps run in file order",
                    item.get("at"),
                )
            result.append(
                Action(
                    kind=kind,
                    params=params,
                    name=str(item.get("name") or ""),
                    at=at,
                    ignore_failure=bool(item.get("ignore_failure", False)),
                    background=bool(item.get("background", kind == "watch")) if timed else False,
                )
            )
        return tuple(result)

    def check_action(self, kind: str, params: dict, path: tuple) -> None:
        if kind == "sql":
            self.text(params, "sql", path)
        elif kind == "service":
            self.service_action(params, path)
        elif kind == "docker":
            self.text(params, "container", path)
            if params.get("op") not in self.DOCKER_OPS:
                raise self.fail((*path, "op"), f"one of {', '.join(self.DOCKER_OPS)}", params.get("op"))
            if "timeout" in params:
                params["timeout"] = self.duration(params, "timeout", path, None)
        elif kind == "command":
            self.text(params, "run", path)
            params["timeout"] = self.duration(params, "timeout", path, "60s")
        elif kind == "amqp":
            self.text(params, "exchange", path, "")
            self.text(params, "routing_key", path)
            if ("body" in params) == ("body_sql" in params):
                raise self.fail(path, "exactly one of body or body_sql", params)
            params["count"] = self.integer(params, "count", path, 1, minimum=1, maximum=100_000)
        elif kind == "proxy":
            self.text(params, "proxy", path)
            if params.get("op") not in self.PROXY_OPS:
                raise self.fail((*path, "op"), f"one of {', '.join(self.PROXY_OPS)}", params.get("op"))
            if params["op"] == "latency":
                params["seconds"] = self.duration(params, "seconds", path, None)
        elif kind == "sleep":
            params["duration"] = self.duration(params, "duration", path, None)
        elif kind == "http":
            if "url" not in params and "path" not in params:
                raise self.fail(path, "url or path", params)
            params["timeout"] = self.duration(params, "timeout", path, "10s")
            params["expect_status"] = self.status_list(params, "expect_status", path)
        elif kind in ("wait", "watch"):
            probe_kind = "sql" if "query" in params else "http"
            probe_params = {k: v for k, v in params.items() if k not in ("within", "interval")}
            params["probe"] = self.probe_params(probe_kind, probe_params, path)
            params["probe_kind"] = probe_kind
            params["within"] = self.duration(params, "within", path, "60s")
            params["interval"] = self.duration(params, "interval", path, "1s")

    def service_action(self, params: dict, path: tuple) -> None:
        from loadgen.service_control import OPS

        if params.get("op") not in OPS:
            raise self.fail((*path, "op"), f"one of {', '.join(OPS)}", params.get("op"))
        params["service"] = self.text(params, "service", path, "app")
        if not params["service"]:
            raise self.fail((*path, "service"), "a service name such as app or broker", params["service"])
        if "replica" in params:
            params["replica"] = self.integer(params, "replica", path, None, minimum=1, maximum=64)
        if "grace" in params:
            if params["op"] not in ("stop", "restart"):
                raise self.fail(
                    (*path, "grace"), "no grace for op " + params["op"] + " (stop, restart)", params["grace"]
                )
            params["grace"] = self.duration(params, "grace", path, None)
        if "signal" in params:
            signame = params["signal"]
            if params["op"] != "kill":
                raise self.fail(
                    (*path, "signal"), "no signal for op " + params["op"] + " (kill only)", signame
                )
            if (
                not isinstance(signame, str)
                or not signame.startswith("SIG")
                or signame in ("SIGSTOP", "SIGCONT")
            ):
                raise self.fail(
                    (*path, "signal"),
                    "a signal name such as SIGKILL or SIGTERM (pause/resume for SIGSTOP/SIGCONT)",
                    signame,
                )
            import signal as signals

            if not hasattr(signals, signame):
                raise self.fail((*path, "signal"), "a known signal name such as SIGKILL or SIGTERM", signame)

    def status_list(self, node: Mapping, key: str, path: tuple) -> list[int]:
        raw = node.get(key, [200])
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = [raw]
        if not isinstance(raw, list) or not all(
            isinstance(code, int) and not isinstance(code, bool) for code in raw
        ):
            raise self.fail((*path, key), "an HTTP status or a list of them", raw)
        return raw

    PROBE_KEYS: dict[str, tuple[str, ...]] = {
        "http": ("url", "path", "expect_status", "expect_json", "timeout"),
        "sql": ("dsn", "query", "equals", "max", "min"),
    }

    def probes(self, doc: dict, key: str) -> tuple[Probe, ...]:
        result = []
        for index, item in enumerate(self.listing(doc, key, ())):
            path = (key, index)
            common = ("type", "name", "within", "interval")
            kind, params = self.typed_entry(item, path, self.PROBE_KEYS, common)
            if kind == "http":
                if "url" not in params and "path" not in params:
                    raise self.fail(path, "url or path", item)
                params["timeout"] = self.duration(params, "timeout", path, "5s")
                params["expect_status"] = self.status_list(params, "expect_status", path)
                if "expect_json" in params and not isinstance(params["expect_json"], dict):
                    raise self.fail(
                        (*path, "expect_json"),
                        "a mapping the JSON answer must contain",
                        params["expect_json"],
                    )
            else:
                self.text(params, "query", path)
                if not any(bound in params for bound in ("equals", "max", "min")):
                    raise self.fail(path, "equals, max or min for the query's value", item)
                for bound in ("max", "min"):
                    if bound in params:
                        self.number(params, bound, path, 0.0, minimum=float("-inf"))
            result.append(
                Probe(
                    kind=kind,
                    params=params,
                    name=str(item.get("name") or ""),
                    within=self.duration(item, "within", path, 0),
                    interval=self.duration(item, "interval", path, "1s"),
                )
            )
        return tuple(result)

    def probe_params(self, kind: str, params: dict, path: tuple) -> dict:
        if kind == "http":
            if "url" not in params and "path" not in params:
                raise self.fail(path, "url or path", params)
            params["timeout"] = self.duration(params, "timeout", path, "5s")
            params["expect_status"] = self.status_list(params, "expect_status", path)
            if "expect_json" in params and not isinstance(params["expect_json"], dict):
                raise self.fail(
                    (*path, "expect_json"), "a mapping the JSON answer must contain", params["expect_json"]
                )
        else:
            self.text(params, "query", path)
            if not any(bound in params for bound in ("equals", "max", "min")):
                raise self.fail(path, "equals, max or min for the query's value", params)
            for bound in ("max", "min"):
                if bound in params:
                    self.number(params, bound, path, 0.0, minimum=float("-inf"))
        return params

    def check_proxy_references(self, scenario: Scenario) -> None:
        names = {proxy.name for proxy in scenario.proxies}
        for section in ("setup", "method", "rollbacks"):
            for index, action in enumerate(getattr(scenario, section)):
                if action.kind == "proxy" and action.params["proxy"] not in names:
                    raise self.fail(
                        (section, index, "proxy"),
                        f"the name of a proxy declared under proxies ({', '.join(sorted(names)) or 'none declared'})",
                        action.params["proxy"],
                    )
