"""SLO analysis: the exact PromQL per engine and objective, every verdict rule, and run_analysis
against a fake MetricsSource (a dict from PromQL to value, or an exception)."""

from __future__ import annotations

from typing import Any

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec, Objective, ObjectiveResult, Verdict
from slogate.core.analysis import (
    Query,
    assess,
    build_queries,
    evaluate,
    format_value,
    objective_name,
    requests_query,
    run_analysis,
    substitute,
    threshold_of,
)
from slogate.errors import PrometheusUnavailable

NS, NAME, REV, STABLE = "ml", "llama", "abc12345", "old11111"

TTFT_P95 = {"metric": "ttft", "percentile": 95, "max": "500ms"}
ERRORS_1 = {"metric": "errorRate", "maxPercent": 1}


def make_spec(
    *objectives: dict[str, Any],
    engine: str = "vllm",
    window: str = "5m",
    min_requests: int = 100,
    max_regression: float | None = None,
) -> ModelDeploymentSpec:
    doc: dict[str, Any] = {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "engine": {"kind": engine},
        "slo": {"window": window, "minRequests": min_requests, "objectives": list(objectives)},
    }
    if max_regression is not None:
        doc["rollout"] = {"analysis": {"maxRegressionPercent": max_regression}}
    return ModelDeploymentSpec.model_validate(doc)


def obj(**fields: Any) -> Objective:
    return Objective.model_validate(fields)


# ------------------------------------------------------------------------------------------- PromQL


@pytest.mark.parametrize(
    "engine, objective, window, promql, unit",
    [
        pytest.param(
            "vllm",
            TTFT_P95,
            "5m",
            'histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[5m])))',
            "s",
            id="vllm-ttft-p95",
        ),
        pytest.param(
            "vllm",
            {"metric": "latency", "percentile": 99, "max": "4s"},
            "5m",
            'histogram_quantile(0.99, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[5m])))',
            "s",
            id="vllm-latency-p99",
        ),
        pytest.param(
            "vllm",
            {"metric": "interTokenLatency", "percentile": 99.9, "max": "50ms"},
            "5m",
            'histogram_quantile(0.999, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[5m])))',
            "s",
            id="vllm-itl-p99.9",
        ),
        pytest.param(
            "tgi",
            TTFT_P95,
            "5m",
            'histogram_quantile(0.95, sum by (le) (rate(tgi_request_queue_duration_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[5m])))'
            ' + histogram_quantile(0.95, sum by (le) (rate(tgi_batch_inference_duration_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345",method="prefill"}[5m])))',
            "s",
            id="tgi-ttft-p95-approximation",
        ),
        pytest.param(
            "tgi",
            {"metric": "latency", "percentile": 50, "max": "4s"},
            "5m",
            'histogram_quantile(0.5, sum by (le) (rate(tgi_request_duration_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[5m])))',
            "s",
            id="tgi-latency-p50",
        ),
        pytest.param(
            "tgi",
            {"metric": "interTokenLatency", "percentile": 95, "max": "50ms"},
            "5m",
            'histogram_quantile(0.95, sum by (le) (rate(tgi_request_mean_time_per_token_duration_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[5m])))',
            "s",
            id="tgi-itl-p95",
        ),
        pytest.param(
            "vllm",
            {"metric": "ttft", "percentile": 90, "max": "1s"},
            "1.5m",
            'histogram_quantile(0.9, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}[1m30s])))',
            "s",
            id="window-normalised-for-promql",
        ),
        pytest.param(
            "vllm",
            {
                "name": "kv-cache",
                "query": 'max(vllm:kv_cache_usage_perc{namespace="$namespace",slogate_io_deployment="$name",slogate_io_revision="$revision"})',
                "max": "0.9",
            },
            "5m",
            'max(vllm:kv_cache_usage_perc{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"})',
            "",
            id="custom-substitution",
        ),
        pytest.param(
            "tgi",
            {
                "name": "success-rps",
                "query": 'sum(rate(tgi_request_success{slogate_io_revision="${revision}"}[$window])) / sum(rate(tgi_request_count{namespace="${namespace}"}[${window}]))',
                "max": "100",
            },
            "30s",
            'sum(rate(tgi_request_success{slogate_io_revision="abc12345"}[30s])) / sum(rate(tgi_request_count{namespace="ml"}[30s]))',
            "",
            id="custom-braces-and-window",
        ),
    ],
)
def test_build_queries_exact_promql(engine, objective, window, promql, unit):
    spec = make_spec(objective, engine=engine, window=window)
    [query] = build_queries(spec=spec, namespace=NS, name=NAME, revision=REV)
    assert query.promql == promql
    assert query.unit == unit
    assert query.objective == objective_name(spec.slo.objectives[0])


