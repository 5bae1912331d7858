"""The Prometheus series each serving engine exports, and the labels slogate selects them by. Pure.

vLLM and TGI name the same signals differently (``vllm:num_requests_waiting`` vs
``tgi_queue_size``), and TGI lacks some (no KV-cache gauge, no TTFT histogram). Both the autoscaler
builder (``core.desired``) and SLO analysis need the real names, so they are written down once,
here, as data: one frozen ``EngineMetrics`` per engine. The names match the engines' sources and the
simulator (``slogate.sim.metrics``, docs/simulator.md), so PromQL built from them works against
both. Pod labels reach Prometheus sanitised (``slogate.io/revision`` → ``slogate_io_revision``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from slogate import constants as C
from slogate.api.v1alpha1 import AutoscalingMetric, EngineKind


def prometheus_label(pod_label: str) -> str:
    """A Kubernetes label key as Prometheus sees it after scraping. Pure.

    prometheus-operator's ``podTargetLabels`` (and the usual ``labelmap`` relabelling of
    ``__meta_kubernetes_pod_label_*``) replace every character that is not ``[a-zA-Z0-9_]``
    with ``_``.

    >>> prometheus_label("slogate.io/revision")
    'slogate_io_revision'
    """
    return re.sub(r"[^a-zA-Z0-9_]", "_", pod_label)


PROM_LABEL_DEPLOYMENT = prometheus_label(C.LABEL_DEPLOYMENT)
"""``slogate_io_deployment``: the ModelDeployment's name."""
PROM_LABEL_REVISION = prometheus_label(C.LABEL_REVISION)
"""``slogate_io_revision``: the pod's revision hash."""
PROM_LABEL_TRACK = prometheus_label(C.LABEL_TRACK)
"""``slogate_io_track``: ``stable`` or ``canary``."""


VLLM_GENERATION_ROUTES = (
    "/v1/chat/completions",  # vllm/entrypoints/openai/chat_completion/api_router.py:44 @ 0.33.0
    "/v1/chat/completions/batch",  # openai/chat_completion/api_router.py:89
    "/v1/completions",  # openai/completion/api_router.py:38
    "/v1/responses",  # openai/responses/api_router.py:49
    "/v1/messages",  # anthropic/api_router.py:53
    "/cohere/v2/chat",  # cohere/api_router.py:120
    "/inference/v1/generate",  # scale_out/token_in_token_out/api_router.py:47
    "/invocations",  # serve/sagemaker/api_router.py:99 (SageMaker: dispatches to the routes above)
    "/v1/decisions",  # openai/decisions/api_router.py:25
    "/v1/systemone",  # generate/structured_decisions/api_router.py:34
)
"""The routes of vLLM 0.33.0's API server that run a generation (``@router.post`` under
``vllm/entrypoints``, paths relative to it). Only failures that never reach the engine are read
from these routes' HTTP metrics; everything the engine finishes is counted by the engine itself,
whatever the route."""


