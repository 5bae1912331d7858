"""Standard conditions of a ModelDeployment, and the phase derived from them.

Conditions are plain camelCase dicts in the ``metav1.Condition`` shape (``type``, ``status``,
``observedGeneration``, ``lastTransitionTime``, ``reason``, ``message``), kept as a list-map keyed
by ``type``. Every function here returns new data and never mutates its input, and reports
whether anything changed, so the controller writes status only when it differs (argo-rollouts'
``SetRolloutCondition`` and ``persistRolloutStatus``). The phase is computed from the conditions,
never stored on its own, so the two cannot disagree.

The words themselves — condition types, reasons, phases — are in ``core.vocabulary``; ``ConditionType``,
``Reason``, ``CONDITION_TYPES`` and ``REASONS`` are importable from here too, as are ``rfc3339`` and
``parse_rfc3339`` (``core.timefmt``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slogate.core.timefmt import parse_rfc3339, rfc3339
from slogate.core.vocabulary import (
    CONDITION_TYPES,
    REASONS,
    ROLLOUT_PHASES,
    ConditionStatus,
    ConditionType,
    Phase,
    Reason,
)

__all__ = [
    "CONDITION_TYPES",
    "REASONS",
    "ConditionType",
    "Reason",
    "get_condition",
    "is_true",
    "parse_rfc3339",
    "phase_from",
    "remove_condition",
    "rfc3339",
    "set_condition",
]

_STATUSES = frozenset(s.value for s in ConditionStatus)


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
    if rollout_phase in ROLLOUT_PHASES:
        return Phase(rollout_phase).value
    if is_true(conditions, ConditionType.DEGRADED):
        return Phase.DEGRADED.value
    if is_true(conditions, ConditionType.READY):
        return Phase.READY.value
    return Phase.PENDING.value
