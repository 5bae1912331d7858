"""The version matrix (issue 15): what slogate installs and writes, dry-run against the oldest and
the newest Kubernetes minor it supports (docs/compatibility.md).

For each release of the matrix (``K8S_MATRIX`` in hack/versions.env, oldest first, then
``K8S_VERSION``) a module fixture starts etcd and that release's kube-apiserver and nothing else
(``LocalCluster(apiserver_only=True)``; the older ones are built by hack/build-matrix.sh), installs
the CRDs for real and then server-side-applies with ``dryRun=All``: the chart rendered for that
release (``helm template --kube-version``) in every value set of test_chart.py, every example
ModelDeployment (its CEL rules run on that server), and every child object the operator builds
from each example (stable, canary and without optional APIs; the HTTPRoute variants; the
PrometheusRule).

A server drops a field it does not know silently unless asked not to, so every request carries
``fieldValidation=Strict``: an unknown field is an error. A field the server knows but drops because
its feature gate is off (``lifecycle.preStop.sleep`` on 1.29) passes strict validation, so a second
check follows: the object the server returns must still hold every field that was sent.

``FEATURES`` lists what some objects need beyond the oldest minor, each with the first minor where
it is on by default; an object that uses one must be *rejected* by an older server, so the
documented requirement is checked both ways. ``SLOGATE_K8S_MATRIX`` replaces ``K8S_MATRIX`` for one
run (``SLOGATE_K8S_MATRIX=v1.29.15 pytest tests/integration/test_version_matrix.py`` builds that
release's kube-apiserver and shows what breaks there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config

from slogate.adapters.kube import Kube
from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.api.validation import is_model_deployment
from slogate.core.compare import is_subset
from slogate.core.desired import build_desired
from slogate.core.naming import Capabilities, Owner, revision_of
from slogate.core.rules import prometheus_rule
from slogate.core.traffic import build_httproute
from slogate.dev import crds
from slogate.dev.cluster import LocalCluster, temporary_cluster
from slogate.dev.versions import ensure_matrix_apiservers, matrix_releases, versions
from tests.integration.test_chart import ALL_VALUE_SETS

pytestmark = pytest.mark.local_only(
    reason="starts an API server of every minor of the matrix itself; another cluster adds nothing"
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "slogate"
EXAMPLES = REPO / "examples"
CURRENT = versions()["K8S_VERSION"]
OLDER = os.environ.get("SLOGATE_K8S_MATRIX", "").split() or matrix_releases()
RELEASES = [*OLDER, CURRENT]
FIELD_MANAGER = "slogate-version-matrix"
OWNER_UID = "0b5e2c1a-1111-2222-3333-444455556666"
OTHER_REVISION = "0123abcd"
"""The stable revision in the canary variant: any revision but the example's own."""


def minor_of(release: str) -> int:
    """``v1.30.14`` -> 30. Pure."""
    m = re.fullmatch(r"v?1\.(\d+)(\.\d+)?(-.*)?", release)
    assert m, f"not a Kubernetes 1.x release: {release}"
    return int(m.group(1))


