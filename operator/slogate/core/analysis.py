"""SLO analysis: the PromQL for each objective, and the verdict on what Prometheus answered.

Building queries and judging values are pure functions of the spec, so the exact PromQL per engine
and every verdict rule can be tested as tables without a Prometheus. ``run_analysis`` is the only
function that does I/O, and only through the injected ``MetricsSource`` (``adapters.prometheus``
implements it), so a fake dictionary stands in for Prometheus in unit tests.

Four facts shape the verdicts (docs/analysis.md): too few requests, no data, and an unreachable
Prometheus are each *Inconclusive*, never a pass and never 0.0; a value equal to its threshold
passes; every objective is judged on the candidate revision's own pods; ``assess`` folds the
per-objective verdicts into one (any Fail, else any Inconclusive, else Pass). Counting runs against
``failureLimit``/``inconclusiveLimit`` is the rollout state machine's job (``core.rollout``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from slogate.api.types import format_duration, parse_duration
from slogate.api.v1alpha1 import (
    EngineKind,
    ModelDeploymentSpec,
    Objective,
    ObjectiveResult,
    SLIMetric,
    Verdict,
)
from slogate.core.engine_metrics import (
    EngineMetrics,
    error_ratio_expr,
    metrics_for,
    requests_expr,
    selector,
    with_matchers,
)
from slogate.errors import PrometheusUnavailable

LATENCY_METRICS = frozenset({SLIMetric.TTFT, SLIMetric.LATENCY, SLIMetric.INTER_TOKEN_LATENCY})
"""Built-in SLIs measured as a latency percentile, in seconds (the ones ``maxRegressionPercent`` applies to)."""


class MetricsSource(Protocol):
    """Something that answers PromQL with one number. Implemented by ``adapters.prometheus.PrometheusSource``.

    ``query`` returns ``None`` when there is no data (an empty vector, or NaN such as a quantile of
    no observations) and raises ``PrometheusUnavailable`` when the source cannot answer (unreachable,
    timed out, or rejecting the query). It should be idempotent: a retry asks the same question.
    """

    def query(self, promql: str) -> float | None: ...


@dataclass(frozen=True)
class Query:
    """The PromQL that measures one objective."""

    objective: str
    """The objective's name (``objective_name``)."""
    promql: str
    """An instant query that returns one number, scoped to one revision's pods."""
    unit: str
    """``s`` (latency), ``%`` (error rate) or ``""`` (custom query)."""


# ------------------------------------------------------------------------------------------- naming


def _percentile_label(percentile: float) -> str:
    return f"p{percentile:g}"


def objective_name(obj: Objective) -> str:
    """The objective's name: ``name`` when set, else derived from metric and percentile. Pure.

    >>> objective_name(Objective(metric="ttft", percentile=95, max="500ms"))
    'ttft-p95'
    >>> objective_name(Objective(metric="errorRate", max_percent=1))
    'errorRate'
    """
    if obj.name:
        return obj.name
    if obj.metric is None:
        raise ValueError("a custom query objective needs a name")
    if obj.metric == SLIMetric.ERROR_RATE:
        return str(obj.metric)
    return f"{obj.metric}-{_percentile_label(_percentile_of(obj))}"


def _describe(obj: Objective) -> str:
    """How messages refer to an objective: ``ttft p95``, ``errorRate``, or a custom objective's name."""
    if obj.metric is None:
        return objective_name(obj)
    if obj.metric == SLIMetric.ERROR_RATE:
        return str(obj.metric)
    return f"{obj.metric} {_percentile_label(_percentile_of(obj))}"


def _percentile_of(obj: Objective) -> float:
    if obj.percentile is None:
        raise ValueError(f"a {obj.metric} objective needs a percentile")
    return obj.percentile


def unit_of(obj: Objective) -> str:
    """``s`` for latency SLIs, ``%`` for errorRate, ``""`` for custom queries. Pure."""
    if obj.metric is None:
        return ""
    return "%" if obj.metric == SLIMetric.ERROR_RATE else "s"


def threshold_of(obj: Objective) -> float:
    """The objective's threshold as a number in its unit (``unit_of``). Pure.

    >>> threshold_of(Objective(metric="ttft", percentile=95, max="500ms"))
    0.5
    >>> threshold_of(Objective(metric="errorRate", max_percent=1))
    1.0
    >>> threshold_of(Objective(name="hit-rate", query="x", max="0.9"))
    0.9
    """
    if obj.metric == SLIMetric.ERROR_RATE:
        if obj.max_percent is None:
            raise ValueError("an errorRate objective needs maxPercent")
        return float(obj.max_percent)
    if obj.max is None:
        raise ValueError(f"objective {objective_name(obj)} needs max")
    if obj.metric is None:
        return float(obj.max)
    return parse_duration(obj.max).total_seconds()