def test_build_queries_one_per_objective_in_order():
    spec = make_spec(
        TTFT_P95,
        ERRORS_1,
        {"metric": "latency", "percentile": 99, "max": "4s"},
        {"name": "x", "query": "1", "max": "2"},
    )
    queries = build_queries(spec=spec, namespace=NS, name=NAME, revision=REV)
    assert [(q.objective, q.unit) for q in queries] == [
        ("ttft-p95", "s"),
        ("errorRate", "%"),
        ("latency-p99", "s"),
        ("x", ""),
    ]


# The error rate and minRequests' count are built by engine_metrics.error_ratio_expr / requests_expr
# and judged by promtool against each engine's counting in tests/unit/test_engine_semantics.py.


def test_label_values_are_escaped_in_selectors():
    spec = make_spec(TTFT_P95)
    [q] = build_queries(spec=spec, namespace=NS, name=NAME, revision='a"b')
    assert 'slogate_io_revision="a\\"b"' in q.promql


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("$namespace/$name", "ml/llama", id="namespace-before-name"),
        pytest.param("${name}space", "llamaspace", id="braces-delimit"),
        pytest.param("$revisions $revision", "$revisions abc12345", id="whole-words-only"),
        pytest.param("rate(x[$window]) $other", "rate(x[5m]) $other", id="unknown-left-alone"),
    ],
)
def test_substitute(text, expected):
    assert substitute(text, namespace=NS, name=NAME, revision=REV, window="5m") == expected


# ---------------------------------------------------------------------------------- names, thresholds


@pytest.mark.parametrize(
    "fields, name, threshold",
    [
        pytest.param(TTFT_P95, "ttft-p95", 0.5, id="ttft"),
        pytest.param(
            {"metric": "latency", "percentile": 99, "max": "1m30s"}, "latency-p99", 90.0, id="latency"
        ),
        pytest.param(
            {"metric": "interTokenLatency", "percentile": 99.9, "max": "25ms"},
            "interTokenLatency-p99.9",
            0.025,
            id="itl-decimal-percentile",
        ),
        pytest.param(ERRORS_1, "errorRate", 1.0, id="errorRate-percent"),
        pytest.param({"metric": "errorRate", "maxPercent": 0.5}, "errorRate", 0.5, id="errorRate-fraction"),
        pytest.param({"name": "hit-rate", "query": "x", "max": "0.9"}, "hit-rate", 0.9, id="custom"),
        pytest.param({"name": "neg", "query": "x", "max": "-3"}, "neg", -3.0, id="custom-negative"),
        pytest.param({**TTFT_P95, "name": "first-token"}, "first-token", 0.5, id="explicit-name"),
    ],
)
def test_objective_name_and_threshold(fields, name, threshold):
    o = obj(**fields)
    assert objective_name(o) == name
    assert threshold_of(o) == threshold


