"""The Helm chart (charts/slogate) against the local control plane.

helm is built by hack/build-helm.sh (pinned in hack/versions.env); when it cannot be built the tests
fail, never skip. Lint and render both RBAC scopes, dry-run the rendered objects on the API server,
then prove the chart's RBAC: install only its ServiceAccount and RBAC objects, run the real operator
(`slogate run`, with the Deployment's own environment) under a token of that ServiceAccount, and drive
a ModelDeployment through creation, autoscaling, a rollout and every child kind.

How "every rule is used and none is missing" is proven
------------------------------------------------------
The operator's kubeconfig points at a recording reverse proxy (plain HTTP on 127.0.0.1, forwarding to
the API server over TLS with the ServiceAccount's bearer token untouched). The proxy sees every
request the operator and kopf make (reads, watches and writes alike; the API server's audit log only
records writes) and maps each to the RBAC attributes the API server authorises, (apiGroup, resource,
verb): GET of a collection is `list` (`watch` with ?watch=true), GET of a name `get`, POST `create`,
PATCH `patch`, DELETE `delete`; a server-side apply that answers 201 Created was authorised as
`create` too. The granted set is what the API server itself reports for the ServiceAccount
(SelfSubjectRulesReview with its token), minus what every ServiceAccount gets (the same review for a
ServiceAccount without bindings). The test asserts:

* no request was refused by RBAC (403 "cannot ..."), in either scope (namespaced, the cache watches
  the Pods of the watched namespaces only and the GPU preflight counts those, see docs/install.md);
* granted == observed | NOT_EXERCISED, where NOT_EXERCISED lists the few verbs the operator's code
  reaches but this scenario does not (each with its code path), and nothing granted is unexplained.

Scope "namespaced" repeats the proof with a Role per watched namespace: each watched namespace grants
the same rules, a namespace outside the list grants only the read-only cluster rules.

Leader election (ha.leaderElection.enabled, the default) is part of both proofs: the operator runs
with `--leader-elect` and its Lease in the release namespace, so the chart's Lease Role is exercised
and counted like every other rule (failover itself is proven in tests/integration/test_leader.py).
Finally a real `helm install`, `upgrade` (cluster -> namespaced) and `uninstall`.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from slogate.dev.cluster import LocalCluster, free_port
from tests.integration.conftest import wait_for
from tests.integration.test_operator import GROUP, PLURAL, VERSION, OperatorProcess, get_md, mdep, ready

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "slogate"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

# (apiGroup, resource, verb) the operator's code can reach that the scenario below does not exercise.
NOT_EXERCISED = {
    # Reconciler._prune deletes any child kind that is no longer desired; the PDB and the PodMonitor
    # are always desired while their APIs are served, so only a renamed or orphaned one is deleted;
    # the NetworkPolicy only when a spec turns it off (networkPolicy.enabled: false), which this
    # scenario does not.
    ("policy", "poddisruptionbudgets", "delete"),
    ("networking.k8s.io", "networkpolicies", "delete"),
    ("monitoring.coreos.com", "podmonitors", "delete"),
}


def helm_run(helm: str, *args: str, values: dict | None = None, check: bool = True):
    cmd = [helm, *args]
    tmp = None
    if values is not None:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"slogate-values-{uuid.uuid4().hex[:8]}.yaml"
        tmp.write_text(yaml.safe_dump(values))
        cmd += ["-f", str(tmp)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    finally:
        if tmp:
            tmp.unlink()
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(helm: str, values: dict, *, release: str = "slogate", namespace: str = "slogate-system") -> str:
    return helm_run(helm, "template", release, str(CHART), "-n", namespace, values=values).stdout


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def workload(docs: list[dict]) -> dict:
    """The operator's Deployment (the chart renders no other workload)."""
    (w,) = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]
    assert w["kind"] == "Deployment", w["kind"]
    return w


# What slogate.controller.leader does with its Lease: get, create when missing, renew/take over (PUT).
LEASE_ATTRS = {
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
}


CLUSTER_VALUES: dict = {}
NAMESPACED_VALUES = {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["team-a", "team-b"]}
FULL_VALUES = {
    "rbac": {"scope": "namespaced", "ownerReferencesPermissionEnforcement": True},
    "watchNamespaces": ["team-a", "team-b"],
    "ha": {"leaderElection": {"enabled": True}},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}},
    "cost": {
        "currency": "EUR",
        "prices": {"NVIDIA-H100-80GB-HBM3": "4.50", "NVIDIA-L4": 0.8},
        "default": "1.90",
    },
    "operator": {"logFormat": "text", "extraArgs": ["--workers=8"]},
    "grafana": {"dashboards": {"folder": "LLM serving", "labels": {"team": "ml"}}},
}
NO_LEADER_ELECTION_VALUES = {"ha": {"leaderElection": {"enabled": False}}}
ALL_VALUE_SETS = {
    "cluster": CLUSTER_VALUES,
    "namespaced": NAMESPACED_VALUES,
    "namespaced+everything": FULL_VALUES,
    "cluster, no leader election": NO_LEADER_ELECTION_VALUES,
}


