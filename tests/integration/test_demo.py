"""`make demo` tells its whole story and leaves nothing running (the README's first command)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


@pytest.mark.local_only(reason="the demo starts its own local control plane (make demo)")
def test_the_demo_tells_the_story_and_cleans_up(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "slogate.dev.demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "1/3" in out and "2/3" in out and "3/3" in out
    assert "the operator rolled it back on its own" in out
    assert "Degraded (RolledBack): ttft p95" in out
    assert "promoted." in out and "stopped everything." in out
    # The story runs on client traffic through the Service: the rate, and the answers split by revision.
    assert "traffic: 10 req/s offered to Service default/llama-chat" in out, out[-3000:]
    shares = re.findall(r"answered by revision: (\S+) \d+% \(\d+\), (\S+) \d+% \(\d+\)", out)
    assert shares, out[-3000:]  # a canary chapter: two revisions answered
    state = json.loads((tmp_path / "demo" / "state.json").read_text())
    assert state["processes"] == {}