# ---------------------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    "value, unit, text",
    [
        pytest.param(0.612, "s", "612ms", id="ms"),
        pytest.param(0.5, "s", "500ms", id="ms-threshold"),
        pytest.param(0.0042, "s", "4.2ms", id="sub-10ms-one-decimal"),
        pytest.param(0.0, "s", "0ms", id="zero-s"),
        pytest.param(0.9996, "s", "1s", id="rounds-up-to-seconds"),
        pytest.param(1.25, "s", "1.25s", id="seconds"),
        pytest.param(4.0, "s", "4s", id="whole-seconds"),
        pytest.param(61.234, "s", "61.23s", id="long"),
        pytest.param(0.4, "%", "0.40%", id="percent"),
        pytest.param(0.0, "%", "0.00%", id="zero-percent"),
        pytest.param(12.345, "%", "12.35%", id="percent-rounded"),
        pytest.param(0.93, "", "0.93", id="plain"),
        pytest.param(3.0, "", "3", id="plain-int"),
        pytest.param(12345.6, "", "12346", id="plain-large"),
        pytest.param(None, "s", None, id="none"),
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


# ------------------------------------------------------------------------------------------ evaluate

Q_TTFT = Query(objective="ttft-p95", promql="q", unit="s")
Q_ERR = Query(objective="errorRate", promql="q", unit="%")
Q_KV = Query(objective="kv-cache", promql="q", unit="")
Q_LAT = Query(objective="latency-p99", promql="q", unit="s")
KV = {
    "name": "kv-cache",
    "query": 'max(vllm:kv_cache_usage_perc{slogate_io_revision="$revision"})',
    "max": "0.9",
}
LAT_P99_4S = {"metric": "latency", "percentile": 99, "max": "4s"}


@pytest.mark.parametrize(
    "query, fields, value, requests, min_requests, expected",
    [
        pytest.param(
            Q_TTFT, TTFT_P95, 0.42, 500, 100, ("420ms", "500ms", "Pass", "ttft p95 420ms ≤ 500ms"), id="pass"
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.5,
            500,
            100,
            ("500ms", "500ms", "Pass", "ttft p95 500ms ≤ 500ms"),
            id="equal-passes",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.501,
            500,
            100,
            ("501ms", "500ms", "Fail", "ttft p95 501ms > 500ms"),
            id="just-above",
        ),
        pytest.param(
            Q_TTFT, TTFT_P95, 0.612, 500, 100, ("612ms", "500ms", "Fail", "ttft p95 612ms > 500ms"), id="fail"
        ),
        pytest.param(
            Q_LAT,
            LAT_P99_4S,
            4.2,
            500,
            100,
            ("4.2s", "4s", "Fail", "latency p99 4.2s > 4s"),
            id="fail-seconds",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.612,
            42,
            100,
            ("612ms", "500ms", "Inconclusive", "42 requests < minRequests 100"),
            id="too-few-requests-beats-fail",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.3,
            99.4,
            100,
            ("300ms", "500ms", "Inconclusive", "99 requests < minRequests 100"),
            id="requests-round-down",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.3,
            99.6,
            100,
            ("300ms", "500ms", "Pass", "ttft p95 300ms ≤ 500ms"),
            id="requests-round-up",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.3,
            100,
            100,
            ("300ms", "500ms", "Pass", "ttft p95 300ms ≤ 500ms"),
            id="requests-equal",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            None,
            None,
            100,
            (None, "500ms", "Inconclusive", "no requests recorded; minRequests 100"),
            id="no-request-metric",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            None,
            0,
            100,
            (None, "500ms", "Inconclusive", "0 requests < minRequests 100"),
            id="zero-requests",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            None,
            500,
            100,
            (None, "500ms", "Inconclusive", "no data"),
            id="no-data-never-zero",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.3,
            None,
            0,
            ("300ms", "500ms", "Pass", "ttft p95 300ms ≤ 500ms"),
            id="min-requests-0-needs-no-count",
        ),
        pytest.param(
            Q_ERR,
            ERRORS_1,
            0.4,
            500,
            100,
            ("0.40%", "1.00%", "Pass", "errorRate 0.40% ≤ 1.00%"),
            id="errors-pass",
        ),
        pytest.param(
            Q_ERR,
            ERRORS_1,
            0.0,
            500,
            100,
            ("0.00%", "1.00%", "Pass", "errorRate 0.00% ≤ 1.00%"),
            id="errors-zero",
        ),
        pytest.param(
            Q_ERR,
            ERRORS_1,
            1.0,
            500,
            100,
            ("1.00%", "1.00%", "Pass", "errorRate 1.00% ≤ 1.00%"),
            id="errors-equal",
        ),
        pytest.param(
            Q_ERR,
            ERRORS_1,
            2.5,
            500,
            100,
            ("2.50%", "1.00%", "Fail", "errorRate 2.50% > 1.00%"),
            id="errors-fail",
        ),
        pytest.param(
            Q_KV, KV, 0.93, 500, 100, ("0.93", "0.9", "Fail", "kv-cache 0.93 > 0.9"), id="custom-fail"
        ),
        pytest.param(
            Q_KV, KV, 0.9, 500, 100, ("0.9", "0.9", "Pass", "kv-cache 0.9 ≤ 0.9"), id="custom-equal"
        ),
        pytest.param(
            Q_KV,
            KV,
            0.5,
            7,
            100,
            ("0.5", "0.9", "Inconclusive", "7 requests < minRequests 100"),
            id="custom-honours-min-requests",
        ),
    ],
)
def test_evaluate(query, fields, value, requests, min_requests, expected):
    result = evaluate(
        query=query, objective=obj(**fields), value=value, requests=requests, min_requests=min_requests
    )
    assert (result.value, result.threshold, result.verdict, result.message) == expected
    assert result.name == query.objective


TTFT_P95_800 = {"metric": "ttft", "percentile": 95, "max": "800ms"}


@pytest.mark.parametrize(
    "query, fields, value, baseline, pct, verdict, message",
    [
        pytest.param(
            Q_TTFT,
            TTFT_P95_800,
            0.54,
            0.4,
            20,
            "Fail",
            "ttft p95 540ms is 35% worse than stable (400ms), limit 20%",
            id="regression-fails",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95_800,
            0.5,
            0.4,
            25,
            "Pass",
            "ttft p95 500ms ≤ 800ms; +25% vs stable (400ms)",
            id="regression-boundary-passes",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95_800,
            0.3,
            0.4,
            0,
            "Pass",
            "ttft p95 300ms ≤ 800ms; -25% vs stable (400ms)",
            id="better-than-stable",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95_800,
            0.41,
            0.4,
            0,
            "Fail",
            "ttft p95 410ms is 2% worse than stable (400ms), limit 0%",
            id="zero-tolerance",
        ),
        pytest.param(
            Q_TTFT,
            TTFT_P95,
            0.9,
            0.4,
            20,
            "Fail",
            "ttft p95 900ms > 500ms",
            id="threshold-wins-over-regression",
        ),
        pytest.param(
            Q_TTFT, TTFT_P95_800, 0.7, None, 20, "Pass", "ttft p95 700ms ≤ 800ms", id="no-baseline-skips"
        ),
        pytest.param(
            Q_TTFT, TTFT_P95_800, 0.7, 0.0, 20, "Pass", "ttft p95 700ms ≤ 800ms", id="zero-baseline-skips"
        ),
        pytest.param(
            Q_TTFT, TTFT_P95_800, 0.7, 0.4, None, "Pass", "ttft p95 700ms ≤ 800ms", id="not-configured"
        ),
        pytest.param(
            Q_ERR, ERRORS_1, 0.9, 0.1, 10, "Pass", "errorRate 0.90% ≤ 1.00%", id="errorRate-not-compared"
        ),
        pytest.param(Q_KV, KV, 0.8, 0.1, 10, "Pass", "kv-cache 0.8 ≤ 0.9", id="custom-not-compared"),
    ],
)
def test_evaluate_regression_against_stable(query, fields, value, baseline, pct, verdict, message):
    result = evaluate(
        query=query,
        objective=obj(**fields),
        value=value,
        requests=500,
        min_requests=100,
        baseline=baseline,
        max_regression_percent=pct,
    )
    assert (result.verdict, result.message) == (verdict, message)


# -------------------------------------------------------------------------------------------- assess


def _r(verdict: str) -> ObjectiveResult:
    return ObjectiveResult(name="o", threshold="1", verdict=Verdict(verdict))


@pytest.mark.parametrize(
    "verdicts, expected",
    [
        pytest.param([], "Inconclusive", id="empty"),
        pytest.param(["Pass"], "Pass", id="one-pass"),
        pytest.param(["Pass", "Pass", "Pass"], "Pass", id="all-pass"),
        pytest.param(["Pass", "Inconclusive"], "Inconclusive", id="pass-inconclusive"),
        pytest.param(["Inconclusive", "Inconclusive"], "Inconclusive", id="all-inconclusive"),
        pytest.param(["Pass", "Fail"], "Fail", id="pass-fail"),
        pytest.param(["Inconclusive", "Fail", "Pass"], "Fail", id="fail-beats-inconclusive"),
    ],
)
def test_assess(verdicts, expected):
    assert assess([_r(v) for v in verdicts]) == expected


# -------------------------------------------------------------------------------------- run_analysis


class FakeSource:
    """A MetricsSource answering from a dict; an exception value is raised. Records what was asked."""

    def __init__(self, answers: dict[str, float | Exception | None] | Exception) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, promql: str) -> float | None:
        self.asked.append(promql)
        answer = self.answers if isinstance(self.answers, Exception) else self.answers[promql]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _q(spec: ModelDeploymentSpec, revision: str = REV) -> list[str]:
    return [q.promql for q in build_queries(spec=spec, namespace=NS, name=NAME, revision=revision)]


