"""A model of how a request reaches a pod on a real cluster: kube-proxy and Gateway API. Pure.

The local cluster has no data plane: kwok's pods run no containers, so nothing carries a request
from a Service or an HTTPRoute to a pod. This module decides, for one request, *where it would have
gone*: which endpoint answers the client, which endpoints receive mirrored copies, or which error the
client sees instead. It does no I/O, starts no thread and reads no clock; randomness comes in as a
``random.Random``, so every decision is reproducible. Consumers: the local cluster's load generator
(issue 17, later steps), which reads HTTPRoutes, ReferenceGrants, Services and EndpointSlices from
the API server, builds a :class:`RoutingState` with :func:`build_state` and calls :func:`deliver`
per request.

It is split in two halves on purpose: *parsing* (``parse_*``/``build_state``: API-server JSON to
frozen dataclasses, defaults applied the way the CRDs default them) and *decisions*
(``choose_endpoint``, ``choose_backend``, ``deliver``), so each half is tested on its own.

Semantics and their sources (quoted where they are used):

- a plain Service (the ``replicas`` router): kube-proxy, Kubernetes v1.37.1
  (``pkg/proxy/iptables/proxier.go``, ``pkg/proxy/nftables/proxier.go``, ``pkg/proxy/topology.go``);
- an HTTPRoute rule (the ``gatewayAPI`` router): Gateway API v1.6.3, ``apis/v1/httproute_types.go``,
  ``apis/v1/shared_types.go``, ``apis/v1/object_reference_types.go``,
  ``apis/v1/referencegrant_types.go`` (the version pinned in ``hack/versions.env``);
- an InferencePool backendRef (the ``inferencePool`` router): Gateway API Inference Extension v1.6.2,
  ``api/v1/inferencepool_types.go`` (pool members are the pods its ``selector.matchLabels`` selects in
  its namespace, addressed as ``podIP:targetPort``). The endpoint picker is *not* modelled: with or
  without one the gateway's choice is uniform over the pool's Ready pods, except that a pool whose
  ``endpointPickerRef`` names a Service that does not exist drops the request (503) with
  ``failureMode: FailClose`` and picks uniformly with ``FailOpen``. The share *between* pools, which
  rollouts steer, follows the route's weights exactly as for Services.

Not modelled: request matching (``matches``, hostnames, parentRefs, listeners; the caller names
the rule, and the operator writes one rule matching everything), route status (``Accepted``),
topology-aware routing, ``internalTrafficPolicy``/``externalTrafficPolicy``, session affinity,
timeouts and retries, and the filters in :data:`IGNORED_FILTERS`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

GATEWAY_API_VERSION = "v1.6.3"
"""The Gateway API release whose text this model follows (``GATEWAY_API_VERSION`` in hack/versions.env)."""

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""The label by which an EndpointSlice names its Service."""

GATEWAY_GROUP = "gateway.networking.k8s.io"
INFERENCE_GROUP = "inference.networking.k8s.io"
"""The InferencePool's API group (GIE v1.6.2)."""

IGNORED_FILTERS = frozenset(
    {
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestRedirect",
        "URLRewrite",
        "CORS",
        "ExternalAuth",
        "ExtensionRef",
    }
)
"""HTTPRoute filter types the model parses but does not apply; a delivery that passed one lists it in
:attr:`Delivery.ignored_filters`. Header modifiers, URL rewrites and CORS change the request or the
response but not where it goes. ``RequestRedirect`` *would* change the outcome (the gateway answers
3xx itself and forwards nothing); ``ExternalAuth`` can deny; ``ExtensionRef`` is
implementation-specific. The operator writes none of them (``core.traffic.build_httproute``), so a
delivery that lists one of these is a warning that the model is not faithful for that route."""


class ServiceRef(NamedTuple):
    """A Service by namespace and name."""

    namespace: str
    name: str


RouteRef = ServiceRef
"""An HTTPRoute by namespace and name (the same pair)."""


