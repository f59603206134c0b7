#!/usr/bin/env bash
# Make a Docker engine available for the docker backends' tests and the fault actions.
#
# Reuses a running engine; otherwise starts dockerd in the only mode this kind of host allows
# (no iptables, no bridge, vfs storage), so containers run with --network host. No registry is
# reachable, so the test image is imported from the host's busybox-static binary.
#
# Usage: scripts/dockerd.sh          # prints the image name on success, exits 1 when no engine can run
set -euo pipefail

IMAGE="${TICKETERO_NFR_TEST_IMAGE:-ticketero-nfr/busybox:latest}"
LOG="${TICKETERO_NFR_DOCKERD_LOG:-/tmp/ticketero-nfr-dockerd.log}"

engine_up() { docker info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    echo "dockerd.sh: docker is not installed (Debian package docker.io)" >&2
    exit 1
fi

if ! engine_up; then
    echo "dockerd.sh: starting dockerd (log: $LOG)" >&2
    # setsid: the engine must outlive the shell (and the test run) that started it.
    setsid dockerd --iptables=false --bridge=none --storage-driver=vfs >"$LOG" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        engine_up && break
        sleep 0.5
    done
    if ! engine_up; then
        echo "dockerd.sh: dockerd did not come up within 30 s; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2 || true
        exit 1
    fi
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    # Debian's busybox-static: one self-contained binary, so the image needs no libc.
    busybox=$(command -v busybox || true)
    if [ -z "$busybox" ]; then
        echo "dockerd.sh: busybox not found (Debian package busybox-static)" >&2
        exit 1
    fi
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/tmp"
    cp "$busybox" "$root/bin/busybox"
    for applet in sh sleep cat echo head dd yes true false kill ps; do
        ln -s busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' - "$IMAGE" >/dev/null
    echo "dockerd.sh: imported $IMAGE" >&2
fi
echo "$IMAGE"
