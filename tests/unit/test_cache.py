"""The watch caches' pure parts: the store, selectors, write-through and which reads they answer.

The informers' LIST and WATCH against a real API server are in tests/integration/test_cache.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from slogate import constants as C
from slogate.adapters.cache import (
    CachedKube,
    Informer,
    Store,
    Watched,
    matches,
    parse_selector,
    watched_kinds,
)
from slogate.controller.handlers import owner_key
from slogate.controller.reconcile import CHILD_KINDS
from slogate.errors import PermanentError


def obj(kind: str, name: str, ns: str | None = "ns", rv: str = "1", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv, "labels": dict(labels)}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


@pytest.mark.parametrize(
    "selector, parsed",
    [
        (None, []),
        ("", []),
        ("a=b", [("a", "b")]),
        ("a==b, c", [("a", "b"), ("c", None)]),
        (
            f"{C.LABEL_DEPLOYMENT}=x,{C.LABEL_MANAGED_BY}=slogate",
            [(C.LABEL_DEPLOYMENT, "x"), (C.LABEL_MANAGED_BY, "slogate")],
        ),
    ],
)
def test_selectors_parse_as_equality_and_existence(selector, parsed):
    assert parse_selector(selector) == parsed


@pytest.mark.parametrize(
    "labels, selector, ok",
    [
        ({}, "", True),
        ({"a": "b"}, "a=b", True),
        ({"a": "c"}, "a=b", False),
        ({"a": "c"}, "a", True),
        ({}, "a", False),
        ({"a": "b", "c": "d"}, "a=b,c=d", True),
        ({"a": "b"}, "a=b,c=d", False),
    ],
)
def test_matches(labels, selector, ok):
    assert matches(labels, parse_selector(selector)) is ok


def test_an_older_version_never_replaces_a_newer_one():
    store = Store()
    assert store.put(obj("Deployment", "d", rv="10"))
    assert not store.put(obj("Deployment", "d", rv="9"))  # a late watch event of an earlier write
    assert store.get("ns", "d")["metadata"]["resourceVersion"] == "10"
    assert store.put(obj("Deployment", "d", rv="11"))
    assert store.get("ns", "d")["metadata"]["resourceVersion"] == "11"


def test_the_owner_index_follows_relabels_and_removals():
    store = Store()
    store.put(obj("Pod", "p1", **{C.LABEL_DEPLOYMENT: "a"}))
    store.put(obj("Pod", "p2", **{C.LABEL_DEPLOYMENT: "a"}))
    store.put(obj("Pod", "p3", ns="other", **{C.LABEL_DEPLOYMENT: "a"}))
    sel = f"{C.LABEL_DEPLOYMENT}=a"
    assert sorted(o["metadata"]["name"] for o in store.list("ns", sel)) == ["p1", "p2"]
    store.put(obj("Pod", "p2", rv="2", **{C.LABEL_DEPLOYMENT: "b"}))
    assert [o["metadata"]["name"] for o in store.list("ns", sel)] == ["p1"]
    assert [o["metadata"]["name"] for o in store.list("ns", f"{C.LABEL_DEPLOYMENT}=b")] == ["p2"]
    store.remove(("ns", "p1"))
    assert store.list("ns", sel) == []
    assert len(store.list(None)) == 2


def test_a_relist_reports_what_is_gone():
    store = Store()
    store.put(obj("Pod", "a"))
    store.put(obj("Pod", "b"))
    gone = store.replace([obj("Pod", "b", rv="5"), obj("Pod", "c")])
    assert [g["metadata"]["name"] for g in gone] == ["a"]
    assert sorted(o["metadata"]["name"] for o in store.list(None)) == ["b", "c"]


def test_what_is_watched():
    kinds = {(w.kind, w.selector) for w in watched_kinds(CHILD_KINDS)}
    managed = f"{C.LABEL_MANAGED_BY}=slogate"
    assert (C.KIND, None) in kinds
    assert ("Pod", None) in kinds and ("Node", None) in kinds  # the GPU preflight sees every pod
    for _, kind in CHILD_KINDS:
        # Owned kinds by label only, server-side; every Service (a fallback tier may be any).
        assert (kind, None if kind == "Service" else managed) in kinds


@pytest.mark.parametrize(
    "o, key",
    [
        ({"kind": C.KIND, "metadata": {"namespace": "n", "name": "m"}}, ("n", "m")),
        (obj("Deployment", "m-abc", ns="n", **{C.LABEL_DEPLOYMENT: "m"}), ("n", "m")),
        (obj("Pod", "other", ns="n"), None),
        (obj("Node", "gpu-0", ns=None), None),
    ],
)
def test_owner_key(o, key):
    assert owner_key(o) == key


class FakeKube:
    """Only what CachedKube passes through: records the calls it could not answer from a store."""

    def __init__(self) -> None:
        self.api = None
        self.calls: list[tuple[Any, ...]] = []

    def get(self, *a: Any) -> Any:
        self.calls.append(("get", *a))
        return None

    def list(self, *a: Any, selector: str | None = None) -> list[Any]:
        self.calls.append(("list", *a, selector))
        return []

    def apply(self, o: dict[str, Any]) -> dict[str, Any]:
        return {**o, "metadata": {**o["metadata"], "resourceVersion": "7", "managedFields": [{}]}}

    def scale(self, *a: Any) -> None:
        self.calls.append(("scale", *a))

    def delete(self, *a: Any) -> None:
        self.calls.append(("delete", *a))


def cached(namespaces: list[str] | None = None) -> tuple[CachedKube, FakeKube, dict[str, Informer]]:
    fake = FakeKube()
    infs = []
    for w in watched_kinds(CHILD_KINDS):
        for ns in [None] if w.cluster_scoped or not namespaces else namespaces:
            infs.append(Informer(fake, w, ns))  # type: ignore[arg-type]  # never started
    return CachedKube(fake, infs), fake, {f"{i.watched.kind}/{i.namespace}": i for i in infs}  # type: ignore[arg-type]


def test_reads_of_cached_kinds_send_no_request():
    kube, fake, infs = cached()
    infs["Deployment/None"].store.put(
        obj("Deployment", "m-1", **{C.LABEL_DEPLOYMENT: "m", C.LABEL_MANAGED_BY: "slogate"})
    )
    infs[f"{C.KIND}/None"].store.put(obj(C.KIND, "m"))
    sel = f"{C.LABEL_DEPLOYMENT}=m,{C.LABEL_MANAGED_BY}=slogate"
    assert [d["metadata"]["name"] for d in kube.list("apps/v1", "Deployment", "ns", selector=sel)] == ["m-1"]
    assert kube.get(C.API_VERSION, C.KIND, "ns", "m") is not None
    assert kube.get(C.API_VERSION, C.KIND, "ns", "absent") is None
    assert kube.list("v1", "Node", None) == []
    assert fake.calls == []


def test_a_read_the_store_cannot_answer_goes_to_the_server():
    kube, fake, _ = cached()
    # Only slogate-managed Deployments are cached: one by name may exist without our label.
    kube.get("apps/v1", "Deployment", "ns", "theirs")
    # A list without our label cannot be answered by a store of labelled objects.
    kube.list("apps/v1", "Deployment", "ns", selector=f"{C.LABEL_DEPLOYMENT}=m")
    kube.list("v1", "ConfigMap", "ns")  # not cached at all
    assert [c[:2] for c in fake.calls] == [("get", "apps/v1"), ("list", "apps/v1"), ("list", "v1")]
    assert kube.get("v1", "Service", "ns", "their-service") is None  # every Service is cached
    assert len(fake.calls) == 3


def test_watching_namespaces_reads_only_those():
    kube, fake, infs = cached(["a", "b"])
    infs["Pod/a"].store.put(obj("Pod", "p", ns="a"))
    infs["Pod/b"].store.put(obj("Pod", "q", ns="b"))
    assert sorted(p["metadata"]["name"] for p in kube.list("v1", "Pod", None)) == ["p", "q"]
    kube.get(C.API_VERSION, C.KIND, "c", "m")  # an unwatched namespace: the server answers
    assert fake.calls and fake.calls[0][0] == "get"


def test_a_forbidden_kind_raises_the_servers_error_as_a_direct_read_would():
    kube, _, infs = cached()
    infs["Node/None"].forbidden = PermanentError("list Node: 403 nodes is forbidden")
    with pytest.raises(PermanentError, match="403"):
        kube.list("v1", "Node", None)


def test_writes_are_written_through_without_managed_fields():
    kube, _, infs = cached()
    d = obj("Deployment", "m-1", **{C.LABEL_DEPLOYMENT: "m", C.LABEL_MANAGED_BY: "slogate"})
    d["spec"] = {"replicas": 1}
    kube.apply(d)
    stored = infs["Deployment/None"].store.get("ns", "m-1")
    assert stored["metadata"]["resourceVersion"] == "7" and "managedFields" not in stored["metadata"]
    kube.scale("ns", "m-1", 3)
    assert infs["Deployment/None"].store.get("ns", "m-1")["spec"]["replicas"] == 3
    kube.delete("apps/v1", "Deployment", "ns", "m-1")
    assert infs["Deployment/None"].store.get("ns", "m-1") is None


def test_an_applied_object_outside_the_informers_selector_is_not_cached():
    kube, _, infs = cached()
    kube.apply(obj("Deployment", "unlabelled"))
    assert infs["Deployment/None"].store.get("ns", "unlabelled") is None


def test_informers_start_unsynced():
    inf = Informer(FakeKube(), Watched("v1", "Pod"), None)  # type: ignore[arg-type]
    assert not inf.synced.is_set()


def gpu_pod(name: str, node: str, gpus: int, rv: str = "1") -> dict[str, Any]:
    p = obj("Pod", name, rv=rv)
    p["spec"] = {
        "nodeName": node,
        "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
    }
    return p


def test_node_summaries_follow_the_pods_bound_to_each_node():
    kube, _, infs = cached()
    node = obj("Node", "gpu-0", ns=None)
    node["status"] = {
        "allocatable": {"nvidia.com/gpu": "8"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    infs["Node/None"].store.put(node)
    pods = infs["Pod/None"].store
    pods.put(gpu_pod("a", "gpu-0", 2))
    pods.put(gpu_pod("b", "gpu-0", 1))
    pods.put(gpu_pod("elsewhere", "gpu-1", 4))
    assert [(i.name, i.requested) for i in kube.node_infos()] == [("gpu-0", {"nvidia.com/gpu": 3})]
    first = kube.node_infos()[0]
    assert kube.node_infos()[0] is first  # nothing changed: the summary is reused
    pods.remove(("ns", "b"))
    assert kube.node_infos()[0].requested == {"nvidia.com/gpu": 2}
    pods.put(gpu_pod("c", "gpu-0", 4))
    assert kube.node_infos()[0].requested == {"nvidia.com/gpu": 6}
    pods.put(gpu_pod("c", "gpu-1", 4, rv="2"))  # rebound elsewhere: leaves gpu-0
    assert kube.node_infos()[0].requested == {"nvidia.com/gpu": 2}


def md_with_fallback(name: str, *targets: str, rv: str = "1") -> dict[str, Any]:
    o = obj(C.KIND, name, rv=rv)
    o["spec"] = {
        "fallback": {"targets": [{"modelDeployment": t} for t in targets] + [{"service": {"name": "s"}}]}
    }
    return o


def test_fallback_referrers_come_from_an_index_that_follows_spec_changes():
    """The aliases a pass needs (who falls back to me?) cost O(referrers), not a scan of every
    ModelDeployment in the namespace, and no request."""
    kube, fake, infs = cached()
    store = infs[f"{C.KIND}/None"].store
    store.put(md_with_fallback("chat", "big"))
    store.put(md_with_fallback("code", "big", "small"))
    store.put(md_with_fallback("big"))
    for i in range(100):
        store.put(obj(C.KIND, f"m-{i}"))
    names = lambda target: [o["metadata"]["name"] for o in kube.fallback_referrers("ns", target)]  # noqa: E731
    assert names("big") == ["chat", "code"] and names("small") == ["code"] and names("m-1") == []
    store.put(md_with_fallback("chat", "small", rv="2"))  # chat now falls back to small instead
    assert names("big") == ["code"] and names("small") == ["chat", "code"]
    store.remove(("ns", "code"))
    assert names("big") == [] and names("small") == ["chat"]
    store.replace([md_with_fallback("x", "big")])
    assert names("big") == ["x"] and names("small") == []
    assert fake.calls == []
