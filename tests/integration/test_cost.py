"""Cost against the local control plane, Prometheus and the simulators (docs/cost.md).

The simulators generate synthetic traffic (10 requests/s each), so generated tokens reach
Prometheus within seconds of a pod starting. The operator runs with the built-in price table:
NVIDIA-H100-80GB-HBM3 at 4.00 USD per GPU-hour.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.core.cost import OPENCOST_MODEL_LABEL
from slogate.core.naming import revision_of
from slogate.dev.cluster import LocalCluster
from tests.integration.conftest import wait_for
from tests.integration.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    get_md,
    has_events,
    mdep,
    operator_for,
    ready,
)

SLO = {
    "window": "10s",
    "minRequests": 5,
    "objectives": [
        {"metric": "ttft", "percentile": 95, "max": "2s"},
        {"metric": "errorRate", "maxPercent": 5},
    ],
}
ROLLOUT = {
    "steps": [{"setWeight": 50}, {"pause": {"duration": "10m"}}],
    "analysis": {"interval": "3s", "initialDelay": "3s", "failureLimit": 2, "inconclusiveLimit": 50},
}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster) -> Iterator:
    op = operator_for(cluster, cluster.logs / "operator-cost.log")
    op.start()
    yield op
    op.stop()


def samples(operator, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The operator's samples of one metric whose labels include ``labels``."""
    out = []
    for family in text_string_to_metric_families(operator.metrics()):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                out.append((s.labels, s.value))
    return out


def test_cost_status_metrics_and_budget(cluster, kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    doc = mdep("priced", replicas=2, slo=SLO, rollout=ROLLOUT, budget={"maxCostPerMillionTokens": "0.0001"})
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    ready(kube, namespace, "priced")
    md = {"namespace": namespace, "modeldeployment": "priced"}

    # status.cost: two running pods with one H100 each at the built-in 4.00 USD per GPU-hour, and a cost
    # per million generated tokens as soon as the simulators' tokens are in Prometheus.
    cost = wait_for(
        lambda: (
            (c := get_md(kube, namespace, "priced")["status"].get("cost")) and c.get("perMillionTokens") and c
        ),
        timeout=60,
        what="status.cost.perMillionTokens",
    )
    assert {k: cost[k] for k in ("gpus", "perHour", "currency", "window")} == {
        "gpus": 2,
        "perHour": "8.00",
        "currency": "USD",
        "window": "10s",
    }
    assert 0 < float(cost["perMillionTokens"]) < 1e6

    # The budget is far below any real cost: the warning condition and its Event.
    over = wait_for(
        lambda: (
            (c := condition(get_md(kube, namespace, "priced"), "OverBudget")) and c["status"] == "True" and c
        ),
        timeout=30,
        what="OverBudget to be True",
    )
    assert over["reason"] == "OverBudget" and "> budget 0.0001 USD" in over["message"]
    (event,) = [
        e
        for e in has_events(kube, namespace, "priced", "OverBudget", warning=True)
        if e.reason == "OverBudget"
    ]
    assert event.message == over["message"]

    # The metrics carry the exact values, in the price table's currency.
    per_hour = wait_for(
        lambda: samples(operator, "slogate_cost_per_hour", **md), timeout=15, what="cost metric"
    )
    assert per_hour == [({**md, "currency": "USD"}, 8.0)]
    ((_, per_mtok),) = samples(operator, "slogate_cost_per_million_tokens", **md)
    assert per_mtok > 0
    assert samples(operator, "slogate_cost_budget_per_million_tokens", **md) == [
        ({**md, "currency": "USD"}, 0.0001)
    ]

    # Raising the budget is a recovery: condition False and a Normal Event.
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "priced",
        {"spec": {"budget": {"maxCostPerMillionTokens": "100000"}}},
    )
    wait_for(
        lambda: (c := condition(get_md(kube, namespace, "priced"), "OverBudget")) and c["status"] == "False",
        timeout=30,
        what="OverBudget to be False",
    )
    has_events(kube, namespace, "priced", "WithinBudget")

    # A rollout: the analysed revision's objectives are exported with value and threshold in base units.
    spec = {
        **doc["spec"],
        "model": {**doc["spec"]["model"], "source": "hf://meta-llama/Llama-3.2-3B-Instruct"},
    }
    candidate = revision_of(ModelDeploymentSpec.model_validate(spec))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "priced", {"spec": {"model": spec["model"]}}
    )
    wait_for(
        lambda: samples(
            operator, "slogate_slo_objective_value", **md, revision=candidate, objective="ttft-p95"
        ),
        timeout=90,
        what="the candidate's ttft-p95 value",
    )
    ((_, ttft),) = samples(
        operator, "slogate_slo_objective_value", **md, revision=candidate, objective="ttft-p95"
    )
    assert 0 < ttft < 2  # seconds (the simulators answer in about 120 ms)
    thresholds = {
        labels["objective"]: v
        for labels, v in samples(operator, "slogate_slo_objective_threshold", **md, revision=candidate)
    }
    assert thresholds == {"ttft-p95": 2.0, "errorRate": 0.05}

    # The candidate's pods run beside stable's: the cost per hour follows every running pod's H100.
    def follows_pods():
        pods = client.CoreV1Api(kube).list_namespaced_pod(
            namespace, label_selector="slogate.io/deployment=priced"
        )
        running = [p for p in pods.items if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
        got = samples(operator, "slogate_cost_per_hour", **md)
        return len(running) > 2 and got == [({**md, "currency": "USD"}, 4.0 * len(running))]

    wait_for(follows_pods, timeout=30, what="the cost per hour of stable's and the candidate's H100s")

    # Deleted: every series of the ModelDeployment goes (bounded cardinality).
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "priced")
    wait_for(
        lambda: (
            not any(
                s.labels.get("modeldeployment") == "priced" and s.labels.get("namespace") == namespace
                for family in text_string_to_metric_families(operator.metrics())
                for s in family.samples
            )
        ),
        timeout=30,
        what="the deleted ModelDeployment's series to go",
    )


