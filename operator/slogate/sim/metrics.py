"""Prometheus metrics of the simulator, named, typed, labelled and bucketed like the real engines.

Owns the metric families of each mode (``VllmMetrics`` for vLLM 0.33.0, ``TgiMetrics`` for TGI
3.3.7, ``SglangMetrics`` for SGLang 0.5.23), what one request of each ``Outcome`` does to them, the
cheap in-process storage behind them (histograms accept weighted observations, so synthetic traffic
costs one bucket lookup per group rather than per token) and the text exposition. Each instance has its own
``prometheus_client.CollectorRegistry``: many simulators share a process and never touch the global
default registry. The client-facing side of the same outcomes (status codes, error events) lives
in ``slogate.sim.engines``. Every name, type, label set and bucket layout is copied from the
engine's source, cited as path:line @ version; docs/simulator.md lists them.
"""

from __future__ import annotations

import bisect
import decimal
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from slogate.core.engine_metrics import VLLM_ITL_BUCKETS, VLLM_REQUEST_LATENCY_BUCKETS, VLLM_TTFT_BUCKETS
from slogate.sim.engines import MAX_MODEL_LEN, TGI_MAX_INPUT_TOKENS, TGI_MAX_TOTAL_TOKENS
from slogate.sim.sampling import Outcome, RequestSample

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

__all__ = [
    "CONTENT_TYPE",
    "TGI_MAX_INPUT_TOKENS",
    "TGI_MAX_TOTAL_TOKENS",
    "VLLM_ITL_BUCKETS",
    "VLLM_MAX_MODEL_LEN",
    "VLLM_REQUEST_LATENCY_BUCKETS",
    "VLLM_TTFT_BUCKETS",
    "EngineMetrics",
    "Family",
    "SglangMetrics",
    "TgiMetrics",
    "VllmMetrics",
    "build_1_2_5_buckets",
    "build_metrics",
    "render_bare",
    "sglang_token_latencies",
    "tgi_duration_buckets",
    "tgi_linear_buckets",
]

# --- vLLM 0.33.0 (vllm/v1/metrics/loggers.py, PrometheusStatLogger; buckets.py) --------------------
VLLM_MAX_MODEL_LEN = MAX_MODEL_LEN
# FinishReason, in enum order (vllm/v1/engine/__init__.py:37, :49-67).
VLLM_FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
# TTFT/ITL/latency tables: slogate.core.engine_metrics (shared with the generated alerts), equal to
# vllm/v1/metrics/buckets.py:30-104.
VLLM_ITERATION_TOKENS_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
VLLM_REQUEST_PARAMS_N_BUCKETS = (1, 2, 5, 10, 20)  # buckets.py:125
VLLM_REQUEST_NUM_PREEMPTIONS_BUCKETS = (1, 2, 3, 4, 5, 10, 20)  # buckets.py:128
VLLM_WAITING_REASONS = ("capacity", "deferred")  # loggers.py:42-44
VLLM_SLEEP_STATES = ("awake", "weights_offloaded", "discard_all")  # loggers.py:606
VLLM_PROMPT_SOURCES = ("local_compute", "local_cache_hit", "external_kv_transfer")  # stats.py:441-445
VLLM_CACHE_HIT_SOURCES = ("device", "host", "p2p", "disk", "external_unspecified")  # cache_hit_source.py
VLLM_ADMISSION_REASONS = ("max_num_queued_reqs", "max_num_queued_tokens")  # loggers.py:47

# --- prometheus-fastapi-instrumentator 8.1.0 (metrics.default), mounted by vLLM's API server --------
HTTP_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
HTTP_LOWR_BUCKETS = (0.1, 0.5, 1.0)
# vllm/entrypoints/serve/instrumentator/metrics.py:64-74; the instrumentator matches them with
# ``re.search`` (middleware.py:263), i.e. as substrings of the handler.
VLLM_HTTP_EXCLUDED = ("/metrics", "/health", "/load", "/ping", "/version", "/server_info")

# --- TGI 3.3.7 (router/src/server.rs:1937-1988: PrometheusBuilder bucket matchers) -----------------
# Not exported, as in TGI: tgi_batch_max_total_tokens is set during the warm-up
# (backends/v3/src/lib.rs:138), before the router installs the Prometheus recorder
# (router/src/server.rs:1993), so it goes to the no-op recorder; tgi_batch_total_tokens is only
# described (server.rs:2053-2057), never recorded.
# metrics-exporter-prometheus renders a histogram without configured buckets as a summary with these
# quantiles (PrometheusBuilder::new); in TGI that is only tgi_request_skipped_tokens.
RUST_SUMMARY_QUANTILES = (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)
# Shares of one batch step's tgi_batch_inference_duration spent in the shard's forward pass, its
# detokenisation and the router's filtering: an assumption (TGI reports them separately).
TGI_FORWARD_SHARE, TGI_DECODE_SHARE, TGI_FILTER_SHARE = 0.9, 0.05, 0.01


# --- SGLang 0.5.23 (sglang/srt/observability/metrics_collector.py @ 0.5.23, default tables) ----------
# TokenizerMetricsCollector: TTFT :1965-1985, e2e :1987-2011, ITL (also TPOT) :2013-2038, prompt
# tokens (also uncached prompt and generation tokens) :1871-1907; SchedulerMetricsCollector: queue
# time :841-882 (fixed, with a 0 bound).
SGLANG_TTFT_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0,
)  # fmt: skip
SGLANG_E2E_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 200.0, 400.0,
    600.0, 1200.0, 1800.0, 2400.0,
)  # fmt: skip
SGLANG_ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100,
    0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0,
)  # fmt: skip
SGLANG_TOKENS_BUCKETS = (
    100, 300, 500, 700, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 12500,
    15000, 17500, 20000, 22500, 25000, 27500, 30000, 35000, 40000, 60000, 80000, 100000, 200000,
    300000, 400000, 600000, 800000, 1000000, 1100000,
)  # fmt: skip
SGLANG_QUEUE_TIME_BUCKETS = (
    0.0, 0.001, 0.005, 0.010, 0.050, 0.100, 0.200, 0.500, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60,
    70, 80, 90, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000, 2500,
    3000,
)  # fmt: skip
# A non-streamed request's outputs leave the scheduler every SGLANG_FORCE_STREAM_INTERVAL (50)
# tokens and at its end (managers/scheduler_components/output_streamer.py:49, :475-477;
# environ.py:688); a streamed one's every token (--stream-interval 1, arg_groups/fields/serving.py:262-265).
SGLANG_FORCE_STREAM_INTERVAL = 50
# DisaggregationMode.NULL's engine_type (observability/metrics_collector.py:1804-1819, :1376-1381).
SGLANG_ENGINE_TYPE = "unified"


