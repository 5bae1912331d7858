"""Input drift against the local control plane, Prometheus and the simulators: a baseline is recorded
from the first revision's traffic, a shifted prompt-length mix from its clients (`slogate dev traffic set --prompt-tokens`: the
front door sends longer prompts, the simulators count them)
turns `InputDrift` True with a Warning Event and the metrics, shifting back clears it, and a promotion
replaces the baseline.

Short settings keep it quick: a 20 s window, a check every 2 s, 150 requests minimum (the front door
sends 10 requests/s to each ModelDeployment, so a whole window holds about 200). Fewer would make the test a coin
toss: with 50 requests a side the distance at one bucket boundary varies by about 0.1 from sampling
alone, against a threshold of 0.2 and a recovery at 0.15.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from kubernetes import client

from slogate.core.conditions import parse_rfc3339
from slogate.dev.cluster import LocalCluster
from slogate.dev.frontdoor import set_traffic
from tests.integration.conftest import wait_for
from tests.integration.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    describe,
    events_for,
    get_md,
    has_events,
    mdep,
    operator_for,
    ready,
)

DRIFT = {"inputDrift": {"window": "20s", "minRequests": 150, "threshold": 0.2}}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-drift.log")
    op.start()
    yield op
    op.stop()


def drift_condition(kube, namespace: str, name: str, status: str, timeout: float = 90) -> dict:
    def check():
        c = condition(get_md(kube, namespace, name), "InputDrift")
        return c if c and c["status"] == status else None

    return wait_for(
        check,
        timeout=timeout,
        what=f"InputDrift={status} on {namespace}/{name}",
        explain=lambda: describe(kube, namespace, name),
    )


def metric(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


def test_a_shifted_prompt_mix_is_reported_as_input_drift_and_clears(cluster, kube, namespace, operator):
    name = "mix"
    api = client.CustomObjectsApi(kube)
    doc = mdep(
        name,
        replicas=1,
        observability=DRIFT,
        rollout={"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}], "analysis": {"interval": "2s"}},
    )
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    stable = ready(kube, namespace, name)["status"]["stableRevision"]

    # 1. The first revision gets its baseline once it has served a whole window with minRequests in it.
    within = drift_condition(kube, namespace, name, "False")
    assert within["reason"] == "WithinBaseline"
    md = get_md(kube, namespace, name)
    baseline = md["status"]["inputBaseline"]
    assert baseline["revision"] == stable and baseline["window"] == "20s" and baseline["requests"] >= 150
    available = condition(md, "Available")
    assert available and available["status"] == "True"
    recorded, since = parse_rfc3339(baseline["recordedAt"]), parse_rfc3339(available["lastTransitionTime"])
    assert recorded and since and recorded - since >= timedelta(seconds=20)
    assert baseline["prompt"] and all(len(p) == 2 for p in baseline["prompt"])
    has_events(kube, namespace, name, "InputBaselineRecorded")
    labels = {"namespace": namespace, "modeldeployment": name}
    assert wait_for(
        lambda: metric(operator.metrics(), "slogate_input_drift", **labels) == 0.0,
        timeout=15,
        what="slogate_input_drift 0",
    )

    # 2. Shift the prompt-length mix: InputDrift True, a Warning, and the metrics say so.
    set_traffic(cluster.dir, namespace=namespace, name=name, change={"prompt_tokens": 2048})
    drifting = drift_condition(kube, namespace, name, "True")
    assert drifting["reason"] == "DriftDetected"
    assert "prompt length distance" in drifting["message"] and "threshold 0.2" in drifting["message"]
    has_events(kube, namespace, name, "InputDrift", warning=True)
    text = operator.metrics()
    assert metric(text, "slogate_input_drift", **labels) == 1.0, text
    assert (metric(text, "slogate_input_drift_distance", dimension="prompt", **labels) or 0) > 0.2, text
    assert metric(text, "slogate_input_drift_distance", dimension="generation", **labels) is not None
    # The live distance goes to the metric, not to status: the condition is not rewritten while it holds.
    first = condition(get_md(kube, namespace, name), "InputDrift")
    wait_for(
        lambda: (
            metric(operator.metrics(), "slogate_input_drift_distance", dimension="prompt", **labels)
            != metric(text, "slogate_input_drift_distance", dimension="prompt", **labels)
        ),
        timeout=20,
        what="a new distance measurement",
    )
    assert condition(get_md(kube, namespace, name), "InputDrift") == first

    # 3. Back to the recorded mix: InputDrift False again, with a Normal Event.
    set_traffic(cluster.dir, namespace=namespace, name=name, change={"prompt_tokens": 512})
    back = drift_condition(kube, namespace, name, "False", timeout=120)
    assert back["reason"] == "WithinBaseline"
    cleared = [e for e in events_for(kube, namespace, name) if e.reason == "InputDriftCleared"]
    assert cleared and cleared[0].type == "Normal"
    assert metric(operator.metrics(), "slogate_input_drift", **labels) == 0.0

    # 4. A promotion replaces the baseline with the new stable revision's.
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"spec": {"model": {"source": "hf://meta-llama/Llama-3.2-3B-Instruct"}}},
    )
    promoted = wait_for(
        lambda: (
            (st := get_md(kube, namespace, name)["status"]).get("stableRevision") != stable
            and (st.get("inputBaseline") or {}).get("revision") == st["stableRevision"]
            and st
        ),
        timeout=120,
        what="the promoted revision's baseline",
    )
    assert promoted["inputBaseline"]["recordedAt"] >= baseline["recordedAt"]

    # Gone: its drift series are removed.
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_for(
        lambda: metric(operator.metrics(), "slogate_input_drift", **labels) is None,
        timeout=30,
        what="the drift series to be removed",
    )
