"""``rollout.gpuBudget.maxSurgeGPUs`` holds through promotion (issue 14), on the local cluster.

A 3-replica, 1-GPU-per-replica ModelDeployment with ``maxSurgeGPUs: 1`` may hold 4 GPUs at most
at any instant of a rollout. Before the budget was applied at promotion, the candidate went to
full size beside the whole stable track: 6 GPUs. The test samples the GPU requests of the live pods
and the Deployments' replica counts throughout the rollout.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from slogate.dev.cluster import LocalCluster
from tests.integration.test_operator import GROUP, PLURAL, VERSION, describe, get_md, operator_for, ready


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-gpu-budget.log")
    op.start()
    yield op
    op.stop()


def test_a_promotion_never_holds_more_gpus_than_stable_plus_the_budget(cluster, kube, namespace, operator):
    name = "budget"
    doc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "resources": {"gpu": {"count": 1}},
            "replicas": 3,
            "rollout": {"steps": [{"setWeight": 25}], "gpuBudget": {"maxSurgeGPUs": 1}},
        },
    }
    api = client.CustomObjectsApi(kube)
    core = client.CoreV1Api(kube)
    apps = client.AppsV1Api(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    stable = ready(kube, namespace, name)["status"]["stableRevision"]
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"spec": {"model": {"source": "hf://Qwen/Qwen2.5-7B-Instruct"}}},
    )
    selector = f"slogate.io/deployment={name}"
    peak_pods = peak_replicas = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        live = [
            p
            for p in pods
            if p.metadata.deletion_timestamp is None and p.status.phase not in ("Succeeded", "Failed")
        ]
        gpus = sum(
            int((c.resources.requests or {}).get("nvidia.com/gpu", 0))
            for p in live
            for c in p.spec.containers
        )
        replicas = sum(
            d.spec.replicas or 0
            for d in apps.list_namespaced_deployment(namespace, label_selector=selector).items
        )
        peak_pods, peak_replicas = max(peak_pods, gpus), max(peak_replicas, replicas)
        st = get_md(kube, namespace, name).get("status") or {}
        if st.get("stableRevision") not in (None, stable) and not st.get("canaryRevision"):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"the promotion did not finish:\n{describe(kube, namespace, name)}")
    assert peak_replicas <= 4, f"Deployments asked for {peak_replicas} replicas of 1 GPU; the budget allows 4"
    assert peak_pods <= 4, f"live pods requested {peak_pods} GPUs; the budget allows 4"
    md = ready(kube, namespace, name)
    assert md["status"]["history"][-1]["outcome"] == "Promoted"
    assert md["status"]["ready"] == "3/3"
