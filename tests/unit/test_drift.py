"""Input drift (core.drift): the PromQL, distributions from odd bucket answers, the distance, the
baseline rules, the verdict with its hysteresis and the condition transitions; plus the adapter's
vector parsing, the drift metrics, the API field and the simulator's request-mix knob."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from slogate.adapters.prometheus import parse_samples
from slogate.api.v1alpha1 import EngineKind, ModelDeploymentSpec
from slogate.core.drift import (
    DEFAULT_MIN_REQUESTS,
    DEFAULT_THRESHOLD,
    DIMENSIONS,
    RECOVERY_FACTOR,
    Distribution,
    DriftDecision,
    DriftReason,
    DriftSettings,
    Measurement,
    apply_condition,
    baseline_distributions,
    baseline_status,
    bucket_query,
    check_due,
    compact,
    decide,
    distribution_from_buckets,
    expand,
    ks_distance,
    measure,
    previous_condition,
    samples_to_buckets,
    serving_since,
    settings_of,
)
from slogate.errors import PrometheusUnavailable
from slogate.sim.metrics import build_1_2_5_buckets
from slogate.telemetry import REGISTRY, forget_input_drift, record_input_drift

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SEL = '{namespace="ml",slogate_io_deployment="llama"}'
VLLM_TOKEN_BUCKETS = build_1_2_5_buckets(4096)


def spec(**extra: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, **extra}
    )


def dist(*points: tuple[float, float], requests: float = 1000) -> Distribution:
    return Distribution(tuple(points), requests)


def hist(values: list[int], bounds: list[float] = VLLM_TOKEN_BUCKETS) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` buckets of ``values`` as Prometheus would answer them."""
    out = [(repr(b), float(sum(1 for v in values if v <= b))) for b in bounds]
    return [*out, ("+Inf", float(len(values)))]


def lengths(center: int, n: int) -> list[int]:
    """``n`` lengths spread evenly over center/2 .. center*2 (deterministic)."""
    return [round(center / 2 * 4 ** (i / max(n - 1, 1))) for i in range(n)]


def measured(prompt_center: int = 500, gen_center: int = 120, n: int = 400) -> Measurement:
    return Measurement(
        prompt=distribution_from_buckets(hist(lengths(prompt_center, n))),
        generation=distribution_from_buckets(hist(lengths(gen_center, n))),
    )


SETTINGS = DriftSettings(window="1h", threshold=0.2, min_requests=200)
SERVING = T0 - timedelta(hours=3)
"""Available since well before the window (1h) began: the window is whole."""


def recorded(m: Measurement | None = None, revision: str = "rev1") -> dict[str, Any]:
    return baseline_status(revision=revision, now=T0, window="1h", measurement=m or measured())


def cond(status: str, reason: str, generation: int = 1, message: str = "m") -> dict[str, Any]:
    return {
        "type": "InputDrift",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-03-01T00:00:00Z",
    }


def run(
    *,
    baseline: dict[str, Any] | None,
    measurement: Measurement | None,
    previous: dict[str, Any] | None = None,
    settings: DriftSettings = SETTINGS,
    stable: str = "rev1",
    generation: int = 1,
    serving_since: datetime | None = SERVING,
) -> DriftDecision:
    return decide(
        settings=settings,
        stable=stable,
        baseline=baseline,
        measurement=measurement,
        previous=previous,
        generation=generation,
        now=T0,
        serving_since=serving_since,
    )


# --------------------------------------------------------------------------------------------- PromQL


@pytest.mark.parametrize(
    ("engine", "dimension", "series"),
    [
        pytest.param("vllm", "prompt", "vllm:request_prompt_tokens_bucket", id="vllm-prompt"),
        pytest.param("vllm", "generation", "vllm:request_generation_tokens_bucket", id="vllm-generation"),
        pytest.param("tgi", "prompt", "tgi_request_input_length_bucket", id="tgi-prompt"),
        pytest.param("tgi", "generation", "tgi_request_generated_tokens_bucket", id="tgi-generation"),
    ],
)
def test_bucket_query_per_engine_and_dimension(engine, dimension, series):
    q = bucket_query(
        engine=EngineKind(engine), dimension=dimension, namespace="ml", name="llama", window="1h"
    )
    assert q == f"sum by (le) (increase({series}{SEL}[1h]))"


