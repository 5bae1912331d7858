#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# make kind-up: a kind cluster with the audit log on a host mount, the operator image built and loaded,
# the chart installed with the kind values, and .slogate-kind/e2e.env written for the test fixtures.
# Idempotent: an existing cluster is reused, the image rebuilt and the release upgraded.
# The fake GPU nodes, Prometheus and the simulators are started on the host afterwards (make kind-up
# runs `python -m slogate.dev.e2e up`; the tests start their own): see docs/kind.md.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_docker
KIND="$(find_kind)"
HELM="$(bash "$ROOT/hack/build-helm.sh")"
IMAGE="${SLOGATE_KIND_IMAGE:-slogate:kind}"
mkdir -p "$KIND_DIR"
KUBECONFIG_FILE="$KIND_DIR/kubeconfig"

config="$("$PYTHON" -m slogate.dev.kind config --dir "$KIND_DIR" --name "$KIND_CLUSTER" ${SLOGATE_KIND_NODE_IMAGE:+--node-image "$SLOGATE_KIND_NODE_IMAGE"})"
if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  log "reusing the kind cluster $KIND_CLUSTER"
else
  log "creating the kind cluster $KIND_CLUSTER ($config)"
  "$KIND" create cluster --name "$KIND_CLUSTER" --config "$config" --kubeconfig "$KUBECONFIG_FILE" --wait 120s
fi
"$KIND" get kubeconfig --name "$KIND_CLUSTER" > "$KUBECONFIG_FILE"
chmod 600 "$KUBECONFIG_FILE"
# The pinned kubectl the host side uses too (hack/build-bins.sh prints its directory last).
KUBECTL="$(bash "$ROOT/hack/build-bins.sh" | tail -n 1)/kubectl"
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# kind lifts the control-plane taint of a one-node cluster; put it back so that only pods that ask for
# it (the operator, kube-system) run on the real node, and every test pod lands on a fake kwok node.
k taint nodes -l node-role.kubernetes.io/control-plane node-role.kubernetes.io/control-plane:NoSchedule --overwrite >/dev/null

host_ip="$(docker network inspect kind | "$PYTHON" -m slogate.dev.kind gateway)"
log "kind network gateway (host side, where Prometheus listens): $host_ip"

log "building $IMAGE"
docker build -t "$IMAGE" "$ROOT"
log "loading $IMAGE into the cluster"
"$KIND" load docker-image "$IMAGE" --name "$KIND_CLUSTER"

"$PYTHON" -m slogate.dev.kind values --host-ip "$host_ip" --image "$IMAGE" > "$KIND_DIR/values.yaml"
log "installing the chart (values: $KIND_DIR/values.yaml)"
"$HELM" upgrade --install slogate "$ROOT/charts/slogate" --kubeconfig "$KUBECONFIG_FILE" \
  -n slogate-system --create-namespace -f "$KIND_DIR/values.yaml" --wait --timeout 180s
# A rebuilt image under the same tag needs new pods to be used.
k -n slogate-system rollout restart deployment/slogate >/dev/null
k -n slogate-system rollout status deployment/slogate --timeout=120s

"$PYTHON" -m slogate.dev.kind env --dir "$KIND_DIR" --host-ip "$host_ip" --name "$KIND_CLUSTER" > "$KIND_DIR/e2e.env"
log "ready: source $KIND_DIR/e2e.env selects this cluster for the tests"
