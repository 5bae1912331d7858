"""Prometheus metrics of the simulator, named, typed, labelled and bucketed like the real engines.

Owns the metric families of each mode (``VllmMetrics``, ``TgiMetrics``), the cheap in-process
storage behind them (histograms accept weighted observations, so synthetic traffic costs one
bucket lookup per group rather than per token) and the text exposition. Each instance has its own
``prometheus_client.CollectorRegistry``: many simulators share a process and never touch the
global default registry. The metric names and buckets are copied from the engines' sources; see
docs/simulator.md for the versions they were checked against.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from slogate.core.engine_metrics import VLLM_ITL_BUCKETS, VLLM_REQUEST_LATENCY_BUCKETS, VLLM_TTFT_BUCKETS
from slogate.sim.sampling import RequestSample

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# --- vLLM (vllm/v1/metrics/loggers.py, PrometheusStatLogger) -------------------------------------
VLLM_MAX_MODEL_LEN = 4096
VLLM_FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
# Bucket tables: VLLM_TTFT_BUCKETS, VLLM_ITL_BUCKETS, VLLM_REQUEST_LATENCY_BUCKETS (slogate.core.engine_metrics,
# shared with the generated alerts).

# --- prometheus-fastapi-instrumentator defaults (metrics.default), mounted by vLLM's API server ----
HTTP_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
HTTP_LOWR_BUCKETS = (0.1, 0.5, 1.0)

# --- TGI (router/src/server.rs: PrometheusBuilder bucket matchers) ---------------------------------
TGI_MAX_INPUT_TOKENS = 4095
TGI_MAX_TOTAL_TOKENS = 4096


def build_1_2_5_buckets(max_value: int) -> list[float]:
    """vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to ``max_value``."""
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return buckets
            buckets.append(float(value))
        exponent += 1


def tgi_duration_buckets() -> list[float]:
    """TGI's buckets for every metric ending in ``duration``: 0.0001 * 1.5^k, k = 1..35."""
    buckets = []
    value = 0.0001
    for _ in range(35):
        value *= 1.5
        buckets.append(value)
    return buckets


def tgi_linear_buckets(max_value: int) -> list[float]:
    """TGI's token-count buckets: 100 equal steps up to ``max_value``."""
    return [(max_value / 100.0) * (x + 1) for x in range(100)]