def rules_of(docs: list[dict]) -> list[tuple[str, str, dict]]:
    return [
        (d["kind"], d["metadata"].get("namespace", ""), r)
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
        for r in d.get("rules", [])
    ]


def test_helm_lint_passes_in_both_scopes(helm):
    for name, values in ALL_VALUE_SETS.items():
        result = helm_run(helm, "lint", "--strict", str(CHART), values=values, check=False)
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
        assert "0 chart(s) failed" in result.stdout, result.stdout


def test_template_renders_least_privilege_rbac_and_the_deployment(helm):
    for name, values in ALL_VALUE_SETS.items():
        docs = docs_of(render(helm, values))
        kinds = {d["kind"] for d in docs}
        elect = values.get("ha", {}).get("leaderElection", {}).get("enabled", True)
        assert {"ServiceAccount", "Deployment", "Service", "ConfigMap"} <= kinds, name
        assert "StatefulSet" not in kinds, name
        assert not {d["kind"] for d in docs if d.get("apiVersion", "").startswith("kopf.dev/")}, name
        lease_roles = [
            d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election")
        ]
        if elect:
            (role,) = lease_roles
            assert role["metadata"]["namespace"] == "slogate-system", name
            assert role["rules"] == [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "create", "update"],
                }
            ], name
            (binding,) = [
                d
                for d in docs
                if d["kind"] == "RoleBinding" and d["metadata"]["name"] == role["metadata"]["name"]
            ]
            assert binding["metadata"]["namespace"] == "slogate-system", name
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role["metadata"]["name"],
            }
            sa = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": sa, "namespace": "slogate-system"}
            ]
        else:
            assert lease_roles == [], name
        for kind, ns, rule in rules_of(docs):
            for key in ("apiGroups", "resources", "verbs"):
                assert all("*" not in x for x in rule[key]), f"{name}: wildcard in {kind} {ns}: {rule}"
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
            assert len(rule["apiGroups"]) == 1, f"{name}: one API group per rule: {rule}"
            allowed = {"get", "list", "watch", "create", "patch", "delete"}
            if rule["resources"] == ["modeldeployments/finalizers"]:
                allowed = {"update"}
            if rule["resources"] == ["leases"]:
                assert kind == "Role" and ns == "slogate-system", f"{name}: {kind} {ns}: {rule}"
                allowed = {"get", "create", "update"}
            assert set(rule["verbs"]) <= allowed, f"{name}: {rule}"
        dep = workload(docs)
        pod = dep["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["command"] == ["slogate"] and c["args"][0] == "run"
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert not any("PEERING" in e or "PRIORITY" in e for e in env), name
        assert env.get("SLOGATE_LEADER_ELECTION") == ("true" if elect else None), name
        downward = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"] if "valueFrom" in e}
        assert downward == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}, name
        assert dep["spec"]["replicas"] == (2 if elect else 1), name
        if elect:
            assert dep["spec"]["strategy"] == {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            }, name
            (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert term["podAffinityTerm"] == {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": dep["spec"]["selector"]["matchLabels"]},
            }, name
            assert set(pod["affinity"]) == {"podAntiAffinity"}, name
        else:
            assert dep["spec"]["strategy"] == {"type": "Recreate"}, name
            assert "affinity" not in pod, name
        assert env.get("SLOGATE_NAMESPACES") == (
            ",".join(values["watchNamespaces"]) if "watchNamespaces" in values else None
        )
        assert env["SLOGATE_PROMETHEUS_URL"].startswith("http")
        assert {p["containerPort"]: p["name"] for p in c["ports"]} == {8080: "metrics", 8081: "health"}
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]

    cluster_docs = docs_of(render(helm, CLUSTER_VALUES))
    assert sorted((d["kind"], d["metadata"]["name"]) for d in cluster_docs if d["kind"] in RBAC_KINDS) == [
        ("ClusterRole", "slogate"),
        ("ClusterRoleBinding", "slogate"),
        ("Role", "slogate-leader-election"),
        ("RoleBinding", "slogate-leader-election"),
        ("ServiceAccount", "slogate"),
    ]
    standalone = docs_of(render(helm, NO_LEADER_ELECTION_VALUES))
    assert {d["kind"] for d in standalone if d["kind"] in RBAC_KINDS} == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    # A user's affinity replaces the default anti-affinity.
    mine = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}
                ]
            }
        }
    }
    assert workload(docs_of(render(helm, {"affinity": mine})))["spec"]["template"]["spec"]["affinity"] == mine
    ns_docs = docs_of(render(helm, NAMESPACED_VALUES))
    roles = sorted(
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in ns_docs if d["kind"] == "Role"
    )
    bindings = sorted(
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in ns_docs if d["kind"] == "RoleBinding"
    )
    assert (
        roles
        == bindings
        == [("slogate-system", "slogate-leader-election"), ("team-a", "slogate"), ("team-b", "slogate")]
    )
    (cr,) = [d for d in ns_docs if d["kind"] == "ClusterRole"]
    assert {(r["apiGroups"][0], r["resources"][0]) for r in cr["rules"]} == {
        ("", "nodes"),
        ("", "namespaces"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    }
    assert all(set(r["verbs"]) <= {"list", "watch"} for r in cr["rules"]), "the ClusterRole is read-only"

    full = docs_of(render(helm, FULL_VALUES))
    (prices_cm,) = [d for d in full if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "slogate-prices"]
    prices = yaml.safe_load(prices_cm["data"]["prices.yaml"])
    assert prices == {
        "currency": "EUR",
        "gpuHourly": {"NVIDIA-H100-80GB-HBM3": "4.50", "NVIDIA-L4": "0.8"},
        "default": "1.90",
    }
    (monitor,) = [d for d in full if d["kind"] == "ServiceMonitor"]
    # The operator's series keep their ModelDeployment's namespace label (the dashboard selects on it).
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


def test_the_grafana_dashboard_configmap(helm):
    """Default on, labelled for the kube-prometheus-stack sidecar, the committed JSON byte for byte."""

    def dashboards(values: dict) -> list[dict]:
        return [d for d in docs_of(render(helm, values)) if d["metadata"]["name"] == "slogate-dashboards"]

    (cm,) = dashboards({})
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["namespace"] == "slogate-system"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in cm["metadata"]
    assert cm["data"]["slogate.json"] + "\n" == (CHART / "dashboards" / "slogate.json").read_text()
    assert json.loads(cm["data"]["slogate.json"])["uid"] == "slogate-modeldeployments"

    (cm,) = dashboards(
        {
            "grafana": {
                "dashboards": {
                    "namespace": "monitoring",
                    "label": "grafana.example.com/dashboard",
                    "labelValue": "slogate",
                    "labels": {"team": "ml"},
                    "folder": "LLM serving",
                    "folderAnnotation": "grafana_folder",
                }
            }
        }
    )
    assert cm["metadata"]["namespace"] == "monitoring"
    labels = cm["metadata"]["labels"]
    assert labels["grafana.example.com/dashboard"] == "slogate" and labels["team"] == "ml"
    assert "grafana_dashboard" not in labels
    assert cm["metadata"]["annotations"] == {"grafana_folder": "LLM serving"}

    assert dashboards({"grafana": {"dashboards": {"enabled": False}}}) == []
    for bad in ({"label": "no spaces"}, {"namespace": "Not_A_Namespace"}, {"unknown": 1}):
        result = helm_run(
            helm, "template", "x", str(CHART), values={"grafana": {"dashboards": bad}}, check=False
        )
        assert result.returncode != 0, f"{bad} was accepted"


def test_values_are_checked_by_the_schema_and_the_templates(helm):
    bad = {
        "unknown key": {"nope": 1},
        "scope": {"rbac": {"scope": "everything"}},
        "price": {"cost": {"prices": {"NVIDIA-L4": "cheap"}}},
        "currency without a default": {"cost": {"currency": "EUR"}},
        "port": {"operator": {"metricsPort": 70000}},
        "namespaced without namespaces": {"rbac": {"scope": "namespaced"}},
        "two operators without leader election": {
            "replicaCount": 2,
            "ha": {"leaderElection": {"enabled": False}},
        },
        "peering is gone": {"ha": {"peering": {"enabled": True}}},
    }
    for name, values in bad.items():
        result = helm_run(helm, "template", "x", str(CHART), values=values, check=False)
        assert result.returncode != 0, f"{name} was accepted"
    assert (
        "needs ha.leaderElection.enabled"
        in helm_run(
            helm,
            "template",
            "x",
            str(CHART),
            values=bad["two operators without leader election"],
            check=False,
        ).stderr
    )
    # More standbys, or a single replica, are fine with leader election.
    for n in (1, 3):
        assert workload(docs_of(render(helm, {"replicaCount": n})))["spec"]["replicas"] == n


# ---------------------------------------------------------------------------------------- dry run
def kubectl_raw(cluster: LocalCluster, *args: str, input: str | None = None, kubeconfig: Path | None = None):
    return subprocess.run(
        [
            str(Path(cluster.state["bin"]) / "kubectl"),
            f"--kubeconfig={kubeconfig or cluster.kubeconfig}",
            *args,
        ],
        input=input,
        text=True,
        capture_output=True,
        check=False,
    )


def ensure_namespace(cluster: LocalCluster, name: str, labels: dict[str, str] | None = None) -> None:
    cluster.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}]
    )


