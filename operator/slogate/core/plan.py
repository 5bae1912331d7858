"""One reconcile pass decided in one pure function: ``plan(observation) -> ReconcilePlan``.

The controller (``controller.reconcile``) builds an ``Observation`` from its watch caches and the
measurements that were due (Prometheus, rate-limited by the observer), calls ``plan``, and carries
the plan out in a fixed order: scale, apply, one status write, events, deletions, the command
annotation cleared. Everything that decides — the rollout step, the sizes within the GPU budget,
traffic, fallback, preflight, status, drift, cost, what is pruned — is here or in the modules this
one calls; nothing here reads or writes the cluster, so every decision is table-tested over plain
data (tests/unit/test_plan.py).

Deletions come after the status that records them: an operator killed in between finds the
promotion recorded and the old revision an orphan, which the next plan deletes. (Deleting first,
a restart found stable's Deployment gone and redeployed the spec as a new first revision, losing
the promotion from history.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from slogate import constants as C
from slogate.api.v1alpha1 import ModelDeploymentSpec, Router, Strategy, Verdict
from slogate.core import cost, drift, engine_flags
from slogate.core import rollout as ro
from slogate.core.analysis import base_threshold, objective_name
from slogate.core.compare import is_subset
from slogate.core.conditions import get_condition, phase_from, remove_condition, set_condition
from slogate.core.desired import build_desired, lora_conflicts
from slogate.core.fallback import FallbackDecision, TierHealth, decide_fallback, find_target, target_id
from slogate.core.naming import Capabilities, Owner, deployment_name, revision_of
from slogate.core.preflight import NodeInfo, Preflight, pod_extended_requests, preflight, shape_of
from slogate.core.quality import fold
from slogate.core.rules import prometheus_rule
from slogate.core.status import DeploymentObs, RevisionPlan, compute_status
from slogate.core.traffic import (
    backend_of_target,
    build_httproute,
    build_inference_pools,
    pool_of_target,
    rollout_sizes,
    root_selector,
)
from slogate.core.vocabulary import ConditionStatus, ConditionType, Event, Events, Phase, PodPhase, Reason

ANNOTATION_COMMAND = f"{C.GROUP}/command"

CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("inference.networking.k8s.io/v1", "InferencePool"),
)
"""The kinds a ModelDeployment owns (by owner reference and the managed-by label)."""


# ------------------------------------------------------------------------------------ inputs
def parse_spec(raw: Mapping[str, Any], name: str | None = None) -> tuple[ModelDeploymentSpec | None, str]:
    """The spec, or ``None`` and why not (field paths, the first five problems). Pure.

    The CRD's CEL rules reject exact spellings; an abbreviation (--tensor-parallel) or --flag_name
    spelling passes the API server and is caught here, as by ``slogate validate``."""
    try:
        spec = ModelDeploymentSpec.model_validate(raw)
    except ValidationError as exc:
        return None, "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
    flags = engine_flags.check(
        kind=spec.engine.kind, args=spec.engine.args, features=engine_flags.features_of(raw)
    )
    if flags:
        return None, "; ".join(f"spec.engine.args[{p.index}]: {p.message}" for p in flags[:5])
    problems = [f"{path}: {why}" for path, why in adapter_problems(spec, name)]
    if problems:
        return None, "; ".join(problems[:5])
    return spec, ""


def adapter_problems(spec: ModelDeploymentSpec, name: str | None) -> list[tuple[str, str]]:
    """``(path, message)`` per problem of ``spec.adapters`` beyond the schema: LoRA flags in
    ``engine.args`` beside it, and an adapter named like the base model when its served name is
    ``metadata.name`` (``name``), which CEL on the spec cannot see. Pure; consumed by
    ``parse_spec`` and by ``slogate validate`` (``api.validation``)."""
    out = [(f"spec.engine.args[{i}]", why) for i, why in lora_conflicts(spec)]
    served = spec.model.served_name or name
    out += [
        (
            f"spec.adapters[{i}].name",
            f"{a.name} is the base model's served name (metadata.name): name the adapter apart",
        )
        for i, a in enumerate(spec.adapters)
        if served is not None and a.name == served
    ]
    return out


def command_of(body: Mapping[str, Any]) -> ro.Command | None:
    """A person's command from the ``slogate.io/command`` annotation: ``VERB`` or ``VERB:ID``;
    an unknown verb is no command. Pure."""
    raw = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_COMMAND)
    if not raw:
        return None
    verb, _, cid = raw.partition(":")
    if verb not in ro.COMMANDS:
        return None
    return ro.Command(verb=verb, id=cid or verb)


def revisions(children: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The owned Deployments by revision label. Pure."""
    return {
        d["metadata"]["labels"].get(C.LABEL_REVISION): dict(d)
        for d in children.get("Deployment", [])
        if (d["metadata"].get("labels") or {}).get(C.LABEL_REVISION)
    }


