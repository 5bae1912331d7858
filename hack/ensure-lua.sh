#!/usr/bin/env bash
# Installs Lua 5.4 from Debian's package when missing. tests/unit/test_argocd_health.py runs the
# Argo CD health check (deploy/gitops/argocd-health.lua) with it, and fails without it.
set -euo pipefail
if command -v lua5.4 >/dev/null; then exit 0; fi
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends lua5.4 >/dev/null
command -v lua5.4
