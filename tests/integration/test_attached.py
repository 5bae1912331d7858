"""The attached mode, which the kind path uses, against an API server we started ourselves.

A control plane only (etcd, API server, controller-manager, scheduler: what a kind node runs) is
started; a second harness then takes it through its kubeconfig alone, as it takes kind's, and
brings what only the host gives: kwok with the fake GPU nodes, the CRDs, Prometheus and the bridge.
Everything but docker, kind and the in-cluster operator is exercised here (docs/kind.md).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest
from kubernetes import client, config
from prometheus_api_client import PrometheusConnect

from slogate.dev.cli import set_simulators
from slogate.dev.cluster import Attachment, ClusterError, LocalCluster, temporary_cluster
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, OperatorProcess, mdep, ready


def _gpu_pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"slogate.io/simulate": "true", "slogate.io/revision": "abc"}},
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "image": "vllm/vllm-openai:v0.11.0",
                    "args": ["--served-model-name", "llama"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


@pytest.mark.local_only(reason="starts its own control plane to attach to (this is the kind path's proof)")
def test_a_harness_attached_through_a_kubeconfig_brings_gpu_nodes_prometheus_and_simulators(tmp_path):
    base = temporary_cluster(control_plane_only=True).up()
    attached: LocalCluster | None = None
    try:
        # Only a control plane: no nodes, no CRDs, no Prometheus, and the processes kind would run.
        assert set(base.state["processes"]) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        }
        assert json.loads(base.kubectl("get", "nodes", "-o", "json"))["items"] == []

        # Its admin kubeconfig is all the attached harness gets, copied somewhere else with a context
        # name of its own, as `kind get kubeconfig` gives one.
        given = tmp_path / "given.kubeconfig"
        cfg = base.kubectl("config", "view", "--raw", "--flatten")
        given.write_text(cfg.replace("slogate-local", "kind-attached"))
        attached = LocalCluster(
            Path(tempfile.mkdtemp(prefix="slogate-attached-")),
            attach=Attachment(
                kubeconfig=given,
                context="kind-attached",
                audit_log=base.audit_log,
                operator_user=base.operator_user,
                operator_kubeconfig=base.operator_kubeconfig,
            ),
        ).up()
        assert attached.server == base.server and attached.ca_file.read_bytes() == base.ca_file.read_bytes()
        assert set(attached.state["processes"]) == {"kwok", "prometheus", "bridge"}
        kube = config.new_client_from_config(config_file=str(attached.kubeconfig))
        core = client.CoreV1Api(kube)

        # The fake GPU nodes are there and Ready.
        nodes = {n.metadata.name: n for n in core.list_node().items}
        assert set(nodes) == set(attached.fake_node_names)
        assert nodes["gpu-0"].status.allocatable["nvidia.com/gpu"] == "4"
        for n in nodes.values():
            assert any(c.type == "Ready" and c.status == "True" for c in n.status.conditions), n.metadata.name

        # A GPU pod is scheduled onto a kwok node and runs; its simulator is scraped by the attached
        # harness's Prometheus with the pod's labels, and fault injection reaches it.
        core.create_namespaced_pod("default", _gpu_pod("gpu-pod"))
        pod = wait_for(
            lambda: (p := core.read_namespaced_pod("gpu-pod", "default")).status.phase == "Running" and p,
            timeout=60,
            what="the GPU pod to run",
        )
        assert pod.spec.node_name in {"gpu-0", "gpu-1", "gpu-2"}
        prom = PrometheusConnect(url=attached.prometheus_url, disable_ssl=True)
        wait_for(
            lambda: prom.custom_query('up{pod="gpu-pod",slogate_io_revision="abc"} == 1'),
            timeout=60,
            what="the simulator to be scraped",
        )
        assert set_simulators(
            attached.dir, namespace="default", pod="gpu-pod", change={"ttft_ms": 700.0}
        ) == ["default/gpu-pod"]

        # The operator, on the host with its own identity, reconciles on the attached cluster (our CRDs
        # were installed by the attached harness), and its writes are found in the given audit log.
        since = time.time()
        op = OperatorProcess(attached, tmp_path / "operator.log")
        op.start()
        try:
            client.CustomObjectsApi(kube).create_namespaced_custom_object(
                GROUP, VERSION, "default", PLURAL, mdep("attached", replicas=1)
            )
            ready(kube, "default", "attached")
        finally:
            op.stop()
        writes = attached.audit_writes(attached.operator_user, since=since)
        assert {"deployments", "modeldeployments"} <= {w["objectRef"].get("resource") for w in writes}

        # A harness loaded from its directory (`slogate dev down --dir` in another shell) is attached too.
        assert LocalCluster.load(attached.dir).attach == attached.attach
    finally:
        if attached is not None:
            assert attached.down() == []
        # Down removed the fake nodes it made; the attached control plane itself is still up.
        try:
            wait_for(
                lambda: json.loads(base.kubectl("get", "nodes", "-o", "json"))["items"] == [],
                timeout=30,
                what="the fake nodes to be deleted",
            )
        finally:
            assert base.down() == []


def test_attaching_to_nothing_fails_with_the_reason(tmp_path):
    c = LocalCluster(tmp_path / "h", attach=Attachment(kubeconfig=tmp_path / "missing.kubeconfig"))
    with pytest.raises(ClusterError, match=r"missing\.kubeconfig does not exist"):
        c.up()
    assert c.state["processes"] == {}
