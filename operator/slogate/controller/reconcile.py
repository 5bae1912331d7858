"""Reconcile one ModelDeployment: observe → plan (core) → apply → one status diff → events.

``observe`` builds one frozen ``core.plan.Observation`` from the watch caches (``adapters.cache``;
no request to the API server) and the Prometheus measurements that are due, each rate-limited to
its interval; ``core.plan.plan`` decides everything; ``_carry_out`` does what the plan says in a
fixed order — scale, apply, one status write, events, deletions, the command annotation — and
nothing when nothing differs: an object is applied only when the live one lacks a desired field,
and status is patched only when ``status_patch`` is non-empty.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slogate import constants as C
from slogate.adapters.endpoints import resolver_of
from slogate.adapters.evaluate import Evaluator, run_quality
from slogate.adapters.kube import Kube, post_event
from slogate.adapters.prometheus import PrometheusSource
from slogate.api.types import parse_duration
from slogate.api.v1alpha1 import ModelDeploymentSpec, Verdict
from slogate.config import OperatorConfig
from slogate.core import cost, drift
from slogate.core import plan as P
from slogate.core.analysis import MetricsSource, run_analysis
from slogate.core.engine_metrics import PROM_LABEL_DEPLOYMENT
from slogate.core.naming import revision_of
from slogate.core.plan import CHILD_KINDS, Measurements, Observation, ReconcilePlan, not_ready
from slogate.core.quality import probe_due
from slogate.core.rollout import Analysis, QualityResult, RolloutState, analysis_due, quality_due
from slogate.core.status import status_patch
from slogate.core.timefmt import rfc3339
from slogate.core.vocabulary import Event, Events, PodPhase, Reason
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

__all__ = ["CHILD_KINDS", "Reconciler", "Result"]

TOKENS_INTERVAL = timedelta(seconds=10)
"""How long a namespace's token rates (or its unanswered query) are reused before asking again."""
NODE_PRODUCTS_INTERVAL = timedelta(seconds=30)
"""How long the node → GPU product map is reused (sooner for a node not in it)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _reported(got: Any, revision: str, gate: str | None, now: datetime) -> tuple[str, dict[str, Any], str]:
    """A run's ``(verdict, record, summary)``, or, for a run that raised, an Inconclusive one that
    says why (an API error reading the suite, a bug): status tells it, nothing crashes."""
    if not isinstance(got, Exception):
        return got  # type: ignore[no-any-return]
    why = f"the quality run failed: {type(got).__name__}: {got}"
    record = {
        "time": rfc3339(now),
        "revision": revision,
        **({"gate": gate} if gate else {}),
        "verdict": "Inconclusive",
        "suites": [],
    }
    return "Inconclusive", record, why


@dataclass
class Result:
    """What a reconcile pass did; ``requeue_after`` asks for another pass sooner than the resync."""

    writes: int = 0
    requeue_after: float | None = None


class Reconciler:
    """Reconciles ModelDeployments with one Kube adapter (a watch cache in the operator) and one
    configuration. Holds only rate-limit memos of measurements: losing them on restart just
    measures again."""

    def __init__(
        self,
        kube: Any,
        config: OperatorConfig,
        *,
        clock: Any = _now,
        prices: cost.PriceTable = cost.BUILTIN_PRICES,
    ) -> None:
        self.kube: Kube = kube
        self.config = config
        self.clock = clock
        self._sources: dict[str, MetricsSource] = {}
        self._managed: dict[tuple[str, str], dict[str, int]] = {}
        self._managed_totals: dict[str, int] = {}
        self._stable_checks: dict[tuple[str, str], tuple[str | None, datetime, Verdict, str]] = {}
        self.prices = prices
        self._tokens: dict[tuple[str, str, str], tuple[datetime, dict[str, float] | None]] = {}
        self._tokens_lock = threading.Lock()
        self._opencost: dict[
            tuple[str, str], tuple[datetime, tuple[tuple[dict[str, str], float], ...] | None]
        ] = {}
        self._node_products: tuple[datetime, dict[str, str]] | None = None
        self._drift_checks: dict[tuple[str, str], tuple[tuple[Any, ...], datetime]] = {}
        self.evaluator = Evaluator()
        self.endpoints = resolver_of(config.quality_endpoints)

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
        body = self.kube.get(C.API_VERSION, C.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Gone or going: owner references let the garbage collector remove the children.
            self._forget(namespace, name)
            return Result()
        observation = self.observe(body)
        decided = P.plan(observation)
        return self._carry_out(body, decided, observation.now)

    # ------------------------------------------------------------------ observe
    def observe(self, body: dict[str, Any]) -> Observation:
        """Everything a pass needs, read once: the caches, and the measurements that are due."""
        now = self.clock()
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec, problems = P.parse_spec(body.get("spec") or {}, name)
        if spec is None:
            return Observation(body=body, spec=None, problems=problems, now=now)
        children = self._children(namespace, name, meta["uid"])
        pods = [
            p
            for p in self.kube.list("v1", "Pod", namespace, selector=f"{C.LABEL_DEPLOYMENT}={name}")
            if not p["metadata"].get("deletionTimestamp")
        ]
        analysis = spec.rollout.analysis
        url = analysis.prometheus.url if analysis.prometheus else self.config.prometheus_url
        targets: dict[str, Any] = {}
        services: dict[tuple[str, str], bool] = {}
        for target in spec.fallback.targets if spec.fallback else []:
            if target.model_deployment:
                targets[target.model_deployment] = self.kube.get(
                    C.API_VERSION, C.KIND, namespace, target.model_deployment
                )
            elif target.service is not None:
                ns = target.service.namespace or namespace
                found = self.kube.get("v1", "Service", ns, target.service.name) is not None
                services[(ns, target.service.name)] = found
        return Observation(
            body=body,
            spec=spec,
            now=now,
            children=children,
            pods=pods,
            caps=self.kube.capabilities(),
            nodes=self.kube.node_infos() if spec.resources.gpu else (),
            node_products=self._products(pods),
            aliases=tuple(self._aliases(namespace, name)),
            fallback_targets=targets,
            fallback_services=services,
            prometheus_url=url,
            operator_namespace=self.config.operator_namespace,
            measurements=self._measure(spec, body, children, url, now, pods),
            prices=self.prices,
            opencost_shared=self._opencost_shared(namespace, name, pods),
        )

    def _children(self, namespace: str, name: str, uid: str) -> dict[str, list[dict[str, Any]]]:
        selector = f"{C.LABEL_DEPLOYMENT}={name},{C.LABEL_MANAGED_BY}=slogate"
        return {
            kind: [
                i
                for i in self.kube.list(api_version, kind, namespace, selector=selector)
                if any(r.get("uid") == uid for r in i["metadata"].get("ownerReferences") or [])
            ]
            for api_version, kind in CHILD_KINDS
        }

    def _aliases(self, namespace: str, name: str) -> list[str]:
        """Served names of the ModelDeployments that name this one as a fallback tier: its engine
        answers to them too, so their clients need no change when traffic falls back here."""
        aliases: set[str] = set()
        for md in self.kube.fallback_referrers(namespace, name):
            model = (md.get("spec") or {}).get("model") or {}
            aliases.add(model.get("servedName") or md["metadata"]["name"])
        return sorted(aliases)

    def _measure(
        self,
        spec: ModelDeploymentSpec,
        body: dict[str, Any],
        children: dict[str, list[dict[str, Any]]],
        url: str,
        now: datetime,
        pods: list[dict[str, Any]] | None = None,
    ) -> Measurements:
        """The Prometheus measurements due this pass, each at most once per its interval."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        state = RolloutState.from_status(body.get("status") or {})
        current = revision_of(spec)
        analysis = None
        if state.canary == current and analysis_due(spec, state, now):
            verdict, results = run_analysis(
                self.metrics(url),
                spec=spec,
                namespace=namespace,
                name=name,
                revision=current,
                stable_revision=state.stable,
            )
            analysis = Analysis(verdict, tuple(results))
        stable_slo = None
        stable = P.revisions(children).get(state.stable) if state.stable else None
        if spec.slo and spec.fallback and stable is not None:
            if int((stable.get("status") or {}).get("readyReplicas") or 0):
                stable_slo = self._stable_slo(spec, namespace, name, state.stable, url, now)
        drift_due, measurement = False, None
        settings = drift.settings_of(spec)
        key = (namespace, name)
        if settings.enabled:
            check = (state.stable or current, int(meta.get("generation") or 0))
            drift_due = drift.check_due(self._drift_checks.get(key), check, now, settings.interval)
            if drift_due:
                self._drift_checks[key] = (check, now)
                status = body.get("status") or {}
                measurement = drift.NOTHING_MEASURED
                if drift.needs_measurement(
                    settings,
                    stable=check[0],
                    baseline=status.get("inputBaseline"),
                    serving_since=drift.serving_since(status.get("conditions") or []),
                    now=now,
                ):
                    try:
                        measurement = drift.measure(
                            self.metrics(url),  # type: ignore[arg-type]  # PrometheusSource is a VectorSource too
                            engine=spec.engine.kind,
                            namespace=namespace,
                            name=name,
                            window=settings.window,
                        )
                    except PrometheusUnavailable as exc:
                        measurement = None
                        log.info("input drift of %s/%s not checked: %s", namespace, name, exc)
        quality, probe = self._quality(spec, body, state, current, children, now)
        tokens, measured = self._tokens_per_hour(namespace, name, cost.cost_window(spec), url, now)
        priced = self._opencost_series(namespace, url, now) if cost.opencost_models(pods or []) else None
        return Measurements(
            analysis=analysis,
            stable_slo=stable_slo,
            drift_due=drift_due,
            drift=measurement,
            tokens_per_hour=tokens,
            tokens_measured=measured,
            opencost=priced,
            quality=quality,
            probe=probe,
        )

    def _quality(
        self,
        spec: ModelDeploymentSpec,
        body: dict[str, Any],
        state: RolloutState,
        current: str,
        children: dict[str, list[dict[str, Any]]],
        now: datetime,
    ) -> tuple[QualityResult | None, tuple[str, dict[str, Any], str] | None]:
        """The quality gate's run and the production probe's run that finished since the last pass
        (each started in the background the first pass it is due, and collected by a later one)."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if spec.quality is None:
            self.evaluator.forget(namespace, name)
            return None, None
        ask = functools.partial(
            run_quality,
            self.kube,
            self.endpoints,
            spec=spec,
            namespace=namespace,
            name=name,
            clock=self.clock,
        )
        gate = quality_due(spec, state, now) if state.canary == current else None
        result = None
        if gate is not None:
            run = state.quality_runs
            start_gate = functools.partial(
                ask, revision=current, track="canary", stable_revision=state.stable, gate=gate
            )
            got = self.evaluator.collect((namespace, name, "gate", current, gate, run), start_gate)
            if got is not None:
                verdict, record, summary = _reported(got, current, gate, self.clock())
                result = QualityResult(
                    gate=gate, run=run, verdict=Verdict(verdict), record=record, summary=summary
                )
        probe = None
        status = body.get("status") or {}
        stable = P.revisions(children).get(state.stable) if state.stable else None
        ready = int(((stable or {}).get("status") or {}).get("readyReplicas") or 0)
        if state.stable and ready and probe_due(spec, state.stable, status.get("qualityProbe"), now):
            revision = state.stable
            assert spec.quality.probe is not None
            last = ((status.get("qualityProbe") or {}).get("lastRun") or {}).get("time")
            start_probe = functools.partial(
                ask,
                revision=revision,
                track="stable",
                stable_revision=None,
                suites=spec.quality.probe.suites,
                gate=None,
            )
            got = self.evaluator.collect((namespace, name, "probe", revision, last), start_probe)
            if got is not None:
                probe = _reported(got, revision, None, self.clock())
        return result, probe

    def _stable_slo(
        self,
        spec: ModelDeploymentSpec,
        namespace: str,
        name: str,
        revision: str | None,
        url: str,
        now: datetime,
    ) -> tuple[str | None, Verdict, str]:
        """The stable revision's SLO verdict, measured at most once per analysis interval (a rate limit
        only: losing it on restart just measures again)."""
        key = (namespace, name)
        interval = parse_duration(spec.rollout.analysis.interval)
        cached = self._stable_checks.get(key)
        if cached and cached[0] == revision and now - cached[1] < interval:
            return revision, cached[2], cached[3]
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
        return revision, verdict, why

    # ------------------------------------------------------------------ apply
    def _carry_out(self, body: dict[str, Any], decided: ReconcilePlan, now: datetime) -> Result:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        result = Result(requeue_after=decided.requeue_after)
        for deployment, replicas in decided.scale:
            self.kube.scale(namespace, deployment, replicas)
            result.writes += 1
        for obj in decided.apply:
            self.kube.apply(obj)
            result.writes += 1
            log.info("applied %s %s/%s", obj["kind"], namespace, obj["metadata"]["name"])
        if decided.telemetry is not None:
            self._record(namespace, name, decided)
        if decided.status is not None:
            old = body.get("status") or {}
            result.writes += self._write_status(body, old, decided.status, list(decided.events), now)
        for api_version, kind, child in decided.delete:
            log.info("deleting %s %s/%s", kind, namespace, child)
            self.kube.delete(api_version, kind, namespace, child)
            result.writes += 1
        if decided.clear_command:
            # The command's effect is in status: remove the annotation (a metadata patch, never spec).
            self.kube.patch_metadata(namespace, name, {"annotations": {P.ANNOTATION_COMMAND: None}})
            result.writes += 1
        return result

    def _record(self, namespace: str, name: str, decided: ReconcilePlan) -> None:
        t = decided.telemetry
        assert t is not None
        self._count_managed(self._managed.get((namespace, name)) or {}, t.managed)
        self._managed[(namespace, name)] = t.managed
        if t.drift == {}:
            self._drift_checks.pop((namespace, name), None)
            forget_input_drift(namespace, name)
        elif t.drift is not None:
            record_input_drift(namespace, name, **t.drift)
        record_modeldeployment(
            namespace,
            name,
            t.status,
            events=list(t.events),
            gpus_requested=t.gpus_requested,
            gpus_running=t.gpus_running,
            thresholds=t.thresholds,
            cause=t.cause,
        )
        if t.cost is not None:
            record_cost(namespace, name, **t.cost)

    def _count_managed(self, old: dict[str, int], new: dict[str, int]) -> None:
        """Running totals of managed children by kind: O(kinds) a pass, not O(ModelDeployments)."""
        for kind in set(old) | set(new):
            self._managed_totals[kind] = (
                self._managed_totals.get(kind, 0) - old.get(kind, 0) + new.get(kind, 0)
            )
            MANAGED_OBJECTS.labels(kind=kind).set(self._managed_totals[kind])

    def _forget(self, namespace: str, name: str) -> None:
        self._drift_checks.pop((namespace, name), None)
        self._stable_checks.pop((namespace, name), None)
        self.evaluator.forget(namespace, name)
        forget_input_drift(namespace, name)
        self._count_managed(self._managed.pop((namespace, name), None) or {}, {})
        forget_modeldeployment(namespace, name)

    # ------------------------------------------------------------------ measurements
    def _tokens_per_hour(
        self, namespace: str, name: str, window: str, url: str, now: datetime
    ) -> tuple[float | None, bool]:
        """Generated tokens per hour and whether they were measured. Asked once per namespace and
        window for all its ModelDeployments (``cost.namespace_tokens_queries``) and reused for
        ``TOKENS_INTERVAL``, a rate limit only: the first tokens show within that of Prometheus
        having them, and a pass over each of N ModelDeployments costs no query of its own. An
        unanswered query is remembered as long (not measured: status keeps its value)."""
        totals = self._every_interval(
            self._tokens,
            (url, namespace, window),
            now,
            lambda: self._namespace_tokens(namespace, window, url),
            f"tokens in {namespace} not measured",
        )
        if totals is None:
            return None, False
        return totals.get(name, 0.0), True

    def _every_interval(
        self,
        cache: dict[Any, tuple[datetime, Any]],
        key: Any,
        now: datetime,
        ask: Callable[[], Any],
        failed: str,
    ) -> Any:
        """``ask()``'s answer, asked at most once per ``TOKENS_INTERVAL`` per ``key`` and shared by
        every ModelDeployment of the namespace. ``None`` when Prometheus did not answer, remembered
        for the interval too: an outage costs one timeout per namespace, not one per pass of each
        of its ModelDeployments."""
        with self._tokens_lock:
            cached = cache.get(key)
        if cached is None or now - cached[0] >= TOKENS_INTERVAL:
            try:
                answer = ask()
            except PrometheusUnavailable as exc:
                log.info("%s: %s", failed, exc)
                answer = None
            cached = (now, answer)
            with self._tokens_lock:
                cache[key] = cached
        return cached[1]

    def _namespace_tokens(self, namespace: str, window: str, url: str) -> dict[str, float]:
        """Tokens per hour by ModelDeployment name, summed over the engines' series."""
        totals: dict[str, float] = {}
        for q in cost.namespace_tokens_queries(namespace=namespace, window=window):
            for labels, value in self.metrics(url).query_vector(q):
                md = labels.get(PROM_LABEL_DEPLOYMENT, "")
                totals[md] = totals.get(md, 0.0) + value
        return totals

    def _opencost_series(
        self, namespace: str, url: str, now: datetime
    ) -> tuple[tuple[dict[str, str], float], ...] | None:
        """OpenCost's price series of a namespace (``cost.opencost_query``), asked only for
        ModelDeployments whose running pods carry ``cost.OPENCOST_MODEL_LABEL`` and, like the
        tokens, once per namespace per ``TOKENS_INTERVAL``. ``None``: Prometheus did not answer."""
        return self._every_interval(
            self._opencost,
            (url, namespace),
            now,
            lambda: tuple(self.metrics(url).query_vector(cost.opencost_query(namespace))),
            f"OpenCost prices in {namespace} not read",
        )

    def _opencost_shared(self, namespace: str, name: str, pods: list[dict[str, Any]]) -> bool:
        """Whether pods of other workloads in the namespace carry the OpenCost model label value
        of this ModelDeployment's running pods (from the pod cache; only when they carry one)."""
        models = cost.opencost_models(pods)
        if len(models) != 1:
            return False
        selector = f"{cost.OPENCOST_MODEL_LABEL}={next(iter(models))}"
        return any(
            (p["metadata"].get("labels") or {}).get(C.LABEL_DEPLOYMENT) != name
            for p in self.kube.list("v1", "Pod", namespace, selector=selector)
            if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") == PodPhase.RUNNING
        )

    def _products(self, pods: list[dict[str, Any]]) -> dict[str, str]:
        """Node name → ``nvidia.com/gpu.product`` for the nodes the pods run on. Nodes are listed at most
        every ``NODE_PRODUCTS_INTERVAL`` (products do not change under running pods), sooner for a new node."""
        nodes = {n for p in pods if (n := (p.get("spec") or {}).get("nodeName"))}
        if not nodes:
            return {}
        now = self.clock()
        cached = self._node_products
        if cached and now - cached[0] < NODE_PRODUCTS_INTERVAL and nodes <= cached[1].keys():
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
            conditions, changed = not_ready(
                old, Reason.RECONCILE_FAILED, message, int(body["metadata"].get("generation") or 0), now
            )
            new = {**old, "conditions": conditions, "message": message}
            events = [Events.RECONCILE_FAILED(message)] if changed else []
            self._write_status(body, old, new, events, now)
        except Exception:
            log.warning("could not report the failure of %s/%s in its status", namespace, name, exc_info=True)

    # ------------------------------------------------------------------ helpers
    def metrics(self, url: str) -> MetricsSource:
        """The metrics source for a Prometheus URL (one client per URL)."""
        source = self._sources.get(url)
        if source is None:
            source = self._sources[url] = PrometheusSource(url)
        return source

    def _write_status(
        self,
        body: dict[str, Any],
        old: dict[str, Any],
        new: dict[str, Any],
        events: list[Event],
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

    def _event(self, body: dict[str, Any], ev: Event, now: datetime | None = None) -> None:
        try:
            post_event(
                self.kube,
                body,
                type=ev.type,
                reason=ev.reason,
                message=ev.message,
                now=rfc3339(now or self.clock()),
            )
        except Exception:
            log.warning("could not post event %s on %s", ev.reason, body["metadata"]["name"], exc_info=True)
