#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# make kind-down: stop the host side (kwok, Prometheus, bridge) and delete the kind cluster.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -f "$KIND_DIR/host/state.json" ]]; then
  "$PYTHON" -m slogate dev down --dir "$KIND_DIR/host"
fi
require_docker
KIND="$(find_kind)"
"$KIND" delete cluster --name "$KIND_CLUSTER"
rm -f "$KIND_DIR/e2e.env" "$KIND_DIR/kubeconfig"
