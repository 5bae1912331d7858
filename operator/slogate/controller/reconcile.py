"""Reconcile one ModelDeployment: read → observe → decide (core) → apply → write status.

A list of named steps with early returns (argo-rollouts' rolloutCanary is the model). Everything
that decides is in ``slogate.core``; this module only reads, calls the core and writes. It writes
nothing when nothing changed: children are applied only when the live object lacks a desired
field, and status is patched only when ``status_patch`` is non-empty.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from slogate import constants as C
from slogate.adapters.kube import Kube, post_event
from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.config import OperatorConfig
from slogate.core.compare import is_subset
from slogate.core.conditions import set_condition
from slogate.core.desired import build_desired
from slogate.core.naming import Owner, revision_of
from slogate.core.preflight import Preflight, node_info_from, preflight, shape_of
from slogate.core.revisions import plan_revisions
from slogate.core.status import DeploymentObs, EventSpec, compute_status, status_patch
from slogate.errors import PermanentError
from slogate.telemetry import MANAGED_OBJECTS, RECONCILE_ERRORS, RECONCILE_SECONDS, RECONCILES

log = logging.getLogger("slogate.reconcile")

CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Result:
    """What a reconcile pass did; ``requeue_after`` asks for another pass sooner than the resync."""

    writes: int = 0
    requeue_after: float | None = None


class Reconciler:
    """Reconciles ModelDeployments with one Kube adapter and one configuration."""

    def __init__(self, kube: Kube, config: OperatorConfig, *, clock: Any = _now) -> None:
        self.kube = kube
        self.config = config
        self.clock = clock

    # ------------------------------------------------------------------ entry point
    def reconcile(self, namespace: str, name: str) -> Result:
        started = time.perf_counter()
        try:
            result = self._reconcile(namespace, name)
            RECONCILES.labels(result="success").inc()
            return result
        except Exception as exc:
            RECONCILES.labels(result="error").inc()
            RECONCILE_ERRORS.labels(error=type(exc).__name__).inc()
            raise
        finally:
            RECONCILE_SECONDS.observe(time.perf_counter() - started)

    def _reconcile(self, namespace: str, name: str) -> Result:
        result = Result()
        body = self.kube.get(C.API_VERSION, C.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Gone or going: owner references let the garbage collector remove the children.
            return result
        now = self.clock()
        generation = int(body["metadata"].get("generation") or 0)
        old_status: dict[str, Any] = body.get("status") or {}

        spec = self._parse_spec(body, old_status, generation, now, result)
        if spec is None:
            # Invalid spec: status says why; children are left exactly as they are.
            return result

        caps = self.kube.capabilities()
        owner = Owner(name=name, uid=body["metadata"]["uid"])
        children = self._list_children(namespace, name, owner.uid)
        existing = {
            d["metadata"]["labels"].get(C.LABEL_REVISION): d
            for d in children.get("Deployment", [])
            if d["metadata"].get("labels", {}).get(C.LABEL_REVISION)
        }
        current = revision_of(spec)
        stable = old_status.get("stableRevision")
        if stable not in existing:
            stable = None  # never deployed, or its Deployment was removed: deploy the spec directly
        candidate_obs = DeploymentObs.from_object(existing[current], current) if current in existing else None
        plan = plan_revisions(
            current=current,
            stable=stable,
            candidate=old_status.get("canaryRevision"),
            candidate_ready=bool(candidate_obs and candidate_obs.fully_ready and current != stable),
            existing=tuple(sorted(existing)),
        )

        pods = self.kube.list("v1", "Pod", namespace, selector=f"{C.LABEL_DEPLOYMENT}={name}")
        pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        check = self._preflight(spec, plan, existing, pods)

        prometheus_url = (
            spec.rollout.analysis.prometheus.url
            if spec.rollout.analysis.prometheus
            else self.config.prometheus_url
        )
        stable_desired = spec.replicas
        if spec.autoscaling and stable in existing:
            stable_desired = int(
                (existing[stable].get("spec") or {}).get("replicas") or spec.autoscaling.min_replicas
            )
        desired = build_desired(
            name=name,
            namespace=namespace,
            spec=spec,
            owner=owner,
            caps=caps,
            stable_revision=plan.stable,
            canary_revision=plan.candidate,
            canary_replicas=max(stable_desired, 1) if plan.candidate else 0,
            prometheus_url=prometheus_url,
        )
        objects = desired.objects
        if check is not None and not check.fits_at_all:
            # The shape can never be scheduled: create no pods, say why in status instead.
            objects = [o for o in objects if not (o["kind"] == "Deployment")]
        for obj in objects:
            self._preserve_track(obj, existing)
        result.writes += self._apply(objects, children, body)
        result.writes += self._prune(objects, children, plan.retire, namespace)

        # Observe again only what we need for status: Deployments after apply.
        observed = {}
        for d in self.kube.list("apps/v1", "Deployment", namespace, selector=f"{C.LABEL_DEPLOYMENT}={name}"):
            rev = d["metadata"].get("labels", {}).get(C.LABEL_REVISION)
            if rev in (plan.stable, plan.candidate):
                observed[rev] = DeploymentObs.from_object(d, rev)

        new_status, events = compute_status(
            generation=generation,
            plan=plan,
            deployments=observed,
            pods=pods,
            preflight=check,
            autoscaler=desired.autoscaler,
            notes=desired.notes,
            old=old_status,
            now=now,
        )
        result.writes += self._write_status(body, old_status, new_status, events, now)
        MANAGED_OBJECTS.labels(kind="ModelDeployment").set(1)
        if plan.candidate or new_status.get("phase") not in ("Ready",):
            result.requeue_after = 2.0
        return result

    # ------------------------------------------------------------------ steps
    def _parse_spec(
        self, body: dict[str, Any], old: dict[str, Any], generation: int, now: datetime, result: Result
    ) -> ModelDeploymentSpec | None:
        try:
            return ModelDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            conditions, _ = set_condition(
                list(old.get("conditions") or []),
                type="Ready",
                status="False",
                reason="InvalidSpec",
                message=problems,
                observed_generation=generation,
                now=now,
            )
            new = {
                **old,
                "observedGeneration": generation,
                "phase": "Failed",
                "conditions": conditions,
                "message": problems,
            }
            result.writes += self._write_status(
                body, old, new, [EventSpec("Warning", "InvalidSpec", problems)], now
            )
            return None

    def _list_children(self, namespace: str, name: str, uid: str) -> dict[str, list[dict[str, Any]]]:
        selector = f"{C.LABEL_DEPLOYMENT}={name},{C.LABEL_MANAGED_BY}=slogate"
        out: dict[str, list[dict[str, Any]]] = {}
        for api_version, kind in CHILD_KINDS:
            items = self.kube.list(api_version, kind, namespace, selector=selector)
            out[kind] = [
                i
                for i in items
                if any(r.get("uid") == uid for r in i["metadata"].get("ownerReferences") or [])
            ]
        return out

    def _preflight(
        self,
        spec: ModelDeploymentSpec,
        plan: Any,
        existing: dict[str, dict[str, Any]],
        pods: list[dict[str, Any]],
    ) -> Any:
        shape = shape_of(spec)
        if shape is None:
            return None
        current = revision_of(spec)
        deployment = existing.get(current)
        wanted = spec.replicas if not spec.autoscaling else spec.autoscaling.min_replicas
        if deployment is not None:
            wanted = int((deployment.get("spec") or {}).get("replicas") or wanted)
        mine = [p for p in pods if p["metadata"].get("labels", {}).get(C.LABEL_REVISION) == current]
        bound = [p for p in mine if (p.get("spec") or {}).get("nodeName")]
        needed = max(0, wanted - len(bound))
        if needed == 0 and wanted > 0:
            return Preflight(True, True, 0, "", f"all {wanted} replicas of revision {current} are scheduled")
        nodes = self.kube.list("v1", "Node", None)
        try:
            all_pods = self.kube.list("v1", "Pod", None)
        except PermanentError:
            all_pods = []  # namespaced RBAC: free capacity is then estimated from allocatable only
        by_node: dict[str, list[dict[str, Any]]] = {}
        for p in all_pods:
            node = (p.get("spec") or {}).get("nodeName")
            if node:
                by_node.setdefault(node, []).append(p)
        infos = [node_info_from(n, by_node.get(n["metadata"]["name"], [])) for n in nodes]
        return preflight(shape, infos, replicas=needed)

    def _preserve_track(self, obj: dict[str, Any], existing: dict[str, dict[str, Any]]) -> None:
        """Keep a revision's pod labels as they were created: relabelling the pod template of a
        promoted revision would restart every pod (and reload the model) for nothing."""
        if obj["kind"] != "Deployment":
            return
        rev = obj["metadata"]["labels"].get(C.LABEL_REVISION)
        live = existing.get(rev)
        if live is None:
            return
        live_track = live["spec"]["template"]["metadata"].get("labels", {}).get(C.LABEL_TRACK)
        if live_track:
            obj["metadata"]["labels"][C.LABEL_TRACK] = live_track
            obj["spec"]["template"]["metadata"]["labels"][C.LABEL_TRACK] = live_track

    def _apply(
        self, objects: list[dict[str, Any]], children: dict[str, list[dict[str, Any]]], body: dict[str, Any]
    ) -> int:
        writes = 0
        live_by_key = {(k, o["metadata"]["name"]): o for k, items in children.items() for o in items}
        for obj in objects:
            key = (obj["kind"], obj["metadata"]["name"])
            live = live_by_key.get(key)
            if live is None:
                live = self.kube.get(
                    obj["apiVersion"], obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
                )
            if live is not None and is_subset(obj, live):
                continue
            self.kube.apply(obj)
            writes += 1
            if live is None:
                log.info(
                    "created %s %s/%s", obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
                )
                if obj["kind"] == "Deployment":
                    self._event(
                        body, EventSpec("Normal", "Created", f"created Deployment {obj['metadata']['name']}")
                    )
                    writes += 1
            else:
                log.info(
                    "updated %s %s/%s", obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
                )
        return writes

    def _prune(
        self,
        objects: list[dict[str, Any]],
        children: dict[str, list[dict[str, Any]]],
        retire: tuple[str, ...],
        namespace: str,
    ) -> int:
        """Delete children no longer desired; a revision's Deployment only when the plan retires it."""
        wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
        writes = 0
        for api_version, kind in CHILD_KINDS:
            for live in children.get(kind, []):
                lname = live["metadata"]["name"]
                if kind == "Deployment":
                    if live["metadata"].get("labels", {}).get(C.LABEL_REVISION) not in retire:
                        continue
                elif (kind, lname) in wanted:
                    continue
                log.info("deleting %s %s/%s", kind, namespace, lname)
                self.kube.delete(api_version, kind, namespace, lname)
                writes += 1
        return writes

    def _write_status(
        self,
        body: dict[str, Any],
        old: dict[str, Any],
        new: dict[str, Any],
        events: list[EventSpec],
        now: datetime,
    ) -> int:
        writes = 0
        patch = status_patch(old, new)
        if patch:
            self.kube.patch_status(body["metadata"]["namespace"], body["metadata"]["name"], patch)
            writes += 1
        for ev in events:
            self._event(body, ev, now)
            writes += 1
        return writes

    def _event(self, body: dict[str, Any], ev: EventSpec, now: datetime | None = None) -> None:
        try:
            post_event(
                self.kube,
                body,
                type=ev.type,
                reason=ev.reason,
                message=ev.message,
                now=_rfc3339(now or self.clock()),
            )
        except Exception:
            log.warning("could not post event %s on %s", ev.reason, body["metadata"]["name"], exc_info=True)