def stable_size(
    spec: ModelDeploymentSpec, existing: Mapping[str, Mapping[str, Any]], stable: str | None
) -> int:
    """How many replicas stable runs: the spec's, or what the autoscaler set. Pure."""
    if spec.autoscaling:
        if stable in existing:
            return max(int((existing[stable].get("spec") or {}).get("replicas") or 1), 1)
        return max(spec.autoscaling.min_replicas, 1)
    return spec.replicas


def thresholds_of(spec: ModelDeploymentSpec) -> dict[str, float]:
    """The SLO's thresholds in base units by objective name, for the exported metrics. Pure."""
    return {objective_name(o): base_threshold(o) for o in spec.slo.objectives} if spec.slo else {}


def not_ready(
    old: Mapping[str, Any], reason: str, message: str, generation: int, now: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """``Ready=False`` with ``reason`` and ``message`` set on the old status' conditions. Pure."""
    return set_condition(
        list(old.get("conditions") or []),
        type=ConditionType.READY,
        status=ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )


@dataclass(frozen=True)
class Measurements:
    """What Prometheus answered this pass, for the measurements that were due (the observer asks
    only those, each at most once per its interval)."""

    analysis: ro.Analysis | None = None
    """The candidate's analysis run, when ``rollout.analysis_due`` said so."""
    stable_slo: tuple[str | None, Verdict, str] | None = None
    """(revision, verdict, failing objectives) of the stable revision, for the fallback policy."""
    drift_due: bool = False
    """An input-drift check was due: ``drift`` is its measurement (``None``: Prometheus did not answer)."""
    drift: drift.Measurement | None = None
    tokens_per_hour: float | None = None
    tokens_measured: bool = False
    quality: ro.QualityResult | None = None
    """A quality gate's run that finished (``rollout.quality_due``), collected from the evaluator."""
    probe: tuple[str, dict[str, Any], str] | None = None
    """(verdict, record, summary) of a production probe run of stable that finished (``quality.probe_due``)."""
    opencost: tuple[tuple[Mapping[str, str], float], ...] | None = None
    """The namespace's ``cost.opencost_query`` series, asked only when a running pod carries
    ``cost.OPENCOST_MODEL_LABEL``; ``None``: not asked, or Prometheus did not answer."""


@dataclass(frozen=True)
class Observation:
    """Everything one pass needs, read once. Plain data; the controller builds it from its caches."""

    body: Mapping[str, Any]
    """The ModelDeployment."""
    spec: ModelDeploymentSpec | None
    """``body.spec`` parsed (``parse_spec``); ``None`` when invalid, with ``problems``."""
    now: datetime
    problems: str = ""
    children: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """The objects it owns, by kind (``CHILD_KINDS``)."""
    pods: Sequence[Mapping[str, Any]] = ()
    """Its pods, not being deleted."""
    caps: Capabilities = field(default_factory=Capabilities)
    nodes: Sequence[NodeInfo] = ()
    """Every Node with what its pods hold (the GPU preflight)."""
    node_products: Mapping[str, str] = field(default_factory=dict)
    """Node name → GPU product label, for the nodes its pods run on."""
    aliases: tuple[str, ...] = ()
    """Served names of the ModelDeployments that fall back to this one."""
    fallback_targets: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    """ModelDeployment fallback targets by name (``None``: not found)."""
    fallback_services: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    """Service fallback targets by (namespace, name): whether each exists."""
    prometheus_url: str = ""
    operator_namespace: str = ""
    """The operator's namespace, admitted by the NetworkPolicy when ``spec.quality`` is set."""
    measurements: Measurements = field(default_factory=Measurements)
    prices: cost.PriceTable = cost.BUILTIN_PRICES
    opencost_shared: bool = False
    """Pods of other workloads in the namespace carry the ``cost.OPENCOST_MODEL_LABEL`` value its
    running pods carry (OpenCost's price would cover them too)."""


@dataclass(frozen=True)
class Telemetry:
    """What the pass exports as metrics (``slogate.telemetry``), recorded by the controller."""

    status: dict[str, Any]
    events: tuple[tuple[str, str], ...]
    gpus_requested: int
    gpus_running: int
    thresholds: dict[str, float]
    cause: str | None
    managed: dict[str, int]
    cost: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    """``record_input_drift`` keywords after a check; ``{}`` to forget the series; ``None``: untouched."""


@dataclass(frozen=True)
class ReconcilePlan:
    """What to do, in the order the controller does it."""

    scale: tuple[tuple[str, int], ...] = ()
    """(Deployment name, replicas) through the scale subresource, before ``apply``."""
    apply: tuple[dict[str, Any], ...] = ()
    """Objects to server-side apply: only those the live object does not already match."""
    status: dict[str, Any] | None = None
    """The new status; the controller writes its difference from the old one (none: nothing)."""
    events: tuple[Event, ...] = ()
    delete: tuple[tuple[str, str, str], ...] = ()
    """(apiVersion, kind, name) to delete, after the status that records why."""
    clear_command: bool = False
    """Remove the consumed command annotation (metadata only, never spec)."""
    requeue_after: float | None = None
    telemetry: Telemetry | None = None
    desired: tuple[dict[str, Any], ...] = ()
    """Every object the spec wants (applied or already matching), for the managed-objects gauge."""


# ------------------------------------------------------------------------------------ the plan
def plan(obs: Observation) -> ReconcilePlan:
    """Decide one pass. Pure."""
    body, now = obs.body, obs.now
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    generation = int(meta.get("generation") or 0)
    old: dict[str, Any] = dict(body.get("status") or {})
    spec = obs.spec
    if spec is None:
        # Invalid spec: status says why; children are left exactly as they are.
        conditions, _ = not_ready(old, Reason.INVALID_SPEC, obs.problems, generation, now)
        status = {
            **old,
            "observedGeneration": generation,
            "phase": Phase.FAILED.value,
            "conditions": conditions,
            "message": obs.problems,
        }
        return ReconcilePlan(status=status, events=(Events.INVALID_SPEC(obs.problems),))

    caps = obs.caps
    owner = Owner(name=name, uid=meta["uid"])
    existing = revisions(obs.children)
    current = revision_of(spec)
    state = ro.RolloutState.from_status(old)
    stable_replicas = stable_size(spec, existing, state.stable)
    cand = DeploymentObs.from_object(existing[current], current) if current in existing else None
    observed_rollout = ro.Observed(
        current=current,
        stable_exists=state.stable in existing,
        candidate_ready=bool(cand and cand.fully_ready),
        candidate_full=bool(cand and cand.serves(stable_replicas)),
    )
    command = command_of(body)
    decision = ro.plan(
        spec=spec,
        state=state,
        observed=observed_rollout,
        analysis=obs.measurements.analysis,
        command=command,
        now=now,
        quality=obs.measurements.quality,
    )
    st = decision.state

    gpus_per_replica = spec.resources.gpu.count if spec.resources.gpu else 0
    notes: list[str] = []
    sizes = None
    canary_replicas = 0
    if st.canary is not None:
        sizes = rollout_sizes(
            strategy=spec.rollout.strategy.value,
            weight=decision.canary_weight,
            promoting=st.promoting,
            mirror=decision.mirror,
            scaled_down=decision.candidate_scaled_down,
            stable_replicas=stable_replicas,
            canary_ready=cand.ready if cand else 0,
            gpus_per_replica=gpus_per_replica,
            max_surge_gpus=spec.rollout.gpu_budget.max_surge_gp_us,
            autoscaled=spec.autoscaling is not None,
            pre_traffic=decision.pre_traffic,
        )
        canary_replicas = sizes.canary
        if sizes.note:
            notes.append(sizes.note)

    pods = list(obs.pods)
    check = preflight_of(spec, existing, pods, obs.nodes, canary_replicas if st.canary == current else None)
    if st.canary == current and not decision.candidate_scaled_down and canary_replicas == 0 and notes:
        # The GPU budget leaves no room for even one candidate replica: say so instead of waiting.
        check = Preflight(False, True, 0, Reason.INSUFFICIENT_GPU, notes[-1])

    fallback = fallback_of(spec, namespace, st, existing, old, obs)
    desired = build_desired(
        name=name,
        namespace=namespace,
        spec=spec,
        owner=owner,
        caps=caps,
        stable_revision=st.stable or current,
        canary_revision=st.canary,
        canary_replicas=canary_replicas,
        prometheus_url=obs.prometheus_url,
        aliases=list(obs.aliases),
        operator_namespace=obs.operator_namespace,
    )
    objects = list(desired.objects)
    notes += desired.notes  # settings the spec asks for that cannot apply: the headline says so
    if caps.prometheus_rules and (spec.slo or (spec.quality and spec.quality.probe)):
        # Recording rules and multiwindow burn-rate alerts generated from the SLO (docs/alerting.md).
        objects.append(
            prometheus_rule(name=name, namespace=namespace, spec=spec, owner_reference=owner.reference())
        )
    unrouted = route(
        objects,
        spec,
        name,
        namespace,
        owner,
        caps,
        st,
        decision,
        notes,
        fallback,
        candidate_ready=observed_rollout.candidate_ready,
        route_weight=sizes.route_weight if sizes is not None else 0,
    )
    router_problem: tuple[str, str] | None = None
    if spec.rollout.traffic.router == Router.INFERENCE_POOL:
        if unrouted is not None:
            router_problem = (Reason.ROUTER_UNAVAILABLE, unrouted)
        elif rejected := gateway_notes(obs.children):
            router_problem = (Reason.GATEWAY_REJECTED, "; ".join(rejected))
    if check is not None and not check.fits_at_all:
        # The shape can never be scheduled: create no pods, say why in status instead.
        objects = [o for o in objects if o["kind"] != "Deployment"]
    for obj in objects:
        preserve_track(obj, existing)

    scale: list[tuple[str, int]] = []
    if spec.autoscaling and st.stable == current and state.stable != current and current in existing:
        # Promotion under an autoscaler: hand spec.replicas over before our apply stops setting it,
        # so the promoted revision keeps its size instead of falling back to the default of 1.
        scale.append(
            (deployment_name(name, current), int((existing[current].get("spec") or {}).get("replicas") or 1))
        )
    if sizes is not None and sizes.stable is not None and st.stable in existing and st.stable != current:
        # The stable track shrinks as a promoted candidate becomes Ready (within the GPU budget),
        # and is back at full size whenever no promotion is under way.
        live = int((existing[st.stable].get("spec") or {}).get("replicas") or 0)
        if live != sizes.stable and st.stable not in decision.retire:
            scale.append((deployment_name(name, st.stable), sizes.stable))

    live_by_key = {(k, o["metadata"]["name"]): o for k, items in obs.children.items() for o in items}
    to_apply = []
    created: list[Event] = []
    for obj in objects:
        live = live_by_key.get((obj["kind"], obj["metadata"]["name"]))
        if live is not None and is_subset(obj, live) and same_selector(obj, live):
            continue
        to_apply.append(obj)
        if live is None and obj["kind"] == "Deployment":
            created.append(Events.CREATED(f"created Deployment {obj['metadata']['name']}"))

    # Status from what was observed (the Deployments as they were when this pass began: what the
    # apply changes, the next pass — woken by its watch event — reports).
    observed = {
        rev: DeploymentObs.from_object(d, rev) for rev, d in existing.items() if rev in (st.stable, st.canary)
    }
    plan_view = RevisionPlan(
        stable=st.stable or current, candidate=st.canary if st.canary and not st.outcome else None
    )
    rollout_events = list(decision.events)
    new_status, events = compute_status(
        generation=generation,
        plan=plan_view,
        deployments=observed,
        pods=pods,
        preflight=check,
        autoscaler=desired.autoscaler,
        notes=list(desired.autoscaler_notes),
        old=old,
        now=now,
        rollout_phase=decision.rollout_phase,
        rolled_back=st.outcome_message if st.outcome else None,
    )
    new_status.update(st.to_status())
    if st.waiting_for and new_status.get("phase") == Phase.PROGRESSING:
        new_status["message"] = st.waiting_for  # why the step does not complete, for kubectl and SREs
    if notes and new_status.get("phase") in (Phase.PROGRESSING, Phase.READY, Phase.PAUSED):
        # Traffic and budget notes (an approximated weight, a missing Gateway API) are worth the headline.
        new_status["message"] = "; ".join(dict.fromkeys(notes))
    if router_problem is not None:
        rollout_events.extend(router_status(new_status, old, router_problem, generation, now, decision))
    if fallback is not None:
        rollout_events.extend(fallback_status(new_status, fallback, generation, now, decision))
    rollout_events.extend(quality_probe_status(spec, new_status, old, generation, obs, decision))
    drift_events, drift_metrics = input_drift(spec, st.stable or current, new_status, generation, obs)
    rollout_events.extend(drift_events)
    pod_gpus = [
        pod_extended_requests(p).get(spec.resources.gpu.resource, 0) if spec.resources.gpu else 0
        for p in pods
    ]
    running = [
        g
        for g, p in zip(pod_gpus, pods, strict=True)
        if (p.get("status") or {}).get("phase") == PodPhase.RUNNING
    ]
    recorded_status = dict(new_status)
    recorded_events = tuple((e.type, e.reason) for e in rollout_events)
    cost_events, cost_metrics = cost_of(spec, pods, new_status, generation, obs)
    rollout_events.extend(cost_events)
    new_status["sloVerdict"] = st.last_verdict or old.get("sloVerdict")

    managed: dict[str, int] = {}
    for obj in objects:
        managed[obj["kind"]] = managed.get(obj["kind"], 0) + 1
    requeue: float | None = decision.requeue_after
    if new_status.get("phase") not in (Phase.READY, Phase.ROLLED_BACK, Phase.FAILED) and st.canary is None:
        requeue = min(decision.requeue_after, 2.0)
    created, rollout_events = _fold_created(created, rollout_events)
    return ReconcilePlan(
        scale=tuple(scale),
        apply=tuple(to_apply),
        status=new_status,
        events=tuple(created + rollout_events + events),
        delete=tuple(prune(objects, obs.children, decision.retire, keep=(st.stable, st.canary))),
        clear_command=command is not None,
        requeue_after=requeue,
        desired=tuple(objects),
        telemetry=Telemetry(
            status=recorded_status,
            events=recorded_events,
            gpus_requested=sum(pod_gpus),
            gpus_running=sum(running),
            thresholds=thresholds_of(spec),
            cause=decision.cause,
            managed=managed,
            cost=cost_metrics,
            drift=drift_metrics,
        ),
    )


# ------------------------------------------------------------------------------------ parts


def _fold_created(created: list[Event], rollout_events: list[Event]) -> tuple[list[Event], list[Event]]:
    """``(created, rollout_events)`` less the ``Created`` Events a ``Deployed`` of the same pass
    already tells, whose message then names the Deployment. Pure. A first revision's Deployment is
    created by the pass that deploys it directly and one Event says both (at 1,000 new
    ModelDeployments, a thousand writes fewer); a canary's Deployment keeps its own ``Created``."""
    if not created or not any(e.reason == Events.DEPLOYED.reason for e in rollout_events):
        return created, rollout_events
    names = ", ".join(e.message.removeprefix("created Deployment ") for e in created)
    return [], [
        e._replace(message=f"{e.message}: created Deployment {names}")
        if e.reason == Events.DEPLOYED.reason
        else e
        for e in rollout_events
    ]


def same_selector(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """A Service's selector is what we apply, key for key: ``is_subset`` would take the wider
    ``{deployment}`` as already applied over a live ``{deployment, revision}`` (the root Service
    after a pre-traffic gate or a blue-green preview), and the candidate would never get its
    traffic. Other kinds: True. Pure."""
    if desired.get("kind") != "Service":
        return True
    want = (desired.get("spec") or {}).get("selector")
    return want is None or want == (live.get("spec") or {}).get("selector")


def preflight_of(
    spec: ModelDeploymentSpec,
    existing: Mapping[str, Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    nodes: Sequence[NodeInfo],
    candidate_replicas: int | None,
) -> Preflight | None:
    """GPU preflight for the pods of the spec's revision that still need a node. Pure."""
    shape = shape_of(spec)
    if shape is None:
        return None
    current = revision_of(spec)
    deployment = existing.get(current)
    wanted = spec.replicas if not spec.autoscaling else spec.autoscaling.min_replicas
    if candidate_replicas is not None:
        wanted = candidate_replicas
    elif deployment is not None:
        wanted = int((deployment.get("spec") or {}).get("replicas") or wanted)
    mine = [p for p in pods if (p["metadata"].get("labels") or {}).get(C.LABEL_REVISION) == current]
    bound = [p for p in mine if (p.get("spec") or {}).get("nodeName")]
    needed = max(0, wanted - len(bound))
    if needed == 0 and wanted > 0:
        return Preflight(True, True, 0, "", f"all {wanted} replicas of revision {current} are scheduled")
    return preflight(shape, list(nodes), replicas=needed)


def preserve_track(obj: dict[str, Any], existing: Mapping[str, Mapping[str, Any]]) -> None:
    """Keep a revision's pod labels as they were created: relabelling the pod template of a
    promoted revision would restart every pod (and reload the model) for nothing. Edits ``obj``."""
    if obj["kind"] != "Deployment":
        return
    live = existing.get(obj["metadata"]["labels"].get(C.LABEL_REVISION))
    if live is None:
        return
    live_track = live["spec"]["template"]["metadata"].get("labels", {}).get(C.LABEL_TRACK)
    if live_track:
        obj["metadata"]["labels"][C.LABEL_TRACK] = live_track
        obj["spec"]["template"]["metadata"]["labels"][C.LABEL_TRACK] = live_track


def prune(
    objects: Sequence[Mapping[str, Any]],
    children: Mapping[str, Sequence[Mapping[str, Any]]],
    retire: tuple[str, ...],
    *,
    keep: tuple[str | None, ...] = (),
) -> list[tuple[str, str, str]]:
    """Children no longer desired; a revision's Deployment when the plan retires it or when it is
    neither of the revisions the state keeps (an orphan of an interrupted pass). Pure."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
    out = []
    for api_version, kind in CHILD_KINDS:
        for live in children.get(kind, []):
            lname = live["metadata"]["name"]
            if kind == "Deployment":
                rev = (live["metadata"].get("labels") or {}).get(C.LABEL_REVISION)
                if rev not in retire and (not keep or rev in keep):
                    continue
            elif (kind, lname) in wanted:
                continue
            out.append((api_version, kind, lname))
    return out


def route(
    objects: list[dict[str, Any]],
    spec: ModelDeploymentSpec,
    name: str,
    namespace: str,
    owner: Owner,
    caps: Capabilities,
    st: ro.RolloutState,
    decision: ro.Decision,
    notes: list[str],
    fallback: FallbackDecision | None = None,
    *,
    candidate_ready: bool = False,
    route_weight: int = 0,
) -> str | None:
    """Traffic: the root Service's selector, and the HTTPRoute (and InferencePools) for the
    gatewayAPI and inferencePool routers. Edits ``objects`` and ``notes``; returns why no route is
    applied when the router's API is not served (also in ``notes``), else ``None``."""
    router = spec.rollout.traffic.router
    gateway = router in (Router.GATEWAY_API, Router.INFERENCE_POOL)
    tier = find_target(spec.fallback, fallback.target) if fallback and fallback.active else None
    if tier is not None and not gateway:
        for obj in objects:
            if obj["kind"] == "Service" and obj["metadata"]["name"] == name:
                if tier.model_deployment:
                    # The fallback's pods answer to our served name too (aliases), so clients need no change.
                    obj["spec"]["selector"] = root_selector(
                        name=name, fallback_model_deployment=tier.model_deployment
                    )
                else:
                    notes.append(
                        "a service fallback tier needs the gatewayAPI router; the replicas router "
                        "can only fall back to another ModelDeployment"
                    )
        return None
    # Weighted routes, previews, mirrors and a pre-traffic quality gate need the root Service to
    # select stable only.
    stable_only = (
        gateway or spec.rollout.strategy in (Strategy.BLUE_GREEN, Strategy.SHADOW) or decision.pre_traffic
    )
    for obj in objects:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == name and stable_only and st.stable:
            obj["spec"]["selector"] = {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: st.stable}
    if not gateway:
        return None
    pools = router == Router.INFERENCE_POOL
    missing = None
    if not caps.gateway_api:
        missing = (
            f"router {router.value} asked but Gateway API is not installed: traffic follows the replica ratio"
        )
    elif pools and not caps.inference_pool:
        missing = (
            "router inferencePool asked but the InferencePool API (inference.networking.k8s.io/v1) is not"
            " served: install the Gateway API Inference Extension CRDs; no route or pool is applied"
        )
    if missing is not None:
        notes.append(missing)
        return missing
    traffic = spec.rollout.traffic.inference_pool if pools else spec.rollout.traffic.gateway_api
    assert traffic is not None
    canary_in_route = st.canary is not None and not decision.candidate_scaled_down
    if pools:
        assert spec.rollout.traffic.inference_pool is not None
        objects += build_inference_pools(
            name=name,
            namespace=namespace,
            owner=owner,
            stable=st.stable,
            canary=st.canary if canary_in_route else None,
            port=spec.engine.port,
            traffic=spec.rollout.traffic.inference_pool,
        )
    weight = route_weight if candidate_ready else 0
    mirror = decision.mirror and candidate_ready and not pools
    objects.append(
        build_httproute(
            name=name,
            namespace=namespace,
            owner=owner,
            traffic=traffic,
            # Never route or mirror to a candidate that is not Ready (its Service would have no
            # endpoints); a candidate with neither weight nor mirror is not in the route at all.
            canary_weight=weight,
            canary=canary_in_route and bool(weight or mirror),
            mirror=mirror,
            fallback_backend=backend_of_target(tier) if tier is not None and not pools else None,
            fallback_pool=pool_of_target(tier) if tier is not None and pools else None,
        )
    )
    return None


def gateway_notes(children: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """What the gateways say is wrong with this ModelDeployment's InferencePools and HTTPRoute:
    every parent condition whose status is not ``True`` (``Accepted``, ``ResolvedRefs``, with reasons
    such as ``EndpointPickerRefMissing``, ``InvalidExtensionRef``, ``BackendNotFound``), as
    ``"InferencePool NAME on Gateway NS/GW: Accepted=False (Reason): message"``. Pure; ``plan``
    puts them in the status headline. A parent with no conditions yet (the gateway has not seen the
    object) says nothing: absence is not a failure.
    """
    out: list[str] = []
    for kind in ("InferencePool", "HTTPRoute"):
        for obj in children.get(kind, []):
            for parent in (obj.get("status") or {}).get("parents") or []:
                ref = parent.get("parentRef") or {}
                where = f"{ref.get('kind') or 'Gateway'} {ref.get('namespace') or obj['metadata'].get('namespace', '')}/{ref.get('name', '?')}"
                for c in parent.get("conditions") or []:
                    if c.get("status") != "True":
                        out.append(
                            f"{kind} {obj['metadata']['name']} on {where}: {c.get('type')}={c.get('status')}"
                            f" ({c.get('reason', '')}): {c.get('message', '')}".rstrip(": ")
                        )
    return out


def tier_health(spec: ModelDeploymentSpec, namespace: str, obs: Observation) -> list[TierHealth]:
    """Each fallback tier's health from the observed targets. Pure."""
    tiers = []
    for target in spec.fallback.targets if spec.fallback else []:
        tid = target_id(target)
        if target.model_deployment:
            md = obs.fallback_targets.get(target.model_deployment)
            ready = int(((md or {}).get("status") or {}).get("readyReplicas") or 0)
            tiers.append(
                TierHealth(
                    tid,
                    md is not None and ready > 0,
                    "" if ready else f"ModelDeployment {target.model_deployment} has no ready replica",
                )
            )
        else:
            assert target.service is not None
            found = obs.fallback_services.get(
                (target.service.namespace or namespace, target.service.name), False
            )
            tiers.append(TierHealth(tid, found, "" if found else f"Service {target.service.name} not found"))
    return tiers


def fallback_of(
    spec: ModelDeploymentSpec,
    namespace: str,
    st: ro.RolloutState,
    existing: Mapping[str, Mapping[str, Any]],
    old: Mapping[str, Any],
    obs: Observation,
) -> FallbackDecision | None:
    """The fallback policy's decision: is the primary healthy, and which tier serves if not. Pure."""
    previous = old.get("fallback")
    if spec.fallback is None and not (previous or {}).get("active"):
        return None
    stable = (
        DeploymentObs.from_object(dict(existing[st.stable]), st.stable) if st.stable in existing else None
    )
    healthy, reason = True, ""
    measured = obs.measurements.stable_slo
    if stable is None or stable.ready == 0:
        healthy, reason = False, f"no ready replica of revision {st.stable}"
    elif spec.slo and spec.fallback and measured is not None and measured[0] == st.stable:
        if measured[1] == Verdict.FAIL:
            healthy, reason = False, f"revision {st.stable} breaches its SLO: {measured[2]}"
    if (
        healthy
        and spec.fallback
        and spec.quality
        and spec.quality.probe
        and spec.quality.probe.trigger_fallback
    ):
        last = latest_probe(obs, old)
        if last is not None and last.get("revision") == st.stable and last.get("verdict") == Verdict.FAIL:
            _, why = fold(last.get("suites") or [])
            healthy, reason = False, f"revision {st.stable} fails its quality probe: {why}"
    return decide_fallback(
        fallback=spec.fallback,
        previous=previous,
        primary_healthy=healthy,
        primary_reason=reason,
        tiers=tier_health(spec, namespace, obs),
        now=obs.now,
    )


def latest_probe(obs: Observation, old: Mapping[str, Any]) -> dict[str, Any] | None:
    """The latest production probe run: the one that finished this pass, else the one in status."""
    if obs.measurements.probe is not None:
        return obs.measurements.probe[1]
    return (old.get("qualityProbe") or {}).get("lastRun")


def quality_probe_status(
    spec: ModelDeploymentSpec,
    new_status: dict[str, Any],
    old: Mapping[str, Any],
    generation: int,
    obs: Observation,
    decision: ro.Decision,
) -> list[Event]:
    """``status.qualityProbe`` and the ``QualityDegraded`` condition from the production probe
    (docs/quality.md): True with the failing suites and cases when a probe run fails, False when one
    passes, Unknown when it reaches no verdict; absent without ``quality.probe``. A Warning Event
    when it becomes True, a Normal one when it clears. Edits ``new_status``."""
    conditions = new_status.get("conditions") or []
    if spec.quality is None or spec.quality.probe is None:
        new_status["qualityProbe"] = None
        new_status["conditions"], _ = remove_condition(conditions, ConditionType.QUALITY_DEGRADED)
        return []
    last = latest_probe(obs, old)
    new_status["qualityProbe"] = {"lastRun": last} if last else None
    if obs.measurements.probe is None:
        return []
    verdict, record, summary = obs.measurements.probe
    status, reason = {
        Verdict.FAIL: (ConditionStatus.TRUE, Reason.QUALITY_FAILING),
        Verdict.PASS: (ConditionStatus.FALSE, Reason.QUALITY_PASSING),
    }.get(Verdict(verdict), (ConditionStatus.UNKNOWN, Reason.QUALITY_UNKNOWN))
    message = f"revision {record.get('revision')}: {summary}"
    before = get_condition(conditions, ConditionType.QUALITY_DEGRADED) or {}
    new_status["conditions"], _ = set_condition(
        conditions,
        type=ConditionType.QUALITY_DEGRADED,
        status=status,
        reason=reason,
        message=message[:1024],
        observed_generation=generation,
        now=obs.now,
    )
    new_status["phase"] = phase_from(new_status["conditions"], rollout_phase=decision.rollout_phase)
    was = before.get("status")
    if status == ConditionStatus.TRUE and was != ConditionStatus.TRUE:
        return [Events.QUALITY_DEGRADED(message)]
    if status == ConditionStatus.FALSE and was == ConditionStatus.TRUE:
        return [Events.QUALITY_RESTORED(message)]
    return []


def router_status(
    new_status: dict[str, Any],
    old: Mapping[str, Any],
    problem: tuple[str, str],
    generation: int,
    now: datetime,
    decision: ro.Decision,
) -> list[Event]:
    """``Degraded=True`` with ``RouterUnavailable`` or ``GatewayRejected`` and the message, the
    phase, the headline, and a Warning Event when the reason or message is new. Edits
    ``new_status``. A breach or a crash-looping engine already on ``Degraded`` keeps the condition:
    the route problem is then only in the headline."""
    reason, message = problem
    current = get_condition(new_status["conditions"], ConditionType.DEGRADED)
    if (
        current is not None
        and current.get("status") == ConditionStatus.TRUE
        and current.get("reason") not in (Reason.ROUTER_UNAVAILABLE, Reason.GATEWAY_REJECTED)
    ):
        new_status["message"] = message
        return []
    conditions, _ = set_condition(
        new_status["conditions"],
        type=ConditionType.DEGRADED,
        status=ConditionStatus.TRUE,
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    new_status["conditions"] = conditions
    new_status["phase"] = phase_from(conditions, rollout_phase=decision.rollout_phase)
    new_status["message"] = message
    before = get_condition(old.get("conditions") or [], ConditionType.DEGRADED) or {}
    if (before.get("reason"), before.get("message")) == (reason, message):
        return []
    spec = Events.ROUTER_UNAVAILABLE if reason == Reason.ROUTER_UNAVAILABLE else Events.GATEWAY_REJECTED
    return [spec(message)]


def fallback_status(
    new_status: dict[str, Any], fb: FallbackDecision, generation: int, now: datetime, decision: ro.Decision
) -> list[Event]:
    """``status.fallback``, the ``FallbackActive`` condition and the phase. Edits ``new_status``."""
    new_status["fallback"] = {k: v for k, v in fb.as_status().items() if v is not None}
    conditions, _ = set_condition(
        new_status["conditions"],
        type=ConditionType.FALLBACK_ACTIVE,
        status=ConditionStatus.TRUE if fb.active else ConditionStatus.FALSE,
        reason=Reason.FALLBACK_ACTIVE if fb.active else Reason.PRIMARY_SERVING,
        message=fb.message or ("traffic is on " + str(fb.target) if fb.active else "the primary serves"),
        observed_generation=generation,
        now=now,
    )
    new_status["conditions"] = conditions
    new_status["phase"] = phase_from(conditions, rollout_phase=decision.rollout_phase)
    if fb.active:
        new_status["message"] = fb.message
    return [fb.event] if fb.event else []


def input_drift(
    spec: ModelDeploymentSpec, stable: str, new_status: dict[str, Any], generation: int, obs: Observation
) -> tuple[list[Event], dict[str, Any] | None]:
    """The request mix against its baseline (``core.drift``, docs/drift.md) when a check was due.
    Status changes only when the baseline is (re)recorded or the condition's status or reason
    changes. Edits ``new_status``; returns the events and the drift metrics to record."""
    settings = drift.settings_of(spec)
    if settings.enabled and not obs.measurements.drift_due:
        return [], None
    conditions = new_status.get("conditions") or []
    decision = drift.decide(
        settings=settings,
        stable=stable,
        baseline=new_status.get("inputBaseline"),
        measurement=obs.measurements.drift if settings.enabled else None,
        previous=drift.previous_condition(conditions),
        generation=generation,
        now=obs.now,
        serving_since=drift.serving_since(conditions),
    )
    new_status["inputBaseline"] = decision.baseline
    new_status["conditions"] = drift.apply_condition(conditions, decision, generation=generation, now=obs.now)
    metrics: dict[str, Any] = (
        {}
        if decision.remove
        else {"distances": decision.distances, "drifting": decision.drifting, "threshold": settings.threshold}
    )
    return list(decision.events), metrics


def cost_of(
    spec: ModelDeploymentSpec,
    pods: Sequence[Mapping[str, Any]],
    new_status: dict[str, Any],
    generation: int,
    obs: Observation,
) -> tuple[list[Event], dict[str, Any]]:
    """``status.cost`` and the ``OverBudget`` condition (``core.cost``, docs/cost.md): the GPUs of
    running pods at their node's product price, and generated tokens from Prometheus, or OpenCost's
    price per million tokens where it has one for the pods (``cost.opencost_price``). The status
    moves only as ``cost_status`` allows; the metrics carry the exact values. Edits ``new_status``."""
    gpu = spec.resources.gpu
    held = cost.holdings(
        list(pods),
        node_products=dict(obs.node_products),
        spec_product=gpu.products[0] if gpu and gpu.products else None,
    )
    per_hour = cost.cost_per_hour(held, obs.prices)
    m = obs.measurements
    estimate = cost.Estimate(
        gpus=sum(h.units for h in held),
        per_hour=per_hour,
        currency=obs.prices.currency,
        window=cost.cost_window(spec),
        tokens_per_hour=m.tokens_per_hour,
        measured=m.tokens_measured,
        opencost=cost.opencost_price(
            namespace=obs.body["metadata"]["namespace"],
            pods=list(pods),
            answer=m.opencost,
            shared=obs.opencost_shared,
        ),
    )
    new_status["cost"] = cost.cost_status(new_status.get("cost"), estimate, now=obs.now)
    new_status["conditions"], events = cost.budget_condition(
        new_status.get("conditions") or [],
        cost.budget_verdict(spec.budget, new_status["cost"]),
        observed_generation=generation,
        now=obs.now,
    )
    exact = estimate.per_million_tokens
    metrics = {
        "currency": obs.prices.currency,
        "per_hour": float(per_hour),
        "per_million_tokens": float(exact) if exact is not None else None,
        "budget": float(spec.budget.max_cost_per_million_tokens) if spec.budget else None,
        "tokens_measured": estimate.answered,
    }
    return events, metrics
