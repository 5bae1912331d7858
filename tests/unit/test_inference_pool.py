"""The ``inferencePool`` router: InferencePools per track, an HTTPRoute with weighted pool
backendRefs, and the local cluster's model of how a gateway delivers to a pool.

The objects are checked against the Gateway API Inference Extension's own CRD (GIE v1.6.2,
``config/crd/bases/inference.networking.k8s.io_inferencepools.yaml`` from its Go module, the version
``hack/versions.env`` pins) and the HTTPRoute's backendRefs against Gateway API v1.6.3's CRD: a field
we write that their schema does not have, a wrong enum value or a missing required field fails here.
The integration tests (tests/integration/test_inference_pool.py) apply them to a real API server.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
import yaml

from slogate.api.v1alpha1 import EndpointPicker, InferencePoolTraffic, ParentRef
from slogate.core.naming import Capabilities, Owner
from slogate.core.plan import Observation, gateway_notes, parse_spec, plan
from slogate.core.traffic import build_httproute, build_inference_pool
from slogate.dev import router
from slogate.dev.versions import go_module_dir, versions

OWNER = Owner(name="chat", uid="u-1")
TRAFFIC = InferencePoolTraffic(parent_refs=[ParentRef(name="inference-gateway")])


# ------------------------------------------------------------------ the projects' own schemas


def _crd_schema(module: str, pin: str, path: str, version: str = "v1") -> dict[str, Any]:
    doc = yaml.safe_load((go_module_dir(module, versions()[pin]) / path).read_text())
    (v,) = [v for v in doc["spec"]["versions"] if v["name"] == version]
    return v["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="module")
def pool_schema() -> dict[str, Any]:
    return _crd_schema(
        "sigs.k8s.io/gateway-api-inference-extension",
        "GIE_VERSION",
        "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml",
    )


@pytest.fixture(scope="module")
def route_schema() -> dict[str, Any]:
    return _crd_schema(
        "sigs.k8s.io/gateway-api",
        "GATEWAY_API_VERSION",
        "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
    )


def conforms(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Where ``value`` leaves ``schema``: unknown fields, missing required ones, enum values and
    types (the structural part of the OpenAPI schema; CEL rules are the API server's, in the
    integration tests)."""
    problems: list[str] = []
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties")
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}.{key}: required")
        for key, sub in value.items():
            if props is not None and key in props:
                problems += conforms(sub, props[key], f"{path}.{key}")
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                if path.count(".") == 0 and key in ("apiVersion", "kind", "metadata"):
                    continue
                problems.append(f"{path}.{key}: not in the schema")
            elif "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
                problems += conforms(sub, schema["additionalProperties"], f"{path}.{key}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        for i, item in enumerate(value):
            problems += conforms(item, schema.get("items", {}), f"{path}[{i}]")
    elif kind == "integer" and not isinstance(value, int):
        problems.append(f"{path}: not an integer")
    elif kind == "string" and not isinstance(value, str):
        problems.append(f"{path}: not a string")
    return problems


def pool(**kw: Any) -> dict[str, Any]:
    args = {
        "name": "chat",
        "namespace": "team-a",
        "owner": OWNER,
        "track": "stable",
        "revision": "abc123",
        "port": 8000,
        "traffic": TRAFFIC,
    } | kw
    return build_inference_pool(**args)


@pytest.mark.parametrize(
    "traffic",
    [
        TRAFFIC,
        InferencePoolTraffic(
            parent_refs=[ParentRef(name="gw")],
            endpoint_picker=EndpointPicker(port=9002, failure_mode="FailOpen"),
            app_protocol="kubernetes.io/h2c",
        ),
        InferencePoolTraffic(
            parent_refs=[ParentRef(name="gw")], endpoint_picker=EndpointPicker(name="shared-epp")
        ),
    ],
    ids=["no-picker", "picker-per-pool-h2c", "shared-picker"],
)
def test_the_pool_conforms_to_gie_s_own_crd(pool_schema, traffic):
    obj = pool(traffic=traffic)
    assert conforms(obj, pool_schema) == []
    assert obj["apiVersion"] == "inference.networking.k8s.io/v1" and obj["kind"] == "InferencePool"


def test_a_schema_check_that_cannot_fail_proves_nothing(pool_schema):
    """The checker disagrees with a pool GIE would reject: the pre-v1 field name, a wrong enum."""
    obj = pool()
    obj["spec"]["targetPortNumber"] = 8000  # v1alpha2's field, gone in v1
    obj["spec"]["appProtocol"] = "grpc"
    del obj["spec"]["selector"]
    problems = conforms(obj, pool_schema)
    assert any("targetPortNumber" in p for p in problems)
    assert any("appProtocol" in p for p in problems)
    assert any(".spec.selector: required" in p for p in problems)


def test_the_pool_selects_the_revision_s_pods_on_the_engine_port():
    obj = pool(track="canary", revision="def456", port=8080)
    assert obj["metadata"]["name"] == "chat-canary"
    assert obj["spec"]["selector"] == {
        "matchLabels": {"slogate.io/deployment": "chat", "slogate.io/revision": "def456"}
    }
    assert obj["spec"]["targetPorts"] == [{"number": 8080}]
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"


@pytest.mark.parametrize(
    ("picker", "ref"),
    [
        (None, None),
        (
            EndpointPicker(),
            {
                "kind": "Service",
                "name": "chat-stable-epp",
                "port": {"number": 9002},
                "failureMode": "FailClose",
            },
        ),
        (
            EndpointPicker(name="epp", port=9100, failure_mode="FailOpen"),
            {"kind": "Service", "name": "epp", "port": {"number": 9100}, "failureMode": "FailOpen"},
        ),
    ],
)
def test_the_endpoint_picker_ref(picker, ref):
    obj = pool(traffic=InferencePoolTraffic(parent_refs=[ParentRef(name="gw")], endpoint_picker=picker))
    assert obj["spec"].get("endpointPickerRef") == ref


def route(**kw: Any) -> dict[str, Any]:
    args = {
        "name": "chat",
        "namespace": "team-a",
        "owner": OWNER,
        "traffic": TRAFFIC,
        "canary_weight": 0,
        "canary": False,
        "mirror": False,
    } | kw
    return build_httproute(**args)


POOL = {"group": "inference.networking.k8s.io", "kind": "InferencePool"}


@pytest.mark.parametrize(
    ("kwargs", "refs"),
    [
        ({}, [{**POOL, "name": "chat-stable", "weight": 100}]),
        (
            {"canary": True, "canary_weight": 10},
            [{**POOL, "name": "chat-stable", "weight": 90}, {**POOL, "name": "chat-canary", "weight": 10}],
        ),
        (
            {"canary": True, "canary_weight": 10, "fallback_pool": "small-stable"},
            [{**POOL, "name": "small-stable", "weight": 100}],
        ),
    ],
    ids=["stable", "canary-10", "fallback"],
)
def test_the_route_weights_pools(route_schema, kwargs, refs):
    obj = route(**kwargs)
    assert obj["spec"]["rules"] == [{"backendRefs": refs}]
    assert obj["spec"]["parentRefs"] == [{"name": "inference-gateway"}]
    assert conforms(obj, route_schema) == []


def test_the_route_refuses_to_mirror_to_a_pool():
    with pytest.raises(ValueError, match="cannot mirror"):
        route(canary=True, mirror=True)


# ------------------------------------------------------------------ plan: discovery and routing


def md(spec_extra: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct", "servedName": "llama-chat"},
        "replicas": 2,
        "rollout": {
            "traffic": {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "gw"}]}}
        },
    } | (spec_extra or {})
    return {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "chat", "namespace": "team-a", "uid": "u-1", "generation": 1},
        "spec": spec,
        "status": status or {},
    }