@dataclass(frozen=True)
class EngineMetrics:
    """The series one engine exports. ``None`` marks a signal the engine does not have.

    Histogram fields name the base series (PromQL adds ``_bucket``, ``_sum``, ``_count``);
    counter fields carry the name exactly as scraped (vLLM's end in ``_total``, TGI's do not,
    because Rust's metrics-exporter-prometheus writes no suffix).
    """

    kind: EngineKind
    """The engine these names belong to."""
    queue_depth: str
    """Gauge: requests waiting for a batch slot."""
    running_requests: str
    """Gauge: requests in the running batch."""
    kv_cache_usage: str | None
    """Gauge: KV-cache utilisation, 0..1. TGI exports none."""
    ttft: str | None
    """Histogram (seconds): time to first token. TGI exports none: see ``ttft_approximation``."""
    ttft_approximation: tuple[tuple[str, str], ...]
    """When ``ttft`` is ``None``: ``(histogram, extra label matchers)`` whose quantiles are added to
    approximate a TTFT quantile. For TGI this is queue time plus the prefill forward pass
    (``tgi_request_queue_duration`` + ``tgi_batch_inference_duration{method="prefill"}``); the ~1 ms
    of request validation is left out. The prefill histogram is observed per batch, not per
    request, and a sum of quantiles is not the quantile of a sum, so this is an estimate that errs
    high under load (both parts peak together); it is empty for engines that export ``ttft``."""
    inter_token_latency: str
    """Histogram (seconds): time between output tokens. For TGI, the per-request mean time per
    token, which includes the prefill (TGI divides inference time by generated tokens)."""
    e2e_latency: str
    """Histogram (seconds): whole-request latency."""
    queue_time: str
    """Histogram (seconds): time a request waited before it was scheduled."""
    success: str
    """Counter: requests the engine finished. vLLM: ``vllm:request_success_total``, one per finished
    request whatever its ``finished_reason`` (stop, length, abort, error, repetition) — the name
    says "success" but errors are counted in it too; TGI: ``tgi_request_success``."""
    failure: str | None
    """Counter of failed requests with a class label, or ``None``. TGI: ``tgi_request_failure{err}``.
    vLLM has none apart from ``success{finished_reason="error"}``."""
    server_fault: str
    """Label matcher that selects the server faults among the failures: vLLM
    ``finished_reason="error"`` on ``success``; TGI ``err=~"generation|incomplete"`` on
    ``failure``. Client behaviour (disconnects, invalid requests) and load shedding are not
    server faults (docs/engines.md, "What counts as an error")."""
    invalid_excluded: str
    """Label matcher on ``failure`` that leaves out invalid requests (TGI ``validation`` and
    ``template``, HTTP 422), which are not counted as requests on any engine: vLLM answers them
    with 4xx before its engine, and its request count leaves 4xx out."""
    overload: str | None
    """Label matcher for requests shed for load, a separate signal from errors: on ``failure`` for
    TGI (``err="overloaded"``, HTTP 429), on ``http_requests`` for SGLang (``status_code="503"``:
    a full queue, a timeout, a retraction under memory pressure); ``None`` when the engine cannot
    tell them apart (vLLM answers a full queue with 503, which its HTTP metrics group with every
    other 5xx)."""
    http_requests: str | None
    """Counter of the API server's HTTP responses (vLLM: the instrumentator's
    ``http_requests_total{handler,method,status}``, status grouped ``2xx``/``5xx``), used to see
    failures that never reach the engine; ``None`` for engines whose counters already see them."""
    generation_routes: tuple[str, ...]
    """The API routes that run a generation on the engine (``http_requests`` ``handler`` values)."""
    prompt_tokens_total: str | None
    """Counter: prompt tokens processed. TGI has none (use ``prompt_tokens`` ``_sum``)."""
    generation_tokens_total: str | None
    """Counter: tokens generated. TGI has none (use ``generation_tokens`` ``_sum``)."""
    prompt_tokens: str
    """Histogram: prompt length per request, in tokens."""
    generation_tokens: str
    """Histogram: generated length per request, in tokens."""
    http_route_label: str = "handler"
    """The label of ``http_requests`` that holds the route (vLLM ``handler``, SGLang ``endpoint``)."""
    http_answered: str = 'status=~"[25]xx"'
    """Matcher for the responses that answered a generation request (2xx and 5xx; 4xx are invalid)."""
    http_failed: str = 'status="5xx"'
    """Matcher for the server-failure responses (vLLM groups the status as ``5xx``; SGLang keeps
    the code, ``status_code="500"``)."""
    errors_from_http: bool = False
    """SGLang: errors are read from the HTTP status alone (``server_fault`` on ``http_requests``),
    because its engine counters carry no finish reason or failure class."""

    def series(self) -> frozenset[str]:
        """Every series name slogate selects for this engine (histograms by their base name). Pure.

        Consumed by the contract tests, which require each to be a family of the engine's fixture.
        """
        names = {
            self.queue_depth,
            self.running_requests,
            self.kv_cache_usage,
            self.ttft,
            self.inter_token_latency,
            self.e2e_latency,
            self.queue_time,
            self.success,
            self.failure,
            self.http_requests,
            self.prompt_tokens_total,
            self.generation_tokens_total,
            self.prompt_tokens,
            self.generation_tokens,
            *(name for name, _ in self.ttft_approximation),
        }
        return frozenset(n for n in names if n is not None)