def test_server_side_dry_run_of_the_rendered_chart(cluster, helm):
    # The documented CRD upgrade path (docs/install.md) is how the chart's crds/ get installed here.
    result = kubectl_raw(cluster, "apply", "--server-side", "-f", str(CHART / "crds"))
    assert result.returncode == 0, result.stderr
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.slogate.io")
    release_ns = f"slogate-{uuid.uuid4().hex[:6]}"
    restricted = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    ensure_namespace(cluster, release_ns, restricted)
    for ns in ("team-a", "team-b"):
        ensure_namespace(cluster, ns)
    wait_for(
        lambda: kubectl_raw(cluster, "get", "sa", "default", "-n", release_ns).returncode == 0,
        timeout=30,
        what="the default ServiceAccount",
    )
    for name, values in ALL_VALUE_SETS.items():
        text = render(helm, values, release="dry", namespace=release_ns)
        result = kubectl_raw(cluster, "apply", "--dry-run=server", "--server-side", "-f", "-", input=text)
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "would violate PodSecurity" not in result.stderr, f"{name}: {result.stderr}"
        assert result.stdout.count("(server dry run)") == len(docs_of(text)), result.stdout
        # Pod Security "restricted" is enforced on pods: dry-run the Deployment's pod itself.
        dep = workload(docs_of(text))
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "dry-pod", "namespace": release_ns},
            "spec": {**dep["spec"]["template"]["spec"], "serviceAccountName": "default"},
        }
        result = kubectl_raw(
            cluster, "apply", "--dry-run=server", "--server-side", "-f", "-", input=json.dumps(pod)
        )
        assert result.returncode == 0, f"{name}: pod is refused: {result.stderr}"
    cluster.kubectl("delete", "namespace", release_ns, "--wait=false")


