"""The local cluster's router model (slogate.dev.router) against kube-proxy's and Gateway API's rules.

Statistical tests draw N requests from a seeded random.Random and accept a count k of one outcome of
probability p when |k - N p| <= 4 sqrt(N p (1 - p)): four binomial standard deviations, which a
correct model misses with probability about 6e-5 per check (and, being seeded, never flakes). A
model off by a few percent points fails them: at N = 10 000 and p = 0.1 the band is ±120 (±1.2 %).
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from typing import Any

import pytest

from slogate.dev import router
from slogate.dev.router import (
    BackendRef,
    Delivery,
    Endpoint,
    Mirror,
    Reason,
    Route,
    RouteRef,
    RouteTarget,
    RoutingState,
    Rule,
    ServiceRef,
    ServiceTarget,
)

N = 10_000
NS = "default"


def within_4_sd(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def ep(address: str, *, ready: bool = True, serving: bool = True, terminating: bool = False) -> Endpoint:
    return Endpoint(address=address, ready=ready, serving=serving, terminating=terminating)


def svc(name: str, ns: str = NS) -> ServiceRef:
    return ServiceRef(ns, name)


def backend(name: str, weight: int = 1, **kw: Any) -> BackendRef:
    return BackendRef(
        name=name, namespace=kw.pop("namespace", NS), port=kw.pop("port", 80), weight=weight, **kw
    )


def state_with(rule: Rule, services: dict[str, tuple[Endpoint, ...]], **kw: Any) -> RoutingState:
    return RoutingState(
        services={svc(k): v for k, v in services.items()},
        routes={RouteRef(NS, "r"): Route(namespace=NS, name="r", rules=(rule,))},
        **kw,
    )


def draws(
    state: RoutingState, target: ServiceTarget | RouteTarget, n: int = N, seed: int = 17
) -> list[Delivery]:
    rng = random.Random(seed)
    return [router.deliver(state, target, rng) for _ in range(n)]


ROUTE = RouteTarget(NS, "r")
STABLE = (ep("10.0.0.1"), ep("10.0.0.2"))
CANARY = (ep("10.0.1.1"),)


# --- Parsing ------------------------------------------------------------------------------------

# As the API server returns an HTTPRoute the operator applied (core.traffic.build_httproute, shadow
# mode) after the CRD's defaulting: group/kind/weight filled in, a default match added, plus a status.
HTTPROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "llama-chat", "namespace": "team-a", "generation": 3, "resourceVersion": "4821"},
    "spec": {
        "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference"}],
        "hostnames": ["llama.example.com"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "llama-chat-stable", "port": 80, "weight": 90},
                    {"group": "", "kind": "Service", "name": "llama-chat-canary", "port": 80, "weight": 10},
                    {
                        "name": "llama-small",
                        "namespace": "team-b",
                        "port": 8000,
                        "filters": [
                            {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}},
                            {
                                "type": "RequestMirror",
                                "requestMirror": {"backendRef": {"name": "audit", "port": 80}},
                            },
                        ],
                    },
                ],
                "filters": [
                    {
                        "type": "RequestMirror",
                        "requestMirror": {
                            "backendRef": {"name": "llama-chat-canary", "port": 80},
                            "percent": 100,
                        },
                    },
                    {
                        "type": "RequestMirror",
                        "requestMirror": {
                            "backendRef": {"name": "sampler", "port": 80},
                            "fraction": {"numerator": 1, "denominator": 1000},
                        },
                    },
                    {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": []}},
                ],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
                "filters": [{"type": "RequestRedirect"}],
            },
        ],
    },
    "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]},
}

# As the EndpointSlice controller writes one: a Ready pod, a Terminating one that still serves,
# one not yet Ready, and one whose conditions are omitted (nil ready means ready).
ENDPOINTSLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {
        "name": "llama-chat-stable-x7k2p",
        "namespace": "team-a",
        "labels": {
            "kubernetes.io/service-name": "llama-chat-stable",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        },
        "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "llama-chat-stable"}],
    },
    "addressType": "IPv4",
    "endpoints": [
        {
            "addresses": ["10.244.1.7"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "gpu-0",
            "targetRef": {"kind": "Pod", "namespace": "team-a", "name": "llama-chat-6a1098e4-abcde"},
        },
        {
            "addresses": ["10.244.1.8"],
            "conditions": {"ready": False, "serving": True, "terminating": True},
            "targetRef": {"kind": "Pod", "namespace": "team-a", "name": "llama-chat-6a1098e4-fghij"},
        },
        {
            "addresses": ["10.244.1.9"],
            "conditions": {"ready": False, "serving": False, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": "team-a", "name": "llama-chat-6a1098e4-klmno"},
        },
        {"addresses": ["10.244.1.10"]},
    ],
    "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
}


def test_parse_httproute_applies_defaults_and_sorts_filters():
    route = router.parse_httproute(HTTPROUTE)
    assert (route.namespace, route.name, len(route.rules)) == ("team-a", "llama-chat", 2)
    rule = route.rules[0]
    stable, canary, small = rule.backends
    assert stable == BackendRef(name="llama-chat-stable", namespace="team-a", port=80, weight=90)
    assert canary.weight == 10
    # Omitted weight defaults to 1, kind to Service, group to core; an explicit namespace is kept.
    assert (small.weight, small.kind, small.group, small.namespace, small.port) == (
        1,
        "Service",
        "",
        "team-b",
        8000,
    )
    assert small.mirrors == (Mirror(backend=BackendRef(name="audit", namespace="team-a", port=80)),)
    assert small.ignored_filters == ("RequestHeaderModifier",)
    assert rule.mirrors == (
        Mirror(
            backend=BackendRef(name="llama-chat-canary", namespace="team-a", port=80),
            numerator=100,
            denominator=100,
        ),
        Mirror(
            backend=BackendRef(name="sampler", namespace="team-a", port=80), numerator=1, denominator=1000
        ),
    )
    assert rule.ignored_filters == ("ResponseHeaderModifier",)
    assert route.rules[1] == Rule(backends=(), mirrors=(), ignored_filters=("RequestRedirect",))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, (100, 100), id="neither-means-100-percent"),
        pytest.param({"percent": 0}, (0, 100), id="percent-0"),
        pytest.param({"percent": 25}, (25, 100), id="percent-25"),
        pytest.param({"fraction": {"numerator": 3}}, (3, 100), id="fraction-denominator-defaults-100"),
        pytest.param({"fraction": {"numerator": 1, "denominator": 8}}, (1, 8), id="fraction"),
    ],
)
def test_parse_mirror_share(spec, expected):
    obj = copy.deepcopy(HTTPROUTE)
    obj["spec"]["rules"][0]["filters"] = [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80}, **spec}}
    ]
    (mirror,) = router.parse_httproute(obj).rules[0].mirrors
    assert (mirror.numerator, mirror.denominator) == expected


def test_parse_mirror_with_percent_and_fraction_is_rejected():
    obj = copy.deepcopy(HTTPROUTE)
    obj["spec"]["rules"][0]["filters"] = [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"name": "m", "port": 80},
                "percent": 5,
                "fraction": {"numerator": 1},
            },
        }
    ]
    with pytest.raises(ValueError, match="only one of percent or fraction"):
        router.parse_httproute(obj)


def test_parse_endpointslice_defaults_conditions_and_keeps_pod_names():
    ref, endpoints = router.parse_endpointslice(ENDPOINTSLICE)
    assert ref == ServiceRef("team-a", "llama-chat-stable")
    ports = (("http", 8000),)
    assert endpoints == (
        Endpoint("10.244.1.7", True, True, False, "llama-chat-6a1098e4-abcde", ports),
        Endpoint("10.244.1.8", False, True, True, "llama-chat-6a1098e4-fghij", ports),
        Endpoint("10.244.1.9", False, False, False, "llama-chat-6a1098e4-klmno", ports),
        Endpoint("10.244.1.10", True, True, False, None, ports),  # nil ready = ready, nil terminating = false
    )


def test_parse_endpointslice_without_service_label_belongs_to_no_service():
    obj = copy.deepcopy(ENDPOINTSLICE)
    del obj["metadata"]["labels"]["kubernetes.io/service-name"]
    assert router.parse_endpointslice(obj) is None


def test_build_state_merges_slices_per_family_and_knows_which_services_exist():
    second = copy.deepcopy(ENDPOINTSLICE)
    second["metadata"]["name"] = "llama-chat-stable-q9z8w"
    second["endpoints"] = [{"addresses": ["10.244.2.3"]}, {"addresses": ["10.244.1.7"]}]  # 1.7 moved here
    ipv6 = copy.deepcopy(ENDPOINTSLICE)
    ipv6["addressType"] = "IPv6"
    ipv6["endpoints"] = [{"addresses": ["fd00::7"]}]
    empty = {
        "metadata": {"namespace": "team-a", "labels": {"kubernetes.io/service-name": "llama-chat-canary"}},
        "addressType": "IPv4",
        "endpoints": None,
    }
    grant = {
        "kind": "ReferenceGrant",
        "metadata": {"name": "from-team-a", "namespace": "team-b"},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "team-a"}],
            "to": [{"group": "", "kind": "Service", "name": "llama-small"}, {"group": "", "kind": "Secret"}],
        },
    }
    state = router.build_state(
        endpointslices=[ENDPOINTSLICE, second, ipv6, empty], httproutes=[HTTPROUTE], referencegrants=[grant]
    )
    stable = state.services[ServiceRef("team-a", "llama-chat-stable")]
    assert [e.address for e in stable] == [
        "10.244.1.10",
        "10.244.1.7",
        "10.244.1.8",
        "10.244.1.9",
        "10.244.2.3",
    ]
    assert state.services[ServiceRef("team-a", "llama-chat-canary")] == ()  # exists, no endpoints
    assert set(state.services) == {
        ServiceRef("team-a", "llama-chat-stable"),
        ServiceRef("team-a", "llama-chat-canary"),
    }
    assert RouteRef("team-a", "llama-chat") in state.routes
    assert state.grants == (router.Grant(from_namespace="team-a", to_namespace="team-b", name="llama-small"),)
    # With the Service list given, it alone says what exists (a selector-less Service has no slices).
    services = [
        {"metadata": {"name": "llama-chat-stable", "namespace": "team-a"}},
        {"metadata": {"name": "ext"}},
    ]
    state = router.build_state(endpointslices=[ENDPOINTSLICE, empty], services=services)
    assert set(state.services) == {ServiceRef("team-a", "llama-chat-stable"), ServiceRef("default", "ext")}
    assert state.services[ServiceRef("default", "ext")] == ()


def test_build_state_from_json_delivers_end_to_end():
    state = router.build_state(endpointslices=[ENDPOINTSLICE], httproutes=[HTTPROUTE])
    d = router.deliver(state, ServiceTarget("team-a", "llama-chat-stable"), random.Random(1))
    assert d.reason is Reason.SERVED and d.endpoint.address in {"10.244.1.7", "10.244.1.10"}


# --- Weights (HTTPRoute rule) -------------------------------------------------------------------


def test_weights_10_90_split_within_4_sd():
    rule = Rule(backends=(backend("canary", 10), backend("stable", 90)))
    counts = Counter(
        d.service.name for d in draws(state_with(rule, {"canary": CANARY, "stable": STABLE}), ROUTE)
    )
    assert counts["canary"] + counts["stable"] == N
    assert within_4_sd(counts["canary"], N, 0.1), counts  # 1000 ± 120


def test_weights_are_proportions_not_percentages():
    rule = Rule(backends=(backend("canary", 1), backend("stable", 3)))
    counts = Counter(
        d.service.name for d in draws(state_with(rule, {"canary": CANARY, "stable": STABLE}), ROUTE)
    )
    assert within_4_sd(counts["canary"], N, 0.25), counts


def test_weight_0_backend_is_never_chosen():
    rule = Rule(backends=(backend("canary", 0), backend("stable", 1), backend("other", 1)))
    counts = Counter(
        d.service.name
        for d in draws(state_with(rule, {"canary": CANARY, "stable": STABLE, "other": CANARY}), ROUTE)
    )
    assert counts["canary"] == 0 and counts["stable"] + counts["other"] == N


@pytest.mark.parametrize(
    "weights", [pytest.param((0,), id="single-zero"), pytest.param((0, 0), id="two-zeros")]
)
def test_all_weights_zero_answer_500(weights):
    rule = Rule(backends=tuple(backend(f"b{i}", w) for i, w in enumerate(weights)))
    results = draws(state_with(rule, {f"b{i}": STABLE for i in range(len(weights))}), ROUTE, n=200)
    assert {(d.status, d.reason, d.endpoint) for d in results} == {(500, Reason.ALL_WEIGHTS_ZERO, None)}


def test_missing_service_gets_its_share_as_500_and_the_rest_is_served():
    rule = Rule(backends=(backend("stable", 1), backend("gone", 1)))
    results = draws(state_with(rule, {"stable": STABLE}), ROUTE)
    failed = [d for d in results if d.status == 500]
    assert {d.reason for d in failed} == {Reason.BACKEND_NOT_FOUND}
    assert within_4_sd(len(failed), N, 0.5), len(failed)
    served = [d for d in results if d.served]
    assert len(served) + len(failed) == N  # the valid backend's share is not redistributed
    assert {d.service for d in served} == {svc("stable")}


@pytest.mark.parametrize(
    ("ref", "grants", "reason"),
    [
        pytest.param(backend("stable"), (), None, id="valid"),
        pytest.param(
            backend("stable", kind="ServiceImport", group="multicluster.x-k8s.io"),
            (),
            Reason.INVALID_KIND,
            id="other-kind",
        ),
        pytest.param(backend("stable", group="example.com"), (), Reason.INVALID_KIND, id="other-group"),
        pytest.param(backend("gone"), (), Reason.BACKEND_NOT_FOUND, id="missing-service"),
        pytest.param(backend("stable", port=None), (), Reason.BACKEND_NOT_FOUND, id="service-without-port"),
        pytest.param(
            backend("small", namespace="b"), (), Reason.REF_NOT_PERMITTED, id="cross-namespace-no-grant"
        ),
        pytest.param(
            backend("small", namespace="b"),
            (router.Grant(NS, "b", "other"),),
            Reason.REF_NOT_PERMITTED,
            id="grant-for-another-name",
        ),
        pytest.param(
            backend("small", namespace="b"), (router.Grant(NS, "b", "small"),), None, id="granted-by-name"
        ),
        pytest.param(
            backend("small", namespace="b"), (router.Grant(NS, "b"),), None, id="granted-all-services"
        ),
    ],
)
def test_invalid_backend_refs_answer_500(ref, grants, reason):
    state = RoutingState(
        services={svc("stable"): STABLE, svc("small", "b"): CANARY},
        routes={RouteRef(NS, "r"): Route(NS, "r", (Rule(backends=(ref,)),))},
        grants=grants,
    )
    d = router.deliver(state, ROUTE, random.Random(3))
    if reason is None:
        assert d.reason is Reason.SERVED and d.status is None
    else:
        assert (d.reason, d.status, d.endpoint) == (reason, 500, None)


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        pytest.param((), (Reason.NO_READY_ENDPOINTS, 503), id="no-endpoints"),
        pytest.param(
            (
                ep("10.0.0.1", ready=False, serving=True, terminating=True),
                ep("10.0.0.2", ready=False, serving=False),
            ),
            (Reason.NO_READY_ENDPOINTS, 503),
            id="only-terminating-and-not-ready",
        ),
        pytest.param((ep("10.0.0.1"),), (Reason.SERVED, None), id="one-ready"),
    ],
)
def test_route_backend_without_ready_endpoint_answers_503(endpoints, expected):
    d = router.deliver(
        state_with(Rule(backends=(backend("stable"),)), {"stable": endpoints}), ROUTE, random.Random(5)
    )
    assert (d.reason, d.status) == expected
    assert d.service == svc("stable")


def test_route_or_rule_missing_and_rule_without_backends_answer_404():
    state = state_with(Rule(backends=()), {})
    assert router.deliver(state, RouteTarget(NS, "nope"), random.Random(1)).status == 404
    assert (
        router.deliver(state, RouteTarget(NS, "r", rule=1), random.Random(1)).reason is Reason.NO_SUCH_ROUTE
    )
    assert router.deliver(state, ROUTE, random.Random(1)).reason is Reason.NO_BACKENDS


# --- Mirrors ------------------------------------------------------------------------------------


def test_mirror_copies_go_to_the_mirror_and_the_client_answer_comes_from_the_primary():
    rule = Rule(backends=(backend("stable"),), mirrors=(Mirror(backend("canary")),))
    canary = (ep("10.0.1.1"), ep("10.0.1.2"), ep("10.0.1.3", ready=False))
    results = draws(state_with(rule, {"stable": STABLE, "canary": canary}), ROUTE, n=3000)
    assert all(d.served and d.service == svc("stable") and d.endpoint in STABLE for d in results)
    assert all(len(d.mirrors) == 1 for d in results)  # percent 100: every request, one endpoint each
    targets = Counter(d.mirrors[0].endpoint.address for d in results)
    assert set(targets) == {"10.0.1.1", "10.0.1.2"}  # Ready mirror endpoints only
    assert {d.mirrors[0].service for d in results} == {svc("canary")}


@pytest.mark.parametrize(
    ("numerator", "denominator"),
    [
        pytest.param(0, 100, id="percent-0"),
        pytest.param(25, 100, id="percent-25"),
        pytest.param(1, 8, id="fraction-1/8"),
    ],
)
def test_mirror_share_within_4_sd(numerator, denominator):
    rule = Rule(backends=(backend("stable"),), mirrors=(Mirror(backend("canary"), numerator, denominator),))
    results = draws(state_with(rule, {"stable": STABLE, "canary": CANARY}), ROUTE)
    copies = sum(len(d.mirrors) for d in results)
    if numerator == 0:
        assert copies == 0
    else:
        assert within_4_sd(copies, N, numerator / denominator), copies
    assert all(d.served for d in results)


@pytest.mark.parametrize(
    "services",
    [
        pytest.param({"stable": STABLE, "canary": ()}, id="mirror-without-endpoints"),
        pytest.param(
            {"stable": STABLE, "canary": (ep("10.0.1.1", ready=False, terminating=True),)},
            id="mirror-not-ready",
        ),
        pytest.param({"stable": STABLE}, id="mirror-service-missing"),
    ],
)
def test_mirror_without_target_makes_no_copy_and_leaves_the_primary_alone(services):
    with_mirror = state_with(
        Rule(backends=(backend("stable"),), mirrors=(Mirror(backend("canary")),)), services
    )
    without = state_with(Rule(backends=(backend("stable"),)), services)
    # Request by request, from the same random state: the client's answer is the same with the mirror.
    a = [router.deliver(with_mirror, ROUTE, random.Random(i)) for i in range(500)]
    b = [router.deliver(without, ROUTE, random.Random(i)) for i in range(500)]
    assert all(d.mirrors == () for d in a)
    assert [(d.endpoint, d.status) for d in a] == [(d.endpoint, d.status) for d in b]
    assert {d.endpoint for d in a} == set(STABLE)


def test_a_working_mirror_never_changes_the_client_answer():
    services = {"stable": STABLE, "canary": CANARY}
    with_mirror = state_with(
        Rule(backends=(backend("stable"),), mirrors=(Mirror(backend("canary"), 50),)), services
    )
    without = state_with(Rule(backends=(backend("stable"),)), services)
    a = [router.deliver(with_mirror, ROUTE, random.Random(i)) for i in range(500)]
    b = [router.deliver(without, ROUTE, random.Random(i)) for i in range(500)]
    assert [d.endpoint for d in a] == [d.endpoint for d in b]
    assert 0 < sum(len(d.mirrors) for d in a) < 500


def test_mirror_still_copies_when_the_primary_fails():
    rule = Rule(backends=(backend("stable"),), mirrors=(Mirror(backend("canary")),))
    d = router.deliver(state_with(rule, {"stable": (), "canary": CANARY}), ROUTE, random.Random(2))
    assert (d.status, d.mirrors) == (503, (router.MirrorCopy(svc("canary"), CANARY[0]),))


def test_backend_level_mirror_applies_only_when_that_backend_is_chosen():
    rule = Rule(backends=(backend("stable", 1, mirrors=(Mirror(backend("canary")),)), backend("other", 1)))
    results = draws(state_with(rule, {"stable": STABLE, "other": STABLE, "canary": CANARY}), ROUTE, n=2000)
    assert all(bool(d.mirrors) == (d.service == svc("stable")) for d in results)


def test_ignored_filters_are_reported():
    rule = Rule(
        backends=(backend("stable", ignored_filters=("URLRewrite",)),),
        ignored_filters=("RequestHeaderModifier",),
    )
    d = router.deliver(state_with(rule, {"stable": STABLE}), ROUTE, random.Random(1))
    assert d.served and d.ignored_filters == ("RequestHeaderModifier", "URLRewrite")
    assert {
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestRedirect",
        "URLRewrite",
    } <= router.IGNORED_FILTERS


# --- Endpoints (kube-proxy and the gateway) -----------------------------------------------------

MIXED = (
    ep("10.0.0.1"),
    ep("10.0.0.2", ready=False, serving=True, terminating=True),
    ep("10.0.0.3", ready=False, serving=False, terminating=False),
    ep("10.0.0.4"),
    ep("10.0.0.5", ready=False, serving=False, terminating=True),
)


@pytest.mark.parametrize(
    "target",
    [pytest.param(ServiceTarget(NS, "stable"), id="service"), pytest.param(ROUTE, id="httproute")],
)
def test_only_ready_endpoints_are_chosen(target):
    state = state_with(Rule(backends=(backend("stable"),)), {"stable": MIXED})
    assert {d.endpoint.address for d in draws(state, target, n=2000)} == {"10.0.0.1", "10.0.0.4"}


@pytest.mark.parametrize(
    "target",
    [pytest.param(ServiceTarget(NS, "stable"), id="service"), pytest.param(ROUTE, id="httproute")],
)
def test_uniform_choice_across_3_endpoints_within_4_sd(target):
    three = (ep("10.0.0.1"), ep("10.0.0.2"), ep("10.0.0.3"))
    state = state_with(Rule(backends=(backend("stable"),)), {"stable": three})
    counts = Counter(d.endpoint.address for d in draws(state, target))
    assert len(counts) == 3 and all(within_4_sd(c, N, 1 / 3) for c in counts.values()), counts


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        pytest.param((), (Reason.NO_ENDPOINTS, set()), id="no-endpoints-refused"),
        pytest.param(
            (ep("10.0.0.3", ready=False, serving=False),),
            (Reason.NO_ENDPOINTS, set()),
            id="not-ready-only-refused",
        ),
        pytest.param(
            MIXED[1:3]
            + MIXED[4:],  # no Ready endpoint: kube-proxy falls back to serving-and-terminating ones
            (Reason.SERVED, {"10.0.0.2"}),
            id="terminating-fallback",
        ),
    ],
)
def test_replicas_router_without_ready_endpoints(endpoints, expected):
    results = draws(RoutingState(services={svc("stable"): endpoints}), ServiceTarget(NS, "stable"), n=300)
    assert {d.reason for d in results} == {expected[0]}
    assert {d.endpoint.address for d in results if d.endpoint} == expected[1]
    assert all(d.refused == (expected[0] is Reason.NO_ENDPOINTS) and d.status is None for d in results)


def test_replicas_router_missing_service_is_refused():
    d = router.deliver(RoutingState(), ServiceTarget(NS, "nope"), random.Random(1))
    assert (d.reason, d.refused, d.status, d.endpoint) == (Reason.NO_SUCH_SERVICE, True, None, None)


def test_same_seed_same_deliveries():
    rule = Rule(
        backends=(backend("canary", 10), backend("stable", 90)), mirrors=(Mirror(backend("canary"), 50),)
    )
    state = state_with(rule, {"canary": CANARY, "stable": STABLE})
    assert draws(state, ROUTE, n=500, seed=9) == draws(state, ROUTE, n=500, seed=9)
    assert draws(state, ROUTE, n=500, seed=9) != draws(state, ROUTE, n=500, seed=10)


def test_the_model_follows_the_pinned_gateway_api_release():
    """The spec text quoted here is that of the Gateway API the local cluster installs."""
    from slogate.dev.versions import versions

    assert router.GATEWAY_API_VERSION == versions()["GATEWAY_API_VERSION"]