def observe(b: dict[str, Any], caps: Capabilities, children: dict[str, list] | None = None) -> Observation:
    from datetime import UTC, datetime

    spec, problems = parse_spec(b["spec"])
    return Observation(
        body=b,
        spec=spec,
        problems=problems,
        now=datetime(2026, 12, 4, tzinfo=UTC),
        children=children or {},
        caps=caps,
    )


def kinds(p) -> Counter:
    return Counter(o["kind"] for o in p.apply)


def test_without_the_inferencepool_api_nothing_is_applied_and_status_says_why():
    p = plan(observe(md(), Capabilities(gateway_api=True)))
    assert kinds(p)["InferencePool"] == 0 and kinds(p)["HTTPRoute"] == 0
    (degraded,) = [c for c in p.status["conditions"] if c["type"] == "Degraded"]
    assert degraded["status"] == "True" and degraded["reason"] == "RouterUnavailable"
    assert "InferencePool API (inference.networking.k8s.io/v1) is not served" in degraded["message"]
    assert p.status["phase"] == "Degraded" and p.status["message"] == degraded["message"]
    assert [e.reason for e in p.events if e.type == "Warning"] == ["RouterUnavailable"]
    # The next pass with the same problem posts no second Event.
    again = plan(observe(md(status=p.status), Capabilities(gateway_api=True)))
    assert "RouterUnavailable" not in [e.reason for e in again.events]