def test_bucket_query_spans_every_revision_and_escapes_labels():
    q = bucket_query(engine=EngineKind.VLLM, dimension="prompt", namespace='a"b', name="x", window="5m")
    assert "slogate_io_revision" not in q
    assert 'namespace="a\\"b"' in q


def test_bucket_query_rejects_an_unknown_dimension():
    with pytest.raises(ValueError, match="dimension"):
        bucket_query(engine=EngineKind.VLLM, dimension="content", namespace="ml", name="x", window="1h")


# ------------------------------------------------------------------------------------------- settings


def test_settings_defaults():
    s = settings_of(spec())
    assert s == DriftSettings(
        enabled=True, window="1h", threshold=0.2, min_requests=200, interval=timedelta(minutes=1)
    )
    assert s.recovery == pytest.approx(0.15)
    assert (DEFAULT_THRESHOLD, DEFAULT_MIN_REQUESTS, RECOVERY_FACTOR) == (0.2, 200, 0.75)


def test_settings_from_the_spec_and_the_analysis_interval():
    s = settings_of(
        spec(
            observability={"inputDrift": {"window": "1.5m", "threshold": 0.3, "minRequests": 20}},
            rollout={"analysis": {"interval": "3s"}},
        )
    )
    assert (s.window, s.threshold, s.min_requests, s.interval) == ("1m30s", 0.3, 20, timedelta(seconds=3))
    assert settings_of(spec(observability={"inputDrift": {"enabled": False}})).enabled is False


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"threshold": 0}, id="threshold-zero"),
        pytest.param({"threshold": 1.5}, id="threshold-above-one"),
        pytest.param({"minRequests": 0}, id="no-min-requests"),
        pytest.param({"window": "an hour"}, id="window-not-a-duration"),
        pytest.param({"typo": 1}, id="unknown-field"),
    ],
)
def test_the_spec_field_is_validated(bad):
    with pytest.raises(ValidationError):
        spec(observability={"inputDrift": bad})


@pytest.mark.parametrize(
    ("last", "key", "after", "due"),
    [
        pytest.param(None, ("a", 1), 0, True, id="never-checked"),
        pytest.param((("a", 1), T0), ("a", 1), 59, False, id="within-interval"),
        pytest.param((("a", 1), T0), ("a", 1), 60, True, id="interval-passed"),
        pytest.param((("a", 1), T0), ("b", 1), 1, True, id="promotion"),
        pytest.param((("a", 1), T0), ("a", 2), 1, True, id="spec-changed"),
    ],
)
def test_check_due(last, key, after, due):
    assert check_due(last, key, T0 + timedelta(seconds=after), timedelta(minutes=1)) is due


# -------------------------------------------------------------------------------------- distributions


def test_distribution_from_ordinary_buckets():
    d = distribution_from_buckets([("10", 1), ("100", 3), ("1000", 4), ("+Inf", 4)])
    assert d == Distribution(((10.0, 0.25), (100.0, 0.75), (1000.0, 1.0)), 4.0)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        pytest.param([], None, id="no-buckets"),
        pytest.param([("10", 0), ("+Inf", 0)], None, id="zero-requests"),
        pytest.param([("x", 3), ("", 2)], None, id="only-unparseable"),
        pytest.param([("10", 2), ("100", 4)], ((10.0, 0.5), (100.0, 1.0)), id="no-inf-largest-is-total"),
        pytest.param([("10", 0), ("100", 0), ("+Inf", 5)], ((10.0, 0.0), (100.0, 0.0)), id="all-above"),
        pytest.param([("1", 1), ("1.0", 1), ("+Inf", 4)], ((1.0, 0.5),), id="same-bound-two-spellings"),
        pytest.param([("10", 3), ("100", 2.5), ("+Inf", 4)], ((10.0, 0.75), (100.0, 0.75)), id="dip-raised"),
        pytest.param([("10", -1), ("+Inf", 2)], ((10.0, 0.0),), id="negative-is-zero"),
        pytest.param([("10", math.nan), ("+Inf", 2)], (), id="nan-count-skipped"),
        pytest.param([("NaN", 1), ("10", 1), ("+Inf", 2)], ((10.0, 0.5),), id="nan-bound-skipped"),
        pytest.param([("+Inf", 3), ("5", 3), ("2", 0)], ((2.0, 0.0), (5.0, 1.0)), id="unordered"),
        pytest.param([("1e3", 1), ("+Inf", 2)], ((1000.0, 0.5),), id="exponent-notation"),
    ],
)
def test_distribution_from_odd_buckets(buckets, expected):
    d = distribution_from_buckets(buckets)
    assert (d.points if d else None) == expected


