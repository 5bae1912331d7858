"""Input drift: the request mix now, compared with the one recorded when the stable revision was promoted. Pure.

What is compared is the *shape* of the traffic, never its content: the distributions of prompt
length and generated length that the engines already export as histograms (``engine_metrics``:
``vllm:request_prompt_tokens`` / ``tgi_request_input_length`` and ``vllm:request_generation_tokens``
/ ``tgi_request_generated_tokens``). Two PromQL queries per check, one per dimension, turn the
window's per-bucket request counts into cumulative distributions; the distance between baseline
and now is the Kolmogorov-Smirnov statistic on the bucket boundaries both know (docs/drift.md has
the reasoning, the defaults and the limits). Building queries, distributions, distances and the
verdict are pure functions of plain data; ``measure`` is the only function that does I/O, and only
through the injected ``VectorSource`` (``adapters.prometheus.PrometheusSource`` implements it).
The controller keeps the baseline in ``status.inputBaseline`` and the verdict in the ``InputDrift``
condition (issue 7: "Observability and cost by design").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from slogate.api.types import format_duration, parse_duration
from slogate.api.v1alpha1 import EngineKind, ModelDeploymentSpec
from slogate.core.conditions import get_condition, set_condition
from slogate.core.engine_metrics import metrics_for, selector
from slogate.core.timefmt import parse_rfc3339, rfc3339
from slogate.core.vocabulary import ConditionStatus, ConditionType, DriftReason, Event, Events

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE.value, ConditionStatus.FALSE.value, ConditionStatus.UNKNOWN.value

DIMENSIONS = ("prompt", "generation")
"""What is compared: prompt length and generated length per request, in tokens (the metric's
``dimension`` label)."""

DEFAULT_THRESHOLD = 0.2
"""Drift when the largest CDF difference of either dimension exceeds this (20 percentage points of
requests moved across some bucket boundary)."""
RECOVERY_FACTOR = 0.75
"""Hysteresis: once drifting, the request mix is back only when every distance is at or below
``threshold * RECOVERY_FACTOR`` (0.15 by default), so a distance hovering around the threshold
does not flip the condition at every check."""
DEFAULT_MIN_REQUESTS = 200
"""Fewer requests than this in the window give no verdict (and record no baseline). With 200
requests on each side, sampling alone moves the statistic above 0.2 with well under 1% chance."""
DEFAULT_WINDOW = "1h"
"""The request mix is a slow signal: an hour smooths daily noise while still reacting the same day."""
FRACTION_DIGITS = 4
"""Cumulative fractions in ``status.inputBaseline`` are rounded to this many decimals."""


class VectorSource(Protocol):
    """Something that answers PromQL with labelled samples. Implemented by
    ``adapters.prometheus.PrometheusSource``; raises ``PrometheusUnavailable`` when it cannot answer."""

    def query_vector(self, promql: str) -> list[tuple[dict[str, str], float]]: ...


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class DriftSettings:
    """The effective settings of one ModelDeployment (``spec.observability.inputDrift`` with defaults)."""

    enabled: bool = True
    window: str = DEFAULT_WINDOW
    """As PromQL writes it (``1h``, ``1m30s``)."""
    threshold: float = DEFAULT_THRESHOLD
    min_requests: int = DEFAULT_MIN_REQUESTS
    interval: timedelta = timedelta(minutes=1)
    """Checks run at most this often (``rollout.analysis.interval``)."""

    @property
    def recovery(self) -> float:
        """The distance at or below which a drifting mix counts as back (hysteresis)."""
        return self.threshold * RECOVERY_FACTOR


def settings_of(spec: ModelDeploymentSpec) -> DriftSettings:
    """The drift settings of a spec, defaults applied. Pure; consumed by the controller."""
    cfg = spec.observability.input_drift
    return DriftSettings(
        enabled=cfg.enabled,
        window=format_duration(parse_duration(cfg.window)),
        threshold=cfg.threshold,
        min_requests=cfg.min_requests,
        interval=parse_duration(spec.rollout.analysis.interval),
    )


def check_due(
    last: tuple[tuple[Any, ...], datetime] | None, key: tuple[Any, ...], now: datetime, interval: timedelta
) -> bool:
    """Whether a drift check is due. Pure; the controller keeps ``last`` in memory (a rate limit only:
    losing it on restart just checks again, and the verdict itself lives in status).

    Due when never checked, when ``key`` (stable revision, generation) changed since the last check
    (a promotion records its baseline at once; a spec change is judged at once), or after ``interval``.

    >>> t = datetime(2026, 1, 1)
    >>> check_due(None, ("a", 1), t, timedelta(minutes=1))
    True
    >>> check_due((("a", 1), t), ("a", 1), t + timedelta(seconds=30), timedelta(minutes=1))
    False
    >>> check_due((("a", 1), t), ("b", 1), t + timedelta(seconds=30), timedelta(minutes=1))
    True
    """
    if last is None or last[0] != key:
        return True
    return now - last[1] >= interval


def serving_since(conditions: Sequence[Mapping[str, Any]]) -> datetime | None:
    """Since when the ModelDeployment has served without a break: the ``Available`` condition's
    ``lastTransitionTime`` while it is ``True``; ``None`` when it is not True or has no valid time. Pure.

    >>> serving_since([{"type": "Available", "status": "True", "lastTransitionTime": "2026-03-01T11:00:00Z"}])
    datetime.datetime(2026, 3, 1, 11, 0, tzinfo=datetime.timezone.utc)
    >>> serving_since([{"type": "Available", "status": "False", "lastTransitionTime": "2026-03-01T11:00:00Z"}])
    """
    cond = get_condition(conditions, ConditionType.AVAILABLE)
    if not cond or cond.get("status") != TRUE:
        return None
    return parse_rfc3339(cond.get("lastTransitionTime"))


# -------------------------------------------------------------------------------------------- PromQL


def bucket_query(*, engine: EngineKind, dimension: str, namespace: str, name: str, window: str) -> str:
    """PromQL for the requests per length bucket over ``window``, over all the ModelDeployment's pods. Pure.

    The request mix is a property of the traffic, not of a revision, so every pod of the
    ModelDeployment counts (the selector SLO analysis uses, without the revision). ``increase``
    makes counter resets and pod restarts irrelevant; ``sum by (le)`` keeps one series per bucket.

    >>> bucket_query(engine=EngineKind.VLLM, dimension="prompt", namespace="ml", name="llama", window="1h")
    'sum by (le) (increase(vllm:request_prompt_tokens_bucket{namespace="ml",slogate_io_deployment="llama"}[1h]))'
    >>> bucket_query(engine=EngineKind.TGI, dimension="generation", namespace="ml", name="llama", window="5m")
    'sum by (le) (increase(tgi_request_generated_tokens_bucket{namespace="ml",slogate_io_deployment="llama"}[5m]))'
    """
    m = metrics_for(engine)
    if dimension == "prompt":
        histogram = m.prompt_tokens
    elif dimension == "generation":
        histogram = m.generation_tokens
    else:
        raise ValueError(f"dimension must be one of {', '.join(DIMENSIONS)}, got {dimension!r}")
    return f"sum by (le) (increase({histogram}_bucket{selector(namespace, name)}[{window}]))"


# ------------------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """A cumulative distribution of lengths: ``(upper bound, fraction of requests ≤ bound)`` points.

    Points are ascending finite bounds; ``+Inf`` is implied at 1. A point at 0 says everything below
    it is 0 too, a point at 1 that everything above it is 1: so a baseline trimmed to the range
    where the mass lies (``compact``) still answers exactly outside that range.
    """

    points: tuple[tuple[float, float], ...]
    requests: float
    """Observations in the window (the ``+Inf`` bucket)."""

    def at(self, x: float) -> float | None:
        """The fraction of requests ≤ ``x``, or ``None`` when the buckets cannot tell. Pure.

        >>> d = Distribution(((10.0, 0.0), (20.0, 0.5), (50.0, 1.0)), 10)
        >>> [d.at(x) for x in (5.0, 20.0, 30.0, 100.0)]
        [0.0, 0.5, None, 1.0]
        """
        for bound, fraction in self.points:
            if bound == x:
                return fraction
        if any(b >= x and f == 0.0 for b, f in self.points):
            return 0.0
        if any(b <= x and f >= 1.0 for b, f in self.points):
            return 1.0
        return None


def distribution_from_buckets(buckets: Iterable[tuple[str, float]]) -> Distribution | None:
    """A normalised cumulative distribution from ``(le, cumulative count)`` pairs. Pure.

    Tolerant of what Prometheus may answer: ``le`` written differently for the same bound (``1`` and
    ``1.0`` from different pods) is merged by summing; unparseable bounds and non-finite counts are
    skipped; negative counts count as 0; counts that dip below a smaller bucket's (``increase``
    extrapolates each bucket series on its own) are raised to it. The ``+Inf`` bucket is the total;
    without one, the largest bucket stands for it. ``None`` when there is no bucket or no request.

    >>> distribution_from_buckets([("+Inf", 4), ("10", 1), ("100", 3)])
    Distribution(points=((10.0, 0.25), (100.0, 0.75)), requests=4.0)
    """
    by_bound: dict[float, float] = {}
    for le, count in buckets:
        try:
            bound = float(le)
        except (TypeError, ValueError):
            continue
        if math.isnan(bound) or bound == -math.inf or not math.isfinite(count):
            continue
        by_bound[bound] = by_bound.get(bound, 0.0) + max(float(count), 0.0)
    if not by_bound:
        return None
    running = 0.0
    cumulative: list[tuple[float, float]] = []
    for bound in sorted(by_bound):
        running = max(running, by_bound[bound])
        cumulative.append((bound, running))
    total = cumulative[-1][1]
    if total <= 0.0:
        return None
    return Distribution(
        tuple((bound, count / total) for bound, count in cumulative if math.isfinite(bound)), total
    )


def samples_to_buckets(samples: Iterable[tuple[Mapping[str, str], float]]) -> list[tuple[str, float]]:
    """``(le, value)`` pairs from a query's labelled samples; samples without ``le`` are ignored. Pure."""
    return [(labels["le"], value) for labels, value in samples if "le" in labels]


