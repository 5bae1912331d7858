"""How traffic is split between stable, canary and fallback. Pure.

Two routers (``spec.rollout.traffic.router``). ``replicas``: the root Service ``NAME`` spans every
track's pods, so the canary's share of requests is its share of Ready pods, and a weight becomes a
replica count (``replicas_for_weight``, ``promotion_replicas``). ``gatewayAPI``: an HTTPRoute with
weighted backendRefs and a RequestMirror filter carries the weight exactly (``build_httproute``).
During fallback the root Service selects the fallback ModelDeployment's pods (``root_selector``) or
the HTTPRoute sends everything to the fallback backend. Replica maths and object building live in
one module because both answer one question: where does a request go. Nothing here reads a clock
or talks to the API server; ``controller.reconcile`` applies what these functions return. See
docs/traffic-and-fallback.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from slogate import constants as C
from slogate.api.v1alpha1 import FallbackTarget, GatewayAPITraffic, InferencePoolTraffic, ParentRef
from slogate.core.naming import Owner, common_labels, root_service_name, track_service_name

SERVICE_PORT = 80
"""Port of every Service slogate builds (named ``http``, see ``desired._service``)."""
HTTPROUTE_API_VERSION = "gateway.networking.k8s.io/v1"
INFERENCE_GROUP = "inference.networking.k8s.io"
"""The Gateway API Inference Extension's API group (GIE v1.6.2 ``api/v1``)."""
INFERENCE_POOL_API_VERSION = f"{INFERENCE_GROUP}/v1"


# ---------------------------------------------------------------------------------- replica maths


@dataclass(frozen=True)
class ReplicaSplit:
    """Replica counts of the two tracks for the ``replicas`` router."""

    stable: int
    """Replicas of the stable track."""
    canary: int
    """Replicas of the canary track."""
    effective_weight: float
    """Percent of traffic the canary gets once every replica is Ready: ``100 x canary / (stable + canary)``,
    rounded to two decimals (0 when both are 0)."""
    capped_by_budget: bool
    """``gpuBudget.maxSurgeGPUs`` kept the canary below what the weight asked for."""
    message: str
    """Why the effective weight differs from the one asked for, in plain words; empty when no cap applied."""
    capped_at_full_size: bool = False
    """The weight asked for more canary replicas than stable has; the canary stopped at full size."""


def _percent(value: float) -> str:
    """A percentage for messages: whole numbers, ``<1%`` for a small non-zero share.

    >>> _percent(33.33), _percent(16.67), _percent(0.5), _percent(0.0)
    ('33%', '17%', '<1%', '0%')
    """
    if 0 < value < 1:
        return "<1%"
    return f"{math.floor(value + 0.5)}%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _effective(stable: int, canary: int) -> float:
    total = stable + canary
    return round(100 * canary / total, 2) if total else 0.0


def _budget_slots(gpus_per_replica: int, max_surge_gpus: int | None) -> int | None:
    """Canary replicas the GPU budget allows beside stable; ``None`` means no cap."""
    if max_surge_gpus is None or gpus_per_replica == 0:
        return None
    return max_surge_gpus // gpus_per_replica


def _check(**values: int | None) -> None:
    for key, value in values.items():
        if value is not None and value < 0:
            raise ValueError(f"{key} must not be negative, got {value}")


