"""The informers against a real API server: LIST, WATCH, deletions, re-watch, absent kinds."""

from __future__ import annotations

import threading
import time

from kubernetes import client

from slogate import constants as C
from slogate.adapters import cache
from slogate.adapters.cache import CachedKube, Informer, Watched
from slogate.adapters.kube import Kube
from slogate.dev.cluster import LocalCluster
from tests.integration.conftest import wait_for


def configmap(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {}}


def test_an_informer_lists_then_follows_every_change(cluster: LocalCluster, kube, namespace):
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(namespace, configmap("before", **{C.LABEL_MANAGED_BY: "slogate"}))
    core.create_namespaced_config_map(namespace, configmap("unlabelled"))
    seen: list[str] = []
    lock = threading.Lock()

    def on_change(obj: dict) -> None:
        with lock:
            seen.append(obj["metadata"]["name"])

    inf = Informer(
        Kube(kube), Watched("v1", "ConfigMap", selector=f"{C.LABEL_MANAGED_BY}=slogate"), namespace, on_change
    )
    inf.start()
    try:
        assert inf.synced.wait(30)
        assert [o["metadata"]["name"] for o in inf.store.list(namespace)] == [
            "before"
        ]  # server-side selector
        assert "managedFields" not in inf.store.get(namespace, "before")["metadata"]
        core.create_namespaced_config_map(namespace, configmap("after", **{C.LABEL_MANAGED_BY: "slogate"}))
        wait_for(lambda: inf.store.get(namespace, "after"), timeout=20, what="a created object in the store")
        core.patch_namespaced_config_map("after", namespace, {"data": {"k": "v"}})
        wait_for(
            lambda: (inf.store.get(namespace, "after") or {}).get("data") == {"k": "v"},
            timeout=20,
            what="an update in the store",
        )
        core.delete_namespaced_config_map("before", namespace)
        wait_for(lambda: inf.store.get(namespace, "before") is None, timeout=20, what="a deletion")
        with lock:
            assert {"before", "after"} <= set(seen) and "unlabelled" not in seen
    finally:
        inf.stop()


def test_a_watch_the_server_ends_is_resumed_without_a_relist(
    cluster: LocalCluster, kube, namespace, monkeypatch
):
    monkeypatch.setattr(cache, "WATCH_SECONDS", 2)  # the server ends each watch after 2 s
    core = client.CoreV1Api(kube)
    inf = Informer(Kube(kube), Watched("v1", "ConfigMap"), namespace)
    lists = cache.CACHE_LISTS.labels(kind="ConfigMap")
    inf.start()
    try:
        assert inf.synced.wait(30)
        before = lists._value.get()
        time.sleep(5)  # at least two watches ended by the server
        core.create_namespaced_config_map(namespace, configmap("late"))
        wait_for(
            lambda: inf.store.get(namespace, "late"), timeout=20, what="an object created after re-watches"
        )
        assert lists._value.get() == before  # resumed from the last version, not listed again
    finally:
        inf.stop()


def test_a_kind_the_server_does_not_serve_is_an_empty_synced_store(cluster: LocalCluster, kube, namespace):
    # Lease is served, but not under this made-up group: the LIST answers 404.
    inf = Informer(Kube(kube), Watched("example.invalid/v1", "Lease"), namespace)
    inf.start()
    try:
        assert inf.synced.wait(30)
        assert not inf.served
        assert CachedKube(Kube(kube), [inf]).list("example.invalid/v1", "Lease", namespace) == []
    finally:
        inf.stop()
