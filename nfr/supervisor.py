"""Service control for the local stack: the processes it supervises, stopped and started like containers.

A :class:`Supervised` process is always started again with exactly the same command, settings and port:

- ``stop`` — SIGTERM, ``grace`` seconds, then SIGKILL (a paused process is resumed first so it can drain);
- ``kill`` — one signal (SIGKILL by default); ``pause``/``resume`` — SIGSTOP/SIGCONT;
- ``start`` — start again and wait until it is ready (health for the service, the port for a relay);
- ``restart`` — stop, then start.

:class:`ControlServer` serves those operations on 127.0.0.1 for the load generator's ``service`` action
(``--service-control http://127.0.0.1:PORT``): ``POST /services/<service>/<op>`` with a JSON body
``{"replica": N | null, "grace": seconds, "signal": "SIGKILL"}``; 200 ``{"detail": ...}``, else ``{"error": ...}``
(404 unknown service or replica, 400 bad operation or body, 500 the operation failed). No replica means
every replica of the service, one after the other.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nfr.processes import ManagedProcess, ProcessError

log = logging.getLogger("nfr.supervisor")

OPS = ("stop", "start", "restart", "kill", "pause", "resume")


class ControlError(Exception):
    """An operation that cannot be done; ``status`` is the HTTP status the control endpoint answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Supervised:
    """One supervised process. ``make`` builds it (same command every time), ``ready`` blocks until it
    serves, ``started`` is told each new process (pid files)."""

    def __init__(
        self,
        name: str,
        make: Callable[[], ManagedProcess],
        ready: Callable[[ManagedProcess], None],
        started: Callable[[ManagedProcess], object] | None = None,
    ) -> None:
        self.name = name
        self._make = make
        self._ready = ready
        self._started = started
        self.process: ManagedProcess | None = None
        self.paused = False
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def start(self) -> str:
        with self._lock:
            if self.alive():
                return f"{self.name} already running"
            self.process = self._make().start()
            self.paused = False
            if self._started is not None:
                self._started(self.process)
            self._ready(self.process)
            return f"{self.name} started (pid {self.process.pid}) and ready"

    def stop(self, grace: float) -> str:
        with self._lock:
            process = self.process
            if process is None or not process.alive():
                if process is not None:
                    process.stop(0)  # closes its log
                return f"{self.name} not running"
            if self.paused:  # a stopped process cannot act on SIGTERM: let it drain
                process.signal(signal.SIGCONT)
                self.paused = False
            code = process.stop(grace)
            how = "killed after the grace period" if code == -signal.SIGKILL else f"exit code {code}"
            return f"{self.name} stopped ({how})"

    def kill(self, signame: str) -> str:
        sig = _signal(signame)
        with self._lock:
            process = self.process
            if process is None or not process.alive():
                return f"{self.name} not running"
            process.signal(sig)
            if sig == signal.SIGKILL:
                process.wait(timeout=10)
                process.stop(0)  # closes its log
            return f"{self.name} sent {signame}"

    def pause(self) -> str:
        with self._lock:
            if not self.alive():
                raise ControlError(f"{self.name} is not running", 409)
            assert self.process is not None
            self.process.signal(signal.SIGSTOP)
            self.paused = True
            return f"{self.name} paused (SIGSTOP)"

    def resume(self) -> str:
        with self._lock:
            if not self.alive():
                raise ControlError(f"{self.name} is not running", 409)
            assert self.process is not None
            self.process.signal(signal.SIGCONT)
            self.paused = False
            return f"{self.name} resumed (SIGCONT)"

    def restart(self, grace: float) -> str:
        return f"{self.stop(grace)}; {self.start()}"

    def apply(self, op: str, grace: float = 10.0, signame: str = "SIGKILL") -> str:
        if op == "stop":
            return self.stop(grace)
        if op == "start":
            return self.start()
        if op == "restart":
            return self.restart(grace)
        if op == "kill":
            return self.kill(signame)
        if op == "pause":
            return self.pause()
        if op == "resume":
            return self.resume()
        raise ControlError(f"op {op!r}: expected one of {', '.join(OPS)}")

    def shutdown(self, grace: float = 10.0) -> None:
        """Stop for good (the stack's own stop): never raises."""
        try:
            self.stop(grace)
        except Exception as err:  # keep stopping the rest
            log.warning("stopping %s: %s", self.name, err)


def _signal(name: str) -> signal.Signals:
    try:
        return signal.Signals[name]
    except KeyError:
        raise ControlError(f"signal {name!r}: expected a signal name such as SIGKILL or SIGTERM") from None


class ControlServer:
    """The control endpoint over ``services``: service name → its replicas (replica N is ``[N - 1]``)."""

    def __init__(self, services: Callable[[], Mapping[str, Sequence[Supervised]]]) -> None:
        self._services = services
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def handle(self, service: str, op: str, body: Mapping[str, Any]) -> str:
        services = self._services()
        if service not in services:
            raise ControlError(f"service {service!r}: expected one of {', '.join(sorted(services))}", 404)
        if op not in OPS:
            raise ControlError(f"op {op!r}: expected one of {', '.join(OPS)}")
        replicas = services[service]
        replica = body.get("replica")
        if replica is not None:
            if isinstance(replica, bool) or not isinstance(replica, int) or not 1 <= replica <= len(replicas):
                raise ControlError(
                    f"service {service}: replica {replica!r}: expected 1..{len(replicas)}", 404
                )
            chosen = [replicas[replica - 1]]
        else:
            chosen = list(replicas)
        grace = body.get("grace", 10.0)
        if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
            raise ControlError(f"grace {grace!r}: expected seconds >= 0")
        signame = str(body.get("signal", "SIGKILL"))
        return "; ".join(s.apply(op, float(grace), signame) for s in chosen)

    def start(self) -> str:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                parts = self.path.strip("/").split("/")
                try:
                    if len(parts) != 3 or parts[0] != "services":
                        raise ControlError(f"{self.path}: expected /services/<service>/<op>", 404)
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length) if length else b"{}"
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        raise ControlError("body: expected a JSON object") from None
                    if not isinstance(body, dict):
                        raise ControlError("body: expected a JSON object")
                    answer: dict[str, Any] = {"detail": control.handle(parts[1], parts[2], body)}
                    status = 200
                except ControlError as err:
                    answer, status = {"error": str(err)}, err.status
                except ProcessError as err:
                    answer, status = {"error": str(err)}, 500
                log.info("service control %s: %s %s", self.path, status, answer)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="service-control", daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
