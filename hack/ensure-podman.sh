#!/usr/bin/env bash
# Installs podman (with runc: crun refuses this host's cgroup v1 hierarchy) and debootstrap from
# Debian's packages when missing. hack/build-base-image.sh needs debootstrap, hack/build-image.sh and
# tests/integration/test_container.py need podman and runc (hack/containers.conf selects runc).
set -euo pipefail
if command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null; then
  exit 0
fi
SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The set installed and proven on our machines (recommends included: netavark, conmon, catatonit).
$SUDO apt-get install -y -qq podman runc debootstrap uidmap fuse-overlayfs slirp4netns >/dev/null
podman --version
