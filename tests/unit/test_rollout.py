"""The rollout state machine driven tick by tick (flagger's scheduler tests are the model).

Every tick round-trips the state through the status dict, as an operator restart would, so each
scenario also proves that a restart at any step resumes exactly where it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec, ObjectiveResult, Verdict
from slogate.core.rollout import (
    Analysis,
    Command,
    Observed,
    RolloutState,
    analysis_due,
    counts_as_evidence,
    evidence_start,
    plan,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def spec(**rollout) -> ModelDeploymentSpec:
    base = {
        "model": {"source": "hf://org/m"},
        "slo": {
            "window": "1m",
            "minRequests": 10,
            "objectives": [{"metric": "ttft", "percentile": 95, "max": "500ms"}],
        },
        "rollout": {
            "steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {}}],
            "analysis": {"interval": "10s", "initialDelay": "20s", "failureLimit": 2, "inconclusiveLimit": 3},
            **rollout,
        },
    }
    return ModelDeploymentSpec.model_validate(base)


def result(verdict: Verdict, value: str = "300ms") -> Analysis:
    return Analysis(
        verdict,
        (
            ObjectiveResult(
                name="ttft-p95",
                value=value,
                threshold="500ms",
                verdict=verdict,
                message=f"ttft p95 {value} vs 500ms",
            ),
        ),
    )


class World:
    """A fake cluster: the candidate becomes Ready one tick after its size changes."""

    def __init__(self, sp: ModelDeploymentSpec, *, stable: str = "aaaa", current: str = "bbbb") -> None:
        self.spec = sp
        self.status = RolloutState(stable=stable).to_status()
        self.current = current
        self.now = T0
        self.size = (0, False)
        self.ready_size: tuple[int, bool] | None = None
        self.events: list[tuple[str, str, str]] = []
        self.decisions = []

    def tick(self, *, verdict: Verdict | None = Verdict.PASS, command: Command | None = None, dt: float = 5):
        state = RolloutState.from_status(self.status)  # restart-safe: state only ever comes from status
        settled = self.ready_size == self.size
        observed = Observed(
            current=self.current,
            stable_exists=True,
            candidate_ready=settled and (self.size[0] > 0 or self.size[1]),
            candidate_full=settled and self.size[1],
        )
        analysis = result(verdict) if verdict and analysis_due(self.spec, state, self.now) else None
        d = plan(
            spec=self.spec, state=state, observed=observed, analysis=analysis, command=command, now=self.now
        )
        self.ready_size = self.size
        # A shadow candidate runs (at stable's size) while it is mirrored to, at weight 0.
        self.size = (d.canary_weight or (100 if d.mirror else 0), d.candidate_full_size)
        self.status = {**self.status, **d.state.to_status()}
        assert RolloutState.from_status(self.status) == d.state
        self.events += d.events
        self.decisions.append(d)
        self.now += timedelta(seconds=dt)
        return d

    def reasons(self) -> list[str]:
        return [e[1] for e in self.events]


def run_until(world: World, predicate, *, max_ticks: int = 200, **kw):
    for _ in range(max_ticks):
        d = world.tick(**kw)
        if predicate(d):
            return d
    raise AssertionError(f"never reached; events: {world.reasons()}")


def test_first_revision_is_deployed_directly():
    d = plan(
        spec=spec(),
        state=RolloutState(),
        observed=Observed(current="aaaa", stable_exists=False, candidate_ready=False),
        analysis=None,
        command=None,
        now=T0,
    )
    assert d.state.stable == "aaaa" and d.state.canary is None and d.rollout_phase is None
    assert [e[1] for e in d.events] == ["Deployed"]


def test_good_canary_walks_every_step_then_waits_at_the_gate_and_is_promoted():
    w = World(spec())
    d = w.tick()
    # The rollout starts and sets the first weight in the same pass.
    assert d.state.canary == "bbbb" and d.rollout_phase == "Progressing"
    assert w.reasons() == ["RolloutStarted", "WeightSet"] and d.state.weight == 10
    # No advance before a passing analysis after initialDelay: evidence first.
    d = run_until(w, lambda d: d.state.step == 1)
    assert w.status["lastAnalysis"]["verdict"] == "Pass"
    assert (w.now - T0) >= timedelta(seconds=20)
    d = run_until(w, lambda d: d.state.step == 2)  # the 30s pause
    d = run_until(w, lambda d: d.state.weight == 50)
    d = run_until(w, lambda d: d.rollout_phase == "Paused")
    assert "manual gate at step 4 of 4" in d.state.paused_reason
    for _ in range(20):  # a manual gate waits indefinitely
        assert w.tick().rollout_phase == "Paused"
    d = w.tick(command=Command("promote", "c1"))
    assert d.state.paused_reason is None
    d = run_until(w, lambda d: d.state.canary is None)
    assert d.state.stable == "bbbb" and d.retire == ("aaaa",)
    assert w.status["history"][-1]["outcome"] == "Promoted"
    assert w.reasons().count("GateReleased") == 1 and w.reasons().count("Promoted") == 1
    # A gate released by a person is still a promotion by completed steps (not `promote --full`).
    assert d.cause == "steps_completed" and w.status["history"][-1]["reason"] == "all steps passed"
    assert [x.cause for x in w.decisions if x.cause] == ["steps_completed"]
    # Steady afterwards: nothing more happens.
    d = w.tick()
    assert d.events == () and d.state.stable == "bbbb"


def test_failing_canary_is_rolled_back_after_failure_limit_and_rejected():
    w = World(spec())
    run_until(w, lambda d: d.state.candidate_ready_at is not None)
    d = run_until(w, lambda d: d.state.failures == 1, verdict=Verdict.FAIL)
    assert d.rollout_phase == "Progressing" and "AnalysisFailed" in w.reasons()
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack", verdict=Verdict.FAIL)
    assert d.candidate_scaled_down and d.canary_weight == 0 and d.cause == "analysis_failed"
    assert d.state.outcome == "RolledBack" and "ttft p95 300ms vs 500ms" in d.state.outcome_message
    assert d.state.rejected == ("bbbb",)
    assert w.status["history"][-1]["outcome"] == "RolledBack"
    # It stays rolled back, and is not retried, until a person retries or the spec changes.
    for _ in range(5):
        held = w.tick()
        assert held.rollout_phase == "RolledBack" and held.cause is None  # counted once, when it happened
    d = w.tick(command=Command("retry", "r1"))
    assert d.state.canary == "bbbb" and d.state.outcome is None and "Retry" in w.reasons()


def test_inconclusive_analysis_pauses_never_promotes():
    w = World(spec())
    d = run_until(w, lambda d: d.rollout_phase == "Paused", verdict=Verdict.INCONCLUSIVE)
    assert "inconclusive 3 times" in d.state.paused_reason
    assert d.state.step == 0 and d.state.stable == "aaaa"
    for _ in range(10):
        d = w.tick(verdict=Verdict.INCONCLUSIVE)
        assert d.rollout_phase == "Paused" and d.state.stable == "aaaa"
    d = w.tick(command=Command("resume", "x"))
    assert d.state.paused_reason is None and d.state.consecutive_inconclusive == 0


def test_inconclusive_can_roll_back_when_configured():
    w = World(
        spec(
            analysis={
                "interval": "10s",
                "initialDelay": "0s",
                "inconclusiveLimit": 2,
                "onInconclusive": "rollback",
            }
        )
    )
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack", verdict=Verdict.INCONCLUSIVE)
    assert d.state.outcome == "RolledBack" and "inconclusive 2 times" in d.state.outcome_message
    assert d.cause == "inconclusive"


def test_auto_rollback_off_pauses_on_failure():
    w = World(spec(autoRollback=False))
    d = run_until(w, lambda d: d.rollout_phase == "Paused", verdict=Verdict.FAIL)
    assert "autoRollback is off" in d.state.paused_reason and d.state.rejected == ()


def test_abort_and_pause_commands_and_commands_apply_once():
    w = World(spec())
    run_until(w, lambda d: d.state.weight == 10)
    d = w.tick(command=Command("pause", "p1"))
    assert d.rollout_phase == "Paused"
    d = w.tick(command=Command("resume", "p1"))  # same id: ignored
    assert d.rollout_phase == "Paused"
    d = w.tick(command=Command("abort", "a1"))
    assert d.rollout_phase == "RolledBack" and d.state.outcome == "Aborted" and d.candidate_scaled_down
    assert d.cause == "manual"


def test_promote_full_skips_the_remaining_steps():
    w = World(spec())
    run_until(w, lambda d: d.state.weight == 10)
    d = w.tick(command=Command("promote-full", "f1"))
    assert d.state.promoting and d.state.promoted_by_person and d.candidate_full_size
    assert w.status["rollout"]["promotedByPerson"] is True  # survives a restart
    d = run_until(w, lambda d: d.state.canary is None)
    assert d.state.stable == "bbbb" and d.cause == "manual" and not d.state.promoted_by_person
    assert w.status["history"][-1]["reason"] == "promoted to full by a person"


def test_blue_green_runs_the_candidate_at_full_size_with_no_traffic_then_switches():
    w = World(spec(strategy="blueGreen", steps=[{"pause": {"duration": "20s"}}]))
    d = w.tick()
    assert d.candidate_full_size and d.canary_weight == 0
    d = run_until(w, lambda d: d.state.canary is None)
    assert d.state.stable == "bbbb"


def test_shadow_mirrors_while_weight_is_zero():
    sp = spec(
        strategy="shadow",
        traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
        steps=[{"pause": {"duration": "20s"}}, {"setWeight": 50}],
    )
    w = World(sp)
    d = w.tick()
    assert d.mirror and d.canary_weight == 0
    d = run_until(w, lambda d: d.state.weight == 50)
    assert not d.mirror


def test_new_spec_during_rollout_retires_the_unfinished_candidate():
    w = World(spec())
    run_until(w, lambda d: d.state.weight == 10)
    w.current = "cccc"
    d = w.tick()
    assert d.state.canary == "cccc" and d.retire == ("bbbb",)
    assert d.state.step == 0 and d.state.failures == 0 and d.state.candidate_ready_at is None


def test_spec_reverted_to_stable_abandons_the_candidate():
    w = World(spec())
    run_until(w, lambda d: d.state.weight == 10)
    w.current = "aaaa"
    d = w.tick()
    assert d.state.canary is None and d.retire == ("bbbb",) and "RolloutAbandoned" in w.reasons()


def test_without_slo_steps_advance_on_readiness_and_time():
    sp = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://org/m"},
            "rollout": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]},
        }
    )
    w = World(sp)
    d = run_until(w, lambda d: d.state.canary is None)
    assert d.state.stable == "bbbb" and w.status["lastAnalysis"] is None


@pytest.mark.parametrize("restart_at", range(0, 40, 3))
def test_restart_at_any_tick_reaches_the_same_outcome(restart_at):
    """Replaying from the status at any tick (a restarted operator) gives the same decisions."""
    a = World(spec())
    for _ in range(restart_at):
        a.tick()
    b = World(spec())
    b.status, b.now, b.size, b.ready_size = dict(a.status), a.now, a.size, a.ready_size
    for _ in range(30):
        da, db = a.tick(), b.tick()
        assert da.state == db.state and da.canary_weight == db.canary_weight


# --- Evidence-gated promotion (issue 13) ---------------------------------------------------------


def weights(w: World) -> set[int]:
    return {d.canary_weight for d in w.decisions}


def test_a_pause_that_expires_with_no_verdict_waits_and_says_why():
    """The analysis never answers (no run at all): the 30 s pause is a minimum, not a deadline."""
    w = World(spec(steps=[{"setWeight": 10}, {"pause": {"duration": "30s"}}]))
    run_until(w, lambda d: d.state.step == 1)  # the 10% step passed; then the analysis goes silent
    for _ in range(60):  # 5 minutes of ticks
        d = w.tick(verdict=None)
    assert d.state.step == 1 and d.state.stable == "aaaa" and not d.state.promoting
    assert d.rollout_phase == "Progressing" and d.state.weight == 10
    assert d.state.waiting_for.startswith("waiting for a passing analysis: 0 of 1 needed")
    assert w.status["rollout"]["waitingFor"] == d.state.waiting_for  # in status, survives a restart
    assert w.reasons().count("PauseExtended") == 1  # told once, not every tick
    assert 100 not in weights(w)


def test_a_pause_that_expires_inconclusive_extends_then_pauses_and_never_promotes():
    w = World(spec(steps=[{"setWeight": 10}, {"pause": {"duration": "10s"}}]))
    d = run_until(w, lambda d: d.state.waiting_for is not None, verdict=Verdict.INCONCLUSIVE)
    assert d.state.stable == "aaaa"
    d = run_until(w, lambda d: d.rollout_phase == "Paused", verdict=Verdict.INCONCLUSIVE)
    assert "inconclusive 3 times" in d.state.paused_reason
    for _ in range(20):
        d = w.tick(verdict=Verdict.INCONCLUSIVE)
    assert d.state.stable == "aaaa" and 100 not in weights(w) and not d.state.promoting


def test_the_waiting_message_names_the_last_verdict_and_its_reason():
    w = World(spec(steps=[{"setWeight": 10}, {"pause": {"duration": "10s"}}]))
    d = run_until(
        w,
        lambda d: d.state.waiting_for is not None and "last verdict Inconclusive" in d.state.waiting_for,
        verdict=Verdict.INCONCLUSIVE,
    )
    assert d.state.waiting_for == (
        "waiting for a passing analysis: 0 of 1 needed, last verdict Inconclusive: ttft p95 300ms vs 500ms;"
        " the first window that counts ends at 2026-11-22T12:01:30Z"
    )  # Ready at 12:00:10 (two ticks), warm-up 20 s, window 1 m


def test_a_pause_ends_once_its_evidence_arrives():
    w = World(spec(steps=[{"setWeight": 10}, {"pause": {"duration": "10s"}}]))
    run_until(w, lambda d: d.state.waiting_for is not None, verdict=None)
    d = run_until(w, lambda d: d.state.canary is None)
    assert d.state.stable == "bbbb" and d.cause == "steps_completed"


def test_each_step_needs_its_own_evidence_from_a_window_inside_it():
    """A pass from the 10% step does not carry over: the pause needs a run whose whole window
    (1m) lies after the pause began."""
    w = World(spec(steps=[{"setWeight": 10}, {"pause": {"duration": "5s"}}]))
    d = run_until(w, lambda d: d.state.step == 1)
    entered = w.now - timedelta(seconds=5)
    assert d.state.passes == 0
    d = run_until(w, lambda d: d.state.step == 2 or d.state.canary is None)
    assert w.now - entered >= timedelta(minutes=1)


def test_min_passing_runs_is_how_many_passes_a_step_needs():
    sp = spec(
        steps=[{"setWeight": 10}],
        analysis={"interval": "10s", "initialDelay": "0s", "minPassingRuns": 3},
    )
    w = World(sp)
    d = run_until(w, lambda d: d.state.passes == 2)
    assert d.state.step == 0 and "2 of 3 needed" in d.state.waiting_for
    d = run_until(w, lambda d: d.state.step == 1)
    assert w.decisions[-2].state.passes == 2 and d.state.passes == 0


def test_blue_green_breaching_during_a_short_pause_is_rolled_back_and_never_switched():
    w = World(spec(strategy="blueGreen", steps=[{"pause": {"duration": "5s"}}]))
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack", verdict=Verdict.FAIL)
    assert d.state.stable == "aaaa" and d.cause == "analysis_failed"
    assert not any(x.state.promoting for x in w.decisions) and 100 not in weights(w)


def test_blue_green_without_steps_switches_only_with_evidence():
    w = World(spec(strategy="blueGreen", steps=[]))
    for _ in range(30):
        d = w.tick(verdict=Verdict.INCONCLUSIVE)
        if d.rollout_phase == "Paused":
            break
    assert d.state.stable == "aaaa" and not any(x.state.promoting for x in w.decisions)
    assert "AwaitingEvidence" in w.reasons()
    w2 = World(spec(strategy="blueGreen", steps=[]))
    d = run_until(w2, lambda d: d.state.canary is None)
    ready = datetime.fromisoformat(w2.decisions[-2].state.candidate_ready_at.replace("Z", "+00:00"))
    # warm-up 20 s + a full 1 m window before the switch
    assert w2.now - ready >= timedelta(seconds=80)


def test_shadow_candidate_failing_is_rolled_back_and_never_gets_weight():
    sp = spec(
        strategy="shadow",
        traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
        steps=[{"pause": {"duration": "5s"}}],
    )
    w = World(sp)
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack", verdict=Verdict.FAIL)
    assert weights(w) == {0} and d.state.stable == "aaaa"
    assert all(x.mirror for x in w.decisions[:-1]) and not d.mirror
    assert w.status["lastAnalysis"]["failures"] == 2


def test_shadow_without_steps_mirrors_then_promotes_with_evidence():
    sp = spec(
        strategy="shadow",
        traffic={"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
        steps=[],
    )
    w = World(sp)
    d = run_until(w, lambda d: d.state.promoting)
    assert {x.canary_weight for x in w.decisions[:-1]} == {0}
    assert w.now - T0 >= timedelta(minutes=5)  # the default pause of 5m
    d = run_until(w, lambda d: d.state.canary is None)
    assert d.state.stable == "bbbb"


def test_a_person_releasing_a_timed_pause_is_the_one_way_past_the_rule():
    w = World(spec(steps=[{"setWeight": 10}, {"pause": {"duration": "10s"}}]))
    run_until(w, lambda d: d.state.step == 1)
    run_until(w, lambda d: d.state.waiting_for is not None, verdict=None)
    d = w.tick(verdict=None, command=Command("promote", "go"))
    assert d.state.step == 2 and "GateReleased" in w.reasons()


EVIDENCE_SPEC = spec()  # window 1m, initialDelay 20s


@pytest.mark.parametrize(
    ("ready", "step", "run", "counts"),
    [
        # (candidate Ready at, step began at, run at): seconds after T0
        (0, 0, 80, True),  # warm-up ends 20, window 20..80
        (0, 0, 79, False),  # window starts at 19, inside the warm-up
        (0, 30, 90, True),  # the step began at 30: window 30..90
        (0, 30, 89, False),  # window starts before the step change
        (40, 0, 119, False),  # Ready late: warm-up until 60
        (40, 0, 120, True),
        (None, 0, 500, False),  # never Ready: no evidence at all
    ],
)
def test_a_pass_counts_only_when_its_whole_window_is_after_the_step_and_the_warm_up(ready, step, run, counts):
    at = lambda sec: (T0 + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    st = RolloutState(
        stable="aaaa",
        canary="bbbb",
        step_started_at=at(step),
        candidate_ready_at=at(ready) if ready is not None else None,
    )
    assert counts_as_evidence(EVIDENCE_SPEC, st, T0 + timedelta(seconds=run)) is counts
    if ready is not None:
        assert evidence_start(EVIDENCE_SPEC, st) == T0 + timedelta(seconds=max(step, ready + 20))