VLLM = EngineMetrics(
    kind=EngineKind.VLLM,
    queue_depth="vllm:num_requests_waiting",
    running_requests="vllm:num_requests_running",
    kv_cache_usage="vllm:kv_cache_usage_perc",
    ttft="vllm:time_to_first_token_seconds",
    ttft_approximation=(),
    inter_token_latency="vllm:inter_token_latency_seconds",
    e2e_latency="vllm:e2e_request_latency_seconds",
    queue_time="vllm:request_queue_time_seconds",
    success="vllm:request_success_total",
    failure=None,
    server_fault='finished_reason="error"',
    invalid_excluded="",
    overload=None,
    http_requests="http_requests_total",
    generation_routes=VLLM_GENERATION_ROUTES,
    prompt_tokens_total="vllm:prompt_tokens_total",
    generation_tokens_total="vllm:generation_tokens_total",
    prompt_tokens="vllm:request_prompt_tokens",
    generation_tokens="vllm:request_generation_tokens",
)
"""vLLM V1 engine metrics plus its API server's HTTP metrics."""

TGI = EngineMetrics(
    kind=EngineKind.TGI,
    queue_depth="tgi_queue_size",
    running_requests="tgi_batch_current_size",
    kv_cache_usage=None,
    ttft=None,
    ttft_approximation=(
        ("tgi_request_queue_duration", ""),
        ("tgi_batch_inference_duration", 'method="prefill"'),
    ),
    inter_token_latency="tgi_request_mean_time_per_token_duration",
    e2e_latency="tgi_request_duration",
    queue_time="tgi_request_queue_duration",
    success="tgi_request_success",
    failure="tgi_request_failure",
    server_fault='err=~"generation|incomplete"',
    invalid_excluded='err!~"validation|template"',
    overload='err="overloaded"',
    http_requests=None,
    generation_routes=(),
    prompt_tokens_total=None,
    generation_tokens_total=None,
    prompt_tokens="tgi_request_input_length",
    generation_tokens="tgi_request_generated_tokens",
)
"""Text Generation Inference router metrics."""

# SGLang 0.5.23's default bucket tables (sglang/srt/observability/metrics_collector.py:L1965-L2038);
# --bucket-time-to-first-token / --bucket-e2e-request-latency / --bucket-inter-token-latency replace
# them, which engine_flags rejects where a latency objective's alert rules read them.
SGLANG_TTFT_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0,
)  # fmt: skip
SGLANG_E2E_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0,
    600.0, 1200.0, 1800.0, 2400.0,
)  # fmt: skip
SGLANG_ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4,
    0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0,
)  # fmt: skip

SGLANG_GENERATION_ROUTES = (
    "/v1/chat/completions",  # sglang/srt/entrypoints/http_server.py:L1870-L1879 @ 0.5.23
    "/v1/completions",  # http_server.py:L1860-L1867
    "/generate",  # http_server.py:L928-L940 (POST and PUT)
    "/v1/responses",  # http_server.py:L2066-L2082
    "/v1/messages",  # http_server.py:L2160-L2167
)
"""The routes of SGLang 0.5.23's HTTP server that run a generation (``endpoint`` label values:
the route's path, ``observability/http_request_metrics.py:_get_fastapi_request_path``)."""

