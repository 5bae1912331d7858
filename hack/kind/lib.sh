#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Shared by hack/kind/*.sh: where things live, and clear failures when docker or kind are missing.
# Everything these scripts feed docker, kind and helm is rendered by `python -m slogate.dev.kind`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../versions.env
source "$ROOT/hack/versions.env"
# shellcheck disable=SC2034  # used by the scripts that source this file
KIND_DIR="${SLOGATE_KIND_DIR:-$ROOT/.slogate-kind}"
# shellcheck disable=SC2034
KIND_CLUSTER="${SLOGATE_KIND_CLUSTER:-slogate}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
log() { echo "[kind] $*" >&2; }
die() { echo "[kind] error: $*" >&2; exit 1; }

# docker must be installed *and* its daemon reachable: kind runs the cluster's node as a container.
require_docker() {
  command -v docker >/dev/null 2>&1 \
    || die "docker is not installed: the kind path needs a Docker engine (docs/kind.md). Without Docker use the local control plane: make test"
  docker info >/dev/null 2>&1 \
    || die "the Docker daemon is not reachable (docker info failed): start it, or check DOCKER_HOST and your access to its socket (docs/kind.md)"
}

# kind on PATH, else the pinned one built from the Go module proxy (hack/build-kind.sh).
find_kind() {
  if command -v kind >/dev/null 2>&1; then command -v kind; return; fi
  bash "$ROOT/hack/build-kind.sh" \
    || die "kind is not installed and could not be built (needs Go; or install kind $KIND_VERSION on PATH)"
}