def test_samples_without_le_are_ignored():
    samples = [({"le": "10"}, 1.0), ({}, 99.0), ({"le": "+Inf", "job": "x"}, 2.0)]
    assert samples_to_buckets(samples) == [("10", 1.0), ("+Inf", 2.0)]


def test_distribution_answers_only_what_its_buckets_can_tell():
    d = dist((10.0, 0.0), (20.0, 0.5), (50.0, 1.0))
    assert [d.at(x) for x in (1.0, 10.0, 15.0, 20.0, 30.0, 50.0, 1e9)] == [
        0.0,
        0.0,
        None,
        0.5,
        None,
        1.0,
        1.0,
    ]
    partial = dist((10.0, 0.2), (20.0, 0.5))
    assert partial.at(5.0) is None and partial.at(30.0) is None


def test_compact_trims_to_one_zero_and_one_one_and_rounds():
    d = dist((1.0, 0.0), (2.0, 0.0), (5.0, 0.123456), (10.0, 0.99999), (20.0, 1.0), (50.0, 1.0))
    assert compact(d) == [["2", "0"], ["5", "0.1235"], ["10", "1"]]
    assert compact(dist((1.0, 0.3), (2.0, 0.6))) == [["1", "0.3"], ["2", "0.6"]]
    assert compact(dist((1.0, 0.0), (2.0, 0.0))) == [["2", "0"]]
    assert compact(dist((1.0, 1.0), (2.0, 1.0))) == [["1", "1"]]
    assert compact(dist((40.95, 0.5))) == [["40.95", "0.5"]]


def test_compact_keeps_every_bucket_answer_exact():
    full = distribution_from_buckets(hist(lengths(500, 400)))
    assert full is not None
    back = expand(compact(full), full.requests)
    assert back is not None
    for bound, fraction in full.points:
        assert back.at(bound) == pytest.approx(fraction, abs=1e-4)
    assert ks_distance(full, back) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize(
    "points", [[["a", "0.5"]], [["1"]], [["1", "0.5", "x"]], None], ids=["text", "short", "long", "none"]
)
def test_expand_refuses_what_it_cannot_read(points):
    assert expand(points, 10) is None


# -------------------------------------------------------------------------------------------- distance


def test_distance_of_identical_and_disjoint_distributions():
    a = distribution_from_buckets(hist(lengths(500, 300)))
    b = distribution_from_buckets(hist(lengths(500, 900)))
    far = distribution_from_buckets(hist([3000] * 300))
    assert a and b and far
    assert ks_distance(a, a) == 0.0
    assert ks_distance(a, b) == pytest.approx(0.0, abs=0.02)
    assert ks_distance(a, far) == pytest.approx(1.0)


def test_distance_is_the_largest_cdf_gap_and_symmetric():
    a = dist((100.0, 0.2), (1000.0, 0.9))
    b = dist((100.0, 0.1), (1000.0, 0.4))
    assert ks_distance(a, b) == pytest.approx(0.5)
    assert ks_distance(b, a) == pytest.approx(0.5)


