"""The operator against the local control plane: children, scheduling on GPU-shaped nodes, status,
revisions, autoscaling, GPU preflight, deletion, and zero writes when idle or restarted.

The operator runs as a real process (`slogate run`) with its own identity (`cluster.operator_user`:
`slogate-operator` locally, the chart's ServiceAccount on kind, where the operator is the chart's
Deployment), so the API server's audit log counts exactly its writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from slogate.dev import kind
from slogate.dev.cluster import LocalCluster, free_port, temporary_cluster
from tests.integration.conftest import E2E, wait_for

GROUP, VERSION, PLURAL = "slogate.io", "v1alpha1", "modeldeployments"


class OperatorProcess:
    """`slogate run` as a subprocess against a LocalCluster."""

    def __init__(self, cluster: LocalCluster, log: Path) -> None:
        self.cluster = cluster
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()
        self.health_port = free_port()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        prom = self.cluster.prometheus_url if self.cluster.prometheus else "http://127.0.0.1:9"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slogate",
                "run",
                f"--kubeconfig={self.cluster.operator_kubeconfig}",
                f"--metrics-port={self.metrics_port}",
                f"--health-port={self.health_port}",
                "--bind-address=127.0.0.1",
                f"--prometheus-url={prom}",
                "--resync-seconds=3",
                f"--quality-endpoints=bridge:{self.cluster.dir}",
            ],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )

        def healthy() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return r.status == 200

        wait_for(healthy, timeout=60, what="the operator's /healthz")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Die without a graceful shutdown (SIGKILL)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:]) if self.log.exists() else ""

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return r.read().decode()


class InClusterOperator:
    """The chart's Deployment on kind (`make kind-up`), driven like `OperatorProcess`: start scales it to
    one pod and waits for /healthz through the API server's pod proxy, stop scales it to zero, kill
    deletes the pod without grace, metrics come through the pod proxy too."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.ns = kind.NAMESPACE

    def _pod(self) -> str | None:
        out = self.cluster.kubectl(
            "get", "pods", "-n", self.ns, "-l", f"app.kubernetes.io/instance={kind.RELEASE}", "-o", "json"
        )
        pods = [
            p
            for p in json.loads(out)["items"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        return pods[0]["metadata"]["name"] if len(pods) == 1 else None

    def _proxy(self, port: int, path: str) -> str:
        pod = self._pod()
        assert pod, "no single running operator pod"
        return self.cluster.kubectl(
            "get", "--raw", f"/api/v1/namespaces/{self.ns}/pods/{pod}:{port}/proxy{path}"
        )

    def _scale(self, replicas: int) -> None:
        self.cluster.kubectl("scale", f"deployment/{kind.RELEASE}", "-n", self.ns, f"--replicas={replicas}")

    def start(self) -> None:
        self._scale(1)
        wait_for(
            lambda: self._proxy(kind.HEALTH_PORT, "/healthz"), timeout=120, what="the operator pod's /healthz"
        )

    def stop(self) -> None:
        self._scale(0)
        wait_for(
            lambda: (
                not json.loads(
                    self.cluster.kubectl(
                        "get",
                        "pods",
                        "-n",
                        self.ns,
                        "-l",
                        f"app.kubernetes.io/instance={kind.RELEASE}",
                        "-o",
                        "json",
                    )
                )["items"]
            ),
            timeout=60,
            what="the operator pod to be gone",
        )

    def kill(self) -> None:
        pod = self._pod()
        assert pod, "no running operator pod to kill"
        self.cluster.kubectl(
            "delete", "pod", pod, "-n", self.ns, "--grace-period=0", "--force", "--wait=false"
        )

    def tail(self) -> str:
        return self.cluster.kubectl(
            "logs", f"deployment/{kind.RELEASE}", "-n", self.ns, "--tail=40", check=False
        )

    def metrics(self) -> str:
        return self._proxy(kind.METRICS_PORT, "/metrics")


def operator_for(cluster: LocalCluster, log: Path) -> OperatorProcess | InClusterOperator:
    """The operator under test: a host process, or on kind the chart's Deployment (`log` unused there)."""
    return InClusterOperator(cluster) if E2E.in_cluster_operator else OperatorProcess(cluster, log)


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster) -> Iterator[OperatorProcess | InClusterOperator]:
    op = operator_for(cluster, cluster.logs / "operator.log")
    op.start()
    yield op
    op.stop()


def mdep(name: str, **spec) -> dict:
    base = {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct", "servedName": "llama-chat"},
        "engine": {"kind": "vllm"},
        "resources": {"gpu": {"count": 1, "products": ["NVIDIA-H100-80GB-HBM3"], "minMemoryGiB": 80}},
        "replicas": 2,
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": base,
    }


def get_md(kube, ns: str, name: str) -> dict:
    return client.CustomObjectsApi(kube).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)


