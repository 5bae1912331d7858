"""The rollout state machine: given the state in ``status``, what runs, the latest analysis, commands
from people and the time, decide what happens next. Pure.

Everything that must survive an operator restart is in ``RolloutState``, which the controller
stores in ``status`` and reads back, so an operator killed at any instant resumes exactly where it
was: a step is advanced only in the same status write that records it, analysis runs are counted
in status, a rollback records the rejected revision, and a person's command is applied once
(its id is remembered). ``plan`` is consumed by ``controller.reconcile``, which applies the
decision (replica counts, traffic, deletions), writes the new state and posts the events.

Evidence (when SLOs are declared): no step completes and no candidate is promoted before the
analysis has passed ``analysis.minPassingRuns`` times (default 1) on windows that lie wholly after the
step began and after the candidate's warm-up (``evidence_start``). A pause's duration is a
minimum; a pause that ends without that evidence waits on, with ``waiting_for`` in status saying
what it waits for, while the runs keep counting towards ``failureLimit`` and ``inconclusiveLimit``.
Without SLOs the steps' timers decide. A person's ``promote`` (a manual gate, a pause) and
``promote --full`` are the only ways past the rule, and are told as such.

Strategies:
- ``canary``: follow ``steps`` (default: setWeight 10, pause 5m, setWeight 50, pause 5m); a
  ``setWeight`` step is left once the candidate is Ready at that weight and has its evidence; a
  timed pause waits its duration and its evidence; a pause with no duration is a manual gate. After
  the last step the candidate is scaled to full size and promoted.
- ``blueGreen``: the candidate runs at full size beside stable with no user traffic (preview through
  ``NAME-canary``), is analysed, waits at its pause steps, then takes all traffic at once; with no
  steps it still needs its evidence before the switch.
- ``shadow``: the candidate runs at stable's size (within ``gpuBudget``) and, once Ready, receives
  a mirror of stable's traffic (responses discarded) while the weight is 0 (default steps: one
  ``pause 5m``); it is analysed on that traffic, then takes all traffic at once (or follows its
  ``setWeight`` steps like a canary).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slogate.api.types import parse_duration
from slogate.api.v1alpha1 import ModelDeploymentSpec, ObjectiveResult, Step, Strategy, Verdict
from slogate.core.timefmt import parse_rfc3339, rfc3339
from slogate.core.vocabulary import Event, Events, Outcome, Phase

DEFAULT_CANARY_STEPS = (
    Step(set_weight=10),
    Step(pause={"duration": "5m"}),  # type: ignore[arg-type]
    Step(set_weight=50),
    Step(pause={"duration": "5m"}),  # type: ignore[arg-type]
)
DEFAULT_SHADOW_STEPS = (Step(pause={"duration": "5m"}),)  # type: ignore[arg-type]
"""Shadow with no steps: five minutes (at least) of mirrored traffic, then promotion."""
HISTORY_LIMIT = 10
REJECTED_LIMIT = 20

COMMANDS = ("promote", "promote-full", "pause", "resume", "abort", "retry")


@dataclass(frozen=True)
class RolloutState:
    """The rollout's persistent state (mirrors fields of ``status``)."""

    stable: str | None = None
    canary: str | None = None
    weight: int = 0
    step: int = 0
    step_started_at: str | None = None
    rollout_started_at: str | None = None
    candidate_ready_at: str | None = None
    last_analysis_at: str | None = None
    last_verdict: str | None = None
    last_results: tuple[dict[str, Any], ...] = ()
    failures: int = 0
    consecutive_inconclusive: int = 0
    passes: int = 0
    """Passing runs that are evidence for the current step (reset at every step change)."""
    waiting_for: str | None = None
    """What the current step waits for once its own condition is met (``_evidence_gate``)."""
    paused_reason: str | None = None
    outcome: str | None = None
    """``RolledBack`` or ``Aborted`` after a rollout ended that way (cleared by the next rollout)."""
    outcome_message: str | None = None
    promoting: bool = False
    """The last step is done: the candidate is being scaled to full size before it becomes stable."""
    promoted_by_person: bool = False
    """``slogate promote --full`` skipped the remaining steps (counted and told as a manual promotion)."""
    rejected: tuple[str, ...] = ()
    history: tuple[dict[str, str], ...] = ()
    last_command_id: str | None = None
    quality_gate: str | None = None
    """The quality gate the rollout holds at (``PRE_TRAFFIC`` or ``step N``), None between gates."""
    quality_passed: tuple[str, ...] = ()
    """Quality gates passed (or released by a person) in this rollout."""
    quality_runs: int = 0
    """Quality runs recorded in this rollout: the number the next result must carry (recorded once)."""
    quality_failures: int = 0
    quality_inconclusive: int = 0
    quality_last: dict[str, Any] | None = None
    """The latest quality run as ``status.qualityGate.lastRun``."""

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> RolloutState:
        """Read the state from a ``status`` dict (camelCase). Pure."""
        ro = status.get("rollout") or {}
        la = status.get("lastAnalysis") or {}
        return cls(
            stable=status.get("stableRevision"),
            canary=status.get("canaryRevision"),
            weight=int(status.get("canaryWeight") or 0),
            step=int(status.get("currentStep") or 0),
            step_started_at=status.get("stepStartedAt"),
            rollout_started_at=status.get("rolloutStartedAt"),
            candidate_ready_at=status.get("candidateReadyAt"),
            last_analysis_at=la.get("time"),
            last_verdict=la.get("verdict"),
            last_results=tuple(la.get("results") or ()),
            failures=int(la.get("failures") or 0),
            consecutive_inconclusive=int(la.get("consecutiveInconclusive") or 0),
            passes=int(la.get("passingRuns") or 0),
            waiting_for=ro.get("waitingFor"),
            paused_reason=ro.get("pausedReason"),
            outcome=ro.get("outcome"),
            outcome_message=ro.get("outcomeMessage"),
            promoting=bool(ro.get("promoting")),
            promoted_by_person=bool(ro.get("promotedByPerson")),
            rejected=tuple(status.get("rejectedRevisions") or ()),
            history=tuple(status.get("history") or ()),
            last_command_id=ro.get("lastCommandId"),
            **_quality_from_status(status.get("qualityGate"), status.get("canaryRevision")),
        )

    def to_status(self) -> dict[str, Any]:
        """The status fields this state owns (camelCase). Pure."""
        analysis = None
        if self.last_analysis_at and self.canary:
            analysis = {
                "time": self.last_analysis_at,
                "revision": self.canary,
                "verdict": self.last_verdict,
                "results": list(self.last_results),
                "failures": self.failures,
                "consecutiveInconclusive": self.consecutive_inconclusive,
                "passingRuns": self.passes,
            }
        return {
            "stableRevision": self.stable,
            "canaryRevision": self.canary,
            "canaryWeight": self.weight if self.canary else None,
            "currentStep": self.step if self.canary else None,
            "stepStartedAt": self.step_started_at if self.canary else None,
            "rolloutStartedAt": self.rollout_started_at if self.canary else None,
            "candidateReadyAt": self.candidate_ready_at if self.canary else None,
            "lastAnalysis": analysis,
            "rollout": {
                k: v
                for k, v in {
                    "pausedReason": self.paused_reason,
                    "outcome": self.outcome,
                    "outcomeMessage": self.outcome_message,
                    "promoting": self.promoting or None,
                    "promotedByPerson": self.promoted_by_person or None,
                    "lastCommandId": self.last_command_id,
                    "waitingFor": self.waiting_for if self.canary else None,
                }.items()
                if v is not None
            }
            or None,
            "rejectedRevisions": list(self.rejected),
            "history": list(self.history),
            "qualityGate": self._quality_status(),
        }

    def _quality_status(self) -> dict[str, Any] | None:
        if self.canary is None or not (self.quality_gate or self.quality_passed or self.quality_runs):
            return None
        out: dict[str, Any] = {
            "revision": self.canary,
            "gate": self.quality_gate,
            "passed": list(self.quality_passed),
            "runs": self.quality_runs,
            "failures": self.quality_failures,
            "consecutiveInconclusive": self.quality_inconclusive,
            "lastRun": self.quality_last,
        }
        return {k: v for k, v in out.items() if v is not None}