def test_helm_install_upgrade_and_uninstall(cluster, helm):
    """A real release: CRDs from crds/ (the existing ModelDeployment CRD is skipped), NOTES, an upgrade
    from cluster to namespaced scope, and an uninstall that leaves the CRDs."""
    ns = f"slogate-it-{uuid.uuid4().hex[:6]}"
    kc = f"--kubeconfig={cluster.kubeconfig}"
    for team in ("team-a", "team-b"):
        ensure_namespace(cluster, team)
    try:
        out = helm_run(
            helm, "install", "it", str(CHART), kc, "-n", ns, "--create-namespace", "--wait", "--timeout=90s"
        ).stdout
        assert "STATUS: deployed" in out and "Watching: every namespace (cluster-wide)" in out, out
        assert "kubectl apply --server-side -f crds/" in out, out
        assert "Replicas: 2 (Deployment, leader election" in out, out
        assert (
            cluster.kubectl("get", "role", "it-slogate-leader-election", "-n", ns, "-o", "name").strip()
            == "role.rbac.authorization.k8s.io/it-slogate-leader-election"
        )
        assert (
            cluster.kubectl("get", "deployment", "it-slogate", "-n", ns, "-o", "jsonpath={.spec.replicas}")
            == "2"
        )
        assert (
            cluster.kubectl("get", "clusterrole", "it-slogate", "-o", "name").strip()
            == "clusterrole.rbac.authorization.k8s.io/it-slogate"
        )
        out = helm_run(
            helm,
            "upgrade",
            "it",
            str(CHART),
            kc,
            "-n",
            ns,
            "--wait",
            "--timeout=90s",
            values=NAMESPACED_VALUES,
        ).stdout
        assert "Watching: namespaces team-a, team-b" in out, out
        assert cluster.kubectl("get", "role", "it-slogate", "-n", "team-b", "-o", "name").strip()
        assert cluster.kubectl("get", "clusterrole", "it-slogate", "--ignore-not-found").strip() == ""
        helm_run(helm, "uninstall", "it", kc, "-n", ns, "--wait")
        assert cluster.kubectl("get", "clusterrole", "it-slogate-cluster", "--ignore-not-found").strip() == ""
        assert cluster.kubectl("get", "crd", "modeldeployments.slogate.io", "-o", "name")
    finally:
        helm_run(helm, "uninstall", "it", kc, "-n", ns, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


# ---------------------------------------------------------------------------------------- RBAC proof
@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    message: str = ""


class RecordingProxy:
    """A plain-HTTP reverse proxy on 127.0.0.1 to the API server that records every request."""

    HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}

    def __init__(self, upstream: str, cafile: Path) -> None:
        self.upstream = upstream
        self.cafile = cafile
        self.port = free_port()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="rbac-proxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        import aiohttp
        from aiohttp import web

        ctx = ssl.create_default_context(cafile=str(self.cafile))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=0),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request):
        import aiohttp
        from aiohttp import web

        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self.HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None
        ) as up:
            seen = Seen(request.method, request.path, urllib.parse.parse_qs(request.query_string), up.status)
            if up.status == 403:
                raw = await up.read()
                try:
                    seen.message = json.loads(raw).get("message", "")
                except ValueError:
                    seen.message = raw.decode(errors="replace")
                with self._lock:
                    self.seen.append(seen)
                return web.Response(status=403, body=raw, content_type="application/json")
            with self._lock:
                self.seen.append(seen)
            resp = web.StreamResponse(
                status=up.status, headers={k: v for k, v in up.headers.items() if k.lower() not in self.HOP}
            )
            try:
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
            except (ConnectionResetError, aiohttp.ClientError, asyncio.CancelledError):
                pass  # the operator or the proxy stopped mid-stream (a watch)
            return resp

    def stop(self) -> None:
        async def _stop() -> None:
            # Closing the upstream session first ends the open watch streams; then the server stops.
            await self._session.close()
            await self._runner.cleanup()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def records(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)


