"""The error rate and request count slogate reads match how each engine counts — judged by promtool.

``slogate.core.engine_metrics`` builds one PromQL per engine for "requests" and "server faults",
used by rollout analysis, the burn-rate rules and the dashboard. Here promtool evaluates that
PromQL over the series the real engine would export for a known mix of outcomes
(``tests/unit/engine_series.py``, written from the engines' source), and the answer must be the
mix's true share of server faults. The cases are the ones the engines' code makes hard: vLLM
failing *streamed* requests after HTTP 200, TGI counting an OpenAI chat request twice, client
disconnects and load shedding that are not errors. promtool missing is a failure, never a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from slogate.api.v1alpha1 import EngineKind
from slogate.core import analysis, rules
from slogate.core.engine_metrics import (
    error_ratio_expr,
    errors_expr,
    metrics_for,
    overload_ratio_expr,
    requests_expr,
    selector,
)
from tests.unit.engine_series import SERIES, Mix

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
MINUTES = 40
EVAL = "30m"
WINDOW = "5m"
LABELS = 'namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"'
SEL = selector("ml", "llama", "abc12345")

CASES = [
    # vLLM: the failure vLLM counts only in request_success{finished_reason="error"} (HTTP was 200)
    pytest.param("vllm", Mix(ok_streamed=80, fault_streamed=20), id="vllm-midstream-20pct"),
    # non-streamed engine faults are both HTTP 500 and finished_reason=error: counted once
    pytest.param("vllm", Mix(ok_plain=95, fault_plain=5), id="vllm-nonstreamed-5pct-not-double"),
    pytest.param("vllm", Mix(ok_streamed=90, pre_engine=10), id="vllm-pre-engine-503"),
    pytest.param(
        "vllm",
        Mix(ok_streamed=70, fault_streamed=10, fault_plain=5, pre_engine=5, invalid=20),
        id="vllm-everything-at-once",
    ),
    pytest.param("vllm", Mix(ok_streamed=70, client_drop=30), id="vllm-client-aborts-are-not-errors"),
    pytest.param("vllm", Mix(ok_streamed=100, invalid=50), id="vllm-4xx-neither-errors-nor-requests"),
    pytest.param("vllm", Mix(ok_streamed=100), id="vllm-healthy-is-zero-not-absent"),
    # TGI: tgi_request_count is 2 per chat request; 1.8% real must read 1.8%, not 0.9%
    pytest.param("tgi", Mix(ok_streamed=982, fault_streamed=18), id="tgi-chat-1.8pct"),
    pytest.param("tgi", Mix(ok_streamed=70, client_drop=30), id="tgi-client-drops-are-not-errors"),
    pytest.param(
        "tgi", Mix(ok_streamed=83, fault_plain=1, incomplete=1, overloaded=10, invalid=5), id="tgi-mixed"
    ),
    pytest.param("tgi", Mix(ok_streamed=100), id="tgi-healthy-is-zero-not-absent"),
    # SGLang: errors from the HTTP status (exact codes), 503 is load shedding
    pytest.param("sglang", Mix(ok_plain=95, fault_plain=5), id="sglang-nonstreamed-5pct"),
    pytest.param("sglang", Mix(ok_streamed=90, pre_engine=10), id="sglang-500-before-the-scheduler"),
    pytest.param(
        "sglang", Mix(ok_streamed=90, overloaded=10, invalid=7), id="sglang-503-is-overload-not-error"
    ),
    pytest.param("sglang", Mix(ok_streamed=100), id="sglang-healthy-is-zero-not-absent"),
    # The gap SGLang leaves, pinned: a streamed failure is HTTP 200 and a finished request.
    pytest.param(
        "sglang", Mix(ok_streamed=80, fault_streamed=20), id="sglang-midstream-failures-are-invisible"
    ),
]


def _promtool_expect(tmp_path: Path, series: list[dict], expected: dict[str, float]) -> None:
    """promtool must find each expression, scaled by 1e6 and rounded, equal to its expected value."""
    assert Path(PROMTOOL).is_file(), "promtool is missing: apt-get install prometheus (Debian) provides it"
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": f"round(1e6 * ({expr}))",
                        "eval_time": EVAL,
                        "exp_samples": [{"value": round(1e6 * v)}],
                    }
                    for expr, v in expected.items()
                ],
            }
        ],
    }
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(("engine", "mix"), CASES)
def test_error_ratio_and_request_count_match_the_engine(tmp_path, engine, mix):
    m = metrics_for(EngineKind(engine))
    minutes = int(WINDOW.rstrip("m"))
    expected = {
        error_ratio_expr(m, SEL, window=WINDOW): mix.faults(engine) / mix.requests(engine),
        errors_expr(m, SEL, window=WINDOW, fn="increase"): mix.faults(engine) * minutes,
        requests_expr(m, SEL, window=WINDOW, fn="increase"): mix.requests(engine) * minutes,
    }
    _promtool_expect(tmp_path, SERIES[engine](LABELS, mix, MINUTES), expected)


def test_vllm_client_disconnects_beside_non_streamed_faults_err_high_by_at_most_the_faults(tmp_path):
    """The known imprecision, pinned: a disconnected stream is a 2xx the engine never finished, so
    the pre-engine estimate takes it for a failure up to the HTTP 5xx — which here are engine
    faults already counted. The error rate then errs high (toward rollback), never low."""
    mix = Mix(ok_streamed=80, fault_plain=5, client_drop=15)
    m = metrics_for(EngineKind.VLLM)
    # truth 5 of 85 requests; measured (5 + 5) of (85 + 5): min(drops, 5xx) = 5 counted again
    _promtool_expect(
        tmp_path, SERIES["vllm"](LABELS, mix, MINUTES), {error_ratio_expr(m, SEL, window=WINDOW): 10 / 90}
    )
    assert 10 / 90 > mix.faults("vllm") / mix.requests("vllm")


def test_tgi_overload_is_its_own_signal(tmp_path):
    mix = Mix(ok_streamed=85, overloaded=10, fault_streamed=5)
    m = metrics_for(EngineKind.TGI)
    expr = overload_ratio_expr(m, SEL, window=WINDOW)
    assert expr is not None
    _promtool_expect(tmp_path, SERIES["tgi"](LABELS, mix, MINUTES), {expr: 10 / mix.accepted})
    assert overload_ratio_expr(metrics_for(EngineKind.VLLM), SEL, window=WINDOW) is None


def test_sglang_overload_is_its_own_signal(tmp_path):
    mix = Mix(ok_streamed=80, overloaded=15, fault_plain=5)
    expr = overload_ratio_expr(metrics_for(EngineKind.SGLANG), SEL, window=WINDOW)
    assert expr is not None
    _promtool_expect(tmp_path, SERIES["sglang"](LABELS, mix, MINUTES), {expr: 15 / mix.accepted})


def test_analysis_rules_and_dashboard_share_one_definition():
    """The three consumers embed the same expressions, so judging them once above covers all."""
    from slogate import dashboard
    from slogate.api.v1alpha1 import ModelDeploymentSpec

    for engine in ("vllm", "tgi", "sglang"):
        spec = ModelDeploymentSpec.model_validate(
            {
                "model": {"source": "hf://org/m"},
                "engine": {"kind": engine},
                "slo": {"window": WINDOW, "objectives": [{"metric": "errorRate", "maxPercent": 1}]},
            }
        )
        m = metrics_for(EngineKind(engine))
        [query] = analysis.build_queries(spec=spec, namespace="ml", name="llama", revision="abc12345")
        assert query.promql == f"100 * {error_ratio_expr(m, SEL, window=WINDOW)}"
        count = analysis.requests_query(spec=spec, namespace="ml", name="llama", revision="abc12345")
        assert count == requests_expr(m, SEL, window=WINDOW, fn="increase")
        [objective] = spec.slo.objectives
        ratio = rules.error_ratio_promql(engine=EngineKind(engine), obj=objective, sel=SEL, window=WINDOW)
        assert ratio == error_ratio_expr(m, SEL, window=WINDOW)
        assert dashboard._error_ratio(m) == error_ratio_expr(
            m, dashboard.ENGINE, window=dashboard.RATE, by=(dashboard.REV,)
        )
