"""Standard conditions of a ModelDeployment, and the phase derived from them.

Conditions are plain camelCase dicts in the ``metav1.Condition`` shape (``type``, ``status``,
``observedGeneration``, ``lastTransitionTime``, ``reason``, ``message``), kept as a list-map keyed
by ``type``. Every function here returns new data and never mutates its input, and reports
whether anything changed, so the controller writes status only when it differs (argo-rollouts'
``SetRolloutCondition`` and ``persistRolloutStatus``). The phase is computed from the conditions,
never stored on its own, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from slogate.api.v1alpha1 import ConditionStatus, Phase


class ConditionType:
    """Condition types a ModelDeployment reports."""

    READY: Final = "Ready"
    """Every desired replica of the serving revision is ready."""
    AVAILABLE: Final = "Available"
    """At least the minimum number of replicas serve traffic."""
    PROGRESSING: Final = "Progressing"
    """A new revision is being rolled out, or the last rollout finished."""
    DEGRADED: Final = "Degraded"
    """Serving, but below the SLO or with fewer replicas than desired; or reconciling fails."""
    INSUFFICIENT_GPU: Final = "InsufficientGPU"
    """The GPU shape cannot be placed: not now (capacity in use) or never (no node can hold it)."""
    FALLBACK_ACTIVE: Final = "FallbackActive"
    """Traffic is on a fallback tier instead of this model."""
    INPUT_DRIFT: Final = "InputDrift"
    """Live request inputs differ from what the model was validated with."""
    OVER_BUDGET: Final = "OverBudget"
    """The cost per million tokens exceeds ``spec.budget`` (absent without a budget)."""


CONDITION_TYPES: Final = (
    ConditionType.READY,
    ConditionType.AVAILABLE,
    ConditionType.PROGRESSING,
    ConditionType.DEGRADED,
    ConditionType.INSUFFICIENT_GPU,
    ConditionType.FALLBACK_ACTIVE,
    ConditionType.INPUT_DRIFT,
    ConditionType.OVER_BUDGET,
)
"""Every condition type, in the order status lists them."""


class Reason:
    """CamelCase reasons an SRE can grep, shared by conditions and Events."""

    MINIMUM_REPLICAS_AVAILABLE: Final = "MinimumReplicasAvailable"
    """At least the minimum number of replicas are ready."""
    ALL_REPLICAS_READY: Final = "AllReplicasReady"
    """Every desired replica is ready."""
    MINIMUM_REPLICAS_UNAVAILABLE: Final = "MinimumReplicasUnavailable"
    """Fewer replicas are ready than the minimum needed to be available."""
    NO_REPLICAS_READY: Final = "NoReplicasReady"
    """Not one replica is ready."""
    NEW_REVISION_AVAILABLE: Final = "NewRevisionAvailable"
    """The latest revision was promoted and serves all traffic."""
    REVISION_PROGRESSING: Final = "RevisionProgressing"
    """A new revision is being rolled out."""
    RECONCILE_ERROR: Final = "ReconcileError"
    """Reconciling failed; the message carries the error and it will be retried."""
    INVALID_SPEC: Final = "InvalidSpec"
    """The spec cannot be acted on; only an edit fixes it."""
    INSUFFICIENT_GPU: Final = "InsufficientGPU"
    """The GPUs exist but not enough are free now."""
    GPU_SHAPE_UNSATISFIABLE: Final = "GPUShapeUnsatisfiable"
    """No node could hold one replica even if it were empty."""
    GPU_AVAILABLE: Final = "GPUAvailable"
    """Enough GPUs are free for every desired replica."""
    PODS_UNSCHEDULABLE: Final = "PodsUnschedulable"
    """The scheduler reports pods it cannot place."""
    ENGINE_CRASH_LOOPING: Final = "EngineCrashLooping"
    """An engine container keeps crashing or cannot start (image, config)."""
    AUTOSCALER_FALLBACK: Final = "AutoscalerFallback"
    """KEDA is not installed, so an HPA scales instead."""
    ROLLED_BACK: Final = "RolledBack"
    """The candidate breached its SLO (or stayed inconclusive) and traffic went back to stable."""
    AS_EXPECTED: Final = "AsExpected"
    """Nothing to report; the condition holds its normal value."""
    OVER_BUDGET: Final = "OverBudget"
    """The cost per million generated tokens exceeds ``spec.budget``."""
    WITHIN_BUDGET: Final = "WithinBudget"
    """The cost per million generated tokens is within ``spec.budget``."""
    NO_TRAFFIC: Final = "NoTraffic"
    """No tokens were generated in the window, so there is no cost per token to judge."""
    CURRENCY_MISMATCH: Final = "CurrencyMismatch"
    """``spec.budget.currency`` differs from the price table's currency."""


REASONS: Final = tuple(v for k, v in vars(Reason).items() if k.isupper())
"""Every reason."""

_STATUSES = frozenset(s.value for s in ConditionStatus)


