"""A stand-in Ticketero for the tests of ``nfr run``: the HTTP surface the load generator drives, with faults.

``POST /api/tickets`` answers 201 with a ticket, ``GET /api/tickets/{numero}`` 200, ``GET /actuator/health`` UP, ``GET /metrics`` serves
``standin_requests_total`` (so the run scrapes the target's own metrics). Faults, each deterministic:
``stall_every=N`` + ``stall_seconds`` holds every N-th ticket request; ``error_every=N`` answers 503 to every
N-th (N=200: 0.5 %); ``delay`` slows every request down. Run it in a thread (:class:`StandIn`) or as
``python tests/nfr/standin.py --port 8080 --stall-every 10 --stall-seconds 3``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandIn:
    def __init__(
        self,
        port: int = 0,
        *,
        stall_every: int = 0,
        stall_seconds: float = 3.0,
        error_every: int = 0,
        delay: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.stall_every, self.stall_seconds = stall_every, stall_seconds
        self.error_every, self.delay = error_every, delay
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.requests = 0
        self.probes = 0  # health and metrics requests
        self.errors = 0
        self.stalled = 0
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the load generator's pool expects

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with standin.lock:
                    standin.probes += 1
                if self.path.startswith("/actuator/health"):
                    self._send(200, b'{"status":"UP"}')
                elif self.path.startswith("/api/tickets/"):
                    numero = self.path.rsplit("/", 1)[1]
                    self._send(200, json.dumps({"numero": numero, "status": "WAITING"}).encode())
                elif self.path == "/metrics":
                    text = (
                        "# HELP standin_requests_total Ticket requests answered.\n"
                        "# TYPE standin_requests_total counter\n"
                        f"standin_requests_total {standin.requests}\n"
                    )
                    self._send(200, text.encode(), "text/plain; version=0.0.4")
                else:
                    self._send(404, b'{"error":"not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if not self.path.startswith("/api/tickets"):
                    self._send(404, b'{"error":"not found"}')
                    return
                with standin.lock:
                    n = next(standin.counter)
                    standin.requests += 1
                if standin.delay:
                    time.sleep(standin.delay)
                if standin.stall_every and n % standin.stall_every == 0:
                    with standin.lock:
                        standin.stalled += 1
                    time.sleep(standin.stall_seconds)
                if standin.error_every and n % standin.error_every == 0:
                    with standin.lock:
                        standin.errors += 1
                    self._send(503, b'{"error":"unavailable"}')
                    return
                self._send(201, json.dumps({"numero": f"C{n:03d}", "status": "WAITING"}).encode())

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--stall-every", type=int, default=0)
    parser.add_argument("--stall-seconds", type=float, default=3.0)
    parser.add_argument("--error-every", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    standin = StandIn(
        args.port,
        stall_every=args.stall_every,
        stall_seconds=args.stall_seconds,
        error_every=args.error_every,
        delay=args.delay,
    )
    print(f"stand-in on {standin.url}", flush=True)
    standin.server.serve_forever()


if __name__ == "__main__":
    main()
