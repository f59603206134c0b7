#!/usr/bin/env bash
# Install everything ticketero-nfr needs on a fresh Debian machine, and nothing twice.
#
#   Debian packages  prometheus (+promtool), alertmanager, postgres_exporter (benchmark reference),
#                    docker.io, docker-compose (validates docker-compose.yml), chromium (HTML report
#                    check), wrk, busybox-static (docker test image), nginx-light (a real HTTP/TLS
#                    server for the load generator's client tests and benchmark), hey (benchmark reference),
#                    and a PostgreSQL server / RabbitMQ server only if none is installed.
#   Python           .venv with the project installed editable, with its dev extras.
#
# Usage: scripts/bootstrap.sh [--with-bench | --with-mutation]
#        (bench adds Locust and py-spy to the virtualenv, mutation adds mutmut for `make mutation`)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(prometheus prometheus-alertmanager prometheus-postgres-exporter docker.io chromium wrk
          busybox-static docker-compose procps curl nginx-light hey haproxy)
command -v pg_ctlcluster >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || PACKAGES+=(postgresql)
command -v rabbitmq-server >/dev/null 2>&1 || PACKAGES+=(rabbitmq-server)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # The packaged services must not start on their own: the project decides what runs where.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$PYTHON" -m venv .venv
fi
extras="dev"
[ "${1:-}" = "--with-bench" ] && extras="dev,bench"
[ "${1:-}" = "--with-mutation" ] && extras="dev,mutation"
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)-$extras"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing the project into .venv ($extras)"
    mkdir -p .work
    .venv/bin/python -m pip install -q --upgrade pip >.work/pip.log 2>&1 || true
    if ! .venv/bin/python -m pip install -q -e ".[$extras]" >>.work/pip.log 2>&1; then
        echo "bootstrap: pip install failed; its output:" >&2
        cat .work/pip.log >&2
        exit 1
    fi
    .venv/bin/python -c "import aiohttp, psycopg, pika, prometheus_client, docker, yaml, hdrh, httptools, uvloop"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
echo "bootstrap: ready"