Attr = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


def rbac_attributes(seen: Seen) -> tuple[str | None, set[Attr]]:
    """The namespace (None: cluster scope) and the RBAC attributes the API server authorised a
    request with; discovery and other non-resource paths give an empty set."""
    parts = [p for p in seen.path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None, set()
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")
    named = len(rest) >= 2
    watch = seen.query.get("watch", [""])[0] in ("true", "1")
    verb = {
        "GET": "watch" if watch else ("get" if named else "list"),
        "POST": "create",
        "PATCH": "patch",
        "PUT": "update",
        "DELETE": "delete" if named else "deletecollection",
    }[seen.method]
    attrs = {(group, resource, verb)}
    if seen.method == "PATCH" and seen.status == 201:
        attrs.add((group, resource, "create"))  # server-side apply that created the object
    return namespace, attrs


def granted(cluster: LocalCluster, kubeconfig: Path, namespace: str) -> set[Attr]:
    """What the API server grants the kubeconfig's user in a namespace (SelfSubjectRulesReview)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    result = kubectl_raw(
        cluster,
        "create",
        "--validate=false",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(review),
        kubeconfig=kubeconfig,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)["status"]
    assert not status.get("incomplete"), status
    out: set[Attr] = set()
    for rule in status.get("resourceRules", []):
        assert "*" not in rule["verbs"] + rule["resources"] + rule.get("apiGroups", []), rule
        for g in rule.get("apiGroups", []):
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    out.add((g, r, v))
    return out


def token_kubeconfig(cluster: LocalCluster, path: Path, sa: str, namespace: str, server: str) -> Path:
    token = cluster.kubectl("create", "token", sa, "-n", namespace, "--duration=1h").strip()
    cfg: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server}}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": sa, "namespace": namespace}}],
        "current-context": "sa",
    }
    if server.startswith("https://"):
        cfg["clusters"][0]["cluster"]["certificate-authority"] = str(cluster.ca_file)
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o600)
    return path


class ChartOperator(OperatorProcess):
    """`slogate run` with the chart's Deployment command and environment and a given kubeconfig."""

    def __init__(
        self,
        cluster: LocalCluster,
        log: Path,
        *,
        kubeconfig: Path,
        workload: dict,
        docs: list[dict],
        root: Path,
    ) -> None:
        super().__init__(cluster, log)
        self.kubeconfig = kubeconfig
        pod = workload["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"] == ["slogate"], container["command"]
        self.args = container["args"]
        self.env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        # The pod's ConfigMap volumes (the price table) as files under ``root``, and the environment
        # pointed at them: the operator reads exactly what the chart rendered.
        configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            source = volumes[mount["name"]].get("configMap")
            if not source:
                continue
            local = root / mount["mountPath"].lstrip("/")
            local.mkdir(parents=True, exist_ok=True)
            for key, text in configmaps[source["name"]].get("data", {}).items():
                (local / key).write_text(text)
            for name, value in self.env.items():
                if value.startswith(mount["mountPath"] + "/"):
                    self.env[name] = str(local) + value[len(mount["mountPath"]) :]

    def start(self) -> None:
        env = {
            **os.environ,
            **self.env,
            "PYTHONUNBUFFERED": "1",
            "HOME": os.environ.get("HOME", "/tmp"),
            # Local stand-ins for what only differs in a pod: ports, Prometheus, a faster resync.
            "SLOGATE_METRICS_PORT": str(self.metrics_port),
            "SLOGATE_HEALTH_PORT": str(self.health_port),
            "SLOGATE_BIND_ADDRESS": "127.0.0.1",
            "SLOGATE_PROMETHEUS_URL": self.cluster.prometheus_url,
            "SLOGATE_RESYNC_SECONDS": "3",
            "SLOGATE_LOG_FORMAT": "text",
        }
        env.pop("KUBECONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "slogate", *self.args, f"--kubeconfig={self.kubeconfig}"],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )

        def healthy() -> bool:
            import urllib.request

            assert self.proc is not None and self.proc.poll() is None, self.tail()
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return r.status == 200

        wait_for(healthy, timeout=60, what="the operator's /healthz")


def scenario(kube, namespace: str, name: str = "chart") -> None:
    """Create with KEDA autoscaling, roll a new model revision, run a command, switch the autoscaler
    to an HPA and the router to Gateway API, then drop both, then add and drop an SLO (its
    PrometheusRule): every child kind is created, updated and deleted once."""
    api = client.CustomObjectsApi(kube)
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    doc = mdep(
        name,
        replicas=1,
        autoscaling={"provider": "keda", "minReplicas": 1, "maxReplicas": 2},
        rollout={"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}}]},
    )
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    old = ready(kube, namespace, name)["status"]["stableRevision"]
    wait_for(
        lambda: api.get_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", name),
        timeout=30,
        what="the ScaledObject",
    )

    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"spec": {"model": {"source": "hf://meta-llama/Llama-3.2-3B-Instruct"}}},
    )
    new = wait_for(
        lambda: (m := ready(kube, namespace, name)) and m["status"]["stableRevision"] != old and m,
        timeout=90,
        what="the new revision to be promoted",
    )["status"]["stableRevision"]
    wait_for(
        lambda: (
            [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == [f"{name}-{new}"]
        ),
        timeout=60,
        what="the old revision's Deployment to be retired",
    )
    wait_for(
        lambda: (
            f"{name}-canary" not in {s.metadata.name for s in core.list_namespaced_service(namespace).items}
        ),
        timeout=30,
        what="the canary Service to be deleted",
    )

    # A person's command: consumed, then the annotation is cleared with a metadata patch.
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"metadata": {"annotations": {"slogate.io/command": "resume"}}},
    )
    wait_for(
        lambda: (
            "slogate.io/command" not in (get_md(kube, namespace, name)["metadata"].get("annotations") or {})
        ),
        timeout=30,
        what="the command annotation to be consumed",
    )

    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {
            "spec": {
                "autoscaling": {"provider": "hpa"},
                "rollout": {
                    "traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
                },
            }
        },
    )
    autoscaling = client.AutoscalingV2Api(kube)
    wait_for(
        lambda: (
            autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace)
            and api.get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
            )
            and not api.list_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects")[
                "items"
            ]
        ),
        timeout=30,
        what="an HPA and an HTTPRoute instead of the ScaledObject",
    )

    # The inferencePool router: the route's backends become InferencePools, one per track.
    pools_router = {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "gw"}]}}
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"spec": {"rollout": {"traffic": {**pools_router, "gatewayAPI": None}}}},
    )
    wait_for(
        lambda: (
            api.list_namespaced_custom_object(
                "inference.networking.k8s.io", "v1", namespace, "inferencepools"
            )["items"]
            and api.get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", namespace, "httproutes", name
            )["spec"]["rules"][0]["backendRefs"][0].get("kind")
            == "InferencePool"
        ),
        timeout=30,
        what="InferencePools and an HTTPRoute to them",
    )

    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {
            "spec": {
                "autoscaling": None,
                "rollout": {"traffic": {"router": "replicas", "inferencePool": None}},
            }
        },
    )
    wait_for(
        lambda: (
            not autoscaling.list_namespaced_horizontal_pod_autoscaler(namespace).items
            and not api.list_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", namespace, "httproutes"
            )["items"]
            and not api.list_namespaced_custom_object(
                "inference.networking.k8s.io", "v1", namespace, "inferencepools"
            )["items"]
        ),
        timeout=30,
        what="the HPA, the HTTPRoute and the InferencePools to be deleted",
    )
    ready(kube, namespace, name)

    # A quality probe reads its suite's ConfigMap (one GET per run: the configmaps rule). Its
    # requests go to NAME-stable by cluster DNS, which does not resolve here: the run is
    # Inconclusive, which is all this scenario needs; dropping spec.quality removes the condition.
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": f"{name}-suite"},
            "data": {"suite.yaml": "cases: [{prompt: hi, checks: [{contains: hi}]}]\n"},
        },
    )
    quality = {
        "suites": [{"name": "smoke", "configMap": f"{name}-suite", "samples": 1, "minPassRate": 0.5}],
        "gates": {"preTraffic": False},
        "probe": {"interval": "10s"},
        "timeout": "2s",
    }
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": {"quality": quality}}
    )
    wait_for(
        lambda: (
            ((get_md(kube, namespace, name)["status"].get("qualityProbe") or {}).get("lastRun") or {}).get(
                "verdict"
            )
            == "Inconclusive"
        ),
        timeout=60,
        what="a quality probe run",
    )
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": {"quality": None}})
    wait_for(
        lambda: (
            not any(
                c["type"] == "QualityDegraded"
                for c in get_md(kube, namespace, name)["status"].get("conditions") or []
            )
        ),
        timeout=30,
        what="the QualityDegraded condition to go",
    )

    # An SLO adds the generated PrometheusRule NAME-slo (recording rules and burn-rate alerts);
    # dropping the SLO prunes it.
    slo = {"objectives": [{"metric": "errorRate", "maxPercent": 5}]}
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": {"slo": slo}})
    wait_for(
        lambda: api.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "prometheusrules"
        )["items"],
        timeout=30,
        what="the PrometheusRule",
    )
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"spec": {"slo": None}})
    wait_for(
        lambda: (
            not api.list_namespaced_custom_object(
                "monitoring.coreos.com", "v1", namespace, "prometheusrules"
            )["items"]
        ),
        timeout=30,
        what="the PrometheusRule to be deleted",
    )
    # Leave nothing behind for later tests' operators (the namespace itself goes asynchronously).
    api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_for(
        lambda: not api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"],
        timeout=30,
        what="the ModelDeployment to be deleted",
    )