class Reason(enum.StrEnum):
    """Why a delivery ended the way it did."""

    SERVED = "Served"
    """An endpoint received the request and answers the client."""
    NO_ENDPOINTS = "NoEndpoints"
    """A plain Service with no usable endpoint: kube-proxy rejects the connection."""
    NO_SUCH_SERVICE = "NoSuchService"
    """A plain Service that does not exist: nothing answers at its name."""
    PICKER_UNAVAILABLE = "EndpointPickerUnavailable"
    """The chosen InferencePool's endpoint picker does not exist and its ``failureMode`` is
    ``FailClose``: "the parent should drop the request" (GIE v1.6.2); the model answers 503."""
    NO_READY_ENDPOINTS = "NoReadyEndpoints"
    """The chosen backendRef's Service has no Ready endpoint: the gateway answers 503."""
    INVALID_KIND = "InvalidKind"
    """The chosen backendRef is not a core ``Service``: 500 (route condition reason ``InvalidKind``)."""
    BACKEND_NOT_FOUND = "BackendNotFound"
    """The chosen backendRef's Service does not exist (or has no port): 500."""
    REF_NOT_PERMITTED = "RefNotPermitted"
    """The chosen backendRef is in another namespace and no ReferenceGrant allows it: 500."""
    ALL_WEIGHTS_ZERO = "AllWeightsZero"
    """Every backendRef of the rule has weight 0: 500 (a model choice, see :func:`choose_backend`)."""
    NO_BACKENDS = "NoBackends"
    """The rule has no backendRefs at all: 404 (see :func:`deliver_route`)."""
    NO_SUCH_ROUTE = "NoSuchRoute"
    """The HTTPRoute or the rule index does not exist: 404, as a gateway answers unmatched requests."""


# ---------------------------------------------------------------------------------------------
# Data: the routing state as read from the API server.


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of an EndpointSlice, with the slice's conditions already defaulted.

    ``discovery.k8s.io/v1`` EndpointConditions: "ready … A nil value should be interpreted as
    "true"", "serving … A nil value should be interpreted as "true"", "terminating … A nil value
    should be interpreted as "false"" (k8s.io/api v0.37.1 ``discovery/v1/types.go``; kube-proxy's
    ``endpointslicecache.go`` reads them the same way).
    """

    address: str
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    pod: str | None = None
    """``targetRef.name`` when the target is a Pod: how the wiring finds the pod's simulator."""
    ports: tuple[tuple[str, int], ...] = ()
    """The slice's ``ports`` as ``(name, port)`` pairs (target ports, not Service ports)."""


@dataclass(frozen=True)
class BackendRef:
    """A backendRef (rule level) or a RequestMirror's backendRef, defaults applied as the CRD does:
    ``group`` "" (core), ``kind`` ``Service``, ``namespace`` the route's, ``weight`` 1."""

    name: str
    namespace: str
    port: int | None = None
    weight: int = 1
    kind: str = "Service"
    group: str = ""
    mirrors: tuple[Mirror, ...] = ()
    """RequestMirror filters on this backendRef (``HTTPBackendRef.filters``), applied when it is chosen."""
    ignored_filters: tuple[str, ...] = ()

    @property
    def service(self) -> ServiceRef:
        return ServiceRef(self.namespace, self.name)


@dataclass(frozen=True)
class Mirror:
    """A RequestMirror filter: copy ``numerator/denominator`` of the requests to ``backend``.

    Gateway API v1.6.3 ``HTTPRequestMirrorFilter``: "Percent represents the percentage of requests
    that should be mirrored to BackendRef. Its minimum value is 0 (indicating 0% of requests) and its
    maximum value is 100 (indicating 100% of requests). Only one of Fraction or Percent may be
    specified. If neither field is specified, 100% of requests will be mirrored." ``Fraction``'s
    ``denominator`` defaults to 100 (``shared_types.go``).
    """

    backend: BackendRef
    numerator: int = 100
    denominator: int = 100


@dataclass(frozen=True)
class Rule:
    """One HTTPRoute rule: its backendRefs, its RequestMirror filters, and the filters it ignores."""

    backends: tuple[BackendRef, ...] = ()
    mirrors: tuple[Mirror, ...] = ()
    ignored_filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """An HTTPRoute: namespace, name and rules in order."""

    namespace: str
    name: str
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Grant:
    """One (from, to) pair of a ReferenceGrant: HTTPRoutes in ``from_namespace`` may reference the
    Service ``name`` (or any Service when ``None``) in ``to_namespace``."""

    from_namespace: str
    to_namespace: str
    name: str | None = None