SGLANG = EngineMetrics(
    kind=EngineKind.SGLANG,
    queue_depth="sglang:num_queue_reqs",
    running_requests="sglang:num_running_reqs",
    kv_cache_usage="sglang:token_usage",
    ttft="sglang:time_to_first_token_seconds",
    ttft_approximation=(),
    inter_token_latency="sglang:inter_token_latency_seconds",
    e2e_latency="sglang:e2e_request_latency_seconds",
    queue_time="sglang:queue_time_seconds",
    success="sglang:num_requests_total",
    failure=None,
    server_fault='status_code=~"5..",status_code!="503"',
    invalid_excluded="",
    overload='status_code="503"',
    http_requests="sglang:http_responses_total",
    generation_routes=SGLANG_GENERATION_ROUTES,
    http_route_label="endpoint",
    http_answered='status_code=~"[25].."',
    http_failed='status_code=~"5.."',
    errors_from_http=True,
    prompt_tokens_total="sglang:prompt_tokens_total",
    generation_tokens_total="sglang:generation_tokens_total",
    prompt_tokens="sglang:prompt_tokens_histogram",
    generation_tokens="sglang:generation_tokens_histogram",
)
"""SGLang 0.5.23 metrics (``--enable-metrics``; ``sglang/srt/observability/metrics_collector.py``,
``http_request_metrics.py``); tests/fixtures/engines/sglang-0.5.23.json has every family with its
source line. ``num_requests_total`` counts every request the scheduler finished (stop, length or
abort; no reason label). Scheduler gauges are recorded by TP rank 0 only (``managers/scheduler.py``
~820-835), so summing over pods counts each replica once."""

_BY_KIND = {EngineKind.VLLM: VLLM, EngineKind.TGI: TGI, EngineKind.SGLANG: SGLANG}

ENGINES: tuple[EngineMetrics, ...] = tuple(_BY_KIND.values())
"""Every engine's profile, in ``EngineKind`` order (consumers that sum over engines iterate it)."""


def generated_tokens_series(m: EngineMetrics) -> str:
    """The series counting generated tokens: the counter, else the ``_sum`` of the per-request
    histogram (TGI has no token counter). Pure; consumed by ``core.cost``.

    >>> generated_tokens_series(VLLM), generated_tokens_series(TGI)
    ('vllm:generation_tokens_total', 'tgi_request_generated_tokens_sum')
    """
    return m.generation_tokens_total or f"{m.generation_tokens}_sum"


def metrics_for(kind: EngineKind) -> EngineMetrics:
    """The metric names of one engine. Pure; consumed by ``core.desired`` and SLO analysis."""
    return _BY_KIND[EngineKind(kind)]


def autoscaling_series(kind: EngineKind, metric: AutoscalingMetric) -> str | None:
    """The gauge behind an ``autoscaling.metric``, or ``None`` when the engine lacks it. Pure.

    Consumed by ``core.desired`` for the KEDA query and the HPA's custom metric name.

    >>> autoscaling_series(EngineKind.TGI, AutoscalingMetric.QUEUE_DEPTH)
    'tgi_queue_size'
    >>> autoscaling_series(EngineKind.TGI, AutoscalingMetric.KV_CACHE_USAGE) is None
    True
    """
    m = metrics_for(kind)
    return {
        AutoscalingMetric.QUEUE_DEPTH: m.queue_depth,
        AutoscalingMetric.RUNNING_REQUESTS: m.running_requests,
        AutoscalingMetric.KV_CACHE_USAGE: m.kv_cache_usage,
    }[AutoscalingMetric(metric)]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def selector(namespace: str, name: str | None = None, revision: str | None = None) -> str:
    """A PromQL label selector for one ModelDeployment's pods, optionally one revision; without a
    name, for every ModelDeployment of the namespace. Pure.

    Consumed by ``core.desired`` (KEDA query) and SLO analysis; append it to a series name.

    >>> selector("ml", "llama", "abc12345")
    '{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}'
    >>> selector("ml", "llama")
    '{namespace="ml",slogate_io_deployment="llama"}'
    >>> selector("ml")
    '{namespace="ml"}'
    """
    pairs = [("namespace", namespace)]
    if name is not None:
        pairs.append((PROM_LABEL_DEPLOYMENT, name))
    if revision is not None:
        pairs.append((PROM_LABEL_REVISION, revision))
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


# Histogram buckets as vLLM exports them (vllm/v1/metrics/loggers.py); the simulator exports these very
# tables and the generated alerts round thresholds to them.
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)  # fmt: skip
VLLM_REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


# ------------------------------------------------------------------- requests, errors and overload
#
# One meaning of "error" for every engine: a request the server accepted and failed through its
# own fault. Client behaviour (a disconnect, an invalid request: 4xx) is not an error and neither
# is load shedding with 429 (a capacity signal, shown apart as ``overload``). Every consumer —
# rollout analysis, the burn-rate rules, the dashboard — builds its PromQL with the functions
# below, so the three cannot disagree. Sources and the reasoning: docs/engines.md.


