"""Quality suites on the local cluster: ``slogate eval`` against a pod's simulator, which the bridge
runs, with the quality faults set the way an SRE or a test sets any fault (``slogate dev sim set``,
the bridge's admin path); then the operator's quality gates on real rollouts, and its production
probe. The operator reaches the pods through the bridge (``--quality-endpoints=bridge:DIR``), the
front door sends the clients' traffic, and its ledger says which revision answered each request."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from slogate.dev.cli import set_simulators
from slogate.dev.cluster import LocalCluster
from slogate.dev.frontdoor import read_ledger, set_traffic
from tests.integration.conftest import wait_for
from tests.integration.test_operator import describe, events_for, get_md, operator_for
from tests.integration.test_rollout import manifest, new_model, roll, start
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
    # 60 samples: with 30% broken, fewer than 7 broken answers (which a 0.95 gate could not fail)
    # has a probability below 0.1% (binomial, mean 18).
    ask = ("eval", str(SUITE), "--endpoint", url, "--model", "m", "--samples", "60", "-o", "json")

    healthy = slogate(*ask, "--min-pass-rate", "0.8")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout)["samples"] == {"passed": 60, "failed": 0, "errors": 0}

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
    assert 0 < report["samples"]["failed"] < 60 and report["samples"]["errors"] == 0


# ----------------------------------------------------------------------------- the gates


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-quality.log")
    op.start()
    yield op
    op.stop()


@pytest.fixture(autouse=True)
def busy_clients(cluster: LocalCluster, namespace: str) -> None:
    set_traffic(cluster.dir, namespace=namespace, change={"rps": 30.0})


def suite_configmap(kube, namespace: str) -> str:
    doc = yaml.safe_load(SUITE.read_text())
    doc["metadata"] = {"name": "extraction-suite", "namespace": namespace}
    client.CoreV1Api(kube).create_namespaced_config_map(namespace, doc)
    return "extraction-suite"


def gated(name: str, cm: str, *, samples: int = 40, min_pass_rate: float = 0.9, **quality) -> dict:
    """A canary with a pre-traffic gate on the extraction suite. 40 perfect samples pass 0.9 (95%
    interval from 91.2%); see docs/quality.md for the samples a threshold needs."""
    doc = manifest(name, steps=[{"setWeight": 50}, {"pause": {"duration": "3s"}}])
    doc["spec"]["rollout"]["analysis"] = {**doc["spec"]["rollout"]["analysis"], "inconclusiveLimit": 10}
    doc["spec"]["quality"] = {
        "suites": [{"name": "extraction", "configMap": cm, "samples": samples, "minPassRate": min_pass_rate}],
        **quality,
    }
    return doc


class Watch:
    """Polls the ModelDeployment's status every 0.1 s in the background: the highest canaryWeight
    status ever showed for a revision."""

    def __init__(self, kube, namespace: str, name: str) -> None:
        self.max_weight: dict[str, int] = {}
        self._stop = threading.Event()

        def poll() -> None:
            while not self._stop.is_set():
                st = get_md(kube, namespace, name).get("status") or {}
                rev = st.get("canaryRevision")
                if rev:
                    self.max_weight[rev] = max(self.max_weight.get(rev, 0), int(st.get("canaryWeight") or 0))
                time.sleep(0.1)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_candidate_returning_broken_json_is_stopped_before_any_traffic(cluster, kube, namespace, operator):
    """Perfect latency, 30% broken JSON: the pre-traffic gate fails it twice (failureLimit 2) and it
    is rolled back while its weight is still 0 and no client request ever reached it."""
    cm = suite_configmap(kube, namespace)
    # 60 samples against 0.95: a run fails unless fewer than 7 of 60 answers break (p < 0.1%).
    doc = gated("extract", cm, samples=60, min_pass_rate=0.95)
    start(kube, namespace, doc)
    _, bad = new_model(doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    set_simulators(
        cluster.dir,
        namespace=namespace,
        selector=f"slogate.io/revision={bad}",
        change={"broken_json_rate": 0.3},
    )
    watch = Watch(kube, namespace, "extract")
    try:
        assert roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct") == bad
        md = wait_for(
            lambda: (
                (m := get_md(kube, namespace, "extract"))["status"].get("rollout", {}).get("outcome")
                == "RolledBack"
                and m
            ),
            timeout=180,
            what="the quality gate's rollback",
            explain=lambda: describe(kube, namespace, "extract"),
        )
    finally:
        watch.stop()
    st = md["status"]
    assert st["history"][-1]["revision"] == bad and "quality gate preTraffic" in st["history"][-1]["reason"]
    run = st["qualityGate"]["lastRun"]
    suite = run["suites"][0]
    assert run["verdict"] == "Fail" and suite["verdict"] == "Fail", run
    assert suite["failingCases"] and any("JSON" in " ".join(c["failed"]) for c in suite["failingCases"])
    assert st["qualityGate"]["failures"] == 2
    assert watch.max_weight.get(bad, 0) == 0, watch.max_weight
    ledger = read_ledger(cluster.dir)[f"{namespace}/extract"]
    assert ledger["answered"].get(bad, 0) == 0 and ledger["mirrored"].get(bad, 0) == 0, ledger
    reasons = [e.reason for e in events_for(kube, namespace, "extract")]
    assert "QualityFailed" in reasons and "RolledBack" in reasons and "WeightSet" not in reasons


def test_a_candidate_as_good_as_stable_passes_its_gates_and_is_promoted(cluster, kube, namespace, operator):
    cm = suite_configmap(kube, namespace)
    doc = gated("fine", cm, gates={"preTraffic": True, "atSteps": [1]})
    doc["spec"]["quality"]["suites"][0]["maxRegression"] = 0.1
    start(kube, namespace, doc)
    new = roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "fine"))["status"].get("stableRevision") == new and m,
        timeout=240,
        what="promotion",
        explain=lambda: describe(kube, namespace, "fine"),
    )
    assert md["status"]["history"][-1]["outcome"] == "Promoted"
    events = events_for(kube, namespace, "fine")
    passed = [e for e in events if e.reason == "QualityPassed"]
    assert {e.message.split(": ")[0] for e in passed} >= {
        f"revision {new} passed quality gate preTraffic",
        f"revision {new} passed quality gate step 1",
    }, [e.message for e in passed]
    # The list API does not return Events in order: compare when they were first posted.
    pre = next(e for e in passed if "preTraffic" in e.message)
    weight = min(e.first_timestamp or e.event_time for e in events if e.reason == "WeightSet")
    assert (pre.first_timestamp or pre.event_time) <= weight
    gate = md["status"].get("qualityGate")
    assert gate is None  # the rollout is over: the candidate's gate state went with it


def test_an_unreachable_candidate_is_inconclusive_and_pauses(cluster, kube, namespace, operator):
    """The candidate answers nothing in time (5 s to its first token, 1 s timeout): every sample is an
    error, each run Inconclusive, and after inconclusiveLimit runs the rollout pauses for a person."""
    cm = suite_configmap(kube, namespace)
    doc = gated("slow", cm, timeout="1s")
    doc["spec"]["quality"]["suites"][0]["samples"] = 2
    doc["spec"]["rollout"]["analysis"]["inconclusiveLimit"] = 2
    start(kube, namespace, doc)
    _, slow = new_model(doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    set_simulators(
        cluster.dir, namespace=namespace, selector=f"slogate.io/revision={slow}", change={"ttft_ms": 5000.0}
    )
    roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "slow"))["status"].get("phase") == "Paused" and m,
        timeout=180,
        what="the pause",
        explain=lambda: describe(kube, namespace, "slow"),
    )
    st = md["status"]
    assert "quality gate preTraffic inconclusive 2 times" in st["rollout"]["pausedReason"]
    assert "unreachable or too slow" in st["qualityGate"]["lastRun"]["suites"][0]["message"]
    assert int(st.get("canaryWeight") or 0) == 0 and st["qualityGate"]["consecutiveInconclusive"] == 2
    assert "QualityInconclusive" in [e.reason for e in events_for(kube, namespace, "slow")]


def test_the_production_probe_sets_quality_degraded_and_falls_back(cluster, kube, namespace, operator):
    cm = suite_configmap(kube, namespace)
    small = manifest("small-q", model="hf://meta-llama/Llama-3.2-1B-Instruct")
    small["spec"]["replicas"] = 1
    start(kube, namespace, small)
    primary = gated("probed", cm, probe={"interval": "10s"})
    primary["spec"]["replicas"] = 1
    primary["spec"]["fallback"] = {
        "targets": [{"modelDeployment": "small-q"}],
        "after": "1s",
        "restoreAfter": "5s",
    }
    stable = start(kube, namespace, primary)
    wait_for(
        lambda: (
            (
                (get_md(kube, namespace, "probed")["status"].get("qualityProbe") or {}).get("lastRun") or {}
            ).get("verdict")
            == "Pass"
        ),
        timeout=60,
        what="a passing probe",
    )
    set_simulators(
        cluster.dir,
        namespace=namespace,
        selector=f"slogate.io/revision={stable}",
        change={"broken_json_rate": 0.5},
    )
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "probed"))["status"].get("phase") == "Fallback" and m,
        timeout=120,
        what="fallback on the probe",
        explain=lambda: describe(kube, namespace, "probed"),
    )
    st = md["status"]
    degraded = next(c for c in st["conditions"] if c["type"] == "QualityDegraded")
    assert degraded["status"] == "True" and degraded["reason"] == "QualityFailing", degraded
    assert "extraction" in degraded["message"]
    assert "fails its quality probe" in st["fallback"]["reason"]
    reasons = [e.reason for e in events_for(kube, namespace, "probed")]
    assert "QualityDegraded" in reasons and "FallbackActivated" in reasons
    metrics = operator.metrics()
    assert (
        f'slogate_quality_pass_ratio{{kind="probe",modeldeployment="probed",namespace="{namespace}",revision="{stable}",suite="extraction"}}'
        in metrics
    )

    set_simulators(
        cluster.dir,
        namespace=namespace,
        selector=f"slogate.io/revision={stable}",
        change={"broken_json_rate": 0.0},
    )
    wait_for(
        lambda: not get_md(kube, namespace, "probed")["status"]["fallback"]["active"],
        timeout=120,
        what="the restore once the probe passes",
    )
    assert "QualityRestored" in [e.reason for e in events_for(kube, namespace, "probed")]