def _req(spec: ModelDeploymentSpec, revision: str = REV) -> str:
    return requests_query(spec=spec, namespace=NS, name=NAME, revision=revision)


def _run(source: FakeSource, spec: ModelDeploymentSpec, stable: str | None = STABLE):
    verdict, results = run_analysis(
        source, spec=spec, namespace=NS, name=NAME, revision=REV, stable_revision=stable
    )
    return verdict, [(r.name, r.value, r.verdict, r.message) for r in results]


def test_run_analysis_pass_without_baseline_queries():
    spec = make_spec(TTFT_P95, ERRORS_1)
    ttft, err = _q(spec)
    source = FakeSource({_req(spec): 480.0, ttft: 0.21, err: 0.0})
    verdict, results = _run(source, spec)
    assert verdict == Verdict.PASS
    assert results == [
        ("ttft-p95", "210ms", "Pass", "ttft p95 210ms ≤ 500ms"),
        ("errorRate", "0.00%", "Pass", "errorRate 0.00% ≤ 1.00%"),
    ]
    # maxRegressionPercent unset: stable is never asked about, though a stable revision exists.
    assert source.asked == [_req(spec), ttft, err]


def test_run_analysis_prometheus_down_makes_every_objective_inconclusive_after_one_query():
    spec = make_spec(TTFT_P95, ERRORS_1, KV, max_regression=10)
    source = FakeSource(
        PrometheusUnavailable("cannot connect to http://prom:9090: [Errno 111] Connection refused")
    )
    verdict, results = run_analysis(
        source, spec=spec, namespace=NS, name=NAME, revision=REV, stable_revision=STABLE
    )
    assert verdict == Verdict.INCONCLUSIVE
    msg = "Prometheus unreachable: cannot connect to http://prom:9090: [Errno 111] Connection refused"
    assert [(r.name, r.value, r.threshold, r.verdict, r.message) for r in results] == [
        ("ttft-p95", None, "500ms", "Inconclusive", msg),
        ("errorRate", None, "1.00%", "Inconclusive", msg),
        ("kv-cache", None, "0.9", "Inconclusive", msg),
    ]
    assert len(source.asked) == 1


