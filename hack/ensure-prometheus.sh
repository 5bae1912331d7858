#!/usr/bin/env bash
# Installs Prometheus (and promtool) from Debian's package when missing.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then exit 0; fi
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package may try to start a service; the local control plane runs its own instance.
$SUDO systemctl stop prometheus 2>/dev/null || true
command -v prometheus
