"""Traffic that follows the routing (issue 17): requests enter at each ModelDeployment's front door
(slogate.dev.frontdoor) and reach revisions by what the API server holds: the HTTPRoute's weights and
mirrors, the root Service's endpoints, a fallback's switched selector.

Two sides of the same requests are compared: the front door's ledger (traffic.json: who answered
each client, which copies were mirrored) and the simulators' own engine counters scraped by
Prometheus. Neither is the operator's status. Share checks use four binomial standard deviations
(``frontdoor.binomial_tolerance``): a correct router fails one about once in 16,000 runs; a router
that ignored weights (a third of the requests to the one canary pod of three) fails every time.

Fallback: ``test_rollout.test_fallback_activates_on_an_slo_breach_and_restores_after_the_hysteresis``
checks with the same ledger that the primary's clients reach the fallback tier's pods while it is
active and the primary's again after ``restoreAfter``.

Bad input follows Gateway API v1.6.3 (slogate.dev.router quotes the rules): weights summing to 0 → 500
(the model's choice where the spec is silent, like an all-invalid rule), a backendRef to a missing
Service → 500 (``BackendNotFound``), a RequestMirror to a Service without endpoints → no copy, the
client is served.
"""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from slogate.adapters.prometheus import PrometheusSource
from slogate.dev.cluster import LocalCluster
from slogate.dev.frontdoor import binomial_tolerance, read_ledger, set_traffic
from tests.integration.conftest import wait_for
from tests.integration.test_operator import describe, get_md, operator_for
from tests.integration.test_rollout import manifest, roll, start

GATEWAY = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-traffic.log")
    op.start()
    yield op
    op.stop()


def ledger(cluster: LocalCluster, key: str) -> dict:
    return read_ledger(cluster.dir).get(key) or {}


def delta(now: dict, before: dict, table: str) -> dict[str, int]:
    old = before.get(table) or {}
    out = {k: v - old.get(k, 0) for k, v in (now.get(table) or {}).items()}
    return {k: v for k, v in out.items() if v}


def engine_counts(cluster: LocalCluster, namespace: str) -> dict[str, int]:
    """Finished requests per revision in the simulators' own vLLM counters, as Prometheus has them."""
    source = PrometheusSource(cluster.prometheus_url)
    rows = source.query_vector(
        f'sum by (slogate_io_revision) (vllm:request_success_total{{namespace="{namespace}"}})'
    )
    return {labels.get("slogate_io_revision", ""): round(value) for labels, value in rows}


def settled(cluster: LocalCluster, key: str, namespace: str) -> tuple[dict, dict[str, int]]:
    """With the client stopped: the ledger once nothing is in flight, and Prometheus once its counts
    stop moving (two scrapes apart)."""
    wait_for(lambda: ledger(cluster, key).get("in_flight") == 0, timeout=30, what="requests in flight to end")
    time.sleep(1.5)
    last: dict[str, int] = {}

    def stable():
        nonlocal last
        now = engine_counts(cluster, namespace)
        same, last = now == last and bool(now), now
        return same

    wait_for(stable, timeout=30, interval=4.5, what="Prometheus counts to settle")
    return ledger(cluster, key), last


def route_weights(kube, namespace: str, name: str) -> dict[str, int]:
    route = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
    )
    return {b["name"]: b.get("weight", 1) for b in route["spec"]["rules"][0]["backendRefs"]}


def endpoints_ready(kube, namespace: str, service: str) -> int:
    """Ready endpoints in the Service's EndpointSlices (what the router reads)."""
    slices = client.DiscoveryV1Api(kube).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return sum(
        1
        for s in slices.items
        for e in s.endpoints or []
        if e.conditions is None or e.conditions.ready is not False
    )


def listening(cluster: LocalCluster, revision: str) -> int:
    """Simulators the bridge runs for the revision's pods (sims.json): the pods that really answer."""
    sims = json.loads((cluster.dir / "sims.json").read_text())
    return sum(1 for s in sims.values() if s["labels"].get("slogate.io/revision") == revision)


