"""The verdict reads a secured Prometheus: TLS (own CA, checked server name) and basic auth through
``--web.config.file`` on a real Prometheus; right credentials judge as usual, wrong ones exit 2 with a clear
message and no verdict. Bearer token, extra headers and the path prefix are checked on the wire."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import pytest
import yaml

from nfr.__main__ import main
from nfr.promclient import HttpOptions, PrometheusAuthError, PrometheusClient
from nfr.prometheus import PrometheusServer, default_rule_files, free_port, render_config

USER, PASSWORD = "nfr", "s3cret-for-tests"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for prometheus.test (and 127.0.0.1) signed by it."""
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=nfr test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=prometheus.test", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:prometheus.test\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)  # fmt: skip
    (d / "password").write_text(PASSWORD + "\n")
    (d / "wrong-password").write_text("not-the-password\n")
    return d


def _start_secured(
    d: Path, certs: Path, targets: dict[str, list[str]], rule_files: list[Path]
) -> PrometheusServer:
    """A Prometheus behind TLS (certificate for prometheus.test) and basic auth (bcrypt), 1 s intervals."""
    web = {
        "tls_server_config": {"cert_file": str(certs / "server.crt"), "key_file": str(certs / "server.key")},
        "basic_auth_users": {USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()},
    }
    d.mkdir(parents=True, exist_ok=True)
    (d / "web.yml").write_text(yaml.safe_dump(web))
    port = free_port()
    config = render_config(
        d / "prometheus.yml", targets, rule_files=rule_files, scrape_interval="1s", evaluation_interval="1s"
    )
    server = PrometheusServer(
        config, d / "data", port=port, extra_args=[f"--web.config.file={d / 'web.yml'}"]
    )
    server.url = f"https://127.0.0.1:{port}"
    server._ready = lambda: _secured_ready(server.url, certs)  # type: ignore[method-assign]
    return server.start()


