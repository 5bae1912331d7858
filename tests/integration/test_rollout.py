"""SLO-gated rollouts against the local control plane, Prometheus and the simulators.

Faults are injected into the candidate's simulators before its pods exist: the candidate's revision
is computed with the same pure function the operator uses, and `slogate dev sim set -l` records the
setting for pods that start later.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from kubernetes import client

from slogate.adapters.prometheus import PrometheusSource
from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.core.analysis import requests_query
from slogate.core.naming import revision_of
from slogate.dev.cli import set_simulators
from slogate.dev.cluster import LocalCluster
from tests.integration.conftest import wait_for
from tests.integration.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    describe,
    events_for,
    get_md,
    has_events,
    operator_for,
    ready,
)

FAST_ANALYSIS = {"interval": "3s", "initialDelay": "4s", "failureLimit": 2, "inconclusiveLimit": 3}
SLO = {
    "window": "10s",
    "minRequests": 20,
    "objectives": [
        {"metric": "ttft", "percentile": 95, "max": "500ms"},
        {"metric": "errorRate", "maxPercent": 5},
    ],
}


@pytest.fixture(autouse=True)
def busy_clients(cluster: LocalCluster, namespace: str) -> None:
    """30 client requests a second per ModelDeployment in this module (the front door's default is 10):
    a canary's half then holds minRequests 20 from the first 3 s analysis on, even at 900 ms TTFT,
    where requests take over 2 s to finish, instead of going Inconclusive three times and pausing."""
    from slogate.dev.frontdoor import set_traffic

    set_traffic(cluster.dir, namespace=namespace, change={"rps": 30.0})


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-rollout.log")
    op.start()
    yield op
    op.stop()


def manifest(
    name: str, *, model: str = "hf://meta-llama/Llama-3.1-8B-Instruct", steps=None, **rollout
) -> dict:
    spec = {
        "model": {"source": model},
        "resources": {"gpu": {"count": 1}},
        "replicas": 2,
        "slo": SLO,
        "rollout": {
            "steps": steps if steps is not None else [{"setWeight": 50}, {"pause": {"duration": "3s"}}],
            "analysis": FAST_ANALYSIS,
            **rollout,
        },
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def spec_with(doc: dict, model: str) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({**doc["spec"], "model": {"source": model}})


def new_model(doc: dict, model: str) -> tuple[dict, str]:
    return {"spec": {"model": {"source": model}}}, revision_of(spec_with(doc, model))


def sim_set(cluster: LocalCluster, namespace: str, selector: str, *flags: str) -> None:
    keys = {"--ttft-ms": "ttft_ms", "--error-rate": "error_rate", "--itl-ms": "itl_ms", "--rps": "rps"}
    change = {keys[flags[i]]: float(flags[i + 1]) for i in range(0, len(flags), 2)}
    set_simulators(cluster.dir, namespace=namespace, selector=selector, change=change)


def answered_over(cluster: LocalCluster, key: str, seconds: float) -> dict[str, int]:
    """Requests of the front-door client ``key`` answered in the next ``seconds``, by the answering
    pod's ModelDeployment (after 2 s for the EndpointSlices to follow a switch). At least 10."""
    from slogate.dev.frontdoor import read_ledger

    time.sleep(2)
    before = read_ledger(cluster.dir)[key]["answered_by"]
    time.sleep(seconds)
    now = read_ledger(cluster.dir)[key]["answered_by"]
    moved = {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0) > 0}
    assert sum(moved.values()) >= 10, moved
    return moved


def cli(cluster: LocalCluster, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "slogate", *args, "--kubeconfig", str(cluster.kubeconfig)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def history(kube, ns, name) -> list[dict]:
    return (get_md(kube, ns, name).get("status") or {}).get("history") or []


def start(kube, namespace, doc) -> str:
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    return ready(kube, namespace, doc["metadata"]["name"])["status"]["stableRevision"]


def roll(kube, namespace, doc, model) -> str:
    patch, rev = new_model(doc, model)
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, doc["metadata"]["name"], patch
    )
    return rev


