"""Traffic splitting (``slogate.core.traffic``): replica maths, HTTPRoutes, the root selector.

The replica tables follow argo-rollouts' ``canary_test.go``: one named row per case, exact counts
and effective weights, so a reviewer can check each row by hand against the docstring's equations.
An invariant test then runs the whole cross product of stable sizes, weights, GPUs per replica and
budgets. HTTPRoutes are compared whole, as the dict the controller applies.
"""

from __future__ import annotations

import copy
import doctest
import itertools
import json
from typing import Any

import pytest

import slogate.core.traffic
from slogate import constants as C
from slogate.api.v1alpha1 import FallbackTarget, GatewayAPITraffic
from slogate.core.compare import is_subset
from slogate.core.naming import Owner, common_labels
from slogate.core.traffic import (
    ReplicaSplit,
    backend_of_target,
    build_httproute,
    promotion_replicas,
    replicas_for_weight,
    rollout_sizes,
    root_selector,
)

NAME = "llama"
NS = "ml"
OWNER = Owner(name=NAME, uid="0b5e2c1a-1111-2222-3333-444455556666")
GATEWAY = GatewayAPITraffic.model_validate(
    {
        "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
        "hostnames": ["llm.example.com"],
    }
)


# ---------------------------------------------------------------------------------- replicas


def split(stable: int, weight: int, gpus: int = 1, budget: int | None = None) -> ReplicaSplit:
    return replicas_for_weight(
        stable_replicas=stable, weight=weight, gpus_per_replica=gpus, max_surge_gpus=budget
    )


FULL = "the replicas router keeps stable at {s} until promotion: the canary at full size ({s}) gets 50% of traffic instead of {w}%"


@pytest.mark.parametrize(
    ("stable", "weight", "canary", "effective"),
    [
        pytest.param(1, 0, 0, 0.0, id="s1-w0"),
        pytest.param(1, 1, 1, 50.0, id="s1-w1-at-least-one"),
        pytest.param(1, 10, 1, 50.0, id="s1-w10"),
        pytest.param(1, 25, 1, 50.0, id="s1-w25"),
        pytest.param(1, 50, 1, 50.0, id="s1-w50"),
        pytest.param(1, 99, 1, 50.0, id="s1-w99-full-size"),
        pytest.param(1, 100, 1, 50.0, id="s1-w100"),
        pytest.param(2, 1, 1, 33.33, id="s2-w1"),
        pytest.param(2, 10, 1, 33.33, id="s2-w10"),
        pytest.param(2, 25, 1, 33.33, id="s2-w25"),
        pytest.param(2, 50, 2, 50.0, id="s2-w50"),
        pytest.param(2, 99, 2, 50.0, id="s2-w99-full-size"),
        pytest.param(2, 100, 2, 50.0, id="s2-w100"),
        pytest.param(4, 1, 1, 20.0, id="s4-w1"),
        pytest.param(4, 10, 1, 20.0, id="s4-w10"),
        pytest.param(4, 25, 2, 33.33, id="s4-w25-ceil-4/3"),
        pytest.param(4, 50, 4, 50.0, id="s4-w50"),
        pytest.param(4, 99, 4, 50.0, id="s4-w99-full-size"),
        pytest.param(4, 100, 4, 50.0, id="s4-w100"),
        pytest.param(10, 0, 0, 0.0, id="s10-w0"),
        pytest.param(10, 1, 1, 9.09, id="s10-w1"),
        pytest.param(10, 10, 2, 16.67, id="s10-w10-ceil-10/9"),
        pytest.param(10, 25, 4, 28.57, id="s10-w25-ceil-10/3"),
        pytest.param(10, 50, 10, 50.0, id="s10-w50"),
        pytest.param(10, 99, 10, 50.0, id="s10-w99-not-990"),
        pytest.param(10, 100, 10, 50.0, id="s10-w100"),
        pytest.param(0, 0, 0, 0.0, id="s0-w0"),
        pytest.param(0, 10, 1, 100.0, id="s0-w10-scaled-to-zero"),
        pytest.param(0, 100, 1, 100.0, id="s0-w100"),
    ],
)
def test_replicas_for_weight_without_budget(stable, weight, canary, effective):
    for gpus, budget in ((1, None), (0, 0), (0, None)):  # no budget, CPU-only with and without one
        s = split(stable, weight, gpus, budget)
        assert (s.stable, s.canary, s.effective_weight, s.capped_by_budget) == (
            stable,
            canary,
            effective,
            False,
        )