def ks_distance(a: Distribution, b: Distribution) -> float | None:
    """The Kolmogorov-Smirnov statistic on the bucket boundaries both distributions can answer. Pure.

    ``max |F_a(x) - F_b(x)|`` over every bound ``x`` of either where both ``at(x)`` are known:
    bounded 0..1, no parameter, and explainable ("at most 43% of requests changed side of some
    length"). With the same bucket layout on both sides (the usual case) every bound is shared.
    ``None`` when no bound is shared.

    >>> base = Distribution(((100.0, 0.2), (1000.0, 0.9)), 500)
    >>> now = Distribution(((100.0, 0.1), (1000.0, 0.4)), 500)
    >>> round(ks_distance(base, now), 4)
    0.5
    """
    best: float | None = None
    for x in sorted({bound for bound, _ in a.points} | {bound for bound, _ in b.points}):
        fa, fb = a.at(x), b.at(x)
        if fa is None or fb is None:
            continue
        d = abs(fa - fb)
        best = d if best is None or d > best else best
    return best


def _number(x: float) -> str:
    return f"{x:.10g}"


def compact(dist: Distribution) -> list[list[str]]:
    """The distribution as status stores it: ``[[bound, fraction], ...]`` strings, fractions rounded,
    leading zeros and trailing ones trimmed to one each (``Distribution.at`` stays exact). Pure.

    >>> compact(Distribution(((1.0, 0.0), (2.0, 0.0), (5.0, 0.123456), (10.0, 1.0), (20.0, 1.0)), 9))
    [['2', '0'], ['5', '0.1235'], ['10', '1']]
    """
    points = [(b, round(f, FRACTION_DIGITS)) for b, f in dist.points]
    start = 0
    for i, (_, f) in enumerate(points):
        if f == 0.0:
            start = i
        else:
            break
    end = len(points)
    for i, (_, f) in enumerate(points):
        if f >= 1.0:
            end = i + 1
            break
    return [[_number(b), _number(f)] for b, f in points[start:end]]


