#!/usr/bin/env bash
# Builds kubeconform ($KUBECONFORM_VERSION from hack/versions.env) from the Go module proxy with the
# installed Go (GOTOOLCHAIN=local, no other downloads). github.com/yannh/kubeconform has no replace
# directives, so a plain `go install pkg@version` works. Cached under
# ${XDG_CACHE_HOME:-~/.cache}/slogate/bin/kubeconform-<version>/; a warm run does nothing. Prints the
# path of the kubeconform binary on stdout (logs go to stderr). It never fetches schemas: `make lint`
# points it at the ones hack/lint/gen_schemas.py writes offline.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
BIN="${SLOGATE_KUBECONFORM_DIR:-$CACHE/bin/kubeconform-$KUBECONFORM_VERSION}"
if [[ -x "$BIN/kubeconform" ]]; then echo "$BIN/kubeconform"; exit 0; fi
log() { echo "[build-kubeconform] $*" >&2; }
start=$(date +%s)
mkdir -p "$BIN"
tmp="$BIN/.gobin.$$"
trap 'rm -rf "$tmp"' EXIT
log "building github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
GOBIN="$tmp" go install -trimpath -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" \
  "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >&2
mv "$tmp/kubeconform" "$BIN/kubeconform"
log "built kubeconform $KUBECONFORM_VERSION in $(( $(date +%s) - start ))s into $BIN"
echo "$BIN/kubeconform"
