"""Availability probe (RNF-06) against a real local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporters.http_probe import HealthProbeCollector
from nfr.processes import free_port
from tests.exporters.helpers import registry_with, value


class Health(BaseHTTPRequestHandler):
    answer = (200, {"status": "UP"})
    delay = 0.0

    def do_GET(self):  # noqa: N802 - http.server's naming
        time.sleep(Health.delay)
        code, body = Health.answer
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def health_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/actuator/health"
    server.shutdown()
    Health.answer, Health.delay = (200, {"status": "UP"}), 0.0


def test_probe_up_down_and_slow(health_url):
    registry = registry_with(HealthProbeCollector(health_url, timeout=0.3))
    assert value(registry, "ticketero_probe_success") == 1
    assert 0 < value(registry, "ticketero_probe_duration_seconds") < 0.3
    Health.answer = (503, {"status": "DOWN"})
    assert value(registry, "ticketero_probe_success") == 0
    Health.answer = (200, {"status": "DOWN"})
    assert value(registry, "ticketero_probe_success") == 0
    Health.answer, Health.delay = (200, {"status": "UP"}), 1.0
    started = time.monotonic()
    assert value(registry, "ticketero_probe_success") == 0
    assert time.monotonic() - started < 0.8


def test_probe_closed_port():
    port = free_port()
    registry = registry_with(HealthProbeCollector(f"http://127.0.0.1:{port}/actuator/health"))
    assert value(registry, "ticketero_probe_success") == 0