# ---------------------------------------------------------------------------------------- OpenCost

OPENCOST = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "opencost" / "llm_cost_per_million_tokens.json").read_text()
)


class Exporter:
    """OpenCost's metrics endpoint as its exporter shapes it (tests/fixtures/opencost/), served on
    loopback and scraped by the test Prometheus through a file_sd target of its own."""

    def __init__(self) -> None:
        self.text = ""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, namespace: str, model: str, generation: float) -> None:
        """The fixture's series, moved to ``namespace`` and ``model``, with the price slogate reads
        (allocation, generation) set to ``generation``; the other series stay as decoys."""
        lines = []
        for line in OPENCOST["exposition"]:
            line = line.replace('namespace="ml"', f'namespace="{namespace}"')
            line = line.replace('model_name="llama-chat"', f'model_name="{model}"')
            if (
                f'model_name="{model}"' in line
                and 'cost_basis="allocation"' in line
                and 'phase="generation"' in line
            ):
                line = line.rsplit(" ", 1)[0] + f" {generation}"
            lines.append(line)
        self.text = "# TYPE llm_cost_per_million_tokens gauge\n" + "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_opencost_price_per_million_tokens(cluster, kube, namespace, operator):
    """Where OpenCost exports ``llm_cost_per_million_tokens`` for the pods' ``llm-d.ai/model``,
    status.cost uses it and says so; when its price is 0 the built-in estimate is back, saying why."""
    sd = Path(cluster.dir) / "file_sd"
    assert sd.is_dir(), "the local cluster's Prometheus reads file_sd targets from here (slogate.dev.cluster)"
    api = client.CustomObjectsApi(kube)
    core = client.CoreV1Api(kube)
    model = "opencost-llama"
    exporter = Exporter()
    target = sd / f"opencost-{namespace}.json"
    try:
        exporter.serve(namespace, model, 1.87)
        target.write_text(
            json.dumps([{"targets": [f"127.0.0.1:{exporter.server.server_port}"], "labels": {}}])
        )
        api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, mdep("oc", replicas=1, slo=SLO, rollout=ROLLOUT)
        )
        ready(kube, namespace, "oc")
        # The estimate first: nothing carries the label, so status says nothing of OpenCost.
        first = wait_for(
            lambda: (
                (c := get_md(kube, namespace, "oc")["status"].get("cost")) and c.get("perMillionTokens") and c
            ),
            timeout=60,
            what="the estimated status.cost.perMillionTokens",
        )
        assert first["source"] == "estimate" and "sourceDetail" not in first

        # OpenCost prices pods by the label; slogate's pods get it the way a cluster policy would add it.
        for p in core.list_namespaced_pod(namespace, label_selector="slogate.io/deployment=oc").items:
            core.patch_namespaced_pod(
                p.metadata.name, namespace, {"metadata": {"labels": {OPENCOST_MODEL_LABEL: model}}}
            )
        selector = (
            f'llm_cost_per_million_tokens{{namespace="{namespace}",model_name="{model}",'
            'cost_basis="allocation",phase="generation"}'
        )
        priced = wait_for(
            lambda: (
                (c := get_md(kube, namespace, "oc")["status"]["cost"]) and c.get("source") == "opencost" and c
            ),
            timeout=90,
            what="status.cost.source to be opencost",
            explain=lambda: str(get_md(kube, namespace, "oc")["status"].get("cost")),
        )
        assert priced["perMillionTokens"] == "1.87" and priced["sourceDetail"] == selector
        assert priced["perHour"] == "4.00"  # per hour stays the price table's
        md = {"namespace": namespace, "modeldeployment": "oc"}
        wait_for(
            lambda: (
                samples(operator, "slogate_cost_per_million_tokens", **md)
                == [({**md, "currency": "USD"}, 1.87)]
            ),
            timeout=30,
            what="the exported cost per million tokens to be OpenCost's",
        )

        # OpenCost exports 0 when it could not join cost to tokens: the estimate again, and why.
        exporter.serve(namespace, model, 0.0)
        back = wait_for(
            lambda: (
                (c := get_md(kube, namespace, "oc")["status"]["cost"]) and c.get("source") == "estimate" and c
            ),
            timeout=60,
            what="status.cost.source to be estimate again",
            explain=lambda: str(get_md(kube, namespace, "oc")["status"].get("cost")),
        )
        assert (
            back["sourceDetail"]
            == f"{selector} is not above 0: OpenCost saw no tokens or no cost for these pods"
        )
        assert float(back["perMillionTokens"]) > 0  # the simulators' tokens at the price table's 4.00/h
    finally:
        target.unlink(missing_ok=True)
        exporter.close()
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "oc")