def test_run_analysis_partial_no_data():
    spec = make_spec(TTFT_P95, ERRORS_1)
    ttft, err = _q(spec)
    verdict, results = _run(FakeSource({_req(spec): 480.0, ttft: None, err: 0.2}), spec)
    assert verdict == Verdict.INCONCLUSIVE
    assert results == [
        ("ttft-p95", None, "Inconclusive", "no data"),
        ("errorRate", "0.20%", "Pass", "errorRate 0.20% ≤ 1.00%"),
    ]


def test_run_analysis_one_fail_fails_the_run_even_beside_inconclusive():
    spec = make_spec(TTFT_P95, ERRORS_1, KV)
    ttft, err, kv = _q(spec)
    verdict, results = _run(FakeSource({_req(spec): 480.0, ttft: 0.612, err: None, kv: 0.5}), spec)
    assert verdict == Verdict.FAIL
    assert results == [
        ("ttft-p95", "612ms", "Fail", "ttft p95 612ms > 500ms"),
        ("errorRate", None, "Inconclusive", "no data"),
        ("kv-cache", "0.5", "Pass", "kv-cache 0.5 ≤ 0.9"),
    ]


def test_run_analysis_too_few_requests_is_inconclusive_for_all_even_with_bad_values():
    spec = make_spec(TTFT_P95, ERRORS_1)
    ttft, err = _q(spec)
    verdict, results = _run(FakeSource({_req(spec): 42.0, ttft: 3.0, err: 50.0}), spec)
    assert verdict == Verdict.INCONCLUSIVE
    assert results == [
        ("ttft-p95", "3s", "Inconclusive", "42 requests < minRequests 100"),
        ("errorRate", "50.00%", "Inconclusive", "42 requests < minRequests 100"),
    ]