ALLOWS = "gpuBudget.maxSurgeGPUs {b} allows {n}; effective weight {e} instead of {w}"
CANNOT = (
    "gpuBudget.maxSurgeGPUs {b} is less than the {g} of one replica: a canary cannot start within the budget"
)

# fmt: off
BUDGET_CASES = [
    #            stable weight GPUs budget canary effective message
    pytest.param(2,     50,    2,   2,     1,     33.33,    ALLOWS.format(b=2, n="1 canary replica of 2 GPUs", e="33%", w="50%"), id="brief-example"),
    pytest.param(10,    50,    1,   2,     2,     16.67,    ALLOWS.format(b=2, n="2 canary replicas of 1 GPU", e="17%", w="50%"), id="s10-w50-1gpu-b2"),
    pytest.param(10,    50,    2,   4,     2,     16.67,    ALLOWS.format(b=4, n="2 canary replicas of 2 GPUs", e="17%", w="50%"), id="s10-w50-2gpu-b4"),
    pytest.param(10,    50,    4,   4,     1,     9.09,     ALLOWS.format(b=4, n="1 canary replica of 4 GPUs", e="9%", w="50%"), id="s10-w50-4gpu-b4"),
    pytest.param(4,     50,    2,   2,     1,     20.0,     ALLOWS.format(b=2, n="1 canary replica of 2 GPUs", e="20%", w="50%"), id="s4-w50-2gpu-b2"),
    pytest.param(10,    99,    1,   4,     4,     28.57,    ALLOWS.format(b=4, n="4 canary replicas of 1 GPU", e="29%", w="99%"), id="s10-w99-budget-after-full-size"),
    pytest.param(10,    100,   2,   4,     2,     16.67,    ALLOWS.format(b=4, n="2 canary replicas of 2 GPUs", e="17%", w="100%"), id="s10-w100-2gpu-b4"),
    pytest.param(10,    10,    4,   2,     0,     0.0,      CANNOT.format(b=2, g="4 GPUs"), id="cannot-start-4gpu-b2"),
    pytest.param(1,     1,     1,   0,     0,     0.0,      CANNOT.format(b=0, g="1 GPU"), id="cannot-start-b0"),
    pytest.param(100,   1,     1,   0,     0,     0.0,      CANNOT.format(b=0, g="1 GPU"), id="cannot-start-large-stable-b0"),
]
# fmt: on


@pytest.mark.parametrize(
    ("stable", "weight", "gpus", "budget", "canary", "effective", "message"), BUDGET_CASES
)
def test_replicas_for_weight_capped_by_budget(stable, weight, gpus, budget, canary, effective, message):
    s = split(stable, weight, gpus, budget)
    assert s == ReplicaSplit(
        stable=stable,
        canary=canary,
        effective_weight=effective,
        capped_by_budget=True,
        message=message,
        capped_at_full_size=s.capped_at_full_size,
    )


@pytest.mark.parametrize(
    ("stable", "weight", "gpus", "budget", "canary"),
    [
        pytest.param(4, 25, 2, 4, 2, id="budget-exactly-fits"),
        pytest.param(10, 10, 1, 2, 2, id="budget-exactly-fits-1gpu"),
        pytest.param(10, 10, 4, 8, 2, id="budget-exactly-fits-4gpu"),
        pytest.param(10, 1, 2, 4, 1, id="budget-larger"),
        pytest.param(10, 0, 1, 0, 0, id="weight-0-budget-0"),
        pytest.param(10, 50, 0, 0, 10, id="cpu-only-budget-ignored"),
        pytest.param(4, 50, 4, 16, 4, id="full-size-within-budget"),
    ],
)
def test_replicas_for_weight_within_budget(stable, weight, gpus, budget, canary):
    s = split(stable, weight, gpus, budget)
    assert (s.canary, s.capped_by_budget, s.message) == (canary, False, "")


@pytest.mark.parametrize(
    ("stable", "weight", "message"),
    [
        pytest.param(10, 99, FULL.format(s="10 replicas", w=99), id="s10-w99"),
        pytest.param(10, 100, FULL.format(s="10 replicas", w=100), id="s10-w100"),
        pytest.param(4, 75, FULL.format(s="4 replicas", w=75), id="s4-w75"),
        pytest.param(1, 99, FULL.format(s="1 replica", w=99), id="s1-w99-singular"),
    ],
)
def test_replicas_for_weight_full_size_message(stable, weight, message):
    s = split(stable, weight)
    assert (s.canary, s.capped_at_full_size, s.capped_by_budget, s.message) == (stable, True, False, message)