def condition(md: dict, ctype: str) -> dict | None:
    return next((c for c in (md.get("status") or {}).get("conditions", []) if c["type"] == ctype), None)


def ready(kube, ns: str, name: str, *, timeout: float = 90) -> dict:
    def check():
        md = get_md(kube, ns, name)
        st = md.get("status") or {}
        return (
            md
            if st.get("phase") == "Ready" and st.get("observedGeneration") == md["metadata"]["generation"]
            else None
        )

    return wait_for(check, timeout=timeout, what=f"{ns}/{name} to be Ready")


def events_for(kube, ns: str, name: str) -> list:
    return [
        e for e in client.CoreV1Api(kube).list_namespaced_event(ns).items if e.involved_object.name == name
    ]


def describe(kube, ns: str, name: str) -> str:
    """What an SRE would look at when a wait times out: the status, the Events and the pods."""
    st = (get_md(kube, ns, name).get("status") or {}).copy()
    st.pop("history", None)
    events = [f"  {e.type} {e.reason}: {e.message}" for e in events_for(kube, ns, name)][-15:]
    pods = [
        f"  {p.metadata.name} {p.status.phase} node={p.spec.node_name}"
        for p in client.CoreV1Api(kube).list_namespaced_pod(ns).items
    ]
    return "\n".join(
        [f"status: {json.dumps(st, sort_keys=True)}", "events (newest 15):", *events, "pods:", *pods]
    )


def has_events(kube, ns: str, name: str, *reasons: str, warning: bool = False) -> list:
    """Wait until the object has Events with all ``reasons`` (Events follow the status write)."""

    def check():
        events = [e for e in events_for(kube, ns, name) if not warning or e.type == "Warning"]
        return events if set(reasons) <= {e.reason for e in events} else None

    return wait_for(check, timeout=15, what=f"events {reasons} on {ns}/{name}")


def test_apply_creates_children_pods_land_on_matching_nodes_and_status_is_ready(
    cluster, kube, namespace, operator
):
    api = client.CustomObjectsApi(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, mdep("llama"))
    md = ready(kube, namespace, "llama")
    st = md["status"]
    rev = st["stableRevision"]
    assert len(rev) == 8 and st["ready"] == "2/2" and st["readyReplicas"] == 2
    assert {c["type"]: c["status"] for c in st["conditions"]}.items() >= {
        "Ready": "True",
        "Available": "True",
        "Degraded": "False",
        "InsufficientGPU": "False",
    }.items()
    assert all(c["observedGeneration"] == md["metadata"]["generation"] for c in st["conditions"])

    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    dep = apps.read_namespaced_deployment(f"llama-{rev}", namespace)
    c = dep.spec.template.spec.containers[0]
    assert c.args[0] == "meta-llama/Llama-3.1-8B-Instruct"  # vLLM 0.33's positional model
    assert "--served-model-name" in c.args and c.args[c.args.index("--served-model-name") + 1] == "llama-chat"
    assert c.args[c.args.index("--tensor-parallel-size") + 1] == "1"
    assert c.resources.limits["nvidia.com/gpu"] == "1"
    assert dep.metadata.owner_references[0].uid == md["metadata"]["uid"]
    for svc in ("llama", "llama-stable"):
        assert (
            core.read_namespaced_service(svc, namespace).metadata.owner_references[0].kind
            == "ModelDeployment"
        )
    assert client.PolicyV1Api(kube).read_namespaced_pod_disruption_budget("llama", namespace)
    # No autoscaling in this spec: no autoscaler of either kind.
    assert api.list_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects")["items"] == []
    assert client.AutoscalingV2Api(kube).list_namespaced_horizontal_pod_autoscaler(namespace).items == []
    pm = api.get_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "podmonitors", "llama")
    assert "slogate.io/revision" in pm["spec"]["podTargetLabels"]

    pods = core.list_namespaced_pod(namespace, label_selector=f"slogate.io/revision={rev}").items
    assert len(pods) == 2
    for pod in pods:
        node = core.read_node(pod.spec.node_name)
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"

    out = cluster.kubectl("get", "mdep", "llama", "-n", namespace)
    row = out.splitlines()[1].split()
    assert row[:4] == ["llama", "Ready", rev, "2/2"] or row[1:3] == ["Ready", rev], out
    assert "2/2" in out
    has_events(kube, namespace, "llama", "Deployed", "Ready")


