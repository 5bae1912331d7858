"""The operator's own Prometheus metrics (prometheus-client), ``slogate_`` prefix, base units.

Label sets are bounded: ``kind`` and ``verb`` come from fixed lists, ``result`` is success/error.
Per-ModelDeployment series are bounded by what users declare: one per ModelDeployment, objective,
and analysed revision. Series of a revision no longer analysed, and every series of a deleted
ModelDeployment (``forget_modeldeployment``), are removed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from slogate.core.analysis import base_value
from slogate.core.rollout import CAUSES
from slogate.core.vocabulary import Events, Outcome, Phase

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
API_READS = Counter(
    "slogate_api_reads_total",
    "Reads the operator sent to the Kubernetes API outside its watch caches, by verb and kind "
    "(at rest this stays flat: passes read the caches).",
    ["verb", "kind"],
    registry=REGISTRY,
)
CACHE_LISTS = Counter(
    "slogate_cache_lists_total",
    "LIST pages the watch caches requested (at start-up, and after a 410 Gone), by kind.",
    ["kind"],
    registry=REGISTRY,
)
CACHE_EVENTS = Counter(
    "slogate_cache_watch_events_total",
    "Watch events the caches received, by kind and type.",
    ["kind", "type"],
    registry=REGISTRY,
)
CACHE_OBJECTS = Gauge(
    "slogate_cache_objects", "Objects held in the watch caches, by kind.", ["kind"], registry=REGISTRY
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
PHASES = tuple(p.value for p in Phase)

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
QUALITY_PASS_RATIO = Gauge(
    "slogate_quality_pass_ratio",
    "Passed share (0..1) of the answered samples of a quality suite's latest run on a revision; kind "
    "is gate (a rollout's candidate) or probe (stable in production). From status, so it survives restarts.",
    [*MD_LABELS, "suite", "revision", "kind"],
    registry=REGISTRY,
)
QUALITY_VERDICT = Gauge(
    "slogate_quality_verdict",
    "1 for the verdict (Pass, Fail or Inconclusive) of each quality suite's latest run, by kind (gate or probe).",
    [*MD_LABELS, "suite", "kind", "verdict"],
    registry=REGISTRY,
)
ROLLBACKS = Counter(
    "slogate_rollbacks_total",
    "Rollouts rolled back or aborted, by outcome (RolledBack, Aborted) and reason "
    "(analysis_failed, inconclusive, manual).",
    [*MD_LABELS, "outcome", "reason"],
    registry=REGISTRY,
)
PROMOTIONS = Counter(
    "slogate_promotions_total",
    "Revisions promoted to stable, by reason (steps_completed, manual: `slogate promote --full`).",
    [*MD_LABELS, "reason"],
    registry=REGISTRY,
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
OBJECTIVE_VALUE = Gauge(
    "slogate_slo_objective_value",
    "Last measured value of each SLO objective of the analysed revision, in base units "
    "(seconds for latency, a 0..1 ratio for errorRate, the query's own unit for custom queries).",
    [*MD_LABELS, "revision", "objective"],
    registry=REGISTRY,
)
OBJECTIVE_THRESHOLD = Gauge(
    "slogate_slo_objective_threshold",
    "Threshold of each SLO objective, in the same base units as slogate_slo_objective_value.",
    [*MD_LABELS, "revision", "objective"],
    registry=REGISTRY,
)
COST_PER_HOUR = Gauge(
    "slogate_cost_per_hour",
    "Estimated cost per hour of the GPUs the ModelDeployment's running pods hold.",
    [*MD_LABELS, "currency"],
    registry=REGISTRY,
)
COST_PER_MILLION_TOKENS = Gauge(
    "slogate_cost_per_million_tokens",
    "Estimated cost per million generated tokens over the token window; absent without traffic.",
    [*MD_LABELS, "currency"],
    registry=REGISTRY,
)
COST_BUDGET_PER_MILLION_TOKENS = Gauge(
    "slogate_cost_budget_per_million_tokens",
    "spec.budget.maxCostPerMillionTokens; present only when a budget is set.",
    [*MD_LABELS, "currency"],
    registry=REGISTRY,
)
VERDICTS = ("Pass", "Fail", "Inconclusive")

_lock = threading.Lock()
_objectives: dict[tuple[str, str], set[tuple[str, str]]] = {}
"""(namespace, name) → the (revision, objective) pairs exported now, to remove those that go away."""
_currencies: dict[tuple[str, str], str] = {}
"""(namespace, name) → the currency label of its cost series."""

INPUT_DRIFT_DISTANCE = Gauge(
    "slogate_input_drift_distance",
    "Kolmogorov-Smirnov distance (0..1) between the request mix now and the baseline recorded at "
    "promotion, per length dimension (prompt, generation); absent when there is no verdict.",
    [*MD_LABELS, "dimension"],
    registry=REGISTRY,
)
INPUT_DRIFT = Gauge(
    "slogate_input_drift",
    "1 while the InputDrift condition is True (the request mix departs from its baseline), else 0.",
    MD_LABELS,
    registry=REGISTRY,
)
INPUT_DRIFT_THRESHOLD = Gauge(
    "slogate_input_drift_threshold",
    "The distance above which the request mix counts as drifting (spec.observability.inputDrift.threshold).",
    MD_LABELS,
    registry=REGISTRY,
)
DRIFT_DIMENSIONS = ("prompt", "generation")


def record_modeldeployment(
    namespace: str,
    name: str,
    status: dict,
    *,
    events: list[tuple[str, str]],
    gpus_requested: int,
    gpus_running: int,
    thresholds: Mapping[str, float] | None = None,
    cause: str | None = None,
) -> None:
    """Export one ModelDeployment's state (called by the reconcile after its status is computed).

    ``cause`` is the rollout decision's ``cause`` (``core.rollout.CAUSES``): the ``reason`` label of
    the rollback or promotion counted on this tick.

    ``thresholds`` are the spec's objective thresholds in base units by objective name (exact, where
    ``status.lastAnalysis`` holds them rounded for people).
    """
    md = {"namespace": namespace, "modeldeployment": name}
    for phase in PHASES:
        PHASE.labels(**md, phase=phase).set(1 if status.get("phase") == phase else 0)
    ROLLOUT_WEIGHT.labels(**md).set(status.get("canaryWeight") or 0)
    step = status.get("currentStep")
    ROLLOUT_STEP.labels(**md).set(step if step is not None and status.get("canaryRevision") else -1)
    _record_objectives(namespace, name, status.get("lastAnalysis") or {}, thresholds or {})
    FALLBACK_ACTIVE.labels(**md).set(1 if (status.get("fallback") or {}).get("active") else 0)
    _record_quality(namespace, name, status)
    GPUS.labels(**md, state="requested").set(gpus_requested)
    GPUS.labels(**md, state="running").set(gpus_running)
    for _type, reason in events:
        if reason in (Events.ROLLED_BACK.reason, Events.ABORTED.reason):
            ROLLBACKS.labels(**md, outcome=reason, reason=_cause(reason, cause)).inc()
        elif reason == Events.PROMOTED.reason:
            PROMOTIONS.labels(**md, reason=_cause(reason, cause)).inc()


_quality_series: dict[tuple[str, str], set[tuple[str, ...]]] = {}


def _record_quality(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """The latest quality runs in status (``qualityGate``, ``qualityProbe``) as pass ratios and
    verdicts per suite; series of runs no longer in status are removed (bounded cardinality)."""
    md = {"namespace": namespace, "modeldeployment": name}
    ratios: set[tuple[str, ...]] = set()
    for kind, key in (("gate", "qualityGate"), ("probe", "qualityProbe")):
        run = (status.get(key) or {}).get("lastRun") or {}
        for suite in run.get("suites") or []:
            for verdict in VERDICTS:
                QUALITY_VERDICT.labels(**md, suite=suite["name"], kind=kind, verdict=verdict).set(
                    1 if suite.get("verdict") == verdict else 0
                )
            ratios.add(("v", suite["name"], kind))
            rate = base_value(suite.get("passRate"))
            if rate is not None:
                QUALITY_PASS_RATIO.labels(
                    **md, suite=suite["name"], revision=suite["revision"], kind=kind
                ).set(rate)
                ratios.add(("r", suite["name"], suite["revision"], kind))
    with _lock:
        gone = _quality_series.get((namespace, name), set()) - ratios
        _quality_series[(namespace, name)] = ratios
    _forget_quality(namespace, name, gone)


def _forget_quality(namespace: str, name: str, series: set[tuple[str, ...]]) -> None:
    for s in series:
        if s[0] == "r":
            QUALITY_PASS_RATIO.remove(namespace, name, *s[1:])
        else:
            for verdict in VERDICTS:
                QUALITY_VERDICT.remove(namespace, name, s[1], s[2], verdict)


def _cause(outcome: str, cause: str | None) -> str:
    """``cause`` when it is one of the outcome's bounded causes, else the outcome's first one."""
    causes = CAUSES[outcome]
    return cause if cause in causes else causes[0]


def record_input_drift(
    namespace: str, name: str, *, distances: dict[str, float], drifting: bool, threshold: float
) -> None:
    """Export one drift check (called by the reconcile after a check): a distance per compared
    dimension (the others are removed: no verdict is not a distance of 0), whether it drifts, and
    the threshold it is judged against."""
    md = {"namespace": namespace, "modeldeployment": name}
    INPUT_DRIFT_THRESHOLD.labels(**md).set(threshold)
    for dimension in DRIFT_DIMENSIONS:
        if dimension in distances:
            INPUT_DRIFT_DISTANCE.labels(**md, dimension=dimension).set(distances[dimension])
        else:
            INPUT_DRIFT_DISTANCE.remove(namespace, name, dimension)  # a no-op when never exported
    INPUT_DRIFT.labels(**md).set(1 if drifting else 0)


def forget_input_drift(namespace: str, name: str) -> None:
    """Remove the drift series of a ModelDeployment that went away (or turned drift detection off)."""
    for dimension in DRIFT_DIMENSIONS:
        INPUT_DRIFT_DISTANCE.remove(namespace, name, dimension)
    INPUT_DRIFT.remove(namespace, name)
    INPUT_DRIFT_THRESHOLD.remove(namespace, name)


def _record_objectives(
    namespace: str, name: str, analysis: Mapping[str, Any], thresholds: Mapping[str, float]
) -> None:
    """Value, threshold and verdict of every objective of the latest analysis (``status.lastAnalysis``,
    so they are back after a restart). Series of objectives and revisions no longer in it are removed."""
    revision = str(analysis.get("revision") or "")
    results = [r for r in analysis.get("results") or [] if isinstance(r, dict) and r.get("name")]
    current = {(revision, str(r["name"])) for r in results}
    with _lock:
        stale = _objectives.get((namespace, name), set()) - current
        _objectives[(namespace, name)] = current
    for rev, objective in stale:
        OBJECTIVE_VALUE.remove(namespace, name, rev, objective)
        OBJECTIVE_THRESHOLD.remove(namespace, name, rev, objective)
    for objective in {o for _, o in stale} - {o for _, o in current}:
        for verdict in VERDICTS:
            OBJECTIVE_VERDICT.remove(namespace, name, objective, verdict)
    for r in results:
        objective = str(r["name"])
        for verdict in VERDICTS:
            OBJECTIVE_VERDICT.labels(namespace, name, objective, verdict).set(
                1 if r.get("verdict") == verdict else 0
            )
        value = base_value(r.get("value"))
        if value is None:  # no data: no sample, rather than a made-up 0
            OBJECTIVE_VALUE.remove(namespace, name, revision, objective)
        else:
            OBJECTIVE_VALUE.labels(namespace, name, revision, objective).set(value)
        threshold = thresholds.get(objective, base_value(r.get("threshold")))
        if threshold is None:
            OBJECTIVE_THRESHOLD.remove(namespace, name, revision, objective)
        else:
            OBJECTIVE_THRESHOLD.labels(namespace, name, revision, objective).set(threshold)


def record_cost(
    namespace: str,
    name: str,
    *,
    currency: str,
    per_hour: float,
    per_million_tokens: float | None,
    budget: float | None,
    tokens_measured: bool = True,
) -> None:
    """Export the exact cost estimate (status holds it rounded and held still, docs/cost.md).

    ``per_million_tokens`` ``None`` (no traffic) and ``budget`` ``None`` (no ``spec.budget``) remove
    their series; a change of currency removes the series of the old one. Without a token
    measurement (``tokens_measured`` false: Prometheus did not answer) the per-token series is left
    as it was.
    """
    with _lock:
        previous = _currencies.get((namespace, name))
        _currencies[(namespace, name)] = currency
    if previous is not None and previous != currency:
        for metric in (COST_PER_HOUR, COST_PER_MILLION_TOKENS, COST_BUDGET_PER_MILLION_TOKENS):
            metric.remove(namespace, name, previous)
    COST_PER_HOUR.labels(namespace, name, currency).set(per_hour)
    for metric, value in (
        (COST_PER_MILLION_TOKENS, per_million_tokens),
        (COST_BUDGET_PER_MILLION_TOKENS, budget),
    ):
        if metric is COST_PER_MILLION_TOKENS and not tokens_measured:
            continue
        if value is None:
            metric.remove(namespace, name, currency)
        else:
            metric.labels(namespace, name, currency).set(value)


def forget_modeldeployment(namespace: str, name: str) -> None:
    """Remove every series of a deleted ModelDeployment (bounded cardinality). Idempotent."""
    with _lock:
        objectives = _objectives.pop((namespace, name), set())
        currency = _currencies.pop((namespace, name), None)
        quality = _quality_series.pop((namespace, name), set())
    _forget_quality(namespace, name, quality)
    for phase in PHASES:
        PHASE.remove(namespace, name, phase)
    for metric in (ROLLOUT_WEIGHT, ROLLOUT_STEP, FALLBACK_ACTIVE):
        metric.remove(namespace, name)
    for reason in CAUSES[Outcome.PROMOTED]:
        PROMOTIONS.remove(namespace, name, reason)
    for outcome in (Outcome.ROLLED_BACK, Outcome.ABORTED):
        for reason in CAUSES[outcome]:
            ROLLBACKS.remove(namespace, name, outcome, reason)
    for state in ("requested", "running"):
        GPUS.remove(namespace, name, state)
    for revision, objective in objectives:
        OBJECTIVE_VALUE.remove(namespace, name, revision, objective)
        OBJECTIVE_THRESHOLD.remove(namespace, name, revision, objective)
        for verdict in VERDICTS:
            OBJECTIVE_VERDICT.remove(namespace, name, objective, verdict)
    if currency is not None:
        for metric in (COST_PER_HOUR, COST_PER_MILLION_TOKENS, COST_BUDGET_PER_MILLION_TOKENS):
            metric.remove(namespace, name, currency)