def expand(points: Sequence[Sequence[str]], requests: float) -> Distribution | None:
    """A ``Distribution`` from its ``compact`` form; ``None`` when it cannot be read. Pure."""
    try:
        parsed = tuple(sorted((float(b), float(f)) for b, f in points))
    except (TypeError, ValueError):
        return None
    return Distribution(parsed, float(requests))


# ------------------------------------------------------------------------------------------- measure


@dataclass(frozen=True)
class Measurement:
    """The current window's distributions; a dimension is ``None`` when it had no request."""

    prompt: Distribution | None
    generation: Distribution | None

    @property
    def requests(self) -> int:
        """Requests in the window: the smaller count of the two histograms (0 when either is empty)."""
        if self.prompt is None or self.generation is None:
            return 0
        return round(min(self.prompt.requests, self.generation.requests))

    def of(self, dimension: str) -> Distribution | None:
        return self.prompt if dimension == "prompt" else self.generation


def measure(
    source: VectorSource, *, engine: EngineKind, namespace: str, name: str, window: str
) -> Measurement:
    """Ask for both dimensions: two queries, the only I/O here. ``PrometheusUnavailable`` from the
    first query propagates before the second is sent (an outage costs one timeout, not two)."""
    dists = [
        distribution_from_buckets(
            samples_to_buckets(
                source.query_vector(
                    bucket_query(engine=engine, dimension=d, namespace=namespace, name=name, window=window)
                )
            )
        )
        for d in DIMENSIONS
    ]
    return Measurement(prompt=dists[0], generation=dists[1])