def test_a_canary_at_10_percent_receives_10_percent_of_the_requests(cluster, kube, namespace, operator):
    """HTTPRoute weights 90/10: the candidate's count in Prometheus equals what the ledger says it
    answered, and its share of a few hundred requests is within four binomial sigmas of 10%."""
    set_traffic(cluster.dir, change={"rps": 0.0}, namespace=namespace)  # quiet until the route is set
    doc = manifest("split", steps=[{"setWeight": 10}, {"pause": {}}], traffic=GATEWAY)
    del doc["spec"]["slo"]  # no analysis: the step holds until a person promotes
    stable = start(kube, namespace, doc)
    canary = roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    wait_for(
        lambda: (
            route_weights(kube, namespace, "split") == {"split-stable": 90, "split-canary": 10}
            and listening(cluster, canary) >= 1
            and listening(cluster, stable) >= 2
            and endpoints_ready(kube, namespace, "split-canary") >= 1
            and endpoints_ready(kube, namespace, "split-stable") >= 2
        ),
        timeout=90,
        what="the route at 90/10 with a Ready canary",
        explain=lambda: describe(kube, namespace, "split"),
    )
    key = f"{namespace}/split"
    set_traffic(cluster.dir, change={"rps": 40.0, "generation_tokens": 8}, namespace=namespace)
    wait_for(lambda: ledger(cluster, key).get("sent", 0) >= 480, timeout=60, what="480 requests sent")
    set_traffic(cluster.dir, change={"rps": 0.0}, namespace=namespace)
    seen, counts = settled(cluster, key, namespace)
    n = seen["sent"]
    assert seen["seen"] == {"ok": n}, {k: seen[k] for k in ("seen", "statuses", "reasons", "answered")}
    assert seen["answered"] == {stable: counts[stable], canary: counts[canary]}, (seen, counts)
    share = counts[canary] / n
    assert abs(share - 0.10) <= binomial_tolerance(n, 0.10), f"canary share {share:.3f} of {n}"
    assert seen["target"] == f"HTTPRoute {namespace}/split"


def test_at_1_percent_and_a_low_rate_min_requests_is_not_reached(cluster, kube, namespace, operator):
    """A 1% canary at 5 requests a second gets about one request a 20 s: the analysis cannot reach
    minRequests 20 and is Inconclusive, so the rollout pauses for a person instead of passing."""
    set_traffic(cluster.dir, change={"rps": 5.0}, namespace=namespace)
    doc = manifest("trickle", steps=[{"setWeight": 1}, {"pause": {"duration": "60s"}}], traffic=GATEWAY)
    doc["spec"]["rollout"]["analysis"] = {**doc["spec"]["rollout"]["analysis"], "inconclusiveLimit": 2}
    start(kube, namespace, doc)
    canary = roll(kube, namespace, doc, "hf://meta-llama/Llama-3.2-3B-Instruct")
    md = wait_for(
        lambda: (
            (m := get_md(kube, namespace, "trickle"))["status"].get("lastAnalysis", {}).get("verdict")
            == "Inconclusive"
            and m
        ),
        timeout=90,
        what="an Inconclusive analysis",
        explain=lambda: describe(kube, namespace, "trickle"),
    )
    assert route_weights(kube, namespace, "trickle") == {"trickle-stable": 99, "trickle-canary": 1}
    assert md["status"].get("canaryRevision") == canary
    text = str(md["status"]["lastAnalysis"])
    assert "< minRequests 20" in text or "no requests recorded; minRequests 20" in text, text
    answered = ledger(cluster, f"{namespace}/trickle").get("answered", {})
    assert answered.get(canary, 0) < 20, answered
    wait_for(
        lambda: get_md(kube, namespace, "trickle")["status"].get("phase") == "Paused",
        timeout=60,
        what="the rollout to pause on Inconclusive",
        explain=lambda: describe(kube, namespace, "trickle"),
    )


