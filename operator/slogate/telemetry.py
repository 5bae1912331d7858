"""The operator's own Prometheus metrics (prometheus-client), ``slogate_`` prefix, base units.

Label sets are bounded: ``kind`` and ``verb`` come from fixed lists, ``result`` is success/error.
Per-ModelDeployment series (SLO values, rollout state, cost) are added by the rollout and cost work.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter(
    "slogate_reconcile_total", "Reconciles of ModelDeployments, by result.", ["result"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "slogate_reconcile_duration_seconds",
    "Time to reconcile one ModelDeployment.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "slogate_reconcile_errors_total", "Reconcile errors, by error class.", ["error"], registry=REGISTRY
)
API_WRITES = Counter(
    "slogate_api_writes_total",
    "Write requests the operator sent to the Kubernetes API, by verb and kind.",
    ["verb", "kind"],
    registry=REGISTRY,
)
MANAGED_OBJECTS = Gauge(
    "slogate_managed_objects", "Child objects the operator manages, by kind.", ["kind"], registry=REGISTRY
)
MODEL_DEPLOYMENTS = Gauge(
    "slogate_modeldeployments",
    "ModelDeployments known to the operator, by phase.",
    ["phase"],
    registry=REGISTRY,
)

# ---------------------------------------------------------------------------------- per ModelDeployment
# One series per ModelDeployment (and per objective): bounded by what users declare.
MD_LABELS = ["namespace", "modeldeployment"]
PHASES = ("Pending", "Progressing", "Paused", "Ready", "RolledBack", "Degraded", "Fallback", "Failed")

PHASE = Gauge(
    "slogate_modeldeployment_phase",
    "1 for the ModelDeployment's current phase.",
    [*MD_LABELS, "phase"],
    registry=REGISTRY,
)
ROLLOUT_WEIGHT = Gauge(
    "slogate_rollout_canary_weight_percent",
    "Traffic weight asked for the candidate (0..100).",
    MD_LABELS,
    registry=REGISTRY,
)
ROLLOUT_STEP = Gauge(
    "slogate_rollout_step",
    "Index of the current rollout step (0-based); -1 when no rollout runs.",
    MD_LABELS,
    registry=REGISTRY,
)
OBJECTIVE_VERDICT = Gauge(
    "slogate_slo_objective_verdict",
    "1 for each objective's latest verdict (Pass, Fail or Inconclusive).",
    [*MD_LABELS, "objective", "verdict"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "slogate_rollbacks_total", "Rollouts rolled back or aborted.", [*MD_LABELS, "outcome"], registry=REGISTRY
)
PROMOTIONS = Counter(
    "slogate_promotions_total", "Revisions promoted to stable.", MD_LABELS, registry=REGISTRY
)
FALLBACK_ACTIVE = Gauge(
    "slogate_fallback_active", "1 while traffic is on a fallback tier.", MD_LABELS, registry=REGISTRY
)
GPUS = Gauge(
    "slogate_gpus",
    "GPUs of the ModelDeployment's pods, requested and running.",
    [*MD_LABELS, "state"],
    registry=REGISTRY,
)


def record_modeldeployment(
    namespace: str,
    name: str,
    status: dict,
    *,
    events: list[tuple[str, str]],
    gpus_requested: int,
    gpus_running: int,
) -> None:
    """Export one ModelDeployment's state (called by the reconcile after its status is computed)."""
    md = {"namespace": namespace, "modeldeployment": name}
    for phase in PHASES:
        PHASE.labels(**md, phase=phase).set(1 if status.get("phase") == phase else 0)
    ROLLOUT_WEIGHT.labels(**md).set(status.get("canaryWeight") or 0)
    step = status.get("currentStep")
    ROLLOUT_STEP.labels(**md).set(step if step is not None and status.get("canaryRevision") else -1)
    for result in (status.get("lastAnalysis") or {}).get("results") or []:
        for verdict in ("Pass", "Fail", "Inconclusive"):
            OBJECTIVE_VERDICT.labels(**md, objective=result["name"], verdict=verdict).set(
                1 if result.get("verdict") == verdict else 0
            )
    FALLBACK_ACTIVE.labels(**md).set(1 if (status.get("fallback") or {}).get("active") else 0)
    GPUS.labels(**md, state="requested").set(gpus_requested)
    GPUS.labels(**md, state="running").set(gpus_running)
    for _type, reason in events:
        if reason in ("RolledBack", "Aborted"):
            ROLLBACKS.labels(**md, outcome=reason).inc()
        elif reason == "Promoted" and _type == "Normal":
            PROMOTIONS.labels(**md).inc()
