#!/usr/bin/env bash
# Builds the operator image with podman from the repository's Dockerfile (`make image`).
#
# The base is the Dockerfile's BASE_IMAGE build argument. Here it defaults to the local Debian base of
# hack/build-base-image.sh (built once, cached), because our machines and CI reach no registry; with
# registry access, SLOGATE_BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm builds on the
# official base, the Dockerfile's own default (docker build . uses it). docs/image.md: what differs.
#
# Env: SLOGATE_IMAGE (default localhost/slogate:dev), SLOGATE_BASE_IMAGE, CONTAINERS_CONF (default
# hack/containers.conf), SLOGATE_BUILD_CA_BUNDLE (CA certificates for the build's pip; default the
# host's: $PIP_CERT, $SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt). The image carries the OCI labels version (pyproject.toml), revision (the git
# commit, "-dirty" with uncommitted changes) and base.name. Prints the image reference on stdout
# (logs go to stderr); podman's layer cache makes a rebuild of an unchanged tree a few seconds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
IMAGE="${SLOGATE_IMAGE:-localhost/slogate:dev}"
log() { echo "[build-image] $*" >&2; }
command -v podman >/dev/null || { log "podman is missing: bash hack/ensure-podman.sh"; exit 1; }

if [[ -n "${SLOGATE_BASE_IMAGE:-}" ]]; then
  base="$SLOGATE_BASE_IMAGE"
  pull=missing
else
  base="$(bash "$HERE/build-base-image.sh")"
  pull=never  # local only: never look for it in a registry
fi
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -1)"
revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ "$revision" != unknown ]] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
  revision="$revision-dirty"
fi
# The host's CA bundle, the one its own pip trusts, for the build stage's pip (PIP_CERT): behind a
# TLS-intercepting proxy the package index is signed by a CA that only the host knows. Mounted for the
# RUN steps only; nothing of it is in the image.
ca="${SLOGATE_BUILD_CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}"
ca_args=()
if [[ -f "$ca" ]]; then
  ca_args=(--volume "$ca:/run/slogate-build-ca.crt:ro" --build-arg PIP_CERT=/run/slogate-build-ca.crt)
fi
start=$(date +%s)
log "podman build $IMAGE on $base (version $version, revision $revision)"
# --network host: the build stage installs the operator's dependencies from the package index.
podman build --network host --pull="$pull" "${ca_args[@]}" \
  --build-arg BASE_IMAGE="$base" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >&2
size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
log "built $IMAGE in $(( $(date +%s) - start ))s, $(( size / 1000000 )) MB"
echo "$IMAGE"