def test_a_gateway_that_rejects_a_pool_degrades_with_its_words():
    caps = Capabilities(gateway_api=True, inference_pool=True)
    first = plan(observe(md(), caps))
    (live,) = [o for o in first.apply if o["kind"] == "InferencePool"]
    live = {
        **live,
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "gw"},
                    "conditions": [
                        {
                            "type": "Accepted",
                            "status": "False",
                            "reason": "EndpointPickerRefMissing",
                            "message": "set one",
                        }
                    ],
                }
            ]
        },
    }
    p = plan(observe(md(status=first.status), caps, {"InferencePool": [live]}))
    (degraded,) = [c for c in p.status["conditions"] if c["type"] == "Degraded"]
    assert degraded["reason"] == "GatewayRejected"
    assert (
        "chat-stable on Gateway team-a/gw: Accepted=False (EndpointPickerRefMissing): set one"
        in degraded["message"]
    )
    assert "GatewayRejected" in [e.reason for e in p.events]


def test_with_the_api_the_stable_pool_and_its_route_are_applied():
    p = plan(observe(md(), Capabilities(gateway_api=True, inference_pool=True)))
    pools = [o for o in p.apply if o["kind"] == "InferencePool"]
    assert [o["metadata"]["name"] for o in pools] == ["chat-stable"]
    (rt,) = [o for o in p.apply if o["kind"] == "HTTPRoute"]
    assert rt["spec"]["rules"][0]["backendRefs"] == [{**POOL, "name": "chat-stable", "weight": 100}]
    (dep,) = [o for o in p.apply if o["kind"] == "Deployment"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["llm-d.ai/model"] == "llama-chat" and labels["llm-d.ai/inference-serving"] == "true"
    assert pools[0]["spec"]["targetPorts"] == [
        {"number": dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]}
    ]


def test_other_routers_leave_pod_labels_alone():
    b = md()
    b["spec"]["rollout"] = {}
    p = plan(observe(b, Capabilities(gateway_api=True, inference_pool=True)))
    (dep,) = [o for o in p.apply if o["kind"] == "Deployment"]
    assert "llm-d.ai/model" not in dep["spec"]["template"]["metadata"]["labels"]
    assert kinds(p)["InferencePool"] == 0


def test_gateway_notes_report_parent_conditions_that_are_not_true():
    children = {
        "InferencePool": [
            {
                "metadata": {"name": "chat-stable", "namespace": "team-a"},
                "status": {
                    "parents": [
                        {
                            "parentRef": {"name": "gw", "kind": "Gateway"},
                            "conditions": [
                                {
                                    "type": "Accepted",
                                    "status": "False",
                                    "reason": "EndpointPickerRefMissing",
                                    "message": "this gateway needs an endpoint picker",
                                },
                                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"},
                            ],
                        }
                    ]
                },
            }
        ],
        "HTTPRoute": [
            {
                "metadata": {"name": "chat", "namespace": "team-a"},
                "status": {"parents": [{"parentRef": {"name": "gw"}}]},
            }
        ],
    }
    assert gateway_notes(children) == [
        "InferencePool chat-stable on Gateway team-a/gw: Accepted=False (EndpointPickerRefMissing):"
        " this gateway needs an endpoint picker"
    ]