def test_model_change_makes_a_new_revision_and_retires_the_old(kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    # No SLOs: the rollout follows its steps on readiness and time alone.
    spec = mdep("m1", replicas=1, rollout={"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]})
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, spec)
    old = ready(kube, namespace, "m1")["status"]["stableRevision"]
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "m1",
        {"spec": {"model": {"source": "hf://meta-llama/Llama-3.2-3B-Instruct"}}},
    )
    md = wait_for(
        lambda: (m := ready(kube, namespace, "m1")) and m["status"]["stableRevision"] != old and m,
        timeout=90,
        what="the new revision to become stable",
    )
    new = md["status"]["stableRevision"]
    apps = client.AppsV1Api(kube)
    wait_for(
        lambda: [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == [f"m1-{new}"],
        timeout=60,
        what="the old revision's Deployment to be retired",
    )
    wait_for(
        lambda: "Promoted" in {e.reason for e in events_for(kube, namespace, "m1")},
        timeout=15,
        what="Promoted",
    )


def test_autoscaling_change_keeps_the_revision_and_updates_the_scaledobject(kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    spec = mdep(
        "auto",
        autoscaling={
            "provider": "keda",
            "minReplicas": 1,
            "maxReplicas": 3,
            "metric": "queueDepth",
            "target": "10",
        },
    )
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, spec)
    rev = ready(kube, namespace, "auto")["status"]["stableRevision"]
    so = wait_for(
        lambda: api.get_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", "auto"),
        timeout=30,
        what="the ScaledObject",
    )
    assert so["spec"]["maxReplicaCount"] == 3
    assert so["spec"]["scaleTargetRef"]["name"] == f"auto-{rev}"
    assert "vllm:num_requests_waiting" in so["spec"]["triggers"][0]["metadata"]["query"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "auto", {"spec": {"autoscaling": {"maxReplicas": 6}}}
    )
    wait_for(
        lambda: (
            api.get_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", "auto")[
                "spec"
            ]["maxReplicaCount"]
            == 6
        ),
        timeout=30,
        what="maxReplicaCount 6",
    )
    assert ready(kube, namespace, "auto")["status"]["stableRevision"] == rev
    assert [d.metadata.name for d in client.AppsV1Api(kube).list_namespaced_deployment(namespace).items] == [
        f"auto-{rev}"
    ]


def test_a_shape_no_node_can_hold_is_reported_before_any_pod_exists(kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    spec = mdep("huge", resources={"gpu": {"count": 8, "products": ["NVIDIA-H100-80GB-HBM3"]}}, replicas=1)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, spec)
    cond = wait_for(
        lambda: (
            (c := condition(get_md(kube, namespace, "huge"), "InsufficientGPU"))
            and c["status"] == "True"
            and c
        ),
        timeout=30,
        what="InsufficientGPU",
    )
    assert cond["reason"] == "GPUShapeUnsatisfiable"
    assert "8 nvidia.com/gpu" in cond["message"] and "gpu-0" in cond["message"]
    assert get_md(kube, namespace, "huge")["status"]["phase"] == "Failed"
    assert client.AppsV1Api(kube).list_namespaced_deployment(namespace).items == []
    assert client.CoreV1Api(kube).list_namespaced_pod(namespace).items == []
    has_events(kube, namespace, "huge", "GPUShapeUnsatisfiable", warning=True)


def test_not_enough_free_gpus_now_is_a_condition_and_the_schedulers_reason(kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    spec = mdep("tight", resources={"gpu": {"count": 4}}, replicas=2)  # only gpu-0 has 4 GPUs
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, spec)

    def both():
        md = get_md(kube, namespace, "tight")
        gpu, deg = condition(md, "InsufficientGPU"), condition(md, "Degraded")
        return (
            md if gpu and gpu["status"] == "True" and deg and deg["reason"] == "PodsUnschedulable" else None
        )

    md = wait_for(both, timeout=60, what="InsufficientGPU and PodsUnschedulable")
    assert condition(md, "InsufficientGPU")["reason"] == "InsufficientGPU"
    assert "Insufficient nvidia.com/gpu" in condition(md, "Degraded")["message"]
    assert md["status"]["phase"] == "Degraded"
    has_events(kube, namespace, "tight", "InsufficientGPU", "PodsUnschedulable")


def test_delete_leaves_nothing(kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, mdep("gone", replicas=1))
    ready(kube, namespace, "gone")
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")
    apps, core, policy = client.AppsV1Api(kube), client.CoreV1Api(kube), client.PolicyV1Api(kube)

    def empty():
        return (
            not apps.list_namespaced_deployment(namespace).items
            and not [s for s in core.list_namespaced_service(namespace).items]
            and not policy.list_namespaced_pod_disruption_budget(namespace).items
            and not core.list_namespaced_pod(namespace).items
        )

    wait_for(empty, timeout=90, what="every child to be garbage-collected")


def test_idle_and_restart_make_zero_writes(cluster, kube, namespace, operator):
    api = client.CustomObjectsApi(kube)
    api.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        mdep(
            "idle",
            replicas=1,
            autoscaling={"provider": "keda", "minReplicas": 1, "maxReplicas": 2},
            # No SLO: the analysis interval only paces the input-drift checks, which then run every
            # resync through the idle period and right after the restart.
            rollout={"analysis": {"interval": "3s"}},
            # A short window so the baseline comes within the test (it needs a whole window served).
            observability={"inputDrift": {"window": "30s"}},
        ),
    )
    ready(kube, namespace, "idle")
    # The steady state includes the request-mix baseline, recorded once (one status write) after a
    # whole 30 s window served with inputDrift.minRequests in it (200; about 300 at 10 requests/s).
    wait_for(
        lambda: (c := condition(get_md(kube, namespace, "idle"), "InputDrift")) and c["status"] == "False",
        timeout=90,
        what="the request-mix baseline of the idle ModelDeployment",
    )
    time.sleep(4)  # let the last status write and events settle
    since = time.time()
    time.sleep(10)  # three resyncs of every object at --resync-seconds=3
    writes = [
        w
        for w in cluster.audit_writes(cluster.operator_user, since=since)
        if w["objectRef"].get("namespace") == namespace
    ]
    assert writes == [], json.dumps([(w["verb"], w["objectRef"]) for w in writes], indent=1)
    # Nor reads: passes read the watch caches. Discovery (optional APIs, refreshed every 60 s) is
    # the only GET an idle operator sends.
    reads = [
        (r["verb"], r["requestURI"])
        for r in cluster.audit_reads(cluster.operator_user, since=since)
        if r["requestURI"].split("?")[0].rstrip("/").count("/") > 3  # /apis/<group>/<version>: discovery
    ]
    assert reads == [], json.dumps(reads, indent=1)

    operator.stop()
    since = time.time()
    operator.start()
    time.sleep(10)
    writes = [
        w
        for w in cluster.audit_writes(cluster.operator_user, since=since)
        if w["objectRef"].get("resource") not in ("leases",)
    ]
    assert writes == [], json.dumps([(w["verb"], w["objectRef"]) for w in writes], indent=1)
    assert "slogate_reconcile_total" in operator.metrics()