@pytest.fixture()
def rbac_namespace(cluster: LocalCluster) -> Iterator[str]:
    name = f"slogate-rbac-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def install_rbac(
    cluster: LocalCluster, helm: str, values: dict, *, release: str, namespace: str
) -> list[dict]:
    """Apply only the chart's ServiceAccount and RBAC objects; returns every rendered document."""
    docs = docs_of(render(helm, values, release=release, namespace=namespace))
    cluster.apply([d for d in docs if d["kind"] in RBAC_KINDS])
    return docs


def uninstall_cluster_rbac(cluster: LocalCluster, docs: list[dict]) -> None:
    for d in docs:
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            cluster.kubectl("delete", d["kind"].lower(), d["metadata"]["name"], "--ignore-not-found")


def run_under_chart_rbac(
    cluster: LocalCluster,
    kube,
    helm: str,
    tmp_path: Path,
    *,
    values: dict,
    release: str,
    op_ns: str,
    work_ns: str,
) -> tuple[RecordingProxy, Path, list[dict]]:
    docs = install_rbac(cluster, helm, values, release=release, namespace=op_ns)
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    proxy = RecordingProxy(cluster.server, cluster.ca_file)
    proxy.start()
    op = ChartOperator(
        cluster,
        cluster.logs / f"operator-{release}.log",
        kubeconfig=token_kubeconfig(cluster, tmp_path / "via-proxy.kubeconfig", sa, op_ns, proxy.url),
        workload=workload(docs),
        docs=docs,
        root=tmp_path / "pod",
    )
    # Leader election as in the chart's pods, with the Lease in the release namespace (POD_NAMESPACE
    # there; the downward API does not reach a local process, so the flags say it).
    op.args = [*op.args, "--leader-elect", f"--lease-namespace={op_ns}", "--identity=test"]
    try:
        op.start()
        try:
            scenario(kube, work_ns)
            # The leader renews its Lease every 5 s: wait for one renewal so `update` is exercised too.
            leases = client.CoordinationV1Api(kube)
            wait_for(
                lambda: (
                    (lease := leases.read_namespaced_lease("slogate-operator", op_ns)).spec.renew_time
                    > lease.spec.acquire_time
                ),
                timeout=30,
                what="a Lease renewal",
            )
        except AssertionError as exc:
            denied = [f"{s.method} {s.path}: {s.message}" for s in proxy.records() if s.status == 403]
            raise AssertionError(f"{exc}\nrefused requests: {denied}\noperator log:\n{op.tail()}") from exc
    finally:
        op.stop()
        proxy.stop()
    direct = token_kubeconfig(cluster, tmp_path / "direct.kubeconfig", sa, op_ns, cluster.server)
    return proxy, direct, docs


