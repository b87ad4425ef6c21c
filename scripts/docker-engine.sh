#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, starting one if needed. Idempotent.
#
# Why: the scoring-image tests build and run a real container. CI machines are fresh, so the
# engine may be missing (installed here with apt-get) or installed but not running (started here
# in the background, logging to $DOCKERD_LOG). Safe to run any number of times.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/tmp/amlvision-dockerd.log}
WAIT_SECONDS=${DOCKER_WAIT_SECONDS:-60}

if docker info >/dev/null 2>&1; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "docker-engine: installing docker.io with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io >/dev/null
fi

if ! command -v docker >/dev/null 2>&1; then
    echo "docker-engine: no docker client found after installing docker.io" >&2
    exit 1
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "docker-engine: starting dockerd (log: $DOCKERD_LOG)" >&2
    # setsid detaches the daemon from this shell so it outlives the caller (pytest, make).
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT_SECONDS"); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 1
done
echo "docker-engine: the engine did not answer within ${WAIT_SECONDS}s; last lines of $DOCKERD_LOG:" >&2
tail -n 30 "$DOCKERD_LOG" >&2 || true
exit 1