# ------------------------------------------------------- a second control plane without optional CRDs
PROMETHEUSRULES_CRD = "prometheusrules.monitoring.coreos.com"


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Iterator[tuple[LocalCluster, OperatorProcess, client.ApiClient]]:
    """A second control plane without the optional CRDs (KEDA, prometheus-operator, Gateway API),
    Prometheus or simulators, with an operator of its own. Shared by the tests below, in order."""
    from kubernetes import config

    other = temporary_cluster(optional_crds=False, prometheus=False, bridge=False)
    other.up()
    op = OperatorProcess(other, tmp_path_factory.mktemp("bare") / "operator.log")
    try:
        op.start()
        yield other, op, config.new_client_from_config(config_file=str(other.kubeconfig))
    finally:
        op.stop()
        assert other.down() == []


@pytest.mark.local_only(reason="starts a second control plane of its own, without the optional CRDs")
def test_missing_keda_falls_back_to_an_hpa_and_says_so(bare):
    _, _, kube = bare
    spec = mdep("hpa", replicas=1, autoscaling={"provider": "keda", "minReplicas": 1, "maxReplicas": 4})
    client.CustomObjectsApi(kube).create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, spec)
    hpa = wait_for(
        lambda: client.AutoscalingV2Api(kube).read_namespaced_horizontal_pod_autoscaler("hpa", "default"),
        timeout=60,
        what="an HPA",
    )
    assert hpa.spec.max_replicas == 4
    md = wait_for(
        lambda: (
            (m := get_md(kube, "default", "hpa")).get("status", {}).get("autoscaler", "").startswith("hpa")
            and m
        ),
        timeout=30,
        what="the autoscaler note in status",
    )
    assert "KEDA" in md["status"]["autoscaler"]
    has_events(kube, "default", "hpa", "AutoscalerFallback")


