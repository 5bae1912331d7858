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
# The ldflags helm's Makefile sets for a release: the version, and the Kubernetes version that
# `helm template`/`helm lint` assume without a cluster (client-go v0.X -> v1.X; otherwise v1.20).
gomod="$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
k8s_minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)"
[[ -n "$k8s_minor" ]] || { log "cannot find k8s.io/client-go in $gomod"; exit 1; }
ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
  ld+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mv "$tmp/helm" "$BIN/helm"
log "built helm $HELM_VERSION in $(( $(date +%s) - start ))s into $BIN"
echo "$BIN/helm"
