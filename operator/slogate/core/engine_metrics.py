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
    """Counter: requests that finished successfully."""
    failure: str | None
    """Counter: failed requests. vLLM has none: its failures show only in ``http_requests``."""
    requests: str
    """Counter: all requests. vLLM: the API server's ``http_requests_total`` (filter on ``handler``
    and on ``status`` grouped as ``2xx``/``4xx``/``5xx``); TGI: ``tgi_request_count``."""
    prompt_tokens_total: str | None
    """Counter: prompt tokens processed. TGI has none (use ``prompt_tokens`` ``_sum``)."""
    generation_tokens_total: str | None
    """Counter: tokens generated. TGI has none (use ``generation_tokens`` ``_sum``)."""
    prompt_tokens: str
    """Histogram: prompt length per request, in tokens."""
    generation_tokens: str
    """Histogram: generated length per request, in tokens."""


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
    requests="http_requests_total",
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
    requests="tgi_request_count",
    prompt_tokens_total=None,
    generation_tokens_total=None,
    prompt_tokens="tgi_request_input_length",
    generation_tokens="tgi_request_generated_tokens",
)
"""Text Generation Inference router metrics."""

_BY_KIND = {EngineKind.VLLM: VLLM, EngineKind.TGI: TGI}


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


def selector(namespace: str, name: str, revision: str | None = None) -> str:
    """A PromQL label selector for one ModelDeployment's pods, optionally one revision. Pure.

    Consumed by ``core.desired`` (KEDA query) and SLO analysis; append it to a series name.

    >>> selector("ml", "llama", "abc12345")
    '{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}'
    >>> selector("ml", "llama")
    '{namespace="ml",slogate_io_deployment="llama"}'
    """
    pairs = [("namespace", namespace), (PROM_LABEL_DEPLOYMENT, name)]
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
