#!/usr/bin/env bash
# Fetches the engines' released Python source from PyPI (the wheels; only their .py files are kept)
# into ~/.cache/slogate/engines, for the provenance tests that check cited file:line facts against
# it (tests/unit/conftest.py: engine_source). Prints the directories as shell assignments.
# TGI's launcher and router are Rust and on no registry: set SLOGATE_TGI_GIT to a git directory
# holding tag v3.3.7 to check those too.
set -euo pipefail
CACHE="${SLOGATE_CACHE:-$HOME/.cache/slogate}/engines"
PY="${PY:-python3}"
fetch() {  # name version top-level-package
  local dir="$CACHE/$1-$2"
  if [[ ! -f "$dir/.complete" ]]; then
    rm -rf "$dir" "$CACHE/dl-$1"
    mkdir -p "$dir" "$CACHE/dl-$1"
    "$PY" -m pip download -q --no-deps --only-binary :all: -d "$CACHE/dl-$1" "$1==$2" >&2
    "$PY" -m zipfile -e "$CACHE"/dl-"$1"/*.whl "$CACHE/dl-$1/x" >&2
    (cd "$CACHE/dl-$1/x" && find "$3" -name '*.py' -print0 | xargs -0 cp --parents -t "$dir")
    rm -rf "$CACHE/dl-$1"
    touch "$dir/.complete"
  fi
  echo "$dir"
}
echo "SLOGATE_VLLM_SRC=$(fetch vllm 0.33.0 vllm)"
echo "SLOGATE_SGLANG_SRC=$(fetch sglang 0.5.23 sglang)"
