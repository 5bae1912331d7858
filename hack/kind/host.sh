#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The host side of make kind-up, left running: kwok with the fake GPU nodes, the CRDs, Prometheus on the
# kind network's gateway and the bridge, attached to the kind cluster of .slogate-kind/e2e.env by the
# same code the tests use (python -m slogate.dev.e2e up). make kind-down stops it.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ -f "$KIND_DIR/e2e.env" ]] || die "$KIND_DIR/e2e.env is missing: run hack/kind/up.sh first"
if [[ -f "$KIND_DIR/host/state.json" ]]; then
  "$PYTHON" -m slogate dev down --dir "$KIND_DIR/host"
fi
# shellcheck source=/dev/null
source "$KIND_DIR/e2e.env"
"$PYTHON" -m slogate.dev.e2e up --dir "$KIND_DIR/host" > "$KIND_DIR/host.env"
log "host side up; source $KIND_DIR/host.env for KUBECONFIG and PROMETHEUS_URL; fault injection:"
log "  slogate dev --dir $KIND_DIR/host sim set -n NS -l slogate.io/revision=REV --ttft-ms 900"