@pytest.mark.parametrize(
    ("stable", "weight"),
    [
        pytest.param(10, 50, id="exactly-half"),
        pytest.param(1, 10, id="at-least-one-rounds-up"),
        pytest.param(0, 100, id="scaled-to-zero-full-weight"),
    ],
)
def test_replicas_for_weight_no_message_without_cap(stable, weight):
    s = split(stable, weight)
    assert (s.capped_at_full_size, s.capped_by_budget, s.message) == (False, False, "")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"weight": -1}, id="weight-negative"),
        pytest.param({"weight": 101}, id="weight-over-100"),
        pytest.param({"stable_replicas": -1}, id="stable-negative"),
        pytest.param({"gpus_per_replica": -1}, id="gpus-negative"),
        pytest.param({"max_surge_gpus": -2}, id="budget-negative"),
    ],
)
def test_replicas_for_weight_rejects_invalid_input(kwargs):
    args = {"stable_replicas": 2, "weight": 10, "gpus_per_replica": 1, "max_surge_gpus": None, **kwargs}
    with pytest.raises(ValueError, match="must"):
        replicas_for_weight(**args)


STABLES = (0, 1, 2, 4, 10, 37)
WEIGHTS = (0, 1, 5, 10, 20, 25, 33, 50, 51, 75, 99, 100)
GPUS = (0, 1, 2, 4, 8)
BUDGETS = (None, 0, 1, 2, 4, 7, 64)


@pytest.mark.parametrize(("stable", "gpus", "budget"), list(itertools.product(STABLES, GPUS, BUDGETS)))
def test_replicas_for_weight_invariants(stable, gpus, budget):
    previous = -1
    for weight in WEIGHTS:
        s = split(stable, weight, gpus, budget)
        assert s.stable == stable  # stable is never scaled down before promotion
        assert 0 <= s.canary <= max(stable, 1)  # never beyond full size
        if budget is not None and gpus:
            assert s.canary * gpus <= budget
        total = stable + s.canary
        assert s.effective_weight == (round(100 * s.canary / total, 2) if total else 0.0)
        assert (weight == 0) <= (s.canary == 0)
        if not s.capped_by_budget and not s.capped_at_full_size and weight:
            assert s.effective_weight >= weight  # rounding up never gives the canary less
        assert (s.message == "") == (not s.capped_by_budget and not s.capped_at_full_size)
        assert s.canary >= previous  # monotonic in the weight
        previous = s.canary


