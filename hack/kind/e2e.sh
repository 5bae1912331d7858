#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# make e2e-kind: the integration suite, unchanged, against the kind cluster of make kind-up. Only the
# fixtures differ (SLOGATE_E2E_CLUSTER=kind, slogate.dev.e2e); local-only tests are deselected and
# listed in the summary. Extra arguments go to pytest (e.g. -k rollout).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_docker
[[ -f "$KIND_DIR/e2e.env" ]] || die "$KIND_DIR/e2e.env is missing: run make kind-up first"
# The tests start their own host side; one left by make kind-up would hold Prometheus's port.
if [[ -f "$KIND_DIR/host/state.json" ]]; then
  "$PYTHON" -m slogate dev down --dir "$KIND_DIR/host"
fi
# shellcheck source=/dev/null
source "$KIND_DIR/e2e.env"
cd "$ROOT"
exec "$ROOT/.venv/bin/pytest" -q -m integration "$@"