def test_a_shadow_gets_the_mirrored_copies_and_clients_only_stable_answers(
    cluster, kube, namespace, operator
):
    set_traffic(cluster.dir, change={"rps": 0.0}, namespace=namespace)
    doc = manifest("shadow", steps=[{"pause": {}}], strategy="shadow", traffic=GATEWAY)
    del doc["spec"]["slo"]
    stable = start(kube, namespace, doc)
    shadow = roll(kube, namespace, doc, "hf://microsoft/Phi-3-mini-4k-instruct")
    api = client.CustomObjectsApi(kube)

    def mirrored():
        route = api.get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", "shadow"
        )
        return any(f["type"] == "RequestMirror" for r in route["spec"]["rules"] for f in r.get("filters", []))

    wait_for(
        lambda: (
            mirrored()
            and endpoints_ready(kube, namespace, "shadow-canary") >= 2
            and listening(cluster, shadow) >= 2
        ),
        timeout=90,
        what="the mirror and a Ready shadow",
        explain=lambda: describe(kube, namespace, "shadow"),
    )
    key = f"{namespace}/shadow"
    set_traffic(
        cluster.dir, change={"rps": 20.0, "generation_tokens": 8, "streamed_share": 0.5}, namespace=namespace
    )
    wait_for(lambda: ledger(cluster, key).get("sent", 0) >= 150, timeout=60, what="150 requests sent")
    set_traffic(cluster.dir, change={"rps": 0.0}, namespace=namespace)
    seen, counts = settled(cluster, key, namespace)
    n = seen["sent"]
    assert seen["answered"] == {stable: n} and seen["seen"] == {"ok": n}, seen  # clients: stable only
    assert seen["mirrored"] == {shadow: n}, seen  # percent 100: one copy of every request
    assert counts[shadow] == n and counts[stable] == n, counts  # the shadow served every copy


def simulate(kube, namespace: str, name: str, replicas: int = 1) -> None:
    """A plain Deployment whose pods the bridge serves (``slogate.io/simulate``), and its Service."""
    labels = {"app": name, "slogate.io/simulate": "true"}
    client.AppsV1Api(kube).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {"sim.slogate.io/config": '{"model": "m"}'},
                    },
                    "spec": {
                        "containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.33.0"}],
                        "tolerations": [{"operator": "Exists"}],
                    },
                },
            },
        },
    )
    service(kube, namespace, name, {"app": name})


def service(kube, namespace: str, name: str, selector: dict[str, str]) -> None:
    client.CoreV1Api(kube).create_namespaced_service(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8000}]},
        },
    )


def httproute(kube, namespace: str, name: str, rule: dict) -> None:
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "gateway.networking.k8s.io",
        "v1",
        namespace,
        "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [rule]},
        },
    )


def test_bad_routes_answer_as_gateway_api_says(cluster, kube, namespace):
    """Routes the operator would never write, applied to the real API server (which accepts them all),
    each with a standalone client through the front door."""
    simulate(kube, namespace, "web")
    service(kube, namespace, "empty", {"app": "nothing-has-this"})
    httproute(kube, namespace, "zero", {"backendRefs": [{"name": "web", "port": 80, "weight": 0}]})
    httproute(kube, namespace, "missing", {"backendRefs": [{"name": "nope", "port": 80}]})
    httproute(
        kube,
        namespace,
        "mirror-empty",
        {
            "backendRefs": [{"name": "web", "port": 80}],
            "filters": [
                {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "empty", "port": 80}}}
            ],
        },
    )
    wait_for(
        lambda: (
            endpoints_ready(kube, namespace, "web") >= 1
            and any(
                s["labels"].get("app") == "web"
                for s in json.loads((cluster.dir / "sims.json").read_text()).values()
            )
        ),
        timeout=60,
        what="the web pod serving",
    )
    for route in ("zero", "missing", "mirror-empty"):
        set_traffic(
            cluster.dir,
            change={"rps": 10.0, "generation_tokens": 4},
            namespace=namespace,
            target=("HTTPRoute", route),
            model="m",
        )

    def enough():
        got = {r: ledger(cluster, f"{namespace}/HTTPRoute/{r}") for r in ("zero", "missing", "mirror-empty")}
        return (
            got
            if all(
                g.get("seen", {}).get("ok", 0) + g.get("statuses", {}).get("500", 0) >= 30
                for g in got.values()
            )
            else None
        )

    got = wait_for(enough, timeout=60, what="30 answers on each route")
    for route in ("zero", "missing", "mirror-empty"):
        set_traffic(
            cluster.dir, change={"rps": 0.0}, namespace=namespace, target=("HTTPRoute", route), model="m"
        )
    zero, missing, mirror = got["zero"], got["missing"], got["mirror-empty"]
    assert set(zero["statuses"]) == {"500"} and set(zero["reasons"]) == {"AllWeightsZero"}, zero
    assert zero["answered"] == {}
    assert set(missing["statuses"]) == {"500"} and set(missing["reasons"]) == {"BackendNotFound"}, missing
    assert missing["answered"] == {}
    # The mirror has nowhere to go: no copy, and the client is served by web.
    assert (
        mirror["mirrored"] == {} and set(mirror["seen"]) == {"ok"} and set(mirror["statuses"]) == {"200"}
    ), mirror
