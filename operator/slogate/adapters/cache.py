"""Watch-fed caches: the reads of a reconcile pass cost no API request.

An ``Informer`` keeps one kind (in one namespace, or all) current in memory the way client-go's
reflector does: a paginated LIST, then a WATCH from the list's resourceVersion with bookmarks,
re-watched from the last version seen when the server ends it (every ``WATCH_SECONDS``), and
re-listed only when the server answers 410 Gone. Each change calls ``on_change`` with the object
(so the controller enqueues its ModelDeployment); a kind the server does not serve (an optional CRD
such as KEDA's) is an empty, synced store that is looked for again every ``ABSENT_RECHECK`` seconds;
a kind the operator may not list (namespaced RBAC for Pods cluster-wide) is a synced store whose
reads raise the server's ``PermanentError``, as a direct read would.

``CachedKube`` has the reads and writes of ``adapters.kube.Kube``: reads of cached kinds come from
the stores, everything else goes to the API server. Writes go to the server, and what the server
answers is written through to the store, so the next pass sees its own writes even before their
watch event arrives (an older watch event never replaces a newer object). Stored objects drop
``metadata.managedFields``, the bulk of a Deployment's size and never read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.rest import ApiException

from slogate import constants as C
from slogate.adapters.kube import Kube, _path, fallback_refs, map_api_error
from slogate.core.preflight import NodeInfo, node_info_from
from slogate.errors import PermanentError
from slogate.telemetry import CACHE_EVENTS, CACHE_LISTS, CACHE_OBJECTS

log = logging.getLogger("slogate.cache")

WATCH_SECONDS = 300
"""The server ends each watch after this long; the informer re-watches from the last version seen."""
ABSENT_RECHECK = 60.0
"""How often a kind the server does not serve is looked for again."""
PAGE = 500
"""Objects per LIST page."""

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds


def _rv(obj: dict[str, Any]) -> int | None:
    raw = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _trim(obj: dict[str, Any]) -> dict[str, Any]:
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


def parse_selector(selector: str | None) -> list[tuple[str, str | None]]:
    """``a=b,c`` as ``[("a", "b"), ("c", None)]``: equality and existence, what slogate uses. Pure."""
    out: list[tuple[str, str | None]] = []
    for part in (selector or "").split(","):
        part = part.strip()
        if not part:
            continue
        k, eq, v = part.partition("=")
        out.append((k.strip(), v.strip().lstrip("=") if eq else None))
    return out


def matches(labels: dict[str, str], selector: list[tuple[str, str | None]]) -> bool:
    """Whether ``labels`` satisfy a parsed selector. Pure."""
    return all((k in labels) if v is None else labels.get(k) == v for k, v in selector)


class Store:
    """Objects by (namespace, name), with an index by the ``slogate.io/deployment`` label and, when
    given, one more: ``refs(obj)`` names the keys an object refers to, and ``referrers(key)`` answers
    which objects refer to ``key`` (ModelDeployments by the fallback tiers they name) in O(answer)."""

    def __init__(self, refs: Callable[[dict[str, Any]], Iterable[Key]] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, dict[str, Any]] = {}
        self._by_owner: dict[Key, set[Key]] = {}
        self._refs = refs
        self._by_ref: dict[Key, set[Key]] = {}
        self._by_node: dict[str, set[Key]] = {}
        self.node_versions: dict[str, int] = {}
        """Per node name, a counter that moves whenever a pod bound to it changes."""

    def _owner(self, obj: dict[str, Any]) -> Key | None:
        owner = ((obj.get("metadata") or {}).get("labels") or {}).get(C.LABEL_DEPLOYMENT)
        return ((obj["metadata"].get("namespace") or ""), owner) if owner else None

    def _unindex(self, key: Key) -> None:
        old = self._items.get(key)
        if old is None:
            return
        if (o := self._owner(old)) is not None:
            keys = self._by_owner.get(o)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_owner[o]
        if node := (old.get("spec") or {}).get("nodeName"):
            self._by_node.get(node, set()).discard(key)
            self.node_versions[node] = self.node_versions.get(node, 0) + 1
        for ref in self._refs(old) if self._refs else ():
            keys = self._by_ref.get(ref)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_ref[ref]

    def _index(self, key: Key, obj: dict[str, Any]) -> None:
        if (o := self._owner(obj)) is not None:
            self._by_owner.setdefault(o, set()).add(key)
        for ref in self._refs(obj) if self._refs else ():
            self._by_ref.setdefault(ref, set()).add(key)
        if node := (obj.get("spec") or {}).get("nodeName"):
            self._by_node.setdefault(node, set()).add(key)
            self.node_versions[node] = self.node_versions.get(node, 0) + 1

    def referrers(self, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """The objects whose ``refs`` name (namespace, name), by the index."""
        with self._lock:
            return [self._items[k] for k in sorted(self._by_ref.get((namespace or "", name), ()))]

    def on_node(self, node: str) -> list[dict[str, Any]]:
        """The objects (pods) bound to ``node``."""
        with self._lock:
            return [self._items[k] for k in self._by_node.get(node, ())]

    def put(self, obj: dict[str, Any], *, newer_only: bool = True) -> bool:
        """Store ``obj`` unless the stored copy is newer (by resourceVersion); whether it was stored."""
        key = _key(obj)
        with self._lock:
            old = self._items.get(key)
            if newer_only and old is not None:
                a, b = _rv(old), _rv(obj)
                if a is not None and b is not None and b < a:
                    return False
            self._unindex(key)
            self._items[key] = obj
            self._index(key, obj)
            return True

    def remove(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            self._unindex(key)
            return self._items.pop(key, None)

    def replace(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the whole content (a re-list); returns the objects that are gone."""
        fresh = {_key(o): o for o in objects}
        with self._lock:
            gone = [o for k, o in self._items.items() if k not in fresh]
            for node in self._by_node:
                self.node_versions[node] = self.node_versions.get(node, 0) + 1
            self._items = {}
            self._by_owner = {}
            self._by_node = {}
            self._by_ref = {}
        for obj in fresh.values():
            self.put(obj, newer_only=False)
        return gone

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._items.get((namespace or "", name))

    def list(self, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        parsed = parse_selector(selector)
        owner = next((v for k, v in parsed if k == C.LABEL_DEPLOYMENT and v), None)
        with self._lock:
            if owner is not None and namespace is not None:
                candidates = [self._items[k] for k in self._by_owner.get((namespace, owner), ())]
            else:
                candidates = [
                    o for k, o in self._items.items() if namespace is None or k[0] == (namespace or "")
                ]
        return [o for o in candidates if matches((o["metadata"].get("labels") or {}), parsed)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass(frozen=True)
class Watched:
    """One kind the operator caches, and the server-side label selector of its LIST and WATCH."""

    api_version: str
    kind: str
    selector: str | None = None
    cluster_scoped: bool = False


class Informer:
    """LIST then WATCH one kind in one namespace (``None``: all) into a ``Store``; one thread."""

    def __init__(
        self,
        kube: Kube,
        watched: Watched,
        namespace: str | None,
        on_change: Callable[[dict[str, Any]], None] = lambda obj: None,
    ) -> None:
        self.kube = kube
        self.watched = watched
        self.namespace = None if watched.cluster_scoped else namespace
        self.on_change = on_change
        self.store = Store(fallback_refs if watched.kind == C.KIND else None)
        self.synced = threading.Event()
        self.forbidden: PermanentError | None = None
        self.served = True
        self._stop = threading.Event()
        self._rv: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.watched.kind}/{self.namespace or '*'}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # ---------------------------------------------------------------- the loop
    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                if self._rv is None:
                    self._list()
                if self._rv is not None:
                    self._watch()
                delay = 0.5
            except _Gone:
                continue  # _rv is reset: re-list at once
            except ApiException as exc:
                if exc.status == 410:  # the version is compacted away: start again from a LIST
                    self._rv = None
                    continue
                log.warning("watch of %s failed: %s", self.name, map_api_error(exc, self.name))
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
            except Exception:  # a dropped connection, a timeout: re-watch after a pause
                log.info("watch of %s interrupted", self.name, exc_info=True)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _list(self) -> None:
        w = self.watched
        path = _path(w.api_version, w.kind, self.namespace)
        items: list[dict[str, Any]] = []
        cont = ""
        while True:
            query = [("limit", str(PAGE))]
            if w.selector:
                query.append(("labelSelector", w.selector))
            if cont:
                query.append(("continue", cont))
            try:
                CACHE_LISTS.labels(kind=w.kind).inc()
                page = self.kube._call("GET", path, query=query)
            except ApiException as exc:
                if exc.status == 404:  # not served: an optional API that is not installed
                    self._absent()
                    return
                if exc.status in (401, 403):
                    self.forbidden = PermanentError(str(map_api_error(exc, f"list {w.kind}")))
                    self.served = True
                    self.store.replace([])
                    self.synced.set()
                    self._stop.wait(ABSENT_RECHECK)
                    return
                raise
            for item in page.get("items") or []:
                item.setdefault("apiVersion", w.api_version)
                item.setdefault("kind", w.kind)
                items.append(_trim(item))
            meta = page.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                self._rv = meta.get("resourceVersion")
                break
        self.forbidden = None
        self.served = True
        gone = self.store.replace(items)
        CACHE_OBJECTS.labels(kind=w.kind).set(len(self.store))
        self.synced.set()
        for obj in gone + items:
            self.on_change(obj)

    def _absent(self) -> None:
        self.served = False
        for obj in self.store.replace([]):
            self.on_change(obj)
        self.synced.set()
        self._stop.wait(ABSENT_RECHECK)

    def _watch(self) -> None:
        w = self.watched
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_SECONDS)),
            ("resourceVersion", self._rv or ""),
        ]
        if w.selector:
            query.append(("labelSelector", w.selector))
        method, url, headers, _, _ = self.kube.api.param_serialize(
            method="GET",
            resource_path=_path(w.api_version, w.kind, self.namespace),
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        resp = self.kube.api.call_api(
            method, url, header_params=headers, _request_timeout=(30, WATCH_SECONDS + 30)
        )
        raw = resp.response
        try:
            if not 200 <= resp.status < 300:
                resp.read()
                raise ApiException(http_resp=resp)
            buffer = b""
            for chunk in raw.stream(64 * 1024, decode_content=True):
                if self._stop.is_set():
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self._event(json.loads(line))
        finally:
            raw.release_conn()

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                self._rv = None
                raise _Gone
            raise RuntimeError(f"watch error: {obj.get('message')}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._rv = rv
        if kind == "BOOKMARK":
            return
        obj.setdefault("apiVersion", self.watched.api_version)
        obj.setdefault("kind", self.watched.kind)
        CACHE_EVENTS.labels(kind=self.watched.kind, type=kind or "").inc()
        if kind == "DELETED":
            self.store.remove(_key(obj))
        elif not self.store.put(_trim(obj)):
            return  # older than what a write of ours already stored
        CACHE_OBJECTS.labels(kind=self.watched.kind).set(len(self.store))
        self.on_change(obj)


class _Gone(Exception):
    """410 in a watch stream: re-list."""


class CachedKube:
    """``Kube``'s reads from informers' stores (the API server for kinds not cached), and its writes
    with what the server answered written through."""

    def __init__(self, kube: Kube, informers: list[Informer]) -> None:
        self.kube = kube
        self.api = kube.api
        self._informers: dict[tuple[str, str | None], Informer] = {}
        self._clustered: set[str] = set()
        self._node_infos: dict[str, tuple[tuple[Any, ...], NodeInfo]] = {}
        for inf in informers:
            self._informers[(inf.watched.kind, inf.namespace)] = inf
            if inf.namespace is None:
                self._clustered.add(inf.watched.kind)

    def _informer(self, kind: str, namespace: str | None) -> Informer | None:
        if kind in self._clustered:
            return self._informers[(kind, None)]
        return self._informers.get((kind, namespace)) if namespace is not None else None

    def wait_synced(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for inf in self._informers.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not inf.synced.wait(left):
                return False
        return True

    def _selector_covered(self, inf: Informer, selector: str | None) -> bool:
        """A read with ``selector`` is answered by ``inf`` only if the informer's own selector is
        implied by it (a store of slogate-managed objects cannot answer for all Services)."""
        wanted = set(parse_selector(selector))
        return all(term in wanted for term in parse_selector(inf.watched.selector))

    # ----------------------------------------------------------------- reads
    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        inf = self._informer(kind, namespace)
        if inf is None or inf.watched.selector:
            return self.kube.get(api_version, kind, namespace, name)
        if inf.forbidden is not None:
            raise inf.forbidden
        return inf.store.get(namespace, name)

    def list(
        self, api_version: str, kind: str, namespace: str | None, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        inf = self._informer(kind, namespace)
        if inf is None or not self._selector_covered(inf, selector):
            if namespace is None and kind not in self._clustered:
                # All namespaces, but the stores are per namespace: the union of what is watched.
                stores = [i for (k, _), i in self._informers.items() if k == kind]
                if stores and all(self._selector_covered(i, selector) for i in stores):
                    return [o for i in stores for o in self._read(i, None, selector)]
            return self.kube.list(api_version, kind, namespace, selector=selector)
        return self._read(inf, namespace, selector)

    def _read(self, inf: Informer, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
        if inf.forbidden is not None:
            raise inf.forbidden
        return inf.store.list(None if inf.watched.cluster_scoped else namespace, selector)

    def capabilities(self) -> Any:
        return self.kube.capabilities()

    def fallback_referrers(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The ModelDeployments in ``namespace`` that name ``name`` as a fallback tier, from the
        store's index: a pass costs O(referrers), not O(ModelDeployments in the namespace)."""
        inf = self._informer(C.KIND, namespace)
        if inf is None:
            return self.kube.fallback_referrers(namespace, name)
        return inf.store.referrers(namespace, name)

    def node_infos(self) -> list[NodeInfo]:
        """Every Node with what its pods hold, for the GPU preflight. A node's summary is recomputed
        only when the node or a pod bound to it changed, so a pass costs O(nodes), not O(pods)."""
        nodes = self.list("v1", "Node", None)
        pod_stores = [i.store for (k, _), i in self._informers.items() if k == "Pod" and i.forbidden is None]
        out = []
        for node in nodes:
            name = node["metadata"]["name"]
            version = (
                node["metadata"].get("resourceVersion"),
                *(s.node_versions.get(name, 0) for s in pod_stores),
            )
            memo = self._node_infos.get(name)
            if memo is None or memo[0] != version:
                pods = [p for s in pod_stores for p in s.on_node(name)]
                memo = self._node_infos[name] = (version, node_info_from(node, pods))
            out.append(memo[1])
        return out

    # ----------------------------------------------------------------- writes, written through
    def _through(self, obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("metadata") and obj.get("kind"):
            inf = self._informer(obj["kind"], obj["metadata"].get("namespace"))
            if inf is not None and matches(
                obj["metadata"].get("labels") or {}, parse_selector(inf.watched.selector)
            ):
                inf.store.put(_trim(dict(obj)))
        return obj

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._through(self.kube.apply(obj))

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._through(self.kube.create(obj))

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self._through(self.kube.replace(obj))

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self._through(self.kube.patch_status(namespace, name, status))

    def patch_metadata(self, namespace: str, name: str, metadata: dict[str, Any]) -> Any:
        return self._through(self.kube.patch_metadata(namespace, name, metadata))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        self.kube.delete(api_version, kind, namespace, name)
        inf = self._informer(kind, namespace)
        if inf is not None:
            inf.store.remove((namespace or "", name))

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.kube.scale(namespace, deployment, replicas)
        inf = self._informer("Deployment", namespace)
        live = inf.store.get(namespace, deployment) if inf is not None else None
        if inf is not None and live is not None:
            # The scale subresource answers with a Scale, not the Deployment: store the new size on a
            # copy (same resourceVersion, so the watch event of the change replaces it).
            copy = {**live, "spec": {**(live.get("spec") or {}), "replicas": replicas}}
            inf.store.put(copy, newer_only=False)

    def _write(self, *args: Any, **kw: Any) -> Any:  # post_event's raw write
        return self.kube._write(*args, **kw)


def watched_kinds(child_kinds: Iterable[tuple[str, str]]) -> list[Watched]:
    """What the operator caches: ModelDeployments, the kinds it owns (by its managed-by label),
    every Service (fallback tiers), every Pod (GPU preflight counts what other pods hold on a
    node) and every Node."""
    managed = f"{C.LABEL_MANAGED_BY}=slogate"
    out = [Watched(C.API_VERSION, C.KIND)]
    # Every Service, not only ours: a fallback tier may name any Service (its existence is read).
    out += [Watched(av, kind, selector=None if kind == "Service" else managed) for av, kind in child_kinds]
    out += [Watched("v1", "Pod"), Watched("v1", "Node", cluster_scoped=True)]
    return out


def informers_for(
    kube: Kube,
    namespaces: list[str],
    child_kinds: Iterable[tuple[str, str]],
    on_change: Callable[[dict[str, Any]], None],
) -> list[Informer]:
    """One informer per watched kind and namespace (one per kind cluster-wide when ``namespaces``
    is empty). Watching namespaces, the GPU preflight sees the Pods of those namespaces only, as
    namespaced RBAC allows; Nodes are always watched cluster-wide."""
    out = []
    for w in watched_kinds(child_kinds):
        if w.cluster_scoped or not namespaces:
            out.append(Informer(kube, w, None, on_change))
        else:
            out += [Informer(kube, w, ns, on_change) for ns in namespaces]
    return out
