#!/usr/bin/env bash
# Builds the local base image that CI and our machines pass to the Dockerfile as BASE_IMAGE, where
# no registry can be reached (so python:3.11-slim-bookworm cannot be pulled): Debian bookworm's own
# python3 (3.11) from a debootstrap minbase, imported into podman under its own name,
# localhost/slogate-base:bookworm-<key>, never under the official image's. docs/image.md lists what
# differs from the official base. The key hashes everything that shapes the root filesystem, so a
# changed package list makes a new base.
#
# Built once: the root filesystem is cached as a tarball under ${XDG_CACHE_HOME:-~/.cache}/slogate/base/
# and re-imported when podman's storage lacks the image; a warm run does nothing. Needs root
# (debootstrap). Prints the image reference on stdout (logs go to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
SUITE=bookworm
MIRROR="${SLOGATE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# python3 + its venv module (the Dockerfile's `python -m venv`), `python` itself, and what the official
# slim image adds to debian:bookworm-slim at run time: CA certificates, /etc/services, time zones.
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates,netbase,tzdata
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate/base"
key="$(printf '%s\n' "$SUITE" minbase "$PACKAGES" slim-v1 | sha256sum | cut -c1-12)"
TAG="$SUITE-$key"
REF="localhost/slogate-base:$TAG"
log() { echo "[build-base-image] $*" >&2; }

if podman image exists "$REF"; then echo "$REF"; exit 0; fi
mkdir -p "$CACHE"
tarball="$CACHE/$TAG.tar"
if [[ ! -s "$tarball" ]]; then
  command -v debootstrap >/dev/null || { log "debootstrap is missing: bash hack/ensure-podman.sh"; exit 1; }
  [[ $(id -u) -eq 0 ]] || { log "debootstrap needs root"; exit 1; }
  start=$(date +%s)
  rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs" "$tarball.tmp"' EXIT
  log "debootstrap --variant=minbase --include=$PACKAGES $SUITE from $MIRROR"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >&2
  # Slim as debian:bookworm-slim is: no package lists, downloaded .debs, manuals or docs (copyrights kept).
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
  find "$rootfs/usr/share/doc" -type d -empty -delete
  tar --numeric-owner --xattrs -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  log "root filesystem in $(( $(date +%s) - start ))s: $tarball ($(du -h "$tarball" | cut -f1))"
fi
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with Debian's python3 (debootstrap: $PACKAGES); a local stand-in for python:3.11-slim-bookworm, see docs/image.md\"" \
  --message "hack/build-base-image.sh $TAG" \
  "$tarball" "$REF" >&2
echo "$REF"