# --- storage ----------------------------------------------------------------------------------------


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class _Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # last slot is +Inf
        self.sum = 0.0

    def observe(self, value: float, weight: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += weight
        self.sum += value * weight

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append((floatToGoString(bound), float(running)))
        return out


class Family:
    """One metric family: name, type, label names and a child per label-value tuple."""

    def __init__(
        self,
        name: str,
        documentation: str,
        kind: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> None:
        if kind not in ("counter", "gauge", "histogram"):
            raise ValueError(f"unsupported metric type {kind}")
        if kind == "histogram" and not buckets:
            raise ValueError(f"histogram {name} needs buckets")
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.labelnames = tuple(labelnames)
        self.buckets = tuple(buckets or ())
        self.children: dict[tuple[str, ...], _Value | _Histogram] = {}

    def _child(self, labelvalues: tuple[str, ...]) -> _Value | _Histogram:
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labelvalues}")
        child = self.children.get(labelvalues)
        if child is None:
            child = _Histogram(self.buckets) if self.kind == "histogram" else _Value()
            self.children[labelvalues] = child
        return child

    def touch(self, *labelvalues: str) -> None:
        """Create the child so it is exported (at zero) before the first event, as engines do."""
        self._child(labelvalues)

    def inc(self, *labelvalues: str, amount: float = 1.0) -> None:
        child = self._child(labelvalues)
        assert isinstance(child, _Value) and self.kind == "counter"
        child.value += amount

    def set(self, *labelvalues: str, value: float) -> None:
        child = self._child(labelvalues)
        assert isinstance(child, _Value) and self.kind == "gauge"
        child.value = value

    def observe(self, *labelvalues: str, value: float, weight: int = 1) -> None:
        child = self._child(labelvalues)
        assert isinstance(child, _Histogram)
        child.observe(value, weight)


class _FamiliesCollector(Collector):
    """Yields the families to a registry; ``bare_counters`` keeps counter names without ``_total``."""

    def __init__(self, families: Iterable[Family], *, bare_counters: bool) -> None:
        self._families = list(families)
        self._bare_counters = bare_counters

    def collect(self) -> Iterator[Metric]:
        for fam in self._families:
            labelnames = list(fam.labelnames)
            if fam.kind == "counter" and self._bare_counters:
                metric = Metric(fam.name, fam.documentation, "counter")
                for values, child in fam.children.items():
                    assert isinstance(child, _Value)
                    metric.add_sample(fam.name, dict(zip(labelnames, values, strict=True)), child.value)
                yield metric
            elif fam.kind == "counter":
                counter = CounterMetricFamily(fam.name, fam.documentation, labels=labelnames)
                for values, child in fam.children.items():
                    assert isinstance(child, _Value)
                    counter.add_metric(list(values), child.value)
                yield counter
            elif fam.kind == "gauge":
                gauge = GaugeMetricFamily(fam.name, fam.documentation, labels=labelnames)
                for values, child in fam.children.items():
                    assert isinstance(child, _Value)
                    gauge.add_metric(list(values), child.value)
                yield gauge
            else:
                hist = HistogramMetricFamily(fam.name, fam.documentation, labels=labelnames)
                for values, child in fam.children.items():
                    assert isinstance(child, _Histogram)
                    hist.add_metric(list(values), child.cumulative(), child.sum)
                yield hist


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_bare(registry: CollectorRegistry) -> bytes:
    """Text exposition the way Rust's metrics-exporter-prometheus writes it (used for TGI).

    ``generate_latest`` renames every counter's ``# TYPE`` line to ``<name>_total``; TGI's
    counters (``tgi_request_count``, ...) have no such suffix, so this renderer writes each
    family's name and samples exactly as collected.
    """
    lines: list[str] = []
    for metric in registry.collect():
        if not metric.samples:
            continue  # the Rust exporter only shows a family once it has a series
        lines.append(f"# TYPE {metric.name} {metric.type}\n")
        for sample in metric.samples:
            if sample.labels:
                labels = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sample.labels.items())
                lines.append(f"{sample.name}{{{labels}}} {floatToGoString(sample.value)}\n")
            else:
                lines.append(f"{sample.name} {floatToGoString(sample.value)}\n")
        lines.append("\n")
    return "".join(lines).encode("utf-8")


# --- engines ------------------------------------------------------------------------------------------


class EngineMetrics:
    """Common surface of the per-mode metric sets."""

    mode = ""

    def __init__(self, families: Sequence[Family], *, bare_counters: bool) -> None:
        self.families = {f.name: f for f in families}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_FamiliesCollector(families, bare_counters=bare_counters))

    def record(self, sample: RequestSample) -> None:
        """Account one finished request (successful or failed) in the engine's own metrics."""
        raise NotImplementedError

    def record_http(self, handler: str, method: str, status: int, duration_s: float) -> None:
        """Account one HTTP exchange; only engines with HTTP-level metrics do anything."""

    def set_load(self, *, running: int, waiting: int, kv_cache_usage: float) -> None:
        raise NotImplementedError

    def render(self) -> bytes:
        return generate_latest(self.registry)


