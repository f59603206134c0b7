"""Fault and setup actions, one backend per kind: sql, service, docker, command, amqp, proxy, http, sleep.

Blocking clients (psycopg, the docker SDK, pika) run in a thread so the load keeps its schedule while an
action works. Connection settings come from the action or, by default, from the scenario's ``services``
(``database_dsn``, ``amqp_url``), which LOADGEN_DATABASE_DSN / LOADGEN_AMQP_URL and flags can override.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

import aiohttp

from loadgen.context import ActionContext, ActionError, sql_scalar
from loadgen.model import Action, Probe
from loadgen.probes import check_probe
from loadgen.proxy import RemoteProxy
from loadgen.service_control import run_service_action

log = logging.getLogger(__name__)

__all__ = ["ActionContext", "ActionError", "SteadyStateViolated", "run_action"]


class SteadyStateViolated(ActionError):
    """A watch action saw its probe fail during the load: the hypothesis broke, not the tooling."""


async def run_action(action: Action, context: ActionContext) -> str:
    """Run one action; returns a short description of what it did. Raises ActionError on failure."""
    handler = _HANDLERS[action.kind]
    try:
        return await handler(action.params, context)
    except ActionError:
        raise
    except Exception as error:  # a backend's own exception types vary; report them uniformly
        raise ActionError(f"{action.label()}: {type(error).__name__}: {error}") from error


# -- backends ---------------------------------------------------------------------------------------------


async def _sql(params: Mapping[str, Any], context: ActionContext) -> str:
    dsn = context.service(params, "dsn", "database_dsn")
    statement = str(params["sql"])

    def execute() -> int:
        import psycopg

        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement)
            return cursor.rowcount

    rows = await asyncio.to_thread(execute)
    return f"sql: {rows} row(s) affected"


async def _docker(params: Mapping[str, Any], context: ActionContext) -> str:
    name = str(params["container"])
    op = str(params["op"])

    def execute() -> str:
        container = context.docker().containers.get(name)
        if op == "stop":
            container.stop(timeout=int(params.get("timeout", 10)))
        elif op == "restart":
            container.restart(timeout=int(params.get("timeout", 10)))
        elif op == "kill":
            container.kill(signal=params.get("signal", "SIGKILL"))
        else:
            getattr(container, op)()
        container.reload()
        return str(container.status)

    status = await asyncio.to_thread(execute)
    return f"docker {op} {name}: now {status}"


async def _command(params: Mapping[str, Any], context: ActionContext) -> str:
    command = str(params["run"])
    env = dict(os.environ)
    env.update({f"LOADGEN_SERVICE_{key.upper()}": value for key, value in context.services.items()})
    env["LOADGEN_TARGET"] = context.target
    if params.get("background"):
        # Started in its own session so it outlives the run (a restarted service) and is not hit by our Ctrl-C.
        process = await asyncio.create_subprocess_shell(
            command,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        return f"command started in background (pid {process.pid})"
    process = await asyncio.create_subprocess_shell(
        command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), float(params.get("timeout", 60)))
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ActionError(f"command timed out after {params.get('timeout')}s: {command}") from None
    except asyncio.CancelledError:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        raise
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        raise ActionError(f"command exited {process.returncode}: {command}: {text[-500:]}")
    return f"command ok: {text[-200:]}" if text else "command ok"


async def _amqp(params: Mapping[str, Any], context: ActionContext) -> str:
    url = context.service(params, "url", "amqp_url")
    exchange = str(params.get("exchange", ""))
    routing_key = str(params["routing_key"])
    count = int(params.get("count", 1))
    if "body_sql" in params:
        dsn = context.service(params, "dsn", "database_dsn")
        body = await asyncio.to_thread(sql_scalar, dsn, str(params["body_sql"]))
        if body is None:
            raise ActionError(f"amqp: body_sql returned no row: {params['body_sql']}")
    else:
        body = params["body"]
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    data = payload.encode() if isinstance(payload, str) else payload

    def publish() -> None:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)
            for _ in range(count):
                channel.basic_publish(
                    exchange=exchange, routing_key=routing_key, body=data, properties=properties
                )
        finally:
            connection.close()

    await asyncio.to_thread(publish)
    return f"amqp: published {count} message(s) to {exchange or '(default)'}/{routing_key}"


async def _proxy(params: Mapping[str, Any], context: ActionContext) -> str:
    proxy = context.proxies.get(str(params["proxy"]))
    if proxy is None:
        raise ActionError(f"proxy {params['proxy']!r} is not running")
    op = params["op"]
    if isinstance(proxy, RemoteProxy):
        if op == "cut":
            await proxy.cut()
        elif op == "restore":
            await proxy.restore()
        else:
            await proxy.set_latency(float(params["seconds"]))
    elif op == "cut":
        proxy.cut()
    elif op == "restore":
        proxy.restore()
    else:
        proxy.set_latency(float(params["seconds"]))
    return f"proxy {params['proxy']}: {op}"


async def _sleep(params: Mapping[str, Any], context: ActionContext) -> str:
    await asyncio.sleep(float(params["duration"]))
    return f"slept {params['duration']}s"


async def _http(params: Mapping[str, Any], context: ActionContext) -> str:
    url = str(params.get("url") or context.target + str(params["path"]))
    method = str(params.get("method", "GET")).upper()
    body = params.get("body")
    timeout = aiohttp.ClientTimeout(total=float(params.get("timeout", 10)))
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.request(method, url, json=body) as response,
    ):
        await response.read()
        if response.status not in params.get("expect_status", [200]):
            raise ActionError(f"http {method} {url}: status {response.status}")
        return f"http {method} {url}: {response.status}"


async def _wait(params: Mapping[str, Any], context: ActionContext) -> str:
    probe = Probe(
        kind=params["probe_kind"],
        params=params["probe"],
        within=float(params["within"]),
        interval=float(params["interval"]),
    )
    result = await check_probe(probe, context)
    if not result.ok:
        raise ActionError(f"wait: not met within {params['within']}s: {result.detail}")
    return f"wait: met after {result.seconds:.1f}s: {result.detail}"


async def _watch(params: Mapping[str, Any], context: ActionContext) -> str:
    probe = Probe(kind=params["probe_kind"], params=params["probe"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(params["within"])
    polls = 0
    while True:
        result = await check_probe(probe, context)
        polls += 1
        if not result.ok:
            raise SteadyStateViolated(f"watch: broke after {polls} poll(s): {result.detail}")
        if loop.time() + float(params["interval"]) > deadline:
            return f"watch: held for {params['within']}s ({polls} polls): {result.detail}"
        await asyncio.sleep(float(params["interval"]))


_HANDLERS = {
    "watch": _watch,
    "wait": _wait,
    "sql": _sql,
    "service": run_service_action,
    "docker": _docker,
    "command": _command,
    "amqp": _amqp,
    "proxy": _proxy,
    "sleep": _sleep,
    "http": _http,
}