def _quality_from_status(raw: Any, canary: str | None) -> dict[str, Any]:
    """``RolloutState``'s quality fields from ``status.qualityGate``, when it is the candidate's."""
    q = raw or {}
    if not q or q.get("revision") != canary:
        return {}
    return {
        "quality_gate": q.get("gate"),
        "quality_passed": tuple(q.get("passed") or ()),
        "quality_runs": int(q.get("runs") or 0),
        "quality_failures": int(q.get("failures") or 0),
        "quality_inconclusive": int(q.get("consecutiveInconclusive") or 0),
        "quality_last": q.get("lastRun"),
    }


@dataclass(frozen=True)
class Observed:
    """What the controller saw this pass."""

    current: str
    """Revision of the spec."""
    stable_exists: bool
    """The stable revision's Deployment exists."""
    candidate_ready: bool
    """The candidate's Deployment has every desired replica Ready (at its current size)."""
    candidate_full: bool = False
    """The candidate runs at full size (as many replicas as stable) and all are Ready."""


@dataclass(frozen=True)
class Analysis:
    """One analysis run's outcome, given to ``plan`` when ``analysis_due`` said so."""

    verdict: Verdict
    results: tuple[ObjectiveResult, ...]


PRE_TRAFFIC = "preTraffic"
"""The quality gate before the candidate receives any traffic (``quality.gates.preTraffic``)."""


