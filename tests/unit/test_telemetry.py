from __future__ import annotations

from slogate.telemetry import REGISTRY, record_modeldeployment


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_per_modeldeployment_series_follow_the_status_and_count_decisions():
    md = {"namespace": "t-telemetry", "modeldeployment": "llama"}
    status = {
        "phase": "RolledBack",
        "canaryRevision": "b",
        "canaryWeight": 0,
        "currentStep": 1,
        "lastAnalysis": {"results": [{"name": "ttft-p95", "verdict": "Fail"}]},
        "fallback": {"active": False},
    }
    record_modeldeployment(
        "t-telemetry",
        "llama",
        status,
        events=[("Warning", "RolledBack")],
        gpus_requested=3,
        gpus_running=2,
        cause="inconclusive",
    )
    assert value("slogate_modeldeployment_phase", **md, phase="RolledBack") == 1
    assert value("slogate_modeldeployment_phase", **md, phase="Ready") == 0
    assert value("slogate_rollout_step", **md) == 1
    assert value("slogate_slo_objective_verdict", **md, objective="ttft-p95", verdict="Fail") == 1
    assert value("slogate_slo_objective_verdict", **md, objective="ttft-p95", verdict="Pass") == 0
    assert value("slogate_rollbacks_total", **md, outcome="RolledBack", reason="inconclusive") == 1
    assert value("slogate_rollbacks_total", **md, outcome="RolledBack", reason="analysis_failed") is None
    assert value("slogate_gpus", **md, state="requested") == 3
    assert value("slogate_gpus", **md, state="running") == 2
    assert value("slogate_fallback_active", **md) == 0
    record_modeldeployment(
        "t-telemetry",
        "llama",
        {"phase": "Ready", "stableRevision": "c"},
        events=[("Normal", "Promoted")],
        gpus_requested=2,
        gpus_running=2,
        cause="manual",
    )
    assert value("slogate_promotions_total", **md, reason="manual") == 1
    assert value("slogate_rollout_step", **md) == -1
    assert value("slogate_rollbacks_total", **md, outcome="RolledBack", reason="inconclusive") == 1  # once
