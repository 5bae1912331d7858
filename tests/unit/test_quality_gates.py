"""Quality gates in the rollout state machine, tick by tick, every tick through status (restart-safe),
and the parts of the plan they move: the pre-traffic size and the root Service's selector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec, Verdict
from slogate.core import quality as Q
from slogate.core.rollout import (
    PRE_TRAFFIC,
    Command,
    Observed,
    QualityResult,
    RolloutState,
    analysis_due,
    plan,
    pre_traffic_pending,
    quality_due,
)
from slogate.core.traffic import rollout_sizes
from tests.unit.test_rollout import result

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SUITES = [{"name": "extraction", "configMap": "extraction-suite", "samples": 5, "minPassRate": 0.9}]


def spec(quality=None, **rollout) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://org/m"},
            "slo": {
                "window": "1m",
                "minRequests": 10,
                "objectives": [{"metric": "ttft", "percentile": 95, "max": "500ms"}],
            },
            "rollout": {
                "steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}],
                "analysis": {
                    "interval": "10s",
                    "initialDelay": "20s",
                    "failureLimit": 2,
                    "inconclusiveLimit": 3,
                },
                **rollout,
            },
            "quality": {"suites": SUITES, **(quality or {})},
        }
    )


class World:
    """The candidate is Ready one tick after its size changes; a quality run, once due, finishes on
    the next tick with the verdict ``judge(gate)`` gives (``None``: still running)."""

    def __init__(self, sp: ModelDeploymentSpec, judge) -> None:
        self.spec = sp
        self.judge = judge
        self.status = RolloutState(stable="aaaa").to_status()
        self.now = T0
        self.size: tuple[int, bool] = (0, False)
        self.ready_size: tuple[int, bool] | None = None
        self.events: list[tuple[str, str, str]] = []
        self.weights: list[int] = []
        self.running: tuple[str, int] | None = None
        self.started: list[tuple[str, int]] = []

    def tick(self, *, command: Command | None = None, dt: float = 5):
        state = RolloutState.from_status(self.status)
        settled = self.ready_size == self.size
        observed = Observed(
            current="bbbb",
            stable_exists=True,
            candidate_ready=settled and self.size[0] > 0,
            candidate_full=settled and self.size[1],
        )
        analysis = result(Verdict.PASS) if analysis_due(self.spec, state, self.now) else None
        quality = None
        gate = quality_due(self.spec, state, self.now)
        if gate is not None:
            key = (gate, state.quality_runs)
            if self.running == key:
                v = self.judge(gate)
                if v is not None:
                    record = {"time": "2026-12-04T12:00:00Z", "gate": gate, "revision": "bbbb", "verdict": v}
                    quality = QualityResult(
                        gate, key[1], Verdict(v), {**record, "time": _t(self.now)}, f"{v} why"
                    )
                    self.running = None
            else:
                self.running = key
                self.started.append(key)
        d = plan(
            spec=self.spec,
            state=state,
            observed=observed,
            analysis=analysis,
            command=command,
            now=self.now,
            quality=quality,
        )
        self.ready_size = self.size
        self.size = (1 if d.pre_traffic else d.canary_weight, d.candidate_full_size)
        self.status = {**self.status, **d.state.to_status()}
        assert RolloutState.from_status(self.status) == d.state
        self.events += d.events
        self.weights.append(d.canary_weight)
        self.now += timedelta(seconds=dt)
        return d

    def reasons(self) -> list[str]:
        return [e[1] for e in self.events]


def _t(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_until(world: World, predicate, *, max_ticks: int = 200, **kw):
    for _ in range(max_ticks):
        d = world.tick(**kw)
        if predicate(d):
            return d
    raise AssertionError(f"never reached; events: {world.reasons()}")


def test_the_pre_traffic_gate_holds_the_candidate_at_weight_0_until_it_passes():
    w = World(spec(), judge=lambda gate: "Pass")
    d = w.tick()
    assert d.pre_traffic and d.canary_weight == 0 and d.state.quality_gate == PRE_TRAFFIC
    assert w.reasons() == ["RolloutStarted"]  # no WeightSet before the gate
    assert "waiting for quality gate preTraffic" in d.state.waiting_for
    assert not analysis_due(w.spec, d.state, w.now + timedelta(minutes=5))  # nothing to measure yet
    d = run_until(w, lambda d: d.state.weight == 10)
    assert "QualityPassed" in w.reasons() and w.status["qualityGate"]["passed"] == [PRE_TRAFFIC]
    assert not d.pre_traffic and w.reasons().index("QualityPassed") < w.reasons().index("WeightSet")
    run_until(w, lambda d: d.state.canary is None)
    assert w.started == [(PRE_TRAFFIC, 0)]  # one run, recorded once


def test_a_failing_candidate_is_rolled_back_by_the_pre_traffic_gate_without_ever_getting_traffic():
    w = World(spec(), judge=lambda gate: "Fail")
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack")
    assert d.cause == "quality_failed" and d.candidate_scaled_down
    assert max(w.weights) == 0 and "WeightSet" not in w.reasons()
    assert w.reasons().count("QualityFailed") == 2  # failureLimit 2
    assert "quality gate preTraffic: Fail why" in d.state.outcome_message
    assert w.status["rejectedRevisions"] == ["bbbb"]
    # Runs are retried an analysis interval apart, each recorded once.
    assert [r for _, r in w.started] == [0, 1]


def test_inconclusive_runs_pause_for_a_person_who_may_release_the_gate():
    w = World(spec(), judge=lambda gate: "Inconclusive")
    d = run_until(w, lambda d: d.rollout_phase == "Paused")
    assert w.reasons().count("QualityInconclusive") == 3
    assert "quality gate preTraffic inconclusive 3 times" in d.state.paused_reason
    assert max(w.weights) == 0
    for _ in range(5):  # paused: no more runs
        assert w.tick().rollout_phase == "Paused"
    assert len(w.started) == 3
    d = w.tick(command=Command("promote", "p1"))
    assert "GateReleased" in w.reasons() and d.state.paused_reason is None
    assert PRE_TRAFFIC in d.state.quality_passed
    run_until(w, lambda d: d.state.weight == 10)


def test_resume_runs_the_gate_again_from_zero_inconclusive_runs():
    w = World(spec(), judge=lambda gate: "Inconclusive")
    run_until(w, lambda d: d.rollout_phase == "Paused")
    w.judge = lambda gate: "Pass"
    d = w.tick(command=Command("resume", "r1"))
    assert d.state.quality_inconclusive == 0 and d.state.paused_reason is None
    run_until(w, lambda d: d.state.weight == 10)


def test_on_inconclusive_rollback_rolls_back():
    sp = spec(
        analysis={
            "interval": "10s",
            "initialDelay": "20s",
            "inconclusiveLimit": 2,
            "onInconclusive": "rollback",
        }
    )
    w = World(sp, judge=lambda gate: "Inconclusive")
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack")
    assert d.cause == "quality_inconclusive" and max(w.weights) == 0


def test_auto_rollback_off_pauses_on_a_failing_gate():
    w = World(spec(autoRollback=False), judge=lambda gate: "Fail")
    d = run_until(w, lambda d: d.rollout_phase == "Paused")
    assert "autoRollback is off" in d.state.paused_reason and d.state.outcome is None


def test_a_step_gate_holds_the_step_after_its_own_condition_and_evidence():
    seen: list[str] = []

    def judge(gate):
        seen.append(gate)
        return "Pass"

    w = World(spec({"gates": {"preTraffic": False, "atSteps": [1]}}), judge=judge)
    d = w.tick()
    assert not d.pre_traffic and d.state.weight == 10  # no pre-traffic gate asked
    d = run_until(w, lambda d: d.state.quality_gate == "step 1")
    assert (
        d.state.step == 0
        and d.canary_weight == 10
        and "waiting for quality gate step 1" in d.state.waiting_for
    )
    d = run_until(w, lambda d: d.state.step == 1)
    assert "step 1" in d.state.quality_passed and set(seen) == {"step 1"}
    run_until(w, lambda d: d.state.canary is None)


def test_a_failing_step_gate_rolls_back_from_its_weight():
    w = World(
        spec({"gates": {"preTraffic": True, "atSteps": [3]}}),
        judge=lambda g: "Pass" if g == PRE_TRAFFIC else "Fail",
    )
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack")
    assert max(w.weights) == 50 and "quality gate step 3" in d.state.outcome_message


def test_a_stale_result_is_not_recorded():
    sp = spec()
    w = World(sp, judge=lambda gate: None)  # never finishes
    for _ in range(6):
        w.tick()
    state = RolloutState.from_status(w.status)
    stale = QualityResult(PRE_TRAFFIC, state.quality_runs + 1, Verdict.FAIL, {"verdict": "Fail"}, "old")
    other = QualityResult("step 2", state.quality_runs, Verdict.PASS, {"verdict": "Pass"}, "other gate")
    for q in (stale, other):
        d = plan(
            spec=sp,
            state=state,
            observed=Observed("bbbb", True, True),
            analysis=None,
            command=None,
            now=w.now,
            quality=q,
        )
        assert d.state.quality_runs == state.quality_runs and d.state.quality_failures == 0
        assert d.pre_traffic


def test_quality_due_waits_an_interval_after_a_run_of_the_same_gate():
    sp = spec()
    s = RolloutState(
        stable="a", canary="b", candidate_ready_at="2026-12-04T12:00:00Z", quality_gate=PRE_TRAFFIC
    )
    assert quality_due(sp, s, T0) == PRE_TRAFFIC
    ran = {"gate": PRE_TRAFFIC, "time": "2026-12-04T12:00:00Z", "verdict": "Fail"}
    s2 = RolloutState(**{**s.__dict__, "quality_last": ran})
    assert quality_due(sp, s2, T0 + timedelta(seconds=9)) is None
    assert quality_due(sp, s2, T0 + timedelta(seconds=10)) == PRE_TRAFFIC
    assert quality_due(sp, RolloutState(**{**s.__dict__, "candidate_ready_at": None}), T0) is None
    assert quality_due(sp, RolloutState(**{**s.__dict__, "paused_reason": "x"}), T0) is None


def test_promote_full_skips_the_gates_and_says_so():
    w = World(spec(), judge=lambda gate: None)
    w.tick()
    d = w.tick(command=Command("promote-full", "f1"))
    assert not d.pre_traffic and "PromotedByPerson" in w.reasons()
    assert not pre_traffic_pending(w.spec, d.state)


def test_a_blue_green_candidate_is_judged_at_full_size_before_the_switch():
    w = World(spec(strategy="blueGreen", steps=[]), judge=lambda gate: "Fail")
    d = w.tick()
    assert d.pre_traffic and d.candidate_full_size and d.canary_weight == 0
    d = run_until(w, lambda d: d.rollout_phase == "RolledBack")
    assert max(w.weights) == 0


@pytest.mark.parametrize(
    ("stable", "budget", "canary"),
    [(4, None, 1), (10, None, 1), (0, None, 1), (4, 0, 0)],
)
def test_the_pre_traffic_candidate_runs_one_replica_within_the_budget(stable, budget, canary):
    sizes = rollout_sizes(
        strategy="canary",
        weight=0,
        promoting=False,
        mirror=False,
        scaled_down=False,
        stable_replicas=stable,
        canary_ready=0,
        gpus_per_replica=1,
        max_surge_gpus=budget,
        autoscaled=False,
        pre_traffic=True,
    )
    assert (sizes.canary, sizes.route_weight) == (canary, 0)


# ------------------------------------------------------------------------------ suite verdicts


def outcome(passed, failed, errors=0, *, name="extraction", rev="bbbb"):
    cases = (
        Q.CaseOutcome(
            "c0", Q.Tally(passed, failed, errors), failures=(("{broken", ("validJSON: not JSON",)),)
        ),
    )
    return Q.SuiteOutcome(name, rev, cases)


@pytest.mark.parametrize(
    ("passed", "failed", "errors", "verdict"),
    [
        (50, 0, 0, "Pass"),
        (30, 20, 0, "Fail"),
        (35, 15, 0, "Inconclusive"),
        (45, 5, 0, "Inconclusive"),
        (0, 0, 50, "Inconclusive"),
    ],
)
def test_suite_status_gives_the_verdict_and_a_few_failing_cases(passed, failed, errors, verdict):
    got = Q.suite_status(
        outcome(passed, failed, errors), min_pass_rate=0.8, confidence=0.95, max_error_share=0.2
    )
    assert got["verdict"] == verdict
    if failed:
        assert got["failingCases"] == [
            {
                "case": "c0",
                "failed": ["validJSON: not JSON"],
                "answer": "{broken",
                "samples": f"{passed}/{passed + failed + errors}",
            }
        ]


def test_a_suite_that_cannot_run_is_inconclusive_with_the_reason():
    got = Q.suite_status(
        Q.SuiteOutcome("x", "b", problem="ConfigMap ns/x not found"),
        min_pass_rate=0.9,
        confidence=0.95,
        max_error_share=0.2,
    )
    assert got == {
        "name": "x",
        "revision": "b",
        "verdict": "Inconclusive",
        "message": "ConfigMap ns/x not found",
    }


def test_fold_fail_wins_and_names_a_failing_case():
    a = Q.suite_status(outcome(50, 0), min_pass_rate=0.8, confidence=0.95, max_error_share=0.2)
    b = Q.suite_status(outcome(10, 40, name="b"), min_pass_rate=0.8, confidence=0.95, max_error_share=0.2)
    v, summary = Q.fold([a, b])
    assert v == "Fail" and summary.startswith("b: pass rate 20.0%") and "e.g. case c0: validJSON" in summary
    assert Q.fold([])[0] == "Inconclusive"


def test_probe_due_follows_the_interval_in_status():
    sp = spec({"probe": {"interval": "1m"}})
    assert Q.probe_due(sp, "a", None, T0)
    last = {"lastRun": {"revision": "a", "time": "2026-12-04T12:00:00Z"}}
    assert not Q.probe_due(sp, "a", last, T0 + timedelta(seconds=59))
    assert Q.probe_due(sp, "a", last, T0 + timedelta(seconds=60))
    assert Q.probe_due(sp, "b", last, T0)  # a new stable is probed at once
    assert not Q.probe_due(spec(), "a", None, T0)


def test_the_network_policy_admits_the_operator_only_when_quality_needs_it():
    from slogate.core.desired import build_network_policy
    from slogate.core.naming import Owner

    def peers(sp):
        p = build_network_policy(
            name="m",
            namespace="ml",
            spec=sp,
            owner=Owner("m", "u"),
            prometheus_url="http://p.mon:9090",
            operator_namespace="slogate-system",
        )
        return [
            x.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            for x in p["spec"]["ingress"][0]["from"]
        ]

    assert "slogate-system" in peers(spec())
    no_quality = ModelDeploymentSpec.model_validate({"model": {"source": "hf://org/m"}})
    assert "slogate-system" not in peers(no_quality)


def test_slogate_explain_shows_the_failing_cases():
    from slogate.cli.status import explain_lines

    suite = Q.suite_status(outcome(10, 40), min_pass_rate=0.9, confidence=0.95, max_error_share=0.2)
    md = {
        "metadata": {"name": "m"},
        "status": {
            "phase": "RolledBack",
            "qualityGate": {
                "revision": "bbbb",
                "lastRun": {
                    "time": "t",
                    "gate": "preTraffic",
                    "revision": "bbbb",
                    "verdict": "Fail",
                    "suites": [suite],
                },
            },
        },
    }
    text = "\n".join(explain_lines(md, []))
    assert "quality gate preTraffic on bbbb: Fail" in text
    assert "extraction: Fail 20.0%" in text and "✗ c0 10/50: validJSON: not JSON — answer: '{broken'" in text


def test_slogate_validate_checks_the_suites_a_model_deployment_names(tmp_path):
    import yaml as _yaml

    from slogate.cli.validate import validate_paths

    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    md = next(_yaml.safe_load_all((root / "examples" / "quality-gated-canary.yaml").read_text()))
    suite = _yaml.safe_load((root / "examples" / "quality" / "extraction.yaml").read_text())
    broken = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "refusal-suite"},
        "data": {"suite.yaml": "cases: []"},
    }
    path = tmp_path / "all.yaml"
    path.write_text(_yaml.safe_dump_all([md, suite, broken]))
    warnings: list = []
    report, _ = validate_paths([str(path)], warnings)
    assert [(r["path"], r["message"]) for r in report] == [
        (
            "spec.quality.suites[1].configMap",
            "ConfigMap refusal-suite key suite.yaml: cases: List should have at least 1 item after validation, not 0",
        )
    ]
    assert warnings == []
    alone = tmp_path / "md.yaml"
    alone.write_text(_yaml.safe_dump(md))
    report, _ = validate_paths([str(alone)], warnings)
    assert report == [] and [w["path"] for w in warnings] == [
        "spec.quality.suites[0].configMap",
        "spec.quality.suites[1].configMap",
    ]


def test_the_plan_keeps_the_candidate_out_of_the_root_service_until_its_gate_passes():
    """The replicas router: during the pre-traffic gate the candidate runs one replica and the root
    Service selects stable only; the pass that records the gate's Pass widens the selector again
    (a live selector with one key more is not "already applied")."""
    from slogate.core.plan import Measurements, plan
    from tests.unit.test_plan import body, observe, run_until_rest, settle

    spec_doc = {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "replicas": 2,
        "rollout": {"steps": [{"setWeight": 50}, {"pause": {"duration": "1m"}}]},
        "quality": {"suites": SUITES},
    }
    b, children, _ = run_until_rest(body(spec_doc))
    stable = b["status"]["stableRevision"]
    b = {**b, "spec": {**spec_doc, "model": {"source": "hf://meta-llama/Llama-3.2-3B-Instruct"}}}

    def root(p, children):
        svc = [o for o in p.apply if o["kind"] == "Service" and o["metadata"]["name"] == "m"]
        live = [o for o in children.get("Service", []) if o["metadata"]["name"] == "m"]
        return (svc or live)[0]["spec"]["selector"]

    def candidate_replicas(children):
        return [
            d["spec"]["replicas"]
            for d in children["Deployment"]
            if not d["metadata"]["name"].endswith(stable)
        ]

    for _ in range(3):  # the rollout starts, the candidate becomes Ready, the gate is due
        p = plan(observe(b, children))
        children = settle(children, p)
        b = {**b, "status": p.status}
        assert root(p, children) == {"slogate.io/deployment": "m", "slogate.io/revision": stable}
        assert p.status["canaryWeight"] == 0
    assert candidate_replicas(children) == [1]
    gate = b["status"]["qualityGate"]
    assert gate["gate"] == PRE_TRAFFIC and gate["runs"] == 0
    passed = QualityResult(PRE_TRAFFIC, 0, Verdict.PASS, {"time": "t", "verdict": "Pass", "suites": []}, "ok")
    p = plan(observe(b, children, measurements=Measurements(quality=passed)))
    assert p.status["canaryWeight"] == 50 and p.status["qualityGate"]["passed"] == [PRE_TRAFFIC]
    assert root(p, children) == {"slogate.io/deployment": "m"}
    assert any(o["kind"] == "Service" and o["metadata"]["name"] == "m" for o in p.apply)


# ------------------------------------------------------------------------ the evaluator (I/O half)


def test_the_evaluator_starts_a_run_once_and_hands_its_result_out_once():
    import threading

    from slogate.adapters.evaluate import Evaluator

    ev = Evaluator(workers=1)
    release = threading.Event()
    calls = []

    def run():
        calls.append(1)
        release.wait(5)
        return ("Pass", {}, "ok")

    assert ev.collect(("ns", "m", "gate", "b", "preTraffic", 0), run) is None
    assert ev.collect(("ns", "m", "gate", "b", "preTraffic", 0), run) is None  # still running
    release.set()
    for _ in range(100):
        got = ev.collect(("ns", "m", "gate", "b", "preTraffic", 0), run)
        if got is not None:
            break
        __import__("time").sleep(0.01)
    assert got == ("Pass", {}, "ok") and calls == [1]
    # Handed out once: asking again starts a new run (the next run number would be asked instead).
    assert ev.collect(("ns", "m", "gate", "b", "preTraffic", 0), lambda: ("Fail", {}, "")) is None


def test_a_run_that_raises_is_returned_as_the_exception():
    from slogate.adapters.evaluate import Evaluator

    ev = Evaluator(workers=1)

    def boom():
        raise RuntimeError("api down")

    key = ("ns", "m", "probe", "a", None)
    ev.collect(key, boom)
    for _ in range(100):
        got = ev.collect(key, boom)
        if got is not None:
            break
        __import__("time").sleep(0.01)
    assert isinstance(got, RuntimeError)


class FakeKube:
    def __init__(self, configmaps):
        self.configmaps = configmaps

    def get(self, api_version, kind, namespace, name):
        if kind == "ModelDeployment":
            return self.configmaps.get(("md", namespace, name))
        assert (api_version, kind) == ("v1", "ConfigMap")
        return self.configmaps.get((namespace, name))


class FixedEndpoints:
    def __init__(self, urls):
        self.urls = urls
        self.asked = []

    def url(self, namespace, service, selector):
        self.asked.append((namespace, service, dict(selector)))
        return self.urls.get(service)


SUITE_YAML = """
cases:
  - name: affirm
    prompt: say yes
    checks: [{contains: "yes"}]
