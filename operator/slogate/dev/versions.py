"""Pinned tool versions (``hack/versions.env``) and where built artefacts are cached."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
VERSIONS_FILE = REPO / "hack" / "versions.env"


def versions() -> dict[str, str]:
    """KEY=VALUE pairs of hack/versions.env."""
    out: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/slogate``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slogate"


def ensure_binaries() -> Path:
    """Build (or reuse) the control-plane binaries and return their directory."""
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-bins.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def matrix_releases() -> list[str]:
    """The older Kubernetes releases of the version matrix (``K8S_MATRIX``), oldest first; the
    newest end of the matrix is ``K8S_VERSION`` (docs/compatibility.md)."""
    return versions().get("K8S_MATRIX", "").split()


def ensure_matrix_apiservers(*releases: str) -> dict[str, Path]:
    """Build (or reuse) kube-apiserver for each release (``K8S_MATRIX`` when none is given) with
    hack/build-matrix.sh; returns release -> the directory holding its ``kube-apiserver``."""
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-matrix.sh"), *releases],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    pairs = (line.split(maxsplit=1) for line in result.stdout.splitlines() if line.strip())
    return {release: Path(directory) for release, directory in pairs}


def go_module_dir(module: str, version: str) -> Path:
    """Download a Go module through the module proxy (cached by Go) and return its directory."""
    import json

    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=cache_dir_ready(),
    )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@{version} failed: {info.get('Error') or result.stderr}")
    return Path(info["Dir"])


def cache_dir_ready() -> Path:
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d