# ------------------------------------------------------------------------------------------- PromQL


def _window(spec: ModelDeploymentSpec) -> str:
    """The SLO window as PromQL accepts it: ``1.5m`` is valid in the API but not in PromQL → ``1m30s``."""
    if spec.slo is None:
        raise ValueError("the ModelDeployment has no slo")
    return format_duration(parse_duration(spec.slo.window))


def _quantile(percentile: float) -> str:
    """``95`` → ``0.95``, ``99.9`` → ``0.999`` (no float noise such as 0.9990000000000001)."""
    return format((Decimal(repr(float(percentile))) / 100).normalize(), "f")


def _histogram_quantile(q: str, histogram: str, sel: str, window: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{sel}[{window}])))"


def _latency_promql(m: EngineMetrics, metric: SLIMetric, q: str, sel: str, window: str) -> str:
    if metric == SLIMetric.TTFT:
        if m.ttft is not None:
            return _histogram_quantile(q, m.ttft, sel, window)
        # TGI: no TTFT histogram; add the quantiles of its parts (engine_metrics.ttft_approximation).
        return " + ".join(
            _histogram_quantile(q, histogram, with_matchers(sel, extra), window)
            for histogram, extra in m.ttft_approximation
        )
    histogram = m.e2e_latency if metric == SLIMetric.LATENCY else m.inter_token_latency
    return _histogram_quantile(q, histogram, sel, window)


def _error_rate_promql(m: EngineMetrics, sel: str, window: str) -> str:
    # One definition of an error for analysis, alerts and dashboard (engine_metrics.errors_expr):
    # 0 until the first failure; with no traffic the denominator is 0 or absent and the result
    # NaN or empty: no data, as it should be.
    return f"100 * {error_ratio_expr(m, sel, window=window)}"


_PLACEHOLDER = re.compile(r"\$(?:\{(revision|namespace|window|name)\}|(revision|namespace|window|name)\b)")


def substitute(query: str, *, namespace: str, name: str, revision: str, window: str) -> str:
    """Fill ``$revision``, ``$namespace``, ``$window`` and ``$name`` (or ``${revision}`` …) in a custom query. Pure.

    >>> substitute('up{namespace="$namespace",rev="${revision}"}[$window]',
    ...            namespace="ml", name="llama", revision="abc", window="5m")
    'up{namespace="ml",rev="abc"}[5m]'
    """
    values = {"revision": revision, "namespace": namespace, "window": window, "name": name}
    return _PLACEHOLDER.sub(lambda mt: values[mt.group(1) or mt.group(2)], query)


def build_query(
    obj: Objective, *, engine: EngineKind, window: str, namespace: str, name: str, revision: str
) -> Query:
    """The PromQL for one objective on one revision. Pure; ``build_queries`` maps it over the SLO."""
    if obj.metric is None:
        if obj.query is None:
            raise ValueError(f"objective {objective_name(obj)} has neither metric nor query")
        promql = substitute(obj.query, namespace=namespace, name=name, revision=revision, window=window)
        return Query(objective=objective_name(obj), promql=promql, unit="")
    m = metrics_for(engine)
    sel = selector(namespace, name, revision)
    if obj.metric == SLIMetric.ERROR_RATE:
        promql = _error_rate_promql(m, sel, window)
    else:
        promql = _latency_promql(m, obj.metric, _quantile(_percentile_of(obj)), sel, window)
    return Query(objective=objective_name(obj), promql=promql, unit=unit_of(obj))


def build_queries(*, spec: ModelDeploymentSpec, namespace: str, name: str, revision: str) -> list[Query]:
    """One query per SLO objective, scoped to ``revision``'s pods, in the order of the objectives. Pure.

    Consumed by ``run_analysis``; ``revision`` is the candidate, or stable for the baseline.
    """
    if spec.slo is None:
        return []
    window = _window(spec)
    return [
        build_query(
            obj, engine=spec.engine.kind, window=window, namespace=namespace, name=name, revision=revision
        )
        for obj in spec.slo.objectives
    ]


def requests_query(*, spec: ModelDeploymentSpec, namespace: str, name: str, revision: str) -> str:
    """PromQL for the number of requests the revision finished in the SLO window. Pure.

    The error rate's denominator as a count (``engine_metrics.requests_expr`` with ``increase``):
    vLLM's finished requests (every ``finished_reason``, errors included) plus those that failed
    before its engine; TGI's successes plus failures, once per generation. Compared with
    ``slo.minRequests`` by ``evaluate``.
    """
    m = metrics_for(spec.engine.kind)
    sel = selector(namespace, name, revision)
    return requests_expr(m, sel, window=_window(spec), fn="increase")


