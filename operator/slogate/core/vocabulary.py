"""slogate's vocabulary: every word it writes into status and Events, spelled once. Pure constants.

An SRE greps these words (``kubectl get events --field-selector reason=RolledBack``, a condition's
``reason``, ``status.phase``), dashboards and alerts select on them, and docs name them, so each is
a constant here and nowhere else a string literal:

- ``ConditionType``: the conditions of a ModelDeployment;
- ``Reason`` and ``DriftReason``: the reasons those conditions carry (``REASONS`` is all of them);
- ``Phase`` (from ``api.v1alpha1``, where the CRD schema takes it): ``status.phase``, derived from
  the conditions by ``conditions.phase_from``; ``ROLLOUT_PHASES`` are the ones a rollout decides;
- ``Outcome``: how a rollout ended (``status.history[].outcome``, ``status.rollout.outcome``);
- ``EventSpec`` and ``Events``: every Event the operator posts, as its reason together with the
  one type that reason always has (``Normal`` or ``Warning``). ``Events.ROLLED_BACK("why")`` makes
  the ``Event`` — a ``(type, reason, message)`` named tuple, the one shape every Event has from the
  decision in ``core`` to the controller that posts it;
- ``PodPhase`` and ``NODE_READY``: the few words of Kubernetes' own vocabulary the core reads, named
  so they are not mistaken for ours (a Pod's ``Pending`` is not the ModelDeployment's).

Everything here is data; the functions over conditions are in ``core.conditions``, timestamps in
``core.timefmt``. Imports only ``api``. ``tests/unit/test_vocabulary.py`` fails when a module under
``core/``, ``controller/`` or ``adapters/`` spells one of these words as a literal, when a reason
has two Event types, or when the Events table in docs/operator.md disagrees with ``EVENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

from slogate.api.v1alpha1 import ConditionStatus, Phase

__all__ = [
    "CONDITION_TYPES",
    "EVENTS",
    "EVENTS_BY_REASON",
    "NODE_READY",
    "OUTCOMES",
    "REASONS",
    "ROLLOUT_PHASES",
    "ConditionStatus",
    "ConditionType",
    "DriftReason",
    "Event",
    "EventSpec",
    "EventType",
    "Events",
    "Outcome",
    "Phase",
    "PodPhase",
    "Reason",
]


def _values(cls: type) -> tuple[str, ...]:
    """The constants of a vocabulary class, in the order they are written."""
    return tuple(v for k, v in vars(cls).items() if k.isupper())


# ------------------------------------------------------------------------------------ conditions


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
    QUALITY_DEGRADED: Final = "QualityDegraded"
    """The production quality probe finds stable's answers failing a suite (absent without a probe)."""


CONDITION_TYPES: Final = _values(ConditionType)
"""Every condition type, in the order status lists them."""


class Reason:
    """CamelCase reasons an SRE can grep, shared by conditions and the Events that report them."""

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
    RECONCILE_FAILED: Final = "ReconcileFailed"
    """Reconciling failed (``Ready=False``); the message carries the error and it will be retried."""
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
    FALLBACK_ACTIVE: Final = "FallbackActive"
    """``FallbackActive=True``: a fallback tier takes the traffic."""
    PRIMARY_SERVING: Final = "PrimaryServing"
    """``FallbackActive=False``: the ModelDeployment itself serves."""
    QUALITY_FAILING: Final = "QualityFailing"
    """``QualityDegraded=True``: the production probe failed a suite on stable."""
    QUALITY_PASSING: Final = "QualityPassing"
    """``QualityDegraded=False``: the production probe passed every suite on stable."""
    QUALITY_UNKNOWN: Final = "QualityUnknown"
    """``QualityDegraded=Unknown``: the probe got no verdict (stable did not answer, a suite is
    missing, or the interval straddles ``minPassRate``)."""
    ROUTER_UNAVAILABLE: Final = "RouterUnavailable"
    """``Degraded=True``: the router's API (Gateway API, the InferencePool CRD) is not served, so no
    route or pool is applied."""
    GATEWAY_REJECTED: Final = "GatewayRejected"
    """``Degraded=True``: a gateway reports a parent condition of the HTTPRoute or an InferencePool
    that is not True (``Accepted=False`` with ``EndpointPickerRefMissing``, ``ResolvedRefs=False``)."""