def with_matchers(sel: str, *extra: str) -> str:
    """Add label matchers to a ``{...}`` selector (``sel`` may be ``""``; empty matchers are left
    out). Pure; the one helper analysis, rules, the dashboard and the expressions below use.

    >>> with_matchers('{a="1"}', 'b="2"', ""), with_matchers("", 'b="2"'), with_matchers('{a="1"}')
    ('{a="1",b="2"}', '{b="2"}', '{a="1"}')
    """
    extra_text = ",".join(m for m in extra if m)
    if not sel:
        return "{" + extra_text + "}" if extra_text else ""
    return sel if not extra_text else f"{sel[:-1]},{extra_text}}}"


def _agg(by: Sequence[str]) -> str:
    return f"sum by ({', '.join(by)}) " if by else "sum "


def _sum(series: str, sel: str, fn: str, window: str, by: Sequence[str]) -> str:
    return f"{_agg(by)}({fn}({series}{sel}[{window}]))"


def _routes_matcher(m: EngineMetrics) -> str:
    return f'{m.http_route_label}=~"' + "|".join(re.escape(r) for r in m.generation_routes) + '"'


def _zero_like(expr: str, by: Sequence[str]) -> str:
    """``0`` with the labels of ``expr``'s result: ``vector(0)`` only works without grouping."""
    return "vector(0)" if not by else f"0 * {expr}"


def _pre_engine(m: EngineMetrics, sel: str, fn: str, window: str, by: Sequence[str]) -> str:
    """Requests that failed before the engine finished them (a 5xx that is not an engine error).

    Written for vLLM and used for SGLang too, whose HTTP middleware
    (``observability/http_request_metrics.py`` @ 0.5.23) counts each response by its exact status
    and whose ``num_requests_total`` counts what the scheduler finished.

    The engine counts every request it finishes in ``success`` (any ``finished_reason``); the API
    server's instrumentator counts every response of a generation route by its status class, at
    the end of the response (prometheus-fastapi-instrumentator 8.1.0 ``middleware.py``). A request
    that never reached the engine (queue full → 503, engine dead, a crash in the server) is in the
    HTTP ``5xx`` but not in ``success``; an engine error on a *non-streamed* request is in both
    (HTTP 500 and ``finished_reason="error"``), on a *streamed* one only in ``success`` (HTTP 200
    was sent first). The status class alone cannot tell a pre-engine 5xx from an engine one, so
    the pre-engine part is estimated as the HTTP responses (2xx + 5xx) the engine did not finish,
    bounded to ``[0, HTTP 5xx]``; 4xx never reach the engine and are left out of both sides. With
    only some routes in ``generation_routes`` the estimate errs low (never double-counts).
    """
    routes = _routes_matcher(m)
    http = m.http_requests
    assert http is not None
    finished = _sum(m.success, sel, fn, window, by)
    answered = _sum(http, with_matchers(sel, routes, m.http_answered), fn, window, by)
    failed = _sum(http, with_matchers(sel, routes, m.http_failed), fn, window, by)
    unfinished = f"clamp_min({answered} - {finished}, 0)"
    return f"(({unfinished} < {failed}) or {failed} or {_zero_like(finished, by)})"


