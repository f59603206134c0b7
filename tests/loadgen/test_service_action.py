"""The ``service`` action: its validation, the docker backend against the real engine, and the HTTP backend
against the local stack's control endpoint driving a real supervised process."""

from __future__ import annotations

import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from loadgen.actions import ActionContext, ActionError, run_action
from loadgen.config import Override, load_scenario
from loadgen.model import Action, ConfigError
from loadgen.safety import check_scenario
from loadgen.service_control import parse_docker_names
from loadgen.validation import ScenarioReader
from nfr.processes import ManagedProcess, free_port
from nfr.supervisor import ControlServer, Supervised

SOURCE = "plans/s.yml"


def _method(*actions: dict[str, Any], services: dict[str, str] | None = None) -> dict[str, Any]:
    return {"method": list(actions), "services": services or {}}


def _refusal(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        ScenarioReader(SOURCE, {}).scenario(doc)
    return str(error.value)


def test_a_service_action_reads_its_defaults_and_durations() -> None:
    scenario = ScenarioReader(SOURCE, {}).scenario(
        _method(
            {"type": "service", "op": "restart", "replica": 2, "grace": "30s", "at": "5s"},
            {"type": "service", "service": "broker", "op": "kill", "signal": "SIGTERM"},
        )
    )
    restart, kill = scenario.method
    assert restart == Action(
        "service", {"op": "restart", "replica": 2, "grace": 30.0, "service": "app"}, at=5.0
    )
    assert kill.params == {"service": "broker", "op": "kill", "signal": "SIGTERM"}


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"type": "service", "op": "reboot"},
            "plans/s.yml: method[0].op: expected one of stop, start, restart, kill, pause, resume, got str 'reboot'",
        ),
        (
            {"type": "service", "op": "stop", "container": "x"},
            "plans/s.yml: method[0].container: unknown key; expected one of type, name, ignore_failure, at, "
            "background, service, op, replica, grace, signal",
        ),
        (
            {"type": "service", "op": "start", "replica": 0},
            "plans/s.yml: method[0].replica: expected an integer >= 1 and <= 64, got int 0",
        ),
        (
            {"type": "service", "op": "start", "grace": "5s"},
            "plans/s.yml: method[0].grace: expected no grace for op start (stop, restart), got str '5s'",
        ),
        (
            {"type": "service", "op": "stop", "grace": "soon"},
            "plans/s.yml: method[0].grace: expected a duration such as 500ms, 2s, 1m30s, 1h or a number "
            "of seconds, got str 'soon'",
        ),
        (
            {"type": "service", "op": "stop", "signal": "SIGKILL"},
            "plans/s.yml: method[0].signal: expected no signal for op stop (kill only), got str 'SIGKILL'",
        ),
        (
            {"type": "service", "op": "kill", "signal": "SIGNOPE"},
            "plans/s.yml: method[0].signal: expected a known signal name such as SIGKILL or SIGTERM, got str 'SIGNOPE'",
        ),
        (
            {"type": "service", "op": "kill", "signal": "SIGSTOP"},
            "plans/s.yml: method[0].signal: expected a signal name such as SIGKILL or SIGTERM (pause/resume for "
            "SIGSTOP/SIGCONT), got str 'SIGSTOP'",
        ),
        (
            {"type": "service", "op": "stop", "service": ""},
            "plans/s.yml: method[0].service: expected a service name such as app or broker, got str ''",
        ),
    ],
)
def test_a_bad_service_action_is_refused_with_its_key(action: dict[str, Any], message: str) -> None:
    assert _refusal(_method(action)) == message


def test_the_backend_choice_is_checked_and_can_come_from_a_flag(tmp_path: Path) -> None:
    assert _refusal(_method(services={"service_control": "kubernetes"})) == (
        "plans/s.yml: services.service_control: expected docker, docker:SERVICE=CONTAINER,... or the http:// "
        "URL of a service-control endpoint, got str 'kubernetes'"
    )
    assert _refusal(_method(services={"service_control": "docker:app"})) == (
        "plans/s.yml: services.service_control: expected 'app': expected service=container, got str 'docker:app'"
    )
    path = tmp_path / "s.yml"
    path.write_text("method: [{type: service, op: stop}]\n")
    override = Override(("services", "service_control"), "ftp://x", "--service-control (flag)")
    with pytest.raises(ConfigError) as error:
        load_scenario(path, [override])
    assert str(error.value).startswith("--service-control (flag): services.service_control: expected docker")
    remote = load_scenario(
        path, [Override(("services", "service_control"), "http://10.1.2.3:9", "--service-control (flag)")]
    )
    with pytest.raises(ConfigError, match="services.service_control: refusing to send traffic to '10.1.2.3'"):
        check_scenario(remote)


def test_docker_names_default_to_compose_and_can_be_renamed() -> None:
    assert parse_docker_names("docker")["app"] == "ticketero-app"
    assert parse_docker_names("docker")["broker"] == "ticketero-rabbitmq"
    names = parse_docker_names("docker:app=web, broker=mq")
    assert (names["app"], names["broker"], names["database"]) == ("web", "mq", "ticketero-postgres")


# -- the docker backend against the real engine --------------------------------------------------------------