class DriftReason:
    """Reasons of the ``InputDrift`` condition (docs/drift.md)."""

    DRIFT_DETECTED: Final = "DriftDetected"
    """Condition True: a length distribution departs from the baseline beyond the threshold."""
    WITHIN_BASELINE: Final = "WithinBaseline"
    """Condition False: the request mix matches the baseline."""
    BASELINE_PENDING: Final = "BaselinePending"
    """Condition Unknown: the stable revision has no baseline yet (too little traffic so far)."""
    NOT_ENOUGH_TRAFFIC: Final = "NotEnoughTraffic"
    """Condition Unknown: too few requests in the window for a verdict."""
    NO_SHARED_BUCKETS: Final = "NoSharedBuckets"
    """Condition Unknown: baseline and now have no bucket boundary in common (the bucket layout changed)."""
    PROMETHEUS_UNAVAILABLE: Final = "PrometheusUnavailable"
    """Condition Unknown: Prometheus never answered since the condition was first set."""


REASONS: Final = _values(Reason) + _values(DriftReason)
"""Every condition reason."""


# ---------------------------------------------------------------------------------- phases, outcomes

ROLLOUT_PHASES: Final = (Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLED_BACK)
"""The phases a rollout decision (``rollout.Decision.rollout_phase``) may ask for; ``None`` is steady."""


class Outcome:
    """How a rollout ended: ``status.history[].outcome``; the last two also ``status.rollout.outcome``."""

    PROMOTED: Final = "Promoted"
    """The candidate became stable."""
    ROLLED_BACK: Final = "RolledBack"
    """The analysis failed (or stayed inconclusive) and the candidate was scaled to zero."""
    ABORTED: Final = "Aborted"
    """A person aborted it, or the spec went back to stable."""


OUTCOMES: Final = _values(Outcome)
"""Every outcome."""


# ------------------------------------------------------------------------------------ Events


class EventType:
    """core/v1 Event types."""

    NORMAL: Final = "Normal"
    """Something happened as intended."""
    WARNING: Final = "Warning"
    """Something needs, or may need, a person's attention."""


class Event(NamedTuple):
    """An Event to post on the ModelDeployment: ``(type, reason, message)``. Made by an
    ``EventSpec`` (``Events.PROMOTED("...")``), never spelled by hand."""

    type: str
    """``Normal`` or ``Warning``: always the type of ``reason`` in ``EVENTS``."""
    reason: str
    """CamelCase, from ``Events``."""
    message: str
    """What happened, in words."""


@dataclass(frozen=True)
class EventSpec:
    """An Event reason together with its one type. Calling it with a message makes the ``Event``."""

    type: str
    reason: str

    def __call__(self, message: str) -> Event:
        """The ``Event`` with this type and reason. Pure."""
        return Event(self.type, self.reason, message)


_N, _W = EventType.NORMAL, EventType.WARNING