class VllmMetrics(EngineMetrics):
    """vLLM V1 engine metrics plus the HTTP metrics of its API server's instrumentator."""

    mode = "vllm"
    HTTP_EXCLUDED = frozenset({"/metrics", "/health", "/health/decode", "/load", "/ping", "/version"})

    def __init__(self, model_name: str, *, engine: str = "0") -> None:
        base = ("model_name", "engine")
        token_buckets = build_1_2_5_buckets(VLLM_MAX_MODEL_LEN)
        f = Family
        self.running = f(
            "vllm:num_requests_running", "Number of requests in model execution batches.", "gauge", base
        )
        self.waiting = f(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", "gauge", base
        )
        self.kv_cache = f(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", "gauge", base
        )
        self.gpu_cache = f(
            "vllm:gpu_cache_usage_perc",
            "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
            "gauge",
            base,
        )
        self.preemptions = f(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", "counter", base
        )
        self.prompt_tokens = f("vllm:prompt_tokens", "Number of prefill tokens processed.", "counter", base)
        self.generation_tokens = f(
            "vllm:generation_tokens", "Number of generation tokens processed.", "counter", base
        )
        self.success = f(
            "vllm:request_success",
            "Count of successfully processed requests.",
            "counter",
            (*base, "finished_reason"),
        )
        self.req_prompt = f(
            "vllm:request_prompt_tokens",
            "Number of prefill tokens processed.",
            "histogram",
            base,
            token_buckets,
        )
        self.req_generation = f(
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            "histogram",
            base,
            token_buckets,
        )
        self.ttft = f(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            "histogram",
            base,
            VLLM_TTFT_BUCKETS,
        )
        self.itl = f(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            "histogram",
            base,
            VLLM_ITL_BUCKETS,
        )
        self.tpot = f(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds."
            "DEPRECATED: Use vllm:inter_token_latency_seconds instead.",
            "histogram",
            base,
            VLLM_ITL_BUCKETS,
        )
        self.req_tpot = f(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            "histogram",
            base,
            VLLM_ITL_BUCKETS,
        )
        lat = VLLM_REQUEST_LATENCY_BUCKETS
        self.e2e = f(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            "histogram",
            base,
            lat,
        )
        self.queue = f(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            "histogram",
            base,
            lat,
        )
        self.inference = f(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            "histogram",
            base,
            lat,
        )
        self.prefill = f(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            "histogram",
            base,
            lat,
        )
        self.decode = f(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            "histogram",
            base,
            lat,
        )
        self.http_total = f(
            "http_requests",
            "Total number of requests by method, status and handler.",
            "counter",
            ("method", "status", "handler"),
        )
        self.http_highr = f(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. "
            "Made for more accurate percentile calculations. ",
            "histogram",
            (),
            HTTP_HIGHR_BUCKETS,
        )
        self.http_lowr = f(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. "
            "Made to be only used if aggregation by handler is important. ",
            "histogram",
            ("method", "handler"),
            HTTP_LOWR_BUCKETS,
        )
        families = [v for v in vars(self).values() if isinstance(v, Family)]
        super().__init__(families, bare_counters=False)
        self.labels = (model_name, engine)
        # Like vLLM, every per-engine series exists from start-up, at zero.
        for fam in families:
            if fam.labelnames == base:
                fam.touch(*self.labels)
        for reason in VLLM_FINISH_REASONS:
            self.success.touch(*self.labels, reason)
        self.http_highr.touch()

    def record(self, sample: RequestSample) -> None:
        if not sample.ok:
            # The API server failed the request before the engine finished it: only the HTTP
            # metrics (http_requests_total{status="5xx"}) see it, as with a real vLLM.
            return
        lv = self.labels
        self.prompt_tokens.inc(*lv, amount=sample.prompt_tokens)
        self.generation_tokens.inc(*lv, amount=sample.generation_tokens)
        self.success.inc(*lv, sample.finish_reason)
        self.ttft.observe(*lv, value=sample.ttft_s)
        for value, weight in sample.itls:
            self.itl.observe(*lv, value=value, weight=weight)
            self.tpot.observe(*lv, value=value, weight=weight)
        if sample.itls:
            self.req_tpot.observe(*lv, value=sample.mean_itl_s)
        self.e2e.observe(*lv, value=sample.e2e_s)
        self.queue.observe(*lv, value=sample.queue_s)
        self.inference.observe(*lv, value=sample.inference_s)
        self.prefill.observe(*lv, value=sample.prefill_s)
        self.decode.observe(*lv, value=sample.decode_s)
        self.req_prompt.observe(*lv, value=sample.prompt_tokens)
        self.req_generation.observe(*lv, value=sample.generation_tokens)

    def record_http(self, handler: str, method: str, status: int, duration_s: float) -> None:
        if handler in self.HTTP_EXCLUDED:
            return
        self.http_total.inc(method, f"{status // 100}xx", handler)
        self.http_highr.observe(value=duration_s)
        self.http_lowr.observe(method, handler, value=duration_s)

    def set_load(self, *, running: int, waiting: int, kv_cache_usage: float) -> None:
        lv = self.labels
        self.running.set(*lv, value=running)
        self.waiting.set(*lv, value=waiting)
        self.kv_cache.set(*lv, value=kv_cache_usage)
        self.gpu_cache.set(*lv, value=kv_cache_usage)