def replicas_for_weight(
    *, stable_replicas: int, weight: int, gpus_per_replica: int, max_surge_gpus: int | None
) -> ReplicaSplit:
    """Replica counts that give the canary about ``weight`` percent of traffic. Pure; consumed by
    ``controller.reconcile``, which scales the canary Deployment and reports ``effective_weight``.

    With the ``replicas`` router one Service spans both tracks, so traffic divides by Ready pods.
    Stable keeps all its replicas until promotion (it is never scaled down before its replacement
    is Ready), so only the canary count moves (``s`` = ``stable_replicas``, ``w`` = ``weight``,
    ``g`` = ``gpus_per_replica``, ``B`` = ``max_surge_gpus``)::

        wanted  = 0                                 if w == 0
                = s                                 if w == 100
                = max(1, ceil(s x w / (100 - w)))   otherwise   (so canary / (s + canary) >= w / 100)
        canary  = min(wanted, max(s, 1))            the canary never outgrows stable before promotion
        canary  = min(canary, floor(B / g))         when B is set and g > 0 (GPU budget)
        effective_weight = 100 x canary / (s + canary)

    Rounding up means the canary gets at least the weight asked for (never less, unless a cap
    applies): a small stable track makes small weights coarse. Weights above 50 would need more
    canary replicas than stable has (``w = 99`` with ``s = 10`` is 990 replicas), so the canary stops
    at full size and gets 50%; all traffic moves at promotion (``promotion_replicas``). A budget too
    small for one replica caps the canary at 0: it cannot start, and the message says so.

    ====== ====== ====== ====== ======= =========== ===========================
    stable weight GPUs   budget canary  effective   why
    ====== ====== ====== ====== ======= =========== ===========================
    10     10     1      -      2       16.67       ceil(100/90) = 2
    10     25     1      -      4       28.57       ceil(250/75) = 4
    10     50     1      -      10      50          ceil(500/50) = 10
    10     99     1      -      10      50          990 wanted, full size 10
    4      1      1      -      1       20          at least 1
    1      10     1      -      1       50          at least 1
    2      50     2      2      1       33.33       budget: 2 // 2 = 1
    2      50     4      2      0       0           budget: 2 // 4 = 0, cannot start
    10     50     0      0      10      50          CPU-only: no GPU cap
    ====== ====== ====== ====== ======= =========== ===========================

    >>> replicas_for_weight(stable_replicas=10, weight=10, gpus_per_replica=1, max_surge_gpus=None)
    ReplicaSplit(stable=10, canary=2, effective_weight=16.67, capped_by_budget=False, message='', capped_at_full_size=False)
    >>> s = replicas_for_weight(stable_replicas=2, weight=50, gpus_per_replica=2, max_surge_gpus=2)
    >>> s.canary, s.effective_weight, s.capped_by_budget
    (1, 33.33, True)
    >>> s.message
    'gpuBudget.maxSurgeGPUs 2 allows 1 canary replica of 2 GPUs; effective weight 33% instead of 50%'
    """
    _check(stable_replicas=stable_replicas, gpus_per_replica=gpus_per_replica, max_surge_gpus=max_surge_gpus)
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be between 0 and 100, got {weight}")
    full = max(stable_replicas, 1)
    wanted: float
    if weight == 0:
        wanted = 0
    elif weight == 100:
        wanted = math.inf
    else:
        wanted = max(1, -(-stable_replicas * weight // (100 - weight)))
    canary = int(min(wanted, full))
    at_full_size = wanted > full
    slots = _budget_slots(gpus_per_replica, max_surge_gpus)
    by_budget = slots is not None and canary > slots
    if slots is not None and by_budget:
        canary = slots
    effective = _effective(stable_replicas, canary)
    if by_budget and canary == 0:
        message = (
            f"gpuBudget.maxSurgeGPUs {max_surge_gpus} is less than the {_plural(gpus_per_replica, 'GPU')} "
            f"of one replica: a canary cannot start within the budget"
        )
    elif by_budget:
        message = (
            f"gpuBudget.maxSurgeGPUs {max_surge_gpus} allows {_plural(canary, 'canary replica')} of "
            f"{_plural(gpus_per_replica, 'GPU')}; effective weight {_percent(effective)} instead of {weight}%"
        )
    elif at_full_size and effective < weight:
        message = (
            f"the replicas router keeps stable at {_plural(stable_replicas, 'replica')} until promotion: "
            f"the canary at full size ({_plural(canary, 'replica')}) gets {_percent(effective)} "
            f"of traffic instead of {weight}%"
        )
    else:
        message = ""
    return ReplicaSplit(
        stable=stable_replicas,
        canary=canary,
        effective_weight=effective,
        capped_by_budget=by_budget,
        message=message,
        capped_at_full_size=at_full_size and effective < weight,
    )


def promotion_replicas(
    *, replicas: int, canary_ready: int, gpus_per_replica: int, max_surge_gpus: int | None
) -> ReplicaSplit:
    """Replica counts while a promoted canary takes over from stable. Pure; consumed by
    ``controller.reconcile``, called every tick until ``stable`` is 0.

    The candidate grows to the full ``replicas``; the old stable track gives up one replica for each
    Ready candidate replica, so Ready capacity never drops below ``replicas`` (``r`` = ``replicas``,
    ``k`` = ``canary_ready``, ``B``, ``g`` as in ``replicas_for_weight``)::

        stable = max(0, r - k)
        canary = min(r, k + floor(B / g))     (canary = r without a budget or with g == 0)

    so ``(stable + canary) x g <= (r + floor(B / g)) x g``: the surge stays within the budget. The
    handover is done when ``stable`` is 0. A budget too small for one replica with no Ready
    candidate cannot make progress (stable cannot shrink first); the message says so.

    ==== ===== ====== ====== ====== ==========================
    r    ready budget stable canary
    ==== ===== ====== ====== ====== ==========================
    4    0     -      4      4      no budget: full size at once
    4    0     2      4      2      2 GPUs of surge, 1 GPU each
    4    2     2      2      4
    4    4     2      0      4      done
    ==== ===== ====== ====== ====== ==========================

    >>> p = promotion_replicas(replicas=4, canary_ready=2, gpus_per_replica=1, max_surge_gpus=2)
    >>> p.stable, p.canary, p.effective_weight
    (2, 4, 66.67)
    """
    _check(
        replicas=replicas,
        canary_ready=canary_ready,
        gpus_per_replica=gpus_per_replica,
        max_surge_gpus=max_surge_gpus,
    )
    ready = min(canary_ready, replicas)
    stable = replicas - ready
    slots = _budget_slots(gpus_per_replica, max_surge_gpus)
    canary = replicas if slots is None else min(replicas, ready + slots)
    by_budget = canary < replicas
    if by_budget and canary == ready and stable > 0:
        message = (
            f"gpuBudget.maxSurgeGPUs {max_surge_gpus} is less than the {_plural(gpus_per_replica, 'GPU')} "
            f"of one replica: the candidate cannot grow beside stable within the budget"
        )
    elif by_budget:
        message = (
            f"gpuBudget.maxSurgeGPUs {max_surge_gpus} allows {_plural(canary, 'candidate replica')} "
            f"of {replicas} while {_plural(stable, 'stable replica')} still serve"
        )
    else:
        message = ""
    return ReplicaSplit(
        stable=stable,
        canary=canary,
        effective_weight=_effective(stable, canary),
        capped_by_budget=by_budget,
        message=message,
    )


# ----------------------------------------------------------------------------------- selector


@dataclass(frozen=True)
class RolloutSizes:
    """How many replicas each track runs this pass, and the weight the route gives the candidate."""

    canary: int
    """Replicas of the candidate's Deployment."""
    stable: int | None
    """Replicas the stable Deployment must have, or None to leave it alone (an autoscaler owns it,
    or there is no rollout)."""
    route_weight: int
    """Percent for the candidate's backend in an HTTPRoute (the handover's effective share while a
    promotion is under way; the decision's weight otherwise)."""
    note: str = ""
    """Why the GPU budget shaped these counts, in plain words; empty when it did not."""


def rollout_sizes(
    *,
    strategy: str,
    weight: int,
    promoting: bool,
    mirror: bool,
    scaled_down: bool,
    stable_replicas: int,
    canary_ready: int,
    gpus_per_replica: int,
    max_surge_gpus: int | None,
    autoscaled: bool,
    pre_traffic: bool = False,
) -> RolloutSizes:
    """The replica counts of one rollout pass, within ``gpuBudget.maxSurgeGPUs`` at every stage.
    Pure; consumed by ``controller.reconcile``, which scales the candidate (apply) and the stable
    Deployment (scale subresource) to them.

    - rolled back or aborted: candidate 0, stable back at full size;
    - a canary weight: ``replicas_for_weight``; a shadow mirror: stable's size, within the budget;
    - promotion (canary, shadow): ``promotion_replicas`` — the candidate grows by the budget while
      stable gives up one replica per Ready candidate replica, so the GPUs held never exceed
      stable's plus the budget, and the route's weight follows the Ready shares;
    - blue-green: a full second copy or none; a budget smaller than a copy starts no candidate and
      says so (a blue-green switch needs the whole copy Ready, there is no handover to make);
    - a pre-traffic quality gate (canary, shadow): one replica, within the budget, with no traffic
      (the suites need something to ask; a blue-green candidate is judged on its full copy).

    Under an autoscaler the stable track's size is the autoscaler's, so promotion cannot shrink it:
    the candidate goes to full size at once, as before (a note says the budget is exceeded).

    >>> z = dict(strategy="canary", weight=100, promoting=True, mirror=False,
    ...          scaled_down=False, stable_replicas=4, gpus_per_replica=1, autoscaled=False)
    >>> [(x.canary, x.stable, x.route_weight) for x in
    ...  (rollout_sizes(**z, canary_ready=k, max_surge_gpus=2) for k in (1, 3, 4))]
    [(3, 3, 25), (4, 1, 75), (4, 0, 100)]
    """
    own_stable = None if autoscaled else stable_replicas
    if scaled_down:
        return RolloutSizes(canary=0, stable=own_stable, route_weight=0)
    slots = _budget_slots(gpus_per_replica, max_surge_gpus)
    if strategy == "blueGreen" and not (promoting and canary_ready >= stable_replicas):
        if slots is not None and slots < stable_replicas:
            note = (
                f"strategy blueGreen runs a full second copy ({_plural(stable_replicas, 'replica')} of "
                f"{_plural(gpus_per_replica, 'GPU')}) but gpuBudget.maxSurgeGPUs is {max_surge_gpus}: "
                "raise the budget to a whole copy, or use canary"
            )
            return RolloutSizes(canary=0, stable=own_stable, route_weight=0, note=note)
        return RolloutSizes(canary=stable_replicas, stable=own_stable, route_weight=weight)
    if promoting:
        if autoscaled:
            note = (
                "the stable track is autoscaled, so the promotion cannot hand replicas over within "
                "gpuBudget.maxSurgeGPUs: the candidate goes to full size at once"
                if slots is not None and slots < stable_replicas
                else ""
            )
            return RolloutSizes(canary=stable_replicas, stable=None, route_weight=weight, note=note)
        split = promotion_replicas(
            replicas=stable_replicas,
            canary_ready=canary_ready,
            gpus_per_replica=gpus_per_replica,
            max_surge_gpus=max_surge_gpus,
        )
        # Ready shares during the handover: the candidate's Ready replicas against what stable keeps.
        ready = min(canary_ready, stable_replicas)
        share = 100 if split.stable == 0 else round(100 * ready / (ready + split.stable))
        return RolloutSizes(canary=split.canary, stable=split.stable, route_weight=share, note=split.message)
    if pre_traffic:
        split = replicas_for_weight(
            stable_replicas=max(stable_replicas, 1),
            weight=1,  # the smallest canary: one replica
            gpus_per_replica=gpus_per_replica,
            max_surge_gpus=max_surge_gpus,
        )
        return RolloutSizes(canary=split.canary, stable=own_stable, route_weight=0, note=split.message)
    split = replicas_for_weight(
        stable_replicas=stable_replicas,
        weight=100 if mirror else weight,
        gpus_per_replica=gpus_per_replica,
        max_surge_gpus=max_surge_gpus,
    )
    return RolloutSizes(canary=split.canary, stable=own_stable, route_weight=weight, note=split.message)


def root_selector(*, name: str, fallback_model_deployment: str | None) -> dict[str, str]:
    """Selector of the root Service ``NAME`` for the ``replicas`` router. Pure; consumed by
    ``controller.reconcile`` when it builds the root Service.

    Normally every pod of this ModelDeployment (``slogate.io/deployment: NAME``). While a
    ``modelDeployment`` fallback tier is active, the pods of that ModelDeployment (same namespace;
    they answer to this one's served name through the alias it was given), so clients keep calling
    ``NAME`` and the switch is one Service update.

    >>> root_selector(name="llama", fallback_model_deployment=None)
    {'slogate.io/deployment': 'llama'}
    >>> root_selector(name="llama", fallback_model_deployment="llama-small")
    {'slogate.io/deployment': 'llama-small'}
    """
    return {C.LABEL_DEPLOYMENT: fallback_model_deployment or name}


# ---------------------------------------------------------------------------------- HTTPRoute


def backend_of_target(target: FallbackTarget) -> tuple[str, int, str | None]:
    """The ``(service, port, namespace)`` a fallback tier is reached at. Pure; consumed by the
    controller to pass ``fallback_backend`` to ``build_httproute``.

    A ``modelDeployment`` tier is its root Service ``NAME`` on port 80 in the same namespace; a
    ``service`` tier is the Service as written (namespace ``None`` means the route's own; another
    namespace needs a ReferenceGrant there).

    >>> backend_of_target(FallbackTarget(model_deployment="llama-small"))
    ('llama-small', 80, None)
    """
    if target.model_deployment is not None:
        return (root_service_name(target.model_deployment), SERVICE_PORT, None)
    if target.service is not None:
        return (target.service.name, target.service.port, target.service.namespace)
    raise ValueError("a fallback target sets exactly one of modelDeployment or service")


def _parent_ref(ref: ParentRef) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ref.group is not None:
        out["group"] = ref.group
    if ref.kind is not None:
        out["kind"] = ref.kind
    if ref.namespace is not None:
        out["namespace"] = ref.namespace
    out["name"] = ref.name
    if ref.section_name is not None:
        out["sectionName"] = ref.section_name
    return out


def _pool_backend(name: str, weight: int) -> dict[str, Any]:
    """A backendRef to the InferencePool ``name``: group and kind, no port (the pool's
    ``targetPorts`` say where its pods listen; GIE v1.6.2 ``site-src/guides/implementers.md``)."""
    return {"group": INFERENCE_GROUP, "kind": "InferencePool", "name": name, "weight": weight}


def inference_pool_name(name: str, track: str) -> str:
    """The InferencePool of one track: ``NAME-stable`` or ``NAME-canary`` (the track Services' names;
    different kinds may share a name).

    >>> inference_pool_name("llama", "canary")
    'llama-canary'
    """
    return track_service_name(name, track)


def endpoint_picker_service(pool: str, traffic: InferencePoolTraffic) -> str | None:
    """The Service a pool's ``endpointPickerRef`` names: ``endpointPicker.name`` when given, else
    ``POOL-epp`` (GIE: an EPP serves exactly the one pool its ``--pool-name`` names); ``None``
    without an ``endpointPicker``.

    >>> from slogate.api.v1alpha1 import EndpointPicker, ParentRef
    >>> t = InferencePoolTraffic(parent_refs=[ParentRef(name="gw")], endpoint_picker=EndpointPicker())
    >>> endpoint_picker_service("llama-stable", t)
    'llama-stable-epp'
    """
    picker = traffic.endpoint_picker
    if picker is None:
        return None
    return picker.name or f"{pool}-epp"


def build_inference_pool(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    track: str,
    revision: str,
    port: int,
    traffic: InferencePoolTraffic,
) -> dict[str, Any]:
    """InferencePool ``NAME-TRACK`` over one revision's pods, for the ``inferencePool`` router. Pure;
    consumed by ``plan.route``, which adds it to the objects the controller server-side-applies.

    The fields are GIE v1.6.2's ``InferencePoolSpec`` (``api/v1/inferencepool_types.go``):
    ``selector.matchLabels`` (labels only, like a Service selector) on the ModelDeployment and the
    revision, ``targetPorts`` the engine's port, ``appProtocol``, and ``endpointPickerRef`` (kind
    ``Service``, its port, ``failureMode``) when ``endpointPicker`` is set. At promotion the stable
    pool's selector moves to the new revision, as the stable Service's does.
    """
    pool = inference_pool_name(name, track)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: revision}},
        "targetPorts": [{"number": port}],
        "appProtocol": traffic.app_protocol.value,
    }
    picker = traffic.endpoint_picker
    if picker is not None:
        spec["endpointPickerRef"] = {
            "kind": "Service",
            "name": endpoint_picker_service(pool, traffic),
            "port": {"number": picker.port},
            "failureMode": picker.failure_mode.value,
        }
    return {
        "apiVersion": INFERENCE_POOL_API_VERSION,
        "kind": "InferencePool",
        "metadata": {
            "name": pool,
            "namespace": namespace,
            "labels": dict(sorted({**common_labels(name), C.LABEL_TRACK: track}.items())),
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    }


def build_inference_pools(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    stable: str | None,
    canary: str | None,
    port: int,
    traffic: InferencePoolTraffic,
) -> list[dict[str, Any]]:
    """The InferencePools of the tracks that run: ``NAME-stable`` over ``stable`` and, while a
    candidate runs, ``NAME-canary`` over ``canary`` (``build_inference_pool``). Pure; consumed by
    ``plan.route`` and the lint's ``hack/lint/gen_children.py``."""
    return [
        build_inference_pool(
            name=name, namespace=namespace, owner=owner, track=track, revision=rev, port=port, traffic=traffic
        )
        for track, rev in (("stable", stable), ("canary", canary))
        if rev is not None
    ]


def pool_of_target(target: FallbackTarget) -> str:
    """The InferencePool a fallback tier is reached at with the ``inferencePool`` router: the tier
    ModelDeployment's own stable pool ``TIER-stable`` (it must use the same router; validation
    rejects ``service`` tiers with this router).

    >>> pool_of_target(FallbackTarget(model_deployment="llama-small"))
    'llama-small-stable'
    """
    if target.model_deployment is None:
        raise ValueError("the inferencePool router falls back to a modelDeployment tier only")
    return inference_pool_name(target.model_deployment, "stable")


def _backend(name: str, port: int, weight: int, namespace: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name}
    if namespace is not None:
        ref["namespace"] = namespace
    ref["port"] = port
    ref["weight"] = weight
    return ref


def build_httproute(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    traffic: GatewayAPITraffic | InferencePoolTraffic,
    canary_weight: int,
    canary: bool,
    mirror: bool,
    fallback_backend: tuple[str, int] | tuple[str, int, str | None] | None = None,
    fallback_pool: str | None = None,
) -> dict[str, Any]:
    """HTTPRoute ``NAME`` for the ``gatewayAPI`` router. Pure and deterministic; consumed by
    ``controller.reconcile``, which server-side-applies it.

    ``parentRefs`` and ``hostnames`` come from ``spec.rollout.traffic.gatewayAPI`` (a parentRef's
    omitted namespace stays omitted, which means the route's own; ``group``, ``kind`` and
    ``sectionName`` only when given). One rule, matching everything, whose backends are:

    - no canary: ``[{NAME-stable, 80, weight 100}]``;
    - a canary: ``[{NAME-stable, 80, weight 100 - w}, {NAME-canary, 80, weight w}]``;
    - ``mirror`` (shadow): ``[{NAME-stable, 80, weight 100}]`` plus a ``RequestMirror`` filter to
      ``NAME-canary`` port 80, ``percent: 100`` (the canary's responses are discarded);
    - ``fallback_backend`` ``(service, port[, namespace])``: ``[{service, port, weight 100}]`` and
      nothing else; it wins over canary and mirror.

    With ``InferencePoolTraffic`` (the ``inferencePool`` router) the backends are the pools
    ``NAME-stable`` and ``NAME-canary`` instead (``group: inference.networking.k8s.io``, ``kind:
    InferencePool``, no port), with the same weights; ``fallback_pool`` is the tier's pool; a mirror
    is refused (validation rejects shadow with this router: no conformant gateway mirrors to a pool).

    Fields the API server defaults (backendRef ``group``/``kind``, the rule's ``matches``) are not
    written, so ``compare.is_subset`` finds a live route equal. Contradictory inputs (a weight or a
    mirror without a canary, a mirror with a weight) raise ``ValueError``: they are controller bugs.
    """
    if not 0 <= canary_weight <= 100:
        raise ValueError(f"canary_weight must be between 0 and 100, got {canary_weight}")
    if isinstance(traffic, InferencePoolTraffic):
        return _pool_route(
            name=name,
            namespace=namespace,
            owner=owner,
            traffic=traffic,
            canary_weight=canary_weight,
            canary=canary,
            mirror=mirror,
            fallback_pool=fallback_pool,
        )
    if fallback_backend is None and not canary and (canary_weight or mirror):
        raise ValueError("a canary weight or mirror needs a canary (canary=True)")
    if fallback_backend is None and mirror and canary_weight:
        raise ValueError("mirror sends the canary a copy of stable's traffic: canary_weight must be 0")
    stable_svc = track_service_name(name, "stable")
    canary_svc = track_service_name(name, "canary")
    rule: dict[str, Any] = {}
    if fallback_backend is not None:
        fb_name, fb_port, *rest = fallback_backend
        rule["backendRefs"] = [_backend(fb_name, fb_port, 100, rest[0] if rest else None)]
    elif mirror:
        rule["backendRefs"] = [_backend(stable_svc, SERVICE_PORT, 100)]
        rule["filters"] = [
            {
                "type": "RequestMirror",
                "requestMirror": {"backendRef": {"name": canary_svc, "port": SERVICE_PORT}, "percent": 100},
            }
        ]
    elif canary:
        rule["backendRefs"] = [
            _backend(stable_svc, SERVICE_PORT, 100 - canary_weight),
            _backend(canary_svc, SERVICE_PORT, canary_weight),
        ]
    else:
        rule["backendRefs"] = [_backend(stable_svc, SERVICE_PORT, 100)]
    return _route(name, namespace, owner, traffic, rule)


def _pool_route(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    traffic: InferencePoolTraffic,
    canary_weight: int,
    canary: bool,
    mirror: bool,
    fallback_pool: str | None,
) -> dict[str, Any]:
    if mirror and fallback_pool is None:
        raise ValueError("the inferencePool router cannot mirror: no conformant gateway mirrors to a pool")
    if fallback_pool is None and not canary and canary_weight:
        raise ValueError("a canary weight needs a canary (canary=True)")
    stable = inference_pool_name(name, "stable")
    if fallback_pool is not None:
        refs = [_pool_backend(fallback_pool, 100)]
    elif canary:
        refs = [
            _pool_backend(stable, 100 - canary_weight),
            _pool_backend(inference_pool_name(name, "canary"), canary_weight),
        ]
    else:
        refs = [_pool_backend(stable, 100)]
    return _route(name, namespace, owner, traffic, {"backendRefs": refs})


def _route(
    name: str,
    namespace: str,
    owner: Owner,
    traffic: GatewayAPITraffic | InferencePoolTraffic,
    rule: dict[str, Any],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [_parent_ref(p) for p in traffic.parent_refs]}
    if traffic.hostnames:
        spec["hostnames"] = list(traffic.hostnames)
    spec["rules"] = [rule]
    labels = common_labels(name)
    return {
        "apiVersion": HTTPROUTE_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(sorted(labels.items())),
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    }