@pytest.mark.parametrize(
    ("replicas", "ready", "gpus", "budget", "expected"),
    [
        pytest.param(4, 0, 1, None, (4, 4, 50.0, False), id="no-budget-full-size-at-once"),
        pytest.param(4, 4, 1, None, (0, 4, 100.0, False), id="no-budget-done"),
        pytest.param(4, 0, 1, 2, (4, 2, 33.33, True), id="budget-2-first"),
        pytest.param(4, 2, 1, 2, (2, 4, 66.67, False), id="budget-2-half-ready"),
        pytest.param(4, 3, 1, 2, (1, 4, 80.0, False), id="budget-2-three-ready"),
        pytest.param(4, 4, 1, 2, (0, 4, 100.0, False), id="budget-2-done"),
        pytest.param(4, 6, 1, 2, (0, 4, 100.0, False), id="more-ready-than-needed"),
        pytest.param(10, 1, 2, 4, (9, 3, 25.0, True), id="2gpu-budget-4"),
        pytest.param(4, 0, 0, 0, (4, 4, 50.0, False), id="cpu-only"),
        pytest.param(0, 0, 1, 2, (0, 0, 0.0, False), id="scaled-to-zero"),
    ],
)
def test_promotion_replicas(replicas, ready, gpus, budget, expected):
    p = promotion_replicas(
        replicas=replicas, canary_ready=ready, gpus_per_replica=gpus, max_surge_gpus=budget
    )
    assert (p.stable, p.canary, p.effective_weight, p.capped_by_budget) == expected
    if budget is not None and gpus:
        assert (p.stable + p.canary) * gpus <= (replicas + budget // gpus) * gpus


@pytest.mark.parametrize(
    ("ready", "message"),
    [
        pytest.param(
            0,
            "gpuBudget.maxSurgeGPUs 1 is less than the 2 GPUs of one replica: the candidate cannot grow "
            "beside stable within the budget",
            id="stuck-at-start",
        ),
        pytest.param(
            2,
            "gpuBudget.maxSurgeGPUs 1 is less than the 2 GPUs of one replica: the candidate cannot grow "
            "beside stable within the budget",
            id="stuck-halfway",
        ),
        pytest.param(4, "", id="done"),
    ],
)
def test_promotion_replicas_budget_too_small(ready, message):
    p = promotion_replicas(replicas=4, canary_ready=ready, gpus_per_replica=2, max_surge_gpus=1)
    assert p.message == message


def test_promotion_replicas_budget_message():
    p = promotion_replicas(replicas=4, canary_ready=0, gpus_per_replica=1, max_surge_gpus=2)
    assert (
        p.message
        == "gpuBudget.maxSurgeGPUs 2 allows 2 candidate replicas of 4 while 4 stable replicas still serve"
    )


def test_promotion_handover_converges():
    """Drive a handover tick by tick, every scheduled replica becoming Ready by the next tick."""
    ready, ticks = 0, []
    for _ in range(10):
        p = promotion_replicas(replicas=5, canary_ready=ready, gpus_per_replica=2, max_surge_gpus=4)
        ticks.append((p.stable, p.canary))
        if p.stable == 0:
            break
        ready = p.canary
    assert ticks == [(5, 2), (3, 4), (1, 5), (0, 5)]


# ---------------------------------------------------------------------------------- selector


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [
        pytest.param(None, {C.LABEL_DEPLOYMENT: "llama"}, id="primary"),
        pytest.param("llama-small", {C.LABEL_DEPLOYMENT: "llama-small"}, id="fallback-model-deployment"),
    ],
)
def test_root_selector(fallback, expected):
    assert root_selector(name=NAME, fallback_model_deployment=fallback) == expected


# --------------------------------------------------------------------------------- HTTPRoute


def route(**kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "name": NAME,
        "namespace": NS,
        "owner": OWNER,
        "traffic": GATEWAY,
        "canary_weight": 0,
        "canary": False,
        "mirror": False,
        **kwargs,
    }
    return build_httproute(**args)


def stable_ref(weight: int) -> dict[str, Any]:
    return {"name": "llama-stable", "port": 80, "weight": weight}


def canary_ref(weight: int) -> dict[str, Any]:
    return {"name": "llama-canary", "port": 80, "weight": weight}


def test_httproute_whole_object():
    assert route(canary=True, canary_weight=10) == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "llama",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/component": "model-server",
                "app.kubernetes.io/managed-by": "slogate",
                "app.kubernetes.io/name": "llama",
                "slogate.io/deployment": "llama",
            },
            "ownerReferences": [
                {
                    "apiVersion": "slogate.io/v1alpha1",
                    "kind": "ModelDeployment",
                    "name": "llama",
                    "uid": "0b5e2c1a-1111-2222-3333-444455556666",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "parentRefs": [{"namespace": "gateways", "name": "public", "sectionName": "https"}],
            "hostnames": ["llm.example.com"],
            "rules": [{"backendRefs": [stable_ref(90), canary_ref(10)]}],
        },
    }