@pytest.mark.docker
async def test_docker_backend_acts_on_the_replica_container(docker_container) -> None:
    base = f"tnfr-{uuid.uuid4().hex[:8]}-app"
    # replica 2 of "app" is <name>-2; it leaves at once on SIGTERM
    container = docker_container("trap 'exit 0' TERM; while true; do sleep 0.1; done", name=f"{base}-2")
    context = ActionContext("http://127.0.0.1:1", {"service_control": f"docker:app={base}"}, {})

    async def act(op: str, **params: Any) -> str:
        return await run_action(
            Action("service", {"service": "app", "replica": 2, "op": op, **params}), context
        )

    try:
        assert f"(docker container {base}-2): now paused" in await act("pause")
        assert "now running" in await act("resume")
        assert "now exited" in await act("stop", grace=5.0)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0  # SIGTERM, not the SIGKILL after the grace
        assert "now running" in await act("start")
        assert "now running" in await act("restart", grace=5.0)
        assert "now exited" in await act("kill", signal="SIGKILL")
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 137
        with pytest.raises(ActionError, match="broker"):
            await run_action(Action("service", {"service": "cache", "op": "stop"}), context)
        with pytest.raises(ActionError, match=f"{base}-3"):  # no such replica: the engine's own error
            await run_action(Action("service", {"service": "app", "replica": 3, "op": "stop"}), context)
    finally:
        context.close()


# -- the local stack's supervisor and its control endpoint ------------------------------------------------------

# A service stand-in: serves HTTP on the given port; with IGNORE_TERM it ignores SIGTERM.
SERVER = """
import http.server, os, signal, sys
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(str(os.getpid()).encode())
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _supervised(tmp_path: Path, name: str, port: int, ignore_term: bool = False) -> Supervised:
    env = {"IGNORE_TERM": "1"} if ignore_term else {}
    return Supervised(
        name,
        lambda: ManagedProcess(
            name, [sys.executable, "-c", SERVER, str(port)], tmp_path / f"{name}.log", env=env
        ),
        lambda process: process.wait_http(f"http://127.0.0.1:{port}/", 20),
        started=lambda process: (tmp_path / f"{name}.pid").write_text(str(process.pid)),
    )


def _state(pid: int, wanted: str) -> str:
    """The process's state letter once it is one of ``wanted`` (signals are delivered asynchronously)."""
    import time

    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        if state in wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_stop_waits_the_grace_then_kills_and_start_reuses_the_port(tmp_path: Path) -> None:
    import time
    import urllib.request

    port = free_port()
    stubborn = _supervised(tmp_path, "stubborn", port, ignore_term=True)
    try:
        assert "ready" in stubborn.start()
        first = int((tmp_path / "stubborn.pid").read_text())
        assert "already running" in stubborn.start()
        began = time.monotonic()
        assert stubborn.stop(1.5) == "stubborn stopped (killed after the grace period)"
        assert 1.5 <= time.monotonic() - began < 8
        assert stubborn.stop(1.0) == "stubborn not running"
        assert "ready" in stubborn.start()
        second = int((tmp_path / "stubborn.pid").read_text())
        assert second != first
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert int(response.read()) == second  # the same port, served by the new process

        assert stubborn.pause() == "stubborn paused (SIGSTOP)"
        assert _state(second, "T") == "T"
        assert stubborn.resume() == "stubborn resumed (SIGCONT)"
        assert _state(second, "SR") in ("S", "R")
        assert stubborn.kill("SIGKILL") == "stubborn sent SIGKILL"
        assert not stubborn.alive()
    finally:
        stubborn.shutdown(0)


def test_a_polite_process_stops_on_sigterm_and_a_paused_one_is_resumed_to_stop(tmp_path: Path) -> None:
    polite = _supervised(tmp_path, "polite", free_port())
    try:
        polite.start()
        polite.pause()
        assert polite.stop(10) == f"polite stopped (exit code {-signal.SIGTERM})"
    finally:
        polite.shutdown(0)


async def test_the_http_backend_drives_the_control_endpoint(tmp_path: Path) -> None:
    replicas = [_supervised(tmp_path, f"app-{i}", free_port()) for i in (1, 2)]
    control = ControlServer(lambda: {"app": replicas})
    url = control.start()
    context = ActionContext("http://127.0.0.1:1", {"service_control": url}, {})
    try:
        for replica in replicas:
            replica.start()
        first = replicas[1].process
        assert first is not None
        detail = await run_action(
            Action("service", {"service": "app", "replica": 2, "op": "restart", "grace": 5.0}), context
        )
        assert detail.startswith("service restart app replica 2: app-2 stopped (exit code")
        assert "app-2 started" in detail
        assert replicas[1].process is not first and replicas[0].alive()
        detail = await run_action(Action("service", {"service": "app", "op": "stop", "grace": 5.0}), context)
        assert "app-1 stopped" in detail and "app-2 stopped" in detail  # no replica: all of them
        assert not any(r.alive() for r in replicas)
        with pytest.raises(ActionError, match=r"replica 3: expected 1\.\.2"):
            await run_action(Action("service", {"service": "app", "replica": 3, "op": "start"}), context)
        with pytest.raises(ActionError, match="service 'broker': expected one of app"):
            await run_action(Action("service", {"service": "broker", "op": "start"}), context)
        with pytest.raises(ActionError, match="app-1 is not running"):
            await run_action(Action("service", {"service": "app", "replica": 1, "op": "pause"}), context)
    finally:
        control.stop()
        for replica in replicas:
            replica.shutdown(0)
