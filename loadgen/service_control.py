"""The ``service`` action: stop, start, restart, kill, pause or resume a service without naming a backend.

``{type: service, op: restart, service: app, replica: 2, grace: 30s}`` is resolved by the backend that whatever
runs the scenario chose, in ``services.service_control`` (``LOADGEN_SERVICE_CONTROL``, ``--service-control``):

- ``docker`` (the default) — compose containers through the docker SDK: ``app`` → ``ticketero-app``, replica N →
  ``ticketero-app-N``, ``broker`` → ``ticketero-rabbitmq``; ``docker:app=web,broker=mq`` renames them;
- ``http://127.0.0.1:PORT`` — a control endpoint, e.g. the one the local stack (``nfr demo``) serves for the
  processes it supervises: ``POST /services/<service>/<op>`` with ``{"replica", "grace", "signal"}``, answered
  with ``{"detail": ...}`` (200) or ``{"error": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from loadgen.context import ActionContext, ActionError

OPS = ("stop", "start", "restart", "kill", "pause", "resume")
DEFAULT_GRACE = 10.0
DEFAULT_SIGNAL = "SIGKILL"
HEALTH_TIMEOUT = 120.0  # seconds a started container may take to report healthy
#: Compose container names of docker-compose.yml; a replica N of a service is ``<name>-N``.
DOCKER_NAMES = {"app": "ticketero-app", "broker": "ticketero-rabbitmq", "database": "ticketero-postgres"}
CONTROL_KEY = "service_control"


def parse_docker_names(spec: str) -> dict[str, str]:
    """``docker`` or ``docker:app=web,broker=mq`` → the service → container name map (defaults filled in)."""
    names = dict(DOCKER_NAMES)
    _, _, rest = spec.partition(":")
    for entry in rest.split(","):
        if not entry.strip():
            continue
        service, sep, container = entry.partition("=")
        if not sep or not service.strip() or not container.strip():
            raise ValueError(f"{entry!r}: expected service=container")
        names[service.strip()] = container.strip()
    return names


def check_control(spec: str) -> str | None:
    """What is wrong with a ``service_control`` value, or None when it is usable."""
    if spec.startswith(("http://", "https://")):
        return None
    if spec == "docker" or spec.startswith("docker:"):
        try:
            parse_docker_names(spec)
        except ValueError as err:
            return str(err)
        return None
    return "docker, docker:SERVICE=CONTAINER,... or the http:// URL of a service-control endpoint"


async def run_service_action(params: Mapping[str, Any], context: ActionContext) -> str:
    spec = context.services.get(CONTROL_KEY) or "docker"
    if spec.startswith(("http://", "https://")):
        return await _http(spec, params)
    return await _docker(parse_docker_names(spec), params, context)


def _label(params: Mapping[str, Any]) -> str:
    replica = params.get("replica")
    return f"{params.get('service', 'app')}" + (f" replica {replica}" if replica is not None else "")


async def _http(url: str, params: Mapping[str, Any]) -> str:
    service = str(params.get("service", "app"))
    op = str(params["op"])
    grace = float(params.get("grace", DEFAULT_GRACE))
    body = {
        "replica": params.get("replica"),
        "grace": grace,
        "signal": str(params.get("signal", DEFAULT_SIGNAL)),
    }
    # A stop waits out the grace period and a start waits for health: the answer can take that long.
    timeout = aiohttp.ClientTimeout(total=grace + 120)
    endpoint = f"{url.rstrip('/')}/services/{service}/{op}"
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(endpoint, json=body) as response,
    ):
        text = await response.text()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"error": text[-300:]}
    if response.status != 200:
        raise ActionError(f"service {op} {_label(params)}: {answer.get('error') or text[-300:]}")
    return f"service {op} {_label(params)}: {answer.get('detail', 'done')}"


async def _docker(names: Mapping[str, str], params: Mapping[str, Any], context: ActionContext) -> str:
    service = str(params.get("service", "app"))
    if service not in names:
        raise ActionError(
            f"service {service!r}: no container name known (known: {', '.join(sorted(names))}; "
            "add one with docker:SERVICE=CONTAINER in services.service_control)"
        )
    name = names[service] + (f"-{params['replica']}" if params.get("replica") is not None else "")
    op = str(params["op"])
    grace = int(round(float(params.get("grace", DEFAULT_GRACE))))

    def execute() -> str:
        container = context.docker().containers.get(name)
        if op == "stop":
            container.stop(timeout=grace)
        elif op == "restart":
            container.restart(timeout=grace)
        elif op == "kill":
            container.kill(signal=str(params.get("signal", DEFAULT_SIGNAL)))
        elif op == "resume":
            container.unpause()
        else:
            getattr(container, op)()
        container.reload()
        if op in ("start", "restart"):
            _wait_healthy(container)
        return str(container.status)

    status = await asyncio.to_thread(execute)
    return f"service {op} {_label(params)} (docker container {name}): now {status}"


def _wait_healthy(container: Any, timeout: float = HEALTH_TIMEOUT) -> None:
    """A started container with a health check is ready once healthy (as the local stack waits for
    /actuator/health); one without a health check once running."""
    deadline = time.monotonic() + timeout
    while True:
        health = (container.attrs.get("State") or {}).get("Health")
        if container.status == "running" and (health is None or health.get("Status") == "healthy"):
            return
        if container.status in ("exited", "dead"):
            raise ActionError(f"container {container.name} {container.status} after start")
        if time.monotonic() > deadline:
            state = health.get("Status") if health else container.status
            raise ActionError(f"container {container.name} not healthy after {timeout:g}s ({state})")
        time.sleep(0.5)
        container.reload()
