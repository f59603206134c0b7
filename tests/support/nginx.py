"""A private nginx (Debian's nginx-light, installed by scripts/bootstrap.sh) on free ports.

One worker, no daemon, every path under its own directory; the caller gives the ``server {}`` blocks.
Used as a real HTTP/1.1 and TLS server by the load generator's client tests and its benchmark.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

CONFIG = """\
worker_processes 1;
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  types {{ application/json json; text/plain txt; }}
{servers}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise RuntimeError("nginx is not installed (scripts/bootstrap.sh installs nginx-light)")
    return found


@contextlib.contextmanager
def running_nginx(
    directory: Path, servers: str, ports: tuple[int, ...], command_prefix: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen]:
    """Start nginx with ``servers`` (text of server blocks) and wait until every port in ``ports`` answers."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(CONFIG.format(dir=directory, servers=servers))
    command = [*command_prefix, nginx_binary(), "-p", str(directory), "-e", str(directory / "error.log")]
    process = subprocess.Popen([*command, "-c", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        pending = list(ports)
        while pending:
            if process.poll() is not None:
                log = (directory / "error.log").read_text() if (directory / "error.log").exists() else ""
                raise RuntimeError(f"nginx exited {process.returncode}: {process.stderr.read()}{log}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", pending[0]), timeout=0.2).close()
                pending.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not listen on {pending[0]} within 10 s") from None
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