def test_distance_uses_shared_boundaries_only():
    vllm_like = dist((100.0, 0.2), (200.0, 0.5), (500.0, 0.8))
    coarser = dist((100.0, 0.1), (500.0, 0.9))
    assert ks_distance(vllm_like, coarser) == pytest.approx(0.1)  # 200 is not shared
    assert ks_distance(dist((10.0, 0.3)), dist((20.0, 0.4))) is None
    # A trimmed baseline still answers 0 below its first point and 1 above its last.
    assert ks_distance(dist((50.0, 0.0), (100.0, 1.0)), dist((10.0, 0.2), (1000.0, 1.0))) == pytest.approx(
        0.2
    )


def test_a_shift_of_the_prompt_mix_is_far_beyond_the_threshold():
    base = distribution_from_buckets(hist(lengths(512, 400)))
    shifted = distribution_from_buckets(hist(lengths(2048, 400)))
    slightly = distribution_from_buckets(hist(lengths(560, 400)))
    assert base and shifted and slightly
    assert ks_distance(base, shifted) > 0.6
    assert ks_distance(base, slightly) < DEFAULT_THRESHOLD


# --------------------------------------------------------------------------------------------- measure


class FakeSource:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query_vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        self.asked.append(promql)
        answer = self.answers.get(promql, [])
        if isinstance(answer, Exception):
            raise answer
        return answer


def _q(dimension: str, engine: str = "vllm") -> str:
    return bucket_query(
        engine=EngineKind(engine), dimension=dimension, namespace="ml", name="llama", window="1h"
    )


def test_measure_asks_two_queries():
    prompt = [({"le": le}, v) for le, v in hist(lengths(500, 300))]
    source = FakeSource({_q("prompt"): prompt})
    m = measure(source, engine=EngineKind.VLLM, namespace="ml", name="llama", window="1h")
    assert source.asked == [_q("prompt"), _q("generation")]
    assert m.prompt is not None and m.prompt.requests == 300
    assert m.generation is None and m.requests == 0


def test_measure_stops_at_the_first_unavailable_answer():
    source = FakeSource({_q("prompt", "tgi"): PrometheusUnavailable("down")})
    with pytest.raises(PrometheusUnavailable):
        measure(source, engine=EngineKind.TGI, namespace="ml", name="llama", window="1h")
    assert source.asked == [_q("prompt", "tgi")]


def test_measurement_requests_is_the_smaller_count():
    m = Measurement(prompt=dist((1.0, 1.0), requests=300), generation=dist((1.0, 1.0), requests=250.4))
    assert m.requests == 250
    assert Measurement(prompt=None, generation=dist((1.0, 1.0))).requests == 0


def test_parse_samples_reads_every_series():
    payload = [
        {"metric": {"le": "10"}, "value": [1.0, "3"]},
        {"metric": {"le": "+Inf"}, "value": [1.0, "NaN"]},
    ]
    samples = parse_samples(payload)
    assert samples[0] == ({"le": "10"}, 3.0) and math.isnan(samples[1][1])
    assert parse_samples([]) == []
    for bad in ({"x": 1}, [[1, "2"]], [{"metric": {}, "values": [[1, "2"]]}], [{"metric": {}}]):
        with pytest.raises(ValueError):
            parse_samples(bad)


# ---------------------------------------------------------------------------------------------- decide


def test_disabled_removes_condition_and_baseline():
    d = run(baseline=recorded(), measurement=None, previous=cond("True", "DriftDetected"),
            settings=DriftSettings(enabled=False))  # fmt: skip
    assert d.remove and d.baseline is None and d.events == ()
    conditions = apply_condition([cond("True", "DriftDetected"), {"type": "Ready"}], d, generation=1, now=T0)
    assert conditions == [{"type": "Ready"}]


def test_prometheus_down_keeps_the_last_condition_and_baseline():
    base = recorded()
    d = run(baseline=base, measurement=None, previous=cond("True", DriftReason.DRIFT_DETECTED))
    assert d.condition is None and d.baseline == base and d.drifting and d.events == ()
    assert d.distances == {}