def baseline(cluster: LocalCluster, tmp_path: Path, namespace: str) -> set[Attr]:
    """What a ServiceAccount without any binding is granted (self reviews)."""
    return granted(
        cluster,
        token_kubeconfig(cluster, tmp_path / "nobody.kubeconfig", "default", namespace, cluster.server),
        namespace,
    )


def used_by(proxy: RecordingProxy) -> tuple[dict[str | None, set[Attr]], list[Seen]]:
    by_ns: dict[str | None, set[Attr]] = {}
    for s in proxy.records():
        ns, attrs = rbac_attributes(s)
        if attrs and s.status != 403:
            by_ns.setdefault(ns, set()).update(attrs)
    denied = [s for s in proxy.records() if s.status == 403 and " cannot " in s.message]
    for ns, attrs in sorted(by_ns.items(), key=lambda kv: kv[0] or ""):
        print(f"used in {ns or 'cluster scope'}:\n  {fmt(attrs)}")  # shown when a test fails
    return by_ns, denied


def fmt(attrs: set[Attr]) -> str:
    return "\n  ".join(f"{g or 'core'} {r} {v}" for g, r, v in sorted(attrs)) or "(none)"


def test_cluster_scope_rbac_runs_the_operator_and_every_rule_is_used(
    cluster, kube, helm, rbac_namespace, tmp_path
):
    op_ns = f"slogate-op-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, op_ns)
    docs: list[dict] = []
    try:
        proxy, direct, docs = run_under_chart_rbac(
            cluster,
            kube,
            helm,
            tmp_path,
            values=CLUSTER_VALUES,
            release="rbac-cluster",
            op_ns=op_ns,
            work_ns=rbac_namespace,
        )
        by_ns, denied = used_by(proxy)
        assert denied == [], "\n".join(f"{s.method} {s.path}: {s.message}" for s in denied)
        # In the release namespace the operator touched only its Lease: all three Lease verbs.
        assert by_ns.get(op_ns) == LEASE_ATTRS, fmt(by_ns.get(op_ns, set()))
        used = set().union(*(attrs for ns, attrs in by_ns.items() if ns != op_ns))
        # Cluster-wide requests exist (kopf watches every namespace; the preflight lists nodes and pods).
        assert {("", "pods", "watch"), ("", "nodes", "list"), ("", "pods", "list")} <= by_ns[None]
        base = baseline(cluster, tmp_path, op_ns)
        grants = {ns: granted(cluster, direct, ns) - base for ns in (rbac_namespace, "default", op_ns)}
        for ns in (rbac_namespace, "default"):
            grant = grants[ns]
            assert grant - used - NOT_EXERCISED == set(), "granted but never used:\n  " + fmt(
                grant - used - NOT_EXERCISED
            )
            assert used - grant == set(), "used but not granted:\n  " + fmt(used - grant)
        # The Lease Role adds exactly the Lease verbs, in the release namespace only.
        assert grants[op_ns] - grants["default"] == LEASE_ATTRS, fmt(grants[op_ns] ^ grants["default"])
        assert grants["default"] <= grants[op_ns]
    finally:
        uninstall_cluster_rbac(cluster, docs)
        cluster.kubectl("delete", "namespace", op_ns, "--wait=false")


