"""Two replicas, exactly one active: the leader is killed mid-rollout, the standby takes over within
about 15 s, the rollout finishes, and the standby wrote nothing while it was standing by."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from kubernetes import client

from slogate.dev.cluster import LocalCluster, free_port
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, get_md, mdep, ready


def replica(cluster: LocalCluster, identity: str, log: Path) -> subprocess.Popen:
    health = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "slogate",
            "run",
            f"--kubeconfig={cluster.operator_kubeconfig}",
            f"--metrics-port={free_port()}",
            f"--health-port={health}",
            "--bind-address=127.0.0.1",
            f"--prometheus-url={cluster.prometheus_url}",
            "--resync-seconds=3",
            "--leader-elect",
            "--lease-namespace=default",
            f"--identity={identity}",
        ],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1).status == 200,
        timeout=60,
        what=f"{identity} /healthz",
    )
    return proc


def holder(kube) -> str | None:
    try:
        return (
            client.CoordinationV1Api(kube)
            .read_namespaced_lease("slogate-operator", "default")
            .spec.holder_identity
        )
    except client.ApiException:
        return None


@pytest.mark.local_only(
    reason="two operator replicas on the host with their Lease in `default`; on kind the chart's RBAC "
    "grants Leases only in the release namespace"
)
def test_the_standby_takes_over_mid_rollout_and_two_are_never_active(cluster, kube, namespace, tmp_path):
    procs = {
        "replica-a": replica(cluster, "replica-a", tmp_path / "a.log"),
        "replica-b": replica(cluster, "replica-b", tmp_path / "b.log"),
    }
    try:
        leader = wait_for(lambda: holder(kube), timeout=30, what="a leader")
        standby = next(i for i in procs if i != leader)
        api = client.CustomObjectsApi(kube)
        spec = mdep("ha", replicas=1, rollout={"steps": [{"setWeight": 50}, {"pause": {"duration": "15s"}}]})
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, spec)
        ready(kube, namespace, "ha")
        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "ha", {"spec": {"model": {"source": "hf://org/next-model"}}}
        )
        wait_for(
            lambda: get_md(kube, namespace, "ha")["status"].get("currentStep") == 1,
            timeout=60,
            what="the rollout's pause step",
        )

        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait()
        killed = time.time()
        wait_for(lambda: holder(kube) == standby, timeout=30, what="the standby to take over")
        takeover = time.time() - killed
        assert takeover <= 20, f"takeover took {takeover:.1f}s"

        md = wait_for(
            lambda: (
                (m := get_md(kube, namespace, "ha"))["status"].get("canaryRevision") is None
                and m["status"].get("phase") == "Ready"
                and m
            ),
            timeout=90,
            what="promotion by the new leader",
        )
        assert md["status"]["history"][-1]["outcome"] == "Promoted"
        print(f"standby took over {takeover:.1f}s after the leader's death")

        # The standby wrote nothing before it became leader (audit log, told apart by user agent).
        log_text = (tmp_path / f"{standby[-1]}.log").read_text()
        became = re.search(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\].*became leader", log_text)
        assert became, log_text[-2000:]
        became_at = datetime.strptime(became.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
        assert became_at >= killed - 1
        early = [
            w
            for w in cluster.audit_writes(cluster.operator_user)
            if w.get("userAgent", "").startswith(f"slogate/{standby}")
            and datetime.fromisoformat(w["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
            < became_at - 0.5
            and w["objectRef"].get("resource") != "leases"
        ]
        assert early == [], json.dumps(early[:3], indent=1)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=20)
        client.CoordinationV1Api(kube).delete_namespaced_lease("slogate-operator", "default")
