"""The chart rendered with the kind values is the Deployment the kind fixtures drive
(`InClusterOperator`): its name, pod labels, ServiceAccount, ports, image, Prometheus URL and node
placement are the constants of slogate.dev.kind. Rendered by the pinned helm; no cluster needed."""

from __future__ import annotations

from slogate.dev import kind
from tests.integration.test_chart import docs_of, render, workload


def test_the_kind_values_render_the_deployment_the_kind_fixtures_expect(helm):
    docs = docs_of(
        render(helm, kind.helm_values(host_ip="172.18.0.1"), release=kind.RELEASE, namespace=kind.NAMESPACE)
    )
    dep = workload(docs)
    assert dep["metadata"]["name"] == kind.RELEASE and dep["metadata"]["namespace"] == kind.NAMESPACE
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == kind.RELEASE
    spec = pod["spec"]
    assert spec["serviceAccountName"] == kind.SERVICE_ACCOUNT
    assert spec["nodeSelector"] == {kind.CONTROL_PLANE: ""}
    assert {"key": kind.CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    (c,) = spec["containers"]
    assert c["image"] == kind.IMAGE and c["imagePullPolicy"] == "Never"
    assert {p["containerPort"] for p in c["ports"]} == {kind.METRICS_PORT, kind.HEALTH_PORT}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["SLOGATE_PROMETHEUS_URL"] == f"http://172.18.0.1:{kind.PROMETHEUS_PORT}"
    assert env["SLOGATE_RESYNC_SECONDS"] == "3"
    assert env.get("SLOGATE_LEADER_ELECTION") in (None, "false")
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert (
        f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}" == kind.OPERATOR_USER
    )
