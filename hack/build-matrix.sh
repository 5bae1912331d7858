#!/usr/bin/env bash
# Builds kube-apiserver for the older Kubernetes releases of the version matrix (K8S_MATRIX in
# hack/versions.env, or the releases given as arguments) from the Go module proxy, the way
# build-bins.sh builds K8S_VERSION: a generated go.mod requires k8s.io/kubernetes at that release
# and replaces its staging modules (k8s.io/api, k8s.io/apiserver, ...) with their published v0.X.Y.
# Only kube-apiserver: etcd and kubectl come from build-bins.sh (docs/compatibility.md).
#
# Each release is built with the Go it was released with (its own .go-version, e.g. 1.23.10 for
# v1.30.14), which GOTOOLCHAIN fetches from the module proxy (golang.org/toolchain): an old tree
# is not promised to build with a newer Go. MATRIX_GOTOOLCHAIN overrides it (e.g. local).
# Staging modules the proxy refuses to serve (403 "not available"; v1.30.14's sample-* modules)
# are required by k8s.io/kubernetes's go.mod but never linked into kube-apiserver: they are
# replaced by empty local stubs, and `go mod tidy` would fail if a package of theirs were needed.
#
# Cached under ${XDG_CACHE_HOME:-~/.cache}/slogate/bin/kube-apiserver-<release>/ ; a warm run does
# nothing. Prints "<release> <directory>" per release on stdout (logs go to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
export GOFLAGS=-buildvcs=false CGO_ENABLED=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
log() { echo "[build-matrix] $*" >&2; }

if [[ $# -gt 0 ]]; then
  releases=("$@")
else
  read -ra releases <<<"${K8S_MATRIX:-}"
fi

build_one() {
  local v="$1" bin="$2" start mod src gover directive minor toolchain
  start=$(date +%s)
  mod="$CACHE/src/kube-apiserver-$v"
  rm -rf "$mod"
  mkdir -p "$mod/stub" "$bin"
  # The release's own go.mod: its go directive and the staging modules it replaces.
  src="$(cd "$CACHE" && GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$v" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
  [[ -f "$src/go.mod" ]] || { log "cannot download k8s.io/kubernetes@$v"; return 1; }
  gover="$(tr -d '[:space:]' <"$src/.go-version")"
  directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$src/go.mod")"
  minor="v0.${v#v1.}"
  toolchain="${MATRIX_GOTOOLCHAIN:-go$gover}"
  local staging=() missing=()
  mapfile -t staging < <(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$src/go.mod")
  mapfile -t missing < <(cd "$CACHE" && GOTOOLCHAIN=local go list -m -e \
    -f '{{if .Error}}{{.Path}}{{"\n"}}{{end}}' "${staging[@]/%/@$minor}" | sed '/^$/d')
  {
    echo "module slogate.io/hack/apiserver"
    echo
    echo "go $directive"
    echo
    echo "require k8s.io/kubernetes $v"
    echo
    echo "replace ("
    for s in "${staging[@]}"; do
      if [[ " ${missing[*]} " == *" $s "* ]]; then
        mkdir -p "$mod/stub/${s#k8s.io/}"
        printf 'module %s\n\ngo %s\n' "$s" "$directive" >"$mod/stub/${s#k8s.io/}/go.mod"
        echo "	$s => ./stub/${s#k8s.io/}"
      else
        echo "	$s => $s $minor"
      fi
    done
    echo ")"
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  [[ ${#missing[@]} -eq 0 ]] || log "$v: stubs for modules the proxy does not serve: ${missing[*]}"
  log "$v: resolving modules, building kube-apiserver with GOTOOLCHAIN=$toolchain"
  (
    cd "$mod"
    export GOTOOLCHAIN="$toolchain"
    go get "k8s.io/kubernetes@$v" >&2
    go mod tidy >&2
    local m="${v#v1.}"
    go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$v \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${m%%.*}" \
      -o "$bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
    echo "k8s.io/kubernetes $v built by $(go version) in $(($(date +%s) - start))s" >"$bin/build.txt"
  )
  mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
  log "$(cat "$bin/build.txt") into $bin"
}

for v in "${releases[@]}"; do
  [[ "$v" =~ ^v1\.[0-9]+\.[0-9]+$ ]] || { log "not a Kubernetes release: '$v'"; exit 2; }
  bin="$CACHE/bin/kube-apiserver-$v"
  [[ -x "$bin/kube-apiserver" ]] || build_one "$v" "$bin"
  echo "$v $bin"
done