NOTHING_MEASURED: Final = Measurement(prompt=None, generation=None)
"""The measurement of a check that needed none (``needs_measurement`` False): an empty window."""


def needs_measurement(
    settings: DriftSettings,
    *,
    stable: str,
    baseline: Mapping[str, Any] | None,
    serving_since: datetime | None,
    now: datetime,
) -> bool:
    """Whether a due check must ask Prometheus. Pure; consumed by the controller, which passes
    ``NOTHING_MEASURED`` to ``decide`` when it need not.

    Without a baseline for ``stable``, ``decide`` records one only once the ModelDeployment has
    served for a whole window; before that its verdict is ``BaselinePending`` whatever the window
    holds. A new ModelDeployment thus sends no drift query for its first window (an hour by
    default): at 1,000 new ones that was 2,000 queries answered with empty vectors while creating.

    >>> s, t = DriftSettings(window="1h"), datetime(2026, 1, 1, 12)
    >>> needs_measurement(s, stable="a", baseline=None, serving_since=None, now=t)
    False
    >>> needs_measurement(s, stable="a", baseline=None, serving_since=t - timedelta(minutes=59), now=t)
    False
    >>> needs_measurement(s, stable="a", baseline=None, serving_since=t - timedelta(hours=1), now=t)
    True
    >>> needs_measurement(s, stable="a", baseline={"revision": "a"}, serving_since=None, now=t)
    True
    """
    if baseline is not None and baseline.get("revision") == stable:
        return True
    return serving_since is not None and now - serving_since >= parse_duration(settings.window)


# ------------------------------------------------------------------------------------------- verdict


def baseline_status(*, revision: str, now: datetime, window: str, measurement: Measurement) -> dict[str, Any]:
    """``status.inputBaseline`` (camelCase) from a measurement. Pure."""
    assert measurement.prompt is not None and measurement.generation is not None
    return {
        "revision": revision,
        "recordedAt": rfc3339(now),
        "window": window,
        "requests": measurement.requests,
        "prompt": compact(measurement.prompt),
        "generation": compact(measurement.generation),
    }


def baseline_distributions(baseline: Mapping[str, Any]) -> dict[str, Distribution | None]:
    """The baseline's distributions per dimension, read from status. Pure."""
    requests = float(baseline.get("requests") or 0)
    return {d: expand(baseline.get(d) or [], requests) for d in DIMENSIONS}


