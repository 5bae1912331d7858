"""Benchmark: time from an SLO breach becoming visible in Prometheus to traffic back on stable.

For each run: a ModelDeployment with a canary held at weight 50 (a long timed pause keeps analysis
running), analysis every INTERVAL with failureLimit 1. Once the canary passes, TTFT 900 ms is injected
into the canary's simulators. The bench polls Prometheus with the operator's own TTFT query to find
the moment the breach is visible, and the API server for the moment the canary is rolled back
(status RolledBack and the canary Deployment at 0 replicas, i.e. no traffic on it). It reports each
run, the median and the worst, and their ratio to the bound "one interval plus one query".

    .venv/bin/python bench/rollback_latency.py [--runs 5] [--interval 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config
from prometheus_api_client import PrometheusConnect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slogate.api.v1alpha1 import ModelDeploymentSpec  # noqa: E402
from slogate.core.analysis import build_queries  # noqa: E402
from slogate.core.naming import revision_of  # noqa: E402
from slogate.dev.cli import set_simulators  # noqa: E402
from slogate.dev.cluster import LocalCluster, free_port, temporary_cluster  # noqa: E402

GROUP, VERSION, PLURAL = "slogate.io", "v1alpha1", "modeldeployments"


def spec(model: str, interval: int) -> dict:
    return {
        "model": {"source": model},
        "resources": {"gpu": {"count": 1}},
        "replicas": 1,
        "slo": {
            "window": "10s",
            "minRequests": 10,
            "objectives": [{"metric": "ttft", "percentile": 95, "max": "500ms"}],
        },
        "rollout": {
            "steps": [{"setWeight": 50}, {"pause": {"duration": "30m"}}],
            "analysis": {"interval": f"{interval}s", "initialDelay": "2s", "failureLimit": 1},
        },
    }


def wait(fn: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def one_run(cluster: LocalCluster, kube: Any, prom: PrometheusConnect, interval: int) -> tuple[float, float]:
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    api = client.CustomObjectsApi(kube)
    core.create_namespace({"metadata": {"name": ns}})
    wait(lambda: core.read_namespaced_service_account("default", ns), 30, "service account")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": spec("hf://org/base", interval),
    }
    api.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    wait(
        lambda: (
            api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "m").get("status", {}).get("phase")
            == "Ready"
        ),
        90,
        "Ready",
    )
    new_spec = spec("hf://org/candidate", interval)
    rev = revision_of(ModelDeploymentSpec.model_validate(new_spec))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "m", {"spec": {"model": new_spec["model"]}}
    )
    # Wait for a passing analysis of the candidate before injecting the fault.
    wait(
        lambda: (
            (
                api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "m")["status"].get(
                    "lastAnalysis"
                )
                or {}
            ).get("verdict")
            == "Pass"
        ),
        120,
        "a passing analysis",
    )
    query = build_queries(
        spec=ModelDeploymentSpec.model_validate(new_spec), namespace=ns, name="m", revision=rev
    )[0].promql
    set_simulators(cluster.dir, namespace=ns, selector=f"slogate.io/revision={rev}", change={"ttft_ms": 900})
    visible = None
    rolled = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and rolled is None:
        now = time.monotonic()
        if visible is None:
            t0 = time.monotonic()
            r = prom.custom_query(query)
            query_s = time.monotonic() - t0
            if r and r[0]["value"][1] not in ("NaN",) and float(r[0]["value"][1]) > 0.5:
                visible = now
        md = api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "m")
        if md["status"].get("phase") == "RolledBack":
            dep = apps.read_namespaced_deployment(f"m-{rev}", ns)
            if (dep.spec.replicas or 0) == 0:
                rolled = time.monotonic()
        time.sleep(0.1)
    core.delete_namespace(ns)
    if visible is None or rolled is None:
        raise SystemExit("the breach was not visible or not rolled back in time")
    return rolled - visible, query_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--interval", type=int, default=5, help="analysis interval in seconds")
    args = parser.parse_args()
    cluster = temporary_cluster()
    cluster.up()
    op = None
    try:
        op = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slogate",
                "run",
                f"--kubeconfig={cluster.dir / 'operator.kubeconfig'}",
                f"--metrics-port={free_port()}",
                f"--health-port={free_port()}",
                "--bind-address=127.0.0.1",
                f"--prometheus-url={cluster.prometheus_url}",
                "--resync-seconds=5",
            ],
            stdout=open(cluster.logs / "operator.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        kube = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        prom = PrometheusConnect(url=cluster.prometheus_url, disable_ssl=True)
        results = []
        for i in range(args.runs):
            latency, query_s = one_run(cluster, kube, prom, args.interval)
            results.append((latency, query_s))
            print(
                f"run {i + 1}: breach visible → traffic back on stable in {latency:.2f}s (query {query_s * 1000:.0f}ms)",
                flush=True,
            )
        lat = [r[0] for r in results]
        bound = args.interval + max(r[1] for r in results)
        print(f"\nanalysis interval {args.interval}s, failureLimit 1, {args.runs} runs")
        print(f"median {statistics.median(lat):.2f}s, worst {max(lat):.2f}s, best {min(lat):.2f}s")
        print(
            f"bound (one interval + one query) {bound:.2f}s; worst/bound = {max(lat) / bound:.2f}, "
            f"median/interval = {statistics.median(lat) / args.interval:.2f}"
        )
        return 0 if max(lat) <= bound else 1
    finally:
        if op:
            op.terminate()
            op.wait(timeout=20)
        cluster.down()


if __name__ == "__main__":
    raise SystemExit(main())