# ------------------------------------------------------------------------------------------ verdicts


def format_value(value: float | None, unit: str) -> str | None:
    """A measured value or threshold for status and messages. Pure.

    Seconds below one second are written in milliseconds (one decimal below 10 ms), longer ones
    in seconds with at most two decimals; percentages with two decimals; plain numbers with four
    significant digits.

    >>> [format_value(v, "s") for v in (0.6124, 0.0042, 1.25, 2.0)]
    ['612ms', '4.2ms', '1.25s', '2s']
    >>> format_value(0.4, "%"), format_value(0.93, ""), format_value(None, "s")
    ('0.40%', '0.93', None)
    """
    if value is None:
        return None
    if not math.isfinite(value):
        return str(value)
    if unit == "s":
        ms = value * 1000
        if abs(round(ms)) < 1000:
            return f"{round(ms)}ms" if abs(ms) >= 9.95 else f"{_trim(f'{ms:.1f}')}ms"
        return f"{_trim(f'{value:.2f}')}s"
    if unit == "%":
        return f"{value:.2f}%"
    if abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


_FORMATTED = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)(ms|s|%)?$")


def base_value(text: str | None) -> float | None:
    """A value ``format_value`` wrote, back in base units: seconds, a ratio (0..1) for ``%``. Pure.

    Its precision is that of the text (1 ms, 0.01 %, four significant digits); ``None`` for no
    value or one it did not write. Consumed by ``telemetry``, which exports the last measured
    values from ``status.lastAnalysis`` so they survive an operator restart.

    >>> [base_value(t) for t in ("612ms", "4.2ms", "1.25s", "0.40%", "0.93", None, "n/a")]
    [0.612, 0.0042, 1.25, 0.004, 0.93, None, None]
    """
    m = _FORMATTED.match((text or "").strip())
    if m is None:
        return None
    number, unit = float(m.group(1)), m.group(2)
    scaled = {"ms": number / 1000, "%": number / 100}.get(unit or "", number)
    return round(scaled, 12)


def base_threshold(obj: Objective) -> float:
    """The objective's threshold in base units: seconds, a ratio (0..1) for errorRate. Pure.

    >>> base_threshold(Objective(metric="errorRate", max_percent=1))
    0.01
    """
    value = threshold_of(obj)
    return value / 100 if unit_of(obj) == "%" else value


def evaluate(
    *,
    query: Query,
    objective: Objective,
    value: float | None,
    requests: float | None,
    min_requests: int,
    baseline: float | None = None,
    max_regression_percent: float | None = None,
) -> ObjectiveResult:
    """Judge one measured objective. Pure; consumed by ``run_analysis``.

    In order: fewer than ``min_requests`` requests (``requests`` is the revision's count in the
    window, ``None`` when no request metric exists) → Inconclusive; no value → Inconclusive; value
    above the threshold → Fail; for a latency objective with both ``baseline`` (stable's value) and
    ``max_regression_percent``, value above ``baseline * (1 + max_regression_percent / 100)`` → Fail;
    otherwise Pass. Equality passes both comparisons. A missing or zero baseline skips the
    comparison (the candidate's own data decided; stable having no traffic must not block forever).

    >>> o = Objective(metric="ttft", percentile=95, max="500ms")
    >>> q = Query(objective="ttft-p95", promql="…", unit="s")
    >>> evaluate(query=q, objective=o, value=0.612, requests=500, min_requests=100).message
    'ttft p95 612ms > 500ms'
    """
    threshold = threshold_of(objective)
    label = _describe(objective)

    def result(verdict: Verdict, message: str) -> ObjectiveResult:
        return ObjectiveResult(
            name=query.objective,
            value=format_value(value, query.unit),
            threshold=format_value(threshold, query.unit) or "",
            verdict=verdict,
            message=message,
        )

    if min_requests > 0:
        if requests is None:
            return result(Verdict.INCONCLUSIVE, f"no requests recorded; minRequests {min_requests}")
        if round(requests) < min_requests:
            return result(Verdict.INCONCLUSIVE, f"{round(requests)} requests < minRequests {min_requests}")
    if value is None:
        return result(Verdict.INCONCLUSIVE, "no data")
    shown = format_value(value, query.unit)
    limit = format_value(threshold, query.unit)
    if value > threshold:
        return result(Verdict.FAIL, f"{label} {shown} > {limit}")
    message = f"{label} {shown} ≤ {limit}"
    if (
        objective.metric in LATENCY_METRICS
        and max_regression_percent is not None
        and baseline is not None
        and baseline > 0
    ):
        worse = (value / baseline - 1) * 100
        stable = format_value(baseline, query.unit)
        if value > baseline * (1 + max_regression_percent / 100):
            return result(
                Verdict.FAIL,
                f"{label} {shown} is {worse:.0f}% worse than stable ({stable}), limit {max_regression_percent:g}%",
            )
        message += f"; {worse:+.0f}% vs stable ({stable})"
    return result(Verdict.PASS, message)


