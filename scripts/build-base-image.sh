#!/usr/bin/env bash
# Build a local Debian bookworm + Python 3.11 base image without any image registry. Idempotent.
#
# Why: no registry (Docker Hub, mcr) is reachable from the test and CI machines, yet the scoring
# and training images need a base. debootstrap fetches bookworm from the Debian mirror (reachable
# like apt-get), and `docker import` turns the root file system into an image. The result is a
# general Python 3.11 base (python3, venv, pip wheel, CA certificates) with no compilers.
#
#   scripts/build-base-image.sh [TAG]      default tag: amlvision/base:bookworm
#   FORCE=1 scripts/build-base-image.sh     rebuild even when the tag exists
#   DEBIAN_MIRROR=http://... scripts/...    another Debian mirror
set -euo pipefail

TAG=${1:-${AMLVISION_BASE_IMAGE:-amlvision/base:bookworm}}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates,tzdata

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build-base-image: $TAG exists; skipping (FORCE=1 rebuilds)" >&2
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "build-base-image: installing debootstrap with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null
fi

ROOTFS=$(mktemp -d /tmp/amlvision-rootfs.XXXXXX)
cleanup() { rm -rf "$ROOTFS"; }
trap cleanup EXIT

echo "build-base-image: debootstrap bookworm from $MIRROR into $ROOTFS" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 40 "$ROOTFS.log" >&2
    exit 1
}
rm -f "$ROOTFS.log"

# Slim the tree the way the official slim images do: no apt lists, caches, docs or man pages.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/usr/share/doc/* \
    "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/*
echo "deb $MIRROR bookworm main" >"$ROOTFS/etc/apt/sources.list"

echo "build-base-image: importing as $TAG" >&2
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "Debian bookworm minbase + Python 3.11 (scripts/build-base-image.sh)" \
    - "$TAG" >/dev/null
docker run --rm "$TAG" python3 -c 'import sys, venv, ssl; print("build-base-image: python", sys.version.split()[0])' >&2
