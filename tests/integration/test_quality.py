"""Quality suites on the local cluster: ``slogate eval`` against a pod's simulator, which the bridge
runs, with the quality faults set the way an SRE or a test sets any fault (``slogate dev sim set``,
the bridge's admin path). The rollout gates and the production probe (issue 19, later parts) are not
built yet; docs/quality.md says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from slogate.dev.cluster import LocalCluster
from tests.integration.conftest import wait_for
from tests.integration.test_traffic import simulate

SUITE = Path(__file__).resolve().parents[2] / "examples" / "quality" / "extraction.yaml"


def sim_of(cluster: LocalCluster, namespace: str, app: str) -> dict:
    sims = json.loads((cluster.dir / "sims.json").read_text())
    found = [s for s in sims.values() if s["namespace"] == namespace and s["labels"].get("app") == app]
    return found[0] if found else {}


def slogate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slogate", *args], capture_output=True, text=True, timeout=180
    )


def test_slogate_eval_judges_a_pod_s_simulator_and_its_injected_faults(cluster, kube, namespace):
    simulate(kube, namespace, "qa")
    sim = wait_for(lambda: sim_of(cluster, namespace, "qa"), timeout=60, what="the pod's simulator")
    url = f"http://127.0.0.1:{sim['port']}"
    ask = ("eval", str(SUITE), "--endpoint", url, "--model", "m", "--samples", "20", "-o", "json")

    healthy = slogate(*ask, "--min-pass-rate", "0.8")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout)["samples"] == {"passed": 20, "failed": 0, "errors": 0}

    # 30% broken JSON, set through the CLI an SRE uses for every fault.
    set_fault = slogate(
        "dev",
        "sim",
        "set",
        "-n",
        namespace,
        "-l",
        "app=qa",
        "--broken-json-rate",
        "0.3",
        "--dir",
        str(cluster.dir),
    )
    assert set_fault.returncode == 0, set_fault.stderr
    broken = slogate(*ask, "--min-pass-rate", "0.95")
    report = json.loads(broken.stdout)
    assert broken.returncode == 1 and report["verdict"] == "Fail", report
    assert 0 < report["samples"]["failed"] < 20 and report["samples"]["errors"] == 0
