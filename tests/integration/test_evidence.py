"""Never promote without evidence (issue 13), on the local cluster.

A candidate is promoted only after the analysis has passed on a window wholly inside the current step
and after the warm-up; a pause's duration is a minimum. Each test gives the candidate's simulators a
2 s TTFT against a 500 ms objective (or too little traffic to judge) before its pods exist, with
pauses far shorter than the analysis needs, and watches what the operator does while it runs.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from slogate.dev.cli import set_simulators
from slogate.dev.cluster import LocalCluster
from slogate.dev.frontdoor import set_traffic
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, describe, events_for, get_md, operator_for
from tests.integration.test_rollout import cli, manifest, new_model, start

SLOW = {"ttft_ms": 2000.0}
GATEWAY = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-evidence.log")
    op.start()
    yield op
    op.stop()


def roll_to(cluster, kube, namespace, doc, model, candidate: dict) -> str:
    """Set the next revision's simulators to ``candidate``, then roll to it."""
    patch, rev = new_model(doc, model)
    set_simulators(cluster.dir, namespace=namespace, selector=f"slogate.io/revision={rev}", change=candidate)
    client.CustomObjectsApi(kube).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, doc["metadata"]["name"], patch
    )
    return rev


def watch_until_ended(kube, namespace, name, rev, *, timeout: float, sample) -> tuple[dict, list]:
    """Poll until the rollout of ``rev`` ends (rolled back or promoted), calling ``sample()`` on
    every poll; returns the final object and the samples."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(sample())
        md = get_md(kube, namespace, name)
        st = md.get("status") or {}
        if st.get("phase") == "RolledBack" or (
            st.get("stableRevision") == rev and not st.get("canaryRevision")
        ):
            return md, seen
        time.sleep(0.5)
    raise AssertionError(
        f"the rollout of {rev} did not end in {timeout}s:\n{describe(kube, namespace, name)}"
    )


def status_weight(kube, namespace, name) -> int:
    return int((get_md(kube, namespace, name).get("status") or {}).get("canaryWeight") or 0)


def assert_rolled_back_on_ttft(md: dict, stable: str, rev: str) -> None:
    st = md["status"]
    assert st["phase"] == "RolledBack" and st["stableRevision"] == stable, st
    assert rev in st["rejectedRevisions"]
    failed = [r["name"] for r in st["lastAnalysis"]["results"] if r["verdict"] == "Fail"]
    assert any(n.startswith("ttft") for n in failed), st["lastAnalysis"]
    assert all(h["outcome"] != "Promoted" or h["revision"] != rev for h in st["history"])


def test_a_shadow_candidate_at_2s_ttft_is_mirrored_to_analysed_and_rolled_back_never_weighted(
    cluster, kube, namespace, operator
):
    doc = manifest("ev-shadow", steps=[{"pause": {"duration": "3s"}}], strategy="shadow", traffic=GATEWAY)
    stable = start(kube, namespace, doc)
    rev = roll_to(cluster, kube, namespace, doc, "hf://Qwen/Qwen2.5-7B-Instruct", SLOW)
    api = client.CustomObjectsApi(kube)
    apps = client.AppsV1Api(kube)

    def sample():
        route = api.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", "ev-shadow"
        )
        rule = route["spec"]["rules"][0]
        mirrors = [
            f["requestMirror"]["backendRef"]["name"]
            for f in rule.get("filters", [])
            if f["type"] == "RequestMirror"
        ]
        deps = apps.list_namespaced_deployment(namespace, label_selector=f"slogate.io/revision={rev}").items
        ready = sum((d.status.ready_replicas or 0) for d in deps)
        backends = {b["name"]: b.get("weight", 1) for b in rule["backendRefs"]}
        return mirrors, ready, backends, status_weight(kube, namespace, "ev-shadow")

    md, seen = watch_until_ended(kube, namespace, "ev-shadow", rev, timeout=150, sample=sample)
    assert_rolled_back_on_ttft(md, stable, rev)
    # While it was analysed the candidate ran, and the route mirrored to it; users saw only stable.
    assert any(m == ["ev-shadow-canary"] and r >= 1 for m, r, _, _ in seen), seen[-5:]
    assert all(list(b) == ["ev-shadow-stable"] for _, _, b, _ in seen), [
        x for x in seen if list(x[2]) != ["ev-shadow-stable"]
    ][:5]
    assert all(w == 0 for _, _, _, w in seen)
    # A mirror is never set up before the candidate is Ready (a copy sent to no endpoint fails).
    first_mirror = next(i for i, (m, _, _, _) in enumerate(seen) if m)
    assert seen[first_mirror][1] >= 1
    reasons = [e.reason for e in events_for(kube, namespace, "ev-shadow")]
    assert "Promoted" not in reasons and "WeightSet" not in reasons


def test_a_blue_green_candidate_at_2s_ttft_with_a_short_pause_is_rolled_back_never_switched(
    cluster, kube, namespace, operator
):
    doc = manifest("ev-bg", steps=[{"pause": {"duration": "3s"}}], strategy="blueGreen")
    # Prometheus scrapes the preview's new pods a few seconds after they start: a loaded CI run saw
    # three runs with no request series at all ("no requests recorded") and paused. The verdict
    # asserted is the TTFT rollback; ten Inconclusive runs leave room for the first scrapes.
    doc["spec"]["rollout"]["analysis"] = {**doc["spec"]["rollout"]["analysis"], "inconclusiveLimit": 10}
    # Before the switch users reach stable only; the candidate is analysed on preview traffic, which
    # someone must send to NAME-canary (docs/rollouts.md): here a standalone front-door client, at
    # 20 short requests a second. At 2 s TTFT and the default 128 tokens a request takes over 5 s, so
    # the first three analysis runs (3 s apart, the simulators up 3 s after the pods) saw too few
    # finished requests and paused the rollout instead (seen in CI); 8 tokens finish in ~2.2 s.
    set_traffic(
        cluster.dir,
        namespace=namespace,
        target=("Service", "ev-bg-canary"),
        model="ev-bg",
        change={"rps": 20.0, "generation_tokens": 8},
    )
    stable = start(kube, namespace, doc)
    rev = roll_to(cluster, kube, namespace, doc, "hf://mistralai/Mistral-7B-Instruct-v0.3", SLOW)
    core = client.CoreV1Api(kube)

    def sample():
        root = core.read_namespaced_service("ev-bg", namespace)
        st = get_md(kube, namespace, "ev-bg").get("status") or {}
        return root.spec.selector.get("slogate.io/revision"), bool((st.get("rollout") or {}).get("promoting"))

    md, seen = watch_until_ended(kube, namespace, "ev-bg", rev, timeout=150, sample=sample)
    assert_rolled_back_on_ttft(md, stable, rev)
    assert {sel for sel, _ in seen} == {stable}, seen  # users never reached the candidate
    assert not any(promoting for _, promoting in seen)
    reasons = [e.reason for e in events_for(kube, namespace, "ev-bg")]
    assert "Promoted" not in reasons and "PauseExtended" in reasons


def test_a_canary_whose_analysis_goes_inconclusive_in_its_pause_is_not_promoted(
    cluster, kube, namespace, operator
):
    # The 50% step passes; then the clients stop (the front door sends nothing more), so every run of
    # the final 2 s pause is Inconclusive. Before issue 13 the pause's timer promoted it two seconds later.
    # 20 requests a second: the canary's half gives 100 per 10 s window, above minRequests 60.
    set_traffic(cluster.dir, namespace=namespace, name="ev-thin", change={"rps": 20.0})
    doc = manifest("ev-thin", steps=[{"setWeight": 50}, {"pause": {"duration": "2s"}}])
    doc["spec"]["slo"] = {**doc["spec"]["slo"], "minRequests": 60}
    doc["spec"]["rollout"]["analysis"] = {**doc["spec"]["rollout"]["analysis"], "inconclusiveLimit": 50}
    stable = start(kube, namespace, doc)
    rev = roll_to(cluster, kube, namespace, doc, "hf://google/gemma-2-9b-it", {})
    wait_for(
        lambda: get_md(kube, namespace, "ev-thin")["status"].get("currentStep") == 1,
        timeout=90,
        what="the pause step",
        explain=lambda: describe(kube, namespace, "ev-thin"),
    )
    set_traffic(cluster.dir, namespace=namespace, name="ev-thin", change={"rps": 0.0})

    def waiting():
        st = get_md(kube, namespace, "ev-thin").get("status") or {}
        text = (st.get("rollout") or {}).get("waitingFor") or ""
        return st if "requests < minRequests" in text or "no requests recorded" in text else None

    st = wait_for(
        waiting,
        timeout=90,
        what="the pause to wait for evidence",
        explain=lambda: describe(kube, namespace, "ev-thin"),
    )
    assert st["rollout"]["waitingFor"].startswith(
        "waiting for a passing analysis: 0 of 1 needed, last verdict Inconclusive"
    )
    assert st["message"] == st["rollout"]["waitingFor"]  # the headline says why it waits
    # Long past the pause's duration: still not promoted, still at the pause.
    time.sleep(20)
    st = get_md(kube, namespace, "ev-thin")["status"]
    assert st["stableRevision"] == stable and st["canaryRevision"] == rev, st
    assert st["currentStep"] == 1 and st["phase"] == "Progressing"
    assert st["lastAnalysis"]["consecutiveInconclusive"] >= 3
    reasons = [e.reason for e in events_for(kube, namespace, "ev-thin")]
    assert "PauseExtended" in reasons and "Promoted" not in reasons
    out = cli(cluster, "status", "ev-thin", "-n", namespace)
    assert "waiting for a passing analysis" in out, out