@dataclass(frozen=True)
class Pool:
    """An InferencePool: the Ready-or-not pods its selector selects (sorted by address), and its
    endpoint picker (``None`` without ``endpointPickerRef``) with its ``failureMode``."""

    endpoints: tuple[Endpoint, ...] = ()
    picker: str | None = None
    fail_open: bool = False


@dataclass(frozen=True)
class RoutingState:
    """Everything a delivery depends on, frozen. ``services`` holds every Service that exists, with its
    endpoints sorted by address (an empty tuple: the Service exists and has none), so a seeded draw
    does not depend on the order the API server listed the slices in."""

    services: Mapping[ServiceRef, tuple[Endpoint, ...]] = field(default_factory=dict)
    pools: Mapping[ServiceRef, Pool] = field(default_factory=dict)
    """InferencePools by (namespace, name), with their member pods as endpoints."""
    routes: Mapping[RouteRef, Route] = field(default_factory=dict)
    """HTTPRoutes by (namespace, name)."""
    grants: tuple[Grant, ...] = ()


# ---------------------------------------------------------------------------------------------
# Parsing: API-server JSON → the data above. Pure.


def parse_endpointslice(obj: Mapping[str, Any]) -> tuple[ServiceRef, tuple[Endpoint, ...]] | None:
    """The Service an EndpointSlice belongs to (label ``kubernetes.io/service-name``) and its
    endpoints, one :class:`Endpoint` per address, conditions defaulted. ``None`` for a slice without
    that label (it belongs to no Service). Pure; consumed by :func:`build_state`."""
    meta = obj.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service:
        return None
    ports = tuple(
        (p.get("name") or "", int(p["port"])) for p in obj.get("ports") or () if p.get("port") is not None
    )
    endpoints: list[Endpoint] = []
    for ep in obj.get("endpoints") or ():
        cond = ep.get("conditions") or {}
        target = ep.get("targetRef") or {}
        pod = target.get("name") if target.get("kind") == "Pod" else None
        for address in ep.get("addresses") or ():
            endpoints.append(
                Endpoint(
                    address=address,
                    ready=cond.get("ready") is not False,
                    serving=cond.get("serving") is not False,
                    terminating=cond.get("terminating") is True,
                    pod=pod,
                    ports=ports,
                )
            )
    return ServiceRef(meta.get("namespace") or "default", service), tuple(endpoints)


def _parse_mirror(spec: Mapping[str, Any], namespace: str) -> Mirror:
    ref = spec.get("backendRef") or {}
    percent, fraction = spec.get("percent"), spec.get("fraction")
    if percent is not None and fraction is not None:
        # The CRD's CEL rule rejects this: "Only one of percent or fraction may be specified".
        raise ValueError("requestMirror: only one of percent or fraction may be specified")
    if percent is not None:
        numerator, denominator = int(percent), 100
    elif fraction is not None:
        numerator, denominator = int(fraction["numerator"]), int(fraction.get("denominator", 100))
    else:
        numerator, denominator = 100, 100
    return Mirror(backend=_parse_backend_ref(ref, namespace), numerator=numerator, denominator=denominator)


def _parse_filters(
    filters: Iterable[Mapping[str, Any]], namespace: str
) -> tuple[tuple[Mirror, ...], tuple[str, ...]]:
    mirrors: list[Mirror] = []
    ignored: list[str] = []
    for f in filters:
        kind = f.get("type", "")
        if kind == "RequestMirror":
            mirrors.append(_parse_mirror(f.get("requestMirror") or {}, namespace))
        else:
            ignored.append(kind)
    return tuple(mirrors), tuple(ignored)