@pytest.mark.local_only(reason="starts a second control plane of its own, without the optional CRDs")
def test_the_inference_pool_router_without_its_apis_is_degraded_and_says_what_to_install(bare):
    """Discovery, not assumption: with neither Gateway API nor the InferencePool CRD served, nothing
    of the router is applied, no apply fails, and Degraded says why (reason RouterUnavailable)."""
    _, op, kube = bare
    pools = {"traffic": {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "gw"}]}}}
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, mdep("pooled", replicas=1, rollout=pools)
    )
    md = wait_for(
        lambda: (
            (m := get_md(kube, "default", "pooled"))
            and (c := condition(m, "Degraded"))
            and c["reason"] == "RouterUnavailable"
            and m
        ),
        timeout=60,
        what="Degraded with reason RouterUnavailable",
    )
    degraded = condition(md, "Degraded")
    assert degraded["status"] == "True" and "not installed" in degraded["message"], degraded
    assert md["status"]["phase"] == "Degraded"
    has_events(kube, "default", "pooled", "RouterUnavailable")
    assert 'slogate_reconcile_errors_total{modeldeployment="pooled"' not in op.metrics()
    # The engine still runs: the pods are there, only the route is missing.
    wait_for(
        lambda: (
            client.AppsV1Api(kube)
            .list_namespaced_deployment("default", label_selector="slogate.io/deployment=pooled")
            .items
        ),
        timeout=30,
        what="the Deployment",
    )
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "pooled")


@pytest.mark.local_only(reason="starts a second control plane of its own, without the optional CRDs")
def test_a_prometheusrule_is_made_only_where_its_crd_is_served(bare):
    """The generated PrometheusRule exists only where its own CRD is served (not inferred from
    PodMonitor's), and appears once the CRD is installed."""
    from slogate.core.rules import prometheus_rule_name
    from slogate.dev import crds

    other, op, kube = bare
    custom = client.CustomObjectsApi(kube)
    slo = {
        "objectives": [
            {"metric": "errorRate", "maxPercent": 1},
            {"metric": "ttft", "percentile": 95, "max": "1s"},
        ]
    }
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, mdep("rules", replicas=1, slo=slo)
    )
    # Without the CRD the ModelDeployment still becomes Ready: the rule is simply not made, and
    # nothing failed trying.
    md = ready(kube, "default", "rules")
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    assert "slogate_reconcile_errors_total{" not in op.metrics(), op.metrics()
    assert "prometheusrules" not in other.kubectl("api-resources", "--api-group=monitoring.coreos.com")

    # Install the CRD; a restarted operator (or the next discovery refresh, every 60 s) makes the rule.
    other.apply([d for d in crds.optional_crds() if d["metadata"]["name"] == PROMETHEUSRULES_CRD])
    other.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{PROMETHEUSRULES_CRD}")
    op.stop()
    op.start()
    rule = wait_for(
        lambda: custom.get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", "default", "prometheusrules", prometheus_rule_name("rules")
        ),
        timeout=60,
        what="the PrometheusRule once its CRD is served",
    )
    assert rule["metadata"]["ownerReferences"][0]["name"] == "rules"
    assert [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r], rule["spec"]