def test_prometheus_down_before_any_condition_says_unknown_once():
    d = run(baseline=None, measurement=None)
    assert d.condition is not None and d.condition[:2] == ("Unknown", DriftReason.PROMETHEUS_UNAVAILABLE)
    assert d.baseline is None


def test_no_traffic_yet_leaves_the_baseline_pending():
    d = run(baseline=None, measurement=measured(n=50))
    assert d.condition is not None
    assert d.condition[:2] == ("Unknown", DriftReason.BASELINE_PENDING)
    assert "200 requests within a whole 1h window of serving" in d.condition[2] and "rev1" in d.condition[2]
    assert d.baseline is None and d.events == ()


def test_the_first_check_with_enough_traffic_records_the_baseline():
    d = run(baseline=None, measurement=measured(), previous=cond("Unknown", DriftReason.BASELINE_PENDING))
    assert d.baseline is not None
    assert {k: d.baseline[k] for k in ("revision", "recordedAt", "window", "requests")} == {
        "revision": "rev1",
        "recordedAt": "2026-03-01T12:00:00Z",
        "window": "1h",
        "requests": 400,
    }
    assert all(len(p) == 2 and all(isinstance(x, str) for x in p) for p in d.baseline["prompt"])
    assert len(d.baseline["prompt"]) <= 8  # trimmed: small in status
    assert d.condition is not None and d.condition[:2] == ("False", DriftReason.WITHIN_BASELINE)
    assert d.events == (
        ("Normal", "InputBaselineRecorded", "request-mix baseline of revision rev1 recorded from 400 requests over 1h"),
    )  # fmt: skip
    assert d.distances == {"prompt": 0.0, "generation": 0.0}


@pytest.mark.parametrize(
    ("since", "records"),
    [
        pytest.param(None, False, id="not-available"),
        pytest.param(T0 - timedelta(minutes=20), False, id="serving-for-part-of-the-window"),
        pytest.param(T0 - timedelta(hours=1, seconds=-1), False, id="one-second-short"),
        pytest.param(T0 - timedelta(hours=1), True, id="exactly-one-window"),
        pytest.param(T0 - timedelta(days=3), True, id="long-serving"),
    ],
)
def test_a_baseline_needs_a_whole_window_of_serving(since, records):
    """Prometheus extrapolates a window the pods did not serve throughout and drops each new series'
    first scrape: enough requests on paper, a skewed mix in fact. No baseline from such a window."""
    d = run(baseline=None, measurement=measured(n=5000), serving_since=since)
    assert (d.baseline is not None) is records
    assert d.condition is not None
    assert d.condition[:2] == (
        ("False", DriftReason.WITHIN_BASELINE) if records else ("Unknown", DriftReason.BASELINE_PENDING)
    )
    assert [e[1] for e in d.events] == (["InputBaselineRecorded"] if records else [])


def test_a_partial_window_does_not_hold_back_a_verdict_once_a_baseline_exists():
    """Serving time gates only recording: a recorded baseline is compared at every check."""
    d = run(baseline=recorded(), measurement=measured(prompt_center=2000), serving_since=T0 - timedelta(minutes=1),
            previous=cond("False", DriftReason.WITHIN_BASELINE))  # fmt: skip
    assert d.condition is not None and d.condition[:2] == ("True", DriftReason.DRIFT_DETECTED)


def test_a_promotion_while_not_serving_long_enough_keeps_the_old_baseline_but_judges_nothing():
    old = recorded(revision="rev1")
    d = run(baseline=old, measurement=measured(), stable="rev2", serving_since=T0 - timedelta(minutes=5),
            previous=cond("False", DriftReason.WITHIN_BASELINE))  # fmt: skip
    assert d.baseline == old and not d.drifting
    assert d.condition is not None and d.condition[:2] == ("Unknown", DriftReason.BASELINE_PENDING)
    assert [e[1] for e in d.events] == []


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([{"type": "Available", "status": "True", "lastTransitionTime": "2026-03-01T11:00:00Z"}],
         datetime(2026, 3, 1, 11, 0, tzinfo=UTC)),
        ([{"type": "Available", "status": "False", "lastTransitionTime": "2026-03-01T11:00:00Z"}], None),
        ([{"type": "Available", "status": "True", "lastTransitionTime": "yesterday"}], None),
        ([{"type": "Available", "status": "True", "lastTransitionTime": "2026-03-01T11:00:00"}], None),
        ([{"type": "Available", "status": "True"}], None),
        ([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-03-01T11:00:00Z"}], None),
        ([], None),
    ],
)  # fmt: skip
def test_serving_since_is_the_available_transition_while_true(conditions, expected):
    assert serving_since(conditions) == expected