def step_gate(index: int) -> str:
    """The quality gate of step ``index`` (0-based) as status names it: ``step 2`` for index 1."""
    return f"step {index + 1}"


@dataclass(frozen=True)
class QualityResult:
    """One finished quality run, given to ``plan``; recorded only when ``gate`` and ``run`` are the
    ones ``status.qualityGate`` waits for (a result from before a restart, or for another gate, is
    dropped: nothing is counted twice)."""

    gate: str
    run: int
    """``quality_runs`` when the run started."""
    verdict: Verdict
    record: dict[str, Any]
    """The run as ``status.qualityGate.lastRun`` (``time``, ``revision``, ``suites``, ...)."""
    summary: str
    """The failing or inconclusive suites in one line, for Events and the pause reason."""


@dataclass(frozen=True)
class Command:
    """A person's command (from the ``slogate.io/command`` annotation)."""

    verb: str
    id: str


CAUSES: dict[str, tuple[str, ...]] = {
    Outcome.ROLLED_BACK: ("analysis_failed", "inconclusive", "quality_failed", "quality_inconclusive"),
    Outcome.ABORTED: ("manual",),
    Outcome.PROMOTED: ("steps_completed", "manual"),
}
"""The bounded causes of each way a rollout ends (``Decision.cause``; the counters' ``reason`` label)."""


@dataclass(frozen=True)
class Decision:
    """What to do now. Consumed by ``controller.reconcile``."""

    state: RolloutState
    canary_weight: int
    """Traffic weight to realise for the candidate (0..100)."""
    candidate_full_size: bool
    """Run the candidate at full size (blue-green preview, or promotion)."""
    candidate_scaled_down: bool
    """Scale the candidate to zero (rolled back or aborted)."""
    mirror: bool
    """Mirror traffic to the candidate (shadow)."""
    retire: tuple[str, ...]
    """Revisions whose Deployments should be deleted."""
    events: tuple[Event, ...]
    """What to tell, from ``vocabulary.Events``."""
    rollout_phase: str | None
    """One of ``vocabulary.ROLLOUT_PHASES`` (``Progressing``, ``Paused``, ``RolledBack``) or None (steady)."""
    requeue_after: float
    cause: str | None = None
    """Why a rollout ended on this tick, one of ``CAUSES`` (a bounded metric label), else None."""
    pre_traffic: bool = False
    """The candidate waits at its pre-traffic quality gate: it runs (at least one replica) but the
    root Service and the routes keep every request, mirrored or not, away from it."""


def steps_of(spec: ModelDeploymentSpec) -> tuple[Step, ...]:
    """The effective steps. Pure."""
    if spec.rollout.steps:
        return tuple(spec.rollout.steps)
    if spec.rollout.strategy == Strategy.BLUE_GREEN:
        return ()
    if spec.rollout.strategy == Strategy.SHADOW:
        return DEFAULT_SHADOW_STEPS
    return DEFAULT_CANARY_STEPS


def has_slo(spec: ModelDeploymentSpec) -> bool:
    return bool(spec.slo and spec.slo.objectives)


def pre_traffic_pending(spec: ModelDeploymentSpec, state: RolloutState) -> bool:
    """The candidate has a pre-traffic quality gate still to pass. Pure."""
    return bool(
        spec.quality
        and spec.quality.gates.pre_traffic
        and state.canary is not None
        and not state.outcome
        and not state.promoting
        and PRE_TRAFFIC not in state.quality_passed
    )


def quality_due(spec: ModelDeploymentSpec, state: RolloutState, now: datetime) -> str | None:
    """The quality gate to run now, or None. Pure; the controller starts (or collects) the run.

    Due when the rollout holds at a gate (``state.quality_gate``, set by ``plan``), is neither
    paused nor finished, the candidate has been Ready, and a failed or inconclusive run of the
    same gate is at least ``analysis.interval`` old (a retry waits like an analysis run).
    """
    if (
        spec.quality is None
        or state.canary is None
        or state.quality_gate is None
        or state.outcome
        or state.paused_reason
        or state.candidate_ready_at is None
    ):
        return None
    last = state.quality_last or {}
    if last.get("gate") == state.quality_gate:
        at = parse_rfc3339(last.get("time"))
        if at is not None and now < at + parse_duration(spec.rollout.analysis.interval):
            return None
    return state.quality_gate


