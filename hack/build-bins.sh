#!/usr/bin/env bash
# Builds the local control-plane binaries from the Go module proxy with the installed Go.
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes),
# etcd (go.etcd.io/etcd/server/v3 from the same module graph) and kwok.
# Cached under ${XDG_CACHE_HOME:-~/.cache}/slogate/bin/<versions>/ ; a warm run does nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
BIN="${SLOGATE_BIN_DIR:-$CACHE/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION}"
mkdir -p "$BIN"
need=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok; do
  [[ -x "$BIN/$b" ]] || need+=("$b")
done
if [[ ${#need[@]} -eq 0 ]]; then echo "$BIN"; exit 0; fi
start=$(date +%s)
log() { echo "[build-bins] $*" >&2; }
mod="$CACHE/src/k8s-$K8S_VERSION"
mkdir -p "$mod"
minor="v0.${K8S_VERSION#v1.}"
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
  cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
  cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
  kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming)
{
  echo "module slogate.io/hack/k8sbins"
  echo
  echo "go 1.26.0"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for s in "${staging[@]}"; do echo "	k8s.io/$s => k8s.io/$s $minor"; done
  echo ")"
} > "$mod/go.mod"
cat > "$mod/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
cd "$mod"
log "resolving modules for k8s.io/kubernetes $K8S_VERSION"
go get "k8s.io/kubernetes@$K8S_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
go mod tidy >&2
for b in "${need[@]}"; do
  case "$b" in
    etcd) pkg="go.etcd.io/etcd/server/v3" ;;
    kwok) continue ;;
    *) pkg="k8s.io/kubernetes/cmd/$b" ;;
  esac
  log "building $b ($pkg)"
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" -o "$BIN/$b.tmp" "$pkg" >&2
  mv "$BIN/$b.tmp" "$BIN/$b"
done
if [[ ! -x "$BIN/kwok" ]]; then
  log "building kwok $KWOK_VERSION"
  GOBIN="$BIN/.kwok" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  mv "$BIN/.kwok/kwok" "$BIN/kwok"
fi
log "built ${need[*]} in $(( $(date +%s) - start ))s into $BIN"
echo "$BIN"
