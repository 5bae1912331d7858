"""The local control plane behaves like a real cluster: scheduling on GPU-shaped kwok nodes, CEL
validation of our CRD, garbage collection, Prometheus scraping simulators with pod labels."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from slogate.api.validation import validate_document
from slogate.dev.cluster import LocalCluster, _alive, temporary_cluster
from tests.integration.conftest import wait_for

SIM_CONFIG = "sim.slogate.io/config"


def _pod(name: str, *, gpus: int = 0, resource: str = "nvidia.com/gpu", labels: dict | None = None) -> dict:
    limits = {resource: str(gpus)} if gpus else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        # A bare pod has no Service in front, so no front-door client: its simulator's own fixed-rate
        # load is what Prometheus scrapes.
        "metadata": {"name": name, "labels": labels or {}, "annotations": {SIM_CONFIG: '{"rps": 10}'}},
        "spec": {
            "containers": [
                {"name": "engine", "image": "vllm/vllm-openai:v0.33.0", "resources": {"limits": limits}}
            ],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def _mdep(name: str, **spec_overrides) -> dict:
    spec = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "resources": {"gpu": {"count": 1}}}
    spec.update(spec_overrides)
    return {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_nodes_are_gpu_shaped(cluster: LocalCluster, kube):
    nodes = {n.metadata.name: n for n in client.CoreV1Api(kube).list_node().items}
    assert {"gpu-0", "gpu-1", "gpu-2", "mig-0", "cpu-0"} <= set(nodes)
    h100 = nodes["gpu-0"]
    assert h100.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert h100.metadata.labels["nvidia.com/gpu.count"] == "4"
    assert h100.status.allocatable["nvidia.com/gpu"] == "4"
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in h100.spec.taints)
    assert nodes["mig-0"].status.allocatable["nvidia.com/mig-3g.40gb"] == "2"
    assert "nvidia.com/gpu" not in (nodes["cpu-0"].status.allocatable or {})
    for n in nodes.values():
        assert any(c.type == "Ready" and c.status == "True" for c in n.status.conditions), n.metadata.name
    out = cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product")
    assert "NVIDIA-A100-SXM4-80GB" in out and "gpu-2" in out


def test_two_gpu_pod_lands_on_a_big_enough_node_and_becomes_ready(kube, namespace):
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, _pod("two-gpus", gpus=2))

    def ready():
        p = core.read_namespaced_pod("two-gpus", namespace)
        ok = any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
        return p if ok else None

    pod = wait_for(ready, timeout=60, what="the 2-GPU pod to be Ready")
    node = core.read_node(pod.spec.node_name)
    assert int(node.status.allocatable["nvidia.com/gpu"]) >= 2
    assert pod.status.phase == "Running"


def test_mig_pod_lands_on_the_mig_node(kube, namespace):
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, _pod("mig", gpus=1, resource="nvidia.com/mig-3g.40gb"))
    pod = wait_for(
        lambda: core.read_namespaced_pod("mig", namespace).spec.node_name, timeout=60, what="binding"
    )
    assert pod == "mig-0"


def test_too_many_gpus_stays_pending_unschedulable(kube, namespace):
    core = client.CoreV1Api(kube)
    core.create_namespaced_pod(namespace, _pod("greedy", gpus=16))

    def unschedulable():
        p = core.read_namespaced_pod("greedy", namespace)
        return next(
            (
                c
                for c in (p.status.conditions or [])
                if c.type == "PodScheduled" and c.reason == "Unschedulable"
            ),
            None,
        )

    cond = wait_for(unschedulable, timeout=60, what="PodScheduled=False/Unschedulable")
    assert "Insufficient nvidia.com/gpu" in cond.message
    assert core.read_namespaced_pod("greedy", namespace).status.phase == "Pending"


@pytest.mark.parametrize(
    "spec, path, message",
    [
        (
            {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}},
            "spec.autoscaling.maxReplicas",
            "maxReplicas must be greater than or equal to minReplicas",
        ),
        (
            {"model": {"source": "ftp://example/model"}},
            "spec.model.source",
            "source must be a URI with scheme",
        ),
        (
            {"resources": {"gpu": {"count": 2, "resource": "nvidia.com/mig-3g.40gb"}}},
            "spec.resources.gpu.count",
            "a MIG slice serves a replica from exactly one slice",
        ),
        ({"rollout": {"strategy": "shadow"}}, "spec.rollout.strategy", "requires traffic.router gatewayAPI"),
        (
            {"rollout": {"steps": [{"setWeight": 50}, {"setWeight": 10}]}},
            "spec.rollout.steps",
            "setWeight must increase",
        ),
        (
            {"slo": {"objectives": [{"metric": "ttft", "percentile": 100, "max": "1s"}]}},
            "spec.slo.objectives[0].percentile",
            "percentile must lie strictly between 0 and 100",
        ),
        (
            {"engine": {"tensorParallelSize": 3}, "resources": {"gpu": {"count": 4}}},
            "spec.engine.tensorParallelSize",
            "must divide resources.gpu.count",
        ),
        (
            {"fallback": {"targets": [{"modelDeployment": "self-ref"}]}},
            "spec.fallback.targets",
            "cannot be the ModelDeployment itself",
        ),
        (
            {"slo": {"window": "0s", "objectives": [{"metric": "errorRate", "maxPercent": 1}]}},
            "spec.slo.window",
            "window must be longer than 0s",
        ),
        (
            {"rollout": {"analysis": {"interval": "500ms"}}},
            "spec.rollout.analysis.interval",
            "interval must be at least 1s",
        ),
        (
            {"rollout": {"steps": [{"pause": {"duration": "1m"}}]}},
            "spec.rollout.steps",
            "strategy canary needs a setWeight step",
        ),
    ],
    ids=[
        "max-lt-min",
        "scheme",
        "mig-count",
        "shadow-router",
        "weights",
        "percentile",
        "tp-divides",
        "fallback-self",
        "zero-window",
        "sub-second-interval",
        "canary-without-weight",
    ],
)
def test_api_server_and_offline_validation_agree(kube, namespace, spec, path, message):
    doc = _mdep("self-ref", **spec)
    offline = validate_document(doc)
    assert [(p.path, message in p.message) for p in offline] == [(path, True)], offline
    api = client.CustomObjectsApi(kube)
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object("slogate.io", "v1alpha1", namespace, "modeldeployments", doc)
    assert err.value.status == 422
    body = json.loads(err.value.body)
    causes = body["details"]["causes"]
    assert any(c["field"] == path and message in c["message"] for c in causes), causes


def test_valid_modeldeployment_is_accepted_and_printer_columns_exist(cluster: LocalCluster, kube, namespace):
    api = client.CustomObjectsApi(kube)
    api.create_namespaced_custom_object("slogate.io", "v1alpha1", namespace, "modeldeployments", _mdep("ok"))
    out = cluster.kubectl("get", "mdep", "-n", namespace)
    header = out.splitlines()[0].split()
    assert header[:8] == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "READY", "SLO", "AGE"]
    assert "ok" in out
    assert "modeldeployments.slogate.io" in cluster.kubectl(
        "get", "crd", "-l", "app.kubernetes.io/name=slogate"
    )


def test_every_example_is_accepted_by_the_api_server(kube, namespace):
    """The examples pass the CRD's schema and CEL rules in the real API server (server-side dry run),
    not only `slogate validate`."""
    import yaml

    from slogate.dev.crds import REPO

    api = client.CustomObjectsApi(kube)
    docs = [
        (path.name, doc)
        for path in sorted((REPO / "examples").rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "ModelDeployment"
    ]
    assert len(docs) >= 9, [name for name, _ in docs]
    for name, doc in docs:
        doc["metadata"].pop("namespace", None)
        try:
            api.create_namespaced_custom_object(
                "slogate.io", "v1alpha1", namespace, "modeldeployments", doc, dry_run="All"
            )
        except ApiException as exc:
            raise AssertionError(f"{name}: {exc.body}") from None


def test_deleting_an_owner_garbage_collects_its_children(kube, namespace):
    api = client.CustomObjectsApi(kube)
    core = client.CoreV1Api(kube)
    owner = api.create_namespaced_custom_object(
        "slogate.io", "v1alpha1", namespace, "modeldeployments", _mdep("owner")
    )
    ref = {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    core.create_namespaced_service(
        namespace,
        {"metadata": {"name": "child", "ownerReferences": [ref]}, "spec": {"ports": [{"port": 80}]}},
    )
    api.delete_namespaced_custom_object("slogate.io", "v1alpha1", namespace, "modeldeployments", "owner")

    def gone():
        names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
        svcs = [s.metadata.name for s in core.list_namespaced_service(namespace).items]
        return "child" not in names and "child" not in svcs

    wait_for(gone, timeout=60, what="the garbage collector to delete the children")


def test_deployment_controller_and_replicasets_work(kube, namespace):
    apps = client.AppsV1Api(kube)
    pod = _pod("x", gpus=1)
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod["spec"]},
            },
        },
    )
    wait_for(
        lambda: (apps.read_namespaced_deployment("web", namespace).status.ready_replicas or 0) == 2,
        timeout=90,
        what="deployment to have 2 ready replicas",
    )


def test_simulator_is_scraped_with_the_pods_labels(cluster: LocalCluster, kube, namespace):
    from prometheus_api_client import PrometheusConnect

    core = client.CoreV1Api(kube)
    labels = {"slogate.io/deployment": "llama", "slogate.io/revision": "abc123", "slogate.io/track": "stable"}
    core.create_namespaced_pod(namespace, _pod("llama-sim", gpus=1, labels=labels))
    prom = PrometheusConnect(url=cluster.prometheus_url, disable_ssl=True)
    query = (
        f"sum by (namespace, pod, slogate_io_revision, slogate_io_track) "
        f'(vllm:request_success_total{{namespace="{namespace}"}})'
    )

    def scraped():
        result = prom.custom_query(query)
        return result if result and float(result[0]["value"][1]) > 0 else None

    result = wait_for(scraped, timeout=60, what="Prometheus to scrape the pod's simulator")
    metric = result[0]["metric"]
    assert metric == {
        "namespace": namespace,
        "pod": "llama-sim",
        "slogate_io_revision": "abc123",
        "slogate_io_track": "stable",
    }

    def p95_ttft():
        r = prom.custom_query(
            f'histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{namespace="{namespace}"}}[6s])))'
        )
        return float(r[0]["value"][1]) if r and r[0]["value"][1] != "NaN" else None

    baseline = wait_for(p95_ttft, timeout=30, what="a TTFT p95 from the default simulator")
    assert 0.05 < baseline < 0.5, baseline  # default simulator TTFT is ~120ms

    # Fault injection through the CLI reaches this pod's simulator.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "slogate",
            "dev",
            "--dir",
            str(cluster.dir),
            "sim",
            "set",
            "-n",
            namespace,
            "-l",
            "slogate.io/revision=abc123",
            "--ttft-ms",
            "900",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"{namespace}/llama-sim" in out.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "slogate", "dev", "--dir", str(cluster.dir), "sim", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = next(line for line in listing.splitlines() if f"{namespace}/llama-sim" in line)
    assert "900ms" in row

    def slow():
        r = prom.custom_query(
            f'histogram_quantile(0.5, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{namespace="{namespace}"}}[6s])))'
        )
        return r and float(r[0]["value"][1]) > 0.5

    wait_for(slow, timeout=60, what="the injected TTFT to show in Prometheus")

    # The pod goes, so do its simulator and its target.
    core.delete_namespaced_pod("llama-sim", namespace, grace_period_seconds=0)
    wait_for(
        lambda: f"{namespace}/llama-sim" not in json.loads((cluster.dir / "sims.json").read_text()),
        timeout=60,
        what="the bridge to drop the simulator",
    )


@pytest.mark.local_only(reason="starts a second control plane of its own beside the session's")
def test_second_cluster_without_optional_crds_runs_beside_and_down_leaves_nothing(cluster: LocalCluster):
    other = temporary_cluster(optional_crds=False, prometheus=False, bridge=False)
    other.up()
    try:
        assert other.state["ports"]["apiserver"] != cluster.state["ports"]["apiserver"]
        resources = other.kubectl("api-resources", "-o", "name")
        assert "modeldeployments.slogate.io" in resources
        assert "httproutes.gateway.networking.k8s.io" not in resources
        assert "scaledobjects.keda.sh" not in resources
        assert "httproutes.gateway.networking.k8s.io" in cluster.kubectl("api-resources", "-o", "name")
    finally:
        pids = dict(other.state["processes"])
        left = other.down()
    assert left == []
    time.sleep(0.5)
    assert [name for name, pid in pids.items() if _alive(pid)] == []
    # The CLI agrees: status on a stopped cluster reports it is not running.
    res = subprocess.run(
        [sys.executable, "-m", "slogate", "dev", "--dir", str(other.dir), "status"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert f"export KUBECONFIG={other.kubeconfig}" in other.env_file.read_text()
