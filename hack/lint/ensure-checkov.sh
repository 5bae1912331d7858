#!/usr/bin/env bash
# Installs checkov ($CHECKOV_VERSION from hack/versions.env) from PyPI into a venv of its own (its ~95
# dependencies would clash with the project's), every package pinned by hack/lint/checkov-constraints.txt
# and from wheels only (nothing compiled). Cached under
# ${XDG_CACHE_HOME:-~/.cache}/slogate/venv/checkov-<version>-<hash of the constraints>/; a warm run does
# nothing. Prints the path of the checkov executable on stdout (logs go to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../versions.env
source "$HERE/../versions.env"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/slogate"
constraints="$HERE/checkov-constraints.txt"
key="$(sha256sum "$constraints" | cut -c1-12)"
VENV="${SLOGATE_CHECKOV_VENV:-$CACHE/venv/checkov-$CHECKOV_VERSION-$key}"
# The marker is written last: a venv without it is a broken install and is made anew.
if [[ -f "$VENV/.complete" ]]; then echo "$VENV/bin/checkov"; exit 0; fi
log() { echo "[ensure-checkov] $*" >&2; }
start=$(date +%s)
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
log "installing checkov $CHECKOV_VERSION into $VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: \
  -c "$constraints" "checkov==$CHECKOV_VERSION" >&2
"$VENV/bin/checkov" --version >/dev/null
touch "$VENV/.complete"
log "installed checkov $CHECKOV_VERSION in $(( $(date +%s) - start ))s"
echo "$VENV/bin/checkov"
