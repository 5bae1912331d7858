"""Prometheus alerting rules for a ModelDeployment's SLOs: recording rules plus burn-rate alerts. Pure.

Rollout analysis (``core.analysis``) judges one revision over ``slo.window`` to gate a rollout; these
rules watch the whole ModelDeployment (every revision) all the time and page a person when it burns
its error budget too fast. Each built-in objective becomes an *error ratio* (bad events / all
events) recorded over 5m, 30m, 1h and 6h, and two multiwindow burn-rate alerts from the Google SRE
workbook read those recordings. A latency objective "p95 ≤ 500ms" is read as "95% of requests finish
their first token within 500ms", so its bad events are the requests above the threshold, counted
from the histogram bucket at the threshold (rounded *up* to a bucket bound the engine exports).
Custom queries and TGI's TTFT (no histogram) get a plain threshold alert instead. docs/alerting.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from slogate import constants as C
from slogate.api.types import format_duration, parse_duration
from slogate.api.v1alpha1 import EngineKind, ModelDeploymentSpec, Objective, SLIMetric
from slogate.core.analysis import (
    _latency_promql,
    _quantile,
    format_value,
    objective_name,
    substitute,
    threshold_of,
    unit_of,
)
from slogate.core.engine_metrics import (
    PROM_LABEL_DEPLOYMENT,
    SGLANG_E2E_BUCKETS,
    SGLANG_ITL_BUCKETS,
    SGLANG_TTFT_BUCKETS,
    VLLM_ITL_BUCKETS,
    VLLM_REQUEST_LATENCY_BUCKETS,
    VLLM_TTFT_BUCKETS,
    EngineMetrics,
    error_ratio_expr,
    metrics_for,
    selector,
    with_matchers,
)

WINDOWS = ("5m", "30m", "1h", "6h")
"""Windows each error ratio is recorded over: the long and short window of every burn-rate alert."""

RECORD_PREFIX = "slogate:sli_error_ratio:rate"
"""Recording rule names: ``slogate:sli_error_ratio:rate5m`` … ``rate6h`` (level:metric:operations)."""


@dataclass(frozen=True)
class BurnRateAlert:
    """One multiwindow burn-rate alert: fires when both windows burn faster than ``factor``."""

    alert: str
    """Alert name."""
    long_window: str
    """The window that proves the burn is significant."""
    short_window: str
    """The window that proves it is still happening (and lets the alert reset quickly)."""
    factor: float
    """Burn rate: how many times faster than "exactly the budget over 30 days" the budget is spent."""
    budget_spent: str
    """What the factor means, for the description: the share of a 30-day budget the long window spends."""


BURN_RATE_ALERTS = (
    BurnRateAlert("SlogateErrorBudgetFastBurn", "1h", "5m", 14.4, "2% of a 30-day error budget in 1 hour"),
    BurnRateAlert("SlogateErrorBudgetSlowBurn", "6h", "30m", 6.0, "5% of a 30-day error budget in 6 hours"),
)
"""The two paging alerts of the SRE workbook (ch. 5, "Multiwindow, Multi-Burn-Rate Alerts"); the
short window is 1/12 of the long one. The workbook's third tier (3d/6h at burn rate 1, a ticket) is left to
ticket systems: it needs 3-day recordings and never pages."""

THRESHOLD_ALERT = "SlogateObjectiveBreached"
"""The alert for objectives without a bad-event ratio (custom queries, TGI TTFT)."""

THRESHOLD_FOR = "5m"
"""How long a threshold alert's query must stay above ``max`` before it fires."""

SEVERITY = "page"
QUALITY_ALERT = "SlogateQualityDegraded"
"""The production probe failed a suite on stable (``quality.probe``; docs/quality.md)."""
QUALITY_SEVERITY = "ticket"
"""A probe verdict already rests on repeated samples at a stated confidence; it is a wrong-answers
signal, not an outage, so it opens a ticket rather than paging (the fallback policy acts at once)."""


def _tgi_duration_buckets() -> tuple[float, ...]:
    """TGI's buckets for every ``*_duration`` histogram: 0.0001 * 1.5^k, k = 1..35 (same float steps)."""
    out, value = [], 0.0001
    for _ in range(35):
        value *= 1.5
        out.append(value)
    return tuple(out)


TGI_DURATION_BUCKETS = _tgi_duration_buckets()