def test_a_promotion_replaces_the_baseline():
    old = recorded(revision="rev1")
    d = run(baseline=old, measurement=measured(prompt_center=2000), stable="rev2",
            previous=cond("False", DriftReason.WITHIN_BASELINE))  # fmt: skip
    assert d.baseline is not None and d.baseline["revision"] == "rev2"
    assert d.condition is not None and "rev2" in d.condition[2]  # refreshed though status and reason stay
    assert [e[1] for e in d.events] == ["InputBaselineRecorded"]


def test_a_promotion_without_traffic_keeps_the_old_baseline_but_judges_nothing():
    old = recorded(revision="rev1")
    d = run(baseline=old, measurement=measured(n=10), stable="rev2", previous=cond("False", "WithinBaseline"))
    assert d.baseline == old
    assert d.condition is not None and d.condition[:2] == ("Unknown", DriftReason.BASELINE_PENDING)


def test_a_promotion_while_drifting_records_the_new_mix_and_clears_drift():
    d = run(baseline=recorded(), measurement=measured(prompt_center=2000), stable="rev2",
            previous=cond("True", DriftReason.DRIFT_DETECTED))  # fmt: skip
    assert d.condition is not None and d.condition[0] == "False" and not d.drifting
    assert [e[:2] for e in d.events] == [("Normal", "InputBaselineRecorded"), ("Normal", "InputDriftCleared")]


def test_too_little_traffic_now_is_unknown():
    d = run(baseline=recorded(), measurement=measured(n=100), previous=cond("False", "WithinBaseline"))
    assert d.condition is not None and d.condition[:2] == ("Unknown", DriftReason.NOT_ENOUGH_TRAFFIC)
    assert d.distances == {} and d.events == ()


def test_too_little_traffic_while_drifting_leaves_drift_with_a_normal_event():
    d = run(baseline=recorded(), measurement=measured(n=100), previous=cond("True", "DriftDetected"))
    assert d.condition is not None and d.condition[0] == "Unknown"
    assert [e[:2] for e in d.events] == [("Normal", "InputDriftCleared")]


def test_the_same_mix_is_within_the_baseline():
    d = run(baseline=recorded(), measurement=measured(n=600), previous=cond("Unknown", "NotEnoughTraffic"))
    assert d.condition is not None and d.condition[:2] == ("False", DriftReason.WITHIN_BASELINE)
    assert set(d.distances) == set(DIMENSIONS) and max(d.distances.values()) < 0.05
    assert d.events == ()


def test_a_shifted_prompt_mix_drifts_with_a_warning_naming_the_dimension():
    d = run(
        baseline=recorded(),
        measurement=measured(prompt_center=2048),
        previous=cond("False", "WithinBaseline"),
    )
    assert d.drifting and d.condition is not None
    status, reason, message = d.condition
    assert (status, reason) == ("True", DriftReason.DRIFT_DETECTED)
    assert "prompt length distance" in message and "threshold 0.2" in message and "generation" not in message
    assert d.events == (("Warning", "InputDrift", message),)
    assert d.distances["prompt"] > 0.6 and d.distances["generation"] < 0.05


def test_a_steady_state_changes_nothing():
    base = recorded()
    for previous, m in (
        (cond("True", "DriftDetected"), measured(prompt_center=2048)),
        (cond("False", "WithinBaseline"), measured()),
        (cond("Unknown", "NotEnoughTraffic"), measured(n=20)),
        (cond("Unknown", "BaselinePending"), measured(n=20)),
    ):
        d = run(
            baseline=None if previous["reason"] == "BaselinePending" else base,
            measurement=m,
            previous=previous,
        )
        assert d.condition is None, previous
        assert d.events == ()
        assert apply_condition([previous], d, generation=1, now=T0) == [previous]


