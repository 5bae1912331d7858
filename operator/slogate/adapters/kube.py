"""The Kubernetes adapter: server-side apply with one field manager, reads, deletes, status patches.

Synchronous (the official client); the controller calls it through ``asyncio.to_thread``. Every
write is counted in ``slogate_api_writes_total``. ``ApiException`` maps to ``TransientError``
(409, 429, 5xx) or ``PermanentError`` (400, 403, 422) carrying the server's message.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from slogate import constants as C
from slogate.core.naming import Capabilities
from slogate.core.preflight import NodeInfo, node_info_from
from slogate.errors import PermanentError, TransientError
from slogate.telemetry import API_READS, API_WRITES

PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "NetworkPolicy": "networkpolicies",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "ScaledObject": "scaledobjects",
    "PodMonitor": "podmonitors",
    "HTTPRoute": "httproutes",
    "InferencePool": "inferencepools",
    "ConfigMap": "configmaps",
    "Pod": "pods",
    "Node": "nodes",
    "PrometheusRule": "prometheusrules",
    "Lease": "leases",
    C.KIND: C.PLURAL,
}
CLUSTER_SCOPED = {"Node"}


def _path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None, sub: str | None = None
) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    plural = PLURALS[kind]
    path = (
        base + (f"/namespaces/{namespace}" if namespace and kind not in CLUSTER_SCOPED else "") + f"/{plural}"
    )
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


def map_api_error(exc: ApiException, what: str) -> Exception:
    """An ``ApiException`` as a slogate error. Pure."""
    try:
        message = json.loads(exc.body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    status = exc.status or 0
    if status in (409, 429) or status >= 500 or status == 0:
        retry = 1.0
        if exc.headers and exc.headers.get("Retry-After"):
            try:
                retry = float(exc.headers["Retry-After"])
            except ValueError:
                pass
        return TransientError(f"{what}: {status} {message}", delay=retry)
    return PermanentError(f"{what}: {status} {message}")


def fallback_refs(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """The ModelDeployments a ModelDeployment names as fallback tiers, as (namespace, name). Pure."""
    ns = obj["metadata"].get("namespace") or ""
    fb = (obj.get("spec") or {}).get("fallback") or {}
    return [(ns, t["modelDeployment"]) for t in fb.get("targets") or [] if t.get("modelDeployment")]


class Kube:
    """Thin access to the API server for one operator process."""

    def __init__(self, api_client: client.ApiClient, *, discovery_ttl: float = 60.0) -> None:
        self.api = api_client
        self._caps: tuple[float, Capabilities] | None = None
        self._ttl = discovery_ttl
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- raw calls
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One raw request and its response, read (``status``, ``data``, ``headers``), whatever its status."""
        method_, url, headers, _, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            auth_settings=["BearerToken"],
        )
        # The client serialises dicts for JSON content types; an apply patch is sent as text (JSON is YAML).
        payload = json.dumps(body) if body is not None and "yaml" in content_type else body
        resp = self.api.call_api(method_, url, header_params=headers, body=payload)
        resp.read()
        return resp

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        """One raw request (``request``'s arguments), its JSON body; raises ``ApiException`` on a non-2xx answer."""
        resp = self.request(method, path, **kw)
        if not 200 <= resp.status < 300:
            raise ApiException(http_resp=resp)
        raw = resp.data
        return json.loads(raw) if raw else None

    def _write(self, verb: str, kind: str, method: str, path: str, **kw: Any) -> Any:
        API_WRITES.labels(verb=verb, kind=kind).inc()
        try:
            return self._call(method, path, **kw)
        except ApiException as exc:
            raise map_api_error(exc, f"{verb} {kind} {path}") from exc

    # ----------------------------------------------------------------- reads
    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        API_READS.labels(verb="get", kind=kind).inc()
        try:
            return self._call("GET", _path(api_version, kind, namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise map_api_error(exc, f"get {kind} {namespace}/{name}") from exc

    def list(
        self, api_version: str, kind: str, namespace: str | None, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace (all namespaces when None), optionally by label selector."""
        query = [("labelSelector", selector)] if selector else []
        API_READS.labels(verb="list", kind=kind).inc()
        try:
            result = self._call("GET", _path(api_version, kind, namespace), query=query)
        except ApiException as exc:
            if exc.status == 404:  # the API is not served (an optional CRD)
                return []
            raise map_api_error(exc, f"list {kind}") from exc
        items = result.get("items", [])
        for item in items:  # lists omit kind/apiVersion on items
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def fallback_referrers(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The ModelDeployments in ``namespace`` that name ``name`` as a fallback tier (a LIST; the
        cache answers from an index instead)."""
        return [
            md for md in self.list(C.API_VERSION, C.KIND, namespace) if (namespace, name) in fallback_refs(md)
        ]

    def capabilities(self) -> Capabilities:
        """Optional APIs, from discovery, cached for ``discovery_ttl`` seconds."""
        with self._lock:
            if self._caps and time.monotonic() - self._caps[0] < self._ttl:
                return self._caps[1]

        resources: dict[str, set[str]] = {}  # one discovery request per group version

        def served(group_version: str, plural: str) -> bool:
            if group_version not in resources:
                try:
                    res = self._call("GET", f"/apis/{group_version}")
                except ApiException as exc:
                    if exc.status != 404:
                        raise map_api_error(exc, f"discovery {group_version}") from exc
                    res = {}
                resources[group_version] = {r.get("name") for r in res.get("resources", [])}
            return plural in resources[group_version]

        caps = Capabilities(
            keda=served("keda.sh/v1alpha1", "scaledobjects"),
            prometheus_operator=served("monitoring.coreos.com/v1", "podmonitors"),
            prometheus_rules=served("monitoring.coreos.com/v1", "prometheusrules"),
            gateway_api=served("gateway.networking.k8s.io/v1", "httproutes"),
            inference_pool=served("inference.networking.k8s.io/v1", "inferencepools"),
        )
        with self._lock:
            self._caps = (time.monotonic(), caps)
        return caps

    def node_infos(self) -> list[NodeInfo]:
        """Every Node with what its pods hold, for the GPU preflight: two LISTs (a watch cache,
        ``adapters.cache.CachedKube``, answers this without a request). Without the right to list
        Pods cluster-wide, free capacity is estimated from allocatable only."""
        nodes = self.list("v1", "Node", None)
        try:
            all_pods = self.list("v1", "Pod", None)
        except PermanentError:
            all_pods = []
        by_node: dict[str, list[dict[str, Any]]] = {}
        for p in all_pods:
            if node := (p.get("spec") or {}).get("nodeName"):
                by_node.setdefault(node, []).append(p)
        return [node_info_from(n, by_node.get(n["metadata"]["name"], [])) for n in nodes]

    # ----------------------------------------------------------------- writes
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with the operator's field manager, forcing conflicts (we own our fields)."""
        meta = obj["metadata"]
        path = _path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        return self._write(
            "apply",
            obj["kind"],
            "PATCH",
            path,
            body=obj,
            query=[("fieldManager", C.FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object (409 when it exists maps to TransientError)."""
        meta = obj["metadata"]
        return self._write(
            "create",
            obj["kind"],
            "POST",
            _path(obj["apiVersion"], obj["kind"], meta.get("namespace")),
            body=obj,
        )

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an object with optimistic concurrency (its resourceVersion); 409 on a lost race."""
        meta = obj["metadata"]
        return self._write(
            "update",
            obj["kind"],
            "PUT",
            _path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
            body=obj,
        )

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """Delete (background propagation); a missing object is fine."""
        try:
            self._write(
                "delete",
                kind,
                "DELETE",
                _path(api_version, kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except PermanentError as exc:
            if " 404 " not in str(exc):
                raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the ModelDeployment's status subresource."""
        return self._write(
            "patch",
            C.KIND,
            "PATCH",
            _path(C.API_VERSION, C.KIND, namespace, name, "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def patch_metadata(self, namespace: str, name: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the ModelDeployment's metadata (to clear a consumed command annotation)."""
        return self._write(
            "patch",
            C.KIND,
            "PATCH",
            _path(C.API_VERSION, C.KIND, namespace, name),
            body={"metadata": metadata},
            content_type="application/merge-patch+json",
        )

    def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        """Set a Deployment's replicas through its scale subresource (older revisions are only scaled)."""
        self._write(
            "patch",
            "Deployment",
            "PATCH",
            _path("apps/v1", "Deployment", namespace, deployment, "scale"),
            body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )


def event_body(obj: dict[str, Any], *, type: str, reason: str, message: str, now: str) -> dict[str, Any]:
    """A core/v1 Event about ``obj`` from the slogate component. Pure."""
    meta = obj["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", C.API_VERSION),
            "kind": obj.get("kind", C.KIND),
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "slogate"},
        "reportingComponent": "slogate.io/operator",
        "reportingInstance": "slogate",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def post_event(kube: Kube, obj: dict[str, Any], *, type: str, reason: str, message: str, now: str) -> None:
    """Post an Event; failures are logged by the caller, never fatal (an Event is a courtesy)."""
    body = event_body(obj, type=type, reason=reason, message=message, now=now)
    kube._write(
        "create", "Event", "POST", f"/api/v1/namespaces/{body['metadata']['namespace']}/events", body=body
    )