def buckets_for(engine: EngineKind, metric: SLIMetric) -> tuple[float, ...] | None:
    """The finite bucket bounds of the histogram behind a latency SLI, ``None`` without one. Pure.

    >>> buckets_for(EngineKind.VLLM, SLIMetric.TTFT)[:3]
    (0.001, 0.005, 0.01)
    >>> buckets_for(EngineKind.TGI, SLIMetric.TTFT) is None
    True
    """
    if engine == EngineKind.TGI:
        return None if metric == SLIMetric.TTFT else TGI_DURATION_BUCKETS
    if engine == EngineKind.SGLANG:
        return {
            SLIMetric.TTFT: SGLANG_TTFT_BUCKETS,
            SLIMetric.LATENCY: SGLANG_E2E_BUCKETS,
            SLIMetric.INTER_TOKEN_LATENCY: SGLANG_ITL_BUCKETS,
        }.get(metric)
    return {
        SLIMetric.TTFT: VLLM_TTFT_BUCKETS,
        SLIMetric.LATENCY: VLLM_REQUEST_LATENCY_BUCKETS,
        SLIMetric.INTER_TOKEN_LATENCY: VLLM_ITL_BUCKETS,
    }.get(metric)


def bucket_bound(threshold: float, buckets: tuple[float, ...]) -> float:
    """The smallest bucket bound ≥ ``threshold``: the histogram cannot tell anything finer. Pure.

    A threshold above the largest finite bound falls back to that bound (rounding down: the
    ``+Inf`` bucket would count no request as slow, ever).

    >>> bucket_bound(0.5, VLLM_TTFT_BUCKETS), bucket_bound(0.3, VLLM_TTFT_BUCKETS)
    (0.5, 0.5)
    >>> bucket_bound(5000, VLLM_TTFT_BUCKETS)
    2560.0
    """
    for bound in sorted(buckets):
        if bound >= threshold:
            return bound
    return max(buckets)


def le_label(bound: float) -> str:
    """A bucket bound spelled as the engines' exporters (and Prometheus 3's normalisation) write ``le``. Pure.

    >>> le_label(0.5), le_label(1.0), le_label(2560.0)
    ('0.5', '1.0', '2560.0')
    """
    return repr(float(bound))


def error_budget(obj: Objective) -> Decimal:
    """The share of events allowed to be bad: ``1 - target``. Pure.

    Latency: ``1 - percentile/100`` (p95 → 0.05); errorRate: ``maxPercent/100``.

    >>> str(error_budget(Objective(metric="ttft", percentile=99.9, max="1s")))
    '0.001'
    >>> str(error_budget(Objective(metric="errorRate", max_percent=1)))
    '0.01'
    """
    if obj.metric == SLIMetric.ERROR_RATE:
        return (Decimal(repr(threshold_of(obj))) / 100).normalize()
    if obj.percentile is None:
        raise ValueError(f"objective {objective_name(obj)} needs a percentile")
    return (1 - Decimal(_quantile(obj.percentile))).normalize()


def _number(value: Decimal | float) -> str:
    """A number for PromQL without float noise (``0.144``, not ``0.14400000000000002``)."""
    return format(Decimal(repr(value) if isinstance(value, float) else value).normalize(), "f")


def _burn_threshold(factor: float, budget: Decimal) -> str:
    return _number(Decimal(repr(factor)) * budget)


def _has_ratio(engine: EngineKind, obj: Objective) -> bool:
    """Whether the objective has a bad-event ratio (recording rules + burn-rate alerts)."""
    if obj.metric is None:
        return False
    return obj.metric == SLIMetric.ERROR_RATE or buckets_for(engine, obj.metric) is not None


def _histogram_of(m: EngineMetrics, metric: SLIMetric) -> str:
    if metric == SLIMetric.TTFT:
        if m.ttft is None:
            raise ValueError(f"{m.kind} exports no TTFT histogram")
        return m.ttft
    return m.e2e_latency if metric == SLIMetric.LATENCY else m.inter_token_latency


def error_ratio_promql(*, engine: EngineKind, obj: Objective, sel: str, window: str) -> str:
    """PromQL for the share of bad events of a built-in objective over ``window``, 0..1. Pure.

    errorRate: server faults / all requests (``engine_metrics.error_ratio_expr``, as ``core.analysis``).
    Latency: ``1 - requests within the threshold bucket / all requests`` from the histogram.
    Consumed by ``build_rule_groups`` (recording rules).
    """
    m = metrics_for(engine)
    if obj.metric == SLIMetric.ERROR_RATE:
        return error_ratio_expr(m, sel, window=window)
    if obj.metric is None:
        raise ValueError(f"objective {objective_name(obj)} is a custom query: it has no error ratio")
    buckets = buckets_for(engine, obj.metric)
    if buckets is None:
        raise ValueError(f"{engine} exports no histogram for {obj.metric}")
    histogram = _histogram_of(m, obj.metric)
    le = f'le="{le_label(bucket_bound(threshold_of(obj), buckets))}"'
    return (
        f"1 - (sum(rate({histogram}_bucket{with_matchers(sel, le)}[{window}]))"
        f" / sum(rate({histogram}_count{sel}[{window}])))"
    )


