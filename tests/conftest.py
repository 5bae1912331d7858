"""Fixtures shared by the unit and the integration tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def helm() -> str:
    """The pinned helm, built (or reused) by hack/build-helm.sh; a failed build fails the tests."""
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"hack/build-helm.sh failed ({result.returncode}):\n{result.stderr[-4000:]}")
    path = result.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), path
    return path