# ------------------------------------------------------------------------- what needs a newer minor
def _pod_volumes(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("kind") != "Deployment":
        return []
    return obj["spec"]["template"]["spec"].get("volumes") or []


@dataclass(frozen=True)
class Feature:
    """A Kubernetes feature that some objects need and the oldest supported minor lacks."""

    name: str
    since: int
    """The first minor where it is on by default (an older server must reject the object)."""
    uses: Callable[[dict[str, Any]], bool]
    evidence: str


FEATURES = [
    Feature(
        name="image volume (model.source oci://)",
        since=35,
        uses=lambda obj: any("image" in v for v in _pod_volumes(obj)),
        evidence=(
            "ImageVolume: alpha 1.31, beta 1.33 (off), on by default 1.35; "
            "k8s.io/api core/v1 ImageVolumeSource (absent in v0.30)"
        ),
    ),
]


# ------------------------------------------------------------------------------------ the server
@dataclass
class Outcome:
    """What the server said to one dry-run apply."""

    obj: dict[str, Any]
    status: int
    message: str = ""
    dropped: list[str] = field(default_factory=list)
    warnings: str = ""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        meta = self.obj["metadata"]
        where = f"{meta['namespace']}/" if meta.get("namespace") else ""
        return f"{self.obj['apiVersion']} {self.obj['kind']} {where}{meta['name']}"


def dropped_fields(sent: Any, got: Any, path: str = "") -> list[str]:
    """Paths of ``sent`` that ``got`` (the server's answer) lacks or holds with another value. Pure.

    Values compare as the controller compares them (``compare.is_subset``: quantities by value); an
    empty map or list, or a null, counts as absent (the wire format omits them).

    >>> dropped_fields({"a": {"b": 1, "c": {}}}, {"a": {"b": 1}})
    []
    >>> dropped_fields({"a": [{"sleep": {"seconds": 10}}]}, {"a": [{}]})
    ['.a[0].sleep']
    """
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in sent.items():
            if key not in got:
                if value not in ({}, [], None):
                    out.append(f"{path}.{key}")
                continue
            out += dropped_fields(value, got[key], f"{path}.{key}")
        return out
    if isinstance(sent, list):
        if not isinstance(got, list) or len(sent) != len(got):
            return [f"{path} (sent {len(sent)} items)"]
        return [
            p
            for i, (s, g) in enumerate(zip(sent, got, strict=True))
            for p in dropped_fields(s, g, f"{path}[{i}]")
        ]
    return [] if is_subset(sent, got) else [f"{path} (sent {sent!r}, got {got!r})"]


class Server:
    """One release's API server: raw requests, discovery, strict (dry-run) server-side apply."""

    def __init__(self, cluster: LocalCluster, release: str) -> None:
        self.cluster = cluster
        self.release = release
        self.minor = minor_of(release)
        self.api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}
        self.crd_errors: dict[str, str] = {}
        self.namespaces: set[str] = set()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any, str]:
        """One request: (status, decoded body, the Warning header)."""
        resp = Kube(self.api).request(method, path, body=body, query=query, content_type=content_type)
        raw = resp.data
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = {"message": raw.decode(errors="replace")}
        return resp.status, data, resp.headers.get("Warning", "")

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from discovery; raises LookupError when not served."""
        if kind not in self._resources.get(api_version, {}):
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, body, _ = self.call("GET", base)
            if status != 200:
                raise LookupError(f"{api_version} is not served by {self.release} ({status})")
            self._resources[api_version] = {
                r["kind"]: (r["name"], r["namespaced"]) for r in body["resources"] if "/" not in r["name"]
            }
        if kind not in self._resources[api_version]:
            raise LookupError(f"{api_version} {kind} is not served by {self.release}")
        return self._resources[api_version][kind]

    def path(self, obj: dict[str, Any]) -> str:
        plural, namespaced = self.resource(obj["apiVersion"], obj["kind"])
        base = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
        ns = obj["metadata"].get("namespace") or "default"
        return base + (f"/namespaces/{ns}" if namespaced else "") + f"/{plural}/{obj['metadata']['name']}"

    def apply(self, obj: dict[str, Any], *, dry_run: bool = True) -> Outcome:
        """Server-side apply with strict field validation; dry-run unless told otherwise."""
        query = [("fieldManager", FIELD_MANAGER), ("force", "true"), ("fieldValidation", "Strict")]
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            path = self.path(obj)
        except LookupError as exc:
            return Outcome(obj, 404, str(exc))
        status, body, warnings = self.call(
            "PATCH", path, body=obj, query=query, content_type="application/apply-patch+yaml"
        )
        if not 200 <= status < 300:
            return Outcome(obj, status, (body or {}).get("message", ""), warnings=warnings)
        # A write of the main resource ignores status (upstream CRD files carry an empty one).
        sent = {k: v for k, v in obj.items() if k != "status"}
        return Outcome(obj, status, dropped=dropped_fields(sent, body), warnings=warnings)

    def ensure_namespace(self, name: str) -> None:
        if name in self.namespaces:
            return
        status, body, _ = self.call("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
        assert status in (201, 409), f"namespace {name}: {status} {body}"
        self.namespaces.add(name)

    def install_crds(self) -> None:
        """slogate's CRD and the third-party ones (Gateway API, KEDA, prometheus-operator), for real
        and strictly; the errors go to ``crd_errors`` (a test reports them), the rest must establish."""
        installed = []
        for crd in crds.our_crds() + crds.optional_crds():
            outcome = self.apply(crd, dry_run=False)
            if outcome.accepted and not outcome.dropped:
                installed.append(crd)
            else:
                self.crd_errors[crd["metadata"]["name"]] = outcome.message or f"dropped {outcome.dropped}"
        deadline = time.monotonic() + 60
        waiting = {c["metadata"]["name"]: c for c in installed}
        while waiting and time.monotonic() < deadline:
            for name, crd in list(waiting.items()):
                gv = f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
                status, _, _ = self.call("GET", f"/apis/{gv}")
                _, got, _ = self.call(
                    "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                )
                conds = (got.get("status") or {}).get("conditions") or []
                if status == 200 and any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                    del waiting[name]
            time.sleep(0.2)
        for name in waiting:
            self.crd_errors[name] = "not Established within 60s"

    def dry_run_all(self, objects: list[dict[str, Any]]) -> list[Outcome]:
        for obj in objects:
            if obj["metadata"].get("namespace"):
                self.ensure_namespace(obj["metadata"]["namespace"])
        return [self.apply(obj) for obj in objects]


@pytest.fixture(scope="module", params=RELEASES)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """etcd and one release's kube-apiserver with the CRDs installed; stopped after the module."""
    release: str = request.param
    apiserver = None
    if release != CURRENT:
        apiserver = ensure_matrix_apiservers(release)[release] / "kube-apiserver"
    cluster = temporary_cluster(apiserver_only=True, apiserver_bin=apiserver, prometheus=False, bridge=False)
    try:
        cluster.up()
        s = Server(cluster, release)
        s.install_crds()
        yield s
    finally:
        left = cluster.down()
        shutil.rmtree(cluster.dir, ignore_errors=True)
        assert not left, f"still running after down(): {left}"