def analysis_due(spec: ModelDeploymentSpec, state: RolloutState, now: datetime) -> bool:
    """Whether an analysis run is due now. Pure.

    Due when SLOs are declared, a candidate is rolling out, not paused and not finished, it has been Ready
    for ``initialDelay`` (engine warm-up), and ``interval`` has passed since the last run.
    """
    if (
        not has_slo(spec)
        or state.canary is None
        or state.outcome
        or state.paused_reason  # a paused rollout waits for a person; it does not keep judging
        or state.candidate_ready_at is None
        or pre_traffic_pending(spec, state)  # no traffic reaches it yet: nothing to measure
    ):
        return False
    ready_at = parse_rfc3339(state.candidate_ready_at)
    assert ready_at is not None
    if now < ready_at + parse_duration(spec.rollout.analysis.initial_delay):
        return False
    last = parse_rfc3339(state.last_analysis_at)
    return last is None or now >= last + parse_duration(spec.rollout.analysis.interval)


def evidence_start(spec: ModelDeploymentSpec, state: RolloutState) -> datetime | None:
    """The earliest instant a window may start for its run to count as evidence for the current
    step: the step's start or the end of the warm-up (Ready + ``initialDelay``), whichever is later;
    None while the candidate has never been Ready. Pure."""
    ready = parse_rfc3339(state.candidate_ready_at)
    if ready is None:
        return None
    warm = ready + parse_duration(spec.rollout.analysis.initial_delay)
    started = parse_rfc3339(state.step_started_at) or warm
    return max(started, warm)


def counts_as_evidence(spec: ModelDeploymentSpec, state: RolloutState, now: datetime) -> bool:
    """Whether a passing run at ``now`` is evidence for the current step: its whole window
    (``slo.window`` back from ``now``) lies after ``evidence_start``. Pure."""
    start = evidence_start(spec, state)
    if start is None or spec.slo is None:
        return False
    return now - parse_duration(spec.slo.window) >= start


def _evidence_gate(spec: ModelDeploymentSpec, state: RolloutState, now: datetime) -> str | None:
    """None when the current step has the evidence it needs (or no SLO is declared), else what it
    waits for, in the words status and ``slogate explain`` show. Pure."""
    if not has_slo(spec):
        return None
    need = spec.rollout.analysis.min_passing_runs
    if state.passes >= need:
        return None
    text = f"waiting for a passing analysis: {state.passes} of {need} needed"
    start = evidence_start(spec, state)
    assert spec.slo is not None
    if start is None:
        return f"{text}; the candidate is not Ready yet"
    first = start + parse_duration(spec.slo.window)
    if state.last_verdict is not None:
        text += f", last verdict {state.last_verdict}"
        why = "; ".join(
            dict.fromkeys(
                r.get("message") or r.get("name", "")
                for r in state.last_results
                if r.get("verdict") == state.last_verdict and state.last_verdict != Verdict.PASS.value
            )
        )
        text += f": {why}" if why else ""
    if now < first:
        text += f"; the first window that counts ends at {rfc3339(first)}"
    return text


def _next_step(s: RolloutState, now: datetime, **changes: Any) -> RolloutState:
    """Move to the next step (or apply ``changes`` such as a new weight): a step change resets the
    evidence, which must come from traffic the new step sees."""
    return dataclasses.replace(
        s, **{"step": s.step + 1, **changes}, step_started_at=rfc3339(now), passes=0, waiting_for=None
    )


def _history(
    state: RolloutState, revision: str, outcome: str, reason: str, now: datetime
) -> tuple[dict[str, str], ...]:
    entry = {"revision": revision, "outcome": outcome, "time": rfc3339(now), "reason": reason}
    return (*state.history, entry)[-HISTORY_LIMIT:]


def _failure_summary(results: tuple[dict[str, Any], ...]) -> str:
    failed = [r for r in results if r.get("verdict") == Verdict.FAIL.value]
    return "; ".join(
        r.get("message") or f"{r['name']} {r.get('value')} > {r.get('threshold')}" for r in failed
    )