def test_a_good_canary_is_promoted_through_every_step(cluster, kube, namespace, operator):
    doc = manifest("good")
    old = start(kube, namespace, doc)
    new = roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    wait_for(
        lambda: get_md(kube, namespace, "good")["status"].get("canaryRevision") == new,
        timeout=30,
        what="the rollout to start",
    )
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "good"))["status"].get("stableRevision") == new and m,
        timeout=120,
        what="promotion",
        explain=lambda: describe(kube, namespace, "good"),
    )
    assert md["status"]["history"][-1] == {
        **md["status"]["history"][-1],
        "revision": new,
        "outcome": "Promoted",
    }
    has_events(kube, namespace, "good", "RolloutStarted", "WeightSet", "Promoted")
    assert (
        f'slogate_promotions_total{{modeldeployment="good",namespace="{namespace}",reason="steps_completed"}} 1.0'
        in operator.metrics()
    )
    assert md["status"]["sloVerdict"] == "Pass"
    apps = client.AppsV1Api(kube)
    wait_for(
        lambda: (
            [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == [f"good-{new}"]
        ),
        timeout=30,
        what=f"the old revision {old} to be retired",
    )


@pytest.mark.parametrize(
    "flags, objective",
    [(("--ttft-ms", "900"), "ttft-p95"), (("--error-rate", "0.5"), "errorRate")],
    ids=["ttft", "errors"],
)
def test_a_breaching_canary_is_rolled_back_with_the_reason(
    cluster, kube, namespace, operator, flags, objective
):
    doc = manifest("bad")
    stable = start(kube, namespace, doc)
    _, rev = new_model(doc, "hf://meta-llama/Llama-3.2-1B-Instruct")
    sim_set(cluster, namespace, f"slogate.io/revision={rev}", *flags)
    started = time.monotonic()
    roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-1B-Instruct")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "bad"))["status"].get("phase") == "RolledBack" and m,
        timeout=120,
        what="the rollback",
        explain=lambda: describe(kube, namespace, "bad"),
    )
    st = md["status"]
    assert st["stableRevision"] == stable and rev in st["rejectedRevisions"]
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RolledBack"
    assert objective.split("-")[0] in degraded["message"]
    assert st["history"][-1]["outcome"] == "RolledBack"
    assert st["lastAnalysis"]["verdict"] == "Fail"
    failed = [r for r in st["lastAnalysis"]["results"] if r["verdict"] == "Fail"]
    assert [r["name"] for r in failed] == [objective] and failed[0]["value"] and failed[0]["threshold"]
    # Events are posted right after the status write that records the decision.
    wait_for(
        lambda: "RolledBack" in [e.reason for e in events_for(kube, namespace, "bad")],
        timeout=15,
        what="the RolledBack event",
    )
    # Traffic is back on stable only: the candidate runs no pod.
    wait_for(
        lambda: (
            not client.CoreV1Api(kube)
            .list_namespaced_pod(namespace, label_selector=f"slogate.io/revision={rev}")
            .items
        ),
        timeout=60,
        what="candidate pods gone",
    )
    print(f"rollback after {time.monotonic() - started:.1f}s")
    # The operator's own metrics say it too.
    metrics = operator.metrics()
    assert (
        f'slogate_rollbacks_total{{modeldeployment="bad",namespace="{namespace}",outcome="RolledBack",'
        'reason="analysis_failed"} 1.0' in metrics
    )
    assert (
        f'slogate_slo_objective_verdict{{modeldeployment="bad",namespace="{namespace}",objective="{objective}",'
        'verdict="Fail"} 1.0'
    ) in metrics
    # The SRE's CLI names the breached objective: its value against its threshold, marked failed,
    # and the timeline says the rollout was rolled back and why.
    table = cli(cluster, "status", "bad", "-n", namespace)
    row = next(line for line in table.splitlines() if line.startswith("bad "))
    assert "RolledBack" in row and f"{objective} {failed[0]['value']}/{failed[0]['threshold']} ✗" in row, (
        table
    )
    story = cli(cluster, "explain", "bad", "-n", namespace)
    assert f"rollout of {rev} ended: RolledBack" in story and objective.split("-")[0] in story, story
    # Not retried by itself.
    time.sleep(5)
    assert get_md(kube, namespace, "bad")["status"]["phase"] == "RolledBack"


