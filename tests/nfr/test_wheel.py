"""The wheel carries what the commands need: built with ``pip wheel --no-deps`` from what the Dockerfile
copies into the image (so the image carries it too), installed into a fresh virtualenv outside the checkout, its commands answer ``--version`` and ``--help``, the rules generator
builds, and a verdict runs against a Prometheus loaded with the rules found in the installed package."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def docker_context(dest: Path) -> Path:
    """What the Dockerfile's COPY lines put in /app (symlinks kept, as COPY keeps them): the image runs
    ``pip install .`` on exactly this, so a wheel built from it carries what the image will."""
    dest.mkdir()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "COPY" and not parts[1].startswith("--"):
            for name in parts[1:-1]:
                source = ROOT / name
                if source.is_dir():
                    shutil.copytree(source, dest / name, symlinks=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
                else:
                    shutil.copy2(source, dest / name)
    return dest


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_runs_its_commands(tmp_path):
    wheels = tmp_path / "wheels"
    context = docker_context(tmp_path / "app")
    assert (context / "nfr" / "assets" / "rules").is_symlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(context)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    wheel = next(wheels.glob("ticketero_nfr-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # The wheel itself, installed with this interpreter's pip into the fresh environment; its dependencies
    # (aiohttp, psycopg, ...) are borrowed from the test's environment, after the new site-packages, so
    # every module of the project comes from the wheel and none from the checkout.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (purelib / "zz_borrowed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), *args], cwd=work, capture_output=True, text=True, timeout=120, check=check
        )

    where = run(
        "-c", "import nfr, loadgen, ticketero; print(nfr.__file__, loadgen.__file__, ticketero.__file__)"
    )
    assert str(ROOT) not in where.stdout and str(purelib) in where.stdout
    for module in ("nfr", "loadgen", "ticketero"):
        version = run("-m", module, "--version")
        assert version.stdout.strip().endswith("0.1.0"), (module, version.stdout, version.stderr)
    for script in ("ticketero", "loadgen", "ticketero-nfr"):  # the console scripts of the wheel
        version = subprocess.run([str(env_dir / "bin" / script), "--version"], capture_output=True, text=True)
        assert version.returncode == 0 and "0.1.0" in version.stdout, (script, version.stderr)
    helped = subprocess.run(
        [str(env_dir / "bin" / "ticketero-nfr"), "run", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "--target" in helped.stdout

    out = work / "tmp"
    run("-m", "nfr.mixin", "build", "--out", str(out))
    assert (out / "alerts" / "ticketero-nfr.alerts.yml").is_file()
    assert (out / "prometheus" / "rules" / "ticketero.rules.yml").is_file()

    shipped = run("-c", "from nfr.demo import resolve_scenario; print(resolve_scenario('PERF-01-HTTP'), "
                  "resolve_scenario('LOCAL-FREEZE'))")  # fmt: skip
    assert shipped.stdout.count(str(purelib)) == 2

    # A verdict against a Prometheus loaded with the rules the installed package finds for itself.
    script = (
        "import json, subprocess, sys, tempfile, time\n"
        "from pathlib import Path\n"
        "from nfr.prometheus import PrometheusServer, default_rule_files, render_config\n"
        "rules = default_rule_files()\n"
        "assert rules and all('site-packages' in str(r) for r in rules), rules\n"
        "d = Path(tempfile.mkdtemp())\n"
        "cfg = render_config(d / 'p.yml', {}, rule_files=rules, scrape_interval='1s', evaluation_interval='1s')\n"
        "with PrometheusServer(cfg, d / 'data') as prom:\n"
        "    time.sleep(2)\n"
        "    r = subprocess.run([sys.executable, '-m', 'nfr', 'verdict', '--prometheus', prom.url, '--start',\n"
        "                        'now-2s', '--end', 'now', '--settle', '0s', '--json'], capture_output=True, text=True)\n"
        "    print(json.dumps({'code': r.returncode, 'out': r.stdout, 'err': r.stderr, 'rules': len(rules)}))\n"
    )
    result = json.loads(run("-c", script).stdout)
    assert result["code"] == 1, result["err"]  # a verdict: nothing scraped, so NO DATA
    statuses = {r["nfr"]: r["status"] for r in json.loads(result["out"])["results"]}
    assert statuses == {f"RNF-0{i}": "NO DATA" for i in range(1, 8)}
    assert result["rules"] == 3
