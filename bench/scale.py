"""Benchmark: the operator at N ModelDeployments on the local control plane.

For each N (and each shape: CPU-only, or one GPU each on kwok GPU nodes), on a fresh cluster sized
for N (``NodeSet.cpu_nodes`` / ``gpu_nodes`` and ``pods_per_node``):

1. reaction latency at 1: one ModelDeployment ``probe``; its ``replicas`` changed 1 → 2 until its
   status shows 2 Ready (and back), three times;
2. N ModelDeployments created (8 client threads); seconds from the first create to all Ready;
3. at rest (20 s settle, then a 60 s window): API requests per second the API server served (its
   ``apiserver_request_total``) with the operator, against the same window with the operator
   stopped; the operator's own requests from the audit log; operator CPU; RSS per ModelDeployment
   (RSS at N minus RSS with none, over N);
4. reaction latency at N, as in 1, and the breach reaction at 1 and at N: a ModelDeployment
   ``breach`` with a TTFT objective rolls out a candidate held at weight 50; once an analysis passed,
   the candidate's simulators are set to 900 ms TTFT (against 500 ms p95) and the bench times
   until traffic is back on stable (status ``RolledBack``, the candidate Deployment at 0). Only
   the probes' pods get simulators (``LocalCluster.bridge_selector``); the N others are plain
   kwok pods;
5. start-up with N existing: a new operator process until it has reconciled N + 1 objects, and the
   429s the API server answered meanwhile.

``--floor`` measures the control plane alone instead: on the same cluster, no operator, the bench
server-side-applies the children ``build_desired`` gives for the same N ModelDeployments (owner
references dropped, the capabilities the local cluster has) with the operator's own client from 16
threads (``FLOOR_THREADS``, four times the operator's workers), and times until every
Deployment has a Ready replica; once with every child kind, once with the Deployments only. No
operator can make its ModelDeployments Ready faster than the cluster makes these objects Ready.

Prints one line per figure and a JSON summary (``--json FILE``). Figures go to bench/README.md.

    .venv/bin/python bench/scale.py --n 100 --n 1000 [--gpu] [--json out.json]
    .venv/bin/python bench/scale.py --floor --n 1000 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

import rollback_latency  # noqa: E402  (bench/ is the script's own directory)

from slogate.adapters.kube import Kube  # noqa: E402
from slogate.api.v1alpha1 import ModelDeploymentSpec  # noqa: E402
from slogate.core.desired import build_desired  # noqa: E402
from slogate.core.naming import Capabilities, Owner, revision_of  # noqa: E402
from slogate.dev.cli import set_simulators  # noqa: E402
from slogate.dev.cluster import LocalCluster, free_port, temporary_cluster  # noqa: E402
from slogate.dev.frontdoor import set_traffic  # noqa: E402
from slogate.dev.nodes import H100, NodeSet  # noqa: E402

GROUP, VERSION, PLURAL = "slogate.io", "v1alpha1", "modeldeployments"
NS = "scale"
TICK = os.sysconf("SC_CLK_TCK")


def md(name: str, gpu: bool, replicas: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "replicas": replicas,
    }
    if gpu:
        spec["resources"] = {"gpu": {"count": 1}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def breach_spec(model: str, gpu: bool) -> dict[str, Any]:
    """rollback_latency's ModelDeployment (a TTFT objective, a canary held at 50, analysis every 5 s,
    failureLimit 1), with or without its GPU."""
    spec = rollback_latency.spec(model, 5)
    if not gpu:
        del spec["resources"]
    return spec


PROBES = "slogate.io/deployment in (probe,breach)"


class Watcher:
    """The bench's own view of every ModelDeployment's status, from one watch (no polling LIST)."""

    def __init__(self, kube: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(kube)
        self.status: dict[str, dict[str, Any]] = {}
        self.generation: dict[str, int] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        rv = None
        while True:
            try:
                stream = watch.Watch().stream(
                    self.api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    NS,
                    PLURAL,
                    resource_version=rv,
                    timeout_seconds=300,
                )
                for ev in stream:
                    obj = ev["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    with self.lock:
                        if ev["type"] == "DELETED":
                            self.status.pop(name, None)
                        else:
                            self.status[name] = obj.get("status") or {}
                            self.generation[name] = obj["metadata"].get("generation", 0)
            except Exception:
                rv = None
                time.sleep(0.5)

    def ready(self, name: str, replicas: int | None = None) -> bool:
        with self.lock:
            st = self.status.get(name) or {}
            gen = self.generation.get(name)
        return (
            st.get("phase") == "Ready"
            and st.get("observedGeneration") == gen
            and (replicas is None or st.get("readyReplicas") == replicas)
        )

    def count_ready(self) -> int:
        with self.lock:
            return sum(
                1
                for n, st in self.status.items()
                # breach stays RolledBack after each breach run, by design
                if n != "breach"
                and st.get("phase") == "Ready"
                and st.get("observedGeneration") == self.generation.get(n)
            )


def wait(fn: Callable[[], bool], timeout: float, what: str, interval: float = 0.01) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if fn():
            return time.monotonic() - start
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


class Operator:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slogate",
                "run",
                f"--kubeconfig={self.cluster.operator_kubeconfig}",
                f"--metrics-port={self.metrics_port}",
                f"--health-port={free_port()}",
                "--bind-address=127.0.0.1",
                f"--prometheus-url={self.cluster.prometheus_url}",
            ],
            stdout=open(self.cluster.logs / "operator.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait(lambda: self.metric("slogate_reconcile_total") is not None, 60, "the operator's /metrics", 0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def metric(self, name: str, labels: str = "") -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None
        total, seen = 0.0, False
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in "{ ") and labels in line:
                total += float(line.rsplit(" ", 1)[1])
                seen = True
        return total if seen else 0.0

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def apiserver_requests(cluster: LocalCluster) -> tuple[float, float]:
    """(all requests, 429 answers) the API server has served, from its own metrics."""
    total = throttled = 0.0
    for line in cluster.kubectl("get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{"):
            v = float(line.rsplit(" ", 1)[1])
            total += v
            if 'code="429"' in line:
                throttled += v
    return total, throttled


def reaction(kube: client.ApiClient, w: Watcher, name: str, runs: int = 3) -> list[float]:
    """Seconds from a replicas change 1 → 2 to the status showing 2 Ready; reset to 1 between runs."""
    api = client.CustomObjectsApi(kube)
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, {"spec": {"replicas": 2}})
        wait(lambda: w.ready(name, 2), 600, f"{name} at 2 Ready")
        out.append(time.monotonic() - t0)
        api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, {"spec": {"replicas": 1}})
        wait(lambda: w.ready(name, 1), 600, f"{name} back at 1 Ready")
        time.sleep(1)
    return out


def breach_reaction(cluster: LocalCluster, kube: client.ApiClient, w: Watcher, gpu: bool, k: int) -> float:
    """Seconds from 900 ms TTFT injected into a passing canary to traffic back on stable."""
    api, apps = client.CustomObjectsApi(kube), client.AppsV1Api(kube)
    new = breach_spec(f"hf://org/candidate-{k}", gpu)
    rev = revision_of(ModelDeploymentSpec.model_validate(new))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "breach", {"spec": {"model": new["model"]}}
    )

    def passed() -> bool:
        with w.lock:
            st = w.status.get("breach") or {}
        last = st.get("lastAnalysis") or {}
        return st.get("canaryRevision") == rev and last.get("verdict") == "Pass"

    wait(passed, 300, "a passing analysis of the breach candidate", 0.1)
    t0 = time.monotonic()
    set_simulators(cluster.dir, namespace=NS, selector=f"slogate.io/revision={rev}", change={"ttft_ms": 900})

    def rolled_back() -> bool:
        with w.lock:
            st = w.status.get("breach") or {}
        if st.get("phase") != "RolledBack":
            return False
        return (apps.read_namespaced_deployment(f"breach-{rev}", NS).spec.replicas or 0) == 0

    wait(rolled_back, 300, "the breach candidate rolled back", 0.1)
    return time.monotonic() - t0


def one(n: int, gpu: bool, rest_seconds: float) -> dict[str, Any]:
    shape = "gpu" if gpu else "cpu"
    nodes = (
        NodeSet(
            gpu_nodes=math.ceil((n + 8) / 8),
            products=(H100,),
            gpus_per_node=(8,),
            cpu_nodes=1,
            pods_per_node=250,
        )
        if gpu
        # A kwok node has 64 CPUs and a CPU-only model server requests 2: 30 pods a node, with room.
        else NodeSet(gpu_nodes=1, cpu_nodes=math.ceil((n + 8) / 30))
    )
    cluster = temporary_cluster(nodes=nodes, bridge_selector=PROBES)
    # Client traffic (the front door) only for the probes: the N others have no simulator to answer.
    set_traffic(cluster.dir, change={"rps": 0.0})
    for probe in ("probe", "breach"):
        set_traffic(cluster.dir, change={"rps": 10.0}, name=probe)
    cluster.up(timeout=600)
    op = Operator(cluster)
    result: dict[str, Any] = {"n": n, "shape": shape}
    try:
        kube = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        core = client.CoreV1Api(kube)
        core.create_namespace({"metadata": {"name": NS}})
        wait(lambda: _has_sa(core), 60, "the namespace's ServiceAccount", 0.2)
        w = Watcher(kube)
        op.start()
        time.sleep(3)
        rss0 = op.rss_mib()
        api = client.CustomObjectsApi(kube)
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, md("probe", gpu))
        wait(lambda: w.ready("probe", 1), 120, "probe Ready")
        at1 = reaction(kube, w, "probe")
        print(f"[{shape} N={n}] reaction at 1: {', '.join(f'{x:.2f}s' for x in at1)}", flush=True)
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": "breach"}}
        api.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, {**body, "spec": breach_spec("hf://org/base", gpu)}
        )
        wait(lambda: w.ready("breach", 1), 120, "breach Ready")
        breach1 = [breach_reaction(cluster, kube, w, gpu, k) for k in range(2)]
        print(f"[{shape} N={n}] breach reaction at 1: {', '.join(f'{x:.2f}s' for x in breach1)}", flush=True)

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: api.create_namespaced_custom_object(
                        GROUP, VERSION, NS, PLURAL, md(f"m-{i:05d}", gpu)
                    ),
                    range(n),
                )
            )
        created = time.monotonic() - t0
        wait(lambda: w.count_ready() >= n + 1, 3600, f"{n} Ready", 0.1)
        all_ready = time.monotonic() - t0
        print(
            f"[{shape} N={n}] created in {created:.1f}s, all Ready {all_ready:.1f}s after the first create",
            flush=True,
        )

        time.sleep(20)
        since = time.time()
        req0, _ = apiserver_requests(cluster)
        cpu0, t_start = op.cpu_seconds(), time.monotonic()
        time.sleep(rest_seconds)
        req1, _ = apiserver_requests(cluster)
        span = time.monotonic() - t_start
        cpu = (op.cpu_seconds() - cpu0) / span
        user = cluster.operator_user or ""
        audited = cluster.audit_events(user, since=since)
        kinds: dict[str, int] = {}
        for e in audited:
            what = f"{e.get('verb')} {(e.get('objectRef') or {}).get('resource')}"
            kinds[what] = kinds.get(what, 0) + 1
        rss = op.rss_mib()
        with_op = (req1 - req0) / span
        at_n = reaction(kube, w, "probe")
        print(f"[{shape} N={n}] reaction at N: {', '.join(f'{x:.2f}s' for x in at_n)}", flush=True)
        breach_n = [breach_reaction(cluster, kube, w, gpu, k) for k in range(2, 4)]
        print(f"[{shape} N={n}] breach reaction at N: {', '.join(f'{x:.2f}s' for x in breach_n)}", flush=True)

        op.stop()
        time.sleep(5)
        b0, _ = apiserver_requests(cluster)
        tb = time.monotonic()
        time.sleep(rest_seconds)
        b1, _ = apiserver_requests(cluster)
        baseline = (b1 - b0) / (time.monotonic() - tb)

        _, thr0 = apiserver_requests(cluster)
        ts = time.monotonic()
        op.start()
        wait(
            lambda: (op.metric("slogate_reconcile_total", 'result="success"') or 0) >= n + 2,
            1800,
            "start-up reconciles",
            0.2,
        )
        startup = time.monotonic() - ts
        _, thr1 = apiserver_requests(cluster)

        result.update(
            created_seconds=round(created, 1),
            all_ready_seconds=round(all_ready, 1),
            rest_requests_per_second_with_operator=round(with_op, 2),
            rest_requests_per_second_baseline=round(baseline, 2),
            rest_requests_per_second_by_operator=round(with_op - baseline, 2),
            rest_operator_requests_audited=len(audited),
            rest_operator_requests_by_verb=kinds,
            rest_window_seconds=round(span, 1),
            rest_operator_cpu_cores=round(cpu, 3),
            rss_mib_empty=round(rss0, 1),
            rss_mib_at_n=round(rss, 1),
            rss_mib_per_modeldeployment=round((rss - rss0) / (n + 2), 4),
            reaction_at_1_seconds=[round(x, 2) for x in at1],
            reaction_at_n_seconds=[round(x, 2) for x in at_n],
            reaction_median_difference_seconds=round(statistics.median(at_n) - statistics.median(at1), 2),
            breach_reaction_at_1_seconds=[round(x, 2) for x in breach1],
            breach_reaction_at_n_seconds=[round(x, 2) for x in breach_n],
            startup_seconds=round(startup, 1),
            startup_429s=int(thr1 - thr0),
        )
        for k, v in result.items():
            print(f"[{shape} N={n}] {k}: {v}", flush=True)
        return result
    finally:
        op.stop()
        cluster.down()


def _has_sa(core: client.CoreV1Api) -> bool:
    try:
        core.read_namespaced_service_account("default", NS)
        return True
    except client.ApiException:
        return False


FLOOR_THREADS = 16


def floor(n: int, kinds: frozenset[str] | None) -> dict[str, Any]:
    """Seconds until the Deployments of N ModelDeployments are Ready when the bench applies the
    children itself (``kinds``: only these; ``None``: all). See the module docstring."""
    cluster = temporary_cluster(nodes=NodeSet(gpu_nodes=1, cpu_nodes=math.ceil((n + 8) / 30)), traffic=False)
    cluster.up(timeout=600)
    try:
        kube = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        core = client.CoreV1Api(kube)
        core.create_namespace({"metadata": {"name": NS}})
        wait(lambda: _has_sa(core), 60, "the namespace's ServiceAccount", 0.2)
        caps = Capabilities(prometheus_operator=True)
        objects: list[dict[str, Any]] = []
        for i in range(n):
            name = f"m-{i:05d}"
            spec = ModelDeploymentSpec.model_validate(md(name, False)["spec"])
            desired = build_desired(
                name=name,
                namespace=NS,
                spec=spec,
                owner=Owner(name, "00000000-0000-0000-0000-000000000000"),
                caps=caps,
                stable_revision=revision_of(spec),
                prometheus_url=cluster.prometheus_url,
            )
            for obj in desired.objects:
                if kinds is None or obj["kind"] in kinds:
                    obj["metadata"].pop("ownerReferences", None)  # no owner: the GC would delete them
                    objects.append(obj)
        apps = client.AppsV1Api(kube)
        ready: set[str] = set()
        done = threading.Event()

        def watch_deployments() -> None:
            for ev in watch.Watch().stream(apps.list_namespaced_deployment, NS, timeout_seconds=3600):
                d = ev["object"]
                if (d.status.ready_replicas or 0) >= 1:
                    ready.add(d.metadata.name)
                if len(ready) >= n:
                    done.set()
                    return

        threading.Thread(target=watch_deployments, daemon=True).start()
        time.sleep(1)
        writer = Kube(kube)  # the operator's own apply (one PATCH each), so the client is not the limit

        t0 = time.monotonic()
        with ThreadPoolExecutor(FLOOR_THREADS) as pool:
            list(pool.map(writer.apply, objects))
        applied = time.monotonic() - t0
        if not done.wait(3600):
            raise SystemExit(f"timed out: {len(ready)} of {n} Deployments Ready")
        result = {
            "n": n,
            "shape": "cpu",
            "floor_kinds": sorted(kinds) if kinds else sorted({o["kind"] for o in objects}),
            "floor_objects": len(objects),
            "floor_applied_seconds": round(applied, 1),
            "floor_all_ready_seconds": round(time.monotonic() - t0, 1),
        }
        print(f"[floor N={n}] {result}", flush=True)
        return result
    finally:
        cluster.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, action="append", help="ModelDeployments (repeatable; default 100, 1000)"
    )
    parser.add_argument("--gpu", action="store_true", help="one GPU each, on kwok GPU nodes")
    parser.add_argument("--rest-seconds", type=float, default=60.0)
    parser.add_argument("--json", help="append the results to this file (JSON lines)")
    parser.add_argument("--floor", action="store_true", help="the control plane alone (see above)")
    args = parser.parse_args()
    for n in args.n or [100, 1000]:
        kinds: list[frozenset[str] | None] = [None, frozenset({"Deployment"})]
        for r in (floor(n, k) for k in kinds) if args.floor else [one(n, args.gpu, args.rest_seconds)]:
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