def build_1_2_5_buckets(max_value: int) -> list[float]:
    """vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to ``max_value`` (buckets.py:172-203)."""
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


class _Summary:
    """Count and sum, plus the range of values: quantiles are exact only while every value is equal
    (the simulator only ever observes constants into summaries)."""

    __slots__ = ("count", "max", "min", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def observe(self, value: float, weight: int = 1) -> None:
        self.count += weight
        self.sum += value * weight
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def quantile(self, q: float) -> float:
        if not self.count:
            return 0.0
        return self.min if q < 1.0 else self.max


_Child = _Value | _Histogram | _Summary


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
        if kind not in ("counter", "gauge", "histogram", "summary"):
            raise ValueError(f"unsupported metric type {kind}")
        if kind == "histogram" and not buckets:
            raise ValueError(f"histogram {name} needs buckets")
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.labelnames = tuple(labelnames)
        self.buckets = tuple(float(b) for b in buckets or ())
        self.children: dict[tuple[str, ...], _Child] = {}

    def _child(self, labelvalues: tuple[str, ...]) -> _Child:
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labelvalues}")
        child = self.children.get(labelvalues)
        if child is None:
            if self.kind == "histogram":
                child = _Histogram(self.buckets)
            elif self.kind == "summary":
                child = _Summary()
            else:
                child = _Value()
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
        if weight <= 0:
            return
        child = self._child(labelvalues)
        assert isinstance(child, _Histogram | _Summary)
        child.observe(value, weight)

    def value(self, *labelvalues: str) -> float:
        """A counter's or gauge's current value (0 when the child does not exist). For tests."""
        child = self.children.get(labelvalues)
        return child.value if isinstance(child, _Value) else 0.0


class _FamiliesCollector(Collector):
    """Yields the families to a registry.

    ``bare_counters`` keeps counter names without ``_total`` and gives summaries their quantiles
    (Rust's metrics-exporter-prometheus); otherwise counters and summaries look like
    prometheus_client's (``_total``; summaries with ``_count`` and ``_sum`` only). ``skip_empty``
    leaves out families without a series, as prometheus_client's ``MultiProcessCollector`` does
    (it only sees values written to its files).
    """

    def __init__(self, families: Iterable[Family], *, bare_counters: bool, skip_empty: bool = False) -> None:
        self._families = list(families)
        self._bare_counters = bare_counters
        self._skip_empty = skip_empty

    def collect(self) -> Iterator[Metric]:
        for fam in self._families:
            if self._skip_empty and not fam.children:
                continue
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
            elif fam.kind == "summary" and self._bare_counters:
                metric = Metric(fam.name, fam.documentation, "summary")
                for values, child in fam.children.items():
                    assert isinstance(child, _Summary)
                    labels = dict(zip(labelnames, values, strict=True))
                    for q in RUST_SUMMARY_QUANTILES:
                        metric.add_sample(fam.name, {**labels, "quantile": f"{q:g}"}, child.quantile(q))
                    metric.add_sample(fam.name + "_sum", labels, child.sum)
                    metric.add_sample(fam.name + "_count", labels, float(child.count))
                yield metric
            elif fam.kind == "summary":
                summary = SummaryMetricFamily(fam.name, fam.documentation, labels=labelnames)
                for values, child in fam.children.items():
                    assert isinstance(child, _Summary)
                    summary.add_metric(list(values), child.count, child.sum)
                yield summary
            else:
                hist = HistogramMetricFamily(fam.name, fam.documentation, labels=labelnames)
                for values, child in fam.children.items():
                    assert isinstance(child, _Histogram)
                    hist.add_metric(list(values), child.cumulative(), child.sum)
                yield hist


