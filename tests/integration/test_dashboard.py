"""The Grafana dashboard's queries against the local Prometheus and simulated engines.

Two pods labelled like slogate revisions (a vLLM one and a TGI one) get simulators from the bridge,
which Prometheus scrapes with the labels a PodMonitor gives. Every query of the dashboard (panels,
annotations, variable selectors), with Grafana's variables filled in as Grafana would, is then asked
of the real Prometheus: each must be accepted, and each engine panel must return a number for the
ModelDeployment of its engine. The operator's own series are not scraped here (the local Prometheus
scrapes pods only), so their panels are checked for validity, not data.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from typing import Any

from kubernetes import client

from slogate.dashboard import build_dashboard
from slogate.dev.cluster import LocalCluster
from tests.integration.conftest import wait_for
from tests.unit.test_dashboard import (
    PROMETHEUS_OWN,
    SAMPLE_VALUES,
    VARIABLE,
    engine_names,
    expressions,
    metric_names,
)

ENGINES = {
    # ModelDeployment name: (image, revision, sim config). Bare pods with no ModelDeployment or Service
    # in front, so no front-door client reaches them: the simulators' own fixed-rate load (rps 10) is
    # the traffic here.
    "llama": ("vllm/vllm-openai:v0.11.0", "vllm0001", {"error_rate": 0.2, "rps": 10.0}),
    "mistral": ("ghcr.io/huggingface/text-generation-inference:3.3.4", "tgi00001", {"rps": 10.0}),
}
# Grafana's $__rate_interval as filled in here: the window the panels' rates are taken over.
RATE_INTERVAL = "30s"
# The injected error rate is judged over at least this many requests (the simulator serves 10/s).
MIN_WINDOW_REQUESTS = 250


def _pod(name: str, image: str, revision: str, sim: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-{revision}",
            "labels": {
                "slogate.io/deployment": name,
                "slogate.io/revision": revision,
                "slogate.io/track": "stable",
            },
            "annotations": {"sim.slogate.io/config": json.dumps(sim)},
        },
        "spec": {
            "containers": [
                {"name": "engine", "image": image, "resources": {"limits": {"nvidia.com/gpu": "1"}}}
            ],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def _get(url: str, path: str, **params: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as response:
        return json.loads(response.read())


def _fill(promql: str, *, namespace: str, name: str, revision: str) -> str:
    values = {
        **SAMPLE_VALUES,
        "__rate_interval": RATE_INTERVAL,
        "namespace": namespace,
        "modeldeployment": name,
    }
    values["revision"] = revision
    return VARIABLE.sub(lambda m: values[next(g for g in m.groups() if g)], promql)


def _numbers(payload: dict[str, Any]) -> list[float]:
    assert payload["status"] == "success", payload
    return [float(r["value"][1]) for r in payload["data"]["result"]]


def test_every_dashboard_query_is_accepted_and_engine_panels_have_data(
    cluster: LocalCluster, kube, namespace
):
    core = client.CoreV1Api(kube)
    for name, (image, revision, sim) in ENGINES.items():
        core.create_namespaced_pod(namespace, _pod(name, image, revision, sim))
    url = cluster.prometheus_url
    vllm = {n for n in engine_names() if n.startswith("vllm:") or n == "http_requests_total"}
    tgi = {n for n in engine_names() if n.startswith("tgi_")}
    queries = expressions(build_dashboard())

    def expected(expr: str) -> set[str]:
        """The ModelDeployments whose engine this query must show data for (none: operator series)."""
        names = metric_names(VARIABLE.sub("0.95", expr))
        if not names <= vllm | tgi | PROMETHEUS_OWN:
            return set()
        return {
            name for name, engine in (("llama", vllm), ("mistral", tgi)) if names - PROMETHEUS_OWN <= engine
        }

    engine_queries = [(where, expr, md) for where, expr in queries for md in sorted(expected(expr))]
    assert len(engine_queries) >= 20, engine_queries

    def all_have_data() -> list[str]:
        missing = []
        for where, expr, md in engine_queries:
            promql = _fill(expr, namespace=namespace, name=md, revision=ENGINES[md][1])
            values = _numbers(_get(url, "/api/v1/query", query=promql))
            if not any(math.isfinite(v) for v in values):
                missing.append(f"{md} {where}: {promql}")
        assert not missing, "\n".join(missing)
        return ["ok"]

    wait_for(all_have_data, timeout=90, interval=2, what="every engine panel to return data")

    # Every query, operator panels and annotations included, is accepted by the real Prometheus.
    for where, expr in queries:
        promql = _fill(expr, namespace=namespace, name="llama", revision="vllm0001")
        assert _get(url, "/api/v1/query", query=promql)["status"] == "success", (where, promql)

    # The revision variable (label_values over `up`) lists the pods' revisions.
    (revision_var,) = [v for v in build_dashboard()["templating"]["list"] if v["name"] == "revision"]
    selector = revision_var["query"]["query"].removeprefix("label_values(").rsplit(",", 1)[0]
    series = _get(
        url, "/api/v1/series", **{"match[]": _fill(selector, namespace=namespace, name="llama", revision="")}
    )
    assert {s["slogate_io_revision"] for s in series["data"]} == {"vllm0001"}

    # The panels mean what they say: the injected 20% error rate, per revision. Asked once the
    # panel's window holds enough requests for 20% to be told from 0% or 100% by a wide margin
    # (early on it holds a handful, and one failure in twenty reads as 5%).
    revision = ENGINES["llama"][1]
    in_window = (
        f'sum(increase(http_requests_total{{namespace="{namespace}",slogate_io_revision="{revision}"}}'
        f"[{RATE_INTERVAL}]))"
    )

    def window_requests() -> list[float]:
        counted = _numbers(_get(url, "/api/v1/query", query=in_window))
        assert counted and counted[0] >= MIN_WINDOW_REQUESTS, counted
        return counted

    wait_for(
        window_requests,
        timeout=90,
        interval=2,
        what=f"{MIN_WINDOW_REQUESTS} requests in the {RATE_INTERVAL} window",
    )
    (panel,) = [p for p in build_dashboard()["panels"] if p["title"] == "Error ratio by revision"]
    promql = _fill(panel["targets"][0]["expr"], namespace=namespace, name="llama", revision=revision)
    result = _get(url, "/api/v1/query", query=promql)["data"]["result"]
    assert [r["metric"] for r in result] == [{"slogate_io_revision": revision}]
    # 250+ requests at 20%: the standard error is under 0.026, so these bounds are over 4.5 of them.
    assert 0.08 < float(result[0]["value"][1]) < 0.35, result
