"""The ModelDeployment's status and the Events worth telling, from what was observed. Pure.

``compute_status`` takes the previous status and everything observed in one reconcile and returns
the new status plus the Events for what changed; ``status_patch`` turns old and new into the
smallest merge patch, empty when nothing changed (argo-rollouts' persistRolloutStatus is the model:
one status write per reconcile, and none when it would not change anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slogate.core.conditions import phase_from, set_condition
from slogate.core.preflight import Preflight, crashloop_message, unschedulable_message
from slogate.core.vocabulary import EVENTS_BY_REASON, ConditionStatus, Event, Events, Phase
from slogate.core.vocabulary import ConditionType as T
from slogate.core.vocabulary import Reason as R

TRUE, FALSE = ConditionStatus.TRUE.value, ConditionStatus.FALSE.value


@dataclass(frozen=True)
class RevisionPlan:
    """Which revisions serve, as ``compute_status`` needs to know."""

    stable: str
    """Revision that serves users."""
    candidate: str | None = None
    """Revision rolling out beside stable, if any."""


@dataclass(frozen=True)
class DeploymentObs:
    """What one revision's Deployment reports."""

    revision: str
    name: str
    desired: int
    replicas: int
    ready: int
    available: int
    up_to_date: bool

    @classmethod
    def from_object(cls, obj: dict[str, Any], revision: str) -> DeploymentObs:
        """Read a Deployment dict. Pure."""
        spec = obj.get("spec") or {}
        st = obj.get("status") or {}
        gen = (obj.get("metadata") or {}).get("generation")
        return cls(
            revision=revision,
            name=obj["metadata"]["name"],
            desired=int(spec.get("replicas", 1)),
            replicas=int(st.get("replicas") or 0),
            ready=int(st.get("readyReplicas") or 0),
            available=int(st.get("availableReplicas") or 0),
            up_to_date=st.get("observedGeneration") == gen,
        )

    def serves(self, replicas: int) -> bool:
        """Sized for at least ``replicas``, that many Ready, and the Deployment controller caught up."""
        return self.up_to_date and self.desired >= replicas and self.ready >= replicas

    @property
    def fully_ready(self) -> bool:
        """Every desired replica Ready and the Deployment controller caught up."""
        return self.desired > 0 and self.serves(self.desired)


