#!/usr/bin/env bash
# Make sure a PostgreSQL and a RabbitMQ are reachable, and write where they are to .work/services.env.
#
# The machine's own services (127.0.0.1:5432, 127.0.0.1:5672 guest/guest) are used when they answer.
# When one does not, a private one is started from the Debian packages in a directory of its own, on its
# own ports (PostgreSQL 55432, RabbitMQ 5673 with management on 15673), and left running for later runs.
# Nothing is ever stopped or reconfigured on the machine's services, except that RabbitMQ's management and
# prometheus plugins are enabled when missing (the stack scrapes them).
#
# Usage: scripts/services.sh [--private]    (--private: ignore the machine's services; for testing this script)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .work
ENV_FILE=.work/services.env
STATE="${TICKETERO_NFR_SERVICES_DIR:-/tmp/ticketero-nfr-services}"
FORCE_PRIVATE=0; [ "${1:-}" = "--private" ] && FORCE_PRIVATE=1

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- PostgreSQL -------------------------------------------------------------------------------------
PG_HOST=127.0.0.1; PG_PORT=5432
if [ $FORCE_PRIVATE = 1 ] || ! pg_isready -q -h $PG_HOST -p $PG_PORT 2>/dev/null; then
    PG_PORT=55432
    if ! pg_isready -q -h $PG_HOST -p $PG_PORT 2>/dev/null; then
        bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
        data="$STATE/pg"
        echo "services: starting a private PostgreSQL on $PG_PORT (data: $data)"
        mkdir -p "$STATE"; chmod 755 "$STATE"
        runas=(); [ "$(id -u)" -eq 0 ] && runas=(runuser -u postgres --)
        if [ ! -f "$data/PG_VERSION" ]; then
            mkdir -p "$data"; [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
            "${runas[@]}" "$bindir/initdb" -D "$data" -U postgres -A trust >/dev/null
        fi
        "${runas[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
            -o "-p $PG_PORT -c listen_addresses=$PG_HOST -k $data -c max_connections=300" start >/dev/null
    fi
fi
PG_DSN="postgresql://postgres@$PG_HOST:$PG_PORT/postgres"

# --- RabbitMQ ---------------------------------------------------------------------------------------
AMQP_PORT=5672; RABBIT_API_PORT=15672; RABBIT_PROM_PORT=15692
if [ $FORCE_PRIVATE = 0 ] && port_open 127.0.0.1 5672; then
    plugins=$(rabbitmq-plugins list -e -m 2>/dev/null || true)
    if ! grep -q rabbitmq_management <<<"$plugins" || ! grep -q rabbitmq_prometheus <<<"$plugins"; then
        echo "services: enabling RabbitMQ's management and prometheus plugins"
        rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus >/dev/null
    fi
else
    AMQP_PORT=5673; RABBIT_API_PORT=15673; RABBIT_PROM_PORT=15693
    node="tnfr@localhost"
    if ! port_open 127.0.0.1 $AMQP_PORT; then
        base="$STATE/rabbitmq"
        echo "services: starting a private RabbitMQ on $AMQP_PORT (state: $base)"
        mkdir -p "$base"
        cat >"$base/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.port = $RABBIT_API_PORT
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBIT_PROM_PORT
prometheus.tcp.ip = 127.0.0.1
loopback_users = none
CONF
        echo "[rabbitmq_management,rabbitmq_prometheus]." >"$base/enabled_plugins"
        # Debian's wrapper runs the broker as the rabbitmq user (keeping this environment).
        [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1 && chown -R rabbitmq: "$base"
        export RABBITMQ_NODENAME=$node RABBITMQ_NODE_PORT=$AMQP_PORT RABBITMQ_DIST_PORT=25673 \
            RABBITMQ_CONFIG_FILE="$base/rabbitmq" RABBITMQ_MNESIA_BASE="$base/mnesia" \
            RABBITMQ_LOG_BASE="$base/log" RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" \
            RABBITMQ_PID_FILE="$base/rabbit.pid"
        rabbitmq-server -detached >/dev/null 2>&1
        rabbitmqctl -n $node wait --timeout 90 "$base/rabbit.pid" >/dev/null
        for _ in $(seq 1 60); do port_open 127.0.0.1 $RABBIT_API_PORT && break; sleep 0.5; done
    fi
fi

cat >"$ENV_FILE" <<ENV
# Written by scripts/services.sh: where this machine's PostgreSQL and RabbitMQ for ticketero-nfr are.
export TICKETERO_TEST_PG_DSN=$PG_DSN
export TICKETERO_TEST_AMQP_HOST=127.0.0.1
export TICKETERO_TEST_AMQP_PORT=$AMQP_PORT
export TICKETERO_TEST_RABBIT_API=http://127.0.0.1:$RABBIT_API_PORT
export TICKETERO_NFR_DATABASE_DSN=$PG_DSN
export TICKETERO_NFR_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2F
export TICKETERO_NFR_RABBIT_API=http://127.0.0.1:$RABBIT_API_PORT
export TICKETERO_NFR_RABBIT_PROMETHEUS=127.0.0.1:$RABBIT_PROM_PORT
ENV
echo "services: PostgreSQL 127.0.0.1:$PG_PORT, RabbitMQ 127.0.0.1:$AMQP_PORT (env in $ENV_FILE)"
