#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds kind ($KIND_VERSION from hack/versions.env) from the Go module proxy with the installed Go
# (GOTOOLCHAIN=local, no other downloads), the way build-helm.sh builds helm: sigs.k8s.io/kind has
# no replace directives, so `go install pkg@version` works. kind still needs a Docker engine to run.
# Cached under ${XDG_CACHE_HOME:-~/.cache}/slogate/bin/kind-<version>/; a warm run does nothing.
# Prints the path of the kind binary on stdout (logs go to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
BIN="${SLOGATE_KIND_DIR:-$CACHE/bin/kind-$KIND_VERSION}"
if [[ -x "$BIN/kind" ]]; then echo "$BIN/kind"; exit 0; fi
log() { echo "[build-kind] $*" >&2; }
command -v go >/dev/null || { log "go is not installed: kind is built from the Go module proxy (or put kind $KIND_VERSION on PATH)"; exit 1; }
start=$(date +%s)
mkdir -p "$BIN"
tmp="$BIN/.gobin.$$"
trap 'rm -rf "$tmp"' EXIT
log "building sigs.k8s.io/kind@$KIND_VERSION"
GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION" >&2
mv "$tmp/kind" "$BIN/kind"
log "built kind $KIND_VERSION in $(( $(date +%s) - start ))s into $BIN"
echo "$BIN/kind"