def _all_revisions(query: str, *, namespace: str, name: str, window: str) -> str:
    """A custom query with ``$revision`` widened to every revision (``="$revision"`` → ``=~".+"``)."""
    for placeholder in ("$revision", "${revision}"):
        query = query.replace(f'="{placeholder}"', '=~".+"').replace(f'=~"{placeholder}"', '=~".+"')
    return substitute(query, namespace=namespace, name=name, revision=".+", window=window)


def _describe(obj: Objective, engine: EngineKind) -> str:
    """``ttft p95 ≤ 500ms``, ``errorRate ≤ 1%``, ``hit-rate ≤ 0.9`` (with the rounded bucket if any)."""
    if obj.metric is None:
        return f"{objective_name(obj)} ≤ {obj.max}"
    if obj.metric == SLIMetric.ERROR_RATE:
        return f"errorRate ≤ {threshold_of(obj):g}%"
    text = f"{obj.metric} p{obj.percentile:g} ≤ {obj.max}"
    buckets = buckets_for(engine, obj.metric)
    if buckets is not None:
        bound, threshold = bucket_bound(threshold_of(obj), buckets), threshold_of(obj)
        if bound != threshold:
            text += f" (measured at the histogram bucket {bound:g}s)"
    return text


def _labels(namespace: str, name: str, obj: Objective) -> dict[str, str]:
    return {"namespace": namespace, PROM_LABEL_DEPLOYMENT: name, "objective": objective_name(obj)}


def _slo_window(spec: ModelDeploymentSpec) -> str:
    assert spec.slo is not None
    return format_duration(parse_duration(spec.slo.window))