"""


def test_run_quality_asks_the_candidate_and_stable_through_their_track_services():
    from slogate.adapters.evaluate import run_quality

    sp = spec(
        {"suites": [{**SUITES[0], "configMap": "s", "samples": 20, "minPassRate": 0.8, "maxRegression": 0.1}]}
    )
    kube = FakeKube({("ns", "s"): {"data": {"suite.yaml": SUITE_YAML}}})
    ends = FixedEndpoints({"m-canary": "http://cand", "m-stable": "http://stab"})
    sent = []

    def post(url, body, timeout):
        sent.append((url, body["model"], timeout))
        good = url.startswith("http://stab") or len(sent) % 2 == 0  # the candidate answers yes half the time
        return {"choices": [{"text": "yes" if good else "no"}], "usage": {"completion_tokens": 1}}

    verdict, record, summary = run_quality(
        kube,
        ends,
        spec=sp,
        namespace="ns",
        name="m",
        revision="b",
        track="canary",
        stable_revision="a",
        gate=PRE_TRAFFIC,
        post=post,
        clock=lambda: T0,
    )
    assert ends.asked == [
        ("ns", "m-canary", {"slogate.io/deployment": "m", "slogate.io/revision": "b"}),
        ("ns", "m-stable", {"slogate.io/deployment": "m", "slogate.io/revision": "a"}),
    ]
    assert {u for u, _, _ in sent} == {"http://cand/v1/completions", "http://stab/v1/completions"}
    assert {m for _, m, _ in sent} == {"m"} and {t for _, _, t in sent} == {60.0}
    assert (
        verdict == "Fail"
        and record["gate"] == PRE_TRAFFIC
        and record["suites"][0]["stablePassRate"] == "100.0%"
    )
    assert "pass rate 50.0%" in summary


@pytest.mark.parametrize(
    ("configmaps", "urls", "why"),
    [
        ({}, {"m-canary": "http://c"}, "ConfigMap ns/s not found"),
        ({("ns", "s"): {"data": {}}}, {"m-canary": "http://c"}, "ConfigMap s has no key suite.yaml"),
        ({("ns", "s"): {"data": {"suite.yaml": "cases: []"}}}, {"m-canary": "http://c"}, "not a valid suite"),
        ({("ns", "s"): {"data": {"suite.yaml": SUITE_YAML}}}, {}, "no pod of revision b answers"),
    ],
)
def test_a_run_that_cannot_ask_is_inconclusive_with_the_reason(configmaps, urls, why):
    from slogate.adapters.evaluate import run_quality

    sp = spec({"suites": [{**SUITES[0], "configMap": "s"}]})
    verdict, _, summary = run_quality(
        FakeKube(configmaps),
        FixedEndpoints(urls),
        spec=sp,
        namespace="ns",
        name="m",
        revision="b",
        track="canary",
        stable_revision=None,
        gate=PRE_TRAFFIC,
        post=lambda *a: {},
        clock=lambda: T0,
    )
    assert verdict == "Inconclusive" and why in summary, summary


def test_bridge_endpoints_pick_a_pod_of_the_revision(tmp_path):
    import json as _json

    from slogate.adapters.endpoints import BridgeEndpoints, ServiceDNS, resolver_of

    (tmp_path / "sims.json").write_text(
        _json.dumps(
            {
                "ns/m-b-2": {
                    "namespace": "ns",
                    "pod": "m-b-2",
                    "port": 2,
                    "labels": {"slogate.io/deployment": "m", "slogate.io/revision": "b"},
                },
                "ns/m-a-1": {
                    "namespace": "ns",
                    "pod": "m-a-1",
                    "port": 1,
                    "labels": {"slogate.io/deployment": "m", "slogate.io/revision": "a"},
                },
                "other/m-b-3": {
                    "namespace": "other",
                    "pod": "m-b-3",
                    "port": 3,
                    "labels": {"slogate.io/deployment": "m", "slogate.io/revision": "b"},
                },
            }
        )
    )
    ends = resolver_of(f"bridge:{tmp_path}")
    assert isinstance(ends, BridgeEndpoints)
    assert (
        ends.url("ns", "m-canary", {"slogate.io/deployment": "m", "slogate.io/revision": "b"})
        == "http://127.0.0.1:2"
    )
    assert ends.url("ns", "m-canary", {"slogate.io/deployment": "m", "slogate.io/revision": "z"}) is None
    assert ServiceDNS().url("ns", "m-canary", {}) == "http://m-canary.ns.svc:80"
    with pytest.raises(ValueError, match="dns or bridge:DIR"):
        resolver_of("kube")


JUDGED = """
cases:
  - name: c
    prompt: p
    checks: [{judge: {rubric: 'says "yes"', minScore: 5}}]