def _cond(old: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    new, _ = set_condition(old, **kwargs)
    return new


def compute_status(
    *,
    generation: int,
    plan: RevisionPlan,
    deployments: dict[str, DeploymentObs],
    pods: list[dict[str, Any]],
    preflight: Preflight | None,
    autoscaler: str | None,
    notes: list[str],
    old: dict[str, Any],
    now: datetime,
    rollout_phase: str | None = "derive",
    rolled_back: str | None = None,
) -> tuple[dict[str, Any], list[Event]]:
    """The new status (camelCase dict) and the Events for what changed. Pure; consumed by
    ``controller.reconcile``, which writes ``status_patch(old, new)`` and posts the Events."""
    events: list[Event] = []
    conditions = list(old.get("conditions") or [])
    gen = {"observed_generation": generation, "now": now}
    stable = deployments.get(plan.stable)
    candidate = deployments.get(plan.candidate) if plan.candidate else None
    desired = stable.desired if stable else 0
    ready = stable.ready if stable else 0
    total_replicas = sum(d.replicas for d in deployments.values())
    total_ready = sum(d.ready for d in deployments.values())

    if ready > 0:
        conditions = _cond(
            conditions,
            type=T.AVAILABLE,
            status=TRUE,
            reason=R.MINIMUM_REPLICAS_AVAILABLE,
            message=f"{ready} of {desired} replicas of revision {plan.stable} are Ready",
            **gen,
        )
    else:
        conditions = _cond(
            conditions,
            type=T.AVAILABLE,
            status=FALSE,
            reason=R.NO_REPLICAS_READY,
            message=f"no replica of revision {plan.stable} is Ready",
            **gen,
        )
    if stable and stable.fully_ready and candidate is None:
        conditions = _cond(
            conditions,
            type=T.READY,
            status=TRUE,
            reason=R.ALL_REPLICAS_READY,
            message=f"revision {plan.stable} serves with {ready}/{desired} replicas Ready",
            **gen,
        )
    else:
        why = (
            f"revision {plan.candidate} is coming up beside {plan.stable}"
            if candidate or plan.candidate
            else f"{ready} of {desired} replicas of revision {plan.stable} are Ready"
        )
        conditions = _cond(
            conditions,
            type=T.READY,
            status=FALSE,
            reason=R.REVISION_PROGRESSING if plan.candidate else R.MINIMUM_REPLICAS_UNAVAILABLE,
            message=why,
            **gen,
        )
    if plan.candidate:
        cready = candidate.ready if candidate else 0
        cdesired = candidate.desired if candidate else 0
        conditions = _cond(
            conditions,
            type=T.PROGRESSING,
            status=TRUE,
            reason=R.REVISION_PROGRESSING,
            message=f"revision {plan.candidate}: {cready}/{cdesired} replicas Ready; "
            f"revision {plan.stable} keeps serving until then",
            **gen,
        )
    else:
        conditions = _cond(
            conditions,
            type=T.PROGRESSING,
            status=TRUE,
            reason=R.NEW_REVISION_AVAILABLE,
            message=f"revision {plan.stable} is the serving revision",
            **gen,
        )

    unschedulable = unschedulable_message(pods)
    crashloop = crashloop_message(pods)
    if rolled_back:
        conditions = _cond(
            conditions, type=T.DEGRADED, status=TRUE, reason=R.ROLLED_BACK, message=rolled_back, **gen
        )
    elif crashloop:
        conditions = _cond(
            conditions, type=T.DEGRADED, status=TRUE, reason=R.ENGINE_CRASH_LOOPING, message=crashloop, **gen
        )
    elif unschedulable:
        conditions = _cond(
            conditions,
            type=T.DEGRADED,
            status=TRUE,
            reason=R.PODS_UNSCHEDULABLE,
            message=unschedulable,
            **gen,
        )
    elif (
        stable
        and stable.ready < stable.desired
        and stable.up_to_date
        and plan.candidate is None
        and ready > 0
        # Lost replicas after serving, not still starting.
        and old.get("phase") in (Phase.READY, Phase.DEGRADED)
    ):
        conditions = _cond(
            conditions,
            type=T.DEGRADED,
            status=TRUE,
            reason=R.MINIMUM_REPLICAS_UNAVAILABLE,
            message=f"{ready} of {desired} replicas Ready",
            **gen,
        )
    else:
        conditions = _cond(conditions, type=T.DEGRADED, status=FALSE, reason=R.AS_EXPECTED, message="", **gen)

    if preflight is not None:
        if preflight.ok:
            conditions = _cond(
                conditions,
                type=T.INSUFFICIENT_GPU,
                status=FALSE,
                reason=R.GPU_AVAILABLE,
                message=preflight.message or "enough GPUs are free",
                **gen,
            )
        else:
            conditions = _cond(
                conditions,
                type=T.INSUFFICIENT_GPU,
                status=TRUE,
                reason=preflight.reason,
                message=preflight.message,
                **gen,
            )

    if rollout_phase == "derive":
        rollout_phase = Phase.PROGRESSING if plan.candidate else None
    phase = phase_from(conditions, rollout_phase=rollout_phase)
    message = None
    for ctype in (T.INSUFFICIENT_GPU, T.DEGRADED):
        c = next((c for c in conditions if c["type"] == ctype and c["status"] == TRUE), None)
        if c:
            message = c["message"]
            break
    if message is None:
        message = next(
            c["message"] for c in conditions if c["type"] == (T.PROGRESSING if plan.candidate else T.READY)
        )

    new: dict[str, Any] = {
        **{k: v for k, v in old.items() if k not in ("conditions",)},
        "observedGeneration": generation,
        "phase": phase,
        "conditions": conditions,
        "stableRevision": plan.stable,
        "canaryRevision": plan.candidate,
        # None (absent) until a Deployment is seen: the first pass, which creates it, has nothing
        # to count, and a 0 there would read as scaled-to-zero and post a spurious "Scaled 0 → N".
        "replicas": total_replicas if deployments else None,
        "readyReplicas": total_ready,
        "ready": f"{total_ready}/{desired + (candidate.desired if candidate else 0)}",
        "autoscaler": autoscaler if not notes else f"{autoscaler}: {' '.join(notes)}",
        "message": message,
    }

    # Events for transitions only: a steady state posts nothing.
    old_conds = {c["type"]: c for c in old.get("conditions") or []}

    def flipped(ctype: str, status: str = TRUE) -> dict[str, Any] | None:
        c = next((c for c in conditions if c["type"] == ctype), None)
        before = old_conds.get(ctype)
        if (
            c
            and c["status"] == status
            and (before is None or before["status"] != status or before["reason"] != c["reason"])
        ):
            return c
        return None

    # A condition that turns bad is told by an Event of its reason (``InsufficientGPU``,
    # ``GPUShapeUnsatisfiable``, ``EngineCrashLooping``, ...), with that reason's one type.
    if c := flipped(T.INSUFFICIENT_GPU):
        events.append(EVENTS_BY_REASON[c["reason"]](c["message"]))
    if (c := flipped(T.DEGRADED)) and c["reason"] != R.ROLLED_BACK:  # the rollout posts its own RolledBack
        events.append(EVENTS_BY_REASON[c["reason"]](c["message"]))
    if c := flipped(T.READY):
        events.append(Events.READY(c["message"]))
    if (
        stable
        and old.get("stableRevision") == plan.stable
        and old.get("replicas") not in (None, total_replicas)
        and plan.candidate is None
        and not old.get("canaryRevision")  # a candidate going away is not a scaling of stable
    ):
        events.append(
            Events.SCALED(f"revision {plan.stable} scaled {old.get('replicas')} → {total_replicas} replicas")
        )
    if notes and old.get("autoscaler") != new["autoscaler"]:
        events.append(Events.AUTOSCALER_FALLBACK(" ".join(notes)))
    return new, events


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) taking ``old`` to ``new``; empty when nothing changed. Pure.

    Nested objects are patched key by key, and a key that disappeared becomes ``null`` — a merge
    patch merges objects, so sending a whole sub-object would keep keys it no longer has.

    >>> status_patch({"phase": "Ready", "x": 1}, {"phase": "Ready", "x": 2})
    {'x': 2}
    >>> status_patch({"a": 1}, {"a": None})
    {'a': None}
    >>> status_patch({"r": {"paused": "gate", "id": "1"}}, {"r": {"id": "2"}})
    {'r': {'id': '2', 'paused': None}}
    >>> status_patch({"a": 1}, {"a": 1})
    {}
    """
    patch: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            patch[key] = status_patch(before, after)
        else:
            patch[key] = after
    return patch