@pytest.fixture(scope="module")
def secured(certs: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Prometheus behind TLS + basic auth, evaluating the shipped rules over its own scrape."""
    server = _start_secured(tmp_path_factory.mktemp("secured"), certs, {}, default_rule_files())
    time.sleep(3)  # a few evaluations: a window with data
    yield server
    server.stop()


def _secured_ready(url: str, certs: Path) -> bool:
    client = PrometheusClient(url, timeout=2, http=_good(certs))
    try:
        client.check()
        return True
    except Exception:
        return False


def _good(certs: Path) -> HttpOptions:
    return HttpOptions(
        basic_auth_user=USER,
        basic_auth_password_file=certs / "password",
        ca_file=certs / "ca.crt",
        server_name="prometheus.test",
    )


def _verdict_args(url: str, certs: Path, *extra: str) -> list[str]:
    return ["verdict", "--prometheus", url, "--start", "now-3s", "--end", "now", "--settle", "0s", "--json",
            "--prometheus-ca-file", str(certs / "ca.crt"), "--prometheus-server-name", "prometheus.test",
            *extra]  # fmt: skip


def test_right_credentials_judge_as_usual(secured, certs, capsys):
    code = main(
        _verdict_args(
            secured.url,
            certs,
            "--prometheus-user",
            USER,
            "--prometheus-password-file",
            str(certs / "password"),
        )  # fmt: skip
    )
    out = capsys.readouterr().out
    assert code in (0, 1), out  # a verdict: this Prometheus scrapes nothing, so NO DATA everywhere
    report = json.loads(out)
    assert [r["nfr"] for r in report["results"]] == [f"RNF-0{i}" for i in range(1, 8)]
    assert {r["status"] for r in report["results"]} == {"NO DATA"}


def test_wrong_password_exits_2_without_a_verdict(secured, certs, capsys):
    code = main(
        _verdict_args(
            secured.url,
            certs,
            "--prometheus-user",
            USER,
            "--prometheus-password-file",
            str(certs / "wrong-password"),
        )  # fmt: skip
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""  # never a verdict
    assert "refused the credentials (401" in captured.err


def test_no_credentials_exit_2(secured, certs, capsys):
    assert main(_verdict_args(secured.url, certs)) == 2
    assert "refused the credentials" in capsys.readouterr().err


def test_unknown_ca_or_wrong_server_name_exit_2(secured, certs, capsys):
    args = ["verdict", "--prometheus", secured.url, "--start", "now-3s", "--end", "now", "--settle", "0s",
            "--prometheus-user", USER, "--prometheus-password-file", str(certs / "password")]  # fmt: skip
    assert main(args) == 2  # the system CAs do not know our CA
    assert "TLS with" in capsys.readouterr().err
    assert (
        main([*args, "--prometheus-ca-file", str(certs / "ca.crt"), "--prometheus-server-name", "other.test"])
        == 2
    )
    assert "TLS with" in capsys.readouterr().err


def test_client_raises_auth_error(secured, certs):
    bad = HttpOptions(basic_auth_user=USER, basic_auth_password_file=certs / "wrong-password",
                      ca_file=certs / "ca.crt", server_name="prometheus.test")  # fmt: skip
    with pytest.raises(PrometheusAuthError):
        PrometheusClient(secured.url, http=bad).query("up")
    assert PrometheusClient(secured.url, http=_good(certs)).alerting_rules()


def test_run_against_a_secured_prometheus_with_wrong_credentials_sends_no_request(
    secured, certs, tmp_path, capsys
):
    from tests.nfr.standin import StandIn

    with StandIn() as standin:
        code = main(["run", "--target", standin.url, "--prometheus", secured.url, "--results", str(tmp_path),
                     "--prometheus-user", USER, "--prometheus-password-file", str(certs / "wrong-password"),
                     "--prometheus-ca-file", str(certs / "ca.crt"),
                     "--prometheus-server-name", "prometheus.test"])  # fmt: skip
        assert standin.requests == 0
    assert code == 2
    assert "refused the credentials (401" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_bearer_token_headers_and_path_prefix_on_the_wire(tmp_path):
    """What a gateway in front of Mimir sees: the bearer token from its file, X-Scope-OrgID, the prefix."""
    seen: list[tuple[str, dict[str, str]]] = []  # header names lower-cased

    class Gateway(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = json.dumps({"status": "success", "data": {"version": "gateway"}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    try:
        options = HttpOptions(bearer_token_file=token, headers={"X-Scope-OrgID": "tenant-1"},
                              path_prefix="/prometheus")  # fmt: skip
        PrometheusClient(f"http://127.0.0.1:{server.server_address[1]}", http=options).check()
    finally:
        server.shutdown()
        server.server_close()
    path, headers = seen[0]
    assert path == "/prometheus/api/v1/status/buildinfo"
    assert headers["authorization"] == "Bearer tok-123"
    assert headers["x-scope-orgid"] == "tenant-1"


def test_cli_refuses_two_kinds_of_auth(tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text("x")
    code = main(["verdict", "--prometheus", "http://127.0.0.1:1", "--start", "now-1m", "--end", "now",
                 "--prometheus-bearer-token-file", str(token), "--prometheus-user", "u"])  # fmt: skip
    assert code == 2
    assert "not both" in capsys.readouterr().err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


@pytest.mark.slow
def test_run_reads_a_secured_prometheus_that_scrapes_the_load_generator(certs, tmp_path):
    """The staging shape: the remote Prometheus scrapes the load generator on a fixed port and evaluates the
    rules (compressed here, built without the exporter's absent alerts as the stand-in has no exporter);
    nfr run starts no Prometheus and judges from the secured one."""
    from nfr.rulescale import compress_rule_files
    from nfr.run import drop_absent_alerts
    from tests.nfr.standin import StandIn

    loadgen_port = free_port()
    rules = drop_absent_alerts(default_rule_files(), ["ticketero-exporter"], tmp_path / "rules-run")
    rules = compress_rule_files(rules, tmp_path / "rules", 60, 4)
    server = _start_secured(tmp_path / "prom", certs, {"loadgen": [f"127.0.0.1:{loadgen_port}"]}, rules)
    scenario = Path(__file__).parent / "scenarios" / "standin-http.yml"
    try:
        with StandIn() as standin:
            code = main(
                ["run", "--target", standin.url, "--scenario", str(scenario), "--results", str(tmp_path / "r"),
                 "--prometheus", server.url, "--loadgen-port", str(loadgen_port), "--settle", "10s",
                 "--prometheus-user", USER, "--prometheus-password-file", str(certs / "password"),
                 "--prometheus-ca-file", str(certs / "ca.crt"), "--prometheus-server-name", "prometheus.test"]
            )  # fmt: skip
            assert standin.requests > 1000
    finally:
        server.stop()
    report = json.loads((tmp_path / "r" / "results.json").read_text())
    statuses = {r["nfr"]: r["status"] for r in report["results"]}
    assert statuses["RNF-02"] == "PASS" and statuses["RNF-06"] == "PASS", report["failure_reasons"]
    assert {statuses[n] for n in ("RNF-01", "RNF-03", "RNF-04", "RNF-05")} == {"NO DATA"}
    assert code == 1  # NO DATA is never a pass
    assert report["evidence"]["path"] is None  # that Prometheus keeps its own data