def test_run_analysis_rejected_custom_query_affects_only_that_objective():
    spec = make_spec(TTFT_P95, {"name": "broken", "query": "sum(", "max": "1"})
    ttft, broken = _q(spec)
    error = PrometheusUnavailable("HTTP 400: bad_data: 1:5: parse error: unclosed left parenthesis")
    verdict, results = _run(FakeSource({_req(spec): 480.0, ttft: 0.2, broken: error}), spec)
    assert verdict == Verdict.INCONCLUSIVE
    assert results == [
        ("ttft-p95", "200ms", "Pass", "ttft p95 200ms ≤ 500ms"),
        (
            "broken",
            None,
            "Inconclusive",
            "Prometheus unreachable: HTTP 400: bad_data: 1:5: parse error: unclosed left parenthesis",
        ),
    ]


def test_run_analysis_baseline_queried_for_latency_objectives_only():
    spec = make_spec(TTFT_P95_800, ERRORS_1, KV, max_regression=20)
    ttft, err, kv = _q(spec)
    stable_ttft, stable_err, stable_kv = _q(spec, STABLE)
    source = FakeSource(
        {_req(spec): 480.0, ttft: 0.54, err: 0.1, kv: 0.5, _req(spec, STABLE): 900.0, stable_ttft: 0.4}
    )
    verdict, results = _run(source, spec)
    assert verdict == Verdict.FAIL
    assert results[0] == (
        "ttft-p95",
        "540ms",
        "Fail",
        "ttft p95 540ms is 35% worse than stable (400ms), limit 20%",
    )
    assert source.asked == [_req(spec), ttft, _req(spec, STABLE), stable_ttft, err, kv]
    assert stable_err not in source.asked and stable_kv not in source.asked