def requests_expr(
    m: EngineMetrics, sel: str, *, window: str, fn: str = "rate", by: Sequence[str] = ()
) -> str:
    """PromQL for all requests of ``sel`` over ``window`` (``fn``: ``rate`` per second or
    ``increase`` as a count), summed ``by`` the given labels. Pure.

    vLLM: every request the engine finished (``vllm:request_success_total``, all reasons; the
    same requests its e2e histogram observes) plus the ones that failed before it
    (``_pre_engine``); 4xx are not requests. SGLang: ``sglang:num_requests_total`` plus the same
    estimate from its HTTP responses. TGI: ``tgi_request_success`` +
    ``tgi_request_failure`` (every class but the invalid ones, 422), counted once per generation —
    not ``tgi_request_count``, which the OpenAI routes increment once more (router/src/server.rs
    @ v3.3.7: chat ~2 per request, completions 1 + N prompts).
    Consumed by ``core.analysis`` (``minRequests``, the error rate's denominator),
    ``core.rules`` and ``slogate.dashboard``.

    >>> print(requests_expr(TGI, '{namespace="ml"}', window="5m").replace("namespace=", "ns="))
    ((sum (rate(tgi_request_success{ns="ml"}[5m])) or 0 * sum (rate(tgi_request_failure{ns="ml",err!~"validation|template"}[5m]))) + (sum (rate(tgi_request_failure{ns="ml",err!~"validation|template"}[5m])) or 0 * sum (rate(tgi_request_success{ns="ml"}[5m]))))
    """
    finished = _sum(m.success, sel, fn, window, by)
    if m.http_requests is not None:  # vLLM, SGLang
        return f"({finished} + {_pre_engine(m, sel, fn, window, by)})"
    assert m.failure is not None
    failed = _sum(m.failure, with_matchers(sel, m.invalid_excluded), fn, window, by)
    # Both counters appear only once first incremented (the metrics crate registers lazily).
    return f"(({finished} or 0 * {failed}) + ({failed} or 0 * {finished}))"


def errors_expr(m: EngineMetrics, sel: str, *, window: str, fn: str = "rate", by: Sequence[str] = ()) -> str:
    """PromQL for the requests that failed by a server fault (see ``EngineMetrics.server_fault``). Pure.

    vLLM: ``vllm:request_success_total{finished_reason="error"}`` — the only place vLLM counts an
    engine failure of a streamed request (HTTP 200, then an SSE error event) — plus the failures
    before the engine. TGI: ``tgi_request_failure{err=~"generation|incomplete"}``; ``dropped``
    (client gone), ``validation``/``template`` (422) and ``overloaded`` (429) are not errors.
    SGLang: the generation routes' HTTP 5xx but 503 (its load shedding). SGLang counts no failure
    of a *streamed* request anywhere — HTTP 200 was sent and ``num_requests_total`` has no reason
    label — so those are invisible to it (docs/engines.md). Never absent while there are
    requests: 0 until the first failure.
    """
    if m.errors_from_http:  # SGLang
        assert m.http_requests is not None
        failed = _sum(m.http_requests, with_matchers(sel, _routes_matcher(m), m.server_fault), fn, window, by)
        return f"({failed} or {_zero_like(requests_expr(m, sel, window=window, fn=fn, by=by), by)})"
    if m.http_requests is not None:  # vLLM
        engine = _sum(m.success, with_matchers(sel, m.server_fault), fn, window, by)
        return f"({engine} + {_pre_engine(m, sel, fn, window, by)})"
    assert m.failure is not None
    faults = _sum(m.failure, with_matchers(sel, m.server_fault), fn, window, by)
    return f"({faults} or {_zero_like(requests_expr(m, sel, window=window, fn=fn, by=by), by)})"


def error_ratio_expr(m: EngineMetrics, sel: str, *, window: str, by: Sequence[str] = ()) -> str:
    """PromQL for errors / requests over ``window``, 0..1; empty (no data) without requests. Pure."""
    return f"{errors_expr(m, sel, window=window, by=by)} / {requests_expr(m, sel, window=window, by=by)}"


def overload_ratio_expr(m: EngineMetrics, sel: str, *, window: str, by: Sequence[str] = ()) -> str | None:
    """PromQL for the share of requests shed for load (TGI: 429 ``overloaded``), or ``None``. Pure.

    Shown beside the error rate on the dashboard, never counted as an error; vLLM answers a full
    queue with 503, which its HTTP metrics cannot tell from other 5xx, so it counts as an error
    there (``EngineMetrics.overload``).
    """
    if m.overload is None:
        return None
    if m.failure is not None:  # TGI
        shed = _sum(m.failure, with_matchers(sel, m.overload), "rate", window, by)
    else:  # SGLang
        assert m.http_requests is not None
        shed = _sum(m.http_requests, with_matchers(sel, _routes_matcher(m), m.overload), "rate", window, by)
    total = requests_expr(m, sel, window=window, by=by)
    return f"({shed} or {_zero_like(total, by)}) / {total}"