def check(server: Server, outcomes: list[Outcome]) -> None:
    """Every object is accepted whole, unless it needs a feature newer than the server's minor: then
    it must be rejected. One failure lists every object that disagrees, with the server's words."""
    problems = []
    for o in outcomes:
        needs = [f for f in FEATURES if f.uses(o.obj) and server.minor < f.since]
        if needs:
            if o.accepted and not o.dropped:
                names = ", ".join(f"{f.name} (from 1.{f.since})" for f in needs)
                problems.append(
                    f"{o.describe()}: accepted although it needs {names}: update FEATURES and docs"
                )
            continue
        if not o.accepted:
            problems.append(f"{o.describe()}: {o.status} {o.message}")
        elif o.dropped:
            problems.append(f"{o.describe()}: the server dropped {', '.join(o.dropped)}")
        elif re.search(r"deprecated|unknown field", o.warnings, re.I):
            problems.append(f"{o.describe()}: warning {o.warnings}")
    assert not problems, f"Kubernetes {server.release}:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------- the objects
def _examples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if is_model_deployment(doc):
                found.append((f"{path.relative_to(EXAMPLES).as_posix()}:{doc['metadata']['name']}", doc))
    return found


EXAMPLE_DOCS = _examples()
ALL_CAPS = Capabilities(keda=True, prometheus_operator=True, prometheus_rules=True, gateway_api=True)