def test_a_spec_change_refreshes_the_condition():
    d = run(baseline=recorded(), measurement=measured(), previous=cond("False", "WithinBaseline", generation=1),
            generation=2)  # fmt: skip
    assert d.condition is not None
    new = apply_condition([cond("False", "WithinBaseline")], d, generation=2, now=T0)
    assert new[0]["observedGeneration"] == 2 and new[0]["lastTransitionTime"] == "2026-03-01T00:00:00Z"


def _with_distance(base: dict[str, Any], prompt_distance: float) -> Measurement:
    """A measurement whose prompt distance to ``base`` is exactly ``prompt_distance``."""
    b = baseline_distributions(base)
    assert b["prompt"] is not None and b["generation"] is not None
    moved = tuple((x, max(f - prompt_distance, 0.0) if f < 1.0 else f) for x, f in b["prompt"].points)
    # Make sure the largest gap is exactly the asked distance at some bound.
    return Measurement(
        prompt=Distribution(moved, 1000), generation=Distribution(b["generation"].points, 1000)
    )


@pytest.mark.parametrize(
    ("was", "distance", "now_drifting"),
    [
        pytest.param("False", 0.19, False, id="below-threshold"),
        pytest.param("False", 0.21, True, id="above-threshold"),
        pytest.param("True", 0.19, True, id="drifting-stays-above-recovery"),
        pytest.param("True", 0.16, True, id="drifting-just-above-recovery"),
        pytest.param("True", 0.14, False, id="back-below-recovery"),
    ],
)
def test_hysteresis(was, distance, now_drifting):
    base = {
        **recorded(),
        "prompt": [["100", "0"], ["200", "0.3"], ["500", "0.6"], ["1000", "1"]],
    }
    m = _with_distance(base, distance)
    d = run(
        baseline=base,
        measurement=m,
        previous=cond(was, "DriftDetected" if was == "True" else "WithinBaseline"),
    )
    assert d.distances["prompt"] == pytest.approx(distance)
    assert d.drifting is now_drifting
    if was == "True" and not now_drifting:
        assert [e[:2] for e in d.events] == [("Normal", "InputDriftCleared")]
        assert "≤ 0.15" in d.events[0][2]


def test_no_shared_bucket_is_unknown():
    base = {**recorded(), "prompt": [["3", "0.5"]], "generation": [["7", "0.5"]]}
    m = Measurement(prompt=dist((4.0, 0.5)), generation=dist((8.0, 0.5)))
    d = run(baseline=base, measurement=m, previous=cond("False", "WithinBaseline"))
    assert d.condition is not None and d.condition[:2] == ("Unknown", DriftReason.NO_SHARED_BUCKETS)


def test_a_corrupt_baseline_dimension_is_skipped_not_fatal():
    base = {**recorded(), "generation": [["x", "y"]]}
    d = run(baseline=base, measurement=measured(), previous=cond("False", "WithinBaseline"))
    assert set(d.distances) == {"prompt"}


def test_transitions_over_a_day_write_the_condition_only_when_it_flips():
    """Drive the verdict check by check, as the reconcile does, and count condition writes."""
    conditions: list[dict[str, Any]] = []
    baseline: dict[str, Any] | None = None
    script = [
        measured(n=20),  # no traffic yet → Unknown BaselinePending
        measured(n=20),
        measured(),  # baseline recorded → False
        measured(n=500),
        measured(prompt_center=2048),  # → True
        measured(prompt_center=2048),
        measured(prompt_center=2100),
        measured(),  # → False
        measured(),
    ]
    writes, events = 0, []
    for i, m in enumerate(script):
        now = T0 + timedelta(minutes=i)
        d = decide(settings=SETTINGS, stable="rev1", baseline=baseline, measurement=m,
                   previous=previous_condition(conditions), generation=3, now=now,
                   serving_since=SERVING)  # fmt: skip
        new = apply_condition(conditions, d, generation=3, now=now)
        writes += new != conditions or d.baseline != baseline
        conditions, baseline = new, d.baseline
        events += [e[1] for e in d.events]
        if i == 4:
            assert (
                conditions[0]["status"] == "True"
                and conditions[0]["lastTransitionTime"] == "2026-03-01T12:04:00Z"
            )
    assert writes == 4
    assert events == ["InputBaselineRecorded", "InputDrift", "InputDriftCleared"]
    assert conditions[0]["status"] == "False" and conditions[0]["observedGeneration"] == 3