@dataclass(frozen=True)
class DriftDecision:
    """What one check concluded. Consumed by ``controller.reconcile``, which writes ``baseline`` to
    ``status.inputBaseline``, applies ``condition`` with ``apply_condition``, exports ``distances`` and
    ``drifting`` as metrics and posts ``events``."""

    baseline: dict[str, Any] | None
    """The baseline to keep in status (the old one when unchanged; ``None`` when disabled)."""
    condition: tuple[str, str, str] | None
    """``(status, reason, message)`` to set, or ``None`` to keep the condition exactly as it is."""
    distances: dict[str, float] = field(default_factory=dict)
    """Live distance per dimension (empty when nothing was compared)."""
    drifting: bool = False
    """Whether the condition is (or stays) True."""
    events: tuple[Event, ...] = ()
    """``Events.INPUT_DRIFT``, ``INPUT_DRIFT_CLEARED``, ``INPUT_BASELINE_RECORDED``."""
    remove: bool = False
    """Drift detection is disabled: remove the condition."""


def _unchanged(previous: Mapping[str, Any] | None, status: str, reason: str, generation: int) -> bool:
    return (
        previous is not None
        and previous.get("status") == status
        and previous.get("reason") == reason
        and previous.get("observedGeneration") == generation
    )


def _fmt(d: float) -> str:
    return f"{d:.2f}"


