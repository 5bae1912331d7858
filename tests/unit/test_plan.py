"""``core.plan.plan`` over plain observations: what one pass decides, with no cluster.

The world is simulated the way the controller changes it: a plan's applied objects become the
live children of the next observation (with the status a Deployment controller would give them),
its status becomes the body's status. So "at rest" is a fixed point of plan, found by running it,
not written down by hand.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slogate import constants as C
from slogate.core.plan import Observation, ReconcilePlan, command_of, parse_spec, plan, prune
from slogate.core.preflight import NodeInfo
from slogate.core.status import status_patch

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
UID = "0000-uid"


def body(spec: dict[str, Any] | None = None, *, status: dict | None = None, generation: int = 1, **meta: Any):
    return {
        "apiVersion": C.API_VERSION,
        "kind": C.KIND,
        "metadata": {"name": "m", "namespace": "ns", "uid": UID, "generation": generation, **meta},
        "spec": spec or {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "replicas": 2},
        "status": status or {},
    }


def observe(
    b: dict[str, Any], children: dict[str, list] | None = None, now: datetime = NOW, **kw: Any
) -> Observation:
    spec, problems = parse_spec(b["spec"])
    return Observation(body=b, spec=spec, problems=problems, now=now, children=children or {}, **kw)


def settle(children: dict[str, list], p: ReconcilePlan, *, ready: bool = True) -> dict[str, list]:
    """The cluster after ``p``: applied objects live (Deployments fully Ready when ``ready``),
    scaled Deployments resized, deleted ones gone."""
    out = {k: [copy.deepcopy(o) for o in v] for k, v in children.items()}
    for obj in p.apply:
        live = copy.deepcopy(obj)
        live["metadata"]["ownerReferences"] = obj["metadata"].get("ownerReferences") or [{"uid": UID}]
        if obj["kind"] == "Deployment" and ready:
            n = obj["spec"].get("replicas", 1)
            live["status"] = {
                "observedGeneration": 1,
                "replicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
                "updatedReplicas": n,
            }
        live["metadata"]["generation"] = 1
        items = [o for o in out.get(obj["kind"], []) if o["metadata"]["name"] != obj["metadata"]["name"]]
        out[obj["kind"]] = [*items, live]
    for name, replicas in p.scale:
        for d in out.get("Deployment", []):
            if d["metadata"]["name"] == name:
                d["spec"]["replicas"] = replicas
                d["status"].update(replicas=replicas, readyReplicas=replicas, availableReplicas=replicas)
    for _, kind, name in p.delete:
        out[kind] = [o for o in out.get(kind, []) if o["metadata"]["name"] != name]
    return out


def run_until_rest(
    b: dict[str, Any], children: dict[str, list] | None = None, *, passes: int = 20, step=timedelta(seconds=5)
):
    """Plan, carry out, observe again, until a plan changes nothing; returns (body, children, plans)."""
    children = children or {}
    plans = []
    now = NOW
    for _ in range(passes):
        p = plan(observe(b, children, now=now))
        plans.append(p)
        changed = p.apply or p.scale or p.delete or status_patch(b["status"], p.status or {})
        children = settle(children, p)
        b = {**b, "status": p.status}
        if not changed:
            return b, children, plans
        now += step
    raise AssertionError(f"no rest after {passes} passes: {plans[-1]}")


def names(objs) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in objs)


# ------------------------------------------------------------------------------------ cases
def test_an_invalid_spec_writes_why_and_touches_no_child():
    b = body({"model": {"source": "hf://x/y"}, "replicas": -1})
    p = plan(observe(b, {"Deployment": [{"metadata": {"name": "m-old"}}]}))
    assert p.apply == () and p.delete == () and p.scale == ()
    assert p.status["phase"] == "Failed" and "spec.replicas" in p.status["message"]
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "InvalidSpec")]


def test_a_new_modeldeployment_creates_its_children_and_says_so():
    p = plan(observe(body()))
    kinds = {k for k, _ in names(p.apply)}
    assert {"Deployment", "Service"} <= kinds
    # One Event tells both: the revision deployed directly, and the Deployment it created.
    assert [e.reason for e in p.events if e.reason in ("Created", "Deployed")] == ["Deployed"]
    (deployed,) = [e for e in p.events if e.reason == "Deployed"]
    (dep_name,) = [n for k, n in names(p.apply) if k == "Deployment"]
    assert deployed.message.endswith(f": created Deployment {dep_name}")
    assert p.delete == () and p.scale == ()
    assert p.requeue_after == 2.0  # not Ready yet: look again soon
    (dep,) = [o for o in p.apply if o["kind"] == "Deployment"]
    assert dep["spec"]["replicas"] == 2


def test_a_candidate_deployment_is_told_by_its_own_created_event():
    b, children, _ = run_until_rest(
        body(
            {
                "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
                "replicas": 2,
                "rollout": {"strategy": "canary", "steps": [{"setWeight": 50}]},
            }
        )
    )
    b = {
        **b,
        "spec": {**b["spec"], "model": {"source": "hf://google/gemma-2-9b-it"}},
        "metadata": {**b["metadata"], "generation": 2},
    }
    p = plan(observe(b, children))
    reasons = [e.reason for e in p.events]
    assert "Created" in reasons and "Deployed" not in reasons, reasons


def test_at_rest_a_pass_writes_nothing():
    b, children, plans = run_until_rest(body())
    assert plans[-1].status["phase"] == "Ready"
    final = plan(observe(b, children, now=NOW + timedelta(hours=1)))
    assert final.apply == () and final.scale == () and final.delete == ()
    assert status_patch(b["status"], final.status) == {}
    assert [e for e in final.events] == []


def test_a_replica_change_applies_the_deployment_once():
    b, children, _ = run_until_rest(body())
    b = {**b, "spec": {**b["spec"], "replicas": 3}, "metadata": {**b["metadata"], "generation": 2}}
    p = plan(observe(b, children))
    (dep,) = [o for o in p.apply if o["kind"] == "Deployment"]
    assert dep["spec"]["replicas"] == 3
    assert not [e for e in p.events if e.reason == "Created"]  # the same revision: updated, not created


def test_an_orphan_revision_is_deleted_after_the_status_that_explains_it():
    b, children, _ = run_until_rest(body())
    orphan = copy.deepcopy(children["Deployment"][0])
    orphan["metadata"]["name"] = "m-deadbeef"
    orphan["metadata"]["labels"][C.LABEL_REVISION] = "deadbeef"
    children["Deployment"].append(orphan)
    p = plan(observe(b, children))
    assert p.delete == (("apps/v1", "Deployment", "m-deadbeef"),)


def test_a_child_no_longer_desired_is_pruned():
    b, children, _ = run_until_rest(body())
    extra = {"metadata": {"name": "m-stale-pdb", "labels": {}}}
    children["PodDisruptionBudget"] = [*children.get("PodDisruptionBudget", []), extra]
    assert ("policy/v1", "PodDisruptionBudget", "m-stale-pdb") in plan(observe(b, children)).delete


def test_a_command_is_cleared_once_consumed():
    b, children, _ = run_until_rest(body())
    b["metadata"]["annotations"] = {f"{C.GROUP}/command": "abort:1"}
    assert plan(observe(b, children)).clear_command
    b["metadata"]["annotations"] = {f"{C.GROUP}/command": "dance"}
    assert command_of(b) is None


def gpu_spec(**kw: Any) -> dict[str, Any]:
    return {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "replicas": 1,
        "resources": {"gpu": {"count": 2}},
        **kw,
    }


def node(gpus: int) -> NodeInfo:
    return NodeInfo(
        name="gpu-0",
        labels={},
        allocatable={"nvidia.com/gpu": str(gpus)},
        requested={},
        taints=(),
        ready=True,
        unschedulable=False,
    )


def test_a_shape_no_node_holds_creates_no_pods_and_says_why():
    p = plan(observe(body(gpu_spec()), nodes=(node(1),)))
    assert "Deployment" not in {o["kind"] for o in p.apply}
    assert p.status["phase"] == "Failed"
    assert p.status["message"].startswith("no node can ever hold one replica: it needs 2 nvidia.com/gpu")


def test_a_shape_that_fits_is_deployed():
    p = plan(observe(body(gpu_spec()), nodes=(node(8),)))
    assert "Deployment" in {o["kind"] for o in p.apply}


def test_promotion_within_the_gpu_budget_scales_stable_down_step_by_step():
    spec = gpu_spec(
        replicas=4,
        rollout={"strategy": "canary", "steps": [{"setWeight": 50}], "gpuBudget": {"maxSurgeGPUs": 2}},
    )
    spec["resources"] = {"gpu": {"count": 1}}
    nodes = (node(64),)
    # First revision at rest.
    b = body(spec)
    ch: dict[str, list] = {}
    now = NOW
    for _ in range(10):
        p = plan(observe(b, ch, now=now, nodes=nodes))
        ch, b, now = settle(ch, p), {**b, "status": p.status}, now + timedelta(seconds=5)
    assert b["status"]["phase"] == "Ready"
    stable = b["status"]["stableRevision"]
    # A new model: a candidate, then promotion; sample the GPUs requested after every pass.
    b = {
        **b,
        "spec": {**spec, "model": {"source": "hf://google/gemma-2-9b-it"}},
        "metadata": {**b["metadata"], "generation": 2},
    }
    peak = 0
    for _ in range(60):
        p = plan(observe(b, ch, now=now, nodes=nodes))
        ch, b, now = settle(ch, p), {**b, "status": p.status}, now + timedelta(seconds=5)
        gpus = sum(d["spec"]["replicas"] for d in ch["Deployment"])  # 1 GPU per replica
        peak = max(peak, gpus)
        if b["status"].get("stableRevision") != stable and len(ch["Deployment"]) == 1:
            break
    else:
        raise AssertionError(b["status"])
    assert peak <= 4 + 2, peak  # never more than stable plus the budget
    assert ch["Deployment"][0]["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    "keep, retire, gone", [((None,), (), []), (("a",), (), ["m-b"]), (("a", "b"), ("b",), ["m-b"])]
)
def test_prune_deployments(keep, retire, gone):
    def dep(rev):
        return {"metadata": {"name": f"m-{rev}", "labels": {C.LABEL_REVISION: rev}}}

    children = {"Deployment": [dep("a"), dep("b")]}
    keep = tuple(k for k in keep if k) or ()
    out = [n for _, _, n in prune([], children, retire, keep=keep)]
    assert out == gone
