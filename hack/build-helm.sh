#!/usr/bin/env bash
# Builds helm ($HELM_VERSION from hack/versions.env) from the Go module proxy with the installed Go
# (GOTOOLCHAIN=local, no other downloads). helm.sh/helm/v3 has no replace directives, so a plain
# `go install pkg@version` works. Cached under ${XDG_CACHE_HOME:-~/.cache}/slogate/bin/helm-<version>/;
# a warm run does nothing. Prints the path of the helm binary on stdout (logs go to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
BIN="${SLOGATE_HELM_DIR:-$CACHE/bin/helm-$HELM_VERSION}"
if [[ -x "$BIN/helm" ]]; then echo "$BIN/helm"; exit 0; fi
log() { echo "[build-helm] $*" >&2; }
start=$(date +%s)
mkdir -p "$BIN"
tmp="$BIN/.gobin.$$"
trap 'rm -rf "$tmp"' EXIT
log "building helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
# The same ldflags helm's Makefile sets for a release build (version string; the commit is unknown here).
GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mv "$tmp/helm" "$BIN/helm"
log "built helm $HELM_VERSION in $(( $(date +%s) - start ))s into $BIN"
echo "$BIN/helm"