def test_namespaced_scope_rbac_runs_the_operator_and_every_rule_is_used(
    cluster, kube, helm, rbac_namespace, tmp_path
):
    op_ns = f"slogate-op-{uuid.uuid4().hex[:6]}"
    idle_ns = f"slogate-idle-{uuid.uuid4().hex[:6]}"
    outside = f"slogate-out-{uuid.uuid4().hex[:6]}"
    for ns in (op_ns, idle_ns, outside):
        ensure_namespace(cluster, ns)
    values = {"rbac": {"scope": "namespaced"}, "watchNamespaces": [rbac_namespace, idle_ns]}
    docs: list[dict] = []
    try:
        proxy, direct, docs = run_under_chart_rbac(
            cluster,
            kube,
            helm,
            tmp_path,
            values=values,
            release="rbac-ns",
            op_ns=op_ns,
            work_ns=rbac_namespace,
        )
        by_ns, denied = used_by(proxy)
        # Nothing refused: the cache watches Pods per watched namespace, never cluster-wide.
        assert not denied, [f"{s.method} {s.path}: {s.message}" for s in denied]
        assert set(by_ns) <= {None, rbac_namespace, idle_ns, op_ns}, sorted(map(str, by_ns))
        # In the release namespace the operator touched only its Lease: all three Lease verbs.
        assert by_ns.get(op_ns) == LEASE_ATTRS, fmt(by_ns.get(op_ns, set()))
        # kopf watched both namespaces; nothing namespaced was read cluster-wide.
        for ns in (rbac_namespace, idle_ns):
            assert {
                ("slogate.io", "modeldeployments", "watch"),
                ("apps", "deployments", "watch"),
                ("", "pods", "watch"),
            } <= by_ns[ns], ns
        cluster_used = by_ns.get(None, set())
        ns_used = by_ns[rbac_namespace] | by_ns[idle_ns]
        base = baseline(cluster, tmp_path, op_ns)
        cluster_grant = granted(cluster, direct, outside) - base
        assert cluster_grant == cluster_used, (
            f"cluster scope: granted {fmt(cluster_grant)}\nused {fmt(cluster_used)}"
        )
        for ns in (rbac_namespace, idle_ns):
            grant = granted(cluster, direct, ns) - base - cluster_grant
            assert grant - ns_used - NOT_EXERCISED == set(), f"{ns}: granted but never used:\n  " + fmt(
                grant - ns_used - NOT_EXERCISED
            )
            assert ns_used - grant == set(), f"{ns}: used but not granted:\n  " + fmt(ns_used - grant)
        lease_grant = granted(cluster, direct, op_ns) - base - cluster_grant
        assert lease_grant == by_ns[op_ns] == LEASE_ATTRS, fmt(lease_grant)
    finally:
        uninstall_cluster_rbac(cluster, docs)
        for ns in (op_ns, idle_ns, outside):
            cluster.kubectl("delete", "namespace", ns, "--wait=false")
