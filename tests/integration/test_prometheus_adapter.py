"""SLO analysis against the real local stack: a pod labelled like a slogate revision gets a simulator
from the bridge, Prometheus scrapes it every 2 s, and ``run_analysis`` with ``PrometheusSource``
judges it. Proves the built PromQL is valid and means what it says, per engine, with a 10 s window."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from slogate.adapters.prometheus import PrometheusSource
from slogate.api.v1alpha1 import ModelDeploymentSpec, ObjectiveResult, Verdict
from slogate.core.analysis import run_analysis
from slogate.dev.cli import set_simulators
from slogate.dev.cluster import LocalCluster
from slogate.errors import PrometheusUnavailable
from tests.integration.conftest import wait_for

NAME = "llama"
VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"
TGI_IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.4"


def _pod(name: str, revision: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "slogate.io/deployment": NAME,
                "slogate.io/revision": revision,
                "slogate.io/track": "canary",
            },
            # No Service in front of a bare pod, so no front-door client: the simulator's own 10 rps.
            "annotations": {"sim.slogate.io/config": '{"rps": 10}'},
        },
        "spec": {
            "containers": [
                {"name": "engine", "image": image, "resources": {"limits": {"nvidia.com/gpu": "1"}}}
            ],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def _spec(engine: str, *objectives: dict[str, Any]) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "engine": {"kind": engine},
            "slo": {"window": "10s", "minRequests": 20, "objectives": list(objectives)},
        }
    )


def _sim_set(cluster: LocalCluster, namespace: str, revision: str, change: dict[str, float]) -> None:
    set_simulators(
        cluster.dir, namespace=namespace, selector=f"slogate.io/revision={revision}", change=change
    )


def _by_name(results: list[ObjectiveResult]) -> dict[str, ObjectiveResult]:
    return {r.name: r for r in results}


def _seconds(text: str) -> float:
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


TTFT = {"metric": "ttft", "percentile": 95, "max": "500ms"}
ERRORS = {"metric": "errorRate", "maxPercent": 5}


def test_vllm_revision_passes_then_fails_on_injected_ttft(cluster: LocalCluster, kube, namespace):
    client.CoreV1Api(kube).create_namespaced_pod(namespace, _pod("llama-cand", "cand0001", VLLM_IMAGE))
    source = PrometheusSource(cluster.prometheus_url)
    assert source.is_online()
    throughput = {
        "name": "success-rps",
        "query": 'sum(rate(vllm:request_success_total{namespace="$namespace",slogate_io_deployment="$name",'
        'slogate_io_revision="$revision"}[$window]))',
        "max": "1000",
    }
    spec = _spec("vllm", TTFT, ERRORS, throughput)

    def analyse(revision: str) -> tuple[Verdict, dict[str, ObjectiveResult]]:
        verdict, results = run_analysis(
            source, spec=spec, namespace=namespace, name=NAME, revision=revision, stable_revision=None
        )
        return verdict, _by_name(results)

    verdict, results = wait_for(
        lambda: (v := analyse("cand0001"))[0] == Verdict.PASS and v,
        timeout=45,
        what="the simulator at 10 rps to pass ttft p95 500ms and errorRate 5%",
    )
    ttft = results["ttft-p95"]
    assert ttft.value is not None and ttft.value.endswith("ms") and 0.05 < _seconds(ttft.value) < 0.5
    assert ttft.message == f"ttft p95 {ttft.value} ≤ 500ms"
    # No 5xx series exists yet: `or vector(0)` makes that a measured 0%, not "no data".
    assert (results["errorRate"].value, results["errorRate"].message) == ("0.00%", "errorRate 0.00% ≤ 5.00%")
    # $-placeholders substituted (an unsubstituted selector matches nothing: no data, not a pass).
    # The rate may be low at first: it is extrapolated only over the part of the window the series lived.
    assert 0 < float(results["success-rps"].value or "nan") < 20

    # Another revision of the same deployment, with no pods: never a pass, whatever the others do.
    verdict, results = analyse("nopods00")
    assert verdict == Verdict.INCONCLUSIVE
    assert {(r.verdict, r.message) for r in results.values()} == {
        (Verdict.INCONCLUSIVE, "no requests recorded; minRequests 20")
    }

    # A query Prometheus rejects carries Prometheus' own error.
    with pytest.raises(PrometheusUnavailable, match=r"bad_data: .*parse error"):
        source.query("sum(")

    _sim_set(cluster, namespace, "cand0001", {"ttft_ms": 900})

    def ttft_fails():
        verdict, results = analyse("cand0001")
        return verdict == Verdict.FAIL and results["ttft-p95"].verdict == Verdict.FAIL and results

    results = wait_for(ttft_fails, timeout=30, what="the injected 900 ms TTFT to fail ttft p95 500ms")
    ttft = results["ttft-p95"]
    assert ttft.value is not None and _seconds(ttft.value) > 0.5
    assert ttft.message == f"ttft p95 {ttft.value} > 500ms"
    assert results["errorRate"].verdict == Verdict.PASS


def test_tgi_revision_passes_on_the_ttft_approximation_and_fails_on_errors(
    cluster: LocalCluster, kube, namespace
):
    client.CoreV1Api(kube).create_namespaced_pod(namespace, _pod("llama-tgi", "tgi00001", TGI_IMAGE))
    source = PrometheusSource(cluster.prometheus_url)
    spec = _spec(
        "tgi",
        TTFT,
        {"metric": "latency", "percentile": 95, "max": "20s"},
        {"metric": "interTokenLatency", "percentile": 95, "max": "100ms"},
        ERRORS,
    )

    def analyse() -> tuple[Verdict, dict[str, ObjectiveResult]]:
        verdict, results = run_analysis(
            source, spec=spec, namespace=namespace, name=NAME, revision="tgi00001", stable_revision=None
        )
        return verdict, _by_name(results)

    _, results = wait_for(
        lambda: (v := analyse())[0] == Verdict.PASS and v, timeout=45, what="the TGI simulator to pass"
    )
    # queue (25% of 120 ms) + prefill (75%) quantiles: roughly the configured TTFT, well under 500 ms.
    assert 0.05 < _seconds(results["ttft-p95"].value or "nan") < 0.5
    assert results["errorRate"].value == "0.00%"  # tgi_request_failure does not exist yet

    _sim_set(cluster, namespace, "tgi00001", {"error_rate": 0.5})

    def errors_fail():
        verdict, results = analyse()
        return verdict == Verdict.FAIL and results["errorRate"].verdict == Verdict.FAIL and results

    results = wait_for(errors_fail, timeout=30, what="the injected 50% error rate to fail errorRate 5%")
    err = results["errorRate"]
    assert err.value is not None and 5 < float(err.value.rstrip("%")) <= 100
    assert err.message == f"errorRate {err.value} > 5.00%"
