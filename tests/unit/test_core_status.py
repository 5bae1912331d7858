"""Revision planning, status computation, status patches and the subset check that makes
reconciles write nothing when nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slogate.core.compare import is_subset
from slogate.core.preflight import Preflight
from slogate.core.status import DeploymentObs, RevisionPlan, compute_status, status_patch

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def dep(rev: str, desired: int, ready: int, *, up_to_date: bool = True) -> DeploymentObs:
    return DeploymentObs(
        revision=rev,
        name=f"m-{rev}",
        desired=desired,
        replicas=desired,
        ready=ready,
        available=ready,
        up_to_date=up_to_date,
    )


def conds(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ready_status_and_events_on_first_ready():
    new, events = compute_status(
        generation=3,
        plan=RevisionPlan("a", None),
        deployments={"a": dep("a", 2, 2)},
        pods=[],
        preflight=Preflight(True, True, 2, "", "2 replicas fit"),
        autoscaler=None,
        notes=[],
        old={},
        now=NOW,
    )
    assert new["phase"] == "Ready" and new["observedGeneration"] == 3
    assert new["ready"] == "2/2" and new["stableRevision"] == "a" and new["canaryRevision"] is None
    assert conds(new) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Ready": ("True", "AllReplicasReady"),
        "Progressing": ("True", "NewRevisionAvailable"),
        "Degraded": ("False", "AsExpected"),
        "InsufficientGPU": ("False", "GPUAvailable"),
    }
    assert [e.reason for e in events] == ["Ready"]
    # A second pass over the same observation changes nothing and tells nothing.
    again, events = compute_status(
        generation=3,
        plan=RevisionPlan("a", None),
        deployments={"a": dep("a", 2, 2)},
        pods=[],
        preflight=Preflight(True, True, 2, "", "2 replicas fit"),
        autoscaler=None,
        notes=[],
        old=new,
        now=NOW + timedelta(minutes=5),
    )
    assert status_patch(new, again) == {} and events == []


def test_candidate_progressing_keeps_stable_serving():
    new, events = compute_status(
        generation=4,
        plan=RevisionPlan("a", "b"),
        deployments={"a": dep("a", 2, 2), "b": dep("b", 2, 1)},
        pods=[],
        preflight=None,
        autoscaler=None,
        notes=[],
        old={"stableRevision": "a"},
        now=NOW,
    )
    assert new["phase"] == "Progressing" and new["canaryRevision"] == "b"
    assert conds(new)["Progressing"] == ("True", "RevisionProgressing")
    assert conds(new)["Available"][0] == "True"
    assert new["ready"] == "3/4"
    assert events == []  # the rollout state machine posts the rollout's own events


def test_insufficient_gpu_and_unschedulable_pods_are_explained():
    pending = {
        "metadata": {"name": "m-a-1"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/5 nodes are available: 5 Insufficient nvidia.com/gpu.",
                }
            ],
        },
    }
    pf = Preflight(
        False,
        True,
        0,
        "InsufficientGPU",
        "no node offers 4 nvidia.com/gpu free; the largest free is 2 on node gpu-1",
    )
    new, events = compute_status(
        generation=1,
        plan=RevisionPlan("a", None),
        deployments={"a": dep("a", 1, 0)},
        pods=[pending],
        preflight=pf,
        autoscaler=None,
        notes=[],
        old={},
        now=NOW,
    )
    assert conds(new)["InsufficientGPU"] == ("True", "InsufficientGPU")
    assert conds(new)["Degraded"] == ("True", "PodsUnschedulable")
    assert new["phase"] == "Degraded"
    assert new["message"] == pf.message
    assert {e.reason for e in events} == {"InsufficientGPU", "PodsUnschedulable"}
    assert all(e.type == "Warning" for e in events)


def test_autoscaler_note_and_scaling_events():
    old, _ = compute_status(
        generation=1,
        plan=RevisionPlan("a", None),
        deployments={"a": dep("a", 2, 2)},
        pods=[],
        preflight=None,
        autoscaler="hpa",
        notes=[],
        old={},
        now=NOW,
    )
    new, events = compute_status(
        generation=1,
        plan=RevisionPlan("a", None),
        deployments={"a": dep("a", 3, 3)},
        pods=[],
        preflight=None,
        autoscaler="hpa",
        notes=["KEDA is not installed"],
        old=old,
        now=NOW,
    )
    assert new["autoscaler"] == "hpa: KEDA is not installed"
    assert {e.reason for e in events} == {"Scaled", "AutoscalerFallback"}
    assert set(status_patch(old, new)) == {
        "autoscaler",
        "conditions",
        "message",
        "ready",
        "readyReplicas",
        "replicas",
    }


def test_first_deploy_is_not_a_scaling():
    """The pass that creates the Deployment sees none; the next one sees N replicas. That is a
    deployment, not "Scaled 0 → N" (it was posted for every new ModelDeployment); a real scale
    from zero still is one."""
    kw = dict(
        generation=1,
        plan=RevisionPlan("a", None),
        pods=[],
        preflight=None,
        autoscaler=None,
        notes=[],
        now=NOW,
    )
    first, _ = compute_status(deployments={}, old={}, **kw)
    assert "replicas" not in {k for k, v in first.items() if v is not None}
    second, events = compute_status(deployments={"a": dep("a", 1, 1)}, old=first, **kw)
    assert "Scaled" not in {e.reason for e in events}
    zero, _ = compute_status(deployments={"a": dep("a", 0, 0)}, old=second, **kw)
    assert zero["replicas"] == 0
    _, events = compute_status(deployments={"a": dep("a", 1, 1)}, old=zero, **kw)
    assert "Scaled" in {e.reason for e in events}


def test_status_patch_is_minimal():
    assert status_patch({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {"b": 3}
    assert status_patch({"a": 1}, {"a": 1, "c": None}) == {}
    assert status_patch({"a": 1}, {}) == {"a": None}


@pytest.mark.parametrize(
    "desired, live, same",
    [
        pytest.param({"a": 1}, {"a": 1, "b": 2}, True, id="extra-live-fields"),
        pytest.param({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2], "c": 0}}, True, id="nested"),
        pytest.param({"a": [1, 2]}, {"a": [2, 1]}, False, id="list-order-matters"),
        pytest.param(
            {"a": [{"x": 1}]}, {"a": [{"x": 1, "defaulted": "TCP"}]}, True, id="defaults-in-list-items"
        ),
        pytest.param({"cpu": "0.5"}, {"cpu": "500m"}, True, id="quantity-canonicalised"),
        pytest.param({"memory": "1Gi"}, {"memory": "1024Mi"}, True, id="quantity-units"),
        pytest.param({"port": 80}, {"port": 8080}, False, id="scalar-differs"),
        pytest.param({"a": 1}, {}, False, id="missing"),
        pytest.param({"label": "abc"}, {"label": "abd"}, False, id="strings"),
    ],
)
def test_is_subset(desired, live, same):
    assert is_subset(desired, live) is same


def test_a_rollback_is_degraded_with_the_reason_and_the_rollout_phase_wins():
    new, events = compute_status(
        generation=2,
        plan=RevisionPlan("a", None),
        deployments={"a": dep("a", 2, 2)},
        pods=[],
        preflight=None,
        autoscaler=None,
        notes=[],
        old={},
        now=NOW,
        rollout_phase="RolledBack",
        rolled_back="ttft p95 900ms > 500ms",
    )
    assert conds(new)["Degraded"] == ("True", "RolledBack")
    assert (
        next(c for c in new["conditions"] if c["type"] == "Degraded")["message"] == "ttft p95 900ms > 500ms"
    )
    assert new["phase"] == "RolledBack"
    assert "RolledBack" not in [e.reason for e in events]  # the rollout posts its own RolledBack event