# ------------------------------------------------------------------ the local cluster's gateway model


def live_pod(name: str, ip: str, labels: dict[str, str], *, ready: bool = True, ns: str = "team-a") -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


STABLE_LABELS = {"slogate.io/deployment": "chat", "slogate.io/revision": "abc123"}
CANARY_LABELS = {"slogate.io/deployment": "chat", "slogate.io/revision": "def456"}
PODS = [
    live_pod("s-1", "10.0.0.1", STABLE_LABELS),
    live_pod("s-2", "10.0.0.2", STABLE_LABELS),
    live_pod("s-3", "10.0.0.3", STABLE_LABELS, ready=False),
    live_pod("c-1", "10.0.1.1", CANARY_LABELS),
    live_pod("other", "10.0.2.1", STABLE_LABELS, ns="team-b"),  # another namespace: never a member
]


def state(weight: int, *, picker: EndpointPicker | None = None, services=()) -> router.RoutingState:
    traffic = InferencePoolTraffic(parent_refs=[ParentRef(name="gw")], endpoint_picker=picker)
    pools = [
        pool(traffic=traffic),
        pool(track="canary", revision="def456", traffic=traffic),
    ]
    rt = route(traffic=traffic, canary=weight > 0, canary_weight=weight)
    return router.build_state(
        endpointslices=[], services=list(services), httproutes=[rt], inferencepools=pools, pods=PODS
    )


def test_pool_members_are_the_ready_pods_its_selector_selects_in_its_namespace():
    s = state(0)
    members = s.pools[router.ServiceRef("team-a", "chat-stable")].endpoints
    assert [(e.pod, e.ready, e.ports) for e in members] == [
        ("s-1", True, (("", 8000),)),
        ("s-2", True, (("", 8000),)),
        ("s-3", False, (("", 8000),)),
    ]


def test_weights_10_90_across_two_pools_within_4_sd():
    rng = random.Random(7)
    n = 10_000
    got = Counter(
        router.deliver(state(10), router.RouteTarget("team-a", "chat"), rng).endpoint.pod for _ in range(n)
    )
    canary = got["c-1"]
    assert abs(canary - 0.1 * n) <= 4 * (n * 0.1 * 0.9) ** 0.5, got
    assert set(got) == {"s-1", "s-2", "c-1"}  # never the unready pod, never another namespace


@pytest.mark.parametrize(
    ("picker", "services", "reason", "status"),
    [
        (EndpointPicker(), [], router.Reason.PICKER_UNAVAILABLE, 503),  # FailClose: dropped
        (EndpointPicker(failure_mode="FailOpen"), [], router.Reason.SERVED, 200),  # the gateway picks
        (
            EndpointPicker(),
            [{"metadata": {"name": "chat-stable-epp", "namespace": "team-a"}}],
            router.Reason.SERVED,
            200,
        ),
        (None, [], router.Reason.SERVED, 200),  # no picker: GIE v1.6 allows it
    ],
    ids=["picker-missing-failclose", "picker-missing-failopen", "picker-present", "no-picker"],
)
def test_the_endpoint_picker_s_failure_mode(picker, services, reason, status):
    d = router.deliver(
        state(0, picker=picker, services=services), router.RouteTarget("team-a", "chat"), random.Random(1)
    )
    assert d.reason is reason and (d.status or 200) == status


def test_a_route_to_a_missing_pool_answers_500():
    rt = route(canary=True, canary_weight=100)
    s = router.build_state(endpointslices=[], httproutes=[rt], inferencepools=[pool()], pods=PODS)
    d = router.deliver(s, router.RouteTarget("team-a", "chat"), random.Random(1))
    assert d.reason is router.Reason.BACKEND_NOT_FOUND and d.status == 500