@pytest.mark.parametrize(
    ("kwargs", "rule"),
    [
        pytest.param({}, {"backendRefs": [stable_ref(100)]}, id="no-canary"),
        pytest.param(
            {"canary": True, "canary_weight": 0},
            {"backendRefs": [stable_ref(100), canary_ref(0)]},
            id="canary-0",
        ),
        pytest.param(
            {"canary": True, "canary_weight": 1},
            {"backendRefs": [stable_ref(99), canary_ref(1)]},
            id="canary-1",
        ),
        pytest.param(
            {"canary": True, "canary_weight": 25},
            {"backendRefs": [stable_ref(75), canary_ref(25)]},
            id="canary-25",
        ),
        pytest.param(
            {"canary": True, "canary_weight": 50},
            {"backendRefs": [stable_ref(50), canary_ref(50)]},
            id="canary-50",
        ),
        pytest.param(
            {"canary": True, "canary_weight": 100},
            {"backendRefs": [stable_ref(0), canary_ref(100)]},
            id="canary-100",
        ),
        pytest.param(
            {"canary": True, "mirror": True},
            {
                "backendRefs": [stable_ref(100)],
                "filters": [
                    {
                        "type": "RequestMirror",
                        "requestMirror": {"backendRef": {"name": "llama-canary", "port": 80}, "percent": 100},
                    }
                ],
            },
            id="shadow-mirror",
        ),
        pytest.param(
            {"fallback_backend": ("llama-small", 80)},
            {"backendRefs": [{"name": "llama-small", "port": 80, "weight": 100}]},
            id="fallback-model-deployment",
        ),
        pytest.param(
            {"fallback_backend": ("openai", 443, "egress")},
            {"backendRefs": [{"name": "openai", "namespace": "egress", "port": 443, "weight": 100}]},
            id="fallback-service-other-namespace",
        ),
        pytest.param(
            {"fallback_backend": ("openai", 8080, None)},
            {"backendRefs": [{"name": "openai", "port": 8080, "weight": 100}]},
            id="fallback-service-same-namespace",
        ),
        pytest.param(
            {"fallback_backend": ("llama-small", 80), "canary": True, "canary_weight": 50},
            {"backendRefs": [{"name": "llama-small", "port": 80, "weight": 100}]},
            id="fallback-wins-over-canary",
        ),
        pytest.param(
            {"fallback_backend": ("llama-small", 80), "canary": True, "mirror": True},
            {"backendRefs": [{"name": "llama-small", "port": 80, "weight": 100}]},
            id="fallback-wins-over-mirror",
        ),
    ],
)
def test_httproute_rules(kwargs, rule):
    assert route(**kwargs)["spec"]["rules"] == [rule]


@pytest.mark.parametrize(
    ("gateway", "spec"),
    [
        pytest.param(
            {"parentRefs": [{"name": "public"}]},
            {"parentRefs": [{"name": "public"}]},
            id="namespace-omitted-hostnames-omitted",
        ),
        pytest.param(
            {"parentRefs": [{"name": "mesh", "group": "", "kind": "Service"}]},
            {"parentRefs": [{"group": "", "kind": "Service", "name": "mesh"}]},
            id="group-kind-when-given",
        ),
        pytest.param(
            {
                "parentRefs": [{"name": "a", "namespace": "gw"}, {"name": "b", "sectionName": "http"}],
                "hostnames": ["b.example.com", "a.example.com"],
            },
            {
                "parentRefs": [{"namespace": "gw", "name": "a"}, {"name": "b", "sectionName": "http"}],
                "hostnames": ["b.example.com", "a.example.com"],
            },
            id="several-parents-order-kept",
        ),
    ],
)
def test_httproute_parent_refs(gateway, spec):
    out = route(traffic=GatewayAPITraffic.model_validate(gateway))["spec"]
    assert {k: v for k, v in out.items() if k != "rules"} == spec


def test_httproute_deterministic_and_input_untouched():
    before = GATEWAY.model_dump()
    a = route(canary=True, canary_weight=25)
    b = route(canary=True, canary_weight=25)
    assert a == b
    assert json.dumps(a) == json.dumps(b)  # same key order too
    a["spec"]["hostnames"].append("x")
    assert route(canary=True, canary_weight=25)["spec"]["hostnames"] == ["llm.example.com"]
    assert GATEWAY.model_dump() == before


def test_httproute_labels_and_owner_follow_desired():
    meta = route()["metadata"]
    assert meta["labels"] == common_labels(NAME)
    assert meta["ownerReferences"] == [OWNER.reference()]


def test_httproute_subset_of_server_defaulted_route():
    """The API server adds backendRef group/kind and a catch-all match; the route still compares equal."""
    desired = route(canary=True, canary_weight=10)
    live = copy.deepcopy(desired)
    live["metadata"]["resourceVersion"] = "42"
    rule = live["spec"]["rules"][0]
    rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
    for ref in rule["backendRefs"]:
        ref.update(group="", kind="Service")
    assert is_subset(desired, live)
    assert not is_subset(route(canary=True, canary_weight=25), live)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"canary": True, "canary_weight": 101}, "between 0 and 100", id="weight-over-100"),
        pytest.param({"canary": True, "canary_weight": -1}, "between 0 and 100", id="weight-negative"),
        pytest.param({"canary_weight": 10}, "needs a canary", id="weight-without-canary"),
        pytest.param({"mirror": True}, "needs a canary", id="mirror-without-canary"),
        pytest.param(
            {"canary": True, "mirror": True, "canary_weight": 10}, "must be 0", id="mirror-with-weight"
        ),
    ],
)
def test_httproute_rejects_contradictions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        route(**kwargs)


