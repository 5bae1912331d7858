#!/usr/bin/env bash
# Installs Lua 5.4 from Debian's package when missing, and builds Argo CD's own Lua engine and
# sandbox (hack/gopherlua, gopher-lua from the Go module proxy: hack/build-gopherlua.sh, cached).
# tests/unit/test_argocd_health.py and test_argocd_actions.py run the Argo CD health check and
# resource actions (deploy/gitops/) with both, and fail without them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v lua5.4 >/dev/null; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends lua5.4 >/dev/null
  command -v lua5.4
fi
bash "$HERE/build-gopherlua.sh"
