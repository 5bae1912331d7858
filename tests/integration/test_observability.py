"""Observability children follow the cluster's APIs: the generated PrometheusRule exists only where
prometheus-operator's PrometheusRule CRD is served, and appears once it is installed.

Uses its own control plane without the optional CRDs (the session cluster has them all).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client, config

from slogate.core.rules import prometheus_rule_name
from slogate.dev import crds
from slogate.dev.cluster import temporary_cluster
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, OperatorProcess, mdep, ready

SLO = {
    "objectives": [
        {"metric": "errorRate", "maxPercent": 1},
        {"metric": "ttft", "percentile": 95, "max": "1s"},
    ]
}


def _rule_crd() -> dict:
    return next(
        d for d in crds.optional_crds() if d["metadata"]["name"] == "prometheusrules.monitoring.coreos.com"
    )


@pytest.mark.local_only(reason="starts a second control plane of its own, without the optional CRDs")
def test_a_prometheusrule_is_made_only_where_its_crd_is_served(tmp_path: Path):
    bare = temporary_cluster(optional_crds=False, prometheus=False, bridge=False)
    bare.up()
    op = OperatorProcess(bare, tmp_path / "operator.log")
    try:
        op.start()
        kube = config.new_client_from_config(config_file=str(bare.kubeconfig))
        custom = client.CustomObjectsApi(kube)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, mdep("rules", replicas=1, slo=SLO)
        )
        # Without the CRD the ModelDeployment still becomes Ready: the rule is simply not made, and
        # nothing failed trying.
        md = ready(kube, "default", "rules")
        assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
        assert "slogate_reconcile_errors_total{" not in op.metrics(), op.metrics()
        assert "prometheusrules" not in bare.kubectl("api-resources", "--api-group=monitoring.coreos.com")

        # Install the CRD; a restarted operator (or the next discovery refresh, every 60 s) makes the rule.
        bare.apply([_rule_crd()])
        bare.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/prometheusrules.monitoring.coreos.com",
        )
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
        alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
        assert alerts, rule["spec"]
    finally:
        op.stop()
        assert bare.down() == []
