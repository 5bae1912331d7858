"""The ``inferencePool`` router on the local cluster: the real API server serves GIE v1.6.2's
InferencePool CRD (from its Go module, ``hack/versions.env``), the operator applies one pool per
track and an HTTPRoute weighting them, and the front door delivers each client request by those
weights to a Ready pod the pool's selector selects (``slogate.dev.router``). A rollout is promoted
and rolled back exactly as with the Service backends; bad input is refused by the API server's own
CEL rules with the message that names the field and the fix.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from slogate.constants import GROUP, PLURAL, VERSION
from slogate.dev.cluster import LocalCluster
from slogate.dev.frontdoor import read_ledger
from tests.integration.conftest import wait_for
from tests.integration.test_operator import describe, get_md, operator_for
from tests.integration.test_rollout import FAST_ANALYSIS, manifest, new_model, roll, sim_set, start
from tests.integration.test_traffic import listening

POOLS = {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "inference-gateway"}]}}
GIE = ("inference.networking.k8s.io", "v1")
# Runs before the candidate's simulators answer are Inconclusive (too few requests); a CI run saw
# three of them in a row on a loaded machine and paused. More room, the same verdicts.
PATIENT = {**FAST_ANALYSIS, "inconclusiveLimit": 10}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-inference-pool.log")
    op.start()
    yield op
    op.stop()


@pytest.fixture(autouse=True)
def busy_clients(cluster: LocalCluster, namespace: str) -> None:
    """30 requests a second, as in test_rollout: a half-weight canary holds minRequests per run."""
    from slogate.dev.frontdoor import set_traffic

    set_traffic(cluster.dir, namespace=namespace, change={"rps": 30.0})


def pools(kube, namespace: str) -> dict[str, dict]:
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(*GIE, namespace, "inferencepools")
    return {p["metadata"]["name"]: p for p in items["items"]}


def backends(kube, namespace: str, name: str) -> dict[str, int]:
    route = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
    )
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert all(r["kind"] == "InferencePool" and r["group"] == GIE[0] for r in refs), refs
    return {r["name"]: r.get("weight", 1) for r in refs}


def answered(cluster: LocalCluster, key: str) -> dict[str, int]:
    return dict((read_ledger(cluster.dir).get(key) or {}).get("answered") or {})


def test_a_rollout_through_two_inference_pools_is_promoted(cluster, kube, namespace, operator):
    doc = manifest("pooled", traffic=POOLS, analysis=PATIENT)
    doc["spec"]["model"]["servedName"] = "llama-chat"
    stable = start(kube, namespace, doc)
    live = pools(kube, namespace)
    assert set(live) == {"pooled-stable"}
    assert live["pooled-stable"]["spec"]["selector"]["matchLabels"] == {
        "slogate.io/deployment": "pooled",
        "slogate.io/revision": stable,
    }
    assert live["pooled-stable"]["spec"]["targetPorts"] == [{"number": 8000}]
    pod = client.CoreV1Api(kube).list_namespaced_pod(
        namespace, label_selector=f"slogate.io/revision={stable}"
    )
    assert pod.items[0].metadata.labels["llm-d.ai/model"] == "llama-chat"
    key = f"{namespace}/pooled"
    wait_for(
        lambda: answered(cluster, key).get(stable, 0) >= 10, timeout=30, what="clients served by the pool"
    )

    roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    # The candidate's revision as the operator names it (servedName is part of the spec it hashes).
    new = wait_for(
        lambda: get_md(kube, namespace, "pooled")["status"].get("canaryRevision"),
        timeout=30,
        what="the rollout to start",
    )
    wait_for(
        lambda: backends(kube, namespace, "pooled") == {"pooled-stable": 50, "pooled-canary": 50},
        timeout=60,
        what="the route at 50/50 across the two pools",
        explain=lambda: describe(kube, namespace, "pooled"),
    )
    canary_pool = pools(kube, namespace)["pooled-canary"]
    assert canary_pool["spec"]["selector"]["matchLabels"]["slogate.io/revision"] == new
    # The candidate's pool answers clients: the front door follows the pool weights to its pods.
    wait_for(lambda: answered(cluster, key).get(new, 0) >= 10, timeout=30, what="the canary pool serving")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "pooled"))["status"].get("stableRevision") == new and m,
        timeout=120,
        what="promotion",
        explain=lambda: describe(kube, namespace, "pooled"),
    )
    assert md["status"]["history"][-1]["outcome"] == "Promoted"
    wait_for(
        lambda: (
            set(pools(kube, namespace)) == {"pooled-stable"}
            and pools(kube, namespace)["pooled-stable"]["spec"]["selector"]["matchLabels"][
                "slogate.io/revision"
            ]
            == new
            and backends(kube, namespace, "pooled") == {"pooled-stable": 100}
        ),
        timeout=30,
        what="the stable pool on the promoted revision, the canary pool gone",
    )


def test_a_breaching_canary_behind_a_pool_is_rolled_back(cluster, kube, namespace, operator):
    doc = manifest("pooled-bad", traffic=POOLS, analysis=PATIENT)
    stable = start(kube, namespace, doc)
    wait_for(lambda: listening(cluster, stable) >= 2, timeout=30, what="stable's simulators")
    _, rev = new_model(doc, "hf://meta-llama/Llama-3.2-1B-Instruct")
    sim_set(cluster, namespace, f"slogate.io/revision={rev}", "--error-rate", "0.5")
    roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-1B-Instruct")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "pooled-bad"))["status"].get("phase") == "RolledBack" and m,
        timeout=120,
        what="the rollback",
        explain=lambda: describe(kube, namespace, "pooled-bad"),
    )
    assert md["status"]["stableRevision"] == stable and rev in md["status"]["rejectedRevisions"]
    failed = [r["name"] for r in md["status"]["lastAnalysis"]["results"] if r["verdict"] == "Fail"]
    assert failed == ["errorRate"]
    # The errors were measured on requests the pool delivered: the ledger saw the candidate answer.
    assert answered(cluster, f"{namespace}/pooled-bad").get(rev, 0) > 0
    wait_for(
        lambda: (
            backends(kube, namespace, "pooled-bad") == {"pooled-bad-stable": 100}
            and set(pools(kube, namespace)) >= {"pooled-bad-stable"}
            and "pooled-bad-canary" not in pools(kube, namespace)
        ),
        timeout=60,
        what="traffic back on the stable pool only",
    )


def test_a_gateway_that_rejects_a_pool_is_reported_and_cleared(cluster, kube, namespace, operator):
    """A gateway writes a pool's status.parents (here the test plays the gateway, through the status
    subresource of the real API server): Accepted=False reaches Degraded with the gateway's words,
    and Accepted=True clears it."""
    doc = manifest("rejected", traffic=POOLS)
    start(kube, namespace, doc)
    custom = client.CustomObjectsApi(kube)

    def parent(status: str, reason: str, message: str) -> dict:
        return {
            "status": {
                "parents": [
                    {
                        "parentRef": {"name": "inference-gateway", "kind": "Gateway"},
                        "controllerName": "example.com/gateway-controller",
                        "conditions": [
                            {
                                "type": "Accepted",
                                "status": status,
                                "reason": reason,
                                "message": message,
                                "observedGeneration": 1,
                                "lastTransitionTime": "2026-12-04T12:00:00Z",
                            }
                        ],
                    }
                ]
            }
        }

    custom.patch_namespaced_custom_object_status(
        *GIE,
        namespace,
        "inferencepools",
        "rejected-stable",
        parent("False", "EndpointPickerRefMissing", "this gateway needs an endpoint picker"),
    )
    md = wait_for(
        lambda: (
            (m := get_md(kube, namespace, "rejected"))
            and any(
                c["type"] == "Degraded" and c["reason"] == "GatewayRejected"
                for c in m["status"]["conditions"]
            )
            and m
        ),
        timeout=30,
        what="Degraded GatewayRejected",
        explain=lambda: describe(kube, namespace, "rejected"),
    )
    degraded = next(c for c in md["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["message"] == (
        f"InferencePool rejected-stable on Gateway {namespace}/inference-gateway: Accepted=False"
        " (EndpointPickerRefMissing): this gateway needs an endpoint picker"
    )
    assert md["status"]["phase"] == "Degraded"
    custom.patch_namespaced_custom_object_status(
        *GIE, namespace, "inferencepools", "rejected-stable", parent("True", "Accepted", "")
    )
    wait_for(
        lambda: get_md(kube, namespace, "rejected")["status"]["phase"] == "Ready",
        timeout=30,
        what="Ready again once the gateway accepts the pool",
    )


@pytest.mark.parametrize(
    ("rollout", "fallback", "field", "words"),
    [
        (
            {"traffic": {"router": "inferencePool"}},
            None,
            "spec.rollout.traffic.inferencePool",
            "needs inferencePool.parentRefs",
        ),
        (
            {
                "traffic": {
                    "router": "inferencePool",
                    "inferencePool": {"parentRefs": [{"name": "x", "kind": "Service"}]},
                }
            },
            None,
            "spec.rollout.traffic.inferencePool.parentRefs",
            "must be Gateways",
        ),
        (
            {"strategy": "shadow", "traffic": POOLS},
            None,
            "spec.rollout.strategy",
            "no conformant Inference Gateway",
        ),
        (
            {"traffic": POOLS},
            {"targets": [{"service": {"name": "openai"}}]},
            "spec.fallback.targets",
            "make the tier a modelDeployment",
        ),
    ],
    ids=["no-gateway-parent", "parent-not-a-gateway", "shadow", "service-fallback"],
)
def test_bad_input_is_refused_by_the_api_server(kube, namespace, rollout, fallback, field, words):
    doc = manifest("refused")
    doc["spec"]["rollout"] = rollout
    if fallback:
        doc["spec"]["fallback"] = fallback
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    assert err.value.status == 422
    assert field in err.value.body and words in err.value.body, err.value.body