"""


def test_run_quality_asks_the_judge_model_deployment_under_its_served_name():
    from slogate.adapters.evaluate import run_quality

    sp = spec(
        {
            "suites": [{**SUITES[0], "configMap": "s", "samples": 20, "minPassRate": 0.8}],
            "judge": {"modelDeployment": "grader", "samples": 3},
        }
    )
    objects = {
        ("ns", "s"): {"data": {"suite.yaml": JUDGED}},
        ("md", "ns", "grader"): {"spec": {"model": {"servedName": "big-grader"}}},
    }
    ends = FixedEndpoints({"m-canary": "http://cand", "grader": "http://judge"})
    judged = []

    def post(url, body, timeout):
        if url.startswith("http://judge"):
            judged.append(body["model"])
            return {"choices": [{"message": {"content": "9"}}]}
        return {"choices": [{"text": "yes"}]}

    verdict, _, _ = run_quality(
        FakeKube(objects),
        ends,
        spec=sp,
        namespace="ns",
        name="m",
        revision="b",
        track="canary",
        stable_revision=None,
        gate=PRE_TRAFFIC,
        post=post,
        clock=lambda: T0,
    )
    assert verdict == "Pass" and len(judged) == 60 and set(judged) == {"big-grader"}
    assert ("ns", "grader", {"slogate.io/deployment": "grader"}) in ends.asked
    del objects[("md", "ns", "grader")]
    verdict, _, summary = run_quality(
        FakeKube(objects),
        ends,
        spec=sp,
        namespace="ns",
        name="m",
        revision="b",
        track="canary",
        stable_revision=None,
        gate=PRE_TRAFFIC,
        post=post,
        clock=lambda: T0,
    )
    assert verdict == "Inconclusive" and "the judge ModelDeployment grader is not found" in summary


def test_a_gate_run_does_not_cancel_the_probe_run_of_the_same_model_deployment():
    """A rollout and the production probe run at once: collecting the gate's run leaves the probe's
    unfinished run alone, and a later run of the same kind supersedes an unfinished one."""
    import threading
    import time

    from slogate.adapters.evaluate import Evaluator

    ev = Evaluator(workers=2)
    release = threading.Event()
    probe_key = ("ns", "m", "probe", "a", None)
    gate_key = ("ns", "m", "gate", "b", "preTraffic", 0)
    assert ev.collect(probe_key, lambda: release.wait(5) and ("Pass", {}, "probe")) is None
    assert ev.collect(gate_key, lambda: ("Pass", {}, "gate")) is None
    release.set()
    got = None
    for _ in range(200):
        got = ev.collect(probe_key, lambda: ("Fail", {}, "restarted"))
        if got is not None:
            break
        time.sleep(0.01)
    assert got == ("Pass", {}, "probe")  # the same run, finished, not cancelled and restarted
    # A newer gate run (the next run number) drops the unfinished older one.
    slow = threading.Event()
    ev.collect(("ns", "m", "gate", "b", "step 1", 1), lambda: slow.wait(5) and ("Pass", {}, ""))
    ev.collect(("ns", "m", "gate", "b", "step 1", 2), lambda: ("Pass", {}, "newer"))
    assert [k[-1] for k in ev._runs if k[2] == "gate"] == [2]
    slow.set()
    ev.forget("ns", "m")
    assert not ev._runs