def build_rule_groups(*, name: str, namespace: str, spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    """Prometheus rule groups for one ModelDeployment, every revision together. Pure.

    Two groups: ``slogate-NS-NAME-sli`` records each ratio objective's error ratio over
    ``WINDOWS``; ``slogate-NS-NAME-alerts`` holds the burn-rate alerts (``BURN_RATE_ALERTS``) per
    ratio objective and a threshold alert per other objective. No SLO → no groups. Consumed by
    ``rules_file``, ``prometheus_rule`` and ``slogate rules``.
    """
    if spec.slo is None:
        return _quality_groups(name=name, namespace=namespace, spec=spec)
    engine = spec.engine.kind
    sel = selector(namespace, name)
    runbook = f"slogate explain {name} -n {namespace}"
    records: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for obj in spec.slo.objectives:
        labels = _labels(namespace, name, obj)
        described = _describe(obj, engine)
        if _has_ratio(engine, obj):
            for window in WINDOWS:
                records.append(
                    {
                        "record": f"{RECORD_PREFIX}{window}",
                        "expr": error_ratio_promql(engine=engine, obj=obj, sel=sel, window=window),
                        "labels": dict(labels),
                    }
                )
            budget = error_budget(obj)
            match = with_matchers(sel, f'objective="{objective_name(obj)}"')
            for burn in BURN_RATE_ALERTS:
                limit = _burn_threshold(burn.factor, budget)
                alerts.append(
                    {
                        "alert": burn.alert,
                        "expr": (
                            f"{RECORD_PREFIX}{burn.long_window}{match} > {limit}"
                            f" and {RECORD_PREFIX}{burn.short_window}{match} > {limit}"
                        ),
                        "labels": {
                            **labels,
                            "severity": SEVERITY,
                            "long_window": burn.long_window,
                            "short_window": burn.short_window,
                        },
                        "annotations": {
                            "summary": (
                                f"ModelDeployment {namespace}/{name} burns the error budget of {described}"
                                f" {burn.factor:g} times too fast"
                            ),
                            "description": (
                                f"{{{{ $value | humanizePercentage }}}} of requests were bad over the last"
                                f" {burn.long_window} (and above {limit} over the last {burn.short_window});"
                                f" the objective {objective_name(obj)} ({described}) allows"
                                f" {_number(budget * 100)}%. At this rate it spends {burn.budget_spent}."
                            ),
                            "runbook": f"Run `{runbook}` for the rollout timeline and SLO verdicts.",
                        },
                    }
                )
            continue
        alerts.append(_threshold_alert(obj, spec=spec, name=name, namespace=namespace, runbook=runbook))
    groups = []
    if records:
        groups.append({"name": f"slogate-{namespace}-{name}-sli", "rules": records})
    if alerts:
        groups.append({"name": f"slogate-{namespace}-{name}-alerts", "rules": alerts})
    return groups + _quality_groups(name=name, namespace=namespace, spec=spec)


def _quality_groups(*, name: str, namespace: str, spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    """``slogate-NS-NAME-quality``: one alert per probed suite whose latest probe verdict is Fail,
    read from the operator's own ``slogate_quality_verdict`` (its ServiceMonitor keeps the
    ModelDeployment's ``namespace`` label: ``honorLabels``). None without ``quality.probe``."""
    if spec.quality is None or spec.quality.probe is None:
        return []
    probed = spec.quality.probe.suites or [s.name for s in spec.quality.suites]
    runbook = f"slogate explain {name} -n {namespace}"
    alerts = []
    for suite in probed:
        sel = f'{{namespace="{namespace}",modeldeployment="{name}",suite="{suite}",kind="probe",verdict="Fail"}}'
        alerts.append(
            {
                "alert": QUALITY_ALERT,
                "expr": f"max(slogate_quality_verdict{sel}) == 1",
                "labels": {
                    "namespace": namespace,
                    "modeldeployment": name,
                    "suite": suite,
                    "severity": QUALITY_SEVERITY,
                },
                "annotations": {
                    "summary": f"ModelDeployment {namespace}/{name} fails quality suite {suite} in production",
                    "description": (
                        f"The latest quality probe of the stable revision failed suite {suite}: its pass rate's"
                        f" confidence interval is below minPassRate (every {spec.quality.probe.interval})."
                    ),
                    "runbook": f"Run `{runbook}` for the failing cases and answers.",
                },
            }
        )
    return [{"name": f"slogate-{namespace}-{name}-quality", "rules": alerts}]


def _threshold_alert(
    obj: Objective, *, spec: ModelDeploymentSpec, name: str, namespace: str, runbook: str
) -> dict[str, Any]:
    """``QUERY > max`` for ``THRESHOLD_FOR``: custom queries, and TGI TTFT (a sum of quantiles)."""
    window = _slo_window(spec)
    if obj.metric is None:
        if obj.query is None:
            raise ValueError(f"objective {objective_name(obj)} has neither metric nor query")
        query = _all_revisions(obj.query, namespace=namespace, name=name, window=window)
    else:  # TGI TTFT: the approximation analysis uses, over every revision
        if obj.percentile is None:
            raise ValueError(f"objective {objective_name(obj)} needs a percentile")
        query = _latency_promql(
            metrics_for(spec.engine.kind),
            obj.metric,
            _quantile(obj.percentile),
            selector(namespace, name),
            window,
        )
    threshold = _number(threshold_of(obj))
    shown = format_value(threshold_of(obj), unit_of(obj))
    return {
        "alert": THRESHOLD_ALERT,
        "expr": f"({query}) > {threshold}",
        "for": THRESHOLD_FOR,
        "labels": {**_labels(namespace, name, obj), "severity": SEVERITY},
        "annotations": {
            "summary": f"ModelDeployment {namespace}/{name} breaks {_describe(obj, spec.engine.kind)}",
            "description": (
                f"{objective_name(obj)} is {{{{ $value | humanize }}}} over the last {window}, above {shown},"
                f" for {THRESHOLD_FOR}."
            ),
            "runbook": f"Run `{runbook}` for the rollout timeline and SLO verdicts.",
        },
    }


def rules_file(*, name: str, namespace: str, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """A Prometheus rules file (``rule_files:``) for one ModelDeployment. Pure."""
    return {"groups": build_rule_groups(name=name, namespace=namespace, spec=spec)}


def prometheus_rule_name(name: str) -> str:
    """``NAME-slo``: the PrometheusRule's name."""
    return f"{name}-slo"


def prometheus_rule(
    *, name: str, namespace: str, spec: ModelDeploymentSpec, owner_reference: dict[str, Any] | None
) -> dict[str, Any]:
    """The same groups as a prometheus-operator ``PrometheusRule``, owned by the ModelDeployment if given. Pure."""
    metadata: dict[str, Any] = {
        "name": prometheus_rule_name(name),
        "namespace": namespace,
        "labels": {C.LABEL_MANAGED_BY: "slogate", C.LABEL_DEPLOYMENT: name},
    }
    if owner_reference is not None:
        metadata["ownerReferences"] = [owner_reference]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": build_rule_groups(name=name, namespace=namespace, spec=spec)},
    }


__all__ = [
    "BURN_RATE_ALERTS",
    "QUALITY_ALERT",
    "RECORD_PREFIX",
    "THRESHOLD_ALERT",
    "WINDOWS",
    "BurnRateAlert",
    "bucket_bound",
    "buckets_for",
    "build_rule_groups",
    "error_budget",
    "error_ratio_promql",
    "le_label",
    "prometheus_rule",
    "rules_file",
]