def rust_f64(value: float) -> str:
    """``value`` as Rust's ``f64`` ``Display`` writes it: the shortest round-trip digits, never an
    exponent, no ``.0`` on integral values (``1024``, ``0.00015``); infinities as Prometheus spells
    them. How metrics-exporter-prometheus writes values and ``le`` bounds. Pure.

    >>> [rust_f64(v) for v in (1024.0, 0.5, 0.0001 * 1.5, 1e-07, float("inf"))]
    ['1024', '0.5', '0.00015000000000000001', '0.0000001', '+Inf']
    """
    value = float(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer():
        return str(int(value))
    return format(decimal.Decimal(repr(value)), "f")


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _rust_le(bound: str) -> str:
    return rust_f64(float(bound))


def render_bare(registry: CollectorRegistry) -> bytes:
    """Text exposition the way Rust's metrics-exporter-prometheus writes it (used for TGI).

    ``generate_latest`` renames every counter's ``# TYPE`` line to ``<name>_total``; TGI's
    counters (``tgi_request_count``, ...) have no such suffix, so this renderer writes each
    family's name and samples exactly as collected, numbers (values and ``le``) as Rust's ``f64``
    ``Display`` writes them (``rust_f64``). A family appears only once it has a series
    (the Rust recorder registers a metric on first use) and has a ``# HELP`` line only if TGI
    describes it (router/src/server.rs:1995-2112 @ v3.3.7).
    """
    lines: list[str] = []
    for metric in registry.collect():
        if not metric.samples:
            continue
        if metric.documentation:
            lines.append(f"# HELP {metric.name} {metric.documentation}\n")
        lines.append(f"# TYPE {metric.name} {metric.type}\n")
        for sample in metric.samples:
            if sample.labels:
                labels = ",".join(
                    f'{k}="{_escape_label_value(_rust_le(v) if k == "le" else v)}"'
                    for k, v in sample.labels.items()
                )
                lines.append(f"{sample.name}{{{labels}}} {rust_f64(sample.value)}\n")
            else:
                lines.append(f"{sample.name} {rust_f64(sample.value)}\n")
        lines.append("\n")
    return "".join(lines).encode("utf-8")


# --- engines ------------------------------------------------------------------------------------------


class EngineMetrics:
    """What every engine's metric set offers the server. One instance per engine "process".

    The server calls ``record_handler`` when a generation handler accepts a request,
    ``record(sample)`` once per request the engine is asked to run (TGI: per inner generate), and
    ``record_http`` once per HTTP exchange; each engine counts only what its source counts.
    """

    mode = ""

    def __init__(self, families: Sequence[Family], *, bare_counters: bool, skip_empty: bool = False) -> None:
        self.families = {f.name: f for f in families}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(
            _FamiliesCollector(families, bare_counters=bare_counters, skip_empty=skip_empty)
        )

    def record(self, sample: RequestSample) -> None:
        """Account one engine request, however it ended (``sample.outcome``)."""
        raise NotImplementedError

    def record_handler(self, handler: str) -> None:
        """A generation handler accepted a request (before it asks the engine for anything)."""

    def record_http_start(self, handler: str, method: str) -> None:
        """An HTTP request arrived (before its handler runs); only SGLang counts here."""

    def record_http(
        self,
        handler: str,
        method: str,
        status: int | None,
        duration_s: float,
        *,
        request_bytes: int = 0,
        response_bytes: int = 0,
    ) -> None:
        """Account one HTTP exchange; only engines with HTTP-level metrics do anything. ``status``
        is ``None`` when the handler raised instead of answering."""

    def set_synthetic_in_flight(self, handler: str, method: str, count: int) -> None:
        """How many synthetic requests are in flight on ``handler`` (SGLang's active-requests gauge)."""

    def unmatched_handler(self, path: str) -> str:
        """The handler label of a request that matched no route."""
        return "none"

    def set_load(
        self, *, running: int, waiting: int, kv_cache_usage: float, tokens_per_request: int = 0
    ) -> None:
        raise NotImplementedError

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _families_of(obj: object) -> list[Family]:
    return [v for v in vars(obj).values() if isinstance(v, Family)]


class VllmMetrics(EngineMetrics):
    """vLLM 0.33.0: the V1 engine's ``PrometheusStatLogger`` plus its API server's instrumentator.

    Families and help texts are those created unconditionally at start-up
    (vllm/v1/metrics/loggers.py:473-1120, v1/metrics/perf.py:1757-1797); the ones behind an option
    that is off by default (KV-fetch stages, NaN counting, watermarks, KV residency, LoRA, spec
    decoding, KV/EC connectors) are left out, as is the ``vllm:cache_config_info`` info gauge.
    Per-engine series carry ``model_name`` and ``engine="0"`` and exist from start-up, at zero.

    Recording follows the engine: tokens, TTFT and ITL are per *iteration*, so they count for every
    request that produced tokens, aborted or failed (loggers.py:1262-1287; stats.py:509-561); the
    per-request families are observed for every *finished* request, ``error`` included
    (loggers.py:1289-1330). A client abort is not finished in this sense: ``AsyncLLM.generate``
    aborts it (v1/engine/async_llm.py:804-811), ``OutputProcessor.abort_requests`` drops its state
    without stats (v1/engine/output_processor.py:599-661) and later outputs for it are ignored
    (:761), so ``finished_reason="abort"`` does not grow for client disconnects. Pre-engine failures
    reach no ``vllm:`` series at all; load shedding counts ``vllm:admission_rejections``
    (v1/engine/async_llm.py:366-369, loggers.py:1332-1333).
    """

    mode = "vllm"
    HTTP_EXCLUDED = VLLM_HTTP_EXCLUDED

    def __init__(self, model_name: str, *, engine: str = "0") -> None:
        base = ("model_name", "engine")
        tokens = build_1_2_5_buckets(VLLM_MAX_MODEL_LEN)
        lat = VLLM_REQUEST_LATENCY_BUCKETS
        f = Family
        # Scheduler state (loggers.py:526-628)
        self.running = f(
            "vllm:num_requests_running", "Number of requests in model execution batches.", "gauge", base
        )
        self.waiting = f(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", "gauge", base
        )
        self.waiting_by_reason = f(
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason. "
            "Reason labels: 'capacity' = waiting for scheduling capacity; "
            "'deferred' = deferred by transient constraints "
            "(LoRA budget, KV transfer, blocked status). "
            "Sum of all reasons equals vllm:num_requests_waiting.",
            "gauge",
            (*base, "reason"),
        )
        self.sleep_state = f(
            "vllm:engine_sleep_state",
            "Engine sleep state; awake = 0 means engine is sleeping; "
            "awake = 1 means engine is awake; "
            "weights_offloaded = 1 means sleep level 1; "
            "discard_all = 1 means sleep level 2.",
            "gauge",
            (*base, "sleep_state"),
        )
        self.kv_cache = f(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", "gauge", base
        )
        # Caches (loggers.py:660-734)
        self.prefix_queries = f(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            "counter",
            base,
        )
        self.prefix_hits = f(
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            "counter",
            base,
        )
        self.external_prefix_queries = f(
            "vllm:external_prefix_cache_queries",
            "External prefix cache queries from KV connector "
            "cross-instance cache sharing, in terms of number of queried tokens.",
            "counter",
            base,
        )
        self.external_prefix_hits = f(
            "vllm:external_prefix_cache_hits",
            "External prefix cache hits from KV connector "
            "cross-instance cache sharing, in terms of number of cached tokens.",
            "counter",
            base,
        )
        self.mm_queries = f(
            "vllm:mm_cache_queries",
            "Multi-modal cache queries, in terms of number of queried items.",
            "counter",
            base,
        )
        self.mm_hits = f(
            "vllm:mm_cache_hits",
            "Multi-modal cache hits, in terms of number of cached items.",
            "counter",
            base,
        )
        # Counters (loggers.py:736-860)
        self.preemptions = f(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", "counter", base
        )
        self.prompt_tokens = f("vllm:prompt_tokens", "Number of prefill tokens processed.", "counter", base)
        self.prompt_by_source = f(
            "vllm:prompt_tokens_by_source", "Number of prompt tokens by source.", "counter", (*base, "source")
        )
        self.prompt_cached = f(
            "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).", "counter", base
        )
        self.prompt_cached_by_source = f(
            "vllm:prompt_tokens_cached_by_source",
            "Prefix-cache hit tokens by the cache tier that supplied them: "
            "device (local HBM), host (offloaded to DRAM), disk, p2p "
            "(transferred from another vLLM instance) or "
            "external_unspecified. Counted at admission; sums to "
            "vllm:prefix_cache_hits + vllm:external_prefix_cache_hits.",
            "counter",
            (*base, "source"),
        )
        self.generation_tokens = f(
            "vllm:generation_tokens", "Number of generation tokens processed.", "counter", base
        )
        self.success = f(
            "vllm:request_success",
            "Count of successfully processed requests.",
            "counter",
            (*base, "finished_reason"),
        )
        self.admission_rejections = f(
            "vllm:admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            "counter",
            ("model_name", "reason"),
        )
        # Histograms of counts (loggers.py:862-926)
        self.req_prompt = f(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", "histogram", base, tokens
        )
        self.req_generation = f(
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            "histogram",
            base,
            tokens,
        )
        self.iteration_tokens = f(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            "histogram",
            base,
            VLLM_ITERATION_TOKENS_BUCKETS,
        )
        self.req_max_generation = f(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            "histogram",
            base,
            tokens,
        )
        self.req_params_n = f(
            "vllm:request_params_n",
            "Histogram of the n request parameter.",
            "histogram",
            base,
            VLLM_REQUEST_PARAMS_N_BUCKETS,
        )
        self.req_params_max_tokens = f(
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            "histogram",
            base,
            tokens,
        )
        # Histograms of timing intervals (loggers.py:928-1032)
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
        self.req_tpot = f(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            "histogram",
            base,
            VLLM_ITL_BUCKETS,
        )
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
        self.req_preemptions = f(
            "vllm:request_num_preemptions",
            "Histogram of the number of times a request was preempted.",
            "histogram",
            base,
            VLLM_REQUEST_NUM_PREEMPTIONS_BUCKETS,
        )
        self.req_prefill_kv = f(
            "vllm:request_prefill_kv_computed_tokens",
            "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
            "histogram",
            base,
            tokens,
        )
        # Performance counters, created unconditionally, non-zero only with --enable-mfu-metrics
        # (perf.py:1757-1797; prometheus_client strips and re-adds the names' _total).
        self.flops = f(
            "vllm:estimated_flops_per_gpu",
            "Estimated number of floating point operations per GPU "
            "(for Model Flops Utilization calculations).",
            "counter",
            base,
        )
        self.read_bytes = f(
            "vllm:estimated_read_bytes_per_gpu",
            "Estimated number of bytes read from memory per GPU (for Model Flops Utilization calculations).",
            "counter",
            base,
        )
        self.write_bytes = f(
            "vllm:estimated_write_bytes_per_gpu",
            "Estimated number of bytes written to memory per GPU (for Model Flops Utilization calculations).",
            "counter",
            base,
        )
        # prometheus-fastapi-instrumentator 8.1.0 metrics.default (metrics.py:707-777)
        self.http_total = f(
            "http_requests",
            "Total number of requests by method, status and handler.",
            "counter",
            ("method", "status", "handler"),
        )
        self.http_in_size = f(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. "
            "Only value of header is respected. Otherwise ignored. "
            "No percentile calculated. ",
            "summary",
            ("handler",),
        )
        self.http_out_size = f(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. "
            "Only value of header is respected. Otherwise ignored. "
            "No percentile calculated. ",
            "summary",
            ("handler",),
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
        families = _families_of(self)
        super().__init__(families, bare_counters=False)
        self.labels = (model_name, engine)
        lv = self.labels
        # Like vLLM, every per-engine series exists from start-up, at zero.
        for fam in families:
            if fam.labelnames == base:
                fam.touch(*lv)
        for reason in VLLM_WAITING_REASONS:
            self.waiting_by_reason.touch(*lv, reason)
        for state in VLLM_SLEEP_STATES:  # record_sleep_state() at start-up: awake (loggers.py:1335-1352)
            self.sleep_state.set(*lv, state, value=1.0 if state == "awake" else 0.0)
        for source in VLLM_PROMPT_SOURCES:
            self.prompt_by_source.touch(*lv, source)
        for source in VLLM_CACHE_HIT_SOURCES:
            self.prompt_cached_by_source.touch(*lv, source)
        for reason in VLLM_FINISH_REASONS:
            self.success.touch(*lv, reason)
        for reason in VLLM_ADMISSION_REASONS:
            self.admission_rejections.touch(model_name, reason)
        self.http_highr.touch()

    def record(self, sample: RequestSample) -> None:
        lv = self.labels
        if sample.outcome is Outcome.OVERLOAD:
            # QueueOverflowError from check_admission (v1/engine/async_llm.py:352-369).
            self.admission_rejections.inc(lv[0], "max_num_queued_reqs")
            return
        if not sample.reached_engine:
            return  # failed in the API server: no vllm:* series sees it
        prompt, produced = sample.prompt_tokens, sample.generation_tokens
        if produced == 0 and sample.outcome is Outcome.CLIENT_DROP:
            return  # the client left before the engine's first output: nothing was recorded
        # Iteration stats of the outputs the engine produced (loggers.py:1256-1287); the first
        # output (even a token-less error) carries the prompt and the TTFT (stats.py:517-527).
        self.prompt_tokens.inc(*lv, amount=prompt)
        self.prompt_by_source.inc(*lv, "local_compute", amount=prompt)
        self.prefix_queries.inc(*lv, amount=prompt)
        self.generation_tokens.inc(*lv, amount=produced)
        # Each simulated request is its own batch: one prefill step, then one token per step.
        self.iteration_tokens.observe(*lv, value=prompt + min(produced, 1))
        self.iteration_tokens.observe(*lv, value=1, weight=produced - 1)
        self.ttft.observe(*lv, value=sample.ttft_s)
        for value, weight in sample.itls:
            self.itl.observe(*lv, value=value, weight=weight)
        if sample.outcome is Outcome.CLIENT_DROP:
            return  # aborted by the API server: never a finished request (see the class docstring)
        reason = "error" if sample.outcome is Outcome.ENGINE_ERROR else sample.finish_reason
        # Finished-request stats (loggers.py:1289-1330; parallel_sampling.py:136-152).
        self.success.inc(*lv, reason)
        self.e2e.observe(*lv, value=sample.e2e_s)
        self.queue.observe(*lv, value=sample.queue_s)
        self.prefill.observe(*lv, value=sample.prefill_s)
        self.inference.observe(*lv, value=sample.inference_s)
        self.decode.observe(*lv, value=sample.decode_s)
        self.req_preemptions.observe(*lv, value=0)
        self.req_prefill_kv.observe(*lv, value=prompt)
        self.req_prompt.observe(*lv, value=prompt)
        self.req_generation.observe(*lv, value=produced)
        self.req_tpot.observe(*lv, value=sample.mean_itl_s)
        # Without max_tokens the API server fills in max_model_len - prompt (serve/utils/api_utils.py:234-270).
        max_tokens = sample.max_tokens or max(1, VLLM_MAX_MODEL_LEN - prompt)
        self.req_params_max_tokens.observe(*lv, value=max_tokens)
        self.req_max_generation.observe(*lv, value=produced)
        self.req_params_n.observe(*lv, value=1)

    def record_http(
        self,
        handler: str,
        method: str,
        status: int | None,
        duration_s: float,
        *,
        request_bytes: int = 0,
        response_bytes: int = 0,
    ) -> None:
        """instrumentator middleware.py:128-240: status from ``http.response.start``, grouped (500
        when the handler raised)."""
        if any(excluded in handler for excluded in self.HTTP_EXCLUDED):
            return
        status = 500 if status is None else status
        self.http_total.inc(method, f"{status // 100}xx", handler)
        self.http_in_size.observe(handler, value=request_bytes)
        self.http_out_size.observe(handler, value=response_bytes)
        self.http_highr.observe(value=duration_s)
        self.http_lowr.observe(method, handler, value=duration_s)

    def set_load(
        self, *, running: int, waiting: int, kv_cache_usage: float, tokens_per_request: int = 0
    ) -> None:
        del tokens_per_request
        lv = self.labels
        self.running.set(*lv, value=running)
        self.waiting.set(*lv, value=waiting)
        self.waiting_by_reason.set(*lv, "capacity", value=waiting)
        self.waiting_by_reason.set(*lv, "deferred", value=0)
        self.kv_cache.set(*lv, value=kv_cache_usage)


class TgiMetrics(EngineMetrics):
    """TGI 3.3.7: the router's and the v3 backend's metrics (unlabelled except where noted).

    Counters have no ``_total`` suffix and every family appears on first use, as Rust's
    metrics-exporter-prometheus does: a freshly started TGI exports nothing at all.

    ``tgi_request_count`` is incremented by each OpenAI handler and again by each inner generate:
    ``/v1/chat/completions`` (router/src/server.rs:1180, then generate_stream_internal :518 or
    generate_internal :296), ``/v1/completions`` (:727, then one per prompt), ``/generate`` only
    inside (:296). ``record_handler`` is the handler's increment, ``record`` the inner one.
    ``tgi_request_success`` and ``tgi_request_failure{err}`` count once per inner generate:
    ``overloaded`` (router/src/infer/mod.rs:117), ``generation`` (backends/v3/src/backend.rs:545,
    every entry of a failed batch), ``dropped`` (client gone: queue.rs:282 while queued,
    backend.rs:439/454 after a batch step). ``validation``/``template``/``incomplete`` are not
    simulated.
    """

    mode = "tgi"
    # Handlers that count tgi_request_count themselves before any inner generate (see above).
    HANDLERS_COUNTED = frozenset({"/v1/chat/completions", "/v1/completions"})
    # Share of the queue phase TGI attributes to request validation (tokenization), capped.
    VALIDATION_S = 0.001

    def __init__(self) -> None:
        f = Family
        dur = tgi_duration_buckets()
        tokens = tgi_linear_buckets(TGI_MAX_TOTAL_TOKENS)
        # Help texts: the last metrics::describe_* of each name (router/src/server.rs:1995-2112).
        self.count = f("tgi_request_count", "Total number of requests", "counter")
        self.success = f("tgi_request_success", "Number of successful requests", "counter")
        self.failure = f("tgi_request_failure", "", "counter", ("err",))
        self.duration = f(
            "tgi_request_duration", "Total time spent processing the request", "histogram", (), dur
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
            "Mean time per token per request",
            "histogram",
            (),
            dur,
        )
        self.input_length = f(
            "tgi_request_input_length",
            "Input token length per request",
            "histogram",
            (),
            tgi_linear_buckets(TGI_MAX_INPUT_TOKENS),
        )
        self.generated = f(
            "tgi_request_generated_tokens", "Generated tokens per request", "histogram", (), tokens
        )
        self.max_new_tokens = f(
            "tgi_request_max_new_tokens", "Maximum new tokens per request", "histogram", (), tokens
        )
        self.skipped = f("tgi_request_skipped_tokens", "Speculated tokens per request", "summary")
        self.queue_size = f("tgi_queue_size", "Current queue size", "gauge")
        self.batch_size = f("tgi_batch_current_size", "Current batch size", "gauge")
        self.batch_max_tokens = f(
            "tgi_batch_current_max_tokens", "Maximum tokens for the current batch", "gauge"
        )
        self.next_size = f(
            "tgi_batch_next_size",
            "Batch size of the next batch",
            "histogram",
            (),
            [float(x + 1) for x in range(1024)],  # server.rs:1963-1964
        )
        method = ("method",)
        self.batch_count = f(
            "tgi_batch_inference_count", "Inference calls per method (prefill or decode)", "counter", method
        )
        self.batch_success = f(
            "tgi_batch_inference_success",
            "Number of successful inference calls per method (prefill or decode)",
            "counter",
            method,
        )
        self.batch_failure = f("tgi_batch_inference_failure", "", "counter", method)
        self.batch_inference = f(
            "tgi_batch_inference_duration", "Batch inference duration", "histogram", method, dur
        )
        self.batch_forward = f(
            "tgi_batch_forward_duration",
            "Batch forward duration per method (prefill or decode)",
            "histogram",
            method,
            dur,
        )
        self.batch_decode = f(
            "tgi_batch_decode_duration",
            "Time spent decoding a batch per method (prefill or decode)",
            "histogram",
            method,
            dur,
        )
        self.batch_filter = f(
            "tgi_batch_filter_duration",
            "Time spent filtering batches and sending generated tokens per method (prefill or decode)",
            "histogram",
            method,
            dur,
        )
        super().__init__(_families_of(self), bare_counters=True)

    def record_handler(self, handler: str) -> None:
        if handler in self.HANDLERS_COUNTED:
            self.count.inc()

    def _batch_step(self, method: str, duration_s: float, *, weight: int = 1, ok: bool = True) -> None:
        """One prefill or decode call for this request's batch (backend.rs:297-384)."""
        if weight <= 0:
            return
        self.batch_count.inc(method, amount=weight)
        if not ok:
            self.batch_failure.inc(method, amount=weight)
            return
        self.batch_success.inc(method, amount=weight)
        self.batch_forward.observe(method, value=duration_s * TGI_FORWARD_SHARE, weight=weight)
        self.batch_decode.observe(method, value=duration_s * TGI_DECODE_SHARE, weight=weight)
        self.batch_filter.observe(method, value=duration_s * TGI_FILTER_SHARE, weight=weight)
        self.batch_inference.observe(method, value=duration_s, weight=weight)
        self.skipped.observe(value=0, weight=weight)  # no speculation: n - 1 = 0 (backend.rs:480)

    def record(self, sample: RequestSample) -> None:
        self.count.inc()  # generate_internal / generate_stream_internal (server.rs:296, :518)
        outcome = sample.outcome
        if outcome is Outcome.OVERLOAD:
            self.failure.inc("overloaded")  # no permit, before validation (infer/mod.rs:111-120)
            return
        # Validation (validation.rs:192, :433), then the queue (queue.rs:143, :158, :501).
        self.input_length.observe(value=sample.prompt_tokens)
        default_max = max(1, TGI_MAX_TOTAL_TOKENS - sample.prompt_tokens)
        self.max_new_tokens.observe(value=sample.max_tokens or default_max)
        self.queue_size.touch()
        self.batch_size.touch()
        self.batch_max_tokens.touch()
        produced = sample.generation_tokens
        if outcome is Outcome.CLIENT_DROP and produced == 0:
            self.failure.inc("dropped")  # popped from the queue with its receiver gone (queue.rs:282)
            return
        self.next_size.observe(value=1)
        if outcome is Outcome.PRESTREAM_ERROR:
            self._batch_step("prefill", 0.0, ok=False)
            self.failure.inc("generation")  # send_errors for the failed prefill (backend.rs:330-336, :545)
            return
        self._batch_step("prefill", sample.prefill_s)
        itls = list(sample.itls)
        if outcome is Outcome.ENGINE_ERROR:
            itls = itls[:-1]  # the last gap is the failing decode step
        for value, weight in itls:
            self._batch_step("decode", value, weight=weight)
        if outcome is Outcome.ENGINE_ERROR:
            self._batch_step("decode", 0.0, ok=False)
            self.failure.inc("generation")  # backend.rs:374-383, :545
            return
        if outcome is Outcome.CLIENT_DROP:
            # The next decode step runs, then finds the response channel closed (backend.rs:453-455).
            self._batch_step("decode", itls[-1][0] if itls else sample.prefill_s)
            self.failure.inc("dropped")
            return
        # Success (server.rs:415-423 and :620-626).
        validation = min(self.VALIDATION_S, sample.queue_s / 2.0)
        self.success.inc()
        self.duration.observe(value=sample.e2e_s)
        self.validation.observe(value=validation)
        self.queue.observe(value=sample.queue_s - validation)
        self.inference.observe(value=sample.inference_s)
        self.tpot.observe(value=sample.inference_s / max(produced, 1))
        self.generated.observe(value=produced)

    def set_load(
        self, *, running: int, waiting: int, kv_cache_usage: float, tokens_per_request: int = 0
    ) -> None:
        del kv_cache_usage  # TGI exports no KV-cache gauge
        # The gauges exist only once a request went through the queue and a batch.
        if self.queue_size.children:
            self.queue_size.set(value=waiting)
        if self.batch_size.children:
            self.batch_size.set(value=running)
        if self.batch_max_tokens.children:
            self.batch_max_tokens.set(value=running * tokens_per_request)

    def render(self) -> bytes:
        return render_bare(self.registry)


def sglang_token_latencies(sample: RequestSample) -> tuple[bool, list[tuple[float, int]]]:
    """Whether SGLang observes ``sample``'s TTFT, and its inter-token-latency observations as
    ``(value, weight)``. Pure; consumed by ``SglangMetrics.record``.

    The tokenizer observes per *output* it receives from the scheduler (``collect_metrics``,
    sglang/srt/managers/tokenizer_manager.py:3219-3260 @ 0.5.23): the first output gives the TTFT
    unless it is already the abort, every later one gives ``interval / new_tokens`` weighted by its
    new tokens (``observe_inter_token_latency``, observability/metrics_collector.py:2161-2183), and
    an output without new tokens gives nothing. A streamed request gets an output per token, so its
    token gaps are observed as they are; the failing step of an engine fault (the last gap of an
    ``ENGINE_ERROR`` sample) ends in the token-less abort output and is not. A non-streamed request
    gets an output every ``SGLANG_FORCE_STREAM_INTERVAL`` tokens and a final one: with fewer tokens
    than that the final output is the only one (no ITL; no TTFT either if it is an abort), and
    otherwise the first 50 tokens' gaps are not observed.

    >>> ok = RequestSample(ok=True, prompt_tokens=1, generation_tokens=3, ttft_s=0.1, itls=((0.02, 2),))
    >>> sglang_token_latencies(ok)
    (True, [(0.02, 2)])
    >>> import dataclasses
    >>> sglang_token_latencies(dataclasses.replace(ok, stream=False))
    (True, [])
    """
    produced = sample.generation_tokens
    aborted = sample.outcome is not Outcome.OK
    gaps = [(v, w) for v, w in sample.itls if w > 0]
    failing = 0.0
    if sample.outcome is Outcome.ENGINE_ERROR and gaps:
        failing, weight = gaps[-1]
        gaps[-1] = (failing, weight - 1)
        gaps = [(v, w) for v, w in gaps if w > 0]
    if sample.stream:
        return produced > 0, gaps
    # Not streamed: outputs at every 50th token and at the end (an abort comes after the tokens).
    step = SGLANG_FORCE_STREAM_INTERVAL
    counts = list(range(step, produced + 1, step))
    if aborted or not counts or counts[-1] != produced:
        counts.append(produced)
    if len(counts) == 1 and aborted:
        return False, []  # the first output is the abort: finish type "abort", nothing observed
    per_token = [v for v, w in gaps for _ in range(w)]  # gap before token 2, 3, ...
    elapsed = [0.0, *itertools.accumulate(per_token)]  # time of token k is elapsed[k - 1]

    def at(j: int) -> float:
        if aborted and j == len(counts) - 1:
            return elapsed[-1] + failing
        return elapsed[max(counts[j] - 1, 0)]

    out = []
    for j in range(1, len(counts)):
        new = counts[j] - counts[j - 1]
        if new > 0:
            out.append(((at(j) - at(j - 1)) / new, new))
    return True, out


class SglangMetrics(EngineMetrics):
    """SGLang 0.5.23 with ``--enable-metrics``, paths under ``sglang/srt/`` @ 0.5.23.

    Exposed the way prometheus_client's ``MultiProcessCollector`` writes it (``utils/common.py:2825-2853``):
    counters with ``_total``, no ``_created`` series, a labelled family only once a child exists,
    the scheduler's gauges with ``multiprocess_mode="mostrecent"`` (no ``pid``). Families, help
    texts and labels: ``TokenizerMetricsCollector`` (``observability/metrics_collector.py:1822-2072``;
    labels ``model_name``, ``engine_type`` ``unified``, ``:1804-1819``), ``SchedulerMetricsCollector``
    (``:355-883``; labels plus ``tp_rank``, ``pp_rank``, ``moe_ep_rank``, ``:1376-1394``; only
    attention-TP rank 0 records, ``:1361-1367``, so one series each, ranks ``0``) and the HTTP
    middleware (``observability/http_request_metrics.py:24-105``: every route, the route template
    or else the raw path, the exact status code). The scheduler reports its gauges from start-up
    (idle logging, ``managers/scheduler_components/metrics_reporter.py:1476-1532``), so they are
    exported at zero before any request.

    Recording (``managers/tokenizer_manager.py:3219-3299``): every request that finishes through
    the scheduler's outputs — ``stop``, ``length`` *or an abort* (engine fault, a disconnected
    client's running request) — counts once in ``num_requests_total`` and is observed in e2e,
    prompt and generation tokens; the per-request TPOT only for ``stop``/``length`` (``:3278-3285``).
    Queue time is observed when a request first runs (``observability/req_time_stats.py:803-814``).
    Requests refused before the scheduler ran them (pre-stream faults, a full queue, whose abort
    echo skips ``collect_metrics``, ``tokenizer_manager.py:3577-3643``) show only in the HTTP
    counters. A client drop sends an ``AbortReq`` and counts in ``num_aborted_requests_total``
    (``tokenizer_manager.py:2241-2266``); a request still queued is popped without an output
    (``managers/scheduler.py:5690-5722``), a running one finishes with an abort output.
    """

    mode = "sglang"

    def __init__(self, model_name: str) -> None:
        f = Family
        tok = ("model_name", "engine_type")
        tok_stream = (*tok, "is_streaming")
        sched = (*tok, "tp_rank", "pp_rank", "moe_ep_rank")
        tokens = SGLANG_TOKENS_BUCKETS
        # Scheduler (observability/metrics_collector.py:364-415, :837-883)
        self.running = f("sglang:num_running_reqs", "The number of running requests.", "gauge", sched)
        self.queue = f(
            "sglang:num_queue_reqs", "The number of requests in the waiting queue.", "gauge", sched
        )
        self.grammar_queue = f(
            "sglang:num_grammar_queue_reqs",
            "The number of requests in the grammar waiting queue.",
            "gauge",
            sched,
        )
        self.cache_hit_rate = f("sglang:cache_hit_rate", "The prefix cache hit rate.", "gauge", sched)
        self.token_usage = f("sglang:token_usage", "The token usage.", "gauge", sched)
        self.full_token_usage = f(
            "sglang:full_token_usage", "The token usage for full attention layers.", "gauge", sched
        )
        self.queue_time = f(
            "sglang:queue_time_seconds",
            "Histogram of queueing time in seconds.",
            "histogram",
            sched,
            SGLANG_QUEUE_TIME_BUCKETS,
        )
        # Tokenizer (metrics_collector.py:1855-2072)
        self.prompt_tokens = f(
            "sglang:prompt_tokens", "Number of prefill tokens processed.", "counter", tok_stream
        )
        self.generation_tokens = f(
            "sglang:generation_tokens", "Number of generation tokens processed.", "counter", tok_stream
        )
        self.prompt_hist = f(
            "sglang:prompt_tokens_histogram", "Histogram of prompt token length.", "histogram", tok, tokens
        )
        self.uncached_prompt_hist = f(
            "sglang:uncached_prompt_tokens_histogram",
            "Histogram of uncached (compute) prompt token length.",
            "histogram",
            tok,
            tokens,
        )
        self.generation_hist = f(
            "sglang:generation_tokens_histogram",
            "Histogram of generation token length.",
            "histogram",
            tok,
            tokens,
        )
        self.requests = f("sglang:num_requests", "Number of requests processed.", "counter", tok_stream)
        self.aborted = f("sglang:num_aborted_requests", "Number of requests aborted.", "counter", tok)
        self.ttft = f(
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            "histogram",
            tok_stream,
            SGLANG_TTFT_BUCKETS,
        )
        self.itl = f(
            "sglang:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            "histogram",
            tok,
            SGLANG_ITL_BUCKETS,
        )
        self.tpot = f(
            "sglang:request_time_per_output_token_seconds",
            "Per-request TPOT in seconds: (finished_time - first_token_time) / (completion_tokens - 1).",
            "histogram",
            tok_stream,
            SGLANG_ITL_BUCKETS,
        )
        self.e2e = f(
            "sglang:e2e_request_latency_seconds",
            "Histogram of End-to-end request latency in seconds",
            "histogram",
            tok_stream,
            SGLANG_E2E_BUCKETS,
        )
        # HTTP middleware (observability/http_request_metrics.py:28-45)
        self.http_requests = f(
            "sglang:http_requests",
            "Total number of HTTP requests by endpoint and method",
            "counter",
            ("endpoint", "method"),
        )
        self.http_responses = f(
            "sglang:http_responses",
            "Total number of HTTP responses by endpoint and status code",
            "counter",
            ("endpoint", "status_code", "method"),
        )
        self.http_active = f(
            "sglang:http_requests_active",
            "Number of currently active HTTP requests",
            "gauge",
            ("endpoint", "method"),
        )
        super().__init__(_families_of(self), bare_counters=False, skip_empty=True)
        self.tok_labels = (model_name, SGLANG_ENGINE_TYPE)
        self.sched_labels = (*self.tok_labels, "0", "0", "0")
        for gauge in (
            self.running, self.queue, self.grammar_queue, self.cache_hit_rate, self.token_usage,
            self.full_token_usage,
        ):  # fmt: skip
            gauge.touch(*self.sched_labels)
        self._active: dict[tuple[str, str], int] = {}
        self._synthetic: dict[tuple[str, str], int] = {}

    def record(self, sample: RequestSample) -> None:
        outcome, tok = sample.outcome, self.tok_labels
        if outcome in (Outcome.PRESTREAM_ERROR, Outcome.OVERLOAD):
            return  # never run by the scheduler: only the HTTP counters see it
        produced = sample.generation_tokens
        if outcome is Outcome.CLIENT_DROP:
            self.aborted.inc(*tok)  # abort_request (tokenizer_manager.py:2261-2265)
            if produced == 0:
                return  # still queued: popped from the waiting queue, no output, no metrics
        stream = "true" if sample.stream else "false"
        self.queue_time.observe(*self.sched_labels, value=sample.queue_s)
        ttft, itls = sglang_token_latencies(sample)
        if ttft:
            self.ttft.observe(*tok, stream, value=sample.ttft_s)
        for value, weight in itls:
            self.itl.observe(*tok, value=value, weight=weight)
        # observe_one_finished_request (metrics_collector.py:2092-2152); no prefix-cache hits.
        prompt = sample.prompt_tokens
        self.prompt_tokens.inc(*tok, stream, amount=prompt)
        self.generation_tokens.inc(*tok, stream, amount=produced)
        self.requests.inc(*tok, stream)
        self.e2e.observe(*tok, stream, value=sample.e2e_s)
        if outcome is Outcome.OK and produced > 1 and sample.decode_s > 0:
            # get_time_per_output_token (observability/req_time_stats.py:492-498)
            self.tpot.observe(*tok, stream, value=sample.decode_s / (produced - 1))
        self.prompt_hist.observe(*tok, value=prompt)
        self.uncached_prompt_hist.observe(*tok, value=prompt)
        self.generation_hist.observe(*tok, value=produced)

    def _set_active(self, key: tuple[str, str]) -> None:
        self.http_active.set(*key, value=self._active.get(key, 0) + self._synthetic.get(key, 0))

    def record_http_start(self, handler: str, method: str) -> None:
        """``track_http_status_code`` before ``call_next`` (http_request_metrics.py:86-87)."""
        key = (handler, method)
        self.http_requests.inc(*key)
        self._active[key] = self._active.get(key, 0) + 1
        self._set_active(key)

    def record_http(
        self,
        handler: str,
        method: str,
        status: int | None,
        duration_s: float,
        *,
        request_bytes: int = 0,
        response_bytes: int = 0,
    ) -> None:
        """After ``call_next``: the response by its exact status, unless the handler raised
        (http_request_metrics.py:92-105)."""
        del duration_s, request_bytes, response_bytes
        key = (handler, method)
        if status is not None:
            self.http_responses.inc(handler, str(status), method)
        self._active[key] = max(self._active.get(key, 0) - 1, 0)
        self._set_active(key)

    def set_synthetic_in_flight(self, handler: str, method: str, count: int) -> None:
        key = (handler, method)
        if not count and key not in self._synthetic and key not in self._active:
            return  # no series before the route's first request
        self._synthetic[key] = count
        self._set_active(key)

    def unmatched_handler(self, path: str) -> str:
        """``_get_fastapi_request_path``: the raw path when no route matches
        (http_request_metrics.py:109-116)."""
        return path

    def set_load(
        self, *, running: int, waiting: int, kv_cache_usage: float, tokens_per_request: int = 0
    ) -> None:
        del tokens_per_request
        lv = self.sched_labels
        self.running.set(*lv, value=running)
        self.queue.set(*lv, value=waiting)
        # token_usage is the max over the pools; a full-attention model has only the full pool.
        self.token_usage.set(*lv, value=kv_cache_usage)
        self.full_token_usage.set(*lv, value=kv_cache_usage)


# One builder per mode (TGI's metrics carry no model name); a new engine adds one entry.
_BUILDERS: dict[str, Callable[[str], EngineMetrics]] = {
    "vllm": VllmMetrics,
    "tgi": lambda _model_name: TgiMetrics(),
    "sglang": SglangMetrics,
}


def build_metrics(mode: str, model_name: str) -> EngineMetrics:
    """The metric set for ``mode`` ("vllm", "tgi" or "sglang"), as a freshly started engine exports
    it (before SGLang's warm-up request, which the server records)."""
    try:
        builder = _BUILDERS[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}") from None
    return builder(model_name)