def assess(results: list[ObjectiveResult]) -> Verdict:
    """One verdict for an analysis run. Pure; consumed by ``run_analysis`` and the rollout.

    Any Fail → Fail; else any Inconclusive → Inconclusive; else Pass. No results → Inconclusive
    (nothing was measured, so nothing passed).

    >>> assess([])
    <Verdict.INCONCLUSIVE: 'Inconclusive'>
    """
    return worst([r.verdict for r in results])


def worst(verdicts: Iterable[str]) -> Verdict:
    """Any Fail → Fail; else any Inconclusive, or none at all → Inconclusive; else Pass. Pure;
    the fold of objectives (``assess``) and of quality suites (``core.quality.fold``).

    >>> worst(["Pass", "Inconclusive"]), worst([])
    (<Verdict.INCONCLUSIVE: 'Inconclusive'>, <Verdict.INCONCLUSIVE: 'Inconclusive'>)
    """
    seen = set(verdicts)
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in seen or not seen:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def _unreachable(
    queries: list[Query], objectives: list[Objective], error: Exception
) -> list[ObjectiveResult]:
    return [
        ObjectiveResult(
            name=q.objective,
            value=None,
            threshold=format_value(threshold_of(o), q.unit) or "",
            verdict=Verdict.INCONCLUSIVE,
            message=f"Prometheus unreachable: {error}",
        )
        for q, o in zip(queries, objectives, strict=True)
    ]


# ------------------------------------------------------------------------------------------------ I/O


def run_analysis(
    source: MetricsSource,
    *,
    spec: ModelDeploymentSpec,
    namespace: str,
    name: str,
    revision: str,
    stable_revision: str | None,
) -> tuple[Verdict, list[ObjectiveResult]]:
    """Measure every objective of ``revision`` once and judge it. Its only I/O is ``source.query``.

    Queries, in order: the revision's request count, then each objective's value and — only for
    latency objectives when ``rollout.analysis.maxRegressionPercent`` is set and a different
    ``stable_revision`` exists — stable's request count (once) and stable's value as baseline. A
    baseline from fewer than ``minRequests`` stable requests is not used. ``PrometheusUnavailable``
    on the request count makes every objective Inconclusive without further queries (an outage
    would otherwise cost one timeout per objective); on one objective's query, that objective only
    (a custom query Prometheus rejects must not hide the others). Consumed by the controller, which
    records the result in ``status.lastAnalysis`` and hands the verdict to ``core.rollout.plan``.
    """
    if spec.slo is None:
        return Verdict.INCONCLUSIVE, []
    objectives = list(spec.slo.objectives)
    min_requests = spec.slo.min_requests
    queries = build_queries(spec=spec, namespace=namespace, name=name, revision=revision)
    try:
        requests = source.query(requests_query(spec=spec, namespace=namespace, name=name, revision=revision))
    except PrometheusUnavailable as exc:
        results = _unreachable(queries, objectives, exc)
        return assess(results), results

    max_regression = spec.rollout.analysis.max_regression_percent
    stable = stable_revision if max_regression is not None and stable_revision != revision else None
    baseline_queries = (
        build_queries(spec=spec, namespace=namespace, name=name, revision=stable) if stable else []
    )
    stable_requests: float | None = None
    stable_requests_asked = False

    results: list[ObjectiveResult] = []
    for i, (query, objective) in enumerate(zip(queries, objectives, strict=True)):
        try:
            value = source.query(query.promql)
            baseline = None
            if stable and objective.metric in LATENCY_METRICS:
                if not stable_requests_asked:
                    stable_requests = source.query(
                        requests_query(spec=spec, namespace=namespace, name=name, revision=stable)
                    )
                    stable_requests_asked = True
                if stable_requests is not None and round(stable_requests) >= min_requests:
                    baseline = source.query(baseline_queries[i].promql)
        except PrometheusUnavailable as exc:
            results.extend(_unreachable([query], [objective], exc))
            continue
        results.append(
            evaluate(
                query=query,
                objective=objective,
                value=value,
                requests=requests,
                min_requests=min_requests,
                baseline=baseline,
                max_regression_percent=max_regression,
            )
        )
    return assess(results), results
