"""Unit-test collection: provenance tests that need an engine's released source on disk.

Tests marked ``engine_source`` (optionally ``engine_source(kind="vllm")``; else their ``kind``
parameter names the engine) read the engine's own code to check a cited file:line. Where that
code is not on this machine they are *deselected* — not skipped, so nothing counts them as passed —
and the terminal summary lists how many and how to run them (``make engine-sources`` fetches the
vLLM and SGLang wheels from PyPI; TGI's launcher is not on any registry, so it needs
``SLOGATE_TGI_GIT``).
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

_CACHE = Path(os.environ.get("SLOGATE_CACHE", Path.home() / ".cache" / "slogate")) / "engines"
VLLM_SRC = Path(os.environ.get("SLOGATE_VLLM_SRC", _CACHE / "vllm-0.33.0"))
"""The vLLM 0.33.0 wheel's Python files (hack/fetch-engine-sources.sh puts them here)."""
SGLANG_SRC = Path(os.environ.get("SLOGATE_SGLANG_SRC", _CACHE / "sglang-0.5.23"))
"""The SGLang 0.5.23 wheel's Python files (hack/fetch-engine-sources.sh puts them here)."""
TGI_GIT = Path(os.environ.get("SLOGATE_TGI_GIT", "/work/.mirror/huggingface+text-generation-inference/repo"))
_deselected: list[str] = []


@cache
def source_present(kind: str) -> bool:
    """Whether the engine's source is on disk (asked once per engine, not per test)."""
    if kind == "vllm":
        return (VLLM_SRC / "vllm" / "engine" / "arg_utils.py").is_file()
    if kind == "sglang":
        return (SGLANG_SRC / "sglang" / "srt" / "server_args.py").is_file()
    if kind == "tgi":
        return TGI_GIT.exists() and (
            subprocess.run(["git", "-C", str(TGI_GIT), "rev-parse", "v3.3.7"], capture_output=True).returncode
            == 0
        )
    return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engine_source(kind): reads an engine's released source; deselected (and listed) where it is absent",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("engine_source")
        if mark is not None:
            kind = mark.kwargs.get("kind") or (
                getattr(item, "callspec", None) and item.callspec.params.get("kind")
            )
            if not source_present(str(kind)):
                drop.append(item)
                _deselected.append(f"{item.nodeid} ({kind} source not on disk)")
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter) -> None:
    if _deselected:
        terminalreporter.section(
            f"{len(_deselected)} engine-source provenance tests deselected (make engine-sources runs them)"
        )
        for line in _deselected[:5]:
            terminalreporter.write_line(line)
