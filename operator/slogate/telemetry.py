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