@pytest.mark.parametrize(
    ("target", "backend"),
    [
        pytest.param({"modelDeployment": "llama-small"}, ("llama-small", 80, None), id="model-deployment"),
        pytest.param({"service": {"name": "openai"}}, ("openai", 80, None), id="service-defaults"),
        pytest.param(
            {"service": {"name": "openai", "namespace": "egress", "port": 443}},
            ("openai", 443, "egress"),
            id="service",
        ),
    ],
)
def test_backend_of_target(target, backend):
    assert backend_of_target(FallbackTarget.model_validate(target)) == backend


def test_doctests():
    result = doctest.testmod(slogate.core.traffic)
    assert result.attempted > 0
    assert result.failed == 0


# --- rollout_sizes: the GPU budget at every stage of a rollout (issue 14) -----------------------

SIZES = dict(
    strategy="canary",
    weight=100,
    promoting=True,
    mirror=False,
    scaled_down=False,
    stable_replicas=4,
    canary_ready=0,
    gpus_per_replica=1,
    max_surge_gpus=2,
    autoscaled=False,
)


@pytest.mark.parametrize(
    ("change", "canary", "stable", "route"),
    [
        # promotion hands over within 2 GPUs of surge: never more than 4 + 2 replicas held
        ({"canary_ready": 0}, 2, 4, 0),
        ({"canary_ready": 1}, 3, 3, 25),
        ({"canary_ready": 2}, 4, 2, 50),
        ({"canary_ready": 4}, 4, 0, 100),
        # no budget: full size at once, stable left at full size until the candidate is Ready
        ({"max_surge_gpus": None, "canary_ready": 0}, 4, 4, 0),
        # autoscaled stable: the autoscaler owns its size; full size at once
        ({"autoscaled": True, "canary_ready": 1}, 4, None, 100),
        # a canary weight within the budget, stable untouched
        ({"promoting": False, "weight": 50}, 2, 4, 50),
        # shadow: a mirror of all traffic wants stable's size, capped by the budget
        (
            {"strategy": "shadow", "promoting": False, "weight": 0, "mirror": True},
            2,
            4,
            0,
        ),
        (
            {
                "strategy": "shadow",
                "promoting": False,
                "weight": 0,
                "mirror": True,
                "max_surge_gpus": None,
            },
            4,
            4,
            0,
        ),  # no budget: the whole copy
        # rolled back: candidate gone, stable restored to full size
        ({"scaled_down": True, "promoting": False}, 0, 4, 0),
        # blue-green: a whole copy, or none and a note
        ({"strategy": "blueGreen", "promoting": False, "weight": 0, "max_surge_gpus": 4}, 4, 4, 0),
        ({"strategy": "blueGreen", "promoting": False, "weight": 0}, 0, 4, 0),
        ({"strategy": "blueGreen", "canary_ready": 4, "max_surge_gpus": 4}, 4, 0, 100),
    ],
)
def test_rollout_sizes_keep_every_stage_within_the_gpu_budget(change, canary, stable, route):
    args = {**SIZES, **change}
    got = rollout_sizes(**args)
    assert (got.canary, got.stable, got.route_weight) == (canary, stable, route)
    budget = args["max_surge_gpus"]
    if budget is not None and not args["autoscaled"]:
        held = got.canary + (got.stable if got.stable is not None else args["stable_replicas"])
        assert held * args["gpus_per_replica"] <= args["stable_replicas"] * args["gpus_per_replica"] + budget


def test_rollout_sizes_say_why_the_budget_shapes_them():
    assert "blueGreen runs a full second copy (4 replicas of 1 GPU) but gpuBudget.maxSurgeGPUs is 2" in (
        rollout_sizes(**{**SIZES, "strategy": "blueGreen", "promoting": False, "weight": 0}).note
    )
    assert "2 candidate replicas of 4 while 4 stable replicas still serve" in rollout_sizes(**SIZES).note
    assert "autoscaled" in rollout_sizes(**{**SIZES, "autoscaled": True}).note
    assert rollout_sizes(**{**SIZES, "canary_ready": 4}).note == ""