def decide(
    *,
    settings: DriftSettings,
    stable: str,
    baseline: Mapping[str, Any] | None,
    measurement: Measurement | None,
    previous: Mapping[str, Any] | None,
    generation: int,
    now: datetime,
    serving_since: datetime | None,
) -> DriftDecision:
    """The drift verdict of one check. Pure; consumed by ``controller.reconcile``.

    Inputs: the settings, the stable revision, ``status.inputBaseline``, the current window's
    ``measurement`` (``None`` when Prometheus could not answer), the previous ``InputDrift``
    condition, the spec's generation and since when the ModelDeployment has served without a break
    (``serving_since``, ``None`` when it does not serve). In order:

    1. disabled → remove the condition (and the baseline);
    2. no measurement (Prometheus down) → keep the last condition as it is; Unknown only if none yet;
    3. no baseline for the stable revision → record one when the ModelDeployment has served for the
       whole window and the window holds ``min_requests`` (condition False), else Unknown
       ``BaselinePending``. A promotion thus replaces the baseline; a first revision nobody called
       yet gets one at the first check with enough traffic. A window that began before the pods
       served is not a baseline: Prometheus extrapolates its counts and drops each new series' first
       scrape, so a few dozen requests could pass for ``min_requests`` and fix a skewed mix for good;
    4. fewer than ``min_requests`` now → Unknown ``NotEnoughTraffic``;
    5. the Kolmogorov-Smirnov distance per dimension; drifting when any is above ``threshold``, or,
       when already drifting, above ``threshold * RECOVERY_FACTOR`` (hysteresis).

    The condition is rewritten only when its status or reason changes (or the spec's generation),
    so a steady state writes nothing: live distances go to the metrics, not to status. A Warning
    Event marks entering drift, a Normal one leaving it.
    """
    was_drifting = previous is not None and previous.get("status") == TRUE
    events: list[Event] = []

    if not settings.enabled:
        return DriftDecision(baseline=None, condition=None, remove=True)

    def result(
        status: str,
        reason: str,
        message: str,
        *,
        new_baseline: Mapping[str, Any] | None = None,
        distances: dict[str, float] | None = None,
        cleared: str = "",
        refresh: bool = False,
    ) -> DriftDecision:
        if was_drifting and status != TRUE:
            events.append(Events.INPUT_DRIFT_CLEARED(cleared or message))
        elif status == TRUE and not was_drifting:
            events.append(Events.INPUT_DRIFT(message))
        keep = not refresh and _unchanged(previous, status, reason, generation)
        return DriftDecision(
            baseline=dict(new_baseline) if new_baseline is not None else None,
            condition=None if keep else (status, reason, message),
            distances=distances or {},
            drifting=status == TRUE,
            events=tuple(events),
        )

    if measurement is None:
        if previous is not None:
            return DriftDecision(
                baseline=dict(baseline) if baseline is not None else None,
                condition=None,
                drifting=was_drifting,
            )
        return result(
            UNKNOWN,
            DriftReason.PROMETHEUS_UNAVAILABLE,
            "Prometheus did not answer: no verdict on the request mix yet",
            new_baseline=baseline,
        )

    window = settings.window
    within = (
        f"request mix within the baseline of revision {stable} "
        f"(Kolmogorov-Smirnov distance ≤ {settings.threshold:g} for prompt and generation length)"
    )
    if baseline is None or baseline.get("revision") != stable:
        covered = serving_since is not None and now - serving_since >= parse_duration(window)
        if covered and measurement.requests >= settings.min_requests:
            recorded = baseline_status(revision=stable, now=now, window=window, measurement=measurement)
            events.append(
                Events.INPUT_BASELINE_RECORDED(
                    f"request-mix baseline of revision {stable} recorded from {recorded['requests']} "
                    f"requests over {window}"
                )
            )
            return result(
                FALSE,
                DriftReason.WITHIN_BASELINE,
                within,
                new_baseline=recorded,
                distances=dict.fromkeys(DIMENSIONS, 0.0),
                cleared=f"a new request-mix baseline was recorded for revision {stable}",
                refresh=True,
            )
        return result(
            UNKNOWN,
            DriftReason.BASELINE_PENDING,
            # One message for both waits (too little time serving, too few requests): the condition is
            # rewritten only when its reason changes, so a message naming one of them would go stale.
            f"waiting for {settings.min_requests} requests within a whole {window} window of serving "
            f"(Available throughout) to record the request-mix baseline of revision {stable}",
            new_baseline=baseline,
        )

    if measurement.requests < settings.min_requests:
        return result(
            UNKNOWN,
            DriftReason.NOT_ENOUGH_TRAFFIC,
            f"fewer than {settings.min_requests} requests within {window}: no verdict on the request mix",
            new_baseline=baseline,
        )

    base = baseline_distributions(baseline)
    distances: dict[str, float] = {}
    for dim in DIMENSIONS:
        b, c = base[dim], measurement.of(dim)
        if b is None or c is None:
            continue
        d = ks_distance(b, c)
        if d is not None:
            distances[dim] = d
    if not distances:
        return result(
            UNKNOWN,
            DriftReason.NO_SHARED_BUCKETS,
            f"the length histograms share no bucket boundary with the baseline of revision {stable}",
            new_baseline=baseline,
        )

    limit = settings.recovery if was_drifting else settings.threshold
    over = {d: v for d, v in distances.items() if v > limit}
    shown = ", ".join(f"{d} {_fmt(v)}" for d, v in distances.items())
    if over:
        worst = ", ".join(f"{d} length distance {_fmt(v)}" for d, v in over.items())
        return result(
            TRUE,
            DriftReason.DRIFT_DETECTED,
            f"request mix departs from the baseline of revision {stable}: {worst} > threshold "
            f"{settings.threshold:g} (Kolmogorov-Smirnov over {window})",
            new_baseline=baseline,
            distances=distances,
        )
    return result(
        FALSE,
        DriftReason.WITHIN_BASELINE,
        within,
        new_baseline=baseline,
        distances=distances,
        cleared=f"request mix back within the baseline of revision {stable}: {shown} "
        f"≤ {_fmt(settings.recovery)}",
    )


def apply_condition(
    conditions: Sequence[Mapping[str, Any]], decision: DriftDecision, *, generation: int, now: datetime
) -> list[dict[str, Any]]:
    """The conditions with ``InputDrift`` set (or kept, or removed) as ``decision`` says. Pure."""
    if decision.remove:
        return [dict(c) for c in conditions if c.get("type") != ConditionType.INPUT_DRIFT]
    if decision.condition is None:
        return [dict(c) for c in conditions]
    status, reason, message = decision.condition
    out, _ = set_condition(
        conditions,
        type=ConditionType.INPUT_DRIFT,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    return out


def previous_condition(conditions: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The ``InputDrift`` condition, or ``None``. Pure."""
    return get_condition(conditions, ConditionType.INPUT_DRIFT)
