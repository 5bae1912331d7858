"""The operator image's build stage without Docker: the files it copies, minus the ones it removes.

Both lists are read from the Dockerfile itself (the build stage's ``COPY`` sources and its
``rm -rf`` paths), so a test that installs :func:`build_context` installs what the image installs.
Used by tests/unit/test_dockerfile.py (offline: the install, its imports, the CLI without the
development tools) and tests/integration/test_image.py (the real install from the package index,
its entrypoint run against the API server).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
# What .dockerignore keeps out of the build context below the copied directories.
IGNORED = ("__pycache__", "*.egg-info")


def build_stage() -> list[str]:
    """The build stage's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    start = next(i for i, line in enumerate(lines) if re.match(r"FROM \S+ AS build$", line))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("FROM ")), len(lines))
    return lines[start + 1 : end]


def copied() -> list[str]:
    """The build stage's ``COPY`` sources, relative to the repository (the build context)."""
    sources: list[str] = []
    for line in build_stage():
        if line.startswith("COPY ") and "--from" not in line:
            sources += line.split()[1:-1]
    return sources


def removed() -> list[str]:
    """The paths the build stage removes before ``pip install .``."""
    paths: list[str] = []
    for line in build_stage():
        for command in line.removeprefix("RUN ").split("&&"):
            words = command.split()
            if words[:2] == ["rm", "-rf"]:
                paths += words[2:]
    return paths


def build_context(dest: Path) -> Path:
    """Lay out in ``dest`` what the build stage's ``pip install .`` sees; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in copied():
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, dest / source, ignore=shutil.ignore_patterns(*IGNORED))
        else:
            shutil.copy2(path, dest / source)
    for path in removed():
        shutil.rmtree(dest / path)
    return dest
