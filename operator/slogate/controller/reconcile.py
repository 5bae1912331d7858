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
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from slogate import constants as C
from slogate.adapters.kube import Kube, post_event
from slogate.adapters.prometheus import PrometheusSource
from slogate.api.types import parse_duration
from slogate.api.v1alpha1 import ModelDeploymentSpec, Router, Strategy, Verdict
from slogate.config import OperatorConfig
from slogate.core import cost, drift, engine_flags
from slogate.core.analysis import MetricsSource, base_threshold, objective_name, run_analysis
from slogate.core.compare import is_subset
from slogate.core.conditions import phase_from, set_condition
from slogate.core.desired import build_desired
from slogate.core.fallback import FallbackDecision, TierHealth, decide_fallback, find_target, target_id
from slogate.core.naming import Owner, deployment_name, revision_of
from slogate.core.preflight import Preflight, node_info_from, pod_extended_requests, preflight, shape_of
from slogate.core.rollout import (
    COMMANDS,
    Analysis,
    Command,
    Decision,
    Observed,
    RolloutState,
    analysis_due,
    plan,
)
from slogate.core.rules import prometheus_rule
from slogate.core.status import DeploymentObs, EventSpec, RevisionPlan, compute_status, status_patch
from slogate.core.traffic import backend_of_target, build_httproute, rollout_sizes, root_selector
from slogate.errors import PermanentError, PrometheusUnavailable
from slogate.telemetry import (
    MANAGED_OBJECTS,
    RECONCILE_ERRORS,
    RECONCILE_SECONDS,
    RECONCILES,
    forget_input_drift,
    forget_modeldeployment,
    record_cost,
    record_input_drift,
    record_modeldeployment,
)

log = logging.getLogger("slogate.reconcile")

ANNOTATION_COMMAND = f"{C.GROUP}/command"

CHILD_KINDS = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
)


TOKENS_INTERVAL = timedelta(seconds=30)
"""How long a token rate with traffic (and the node → GPU product map) is reused before asking again."""


def thresholds_of(spec: ModelDeploymentSpec) -> dict[str, float]:
    """The SLO's thresholds in base units by objective name, for the exported metrics."""
    return {objective_name(o): base_threshold(o) for o in spec.slo.objectives} if spec.slo else {}


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Result:
    """What a reconcile pass did; ``requeue_after`` asks for another pass sooner than the resync."""

    writes: int = 0
    requeue_after: float | None = None