def test_a_manual_gate_waits_until_slogate_promote(cluster, kube, namespace, operator):
    doc = manifest("gate", steps=[{"setWeight": 50}, {"pause": {}}])
    start(kube, namespace, doc)
    new = roll(kube, namespace, doc, "hf://mistralai/Mistral-7B-Instruct-v0.3")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "gate"))["status"].get("phase") == "Paused" and m,
        timeout=90,
        what="the manual gate",
        explain=lambda: describe(kube, namespace, "gate"),
    )
    assert "manual gate" in md["status"]["rollout"]["pausedReason"]
    time.sleep(8)
    assert get_md(kube, namespace, "gate")["status"]["phase"] == "Paused"
    out = cli(cluster, "promote", "gate", "-n", namespace)
    assert "promote: sent" in out
    wait_for(
        lambda: get_md(kube, namespace, "gate")["status"].get("stableRevision") == new,
        timeout=90,
        what="promotion after the gate",
        explain=lambda: describe(kube, namespace, "gate"),
    )
    # Consumed, then cleared (right after the status write that recorded it).
    wait_for(
        lambda: (
            "slogate.io/command" not in (get_md(kube, namespace, "gate")["metadata"].get("annotations") or {})
        ),
        timeout=15,
        what="the command annotation to be cleared",
    )


def test_prometheus_outage_is_inconclusive_and_never_promotes(cluster, kube, namespace, operator):
    doc = manifest("outage", steps=[{"setWeight": 50}, {"pause": {"duration": "3s"}}])
    start(kube, namespace, doc)
    cluster.stop_component("prometheus")
    try:
        model = "hf://Qwen/Qwen2.5-7B-Instruct"
        new = roll(kube, namespace, doc, model)
        md = wait_for(
            lambda: (m := get_md(kube, namespace, "outage"))["status"].get("phase") == "Paused" and m,
            timeout=90,
            what="the inconclusive pause",
            explain=lambda: describe(kube, namespace, "outage"),
        )
        st = md["status"]
        assert st["stableRevision"] != new and st["canaryRevision"] == new
        assert st["lastAnalysis"]["verdict"] == "Inconclusive"
        assert all("Prometheus unreachable" in r["message"] for r in st["lastAnalysis"]["results"])
        assert "inconclusive" in st["rollout"]["pausedReason"]
    finally:
        cluster.start_prometheus_again()
    # As an SRE would: resume once Prometheus holds enough of the canary's requests to decide. Resumed
    # earlier, the analysis is rightly inconclusive again (no data in the window yet) and pauses again.
    source = PrometheusSource(cluster.prometheus_url)
    enough = requests_query(
        spec=spec_with(doc, model),
        namespace=namespace,
        name="outage",
        revision=new,
    )
    wait_for(
        lambda: (source.query(enough) or 0) >= SLO["minRequests"],
        timeout=60,
        what="Prometheus to hold the canary's requests again",
    )
    cli(cluster, "resume", "outage", "-n", namespace)
    wait_for(
        lambda: get_md(kube, namespace, "outage")["status"].get("stableRevision") == new,
        timeout=120,
        what="promotion once Prometheus is back",
        explain=lambda: describe(kube, namespace, "outage"),
    )


def test_an_operator_killed_mid_rollout_resumes_where_it_was(cluster, kube, namespace, operator):
    doc = manifest("resume", steps=[{"setWeight": 50}, {"pause": {"duration": "6s"}}, {"setWeight": 75}])
    start(kube, namespace, doc)
    new = roll(kube, namespace, doc, "hf://google/gemma-2-9b-it")
    wait_for(
        lambda: get_md(kube, namespace, "resume")["status"].get("currentStep") == 1,
        timeout=90,
        what="the pause step",
        explain=lambda: describe(kube, namespace, "resume"),
    )
    operator.kill()  # no graceful shutdown
    time.sleep(3)
    operator.start()
    wait_for(
        lambda: get_md(kube, namespace, "resume")["status"].get("stableRevision") == new,
        timeout=120,
        what="promotion after the restart",
        explain=lambda: describe(kube, namespace, "resume"),
    )
    weights = [e.message for e in events_for(kube, namespace, "resume") if e.reason == "WeightSet"]
    assert len(weights) == 2, weights  # 0 → 50 and 50 → 75, each exactly once
    assert [h["outcome"] for h in history(kube, namespace, "resume")].count("Promoted") == 1