class TgiMetrics(EngineMetrics):
    """Text Generation Inference router metrics (unlabelled, counters without ``_total``)."""

    mode = "tgi"
    # Share of the queue phase TGI attributes to request validation (tokenization), capped.
    VALIDATION_S = 0.001

    def __init__(self) -> None:
        f = Family
        dur = tgi_duration_buckets()
        self.count = f("tgi_request_count", "Total number of requests", "counter")
        self.success = f("tgi_request_success", "Number of successful requests", "counter")
        self.failure = f("tgi_request_failure", "Number of failed requests", "counter", ("err",))
        self.duration = f(
            "tgi_request_duration",
            "Total time spent processing the request (e2e latency)",
            "histogram",
            (),
            dur,
        )
        self.validation = f(
            "tgi_request_validation_duration", "Time spent validating the request", "histogram", (), dur
        )
        self.queue = f(
            "tgi_request_queue_duration", "Time spent in the queue per request", "histogram", (), dur
        )
        self.inference = f(
            "tgi_request_inference_duration", "Request inference duration", "histogram", (), dur
        )
        self.tpot = f(
            "tgi_request_mean_time_per_token_duration",
            "Mean time per token per request (inter-token latency)",
            "histogram",
            (),
            dur,
        )
        self.batch_inference = f(
            "tgi_batch_inference_duration", "Batch inference duration", "histogram", ("method",), dur
        )
        self.input_length = f(
            "tgi_request_input_length",
            "Input token length per request",
            "histogram",
            (),
            tgi_linear_buckets(TGI_MAX_INPUT_TOKENS),
        )
        self.generated = f(
            "tgi_request_generated_tokens",
            "Generated tokens per request",
            "histogram",
            (),
            tgi_linear_buckets(TGI_MAX_TOTAL_TOKENS),
        )
        self.queue_size = f("tgi_queue_size", "Current queue size", "gauge")
        self.batch_size = f("tgi_batch_current_size", "Current batch size", "gauge")
        families = [v for v in vars(self).values() if isinstance(v, Family)]
        super().__init__(families, bare_counters=True)
        for fam in families:
            if not fam.labelnames:
                fam.touch()

    def record(self, sample: RequestSample) -> None:
        self.count.inc()
        if not sample.ok:
            self.failure.inc("generation")
            return
        validation = min(self.VALIDATION_S, sample.queue_s / 2.0)
        self.success.inc()
        self.duration.observe(value=sample.e2e_s)
        self.validation.observe(value=validation)
        self.queue.observe(value=sample.queue_s - validation)
        self.inference.observe(value=sample.inference_s)
        self.tpot.observe(value=sample.inference_s / max(sample.generation_tokens, 1))
        self.batch_inference.observe("prefill", value=sample.prefill_s)
        for value, weight in sample.itls:
            self.batch_inference.observe("decode", value=value, weight=weight)
        self.input_length.observe(value=sample.prompt_tokens)
        self.generated.observe(value=sample.generation_tokens)

    def set_load(self, *, running: int, waiting: int, kv_cache_usage: float) -> None:
        del kv_cache_usage  # TGI exports no KV-cache gauge
        self.queue_size.set(value=waiting)
        self.batch_size.set(value=running)

    def render(self) -> bytes:
        return render_bare(self.registry)


def build_metrics(mode: str, model_name: str) -> EngineMetrics:
    """The metric set for ``mode`` ("vllm" or "tgi")."""
    if mode == "vllm":
        return VllmMetrics(model_name)
    if mode == "tgi":
        return TgiMetrics()
    raise ValueError(f"unknown mode {mode!r}")