class Events:
    """Every Event the operator posts (docs/operator.md, "Events", lists them too)."""

    # The rollout (core.rollout).
    DEPLOYED: Final = EventSpec(_N, "Deployed")
    """The first revision (or one whose stable Deployment is gone) was deployed directly; the message
    names the Deployment it created."""
    ROLLOUT_STARTED: Final = EventSpec(_N, "RolloutStarted")
    """A new revision starts a rollout beside stable."""
    WEIGHT_SET: Final = EventSpec(_N, "WeightSet")
    """A ``setWeight`` step moved the candidate's traffic weight."""
    MANUAL_GATE: Final = EventSpec(_N, "ManualGate")
    """The rollout waits at a pause without a duration for ``slogate promote``."""
    PAUSE_EXTENDED: Final = EventSpec(_N, "PauseExtended")
    """A timed pause ended without its evidence and waits on (once per pause)."""
    AWAITING_EVIDENCE: Final = EventSpec(_N, "AwaitingEvidence")
    """A switch with no steps waits for its passing analysis runs (once)."""
    PAUSED: Final = EventSpec(_N, "Paused")
    """The rollout waits for a person: paused by one, or ``inconclusiveLimit`` reached with
    ``onInconclusive: pause`` (then after an ``AnalysisInconclusive`` Warning)."""
    RESUMED: Final = EventSpec(_N, "Resumed")
    """A person resumed a paused rollout."""
    GATE_RELEASED: Final = EventSpec(_N, "GateReleased")
    """A person released a pause, a manual gate or a step waiting for evidence (``slogate promote``)."""
    PROMOTED_BY_PERSON: Final = EventSpec(_N, "PromotedByPerson")
    """A person skipped the remaining steps (``slogate promote --full``)."""
    PROMOTED: Final = EventSpec(_N, Outcome.PROMOTED)
    """The candidate is the new stable revision."""
    ANALYSIS_FAILED: Final = EventSpec(_W, "AnalysisFailed")
    """An analysis run breached an objective (counted towards ``failureLimit``)."""
    ANALYSIS_INCONCLUSIVE: Final = EventSpec(_W, "AnalysisInconclusive")
    """An analysis run reached no verdict (counted towards ``inconclusiveLimit``)."""
    ROLLED_BACK: Final = EventSpec(_W, Outcome.ROLLED_BACK)
    """The candidate was rolled back; the message names the objective, value and threshold."""
    ABORTED: Final = EventSpec(_W, Outcome.ABORTED)
    """A person aborted the rollout (``slogate abort``)."""
    ROLLOUT_ABANDONED: Final = EventSpec(_N, "RolloutAbandoned")
    """The spec went back to the stable revision; the candidate was removed."""
    RETRY: Final = EventSpec(_N, "Retry")
    """A person retried a rolled-back revision (``slogate retry``)."""
    QUALITY_PASSED: Final = EventSpec(_N, "QualityPassed")
    """A quality gate's run passed every suite (``spec.quality``); the gate is done."""
    QUALITY_FAILED: Final = EventSpec(_W, "QualityFailed")
    """A quality gate's run failed a suite (counted towards ``failureLimit``); the message names
    the suite, its pass rate and interval, and a failing case."""
    QUALITY_INCONCLUSIVE: Final = EventSpec(_W, "QualityInconclusive")
    """A quality gate's run reached no verdict: the candidate did not answer, a suite is missing,
    or the interval straddles ``minPassRate`` (counted towards ``inconclusiveLimit``)."""
    QUALITY_DEGRADED: Final = EventSpec(_W, ConditionType.QUALITY_DEGRADED)
    """The production probe failed a suite on stable (``QualityDegraded`` became True)."""
    QUALITY_RESTORED: Final = EventSpec(_N, "QualityRestored")
    """The production probe passes again (``QualityDegraded`` became False)."""

    # The plan and status (core.plan, core.status).
    CREATED: Final = EventSpec(_N, "Created")
    """A candidate revision's Deployment was created (a directly deployed one's is told by ``Deployed``)."""
    INVALID_SPEC: Final = EventSpec(_W, Reason.INVALID_SPEC)
    """The spec cannot be acted on; the message names the fields."""
    READY: Final = EventSpec(_N, ConditionType.READY)
    """``Ready`` became True."""
    SCALED: Final = EventSpec(_N, "Scaled")
    """Stable's replica count changed (an autoscaler or an edit)."""
    AUTOSCALER_FALLBACK: Final = EventSpec(_W, Reason.AUTOSCALER_FALLBACK)
    """The autoscaler asked for cannot be used (KEDA not installed): an HPA scales instead."""
    INSUFFICIENT_GPU: Final = EventSpec(_W, Reason.INSUFFICIENT_GPU)
    """``InsufficientGPU`` became True: not enough GPUs are free now."""
    GPU_SHAPE_UNSATISFIABLE: Final = EventSpec(_W, Reason.GPU_SHAPE_UNSATISFIABLE)
    """``InsufficientGPU`` became True: no node could ever hold one replica."""
    ENGINE_CRASH_LOOPING: Final = EventSpec(_W, Reason.ENGINE_CRASH_LOOPING)
    """``Degraded`` became True: an engine container keeps crashing or cannot start."""
    PODS_UNSCHEDULABLE: Final = EventSpec(_W, Reason.PODS_UNSCHEDULABLE)
    """``Degraded`` became True: the scheduler cannot place pods."""
    MINIMUM_REPLICAS_UNAVAILABLE: Final = EventSpec(_W, Reason.MINIMUM_REPLICAS_UNAVAILABLE)
    """``Degraded`` became True: stable lost replicas after serving."""

    # The controller (controller.reconcile).
    RECONCILE_FAILED: Final = EventSpec(_W, Reason.RECONCILE_FAILED)
    """A pass failed; posted when the error text changes."""

    # Fallback (core.fallback, docs/traffic-and-fallback.md).
    FALLBACK_ACTIVATED: Final = EventSpec(_W, "FallbackActivated")
    """The primary stayed unhealthy for ``after``; traffic moved to a tier."""
    FALLBACK_SWITCHED: Final = EventSpec(_W, "FallbackSwitched")
    """The active tier became unhealthy; traffic moved to another tier."""
    FALLBACK_RESTORED: Final = EventSpec(_N, "FallbackRestored")
    """Traffic returned to the primary."""
    FALLBACK_UNAVAILABLE: Final = EventSpec(_W, "FallbackUnavailable")
    """Traffic should move but no tier is healthy; it stays where it is."""

    # The inferencePool router (core.plan.route, docs/traffic-and-fallback.md).
    ROUTER_UNAVAILABLE: Final = EventSpec(_W, Reason.ROUTER_UNAVAILABLE)
    """``Degraded`` became True: the router's API is not served; no route or pool is applied."""
    GATEWAY_REJECTED: Final = EventSpec(_W, Reason.GATEWAY_REJECTED)
    """``Degraded`` became True: a gateway does not accept the route or a pool (its conditions in the message)."""

    # Input drift (core.drift, docs/drift.md).
    INPUT_DRIFT: Final = EventSpec(_W, ConditionType.INPUT_DRIFT)
    """The request mix departs from the baseline (entering drift)."""
    INPUT_DRIFT_CLEARED: Final = EventSpec(_N, "InputDriftCleared")
    """Leaving drift: back within, a new baseline, or no verdict any more."""
    INPUT_BASELINE_RECORDED: Final = EventSpec(_N, "InputBaselineRecorded")
    """A request-mix baseline was recorded for the stable revision."""

    # Cost (core.cost, docs/cost.md).
    OVER_BUDGET: Final = EventSpec(_W, Reason.OVER_BUDGET)
    """``OverBudget`` became True."""
    WITHIN_BUDGET: Final = EventSpec(_N, Reason.WITHIN_BUDGET)
    """``OverBudget`` went from True back to False."""


EVENTS: Final[tuple[EventSpec, ...]] = tuple(v for k, v in vars(Events).items() if k.isupper())
"""Every Event the operator posts."""

EVENTS_BY_REASON: Final = {e.reason: e for e in EVENTS}
"""The ``EventSpec`` of each Event reason, for an Event that reports a condition's reason."""


# ------------------------------------------------------------------------- Kubernetes' own words


class PodPhase:
    """core/v1 Pod phases the core reads (Kubernetes' words; ``Phase`` is the ModelDeployment's)."""

    PENDING: Final = "Pending"
    RUNNING: Final = "Running"
    SUCCEEDED: Final = "Succeeded"
    FAILED: Final = "Failed"


NODE_READY: Final = "Ready"
"""The core/v1 Node condition type of a node that can run pods."""