def _not_ready(
    old: dict[str, Any], reason: str, message: str, generation: int, now: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """``Ready=False`` with ``reason`` and ``message`` set on the old status' conditions. Pure."""
    return set_condition(
        list(old.get("conditions") or []),
        type="Ready",
        status="False",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )


class Reconciler:
    """Reconciles ModelDeployments with one Kube adapter and one configuration."""

    def __init__(
        self,
        kube: Kube,
        config: OperatorConfig,
        *,
        clock: Any = _now,
        prices: cost.PriceTable = cost.BUILTIN_PRICES,
    ) -> None:
        self.kube = kube
        self.config = config
        self.clock = clock
        self._sources: dict[str, MetricsSource] = {}
        self._managed: dict[tuple[str, str], dict[str, int]] = {}
        self._stable_checks: dict[tuple[str, str], tuple[str | None, datetime, Verdict, str]] = {}
        self.prices = prices
        self._tokens: dict[tuple[str, str], tuple[str, datetime, float]] = {}
        self._node_products: tuple[datetime, dict[str, str]] | None = None
        self._drift_checks: dict[tuple[str, str], tuple[tuple[Any, ...], datetime]] = {}

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
            self._drift_checks.pop((namespace, name), None)
            forget_input_drift(namespace, name)
            self._tokens.pop((namespace, name), None)
            forget_modeldeployment(namespace, name)
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
        state = RolloutState.from_status(old_status)
        stable_size = self._stable_size(spec, existing, state.stable)
        cand = DeploymentObs.from_object(existing[current], current) if current in existing else None
        observed_rollout = Observed(
            current=current,
            stable_exists=state.stable in existing,
            candidate_ready=bool(cand and cand.fully_ready),
            candidate_full=bool(cand and cand.serves(stable_size)),
        )
        command = self._command(body)
        prometheus_url = (
            spec.rollout.analysis.prometheus.url
            if spec.rollout.analysis.prometheus
            else self.config.prometheus_url
        )
        analysis = None
        if state.canary == current and analysis_due(spec, state, now):
            verdict, results = run_analysis(
                self.metrics(prometheus_url),
                spec=spec,
                namespace=namespace,
                name=name,
                revision=current,
                stable_revision=state.stable,
            )
            analysis = Analysis(verdict, tuple(results))
        decision = plan(
            spec=spec, state=state, observed=observed_rollout, analysis=analysis, command=command, now=now
        )
        st = decision.state

        gpus_per_replica = spec.resources.gpu.count if spec.resources.gpu else 0
        notes: list[str] = []
        sizes = None
        if st.canary is None:
            canary_replicas = 0
        else:
            sizes = rollout_sizes(
                strategy=spec.rollout.strategy.value,
                weight=decision.canary_weight,
                promoting=st.promoting,
                mirror=decision.mirror,
                scaled_down=decision.candidate_scaled_down,
                stable_replicas=stable_size,
                canary_ready=cand.ready if cand else 0,
                gpus_per_replica=gpus_per_replica,
                max_surge_gpus=spec.rollout.gpu_budget.max_surge_gp_us,
                autoscaled=spec.autoscaling is not None,
            )
            canary_replicas = sizes.canary
            if sizes.note:
                notes.append(sizes.note)

        pods = self.kube.list("v1", "Pod", namespace, selector=f"{C.LABEL_DEPLOYMENT}={name}")
        pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        check = self._preflight(spec, existing, pods, canary_replicas if st.canary == current else None)
        if st.canary == current and not decision.candidate_scaled_down and canary_replicas == 0 and notes:
            # The GPU budget leaves no room for even one candidate replica: say so instead of waiting.
            check = Preflight(False, True, 0, "InsufficientGPU", notes[-1])

        fallback = self._fallback(spec, namespace, name, st, existing, old_status, prometheus_url, now)
        desired = build_desired(
            name=name,
            namespace=namespace,
            spec=spec,
            owner=owner,
            caps=caps,
            stable_revision=st.stable or current,
            canary_revision=st.canary,
            canary_replicas=canary_replicas,
            prometheus_url=prometheus_url,
            aliases=self._aliases(namespace, name),
        )
        objects = list(desired.objects)
        notes += desired.notes  # settings the spec asks for that cannot apply: the headline says so
        if caps.prometheus_rules and spec.slo:
            # Recording rules and multiwindow burn-rate alerts generated from the SLO (docs/alerting.md).
            objects.append(
                prometheus_rule(name=name, namespace=namespace, spec=spec, owner_reference=owner.reference())
            )
        self._route(
            objects,
            spec,
            name,
            namespace,
            owner,
            caps,
            st,
            decision,
            notes,
            fallback,
            candidate_ready=observed_rollout.candidate_ready,
            route_weight=sizes.route_weight if sizes is not None else 0,
        )
        if check is not None and not check.fits_at_all:
            # The shape can never be scheduled: create no pods, say why in status instead.
            objects = [o for o in objects if o["kind"] != "Deployment"]
        for obj in objects:
            self._preserve_track(obj, existing)
        if spec.autoscaling and st.stable == current and state.stable != current and current in existing:
            # Promotion under an autoscaler: hand spec.replicas over before our apply stops setting it,
            # so the promoted revision keeps its size instead of falling back to the default of 1.
            live = int((existing[current].get("spec") or {}).get("replicas") or 1)
            self.kube.scale(namespace, deployment_name(name, current), live)
            result.writes += 1
        if sizes is not None and sizes.stable is not None and st.stable in existing and st.stable != current:
            # The stable track shrinks as a promoted candidate becomes Ready (within the GPU budget),
            # and is back at full size whenever no promotion is under way.
            live = int((existing[st.stable].get("spec") or {}).get("replicas") or 0)
            if live != sizes.stable and st.stable not in decision.retire:
                self.kube.scale(namespace, deployment_name(name, st.stable), sizes.stable)
                result.writes += 1
        result.writes += self._apply(objects, children, body)

        # Observe again only what we need for status: Deployments after apply.
        observed = {}
        for d in self.kube.list("apps/v1", "Deployment", namespace, selector=f"{C.LABEL_DEPLOYMENT}={name}"):
            rev = d["metadata"].get("labels", {}).get(C.LABEL_REVISION)
            if rev in (st.stable, st.canary):
                observed[rev] = DeploymentObs.from_object(d, rev)
        plan_view = RevisionPlan(
            stable=st.stable or current, candidate=st.canary if st.canary and not st.outcome else None
        )
        rollout_events = [EventSpec(*e) for e in decision.events]
        new_status, events = compute_status(
            generation=generation,
            plan=plan_view,
            deployments=observed,
            pods=pods,
            preflight=check,
            autoscaler=desired.autoscaler,
            notes=list(desired.autoscaler_notes),
            old=old_status,
            now=now,
            rollout_phase=decision.rollout_phase,
            rolled_back=st.outcome_message if st.outcome else None,
        )
        new_status.update(st.to_status())
        if st.waiting_for and new_status.get("phase") == "Progressing":
            new_status["message"] = st.waiting_for  # why the step does not complete, for kubectl and SREs
        if notes and new_status.get("phase") in ("Progressing", "Ready", "Paused"):
            # Traffic and budget notes (an approximated weight, a missing Gateway API) are worth the headline.
            new_status["message"] = "; ".join(dict.fromkeys(notes))
        if fallback is not None:
            rollout_events.extend(self._fallback_status(new_status, fallback, generation, now, decision))
        rollout_events.extend(
            self._input_drift(
                spec, namespace, name, st.stable or current, new_status, generation, prometheus_url, now
            )
        )
        self._count_managed(namespace, name, objects)
        pod_gpus = [
            pod_extended_requests(p).get(spec.resources.gpu.resource, 0) if spec.resources.gpu else 0
            for p in pods
        ]
        running = [
            g
            for g, p in zip(pod_gpus, pods, strict=True)
            if (p.get("status") or {}).get("phase") == "Running"
        ]
        record_modeldeployment(
            namespace,
            name,
            new_status,
            events=[(e.type, e.reason) for e in rollout_events],
            gpus_requested=sum(pod_gpus),
            gpus_running=sum(running),
            thresholds=thresholds_of(spec),
            cause=decision.cause,
        )
        rollout_events.extend(
            self._cost(spec, namespace, name, pods, new_status, generation, prometheus_url, now)
        )
        new_status["sloVerdict"] = st.last_verdict or old_status.get("sloVerdict")
        result.writes += self._write_status(body, old_status, new_status, rollout_events + events, now)
        # Deletions come after the status that records why: an operator killed in between finds the
        # promotion recorded and the old revision an orphan, which this pass then deletes. (Deleting
        # first, a restart found stable's Deployment gone and redeployed the spec as a new first
        # revision, losing the promotion from history.)
        result.writes += self._prune(
            objects, children, decision.retire, namespace, keep=(st.stable, st.canary)
        )
        if command is not None:
            result.writes += self._clear_command(body)
        requeue = decision.requeue_after
        if new_status.get("phase") not in ("Ready", "RolledBack", "Failed"):
            requeue = min(requeue, 2.0) if st.canary is None else requeue
        result.requeue_after = requeue
        return result

    # ------------------------------------------------------------------ fallback
    def _aliases(self, namespace: str, name: str) -> list[str]:
        """Served names of the ModelDeployments that name this one as a fallback tier: its engine answers
        to them too, so their clients need no change when traffic falls back here."""
        aliases: set[str] = set()
        for md in self.kube.list(C.API_VERSION, C.KIND, namespace):
            fb = (md.get("spec") or {}).get("fallback") or {}
            if any(t.get("modelDeployment") == name for t in fb.get("targets") or []):
                model = (md.get("spec") or {}).get("model") or {}
                aliases.add(model.get("servedName") or md["metadata"]["name"])
        return sorted(aliases)

    def _fallback(
        self,
        spec: ModelDeploymentSpec,
        namespace: str,
        name: str,
        st: RolloutState,
        existing: dict[str, dict[str, Any]],
        old_status: dict[str, Any],
        prometheus_url: str,
        now: datetime,
    ) -> FallbackDecision | None:
        previous = old_status.get("fallback")
        if spec.fallback is None and not (previous or {}).get("active"):
            return None
        stable = DeploymentObs.from_object(existing[st.stable], st.stable) if st.stable in existing else None
        healthy, reason = True, ""
        if stable is None or stable.ready == 0:
            healthy, reason = False, f"no ready replica of revision {st.stable}"
        elif spec.slo and spec.fallback:
            verdict, why = self._stable_slo(spec, namespace, name, st.stable, prometheus_url, now)
            if verdict == Verdict.FAIL:
                healthy, reason = False, f"revision {st.stable} breaches its SLO: {why}"
        tiers = []
        for target in spec.fallback.targets if spec.fallback else []:
            tid = target_id(target)
            if target.model_deployment:
                md = self.kube.get(C.API_VERSION, C.KIND, namespace, target.model_deployment)
                ready = int(((md or {}).get("status") or {}).get("readyReplicas") or 0)
                tiers.append(
                    TierHealth(
                        tid,
                        md is not None and ready > 0,
                        "" if ready else f"ModelDeployment {target.model_deployment} has no ready replica",
                    )
                )
            else:
                assert target.service is not None
                svc = self.kube.get(
                    "v1", "Service", target.service.namespace or namespace, target.service.name
                )
                tiers.append(
                    TierHealth(
                        tid, svc is not None, "" if svc else f"Service {target.service.name} not found"
                    )
                )
        return decide_fallback(
            fallback=spec.fallback,
            previous=previous,
            primary_healthy=healthy,
            primary_reason=reason,
            tiers=tiers,
            now=now,
        )

    def _stable_slo(
        self,
        spec: ModelDeploymentSpec,
        namespace: str,
        name: str,
        revision: str | None,
        url: str,
        now: datetime,
    ) -> tuple[Verdict, str]:
        """The stable revision's SLO verdict, measured at most once per analysis interval (a rate limit
        only: losing it on restart just measures again)."""
        key = (namespace, name)
        interval = parse_duration(spec.rollout.analysis.interval)
        cached = self._stable_checks.get(key)
        if cached and cached[0] == revision and now - cached[1] < interval:
            return cached[2], cached[3]
        verdict, results = run_analysis(
            self.metrics(url),
            spec=spec,
            namespace=namespace,
            name=name,
            revision=revision or "",
            stable_revision=None,
        )
        why = "; ".join(r.message for r in results if r.verdict == Verdict.FAIL)
        self._stable_checks[key] = (revision, now, verdict, why)
        return verdict, why

    def _fallback_status(
        self,
        new_status: dict[str, Any],
        fb: FallbackDecision,
        generation: int,
        now: datetime,
        decision: Decision,
    ) -> list[EventSpec]:
        new_status["fallback"] = {k: v for k, v in fb.as_status().items() if v is not None}
        conditions, _ = set_condition(
            new_status["conditions"],
            type="FallbackActive",
            status="True" if fb.active else "False",
            reason="FallbackActive" if fb.active else "PrimaryServing",
            message=fb.message or ("traffic is on " + str(fb.target) if fb.active else "the primary serves"),
            observed_generation=generation,
            now=now,
        )
        new_status["conditions"] = conditions
        new_status["phase"] = phase_from(conditions, rollout_phase=decision.rollout_phase)
        if fb.active:
            new_status["message"] = fb.message
        return [EventSpec(*fb.event)] if fb.event else []

    # ------------------------------------------------------------------ input drift
    def _input_drift(
        self,
        spec: ModelDeploymentSpec,
        namespace: str,
        name: str,
        stable: str,
        new_status: dict[str, Any],
        generation: int,
        url: str,
        now: datetime,
    ) -> list[EventSpec]:
        """Compare the request mix with its baseline (``core.drift``, docs/drift.md): two queries at most
        once per analysis interval, and at once after a promotion or a spec change. Status changes only
        when the baseline is (re)recorded or the condition's status or reason changes."""
        key = (namespace, name)
        settings = drift.settings_of(spec)
        conditions = new_status.get("conditions") or []
        measurement = None
        if settings.enabled:
            check = (stable, generation)
            if not drift.check_due(self._drift_checks.get(key), check, now, settings.interval):
                return []
            self._drift_checks[key] = (check, now)
            try:
                measurement = drift.measure(
                    self.metrics(url),  # type: ignore[arg-type]  # PrometheusSource is a VectorSource too
                    engine=spec.engine.kind,
                    namespace=namespace,
                    name=name,
                    window=settings.window,
                )
            except PrometheusUnavailable as exc:
                log.info("input drift of %s/%s not checked: %s", namespace, name, exc)
        decision = drift.decide(
            settings=settings,
            stable=stable,
            baseline=new_status.get("inputBaseline"),
            measurement=measurement,
            previous=drift.previous_condition(conditions),
            generation=generation,
            now=now,
            serving_since=drift.serving_since(conditions),
        )
        new_status["inputBaseline"] = decision.baseline
        new_status["conditions"] = drift.apply_condition(conditions, decision, generation=generation, now=now)
        if decision.remove:
            self._drift_checks.pop(key, None)
            forget_input_drift(namespace, name)
        else:
            record_input_drift(
                namespace,
                name,
                distances=decision.distances,
                drifting=decision.drifting,
                threshold=settings.threshold,
            )
        return [EventSpec(*e) for e in decision.events]

    # ------------------------------------------------------------------ cost
    def _cost(
        self,
        spec: ModelDeploymentSpec,
        namespace: str,
        name: str,
        pods: list[dict[str, Any]],
        new_status: dict[str, Any],
        generation: int,
        url: str,
        now: datetime,
    ) -> list[EventSpec]:
        """``status.cost`` and the ``OverBudget`` condition (``core.cost``, docs/cost.md): the GPUs of
        running pods at their node's product price, and generated tokens from Prometheus. The status
        moves only as ``cost_status`` allows; the metrics carry the exact values."""
        gpu = spec.resources.gpu
        held = cost.holdings(
            pods,
            node_products=self._products(pods),
            spec_product=gpu.products[0] if gpu and gpu.products else None,
        )
        per_hour = cost.cost_per_hour(held, self.prices)
        window = cost.cost_window(spec)
        tokens, measured = self._tokens_per_hour(spec, namespace, name, window, url, now)
        estimate = cost.Estimate(
            gpus=sum(h.units for h in held),
            per_hour=per_hour,
            currency=self.prices.currency,
            window=window,
            tokens_per_hour=tokens,
            measured=measured,
        )
        new_status["cost"] = cost.cost_status(new_status.get("cost"), estimate, now=now)
        new_status["conditions"], events = cost.budget_condition(
            new_status.get("conditions") or [],
            cost.budget_verdict(spec.budget, new_status["cost"]),
            observed_generation=generation,
            now=now,
        )
        exact = estimate.per_million_tokens
        record_cost(
            namespace,
            name,
            currency=self.prices.currency,
            per_hour=float(per_hour),
            per_million_tokens=float(exact) if exact is not None else None,
            budget=float(spec.budget.max_cost_per_million_tokens) if spec.budget else None,
            tokens_measured=measured,
        )
        return [EventSpec(*e) for e in events]

    def _tokens_per_hour(
        self, spec: ModelDeploymentSpec, namespace: str, name: str, window: str, url: str, now: datetime
    ) -> tuple[float | None, bool]:
        """Generated tokens per hour and whether they were measured. A measurement with traffic is
        reused for ``TOKENS_INTERVAL`` (a rate limit only); no traffic is asked again next time, so
        the first tokens show as soon as Prometheus has them."""
        key = (namespace, name)
        cached = self._tokens.get(key)
        if cached and cached[0] == window and now - cached[1] < TOKENS_INTERVAL:
            return cached[2], True
        try:
            tokens = self.metrics(url).query(cost.tokens_query(spec=spec, namespace=namespace, name=name))
        except PrometheusUnavailable as exc:
            log.info("tokens of %s/%s not measured: %s", namespace, name, exc)
            return None, False
        if tokens is not None and tokens > 0:
            self._tokens[key] = (window, now, tokens)
        else:
            self._tokens.pop(key, None)
        return tokens, True

    def _products(self, pods: list[dict[str, Any]]) -> dict[str, str]:
        """Node name → ``nvidia.com/gpu.product`` for the nodes the pods run on. Nodes are listed at most
        every ``TOKENS_INTERVAL`` (products do not change under running pods), sooner for a new node."""
        nodes = {n for p in pods if (n := (p.get("spec") or {}).get("nodeName"))}
        if not nodes:
            return {}
        now = self.clock()
        cached = self._node_products
        if cached and now - cached[0] < TOKENS_INTERVAL and nodes <= cached[1].keys():
            return {k: v for k, v in cached[1].items() if v}
        try:
            items = self.kube.list("v1", "Node", None)
        except PermanentError as exc:
            log.info("nodes not readable, GPU products from the spec: %s", exc)
            items = []
        products = {
            n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(C.GPU_LABEL_PRODUCT, "")
            for n in items
        }
        self._node_products = (now, products)
        return {k: v for k, v in products.items() if v}

    def report_failure(self, namespace: str, name: str, exc: BaseException) -> None:
        """Put a failed pass on the ModelDeployment: condition ``Ready=False`` (reason
        ``ReconcileFailed``) with the server's message, the headline message and a Warning Event.
        The text carries no attempt count or delay, so a repeated failure writes no status again
        (no watch event, no retry outside the backoff). Never raises: the API server may be the
        thing that is failing."""
        try:
            body = self.kube.get(C.API_VERSION, C.KIND, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                return
            now = self.clock()
            old: dict[str, Any] = body.get("status") or {}
            message = f"reconcile failed, retrying with backoff: {exc}"[:1024]
            conditions, changed = _not_ready(
                old, "ReconcileFailed", message, int(body["metadata"].get("generation") or 0), now
            )
            new = {**old, "conditions": conditions, "message": message}
            events = [EventSpec("Warning", "ReconcileFailed", message)] if changed else []
            self._write_status(body, old, new, events, now)
        except Exception:
            log.warning("could not report the failure of %s/%s in its status", namespace, name, exc_info=True)

    # ------------------------------------------------------------------ helpers
    def _count_managed(self, namespace: str, name: str, objects: list[dict[str, Any]]) -> None:
        counts: dict[str, int] = {}
        for obj in objects:
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
        self._managed[(namespace, name)] = counts
        totals: dict[str, int] = {}
        for per in self._managed.values():
            for kind, n in per.items():
                totals[kind] = totals.get(kind, 0) + n
        for kind, n in totals.items():
            MANAGED_OBJECTS.labels(kind=kind).set(n)

    def metrics(self, url: str) -> MetricsSource:
        """The metrics source for a Prometheus URL (one client per URL)."""
        source = self._sources.get(url)
        if source is None:
            source = self._sources[url] = PrometheusSource(url)
        return source

    def _stable_size(
        self, spec: ModelDeploymentSpec, existing: dict[str, dict[str, Any]], stable: str | None
    ) -> int:
        """How many replicas stable runs: the spec's, or what the autoscaler set."""
        if spec.autoscaling:
            if stable in existing:
                return max(int((existing[stable].get("spec") or {}).get("replicas") or 1), 1)
            return max(spec.autoscaling.min_replicas, 1)
        return spec.replicas

    def _command(self, body: dict[str, Any]) -> Command | None:
        """A person's command from the ``slogate.io/command`` annotation: ``VERB`` or ``VERB:ID``."""
        raw = (body["metadata"].get("annotations") or {}).get(ANNOTATION_COMMAND)
        if not raw:
            return None
        verb, _, cid = raw.partition(":")
        if verb not in COMMANDS:
            log.warning("ignoring unknown command %r on %s", raw, body["metadata"]["name"])
            return None
        return Command(verb=verb, id=cid or verb)

    def _clear_command(self, body: dict[str, Any]) -> int:
        """Remove the command annotation once its effect is in status (a metadata patch, never spec)."""
        meta = body["metadata"]
        self.kube.patch_metadata(meta["namespace"], meta["name"], {"annotations": {ANNOTATION_COMMAND: None}})
        return 1

    def _route(
        self,
        objects: list[dict[str, Any]],
        spec: ModelDeploymentSpec,
        name: str,
        namespace: str,
        owner: Owner,
        caps: Any,
        st: RolloutState,
        decision: Decision,
        notes: list[str],
        fallback: FallbackDecision | None = None,
        *,
        candidate_ready: bool = False,
        route_weight: int = 0,
    ) -> None:
        """Traffic: the root Service's selector, and the HTTPRoute for the gatewayAPI router."""
        gateway = spec.rollout.traffic.router == Router.GATEWAY_API
        tier = find_target(spec.fallback, fallback.target) if fallback and fallback.active else None
        if tier is not None and not gateway:
            for obj in objects:
                if obj["kind"] == "Service" and obj["metadata"]["name"] == name:
                    if tier.model_deployment:
                        # The fallback's pods answer to our served name too (aliases), so clients need no change.
                        obj["spec"]["selector"] = root_selector(
                            name=name, fallback_model_deployment=tier.model_deployment
                        )
                    else:
                        notes.append(
                            "a service fallback tier needs the gatewayAPI router; the replicas router "
                            "can only fall back to another ModelDeployment"
                        )
            return
        stable_only = gateway or spec.rollout.strategy in (Strategy.BLUE_GREEN, Strategy.SHADOW)
        for obj in objects:
            if obj["kind"] == "Service" and obj["metadata"]["name"] == name and stable_only and st.stable:
                # Weighted routes, previews and mirrors need the stable endpoint to be stable only.
                obj["spec"]["selector"] = {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: st.stable}
        if not gateway:
            return
        if not caps.gateway_api:
            notes.append(
                "router gatewayAPI asked but Gateway API is not installed: traffic follows the replica ratio"
            )
            return
        assert spec.rollout.traffic.gateway_api is not None
        weight = route_weight if candidate_ready else 0
        mirror = decision.mirror and candidate_ready
        objects.append(
            build_httproute(
                name=name,
                namespace=namespace,
                owner=owner,
                traffic=spec.rollout.traffic.gateway_api,
                # Never route or mirror to a candidate that is not Ready (its Service would have no
                # endpoints); a candidate with neither weight nor mirror is not in the route at all.
                canary_weight=weight,
                canary=st.canary is not None
                and not decision.candidate_scaled_down
                and bool(weight or mirror),
                mirror=mirror,
                fallback_backend=backend_of_target(tier) if tier is not None else None,
            )
        )

    # ------------------------------------------------------------------ steps
    def _parse_spec(
        self, body: dict[str, Any], old: dict[str, Any], generation: int, now: datetime, result: Result
    ) -> ModelDeploymentSpec | None:
        raw = body.get("spec") or {}
        try:
            spec = ModelDeploymentSpec.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
        else:
            # The CRD's CEL rules reject exact spellings; an abbreviation (--tensor-parallel) or
            # --flag_name spelling passes the API server and is caught here, as by slogate validate.
            flags = engine_flags.check(
                kind=spec.engine.kind, args=spec.engine.args, features=engine_flags.features_of(raw)
            )
            if not flags:
                return spec
            problems = "; ".join(f"spec.engine.args[{p.index}]: {p.message}" for p in flags[:5])
        conditions, _ = _not_ready(old, "InvalidSpec", problems, generation, now)
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
        existing: dict[str, dict[str, Any]],
        pods: list[dict[str, Any]],
        candidate_replicas: int | None,
    ) -> Any:
        """GPU preflight for the pods of the spec's revision that still need a node."""
        shape = shape_of(spec)
        if shape is None:
            return None
        current = revision_of(spec)
        deployment = existing.get(current)
        wanted = spec.replicas if not spec.autoscaling else spec.autoscaling.min_replicas
        if candidate_replicas is not None:
            wanted = candidate_replicas
        elif deployment is not None:
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
        *,
        keep: tuple[str | None, ...] = (),
    ) -> int:
        """Delete children no longer desired; a revision's Deployment when the plan retires it or
        when it is neither of the revisions the state keeps (an orphan of an interrupted pass)."""
        wanted = {(o["kind"], o["metadata"]["name"]) for o in objects}
        writes = 0
        for api_version, kind in CHILD_KINDS:
            for live in children.get(kind, []):
                lname = live["metadata"]["name"]
                if kind == "Deployment":
                    rev = live["metadata"].get("labels", {}).get(C.LABEL_REVISION)
                    if rev not in retire and (not keep or rev in keep):
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
