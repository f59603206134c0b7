"""Child processes the local stack owns: start with a log file, wait for a URL, stop for sure.

Every process is started in its own process group so that stopping it also stops anything it forked
(the load generator's worker processes), and nothing the stack did not start is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO


class ProcessError(RuntimeError):
    """A child process exited early or never became ready; the message carries its log tail."""


#: Where :func:`free_port` looks when the kernel's ephemeral range cannot be read.
_EPHEMERAL_FALLBACK = (32768, 60999)
#: Lowest port :func:`free_port` hands out: above the registered ports most services sit on.
_LOWEST_PORT = 20000
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux; a fallback elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _EPHEMERAL_FALLBACK


def _bindable(base: int, consecutive: int) -> bool:
    held: list[socket.socket] = []
    try:
        for offset in range(consecutive):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", base + offset))
        return True
    except OSError:
        return False
    finally:
        for sock in held:
            sock.close()


def free_port(consecutive: int = 1) -> int:
    """A TCP port on 127.0.0.1 (and the next ``consecutive - 1``) that nobody listened on a moment ago.

    The one helper for every tool, test and benchmark that needs a port of its own. The port is
    handed to a child process to listen on later, so two races are kept out:

    * ports come from below the kernel's ephemeral range, where the local end of an outgoing
      connection (a load generator's, a database client's) never lands between this check and the
      child's bind; a port from ``bind(0)`` could be taken that way on a busy machine;
    * a port is handed out once per process, so stacks started side by side on threads never get
      the same one. Other processes pick at random from the same ~12,000 ports and check by binding.
    """
    low, high = _LOWEST_PORT, _ephemeral_range()[0] - consecutive
    if high - low < 1000:  # an unusual kernel range: fall back to ports the kernel picks
        low, high = 1024, 65535 - consecutive
    with _handed_out_lock:
        for _ in range(200):
            base = random.randint(low, high)
            wanted = range(base, base + consecutive)
            if any(port in _handed_out for port in wanted) or not _bindable(base, consecutive):
                continue
            _handed_out.update(wanted)
            return base
    raise OSError(f"no {consecutive} consecutive free ports found on 127.0.0.1 in {low}-{high}")


def python_module(module: str, *args: str) -> list[str]:
    """Command line running ``python -m module args`` with this interpreter (the project's venv)."""
    return [sys.executable, "-m", module, *args]


class ManagedProcess:
    """One child process with its output in ``log_path``."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self.env = dict(os.environ, **(env or {}))
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started_at: float | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ProcessError(f"{self.name} not started")
        return self.process.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        self.started_at = time.time()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, timeout: float, ok: Sequence[int] = (200,)) -> None:
        """Block until ``url`` answers one of ``ok``; raise with the log tail if the process dies first."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                raise ProcessError(
                    f"{self.name} exited with code {self.returncode()} before {url} answered; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status in ok:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as err:
                if err.code in ok:
                    return
                last = f"HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:
                last = str(err)
            time.sleep(0.2)
        raise ProcessError(
            f"{self.name}: {url} not ready after {timeout:.0f}s ({last}); log {self.log_path}:\n{self.log_tail()}"
        )

    def wait(self, timeout: float | None = None) -> int:
        if self.process is None:
            raise ProcessError(f"{self.name} not started")
        return self.process.wait(timeout=timeout)

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.returncode()