def rfc3339(now: datetime) -> str:
    """``now`` as an RFC 3339 UTC timestamp with second precision and a ``Z``. Pure.

    >>> rfc3339(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC))
    '2026-01-02T03:04:05Z'
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (pass datetime.now(UTC))")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any) -> datetime | None:
    """A timezone-aware time from an RFC 3339 timestamp in status, or ``None`` when it is absent,
    unreadable or has no offset. Pure; the reverse of ``rfc3339``.

    >>> parse_rfc3339("2026-01-02T03:04:05Z")
    datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    >>> parse_rfc3339("2026-01-02T03:04:05"), parse_rfc3339("yesterday"), parse_rfc3339(None)
    (None, None, None)
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def get_condition(conditions: Sequence[Mapping[str, Any]], type: str) -> dict[str, Any] | None:
    """A copy of the condition of ``type``, or ``None``. Pure."""
    for cond in conditions:
        if cond.get("type") == type:
            return dict(cond)
    return None


def is_true(conditions: Sequence[Mapping[str, Any]], type: str) -> bool:
    """Whether the condition of ``type`` exists with status ``True``. Pure."""
    cond = get_condition(conditions, type)
    return cond is not None and cond.get("status") == ConditionStatus.TRUE


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type: str,
    status: str,
    reason: str,
    message: str,
    observed_generation: int,
    now: datetime,
) -> tuple[list[dict[str, Any]], bool]:
    """Set one condition; return a new list and whether anything changed. Pure.

    The list keeps its order and a new type is appended. ``lastTransitionTime`` becomes ``now``
    only when the status flips (or the condition is new); otherwise only reason, message and
    ``observedGeneration`` are updated. ``changed`` is ``False`` when the result equals the input,
    so the controller can skip the status patch (argo-rollouts ``SetRolloutCondition``). Consumed
    by ``core.status`` and the controller.
    """
    status = str(status)
    if status not in _STATUSES:
        raise ValueError(f"condition status must be True, False or Unknown, got {status!r}")
    stamp = rfc3339(now)
    out: list[dict[str, Any]] = []
    found = False
    changed = False
    for cond in conditions:
        if found or cond.get("type") != type:
            out.append(dict(cond))
            continue
        found = True
        updated = {
            **cond,
            "status": status,
            "observedGeneration": observed_generation,
            "reason": reason,
            "message": message,
        }
        if cond.get("status") != status or not cond.get("lastTransitionTime"):
            updated["lastTransitionTime"] = stamp
        changed = updated != dict(cond)
        out.append(updated)
    if not found:
        out.append(
            {
                "type": type,
                "status": status,
                "observedGeneration": observed_generation,
                "lastTransitionTime": stamp,
                "reason": reason,
                "message": message,
            }
        )
        changed = True
    return out, changed


def remove_condition(conditions: Sequence[Mapping[str, Any]], type: str) -> tuple[list[dict[str, Any]], bool]:
    """Drop the condition of ``type``; return a new list and whether it was there. Pure."""
    out = [dict(c) for c in conditions if c.get("type") != type]
    return out, len(out) != len(conditions)


def phase_from(conditions: Sequence[Mapping[str, Any]], *, rollout_phase: str | None = None) -> str:
    """The phase a ModelDeployment is in, derived from its conditions. Pure.

    The first matching row wins (the model is argo-rollouts' ``CalculateRolloutPhase``):

    ====  ==========================================================================  ==========
    #     When                                                                        Phase
    ====  ==========================================================================  ==========
    1     any condition has reason ``InvalidSpec``, or ``InsufficientGPU`` is          Failed
          ``True`` with reason ``GPUShapeUnsatisfiable``
    2     ``FallbackActive`` is ``True``                                               Fallback
    3     ``rollout_phase`` is ``Paused``, ``RolledBack`` or ``Progressing``           that phase
    4     ``Degraded`` is ``True``                                                     Degraded
    5     ``Ready`` is ``True``                                                        Ready
    6     otherwise                                                                   Pending
    ====  ==========================================================================  ==========

    Failed comes first because only an edit (or new hardware) can fix it; Fallback next because
    users are not served by this model at all; a rollout's own state is more specific than the
    health of stable. Any other ``rollout_phase`` (``None``, ``Ready``, ...) is ignored. Consumed
    by ``core.status``, which writes ``status.phase``.
    """
    gpu = get_condition(conditions, ConditionType.INSUFFICIENT_GPU)
    if any(c.get("reason") == Reason.INVALID_SPEC for c in conditions) or (
        gpu is not None
        and gpu.get("status") == ConditionStatus.TRUE
        and gpu.get("reason") == Reason.GPU_SHAPE_UNSATISFIABLE
    ):
        return Phase.FAILED.value
    if is_true(conditions, ConditionType.FALLBACK_ACTIVE):
        return Phase.FALLBACK.value
    if rollout_phase in (Phase.PAUSED, Phase.ROLLED_BACK, Phase.PROGRESSING):
        return Phase(rollout_phase).value
    if is_true(conditions, ConditionType.DEGRADED):
        return Phase.DEGRADED.value
    if is_true(conditions, ConditionType.READY):
        return Phase.READY.value
    return Phase.PENDING.value