def test_a_shadow_rollout_mirrors_traffic_through_an_httproute(cluster, kube, namespace, operator):
    doc = manifest(
        "shadow",
        steps=[{"pause": {}}],
        strategy="shadow",
        traffic={
            "router": "gatewayAPI",
            "gatewayAPI": {"parentRefs": [{"name": "gw"}], "hostnames": ["llm.example.com"]},
        },
    )
    start(kube, namespace, doc)
    roll(kube, namespace, doc, "hf://microsoft/Phi-3-mini-4k-instruct")
    api = client.CustomObjectsApi(kube)

    def mirrored():
        route = api.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", "shadow"
        )
        filters = [f for rule in route["spec"]["rules"] for f in rule.get("filters", [])]
        return route if any(f["type"] == "RequestMirror" for f in filters) else None

    route = wait_for(mirrored, timeout=60, what="the RequestMirror filter")
    rule = route["spec"]["rules"][0]
    assert rule["filters"][0]["requestMirror"]["backendRef"]["name"] == "shadow-canary"
    assert [b["name"] for b in rule["backendRefs"]] == ["shadow-stable"]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    root = client.CoreV1Api(kube).read_namespaced_service("shadow", namespace)
    assert "slogate.io/revision" in root.spec.selector  # users reach stable only


def test_fallback_activates_on_an_slo_breach_and_restores_after_the_hysteresis(
    cluster, kube, namespace, operator
):
    small = manifest("small", model="hf://meta-llama/Llama-3.2-1B-Instruct")
    small["spec"]["replicas"] = 1
    start(kube, namespace, small)
    primary = manifest("primary")
    primary["spec"]["replicas"] = 1
    primary["spec"]["model"]["servedName"] = "chat"
    primary["spec"]["fallback"] = {
        "targets": [{"modelDeployment": "small"}],
        "after": "4s",
        "restoreAfter": "8s",
    }
    stable = start(kube, namespace, primary)
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)

    # The fallback's engine answers to the primary's served name too.
    def small_serves_alias():
        dep = apps.list_namespaced_deployment(namespace, label_selector="slogate.io/deployment=small").items[
            0
        ]
        args = dep.spec.template.spec.containers[0].args
        return args[args.index("--served-model-name") + 1 :][:2] == ["small", "chat"]

    wait_for(small_serves_alias, timeout=60, what="the alias on the fallback's engine")

    sim_set(cluster, namespace, f"slogate.io/revision={stable}", "--error-rate", "0.5")
    md = wait_for(
        lambda: (m := get_md(kube, namespace, "primary"))["status"].get("phase") == "Fallback" and m,
        timeout=90,
        what="fallback",
    )
    assert md["status"]["fallback"]["active"] is True
    assert md["status"]["fallback"]["target"] == "modelDeployment/small"
    assert "breaches its SLO" in md["status"]["fallback"]["reason"]
    assert core.read_namespaced_service("primary", namespace).spec.selector == {
        "slogate.io/deployment": "small"
    }
    # The front door's clients of "primary" follow the switched selector to small's pods.
    assert set(answered_over(cluster, f"{namespace}/primary", 4)) == {"small"}
    wait_for(
        lambda: "FallbackActivated" in [e.reason for e in events_for(kube, namespace, "primary")],
        timeout=15,
        what="the FallbackActivated event",
    )

    sim_set(cluster, namespace, f"slogate.io/revision={stable}", "--error-rate", "0")
    healed = time.monotonic()
    wait_for(
        lambda: not get_md(kube, namespace, "primary")["status"]["fallback"]["active"],
        timeout=90,
        what="the restore",
    )
    assert time.monotonic() - healed >= 8  # not before restoreAfter: no flapping
    assert core.read_namespaced_service("primary", namespace).spec.selector == {
        "slogate.io/deployment": "primary"
    }
    assert set(answered_over(cluster, f"{namespace}/primary", 4)) == {"primary"}  # and back
    wait_for(
        lambda: "FallbackRestored" in [e.reason for e in events_for(kube, namespace, "primary")],
        timeout=15,
        what="the FallbackRestored event",
    )