def _parse_backend_ref(ref: Mapping[str, Any], namespace: str) -> BackendRef:
    mirrors, ignored = _parse_filters(ref.get("filters") or (), namespace)
    port = ref.get("port")
    return BackendRef(
        name=ref["name"],
        namespace=ref.get("namespace") or namespace,
        port=int(port) if port is not None else None,
        weight=int(ref.get("weight", 1)),
        kind=ref.get("kind") or "Service",
        group=ref.get("group") or "",
        mirrors=mirrors,
        ignored_filters=ignored,
    )


def parse_httproute(obj: Mapping[str, Any]) -> Route:
    """An HTTPRoute's rules as :class:`Rule` values, with the CRD's defaults applied (a backendRef's
    ``weight`` 1, ``kind`` ``Service``, ``group`` core, ``namespace`` the route's). Raises
    ``ValueError`` for a RequestMirror with both ``percent`` and ``fraction``, which the API server
    rejects. Pure; consumed by :func:`build_state`."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    rules: list[Rule] = []
    for raw in (obj.get("spec") or {}).get("rules") or ():
        mirrors, ignored = _parse_filters(raw.get("filters") or (), namespace)
        backends = tuple(_parse_backend_ref(ref, namespace) for ref in raw.get("backendRefs") or ())
        rules.append(Rule(backends=backends, mirrors=mirrors, ignored_filters=ignored))
    return Route(namespace=namespace, name=meta["name"], rules=tuple(rules))


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def parse_inferencepool(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[ServiceRef, Pool]:
    """An InferencePool and its members: the pods of its namespace whose labels hold every
    ``selector.matchLabels`` pair ("The matching logic is an AND operation on all entries"; "cross-
    namespace selection is not supported", GIE v1.6.2), with a pod IP, as endpoints on the first
    ``targetPorts`` number; Ready from the pod's Ready condition, terminating while it is being
    deleted. ``endpointPickerRef.failureMode`` defaults to ``FailClose`` as the CRD does. Pure."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    spec = obj.get("spec") or {}
    wanted = ((spec.get("selector") or {}).get("matchLabels")) or {}
    ports = spec.get("targetPorts") or []
    port = int(ports[0]["number"]) if ports else 0
    members: dict[str, Endpoint] = {}
    for pod in pods if wanted else ():  # an empty selector selects nothing
        pmeta = pod.get("metadata") or {}
        if (pmeta.get("namespace") or "default") != namespace:
            continue
        labels = pmeta.get("labels") or {}
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or any(labels.get(k) != v for k, v in wanted.items()):
            continue
        deleting = pmeta.get("deletionTimestamp") is not None
        ready = _pod_ready(pod) and not deleting
        members[ip] = Endpoint(
            address=ip,
            ready=ready,
            serving=ready,
            terminating=deleting,
            pod=pmeta.get("name"),
            ports=(("", port),),
        )
    ref = spec.get("endpointPickerRef")
    pool = Pool(
        endpoints=tuple(sorted(members.values(), key=lambda e: e.address)),
        picker=ref.get("name") if ref else None,
        fail_open=bool(ref) and ref.get("failureMode", "FailClose") == "FailOpen",
    )
    return ServiceRef(namespace, meta["name"]), pool


def parse_referencegrant(obj: Mapping[str, Any]) -> tuple[Grant, ...]:
    """The (HTTPRoute namespace → Service) pairs a ReferenceGrant allows: its ``from`` entries of
    group ``gateway.networking.k8s.io`` kind ``HTTPRoute`` crossed with its ``to`` entries of the core
    group kind ``Service`` ("entries MUST be combined using OR", ``referencegrant_types.go``). Pure."""
    meta = obj.get("metadata") or {}
    to_ns = meta.get("namespace") or "default"
    spec = obj.get("spec") or {}
    froms = [
        f["namespace"]
        for f in spec.get("from") or ()
        if f.get("group") == GATEWAY_GROUP and f.get("kind") == "HTTPRoute"
    ]
    tos = [
        t.get("name")
        for t in spec.get("to") or ()
        if (t.get("group") or "") == "" and t.get("kind") == "Service"
    ]
    return tuple(Grant(from_namespace=f, to_namespace=to_ns, name=t or None) for f in froms for t in tos)


def build_state(
    *,
    endpointslices: Iterable[Mapping[str, Any]],
    httproutes: Iterable[Mapping[str, Any]] = (),
    services: Iterable[Mapping[str, Any]] | None = None,
    referencegrants: Iterable[Mapping[str, Any]] = (),
    address_type: str = "IPv4",
    inferencepools: Iterable[Mapping[str, Any]] = (),
    pods: Iterable[Mapping[str, Any]] = (),
) -> RoutingState:
    """The :class:`RoutingState` for these API objects (lists' ``items``, as the API server returns
    them). Pure; consumed by the local cluster's load generator.

    Which Services exist: the given ``services`` when passed; otherwise every Service named by an
    EndpointSlice (the EndpointSlice controller writes a slice, possibly with no endpoints, for every
    Service with a selector, so a selector Service without any slice does not exist).

    Only slices of ``address_type`` count (kube-proxy programs one IP family per proxier, and a client
    connects over one; counting both families would give a dual-stack pod two draws). An address that
    appears in two slices (possible while the controller moves it) counts once, the last one read.
    """
    by_service: dict[ServiceRef, dict[str, Endpoint]] = {}
    for obj in endpointslices:
        if obj.get("addressType", "IPv4") != address_type:
            continue
        parsed = parse_endpointslice(obj)
        if parsed is None:
            continue
        ref, endpoints = parsed
        slot = by_service.setdefault(ref, {})
        for ep in endpoints:
            slot[ep.address] = ep
    pod_list = list(pods)
    if services is not None:
        existing = {
            ServiceRef((s.get("metadata") or {}).get("namespace") or "default", s["metadata"]["name"])
            for s in services
        }
    else:
        existing = set(by_service)
    return RoutingState(
        services={
            ref: tuple(sorted(by_service.get(ref, {}).values(), key=lambda e: e.address))
            for ref in sorted(existing)
        },
        pools=dict(parse_inferencepool(p, pod_list) for p in inferencepools),
        routes={RouteRef(r.namespace, r.name): r for r in map(parse_httproute, httproutes)},
        grants=tuple(g for obj in referencegrants for g in parse_referencegrant(obj)),
    )


# ---------------------------------------------------------------------------------------------
# Decisions. Pure: every one takes the state and a random source and returns a value.


@dataclass(frozen=True)
class MirrorCopy:
    """A copy of the request sent to ``endpoint`` of ``service``; its response is discarded."""

    service: ServiceRef
    endpoint: Endpoint


@dataclass(frozen=True)
class Delivery:
    """Where one request went. Exactly one of: ``endpoint`` (it answers the client), ``status`` (the
    gateway answered with this HTTP status and no endpoint saw the request) or ``refused`` (no HTTP
    at all: the connection was refused). ``mirrors`` never affect the client's answer."""

    reason: Reason
    service: ServiceRef | None = None
    """The Service chosen for the primary request (``None`` when none was chosen)."""
    endpoint: Endpoint | None = None
    status: int | None = None
    refused: bool = False
    mirrors: tuple[MirrorCopy, ...] = ()
    ignored_filters: tuple[str, ...] = ()

    @property
    def served(self) -> bool:
        return self.endpoint is not None


def usable_endpoints(endpoints: Iterable[Endpoint], *, terminating_fallback: bool) -> tuple[Endpoint, ...]:
    """The endpoints a request may go to: the Ready ones; when there are none and
    ``terminating_fallback`` is set, the ones that are serving *and* terminating.

    kube-proxy ``pkg/proxy/topology.go::CategorizeEndpoints`` (v1.37.1) keeps ``ep.IsReady()``
    endpoints and then: "If we didn't get any endpoints, try again using terminating endpoints"
    (``ep.IsServing() && ep.IsTerminating()``). A gateway has no such rule in the spec: it uses Ready
    endpoints only (see :func:`deliver_route`). Pure.
    """
    endpoints = tuple(endpoints)
    ready = tuple(e for e in endpoints if e.ready)
    if ready or not terminating_fallback:
        return ready
    return tuple(e for e in endpoints if e.serving and e.terminating)


def choose_endpoint(endpoints: tuple[Endpoint, ...], rng: random.Random) -> Endpoint | None:
    """One of ``endpoints`` chosen uniformly, ``None`` when there is none. Pure but for ``rng``.

    This is kube-proxy's choice. In iptables mode (v1.37.1 ``pkg/proxy/iptables/proxier.go``) the
    Service chain holds one rule per endpoint, rule ``i`` of ``n`` matching with
    ``-m statistic --mode random --probability 1/(n-i)`` ("Each rule is a probabilistic match" …
    "The final (or only if n == 1) rule is a guaranteed match"), which makes every endpoint equally
    likely; nftables mode (``pkg/proxy/nftables/proxier.go``) does it in one step with
    ``numgen random mod n``. Gateway implementations balance a Service's endpoints in their own way
    (round robin, least request); the spec leaves it open, and uniform is the same on average.
    """
    if not endpoints:
        return None
    return endpoints[rng.randrange(len(endpoints))]


def deliver_service(state: RoutingState, service: ServiceRef, rng: random.Random) -> Delivery:
    """A request to a plain Service (the ``replicas`` router): one usable endpoint, uniformly
    (:func:`choose_endpoint`, Ready first, serving-terminating as kube-proxy's fallback).

    No usable endpoint → ``refused``, not a 503: kube-proxy has no HTTP layer. For "a service [that]
    has no endpoints at all" it writes "only rules in the "filter" table rejecting incoming packets
    for the service's IPs" (``-j REJECT``, iptables ``proxier.go`` v1.37.1); the client's connect
    fails at once with ECONNREFUSED (the load generator's ``transport_error``). A Service that does
    not exist has no ClusterIP and no DNS name, which the model also reports as ``refused``
    (reason :attr:`Reason.NO_SUCH_SERVICE`). Pure but for ``rng``.
    """
    if service not in state.services:
        return Delivery(reason=Reason.NO_SUCH_SERVICE, refused=True)
    endpoint = choose_endpoint(usable_endpoints(state.services[service], terminating_fallback=True), rng)
    if endpoint is None:
        return Delivery(reason=Reason.NO_ENDPOINTS, service=service, refused=True)
    return Delivery(reason=Reason.SERVED, service=service, endpoint=endpoint)


def backend_problem(state: RoutingState, route_namespace: str, ref: BackendRef) -> Reason | None:
    """Why ``ref`` is an invalid backendRef, or ``None`` when it is valid. Pure.

    Gateway API v1.6.3 ``HTTPBackendRef.BackendRef``: "A BackendRef is invalid if: * It refers to an
    unknown or unsupported kind of resource. In this case, the Reason must be set to `InvalidKind` …
    * It refers to a resource that does not exist. In this case, the Reason must be set to
    `BackendNotFound` … * It refers a resource in another namespace when the reference has not been
    explicitly allowed by a ReferenceGrant (or equivalent concept). In this case, the Reason must be
    set to `RefNotPermitted`". The model supports only core ``Service`` ("Support: Core for
    Kubernetes Service … Implementation-specific for any other resource"). A Service backendRef
    without ``port`` is treated as not found ("Port is required when the referent is a Kubernetes
    Service", ``object_reference_types.go``; the CRD's CEL rule rejects it anyway). Ignored: the
    appProtocol and BackendTLSPolicy reasons.
    """
    if ref.group == INFERENCE_GROUP and ref.kind == "InferencePool":
        # Same namespace only: the operator never writes a cross-namespace pool, and the model
        # parses ReferenceGrants for Services alone.
        if ref.namespace != route_namespace:
            return Reason.REF_NOT_PERMITTED
        return None if ref.service in state.pools else Reason.BACKEND_NOT_FOUND
    if ref.group != "" or ref.kind != "Service":
        return Reason.INVALID_KIND
    if ref.namespace != route_namespace and not any(
        g.from_namespace == route_namespace and g.to_namespace == ref.namespace and g.name in (None, ref.name)
        for g in state.grants
    ):
        return Reason.REF_NOT_PERMITTED
    if ref.service not in state.services or ref.port is None:
        return Reason.BACKEND_NOT_FOUND
    return None


def choose_backend(backends: tuple[BackendRef, ...], rng: random.Random) -> BackendRef | None:
    """One backendRef with probability ``weight / sum(weights)``; ``None`` when every weight is 0.
    Pure but for ``rng``.

    Gateway API v1.6.3 ``BackendRef.Weight`` (``shared_types.go``): "Weight specifies the proportion
    of requests forwarded to the referenced backend. This is computed as weight/(sum of all weights
    in this BackendRefs list). … Weight is not a percentage and the sum of weights does not need to
    equal 100. If only one backend is specified and it has a weight greater than 0, 100% of the
    traffic is forwarded to that backend. If weight is set to 0, no traffic should be forwarded for
    this entry. If unspecified, weight defaults to 1."

    Invalid backendRefs take part in the draw with their weight: their share is what gets a 500
    (:func:`deliver_route`). The draw is exact integer arithmetic (``randrange(sum)``), so the
    "epsilon from the exact proportion" the spec allows is zero here.

    All weights 0: v1.6.3 does not say what the client gets. The model answers 500
    (:attr:`Reason.ALL_WEIGHTS_ZERO`), by analogy with "If *all* entries in BackendRefs are invalid
    … *all* traffic which matches this rule MUST receive a 500 status code"; the pending conformance
    test kubernetes-sigs/gateway-api#4769 ("it's implied that these should also return
    500/Unavailable") points the same way, while some implementations answer 503.
    """
    total = sum(b.weight for b in backends)
    if total <= 0:
        return None
    draw = rng.randrange(total)
    for backend in backends:
        if draw < backend.weight:
            return backend
        draw -= backend.weight
    raise AssertionError("unreachable: the draw is below the sum of the weights")


def mirror_copies(
    state: RoutingState, route_namespace: str, mirrors: Iterable[Mirror], rng: random.Random
) -> tuple[MirrorCopy, ...]:
    """The copies the RequestMirror filters make of one request. Pure but for ``rng``.

    Each filter copies the request with probability ``numerator/denominator`` (one draw per filter),
    to one endpoint: "Mirrored requests must be sent only to a single destination endpoint within
    this BackendRef, irrespective of how many endpoints are present within this BackendRef." An
    invalid target is dropped: "If the referent cannot be found, this BackendRef is invalid and must
    be dropped from the Gateway" (and the same for a cross-namespace reference without a
    ReferenceGrant), so no copy is made. A target without a Ready endpoint gets no copy either (the
    model's choice: the copy has nowhere to go). None of this touches the client's answer: "The
    responses from this backend MUST be ignored by the Gateway" (``HTTPRouteFilterRequestMirror``).
    """
    copies: list[MirrorCopy] = []
    for m in mirrors:
        if m.numerator <= 0 or rng.randrange(m.denominator) >= m.numerator:
            continue
        if backend_problem(state, route_namespace, m.backend) is not None:
            continue
        endpoint = choose_endpoint(
            usable_endpoints(state.services[m.backend.service], terminating_fallback=False), rng
        )
        if endpoint is not None:
            copies.append(MirrorCopy(service=m.backend.service, endpoint=endpoint))
    return tuple(copies)


def deliver_route(state: RoutingState, route: RouteRef, rng: random.Random, *, rule: int = 0) -> Delivery:
    """A request that matched rule ``rule`` of the HTTPRoute ``route`` (the ``gatewayAPI`` router).
    Pure but for ``rng``.

    1. A backendRef is drawn by weight (:func:`choose_backend`); all weights 0 → 500.
    2. An invalid chosen backendRef → 500 (:func:`backend_problem`). Gateway API v1.6.3
       ``HTTPRouteRule.BackendRefs``: "When a HTTPBackendRef is invalid, 500 status codes MUST be
       returned for requests that would have otherwise been routed to an invalid backend. If
       multiple backends are specified, and some are invalid, the proportion of requests that would
       otherwise have been routed to an invalid backend MUST receive a 500 status code."
    3. A Ready endpoint of its Service, uniformly; none → 503: "When a HTTPBackendRef refers to a
       Service that has no ready endpoints, implementations SHOULD return a 503 for requests to that
       backend instead." (same field). Terminating endpoints are not used (the spec speaks of ready
       endpoints only; kube-proxy's terminating fallback is a kube-proxy rule).
    4. Then the rule's RequestMirror filters make their copies (:func:`mirror_copies`), whatever
       happened to the primary request (the spec ties mirroring to the rule, not to the chosen
       backend), and after them the chosen backendRef's own RequestMirror filters, if it was valid.
       The primary is drawn *first* so that, for the same random state, adding or removing a mirror
       never changes which endpoint answers the client.

    A rule without backendRefs answers 404, as the conformance tests for omitted and empty
    ``backendRefs`` expect (kubernetes-sigs/gateway-api#4750); the type docs of v1.6.3 say nothing
    of it. A missing route or rule answers 404 like an unmatched request.
    """
    found = state.routes.get(route)
    if found is None or not 0 <= rule < len(found.rules):
        return Delivery(reason=Reason.NO_SUCH_ROUTE, status=404)
    the_rule = found.rules[rule]
    ignored = the_rule.ignored_filters
    if not the_rule.backends:
        mirrors = mirror_copies(state, found.namespace, the_rule.mirrors, rng)
        return Delivery(reason=Reason.NO_BACKENDS, status=404, mirrors=mirrors, ignored_filters=ignored)
    backend = choose_backend(the_rule.backends, rng)
    if backend is None:
        mirrors = mirror_copies(state, found.namespace, the_rule.mirrors, rng)
        return Delivery(reason=Reason.ALL_WEIGHTS_ZERO, status=500, mirrors=mirrors, ignored_filters=ignored)
    problem = backend_problem(state, found.namespace, backend)
    if problem is not None:
        mirrors = mirror_copies(state, found.namespace, the_rule.mirrors, rng)
        return Delivery(reason=problem, status=500, mirrors=mirrors, ignored_filters=ignored)
    pool = state.pools.get(backend.service) if backend.kind == "InferencePool" else None
    if pool is not None and pool.picker is not None and not pool.fail_open:
        if ServiceRef(backend.namespace, pool.picker) not in state.services:
            mirrors = mirror_copies(state, found.namespace, the_rule.mirrors, rng)
            return Delivery(
                reason=Reason.PICKER_UNAVAILABLE,
                service=backend.service,
                status=503,
                mirrors=mirrors,
                ignored_filters=ignored,
            )
    members = pool.endpoints if pool is not None else state.services[backend.service]
    endpoint = choose_endpoint(usable_endpoints(members, terminating_fallback=False), rng)
    mirrors = mirror_copies(state, found.namespace, the_rule.mirrors, rng)
    mirrors += mirror_copies(state, found.namespace, backend.mirrors, rng)
    ignored += backend.ignored_filters
    if endpoint is None:
        return Delivery(
            reason=Reason.NO_READY_ENDPOINTS,
            service=backend.service,
            status=503,
            mirrors=mirrors,
            ignored_filters=ignored,
        )
    return Delivery(
        reason=Reason.SERVED,
        service=backend.service,
        endpoint=endpoint,
        mirrors=mirrors,
        ignored_filters=ignored,
    )


@dataclass(frozen=True)
class ServiceTarget:
    """A request addressed to a Service's ClusterIP (the ``replicas`` router)."""

    namespace: str
    name: str


@dataclass(frozen=True)
class RouteTarget:
    """A request that reached the gateway and matched rule ``rule`` of an HTTPRoute."""

    namespace: str
    name: str
    rule: int = 0


def deliver(state: RoutingState, request_target: ServiceTarget | RouteTarget, rng: random.Random) -> Delivery:
    """Where one request to ``request_target`` goes: :func:`deliver_service` for a Service,
    :func:`deliver_route` for an HTTPRoute rule. Pure but for ``rng``; consumed by the local cluster's
    load generator, which sends the request to ``Delivery.endpoint`` (or records ``status`` /
    ``refused``) and a copy to each of ``Delivery.mirrors``.
    """
    if isinstance(request_target, RouteTarget):
        return deliver_route(
            state, RouteRef(request_target.namespace, request_target.name), rng, rule=request_target.rule
        )
    return deliver_service(state, ServiceRef(request_target.namespace, request_target.name), rng)