# ------------------------------------------------------------------------------------------- telemetry


def test_drift_metrics_and_their_cleanup():
    md = {"namespace": "t-drift", "modeldeployment": "llama"}

    def v(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {**md, **labels})

    record_input_drift(
        "t-drift", "llama", distances={"prompt": 0.43, "generation": 0.02}, drifting=True, threshold=0.3
    )
    assert v("slogate_input_drift_threshold") == 0.3
    assert v("slogate_input_drift_distance", dimension="prompt") == 0.43
    assert v("slogate_input_drift_distance", dimension="generation") == 0.02
    assert v("slogate_input_drift") == 1
    record_input_drift("t-drift", "llama", distances={}, drifting=False, threshold=0.3)
    assert v("slogate_input_drift_distance", dimension="prompt") is None
    assert v("slogate_input_drift") == 0
    forget_input_drift("t-drift", "llama")
    forget_input_drift("t-drift", "llama")  # twice is fine
    assert v("slogate_input_drift") is None
    assert v("slogate_input_drift_threshold") is None


# ----------------------------------------------------------------------------------------- simulator


def test_sim_set_shifts_the_request_mix(tmp_path: Path, capsys):
    import argparse

    from slogate.dev import cli as dev_cli

    parser = argparse.ArgumentParser()
    dev_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["dev", "--dir", str(tmp_path), "sim", "set", "-n", "ml", "-l", "slogate.io/deployment=llama",
         "--prompt-tokens", "2048", "--generation-tokens", "64"]
    )  # fmt: skip
    assert args.func(args) == 0
    rules = (tmp_path / "sim-rules.json").read_text()
    assert '"prompt_tokens": 2048' in rules and '"generation_tokens": 64' in rules


def test_the_simulator_records_a_shifted_prompt_mix():
    import random

    from slogate.sim.config import SimConfig, apply_update
    from slogate.sim.metrics import build_metrics
    from slogate.sim.sampling import sample_request

    def prompt_buckets(cfg: SimConfig) -> Distribution:
        metrics = build_metrics("vllm", "m")
        rng = random.Random(7)
        for _ in range(400):
            metrics.record(sample_request(cfg, rng))
        text = metrics.render().decode()
        buckets = []
        for line in text.splitlines():
            if line.startswith("vllm:request_prompt_tokens_bucket"):
                le = line.split('le="')[1].split('"')[0]
                buckets.append((le, float(line.rsplit(" ", 1)[1])))
        d = distribution_from_buckets(buckets)
        assert d is not None
        return d

    base = SimConfig()
    shifted = apply_update(base, {"prompt_tokens": 2048})
    assert ks_distance(prompt_buckets(base), prompt_buckets(shifted)) > 0.6


def test_explain_names_input_drift_while_it_holds():
    from slogate.cli.status import explain_lines

    message = (
        "request mix departs from the baseline of revision r1: prompt length distance 0.63 > threshold 0.2"
    )
    md = {
        "metadata": {"name": "x"},
        "status": {"phase": "Ready", "conditions": [cond("True", "DriftDetected", message=message)]},
    }
    assert f"  InputDrift (DriftDetected): {message}" in explain_lines(md, [])
    md["status"]["conditions"] = [cond("False", "WithinBaseline")]
    assert not any("InputDrift" in line for line in explain_lines(md, []))
