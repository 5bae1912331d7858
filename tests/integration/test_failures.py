"""A pass that the API server refuses reaches status and backs off (issue 14), on the local cluster.

A ResourceQuota of one Service makes the API server refuse the ModelDeployment's second Service
with its own message ("exceeded quota"). The operator must say so in the ModelDeployment's status
and an Event, retry with a per-object exponential backoff (not a fixed period, not a hot loop), and
recover once the quota is gone.
"""

from __future__ import annotations

import re
import time

import pytest
from kubernetes import client

from slogate.dev.cluster import LocalCluster
from tests.integration.conftest import wait_for
from tests.integration.test_operator import (
    GROUP,
    PLURAL,
    VERSION,
    describe,
    events_for,
    get_md,
    operator_for,
    ready,
)


@pytest.fixture(scope="module")
def operator(cluster: LocalCluster):
    op = operator_for(cluster, cluster.logs / "operator-failures.log")
    op.start()
    yield op
    op.stop()


def failed_passes(operator) -> float:
    total = 0.0
    for line in operator.metrics().splitlines():
        if m := re.match(r"slogate_reconcile_errors_total\{[^}]*\} ([0-9.e+]+)$", line):
            total += float(m.group(1))
    return total


def test_a_refused_apply_reaches_status_backs_off_and_recovers(cluster, kube, namespace, operator):
    core = client.CoreV1Api(kube)
    core.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="one-service"), spec={"hard": {"services": "1"}}
        ),
    )
    doc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "quota"},
        "spec": {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "replicas": 1},
    }
    api = client.CustomObjectsApi(kube)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)

    def refused():
        st = get_md(kube, namespace, "quota").get("status") or {}
        cond = next((c for c in st.get("conditions") or [] if c["type"] == "Ready"), None)
        return cond if cond and cond["reason"] == "ReconcileFailed" else None

    cond = wait_for(
        refused, timeout=60, what="the refusal in status", explain=lambda: describe(kube, namespace, "quota")
    )
    assert cond["status"] == "False" and "exceeded quota" in cond["message"], cond  # the server's own words
    assert get_md(kube, namespace, "quota")["status"]["message"] == cond["message"]
    assert any(
        e.reason == "ReconcileFailed" and e.type == "Warning" for e in events_for(kube, namespace, "quota")
    )
    # Exponential backoff: many quick retries at first, then ever fewer; never a loop.
    start = failed_passes(operator)
    time.sleep(20)
    first = failed_passes(operator) - start
    time.sleep(20)
    second = failed_passes(operator) - start - first
    assert 3 <= first <= 30, (first, second)
    assert second < first and second <= 3, (first, second)

    # The quota goes; the next pass (here prompted by a change, as a person's fix would) recovers.
    core.delete_namespaced_resource_quota("one-service", namespace)
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "quota",
        {"metadata": {"annotations": {"example.com/touched": "1"}}},
    )
    md = ready(kube, namespace, "quota")
    cond = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "True", cond
