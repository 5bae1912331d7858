#!/usr/bin/env bash
# The Kubernetes half of `make lint`, offline: helm lint --strict, kubeconform and checkov over
#   chart-default/     helm template of charts/slogate with its default values (CRDs included)
#   chart-production/  the same with hack/lint/values-production.yaml (namespaced RBAC, ServiceMonitor,
#                      digest, required anti-affinity: the values docs/install.md recommends)
#   children/          the objects the operator builds for every example (hack/lint/gen_children.py)
# and kubeconform over every ModelDeployment in examples/ against our CRD. Every tool runs even when an
# earlier one failed; the script exits 1 if any did. checkov's findings are judged by
# hack/lint/checkov_gate.py against hack/lint/checkov-skips.yaml (every suppression with its reason).
# Tools: helm (hack/build-helm.sh), kubeconform (hack/build-kubeconform.sh), checkov
# (hack/lint/ensure-checkov.sh), schemas (hack/lint/gen_schemas.py): all cached under
# ${XDG_CACHE_HOME:-~/.cache}/slogate, built on the first run. PY: the project's venv python.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
CHART="$REPO/charts/slogate"
start=$(date +%s)
log() { echo "[lint-k8s] $*" >&2; }

helm="$(bash "$REPO/hack/build-helm.sh")"
kubeconform="$(bash "$REPO/hack/build-kubeconform.sh")"
checkov="$(bash "$HERE/ensure-checkov.sh")"
schemas="$("$PY" "$HERE/gen_schemas.py" --cache-root "$CACHE/kubeconform-schemas")"

work="$(mktemp -d "${TMPDIR:-/tmp}/slogate-lint.XXXXXX")"
trap 'rm -rf "$work"' EXIT
scan="$work/scan"
mkdir -p "$scan/chart-default" "$scan/chart-production" "$scan/children"
failed=()

# Render first (everything else reads these files); a render failure fails the lint at once.
"$helm" template slogate "$CHART" -n slogate-system --include-crds >"$scan/chart-default/chart.yaml"
"$helm" template slogate "$CHART" -n slogate-system --include-crds \
  -f "$HERE/values-production.yaml" >"$scan/chart-production/chart.yaml"
"$PY" "$HERE/gen_children.py" --examples "$REPO/examples" --out "$scan/children"

# checkov is the slow one (~10 s): it runs in the background while helm lint and kubeconform run.
# --soft-fail: its exit status then means "checkov itself failed"; the gate judges the findings.
BC_SKIP_MAPPING=TRUE "$checkov" -d "$scan" --framework kubernetes --skip-download --soft-fail \
  --quiet --compact -o json >"$work/checkov.json" 2>"$work/checkov.err" &
checkov_pid=$!

for variant in default production; do
  args=(lint --strict "$CHART")
  [[ $variant == production ]] && args+=(-f "$HERE/values-production.yaml")
  if out="$("$helm" "${args[@]}" 2>&1)" && grep -q "0 chart(s) failed" <<<"$out"; then
    echo "helm lint --strict ($variant values): $(grep -c '^\[' <<<"$out" || true) message(s), 0 failed"
    grep '^\[' <<<"$out" | sed 's/^/    /' || true
  else
    echo "$out"
    failed+=("helm lint ($variant)")
  fi
done

# Strict schemas (unknown fields are errors), and no -ignore-missing-schemas: a kind without a schema
# fails too.
location="$schemas/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
for target in chart-default chart-production children examples; do
  dir="$scan/$target"
  [[ $target == examples ]] && dir="$REPO/examples"
  if out="$("$kubeconform" -strict -summary -schema-location "$location" "$dir" 2>&1)"; then
    echo "kubeconform $target: ${out##*$'\n'}"
  else
    echo "$out"
    failed+=("kubeconform ($target)")
  fi
done

if ! wait "$checkov_pid"; then
  cat "$work/checkov.err" >&2
  failed+=("checkov (did not run)")
elif ! "$PY" "$HERE/checkov_gate.py" "$work/checkov.json" --skips "$HERE/checkov-skips.yaml"; then
  failed+=("checkov")
fi

if ((${#failed[@]})); then
  log "FAILED: ${failed[*]} ($(( $(date +%s) - start ))s)"
  exit 1
fi
log "helm lint, kubeconform and checkov clean ($(( $(date +%s) - start ))s)"