def plan(
    *,
    spec: ModelDeploymentSpec,
    state: RolloutState,
    observed: Observed,
    analysis: Analysis | None,
    command: Command | None,
    now: datetime,
    quality: QualityResult | None = None,
) -> Decision:
    """Decide the next rollout action. Pure; consumed by ``controller.reconcile``.

    Inputs are the spec, the persisted state, what runs (``observed``), the analysis run that
    ``analysis_due`` asked for (or None), a person's command (or None) and the time.
    """
    events: list[Event] = []
    interval = parse_duration(spec.rollout.analysis.interval).total_seconds() if has_slo(spec) else 5.0
    fast = min(2.0, interval)
    s = state
    current = observed.current

    def steady(st: RolloutState, retire: tuple[str, ...] = (), phase: str | None = None) -> Decision:
        return Decision(
            state=st,
            canary_weight=0,
            candidate_full_size=False,
            candidate_scaled_down=False,
            mirror=False,
            retire=retire,
            events=tuple(events),
            rollout_phase=phase,
            requeue_after=30.0,
        )

    # A command is applied once: its id is remembered in status.
    if command and command.id == s.last_command_id:
        command = None
    if command:
        s = dataclasses.replace(s, last_command_id=command.id)

    # 1. First revision, or the stable Deployment is gone: deploy the spec directly.
    if s.stable is None or not observed.stable_exists:
        new = RolloutState(
            stable=current, rejected=s.rejected, history=s.history, last_command_id=s.last_command_id
        )
        if s.stable != current:
            events.append(
                Events.DEPLOYED(f"revision {current} deployed directly (no stable revision to compare with)")
            )
        return steady(new)

    # 2. The spec is the stable revision: nothing to roll out (a running candidate is abandoned).
    if current == s.stable:
        retire = (s.canary,) if s.canary else ()
        if s.canary and not s.outcome:
            events.append(
                Events.ROLLOUT_ABANDONED(
                    f"spec is back at stable revision {s.stable}: candidate {s.canary} removed"
                )
            )
            s = dataclasses.replace(
                s, history=_history(s, s.canary, Outcome.ABORTED, "spec reverted to stable", now)
            )
        if s.canary:
            s = RolloutState(
                stable=s.stable, rejected=s.rejected, history=s.history, last_command_id=s.last_command_id
            )
        return steady(s, retire=retire)

    # 3. A rejected revision waits for a spec change or a person's retry.
    if current in s.rejected:
        if command and command.verb == "retry":
            s = dataclasses.replace(
                s, rejected=tuple(r for r in s.rejected if r != current), canary=None, outcome=None
            )
            events.append(Events.RETRY(f"revision {current} retried by a person"))
        else:
            return Decision(
                state=s,
                canary_weight=0,
                candidate_full_size=False,
                candidate_scaled_down=True,
                mirror=False,
                retire=(),
                events=tuple(events),
                rollout_phase=Phase.ROLLED_BACK,
                requeue_after=30.0,
            )

    # 4. A new candidate starts a rollout (a different, unfinished candidate is retired).
    if s.canary != current:
        retire = (s.canary,) if s.canary else ()
        s = dataclasses.replace(
            s,
            canary=current,
            weight=0,
            step=0,
            step_started_at=rfc3339(now),
            rollout_started_at=rfc3339(now),
            candidate_ready_at=None,
            last_analysis_at=None,
            last_verdict=None,
            last_results=(),
            failures=0,
            consecutive_inconclusive=0,
            paused_reason=None,
            outcome=None,
            outcome_message=None,
            promoting=False,
            promoted_by_person=False,
            quality_gate=None,
            quality_passed=(),
            quality_runs=0,
            quality_failures=0,
            quality_inconclusive=0,
            quality_last=None,
        )
        events.append(
            Events.ROLLOUT_STARTED(
                f"revision {current} starts a {spec.rollout.strategy.value} rollout beside stable {s.stable}"
            )
        )
        return _progress(spec, s, observed, None, None, now, events, fast, interval, retire, None)

    return _progress(spec, s, observed, analysis, command, now, events, fast, interval, (), quality)


def _rollback(
    s: RolloutState, reason: str, now: datetime, events: list[Event], *, outcome: str
) -> RolloutState:
    assert s.canary is not None
    rolled_back = outcome == Outcome.ROLLED_BACK
    tell = Events.ROLLED_BACK if rolled_back else Events.ABORTED
    events.append(tell(f"revision {s.canary} {'rolled back' if rolled_back else 'aborted'}: {reason}"))
    return dataclasses.replace(
        s,
        weight=0,
        paused_reason=None,
        promoting=False,
        promoted_by_person=False,
        outcome=outcome,
        outcome_message=reason,
        rejected=(*[r for r in s.rejected if r != s.canary], s.canary)[-REJECTED_LIMIT:],
        history=_history(s, s.canary, outcome, reason, now),
    )