def children(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the operator can build for one ModelDeployment, deduplicated. Pure.

    Variants: the spec's revision as stable with every optional API (ScaledObject, PodMonitor); as a
    canary next to another stable revision (the ``-canary`` Service, a canary-sized Deployment);
    with no optional API (an HPA instead of a ScaledObject). With ``gatewayAPI`` traffic: the
    HTTPRoute to stable only, split 75/25, mirroring to the canary, and to a fallback Service. With
    SLOs: the PrometheusRule.
    """
    name = doc["metadata"]["name"]
    namespace = doc["metadata"].get("namespace") or "default"
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    owner = Owner(name=name, uid=OWNER_UID)
    revision = revision_of(spec)
    common = {"name": name, "namespace": namespace, "spec": spec, "owner": owner}
    prom = "http://prometheus-operated.monitoring:9090"
    objects = [
        *build_desired(**common, caps=ALL_CAPS, stable_revision=revision, prometheus_url=prom).objects,
        *build_desired(
            **common,
            caps=ALL_CAPS,
            stable_revision=OTHER_REVISION,
            canary_revision=revision,
            canary_replicas=1,
            prometheus_url=prom,
        ).objects,
        *build_desired(**common, caps=Capabilities(), stable_revision=revision, prometheus_url=prom).objects,
    ]
    gateway = spec.rollout.traffic.gateway_api if spec.rollout.traffic else None
    if gateway is not None:
        route = {"name": name, "namespace": namespace, "owner": owner, "traffic": gateway}
        objects += [
            build_httproute(**route, canary_weight=0, canary=False, mirror=False),
            build_httproute(**route, canary_weight=25, canary=True, mirror=False),
            build_httproute(**route, canary_weight=0, canary=True, mirror=True),
            build_httproute(
                **route, canary_weight=0, canary=False, mirror=False, fallback_backend=("small", 80)
            ),
        ]
    if spec.slo is not None:
        objects.append(
            prometheus_rule(name=name, namespace=namespace, spec=spec, owner_reference=owner.reference())
        )
    unique: dict[str, dict[str, Any]] = {}
    for obj in objects:
        unique.setdefault(json.dumps(obj, sort_keys=True), obj)
    return list(unique.values())


def chart_objects(helm: str, values: dict[str, Any], release: str) -> list[dict[str, Any]]:
    """The chart rendered for one Kubernetes release (its ``kubeVersion`` constraint is checked)."""
    values_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"slogate-matrix-values-{os.getpid()}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    try:
        argv = [helm, "template", "slogate", str(CHART), "-n", "slogate-system", "--kube-version", release]
        result = subprocess.run(
            [*argv, "-f", str(values_file)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        values_file.unlink()
    assert result.returncode == 0, f"helm template --kube-version {release}: {result.stderr.strip()}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


# --------------------------------------------------------------------------------------- the tests
def test_the_oldest_release_is_the_charts_minimum() -> None:
    """The claim (Chart.yaml ``kubeVersion``) and the matrix start at the same minor."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    m = re.fullmatch(r">=\s*1\.(\d+)\.0(-0)?", chart["kubeVersion"].strip())
    assert m, f"kubeVersion {chart['kubeVersion']!r} is not of the form >=1.N.0-0"
    assert minor_of(RELEASES[0]) == int(m.group(1)), (
        f"Chart.yaml claims Kubernetes 1.{m.group(1)}+, the version matrix starts at {RELEASES[0]}"
    )


def test_the_server_is_the_release(server: Server) -> None:
    status, body, _ = server.call("GET", "/version")
    assert status == 200 and body["gitVersion"] == server.release, body


def test_the_crds_install_strictly(server: Server) -> None:
    assert server.crd_errors == {}, f"Kubernetes {server.release}:\n" + "\n".join(
        f"{name}: {message}" for name, message in server.crd_errors.items()
    )


@pytest.mark.parametrize("values_name", list(ALL_VALUE_SETS))
def test_the_chart_dry_runs(server: Server, helm: str, values_name: str) -> None:
    docs = chart_objects(helm, ALL_VALUE_SETS[values_name], server.release)
    for doc in docs:
        # helm install puts a namespaced object without a namespace into the release's namespace.
        try:
            if server.resource(doc["apiVersion"], doc["kind"])[1]:
                doc["metadata"].setdefault("namespace", "slogate-system")
        except LookupError:
            pass  # not served: the dry-run reports it
    check(server, server.dry_run_all(docs))


@pytest.mark.parametrize("doc", [pytest.param(doc, id=key) for key, doc in EXAMPLE_DOCS])
def test_an_example_and_its_children_dry_run(server: Server, doc: dict[str, Any]) -> None:
    check(server, server.dry_run_all([doc, *children(doc)]))


def test_every_feature_is_exercised() -> None:
    """Each entry of FEATURES is used by some example's objects (else it proves nothing)."""
    objects = [o for _, doc in EXAMPLE_DOCS for o in children(doc)]
    unused = [f.name for f in FEATURES if not any(f.uses(o) for o in objects)]
    assert not unused, f"no example exercises {unused}"
