#!/usr/bin/env bash
# Builds hack/gopherlua/, which runs Argo CD Lua customizations (health checks, resource actions,
# action discovery) in Argo CD's own Lua engine and sandbox: github.com/yuin/gopher-lua at
# $GOPHER_LUA_VERSION (hack/versions.env; the version Argo CD pins), from the Go module proxy with
# the installed Go (GOTOOLCHAIN=local, no other downloads; hack/gopherlua/go.sum pins the modules).
# tests/unit/test_argocd_health.py and test_argocd_actions.py run deploy/gitops/ with it, and fail
# without it. Cached under ${XDG_CACHE_HOME:-~/.cache}/slogate/bin/gopherlua-<version>/ together
# with a digest of hack/gopherlua/ (source.sha256): a warm run with unchanged sources does nothing,
# a change to the sources rebuilds. Prints the path of the binary on stdout (logs go to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
SRC="$HERE/gopherlua"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
BIN="${SLOGATE_GOPHERLUA_DIR:-$CACHE/bin/gopherlua-$GOPHER_LUA_VERSION}"
log() { echo "[build-gopherlua] $*" >&2; }

# The digest of every file of hack/gopherlua/ (the tests compute the same to detect a stale binary):
# sha256 of the `sha256sum` lines of the files in C-locale order.
digest="$(cd "$SRC" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | xargs sha256sum -- \
  | sha256sum | cut -d' ' -f1)"
if [[ -x "$BIN/gopherlua" && "$(cat "$BIN/source.sha256" 2>/dev/null)" == "$digest" ]]; then
  echo "$BIN/gopherlua"; exit 0
fi
if ! grep -q "^[[:space:]]*github.com/yuin/gopher-lua $GOPHER_LUA_VERSION\$" "$SRC/go.mod"; then
  log "hack/gopherlua/go.mod does not require github.com/yuin/gopher-lua $GOPHER_LUA_VERSION (hack/versions.env): change both together"
  exit 1
fi
start=$(date +%s)
mkdir -p "$BIN"
tmp="$BIN/.build.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
log "building hack/gopherlua with github.com/yuin/gopher-lua@$GOPHER_LUA_VERSION"
(cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$tmp/gopherlua" .) >&2
mv "$tmp/gopherlua" "$BIN/gopherlua"
echo "$digest" >"$BIN/source.sha256"
log "built gopherlua in $(( $(date +%s) - start ))s into $BIN"
echo "$BIN/gopherlua"