def test_run_analysis_stable_request_count_is_asked_once():
    spec = make_spec(TTFT_P95_800, LAT_P99_4S, max_regression=20)
    ttft, lat = _q(spec)
    s_ttft, s_lat = _q(spec, STABLE)
    answers = {_req(spec): 480.0, ttft: 0.45, lat: 2.0, _req(spec, STABLE): 900.0, s_ttft: 0.4, s_lat: 2.0}
    source = FakeSource(answers)
    verdict, results = _run(source, spec)
    assert verdict == Verdict.PASS
    assert [r[3] for r in results] == [
        "ttft p95 450ms ≤ 800ms; +12% vs stable (400ms)",
        "latency p99 2s ≤ 4s; +0% vs stable (2s)",
    ]
    assert source.asked == [_req(spec), ttft, _req(spec, STABLE), s_ttft, lat, s_lat]


@pytest.mark.parametrize(
    "stable, max_regression, stable_requests",
    [
        pytest.param(None, 20, 900.0, id="no-stable-revision"),
        pytest.param(REV, 20, 900.0, id="stable-is-the-candidate"),
        pytest.param(STABLE, None, 900.0, id="not-configured"),
    ],
)
def test_run_analysis_no_baseline_queries(stable, max_regression, stable_requests):
    spec = make_spec(TTFT_P95_800, max_regression=max_regression)
    [ttft] = _q(spec)
    source = FakeSource({_req(spec): 480.0, ttft: 0.7})
    verdict, results = _run(source, spec, stable)
    assert verdict == Verdict.PASS
    assert results == [("ttft-p95", "700ms", "Pass", "ttft p95 700ms ≤ 800ms")]
    assert source.asked == [_req(spec), ttft]


@pytest.mark.parametrize(
    "stable_requests", [pytest.param(99.0, id="too-few"), pytest.param(None, id="no-metric")]
)
def test_run_analysis_baseline_from_too_little_stable_traffic_is_not_used(stable_requests):
    spec = make_spec(TTFT_P95_800, max_regression=20)
    [ttft] = _q(spec)
    source = FakeSource({_req(spec): 480.0, ttft: 0.7, _req(spec, STABLE): stable_requests})
    verdict, results = _run(source, spec)
    assert verdict == Verdict.PASS
    assert results == [("ttft-p95", "700ms", "Pass", "ttft p95 700ms ≤ 800ms")]
    assert source.asked == [_req(spec), ttft, _req(spec, STABLE)]


def test_run_analysis_baseline_query_failing_is_inconclusive_not_pass():
    spec = make_spec(TTFT_P95_800, max_regression=20)
    [ttft] = _q(spec)
    [s_ttft] = _q(spec, STABLE)
    error = PrometheusUnavailable("timed out after 5s querying http://prom:9090")
    source = FakeSource({_req(spec): 480.0, ttft: 0.7, _req(spec, STABLE): 900.0, s_ttft: error})
    verdict, results = _run(source, spec)
    assert verdict == Verdict.INCONCLUSIVE
    assert results == [
        (
            "ttft-p95",
            None,
            "Inconclusive",
            "Prometheus unreachable: timed out after 5s querying http://prom:9090",
        )
    ]


def test_run_analysis_without_slo_measures_nothing():
    spec = ModelDeploymentSpec.model_validate({"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}})
    source = FakeSource({})
    assert run_analysis(source, spec=spec, namespace=NS, name=NAME, revision=REV, stable_revision=None) == (
        Verdict.INCONCLUSIVE,
        [],
    )
    assert source.asked == []


def test_run_analysis_tgi_uses_tgi_series():
    spec = make_spec(TTFT_P95, ERRORS_1, engine="tgi")
    ttft, err = _q(spec)
    source = FakeSource({_req(spec): 300.0, ttft: 0.16, err: 0.5})
    verdict, _ = _run(source, spec)
    assert verdict == Verdict.PASS
    assert "increase(tgi_request_success{" in source.asked[0]
    assert "tgi_request_count" not in "".join(source.asked)  # counted twice per chat request by TGI
    assert "tgi_request_queue_duration_bucket" in source.asked[1]


def test_doctests():
    import doctest

    import slogate.core.analysis

    assert doctest.testmod(slogate.core.analysis).failed == 0
