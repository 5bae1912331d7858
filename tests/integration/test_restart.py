"""An operator killed right after each kind of write of a rollout resumes from status alone (issue 14).

The test watches the ModelDeployment and its Deployments and, each time it sees the effect of a new
write — the candidate's Deployment created or scaled, a step or weight recorded in status, the
stable track scaled in the handover, the old revision deleted — kills the operator with SIGKILL
and starts a new one. Every rollout must still reach the outcome an uninterrupted one reaches, each
decision taken once: no WeightSet Event twice, one promotion, one Deployment left. (An Event is
best effort: a kill between a status write and the Event that follows it loses that Event; the
status history is the record.)
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from slogate.dev.cluster import LocalCluster
from slogate.dev.frontdoor import set_traffic
from tests.integration.test_operator import GROUP, PLURAL, VERSION, describe, events_for, get_md, operator_for
from tests.integration.test_rollout import history, manifest, new_model, start


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-restart.log")
    op.start()
    yield op
    op.stop()


def snapshot(kube, namespace: str, name: str) -> tuple:
    st = get_md(kube, namespace, name).get("status") or {}
    deps = client.AppsV1Api(kube).list_namespaced_deployment(
        namespace, label_selector=f"slogate.io/deployment={name}"
    )
    sizes = tuple(sorted((d.metadata.name, d.spec.replicas) for d in deps.items))
    rollout = st.get("rollout") or {}
    return (
        st.get("stableRevision"),
        st.get("canaryRevision"),
        st.get("currentStep"),
        st.get("canaryWeight"),
        bool(rollout.get("promoting")),
        sizes,
    )


def test_an_operator_killed_after_every_kind_of_write_reaches_the_same_outcome(
    cluster, kube, namespace, operator
):
    doc = manifest(
        "restarts",
        steps=[{"setWeight": 25}, {"pause": {"duration": "2s"}}, {"setWeight": 50}],
        gpuBudget={"maxSurgeGPUs": 1},  # a handover in steps: stable is scaled during the promotion
    )
    doc["spec"]["replicas"] = 3
    # A canary of 1 pod in 4 gets a quarter of the clients' requests: 30 a second keeps each 10 s
    # window well above minRequests 20, so the analysis passes instead of going Inconclusive.
    set_traffic(cluster.dir, namespace=namespace, change={"rps": 30.0})
    start(kube, namespace, doc)
    patch, new = new_model(doc, "hf://google/gemma-2-9b-it")
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "restarts", patch
    )
    last = snapshot(kube, namespace, "restarts")
    old_stable = f"restarts-{last[0]}"
    kills: list[tuple] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        now = snapshot(kube, namespace, "restarts")
        if now[0] == new and now[1] is None and len(now[5]) == 1:
            break
        if now != last:
            operator.kill()  # right after the write whose effect we just saw
            kills.append(now)
            last = now
            time.sleep(0.5)
            operator.start()
        time.sleep(0.05)  # a handover step can take well under a second on kwok
    else:
        raise AssertionError(
            f"the rollout did not finish; kills at {kills}:\n{describe(kube, namespace, 'restarts')}"
        )
    # How many writes the 0.05 s poll sees apart depends on the machine (one CI run saw only 4),
    # so what is asserted is that kills landed in both halves of the rollout: while a
    # canary step held traffic, and during the handover, when stable is scaled down step by step.
    in_steps = [k for k in kills if k[3] and not k[4] and dict(k[5]).get(old_stable) == 3]
    in_handover = [k for k in kills if k[4] or dict(k[5]).get(old_stable, 3) < 3]
    assert in_steps and in_handover, kills
    assert len(kills) >= 3, kills
    # Each decision is taken once: no WeightSet Event twice. An Event is posted after the status
    # that records its decision, so a kill in between loses that Event (a CI run lost "0 → 25"):
    # Events are best effort; status is the record, and it must show every step.
    weights = [e.message for e in events_for(kube, namespace, "restarts") if e.reason == "WeightSet"]
    assert len(weights) == len(set(weights)) and set(weights) <= {
        f"revision {new}: weight 0 → 25 (step 1/3)",
        f"revision {new}: weight 25 → 50 (step 3/3)",
    }, weights
    # The steps' weights, never another: a restart neither skips nor invents a step (during the
    # promotion itself the candidate holds weight 100, so those snapshots are left out).
    stepped = {k[3] for k in kills if k[1] == new and k[3] and not k[4]}
    assert stepped and stepped <= {25, 50}, kills
    outcomes = [h["outcome"] for h in history(kube, namespace, "restarts")]
    assert outcomes.count("Promoted") == 1, outcomes
    # Never told twice; told at most once, since a kill between the status write that records the
    # promotion and its Event loses the Event (seen in CI; history above is the record).
    assert [e.reason for e in events_for(kube, namespace, "restarts")].count("Promoted") <= 1
    assert snapshot(kube, namespace, "restarts")[5] == ((f"restarts-{new}", 3),)