def _progress(
    spec: ModelDeploymentSpec,
    s: RolloutState,
    observed: Observed,
    analysis: Analysis | None,
    command: Command | None,
    now: datetime,
    events: list[Event],
    fast: float,
    interval: float,
    retire: tuple[str, ...],
    quality: QualityResult | None,
) -> Decision:
    strategy = spec.rollout.strategy
    steps = steps_of(spec)
    limits = spec.rollout.analysis

    def decision(
        st: RolloutState,
        phase: str | None,
        requeue: float,
        *,
        full: bool = False,
        down: bool = False,
        cause: str | None = None,
    ) -> Decision:
        weight = st.weight
        pre = pre_traffic_pending(spec, st) and not down
        mirror = strategy == Strategy.SHADOW and weight == 0 and not down and not pre
        return Decision(
            state=st,
            canary_weight=0 if down else weight,
            candidate_full_size=(full or strategy == Strategy.BLUE_GREEN or st.promoting) and not down,
            candidate_scaled_down=down,
            mirror=mirror,
            retire=retire,
            events=tuple(events),
            rollout_phase=phase,
            requeue_after=requeue,
            cause=cause,
            pre_traffic=pre,
        )

    def quality_hold(st: RolloutState, gate: str) -> Decision | None:
        """Hold at ``gate`` until it passes; None once it has (or without quality gates)."""
        if spec.quality is None or gate in st.quality_passed:
            return None
        waiting = f"waiting for quality gate {gate}: " + (
            f"last run {st.quality_last['verdict']} ({st.quality_inconclusive + st.quality_failures} "
            f"of {st.quality_runs} runs not passing)"
            if st.quality_last and st.quality_last.get("gate") == gate
            else "suites running on the candidate"
            if st.candidate_ready_at
            else "the candidate is not Ready yet"
        )
        st = dataclasses.replace(st, quality_gate=gate, waiting_for=waiting)
        return decision(st, Phase.PROGRESSING, fast)

    def limit_reached(
        st: RolloutState, *, rollback: bool, reason: str, cause: str, paused: str, announce: bool = True
    ) -> tuple[RolloutState, Decision | None]:
        """An analysis or quality run reached its limit: roll back (the decision to return), or
        pause with ``paused`` as the reason (a ``Paused`` Event unless ``announce`` is off)."""
        if rollback:
            st = _rollback(st, reason, now, events, outcome=Outcome.ROLLED_BACK)
            return st, decision(st, Phase.ROLLED_BACK, 30.0, down=True, cause=cause)
        st = dataclasses.replace(st, paused_reason=paused)
        if announce:
            events.append(Events.PAUSED(f"rollout of {st.canary} paused: {paused}"))
        return st, None

    def step_quality_hold(st: RolloutState) -> Decision | None:
        """Hold a step named in ``quality.gates.atSteps`` until its gate passes."""
        if spec.quality is None or st.step + 1 not in spec.quality.gates.at_steps:
            return None
        return quality_hold(st, step_gate(st.step))

    # Finished rollouts (rolled back / aborted) hold until the spec changes or a person retries.
    if s.outcome:
        return decision(s, Phase.ROLLED_BACK, 30.0, down=True)

    # The candidate's readiness starts the warm-up clock for analysis.
    if observed.candidate_ready and s.candidate_ready_at is None:
        s = dataclasses.replace(s, candidate_ready_at=rfc3339(now))

    # People first.
    if command:
        verb = command.verb
        if verb == "abort":
            s = _rollback(s, "aborted by a person", now, events, outcome=Outcome.ABORTED)
            return decision(s, Phase.ROLLED_BACK, 30.0, down=True, cause="manual")
        if verb == "pause":
            s = dataclasses.replace(s, paused_reason="paused by a person: run `slogate resume` to continue")
            events.append(Events.PAUSED(f"rollout of {s.canary} paused by a person"))
        elif verb == "resume" and s.paused_reason:
            events.append(Events.RESUMED(f"rollout of {s.canary} resumed by a person"))
            s = dataclasses.replace(s, paused_reason=None, consecutive_inconclusive=0, quality_inconclusive=0)
        elif verb == "promote-full":
            events.append(Events.PROMOTED_BY_PERSON(f"revision {s.canary} promoted to full by a person"))
            s = dataclasses.replace(
                s, paused_reason=None, promoting=True, promoted_by_person=True, weight=100, step=len(steps)
            )
        elif verb == "promote" and s.quality_gate:
            # A rollout holding (or paused) at a quality gate: a person may release the gate.
            events.append(Events.GATE_RELEASED(f"quality gate {s.quality_gate} released by a person"))
            s = dataclasses.replace(
                s,
                quality_passed=(*s.quality_passed, s.quality_gate),
                quality_gate=None,
                quality_inconclusive=0,
                waiting_for=None,
                paused_reason=None,
            )
        elif verb == "promote":
            # A pause (manual or timed) or a step waiting for its evidence: a person may release it.
            gate = s.step < len(steps) and (steps[s.step].pause is not None or s.waiting_for is not None)
            if gate or s.paused_reason:
                events.append(
                    Events.GATE_RELEASED(f"step {s.step + 1} of {len(steps)} released by a person")
                    if gate
                    else Events.RESUMED("resumed by a person")
                )
                if gate:
                    s = _next_step(s, now, paused_reason=None, consecutive_inconclusive=0)
                else:
                    s = dataclasses.replace(s, paused_reason=None, consecutive_inconclusive=0)

    # Evidence: record an analysis run.
    if analysis is not None:
        results = tuple(r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in analysis.results)
        s = dataclasses.replace(
            s, last_analysis_at=rfc3339(now), last_verdict=analysis.verdict.value, last_results=results
        )
        if analysis.verdict == Verdict.FAIL:
            s = dataclasses.replace(s, failures=s.failures + 1, consecutive_inconclusive=0)
            summary = _failure_summary(results)
            events.append(
                Events.ANALYSIS_FAILED(
                    f"revision {s.canary}: {summary} ({s.failures}/{limits.failure_limit})"
                )
            )
            if s.failures >= limits.failure_limit:
                s, done = limit_reached(
                    s,
                    rollback=spec.rollout.auto_rollback,
                    reason=summary,
                    cause="analysis_failed",
                    paused=f"analysis failed ({summary}); autoRollback is off: "
                    "`slogate abort` or `slogate promote`",
                    announce=False,
                )
                if done:
                    return done
        elif analysis.verdict == Verdict.INCONCLUSIVE:
            s = dataclasses.replace(s, consecutive_inconclusive=s.consecutive_inconclusive + 1)
            why = "; ".join(
                dict.fromkeys(
                    r.get("message", "") for r in results if r.get("verdict") == Verdict.INCONCLUSIVE.value
                )
            )
            events.append(
                Events.ANALYSIS_INCONCLUSIVE(
                    f"revision {s.canary}: {why} ({s.consecutive_inconclusive}/{limits.inconclusive_limit})"
                )
            )
            if s.consecutive_inconclusive >= limits.inconclusive_limit and not s.paused_reason:
                s, done = limit_reached(
                    s,
                    rollback=limits.on_inconclusive.value == "rollback",
                    reason=f"analysis inconclusive {s.consecutive_inconclusive} times: {why}",
                    cause="inconclusive",
                    paused=f"analysis inconclusive {s.consecutive_inconclusive} times "
                    f"({why}): `slogate resume` to keep analysing, `slogate promote` or `slogate abort`",
                )
                if done:
                    return done
        else:
            evidence = counts_as_evidence(spec, s, now)
            s = dataclasses.replace(s, consecutive_inconclusive=0, passes=s.passes + int(evidence))

    # Evidence: record a quality run (once: its gate and run number must be the awaited ones).
    if (
        quality is not None
        and spec.quality is not None
        and quality.gate == s.quality_gate
        and quality.run == s.quality_runs
    ):
        gate = quality.gate
        s = dataclasses.replace(s, quality_runs=s.quality_runs + 1, quality_last=quality.record)
        if quality.verdict == Verdict.PASS:
            events.append(
                Events.QUALITY_PASSED(f"revision {s.canary} passed quality gate {gate}: {quality.summary}")
            )
            s = dataclasses.replace(
                s,
                quality_passed=(*s.quality_passed, gate),
                quality_gate=None,
                quality_inconclusive=0,
                waiting_for=None,
            )
        elif quality.verdict == Verdict.FAIL:
            s = dataclasses.replace(s, quality_failures=s.quality_failures + 1, quality_inconclusive=0)
            events.append(
                Events.QUALITY_FAILED(
                    f"revision {s.canary} at quality gate {gate}: {quality.summary} "
                    f"({s.quality_failures}/{limits.failure_limit})"
                )
            )
            if s.quality_failures >= limits.failure_limit and not s.paused_reason:
                reason = f"quality gate {gate}: {quality.summary}"
                s, done = limit_reached(
                    s,
                    rollback=spec.rollout.auto_rollback,
                    reason=reason,
                    cause="quality_failed",
                    paused=f"{reason}; autoRollback is off: `slogate abort` or `slogate promote`",
                )
                if done:
                    return done
        else:
            s = dataclasses.replace(s, quality_inconclusive=s.quality_inconclusive + 1)
            events.append(
                Events.QUALITY_INCONCLUSIVE(
                    f"revision {s.canary} at quality gate {gate}: {quality.summary} "
                    f"({s.quality_inconclusive}/{limits.inconclusive_limit})"
                )
            )
            if s.quality_inconclusive >= limits.inconclusive_limit and not s.paused_reason:
                reason = f"quality gate {gate} inconclusive {s.quality_inconclusive} times: {quality.summary}"
                s, done = limit_reached(
                    s,
                    rollback=limits.on_inconclusive.value == "rollback",
                    reason=reason,
                    cause="quality_inconclusive",
                    paused=f"{reason}: `slogate resume` to run it again, `slogate promote` to "
                    "release the gate or `slogate abort`",
                )
                if done:
                    return done

    if s.paused_reason:
        return decision(s, Phase.PAUSED, interval)

    # The pre-traffic quality gate: nothing else happens until the suites pass on the candidate.
    if pre_traffic_pending(spec, s) and (held := quality_hold(s, PRE_TRAFFIC)) is not None:
        return held

    # Promotion: the candidate at full size and Ready becomes stable. With no steps (blue-green's
    # default) the evidence rule applies here: the switch waits for the candidate's passing runs.
    if not steps and not s.promoting and not s.promoted_by_person:
        waiting = _evidence_gate(spec, s, now)
        if waiting is not None:
            if s.waiting_for is None:
                events.append(Events.AWAITING_EVIDENCE(f"revision {s.canary}: {waiting}"))
            s = dataclasses.replace(s, waiting_for=waiting)
            return decision(s, Phase.PROGRESSING, min(interval, 5.0))
    if s.promoting or s.step >= len(steps):
        if not s.promoting:
            s = dataclasses.replace(s, promoting=True, weight=100)
        if observed.candidate_full:
            old = s.stable
            assert s.canary is not None and old is not None
            events.append(Events.PROMOTED(f"revision {s.canary} is now stable (was {old})"))
            new = RolloutState(
                stable=s.canary,
                rejected=s.rejected,
                history=_history(
                    s,
                    s.canary,
                    Outcome.PROMOTED,
                    "promoted to full by a person" if s.promoted_by_person else "all steps passed",
                    now,
                ),
                last_command_id=s.last_command_id,
            )
            return Decision(
                state=new,
                canary_weight=0,
                candidate_full_size=False,
                candidate_scaled_down=False,
                mirror=False,
                retire=(*retire, old),
                events=tuple(events),
                rollout_phase=None,
                requeue_after=fast,
                cause="manual" if s.promoted_by_person else "steps_completed",
            )
        return decision(s, Phase.PROGRESSING, fast, full=True)

    step = steps[s.step]
    started = parse_rfc3339(s.step_started_at) or now
    if step.set_weight is not None:
        if s.weight != step.set_weight:
            events.append(
                Events.WEIGHT_SET(
                    f"revision {s.canary}: weight {s.weight} → {step.set_weight} (step {s.step + 1}/{len(steps)})"
                )
            )
            s = _next_step(s, now, step=s.step, weight=step.set_weight)
            return decision(s, Phase.PROGRESSING, fast)
        if not observed.candidate_ready:
            s = dataclasses.replace(s, waiting_for=None)
            return decision(s, Phase.PROGRESSING, fast if not has_slo(spec) else min(interval, 5.0))
        waiting = _evidence_gate(spec, s, now)
        if waiting is None:
            if (held := step_quality_hold(s)) is not None:
                return held
            s = _next_step(s, now)
            return decision(s, Phase.PROGRESSING, fast)
        s = dataclasses.replace(s, waiting_for=waiting)
        return decision(s, Phase.PROGRESSING, min(interval, 5.0))

    assert step.pause is not None
    if step.pause.duration is None:
        reason = f"manual gate at step {s.step + 1} of {len(steps)}: run `slogate promote` to continue"
        if s.paused_reason != reason:
            events.append(
                Events.MANUAL_GATE(
                    f"revision {s.canary} waits at a manual gate (step {s.step + 1}/{len(steps)})"
                )
            )
        s = dataclasses.replace(s, paused_reason=reason)
        return decision(s, Phase.PAUSED, interval)
    remaining = started + parse_duration(step.pause.duration) - now
    if remaining > timedelta(0):
        return decision(s, Phase.PROGRESSING, min(remaining.total_seconds(), interval))
    # The duration is a minimum: the pause ends with its evidence, never on its timer alone — where
    # there is traffic to judge. A canary pausing at weight 0 (before its first setWeight) runs no
    # pods; its later steps carry the rule (a canary must set a weight: API CEL rule).
    judged = strategy in (Strategy.BLUE_GREEN, Strategy.SHADOW) or s.weight > 0
    waiting = _evidence_gate(spec, s, now) if judged else None
    if waiting is None:
        if judged and (held := step_quality_hold(s)) is not None:
            return held
        s = _next_step(s, now)
        return decision(s, Phase.PROGRESSING, fast)
    if s.waiting_for is None:
        events.append(
            Events.PAUSE_EXTENDED(
                f"revision {s.canary}: pause of step {s.step + 1}/{len(steps)} ended without evidence, "
                f"{waiting}"
            )
        )
    s = dataclasses.replace(s, waiting_for=waiting)
    return decision(s, Phase.PROGRESSING, min(interval, 5.0))
