"""Conditions: set/get/remove in the metav1.Condition shape, and the phase derived from them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from slogate.api.v1alpha1 import Condition, ConditionStatus, Phase
from slogate.core.conditions import (
    CONDITION_TYPES,
    REASONS,
    ConditionType,
    Reason,
    get_condition,
    is_true,
    phase_from,
    remove_condition,
    rfc3339,
    set_condition,
)

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5, seconds=7, microseconds=900_000)

READY_FALSE = {
    "type": "Ready",
    "status": "False",
    "observedGeneration": 1,
    "lastTransitionTime": "2026-03-01T10:00:00Z",
    "reason": "NoReplicasReady",
    "message": "0/2 replicas ready",
}
AVAILABLE_FALSE = {
    "type": "Available",
    "status": "False",
    "observedGeneration": 1,
    "lastTransitionTime": "2026-03-01T10:00:00Z",
    "reason": "MinimumReplicasUnavailable",
    "message": "0 of minimum 1 replicas available",
}


def test_add_to_empty():
    out, changed = set_condition(
        [],
        type=ConditionType.READY,
        status="False",
        reason=Reason.NO_REPLICAS_READY,
        message="0/2 replicas ready",
        observed_generation=1,
        now=T0,
    )
    assert changed is True
    assert out == [READY_FALSE]
    assert list(out[0]) == ["type", "status", "observedGeneration", "lastTransitionTime", "reason", "message"]
    Condition.model_validate(out[0], by_alias=True)  # the wire shape the status model accepts


def test_new_type_is_appended_and_order_kept():
    out, changed = set_condition(
        [READY_FALSE, AVAILABLE_FALSE],
        type="InsufficientGPU",
        status="True",
        reason="InsufficientGPU",
        message="only 1 of 3 replicas fit",
        observed_generation=2,
        now=T1,
    )
    assert changed is True
    assert [c["type"] for c in out] == ["Ready", "Available", "InsufficientGPU"]
    assert out[2]["lastTransitionTime"] == "2026-03-01T10:05:07Z"
    assert out[:2] == [READY_FALSE, AVAILABLE_FALSE]


def test_same_status_keeps_transition_time():
    out, changed = set_condition(
        [READY_FALSE, AVAILABLE_FALSE],
        type="Ready",
        status="False",
        reason="MinimumReplicasUnavailable",
        message="1/2 replicas ready",
        observed_generation=2,
        now=T1,
    )
    assert changed is True
    assert out == [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 2,
            "lastTransitionTime": "2026-03-01T10:00:00Z",
            "reason": "MinimumReplicasUnavailable",
            "message": "1/2 replicas ready",
        },
        AVAILABLE_FALSE,
    ]


@pytest.mark.parametrize(
    "field, value",
    [
        pytest.param("reason", "MinimumReplicasUnavailable", id="reason-only"),
        pytest.param("message", "1/2 replicas ready", id="message-only"),
        pytest.param("observed_generation", 7, id="generation-only"),
    ],
)
def test_any_single_difference_is_a_change(field, value):
    args = {"reason": "NoReplicasReady", "message": "0/2 replicas ready", "observed_generation": 1}
    args[field] = value
    out, changed = set_condition([READY_FALSE], type="Ready", status="False", now=T1, **args)
    assert changed is True
    assert out[0]["lastTransitionTime"] == "2026-03-01T10:00:00Z"


def test_status_flip_updates_transition_time():
    out, changed = set_condition(
        [READY_FALSE, AVAILABLE_FALSE],
        type="Ready",
        status="True",
        reason="AllReplicasReady",
        message="2/2 replicas ready",
        observed_generation=1,
        now=T1,
    )
    assert changed is True
    assert out[0] == {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 1,
        "lastTransitionTime": "2026-03-01T10:05:07Z",
        "reason": "AllReplicasReady",
        "message": "2/2 replicas ready",
    }


def test_no_op_is_not_a_change():
    before = [READY_FALSE, AVAILABLE_FALSE]
    out, changed = set_condition(
        before,
        type="Ready",
        status="False",
        reason="NoReplicasReady",
        message="0/2 replicas ready",
        observed_generation=1,
        now=T1,
    )
    assert changed is False
    assert out == before
    assert out is not before


def test_missing_transition_time_is_filled():
    legacy = {k: v for k, v in READY_FALSE.items() if k != "lastTransitionTime"}
    out, changed = set_condition(
        [legacy],
        type="Ready",
        status="False",
        reason="NoReplicasReady",
        message="0/2 replicas ready",
        observed_generation=1,
        now=T1,
    )
    assert changed is True
    assert out[0]["lastTransitionTime"] == "2026-03-01T10:05:07Z"


def test_input_is_not_mutated():
    before = [READY_FALSE, AVAILABLE_FALSE]
    snapshot = copy.deepcopy(before)
    out, _ = set_condition(
        before,
        type="Ready",
        status="True",
        reason="AllReplicasReady",
        message="2/2",
        observed_generation=3,
        now=T1,
    )
    out[1]["message"] = "edited by the caller"
    assert before == snapshot
    assert all(a is not b for a, b in zip(out, before, strict=True))


def test_enum_status_is_stored_as_plain_string():
    out, _ = set_condition(
        [],
        type="Ready",
        status=ConditionStatus.TRUE,
        reason="AllReplicasReady",
        message="",
        observed_generation=1,
        now=T0,
    )
    assert type(out[0]["status"]) is str
    assert out[0]["status"] == "True"


def test_invalid_status_is_rejected():
    with pytest.raises(ValueError, match="True, False or Unknown"):
        set_condition([], type="Ready", status="true", reason="X", message="", observed_generation=1, now=T0)


@pytest.mark.parametrize(
    "now, expected",
    [
        pytest.param(T0, "2026-03-01T10:00:00Z", id="utc"),
        pytest.param(T1, "2026-03-01T10:05:07Z", id="fraction-truncated"),
        pytest.param(
            datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-03-01T10:00:00Z",
            id="offset-converted",
        ),
    ],
)
def test_rfc3339(now, expected):
    assert rfc3339(now) == expected


def test_naive_time_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        set_condition(
            [],
            type="Ready",
            status="True",
            reason="X",
            message="",
            observed_generation=1,
            now=datetime(2026, 3, 1),
        )


def test_get_condition():
    conds = [READY_FALSE, AVAILABLE_FALSE]
    assert get_condition(conds, "Available") == AVAILABLE_FALSE
    assert get_condition(conds, "Degraded") is None
    got = get_condition(conds, "Ready")
    got["status"] = "True"
    assert READY_FALSE["status"] == "False"


def test_is_true():
    conds = [READY_FALSE, {**AVAILABLE_FALSE, "status": "True"}]
    assert (is_true(conds, "Ready"), is_true(conds, "Available"), is_true(conds, "Degraded")) == (
        False,
        True,
        False,
    )


def test_remove_condition():
    before = [READY_FALSE, AVAILABLE_FALSE]
    snapshot = copy.deepcopy(before)
    out, changed = remove_condition(before, "Ready")
    assert (out, changed) == ([AVAILABLE_FALSE], True)
    assert before == snapshot
    out, changed = remove_condition(before, "Degraded")
    assert (out, changed) == ([READY_FALSE, AVAILABLE_FALSE], False)
    assert out is not before


def test_vocabulary():
    assert CONDITION_TYPES == (
        "Ready",
        "Available",
        "Progressing",
        "Degraded",
        "InsufficientGPU",
        "FallbackActive",
        "InputDrift",
        "OverBudget",
        "QualityDegraded",
    )
    assert REASONS == (
        "MinimumReplicasAvailable",
        "AllReplicasReady",
        "MinimumReplicasUnavailable",
        "NoReplicasReady",
        "NewRevisionAvailable",
        "RevisionProgressing",
        "ReconcileFailed",
        "InvalidSpec",
        "InsufficientGPU",
        "GPUShapeUnsatisfiable",
        "GPUAvailable",
        "PodsUnschedulable",
        "EngineCrashLooping",
        "AutoscalerFallback",
        "RolledBack",
        "AsExpected",
        "OverBudget",
        "WithinBudget",
        "NoTraffic",
        "CurrencyMismatch",
        "FallbackActive",
        "PrimaryServing",
        "QualityFailing",
        "QualityPassing",
        "QualityUnknown",
        "RouterUnavailable",
        "GatewayRejected",
        "DriftDetected",
        "WithinBaseline",
        "BaselinePending",
        "NotEnoughTraffic",
        "NoSharedBuckets",
        "PrometheusUnavailable",
    )


# ------------------------------------------------------------------------------------ phase


def cond(type_, status, reason="AsExpected") -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": "",
        "lastTransitionTime": "2026-03-01T10:00:00Z",
    }


READY = cond("Ready", "True", "AllReplicasReady")
NOT_READY = cond("Ready", "False", "NoReplicasReady")
DEGRADED = cond("Degraded", "True", "MinimumReplicasUnavailable")
NOT_DEGRADED = cond("Degraded", "False")
FALLBACK = cond("FallbackActive", "True", "SLOBreached")
NO_FALLBACK = cond("FallbackActive", "False")
UNSATISFIABLE = cond("InsufficientGPU", "True", "GPUShapeUnsatisfiable")
SHORT_OF_GPUS = cond("InsufficientGPU", "True", "InsufficientGPU")
WAS_UNSATISFIABLE = cond("InsufficientGPU", "False", "GPUShapeUnsatisfiable")
INVALID = cond("Degraded", "True", "InvalidSpec")


@pytest.mark.parametrize(
    "conditions, rollout_phase, expected",
    [
        pytest.param([], None, "Pending", id="nothing-yet"),
        pytest.param([NOT_READY], None, "Pending", id="not-ready"),
        pytest.param([SHORT_OF_GPUS, NOT_READY], None, "Pending", id="waiting-for-gpus"),
        pytest.param([READY, NOT_DEGRADED, NO_FALLBACK], None, "Ready", id="ready"),
        pytest.param([READY, DEGRADED], None, "Degraded", id="degraded-beats-ready"),
        pytest.param([NOT_READY, DEGRADED], None, "Degraded", id="degraded-not-ready"),
        pytest.param([READY, DEGRADED], "Progressing", "Progressing", id="rollout-beats-degraded"),
        pytest.param([READY], "Paused", "Paused", id="paused"),
        pytest.param([READY], "RolledBack", "RolledBack", id="rolled-back"),
        pytest.param([READY], "Ready", "Ready", id="rollout-ready-ignored"),
        pytest.param([READY, DEGRADED], "Degraded", "Degraded", id="rollout-degraded-ignored"),
        pytest.param([NOT_READY], "Healthy", "Pending", id="unknown-rollout-phase-ignored"),
        pytest.param([READY, FALLBACK], "Progressing", "Fallback", id="fallback-beats-rollout"),
        pytest.param([NOT_READY, DEGRADED, FALLBACK], None, "Fallback", id="fallback-beats-degraded"),
        pytest.param([UNSATISFIABLE, FALLBACK], "Paused", "Failed", id="unsatisfiable-beats-all"),
        pytest.param([INVALID, READY, FALLBACK], "Progressing", "Failed", id="invalid-spec-beats-all"),
        pytest.param([WAS_UNSATISFIABLE, READY], None, "Ready", id="unsatisfiable-false-is-not-failed"),
    ],
)
def test_phase_precedence(conditions, rollout_phase, expected):
    phase = phase_from(conditions, rollout_phase=rollout_phase)
    assert phase == expected
    assert type(phase) is str
    assert phase in {p.value for p in Phase}


def test_phase_from_accepts_enum_rollout_phase():
    assert phase_from([READY], rollout_phase=Phase.PAUSED) == "Paused"
