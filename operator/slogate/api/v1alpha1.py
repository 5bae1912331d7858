"""ModelDeployment ``slogate.io/v1alpha1``: spec and status as pydantic models.

These models are the single source of truth for the API: the CRD (``slogate crd``) is generated
from them, field docstrings become the CRD's descriptions, and the cross-field rules below are
CEL expressions that the API server evaluates and that ``slogate validate`` evaluates offline from
the same generated schema. Defaults are documented here and applied by the operator, never written
back into ``spec`` (GitOps tools own ``spec``).
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from slogate.api.types import DNSLabel, DNSSubdomain, Duration, Quantity, parse_duration, parse_quantity

# The engine flag tables are a leaf module (standard library only): the CRD's rules about
# ``engine.args`` are generated from the same tables the operator builds command lines from.
from slogate.core import engine_flags

DURATION_CEL = "^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$"


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry. ``field_path`` points the error at a child field."""
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def at_least(field: str, minimum: str, message: str) -> dict[str, str]:
    """A CEL rule holding the duration ``field`` to ``minimum`` or more (``"0s"``: strictly positive),
    pointed at the field. ``slogate validate`` runs it offline; ``_check_at_least`` is its pydantic
    twin, so the operator reports a stored object that predates the rule as ``InvalidSpec``."""
    op = ">" if minimum == "0s" else ">="
    return cel(
        f"!has(self.{field}) || duration(self.{field}) {op} duration('{minimum}')",
        message,
        field_path=f".{field}",
        reason="FieldValueInvalid",
    )


def _check_at_least(value: str, minimum: str, message: str) -> str:
    least = parse_duration(minimum)
    got = parse_duration(value)
    if got < least or (minimum == "0s" and got == least):
        raise ValueError(message)
    return value


SLO_WINDOW_MESSAGE = "window must be longer than 0s: every objective is a rate over it (e.g. 5m)"
STARTUP_TIMEOUT_MESSAGE = "startupTimeout must be at least 1m: the engine loads its weights in it (e.g. 45m)"
ANALYSIS_INTERVAL_MESSAGE = "interval must be at least 1s: each run queries Prometheus (e.g. 1m)"
DRIFT_WINDOW_MESSAGE = "window must be longer than 0s: the length distributions are taken over it (e.g. 1h)"


def _config(*rules: dict[str, str], extra: str = "forbid") -> ConfigDict:
    schema_extra: dict[str, Any] = {"x-kubernetes-validations": list(rules)} if rules else {}
    return ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra=extra,  # type: ignore[typeddict-item]
        use_attribute_docstrings=True,
        json_schema_extra=schema_extra or None,
    )


class _Spec(BaseModel):
    model_config = _config()


class _Status(BaseModel):
    """Status is written by the operator; unknown fields from newer operators are kept, not rejected."""

    model_config = _config(extra="ignore")


# --------------------------------------------------------------------------------------------- spec


SERVED_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
"""``model.servedName``: no ``:``, which SGLang reserves for ``model:adapter`` and asserts against at
start-up (``sglang/srt/arg_groups/validation_hook.py:213-219`` @ 0.5.23)."""


def _source_shapes(noun: str, hf_name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The CEL rules on the shape of a ``pvc://`` and an ``hf://`` ``source`` (a model's, an adapter's)."""
    return (
        cel(
            "!self.source.startsWith('pvc://') || self.source.matches('^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/.+$')",
            f"a pvc:// {noun} is pvc://CLAIM/path/in/volume",
            field_path=".source",
            reason="FieldValueInvalid",
        ),
        cel(
            "!self.source.startsWith('hf://') || self.source.matches('^hf://[^/]+/[^/]+$')",
            f"an hf:// {noun} is hf://ORGANISATION/{hf_name}",
            field_path=".source",
            reason="FieldValueInvalid",
        ),
    )


class ModelSource(_Spec):
    """Where the weights come from."""

    model_config = _config(
        cel(
            "self.source.matches('^(hf|s3|gs|pvc|oci)://.+$')",
            "source must be a URI with scheme hf://, s3://, gs://, pvc:// or oci://",
            field_path=".source",
            reason="FieldValueInvalid",
        ),
        *_source_shapes("source", "MODEL"),
    )

    source: Annotated[str, Field(max_length=1024)]
    """Model location: ``hf://ORG/MODEL``, ``s3://BUCKET/PATH``, ``gs://BUCKET/PATH``,
    ``pvc://CLAIM/PATH`` (mounted read-only) or ``oci://REGISTRY/IMAGE`` (a model image)."""
    revision: Annotated[str | None, Field(max_length=128)] = None
    """Model revision (branch, tag or commit) for ``hf://`` sources. Defaults to the engine's default (``main``)."""
    served_name: Annotated[str | None, Field(max_length=128, pattern=SERVED_NAME_PATTERN)] = None
    """Name clients use in the OpenAI ``model`` field. Defaults to ``metadata.name``. It has no ``:``,
    which SGLang reserves for ``model:adapter``."""
    credentials_secret: DNSSubdomain | None = None
    """Secret in the same namespace whose keys become the engine's environment (e.g. ``HF_TOKEN``,
    ``AWS_ACCESS_KEY_ID``)."""


class Adapter(_Spec):
    """A LoRA adapter served beside the base model, under its own name (docs/desired-state.md)."""

    model_config = _config(
        cel(
            "self.source.matches('^(hf|pvc)://.+$')",
            "an adapter's source is hf://ORGANISATION/ADAPTER or pvc://CLAIM/path/in/volume",
            field_path=".source",
            reason="FieldValueInvalid",
        ),
        *_source_shapes("adapter", "ADAPTER"),
        cel(
            "!has(self.revision) || self.source.startsWith('hf://')",
            "revision applies to hf:// adapters only",
            field_path=".revision",
            reason="FieldValueInvalid",
        ),
    )

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=SERVED_NAME_PATTERN)]
    """The name clients ask for in the OpenAI ``model`` field (with SGLang: ``SERVED:NAME``)."""
    source: Annotated[str, Field(max_length=1024)]
    """``hf://ORG/ADAPTER`` (downloaded by the engine) or ``pvc://CLAIM/PATH`` (mounted read-only)."""
    revision: Annotated[str | None, Field(max_length=128)] = None
    """Branch, tag or commit of an ``hf://`` adapter; TGI only (vLLM and SGLang download the default branch)."""
    rank: Annotated[int | None, Field(ge=1, le=512)] = None
    """The adapter's LoRA rank, when above the engine's default maximum (vLLM 16): sets ``--max-lora-rank``."""


class EngineKind(enum.StrEnum):
    """The serving engine."""

    VLLM = "vllm"
    """vLLM's OpenAI-compatible server (``vllm/vllm-openai``)."""
    TGI = "tgi"
    """Hugging Face Text Generation Inference."""
    SGLANG = "sglang"
    """SGLang's OpenAI-compatible server (``python3 -m sglang.launch_server``)."""


class EnvVar(_Spec):
    """An environment variable for the engine container (the core/v1 EnvVar shape)."""

    name: Annotated[str, Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=256)]
    """Variable name."""
    value: Annotated[str | None, Field(max_length=8192)] = None
    """Literal value."""
    value_from: Annotated[
        dict[str, Any] | None, Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    ] = None
    """A core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)."""


def _engine_flag_rules(rules: list[engine_flags.CelRule]) -> list[dict[str, str]]:
    return [cel(r.rule, r.message, field_path=r.field_path, reason=r.reason) for r in rules]


class Engine(_Spec):
    """The serving engine and how to run it."""

    # Flags slogate owns, per engine kind, in every exact spelling (core/engine_flags.py).
    model_config = _config(
        *_engine_flag_rules(engine_flags.engine_cel_rules(default_kind=EngineKind.VLLM.value)),
        at_least("startupTimeout", "1m", STARTUP_TIMEOUT_MESSAGE),
    )

    @field_validator("startup_timeout")
    @classmethod
    def _startup_timeout(cls, value: str | None) -> str | None:
        return None if value is None else _check_at_least(value, "1m", STARTUP_TIMEOUT_MESSAGE)

    kind: EngineKind = EngineKind.VLLM
    """``vllm``, ``tgi`` or ``sglang``. Defaults to ``vllm``."""
    image: Annotated[str | None, Field(max_length=512)] = None
    """Container image. Defaults to a pinned, tested image per kind (see docs/api.md)."""
    args: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(max_length=64)] = []
    """Extra engine arguments, appended after the ones slogate derives. A flag slogate derives from a
    spec field is rejected, with the field to set instead: the model, served name, parallelism, port
    and revision, and for SGLang ``--host`` and ``--enable-metrics``, which slogate always sets.
    ``--gpu-memory-utilization`` and ``--load-format`` (vLLM) replace slogate's value.
    ``--disable-log-stats`` and ``--custom-histogram-buckets`` (vLLM), the ``--bucket-*`` latency
    flags and ``--enable-metrics-for-all-schedulers`` (SGLang) are rejected while a feature needs the
    series they remove or reshape. With TGI an argument must not contain whitespace (the image's
    entrypoint splits it). See docs/engines.md."""
    env: Annotated[list[EnvVar], Field(max_length=64)] = []
    """Extra environment variables."""
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    """Port the engine listens on (HTTP API and ``/metrics``). Defaults to ``8000``."""
    tensor_parallel_size: Annotated[int | None, Field(ge=1, le=64)] = None
    """Tensor-parallel degree. Defaults to ``resources.gpu.count``; when smaller it must divide it and the
    remaining factor becomes pipeline parallelism (vLLM and SGLang; TGI shards over every GPU)."""
    startup_timeout: Annotated[Duration | None, Field(exclude_if=lambda v: v is None)] = None
    """How long the engine may take to download and load its weights before it must answer (the
    startup probe's window). Defaults to an estimate from the model's size and source, at least 30
    minutes (docs/desired-state.md, "Startup budget")."""


class GPU(_Spec):
    """GPU needs of one replica (one pod)."""

    model_config = _config(
        cel(
            "!has(self.resource) || !self.resource.startsWith('nvidia.com/mig-') || !has(self.count) || self.count == 1",
            "a MIG slice serves a replica from exactly one slice: count must be 1 with an nvidia.com/mig-* resource",
            field_path=".count",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.products) || self.products.all(p, self.products.exists_one(q, q == p))",
            "products must not repeat a GPU product",
            field_path=".products",
            reason="FieldValueDuplicate",
        ),
    )

    count: Annotated[int, Field(ge=1, le=16)] = 1
    """GPUs per replica, all on one node. Defaults to ``1``."""
    products: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=16)] = []
    """Acceptable GPU products as published by GPU Feature Discovery in ``nvidia.com/gpu.product``,
    preferred first. Empty accepts any product."""
    min_memory_gi_b: Annotated[int | None, Field(alias="minMemoryGiB", ge=1, le=4096)] = None
    """Minimum memory per GPU in GiB, matched against ``nvidia.com/gpu.memory`` (MiB)."""
    resource: Annotated[str, Field(max_length=253, pattern=r"^[a-z0-9.-]+/[a-z0-9.-]+$")] = "nvidia.com/gpu"
    """Extended resource to request: ``nvidia.com/gpu`` or a MIG profile such as ``nvidia.com/mig-3g.40gb``.
    Defaults to ``nvidia.com/gpu``."""


class TolerationOperator(enum.StrEnum):
    """core/v1 toleration operator."""

    EXISTS = "Exists"
    """Tolerates any value of the key."""
    EQUAL = "Equal"
    """Tolerates one value."""


class TaintEffect(enum.StrEnum):
    """core/v1 taint effect."""

    NO_SCHEDULE = "NoSchedule"
    """Pods that do not tolerate it are not scheduled."""
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    """The scheduler avoids the node."""
    NO_EXECUTE = "NoExecute"
    """Running pods that do not tolerate it are evicted."""


class Toleration(_Spec):
    """A core/v1 toleration."""

    key: Annotated[str | None, Field(max_length=317)] = None
    """Taint key; empty with operator Exists matches every taint."""
    operator: TolerationOperator = TolerationOperator.EQUAL
    """``Exists`` or ``Equal``. Defaults to ``Equal``."""
    value: Annotated[str | None, Field(max_length=63)] = None
    """Taint value for ``Equal``."""
    effect: TaintEffect | None = None
    """Effect to match; empty matches all effects."""
    toleration_seconds: int | None = None
    """For NoExecute: how long the pod stays bound after the taint appears."""


def _unset(value: Any) -> bool:
    """``exclude_if`` for an optional field added to a hashed section (``model``, ``engine``,
    ``resources``): left unset, it is not dumped, so ``naming.revision_of`` gives a spec written
    before the field existed the revision it had (an operator upgrade starts no rollout)."""
    return value is None


class Spread(_Spec):
    """How the replicas of one revision spread over nodes and zones, as scheduling preferences that
    never leave a pod pending (docs/desired-state.md)."""

    nodes: bool = True
    """Spread over nodes: a ``topologySpreadConstraints`` entry on ``kubernetes.io/hostname`` with
    ``whenUnsatisfiable: ScheduleAnyway``, so that one node's failure takes as few replicas as
    possible while GPUs can still be bin-packed when scarce. Defaults to ``true``."""
    zones: bool = True
    """Prefer zones without a replica of the revision: a preferred pod anti-affinity on
    ``topology.kubernetes.io/zone``, which leaves nodes without that label as they are. Defaults to ``true``."""
    max_skew: Annotated[int, Field(ge=1, le=1000)] = 1
    """Largest difference in replicas between two nodes that the node spread aims for. Defaults to ``1``."""


EPHEMERAL_STORAGE_MESSAGE = "ephemeralStorage must be greater than 0: it bounds the model cache (e.g. 200Gi)"


class Resources(_Spec):
    """Compute for one replica, and where it may run."""

    model_config = _config(
        cel(
            "!has(self.ephemeralStorage) || !self.ephemeralStorage.matches('^(0+(\\\\.0*)?|\\\\.0+)[a-zA-Z]*$')",
            EPHEMERAL_STORAGE_MESSAGE,
            field_path=".ephemeralStorage",
            reason="FieldValueInvalid",
        ),
    )

    @field_validator("ephemeral_storage")
    @classmethod
    def _ephemeral_storage(cls, value: str | None) -> str | None:
        if value is not None and parse_quantity(value) <= 0:
            raise ValueError(EPHEMERAL_STORAGE_MESSAGE)
        return value

    gpu: GPU | None = None
    """GPU needs; omit for a CPU-only replica (tests, tiny models)."""
    cpu: Quantity | None = None
    """CPU request and limit, e.g. ``8``. Defaults to ``4`` per GPU (``2`` without GPUs)."""
    memory: Quantity | None = None
    """Memory request and limit, e.g. ``64Gi``. Defaults to ``32Gi`` per GPU (``8Gi`` without GPUs)."""
    node_selector: Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=32)] = {}
    """Extra node selector."""
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = []
    """Extra tolerations; the ``nvidia.com/gpu`` taint is tolerated automatically when GPUs are requested."""
    ephemeral_storage: Annotated[Quantity | None, Field(exclude_if=_unset)] = None
    """Ephemeral-storage request and limit of the engine container, e.g. ``200Gi``: the node-local disk
    for the downloaded weights (the ``model-cache`` emptyDir, which may then use all of it), ``/tmp``
    (engine caches, at most 8Gi) and the container's writable layer and logs. Defaults to an estimate
    from the model: for ``hf://`` sources the parameter count in the model name (``8B``, ``70B``)
    times 2 bytes (1 with ``FP8``/``INT8``, 0.5 with ``AWQ``/``GPTQ``/``INT4`` in the name) plus 20%,
    else the memory of the replica's GPUs (the weights must fit in it); ``pvc://``, ``oci://``,
    ``s3://`` and ``gs://`` download no weights into the pod. See docs/desired-state.md."""
    spread: Annotated[Spread | None, Field(exclude_if=_unset)] = None
    """Spreading of each revision's replicas over nodes and zones. Defaults to a preferred spread
    over both; set ``nodes`` and ``zones`` to ``false`` to opt out."""


class AutoscalingProvider(enum.StrEnum):
    """What scales the stable track."""

    KEDA = "keda"
    """A KEDA ScaledObject with a Prometheus trigger (falls back to HPA when KEDA is not installed)."""
    HPA = "hpa"
    """An autoscaling/v2 HorizontalPodAutoscaler on a custom (Pods) metric."""


class AutoscalingMetric(enum.StrEnum):
    """Engine signal the autoscaler tracks, per replica."""

    QUEUE_DEPTH = "queueDepth"
    """Requests waiting for a batch slot (``vllm:num_requests_waiting``, ``tgi_queue_size``, ``sglang:num_queue_reqs``)."""
    KV_CACHE_USAGE = "kvCacheUsage"
    """KV-cache utilisation, 0..1 (``vllm:kv_cache_usage_perc``, ``sglang:token_usage``)."""
    RUNNING_REQUESTS = "runningRequests"
    """Requests in the running batch (``vllm:num_requests_running``, ``tgi_batch_current_size``,
    ``sglang:num_running_reqs``)."""


class Autoscaling(_Spec):
    """Horizontal autoscaling of the stable track. When set, ``spec.replicas`` is the initial size only."""

    model_config = _config(
        cel(
            "self.maxReplicas >= (has(self.minReplicas) ? self.minReplicas : 1)",
            "maxReplicas must be greater than or equal to minReplicas",
            field_path=".maxReplicas",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.provider) || self.provider != 'hpa' || !has(self.minReplicas) || self.minReplicas >= 1",
            "an HPA cannot scale to zero: minReplicas must be at least 1 with provider hpa (use keda)",
            field_path=".minReplicas",
            reason="FieldValueInvalid",
        ),
    )

    provider: AutoscalingProvider = AutoscalingProvider.KEDA
    """``keda`` or ``hpa``. Defaults to ``keda``; when KEDA is not installed an HPA is created and status says so."""
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Lower bound. Defaults to ``1``; ``0`` (scale to zero) needs KEDA."""
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    """Upper bound."""
    metric: AutoscalingMetric = AutoscalingMetric.QUEUE_DEPTH
    """``queueDepth``, ``kvCacheUsage`` or ``runningRequests``. Defaults to ``queueDepth``."""
    target: Quantity = "10"
    """Target value of the metric per replica (``0.8`` for kvCacheUsage). Defaults to ``10``."""


class SLIMetric(enum.StrEnum):
    """Built-in service level indicators, measured from the engine's own metrics."""

    TTFT = "ttft"
    """Time to first token (a latency percentile)."""
    LATENCY = "latency"
    """End-to-end request latency (a percentile)."""
    INTER_TOKEN_LATENCY = "interTokenLatency"
    """Time between output tokens (a percentile)."""
    ERROR_RATE = "errorRate"
    """Share of failed requests, in percent."""


class Objective(_Spec):
    """One SLO objective: a built-in SLI with a threshold, or a custom PromQL query with a threshold."""

    model_config = _config(
        cel(
            "has(self.metric) != has(self.query)",
            "an objective sets exactly one of metric (a built-in SLI) or query (custom PromQL)",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.query) || has(self.name)",
            "a custom query objective needs a name",
            field_path=".name",
            reason="FieldValueRequired",
        ),
        cel(
            "!has(self.metric) || self.metric == 'errorRate' || (has(self.percentile) && has(self.max))",
            "a latency objective (ttft, latency, interTokenLatency) needs percentile and max",
            reason="FieldValueRequired",
        ),
        cel(
            "!has(self.metric) || self.metric == 'errorRate' || !has(self.max) || self.max.matches('"
            + DURATION_CEL
            + "')",
            "max of a latency objective is a duration such as 500ms or 4s",
            field_path=".max",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.metric) || self.metric != 'errorRate' || (has(self.maxPercent) && !has(self.percentile))",
            "an errorRate objective takes maxPercent and no percentile",
            field_path=".maxPercent",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.maxPercent) || (has(self.metric) && self.metric == 'errorRate')",
            "maxPercent applies to the errorRate metric only",
            field_path=".maxPercent",
            reason="FieldValueForbidden",
        ),
        cel(
            "!has(self.query) || (has(self.max) && self.max.matches('^-?[0-9]+(\\\\.[0-9]+)?$'))",
            'a custom query objective needs max as a plain number, such as "0.9"',
            field_path=".max",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.percentile) || (double(self.percentile) > 0.0 && double(self.percentile) < 100.0)",
            "percentile must lie strictly between 0 and 100",
            field_path=".percentile",
            reason="FieldValueInvalid",
        ),
    )

    name: DNSLabel | None = None
    """Objective name, unique within the SLO. Defaults to the metric and percentile, e.g. ``ttft-p95``."""
    metric: SLIMetric | None = None
    """A built-in SLI: ``ttft``, ``latency``, ``interTokenLatency`` or ``errorRate``."""
    percentile: float | None = None
    """Percentile for latency SLIs, in (0, 100), e.g. ``95`` or ``99.9``."""
    max: Annotated[str | None, Field(max_length=64)] = None
    """Threshold: a duration for latency SLIs (``500ms``), a number for custom queries (``"0.9"``)."""
    max_percent: Annotated[float | None, Field(ge=0, le=100)] = None
    """Threshold for ``errorRate``, in percent (``1`` = 1% of requests may fail)."""
    query: Annotated[str | None, Field(max_length=4096)] = None
    """Custom PromQL returning one number; ``$revision``, ``$namespace`` and ``$window`` are substituted."""


class SLO(_Spec):
    """Service level objectives that gate rollouts and trigger fallback."""

    model_config = _config(
        cel(
            "self.objectives.all(o, !has(o.name) || self.objectives.exists_one(p, has(p.name) && p.name == o.name))",
            "objective names must be unique",
            field_path=".objectives",
            reason="FieldValueDuplicate",
        ),
        at_least("window", "0s", SLO_WINDOW_MESSAGE),
    )

    window: Duration = "5m"
    """Window over which each SLI is computed (``rate(...[window])``). Defaults to ``5m``."""
    min_requests: Annotated[int, Field(ge=0, le=10_000_000)] = 100
    """Fewer requests than this in the window make a measurement inconclusive. Defaults to ``100``."""
    objectives: Annotated[list[Objective], Field(min_length=1, max_length=16)]
    """The objectives; all must hold."""

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return _check_at_least(value, "0s", SLO_WINDOW_MESSAGE)


class Pause(_Spec):
    """A pause in a rollout."""

    duration: Duration | None = None
    """How long to wait. Omitted: a manual gate that waits until a person promotes."""


class Step(_Spec):
    """One rollout step: set the candidate's traffic weight, or pause."""

    model_config = _config(
        cel(
            "has(self.setWeight) != has(self.pause)",
            "a step sets exactly one of setWeight or pause",
            reason="FieldValueInvalid",
        ),
    )

    set_weight: Annotated[int | None, Field(ge=1, le=100)] = None
    """Percent of traffic to send to the candidate, 1..100."""
    pause: Pause | None = None
    """Wait for ``duration``, or for a person when no duration is given."""


class Strategy(enum.StrEnum):
    """How a new revision reaches users."""

    CANARY = "canary"
    """Shift traffic step by step while analysis runs."""
    BLUE_GREEN = "blueGreen"
    """Run the candidate at full size beside stable, analyse it on preview traffic, then switch at once."""
    SHADOW = "shadow"
    """Mirror live traffic to the candidate (responses discarded), analyse, then promote."""


class OnInconclusive(enum.StrEnum):
    """What to do when analysis cannot reach a verdict ``inconclusiveLimit`` times in a row."""

    PAUSE = "pause"
    """Hold the rollout for a person."""
    ROLLBACK = "rollback"
    """Treat it as a failure and roll back."""


class PrometheusRef(_Spec):
    """Prometheus to query for this ModelDeployment."""

    url: Annotated[str, Field(max_length=1024, pattern=r"^https?://.+$")]
    """Base URL, e.g. ``http://prometheus.monitoring:9090``."""


class Analysis(_Spec):
    """How the candidate is judged during a rollout."""

    model_config = _config(at_least("interval", "1s", ANALYSIS_INTERVAL_MESSAGE))

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return _check_at_least(value, "1s", ANALYSIS_INTERVAL_MESSAGE)

    interval: Duration = "1m"
    """Time between analysis runs. Defaults to ``1m``."""
    initial_delay: Duration = "2m"
    """No verdict before this long after the candidate became Ready (engine warm-up: cold KV cache,
    CUDA graph capture). Defaults to ``2m``."""
    failure_limit: Annotated[int, Field(ge=1, le=100)] = 2
    """Failed runs that trigger a rollback. Defaults to ``2``."""
    inconclusive_limit: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive inconclusive runs (too little traffic, Prometheus unreachable, no data) that trigger
    ``onInconclusive``. Defaults to ``3``."""
    on_inconclusive: OnInconclusive = OnInconclusive.PAUSE
    """``pause`` or ``rollback``. Defaults to ``pause``."""
    min_passing_runs: Annotated[int, Field(ge=1, le=100)] = 1
    """Passing runs a step needs before it completes, and a candidate before it is promoted. Only a
    run whose whole ``slo.window`` lies after the step began and after the warm-up
    (``initialDelay``) counts, so each step is judged on traffic it saw. A pause's duration is a
    minimum: a pause that ends without them waits on. Defaults to ``1``."""
    max_regression_percent: Annotated[float | None, Field(ge=0, le=1000)] = None
    """When set, a latency objective also fails if the candidate is worse than stable by more than this."""
    prometheus: PrometheusRef | None = None
    """Overrides the operator's Prometheus for this ModelDeployment."""


class GPUBudget(_Spec):
    """GPUs a rollout may use beyond what stable uses."""

    max_surge_gp_us: Annotated[int | None, Field(alias="maxSurgeGPUs", ge=0, le=1024)] = None
    """Extra GPUs the candidate may hold at once. Omitted: limited only by free capacity."""


class Router(enum.StrEnum):
    """How traffic is split between stable and candidate."""

    REPLICAS = "replicas"
    """One Service spans both tracks; the split follows the replica ratio (works on any cluster)."""
    GATEWAY_API = "gatewayAPI"
    """A Gateway API HTTPRoute with weighted backendRefs and RequestMirror filters."""
    INFERENCE_POOL = "inferencePool"
    """A Gateway API HTTPRoute whose weighted backendRefs are Gateway API Inference Extension
    InferencePools (``inference.networking.k8s.io/v1``), one per track."""


class ParentRef(_Spec):
    """A Gateway API parentRef (usually a Gateway)."""

    name: DNSSubdomain
    """Name of the parent."""
    namespace: DNSLabel | None = None
    """Namespace of the parent. Defaults to the ModelDeployment's."""
    section_name: DNSLabel | None = None
    """Listener name on the Gateway."""
    group: Annotated[str | None, Field(max_length=253)] = None
    """API group of the parent. Defaults to ``gateway.networking.k8s.io``."""
    kind: Annotated[str | None, Field(max_length=63)] = None
    """Kind of the parent. Defaults to ``Gateway``."""


class GatewayAPITraffic(_Spec):
    """Settings for the ``gatewayAPI`` router."""

    parent_refs: Annotated[list[ParentRef], Field(min_length=1, max_length=8)]
    """Gateways the HTTPRoute attaches to."""
    hostnames: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=16)] = []
    """Hostnames the route answers for."""


class FailureMode(enum.StrEnum):
    """What the gateway does when the endpoint picker does not answer (GIE v1.6.2
    ``api/v1/inferencepool_types.go``, ``EndpointPickerFailureMode``)."""

    FAIL_OPEN = "FailOpen"
    """Forward the request to an endpoint of the gateway's own choosing."""
    FAIL_CLOSE = "FailClose"
    """Drop the request."""


class AppProtocol(enum.StrEnum):
    """Protocol of an InferencePool's target ports (GIE v1.6.2 ``AppProtocol``)."""

    HTTP = "http"
    """HTTP/1.1."""
    H2C = "kubernetes.io/h2c"
    """HTTP/2 over cleartext."""


class EndpointPicker(_Spec):
    """The endpoint picker (EPP) each InferencePool calls. GIE allows an EPP exactly one pool (its
    ``--pool-name``), so the pool ``NAME-TRACK`` refers to the Service ``NAME-TRACK-epp`` unless
    ``name`` is given: run one EPP per track (``NAME-stable-epp``, ``NAME-canary-epp``)."""

    port: Annotated[int, Field(ge=1, le=65535)] = 9002
    """The EPP Service's port (not its target port). Defaults to ``9002``, the port GIE's examples use."""
    failure_mode: FailureMode = FailureMode.FAIL_CLOSE
    """``FailOpen`` or ``FailClose`` (GIE's default): what the gateway does when the EPP fails."""
    name: DNSLabel | None = None
    """One EPP Service for every pool of this ModelDeployment, for a picker that serves several
    pools. Omitted: ``NAME-TRACK-epp`` per pool, as GIE's one-pool-per-EPP rule needs."""


class InferencePoolTraffic(_Spec):
    """Settings for the ``inferencePool`` router."""

    parent_refs: Annotated[list[ParentRef], Field(min_length=1, max_length=8)]
    """Inference Gateways the HTTPRoute attaches to (kind ``Gateway``)."""
    hostnames: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=16)] = []
    """Hostnames the route answers for."""
    endpoint_picker: EndpointPicker | None = None
    """The endpoint picker the pools refer to (``endpointPickerRef``). Omitted: pools without one,
    which GIE v1.6 allows and most gateways still refuse (``EndpointPickerRefMissing`` in status)."""
    app_protocol: AppProtocol = AppProtocol.HTTP
    """The pools' ``appProtocol``. Defaults to ``http``."""


class Traffic(_Spec):
    """Traffic routing for rollouts."""

    model_config = _config(
        cel(
            "!has(self.router) || self.router != 'gatewayAPI' || has(self.gatewayAPI)",
            "router gatewayAPI needs gatewayAPI.parentRefs",
            field_path=".gatewayAPI",
            reason="FieldValueRequired",
        ),
        cel(
            "!has(self.router) || self.router != 'inferencePool' || has(self.inferencePool)",
            "router inferencePool needs inferencePool.parentRefs: the Inference Gateway the HTTPRoute"
            " attaches to (set inferencePool.parentRefs[0].name to your Gateway)",
            field_path=".inferencePool",
            reason="FieldValueRequired",
        ),
        cel(
            "!has(self.inferencePool) || self.inferencePool.parentRefs.all(p,"
            " (!has(p.kind) || p.kind == 'Gateway') && (!has(p.group) || p.group == 'gateway.networking.k8s.io'))",
            "inferencePool.parentRefs must be Gateways (kind Gateway, group gateway.networking.k8s.io):"
            " InferencePools are served by an Inference Gateway; drop kind and group or set them to those",
            field_path=".inferencePool.parentRefs",
            reason="FieldValueInvalid",
        ),
    )

    router: Router = Router.REPLICAS
    """``replicas``, ``gatewayAPI`` or ``inferencePool``. Defaults to ``replicas``."""
    gateway_api: Annotated[GatewayAPITraffic | None, Field(alias="gatewayAPI")] = None
    """HTTPRoute settings for the ``gatewayAPI`` router."""
    inference_pool: InferencePoolTraffic | None = None
    """HTTPRoute and InferencePool settings for the ``inferencePool`` router."""


class Rollout(_Spec):
    """How a new revision is rolled out."""

    model_config = _config(
        cel(
            "!has(self.steps) || self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()"
            " && self.steps.filter(s, has(s.setWeight)).all(s,"
            " self.steps.exists_one(t, has(t.setWeight) && t.setWeight == s.setWeight))",
            "setWeight must increase from step to step",
            field_path=".steps",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.strategy) || self.strategy != 'shadow'"
            " || (has(self.traffic) && has(self.traffic.router)"
            " && (self.traffic.router == 'gatewayAPI' || self.traffic.router == 'inferencePool'))",
            "strategy shadow mirrors traffic through an HTTPRoute: it requires traffic.router gatewayAPI",
            field_path=".strategy",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.strategy) || self.strategy != 'shadow' || !has(self.traffic)"
            " || !has(self.traffic.router) || self.traffic.router != 'inferencePool'",
            "strategy shadow is not supported with traffic.router inferencePool: no conformant Inference"
            " Gateway (Istio, Agentgateway, NGINX Gateway Fabric) mirrors to an InferencePool; use"
            " router gatewayAPI for a shadow, or strategy canary with a small first setWeight",
            field_path=".strategy",
            reason="FieldValueInvalid",
        ),
        cel(
            "(has(self.strategy) && self.strategy != 'canary') || !has(self.steps) || size(self.steps) == 0"
            " || self.steps.exists(s, has(s.setWeight))",
            "strategy canary needs a setWeight step: at weight 0 the candidate runs no pods and cannot be"
            " judged (use blueGreen to analyse it at full size and switch at once)",
            field_path=".steps",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.strategy) || self.strategy != 'blueGreen' || !has(self.steps)"
            " || self.steps.all(s, !has(s.setWeight))",
            "strategy blueGreen switches all traffic at once: its steps can only be pauses",
            field_path=".steps",
            reason="FieldValueInvalid",
        ),
    )

    strategy: Strategy = Strategy.CANARY
    """``canary``, ``blueGreen`` or ``shadow``. Defaults to ``canary``."""
    steps: Annotated[list[Step], Field(max_length=32)] = []
    """Steps in order. Empty for canary: ``setWeight 10, pause 5m, setWeight 50, pause 5m``."""
    analysis: Analysis = Analysis()
    """How the candidate is judged."""
    gpu_budget: Annotated[GPUBudget, Field(alias="gpuBudget")] = GPUBudget()
    """GPU headroom a rollout may use."""
    auto_rollback: bool = True
    """Roll back on its own when analysis fails. Defaults to ``true``; ``false`` pauses instead."""
    traffic: Traffic = Traffic()
    """Traffic routing."""


class ServiceRef(_Spec):
    """A Service serving an OpenAI-compatible API."""

    name: DNSLabel
    """Service name."""
    namespace: DNSLabel | None = None
    """Namespace. Defaults to the ModelDeployment's."""
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    """Service port. Defaults to ``80``."""


class FallbackTarget(_Spec):
    """One fallback tier: another ModelDeployment or a Service."""

    model_config = _config(
        cel(
            "has(self.modelDeployment) != has(self.service)",
            "a fallback target sets exactly one of modelDeployment or service",
            reason="FieldValueInvalid",
        ),
    )

    model_deployment: DNSLabel | None = None
    """Another ModelDeployment in the same namespace; it also answers to this one's served name."""
    service: ServiceRef | None = None
    """A Service (for example an external provider behind an ExternalName Service)."""


class Fallback(_Spec):
    """What serves traffic when this model breaches its SLO or cannot run."""

    targets: Annotated[list[FallbackTarget], Field(min_length=1, max_length=4)]
    """Ordered tiers; the first healthy one takes traffic."""
    after: Duration = "2m"
    """How long a breach (or no ready replica) must last before falling back. Defaults to ``2m``."""
    restore_after: Duration = "10m"
    """How long the primary must be healthy again before traffic returns (hysteresis). Defaults to ``10m``."""


class Budget(_Spec):
    """A cost limit: the ``OverBudget`` condition warns when the estimate exceeds it (docs/cost.md)."""

    model_config = _config(
        cel(
            "!self.maxCostPerMillionTokens.matches('^0*(\\\\.0*)?$')",
            "maxCostPerMillionTokens must be greater than 0",
            field_path=".maxCostPerMillionTokens",
            reason="FieldValueInvalid",
        ),
    )

    max_cost_per_million_tokens: Annotated[str, Field(max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?$")]
    """Most the model may cost per million generated tokens, as a decimal string such as ``"2.50"``,
    in the price table's currency. Compared with ``status.cost.perMillionTokens``."""
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$")] = None
    """ISO 4217 code the budget is in, e.g. ``USD``. When set and different from the price table's
    currency, ``OverBudget`` is ``Unknown`` (reason ``CurrencyMismatch``) rather than compared."""


class InputDrift(_Spec):
    """Input drift detection: the request mix (prompt and generation length distributions) compared
    with the baseline recorded when the stable revision was promoted (docs/drift.md)."""

    model_config = _config(at_least("window", "0s", DRIFT_WINDOW_MESSAGE))

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return _check_at_least(value, "0s", DRIFT_WINDOW_MESSAGE)

    enabled: bool = True
    """Compare the request mix with its baseline and report ``InputDrift``. Defaults to ``true``."""
    window: Duration = "1h"
    """Window the length distributions are taken over, for the baseline and for each check. A
    baseline is recorded only once the ModelDeployment has been ``Available`` for a whole window.
    Defaults to ``1h``."""
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.2
    """Largest Kolmogorov-Smirnov distance (0..1) between baseline and now, in either dimension,
    that still counts as the same mix. Defaults to ``0.2``; once drifting, the mix is back only at
    or below 75% of it."""
    min_requests: Annotated[int, Field(ge=1, le=10_000_000)] = 200
    """Fewer requests than this in the window give no verdict and record no baseline. Defaults to ``200``."""


class NetworkPolicy(_Spec):
    """The NetworkPolicy ``NAME`` that limits who reaches the engine pods' port (the OpenAI API and
    ``/metrics``, unauthenticated). Egress is not limited (weights download from the Hub or object
    storage). See docs/desired-state.md."""

    enabled: bool = True
    """Build the NetworkPolicy. Defaults to ``true``; ``false`` leaves the pods open to every pod
    of the cluster (the operator deletes a policy it built before)."""
    allow_same_namespace: bool = True
    """Admit every pod of the ModelDeployment's own namespace. Defaults to ``true``."""
    allow_namespaces: Annotated[list[DNSLabel], Field(max_length=32)] = []
    """Further namespaces whose pods may connect: the gateway's data plane when it runs outside the
    Gateway's namespace, Prometheus when the operator's URL does not name its namespace, direct
    callers in other namespaces."""
    allow_from: Annotated[
        list[
            Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]
        ],
        Field(max_length=32),
    ] = []
    """Further peers as written, each a networking.k8s.io/v1 ``NetworkPolicyPeer`` (``podSelector``,
    ``namespaceSelector``, both, or ``ipBlock``)."""


class Observability(_Spec):
    """What the operator watches beyond the SLOs."""

    input_drift: InputDrift = InputDrift()
    """Input drift detection; on by default."""


QUALITY_TIMEOUT_MESSAGE = "timeout must be at least 1s: each sample waits this long for its answer (e.g. 60s)"
PROBE_INTERVAL_MESSAGE = "interval must be at least 10s: each probe asks every case samples times (e.g. 10m)"


class QualitySuiteRef(_Spec):
    """One evaluation suite (docs/quality.md): a ConfigMap in the ModelDeployment's namespace whose
    ``key`` holds the suite, how many times each case is asked, and the pass rate it must reach."""

    name: DNSLabel
    """The suite's name in status, Events, metrics (``suite`` label) and ``probe.suites``."""
    config_map: DNSSubdomain
    """The ConfigMap holding the suite (same namespace)."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = "suite.yaml"
    """The ConfigMap key. Defaults to ``suite.yaml``."""
    samples: Annotated[int, Field(ge=1, le=100)] = 3
    """Times each case is asked per run (answers vary with sampling: one sample flaps). Defaults to ``3``."""
    min_pass_rate: Annotated[float, Field(ge=0, le=1)]
    """Share of samples (0..1) that must pass all their checks. The verdict is Pass only when the
    whole confidence interval is at or above it, Fail when the whole interval is below it."""
    max_regression: Annotated[float | None, Field(ge=0, le=1)] = None
    """When set, stable is asked the same cases too, and the candidate fails when its pass rate is
    below stable's by more than this (0..1, e.g. ``0.05``), both as confidence intervals. Gates only."""


class QualityGates(_Spec):
    """When the suites judge a rollout's candidate."""

    model_config = _config(
        cel(
            "!has(self.atSteps) || self.atSteps.all(n, self.atSteps.exists_one(m, m == n))",
            "atSteps must not repeat a step",
            field_path=".atSteps",
            reason="FieldValueDuplicate",
        ),
    )

    pre_traffic: bool = True
    """Judge the candidate before it receives any traffic: it runs (one replica for a canary, its
    full copy for blue-green), the root Service and routes keep it out, and nothing else happens
    until the gate passes. Defaults to ``true``."""
    at_steps: Annotated[list[Annotated[int, Field(ge=1, le=32)]], Field(max_length=32)] = []
    """Step numbers (1-based, as ``kubectl get mdep`` shows them) that do not complete until the
    suites pass again on the candidate at that step's traffic, after the step's own condition."""


class QualityProbe(_Spec):
    """Quality in production: the suites asked of the stable revision on an interval."""

    model_config = _config(at_least("interval", "10s", PROBE_INTERVAL_MESSAGE))

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return _check_at_least(value, "10s", PROBE_INTERVAL_MESSAGE)

    interval: Duration = "10m"
    """Time between probe runs. Defaults to ``10m``."""
    suites: Annotated[list[DNSLabel], Field(max_length=8)] = []
    """Names of the suites to probe with; empty: all of ``quality.suites``."""
    trigger_fallback: bool = True
    """A failing probe makes the primary unhealthy for ``spec.fallback`` like an SLO breach (it
    returns once a probe passes and ``restoreAfter`` has passed). Defaults to ``true``."""


class QualityJudge(_Spec):
    """The model that scores the suites' ``judge`` checks: another ModelDeployment of the namespace."""

    model_deployment: DNSLabel
    """Its name; it is asked through its root Service under its served name."""
    samples: Annotated[int, Field(ge=1, le=9)] = 3
    """Scores asked per answer; the median decides (one score flaps). Defaults to ``3``."""


class Quality(_Spec):
    """Quality gates and the production probe (docs/quality.md)."""

    model_config = _config(
        cel(
            "self.suites.all(s, self.suites.exists_one(t, t.name == s.name))",
            "suite names must be unique",
            field_path=".suites",
            reason="FieldValueDuplicate",
        ),
        cel(
            "!has(self.probe) || !has(self.probe.suites)"
            " || self.probe.suites.all(n, self.suites.exists(s, s.name == n))",
            "probe.suites must name suites listed in quality.suites",
            field_path=".probe.suites",
            reason="FieldValueInvalid",
        ),
        at_least("timeout", "1s", QUALITY_TIMEOUT_MESSAGE),
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        return _check_at_least(value, "1s", QUALITY_TIMEOUT_MESSAGE)

    suites: Annotated[list[QualitySuiteRef], Field(min_length=1, max_length=8)]
    """The suites; a gate passes when every suite passes."""
    gates: QualityGates = QualityGates()
    """When a rollout's candidate is judged. Defaults to a pre-traffic gate."""
    probe: QualityProbe | None = None
    """Judge stable in production too; omitted: no probe."""
    judge: QualityJudge | None = None
    """Who scores ``judge`` checks; a suite with judge checks and no judge is Inconclusive."""
    confidence: Annotated[float, Field(ge=0.5, le=0.999)] = 0.95
    """Confidence level of the Wilson interval verdicts are decided on. Defaults to ``0.95``."""
    max_error_share: Annotated[float, Field(ge=0, le=1)] = 0.2
    """More samples than this share without an answer (refused, timed out, HTTP error) make a run
    Inconclusive. Defaults to ``0.2``."""
    concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    """Requests in flight per run of this ModelDeployment. Defaults to ``4``."""
    timeout: Duration = "60s"
    """How long one sample waits for its answer. Defaults to ``60s``."""


class ModelDeploymentSpec(_Spec):
    """Desired state of a served model."""

    model_config = _config(
        cel(
            "!has(self.engine) || !has(self.engine.tensorParallelSize)"
            " || (has(self.resources) && has(self.resources.gpu)"
            " && (has(self.resources.gpu.count) ? self.resources.gpu.count : 1) % self.engine.tensorParallelSize == 0)",
            "engine.tensorParallelSize must divide resources.gpu.count",
            field_path=".engine.tensorParallelSize",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.engine) || !has(self.engine.kind) || self.engine.kind != 'tgi' || !has(self.engine.tensorParallelSize)"
            " || !has(self.resources) || !has(self.resources.gpu) || !has(self.resources.gpu.count)"
            " || self.engine.tensorParallelSize == self.resources.gpu.count",
            "TGI shards over every GPU of the pod: tensorParallelSize must equal resources.gpu.count",
            field_path=".engine.tensorParallelSize",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.autoscaling) || !has(self.autoscaling.metric) || self.autoscaling.metric != 'kvCacheUsage'"
            " || !has(self.engine) || !has(self.engine.kind) || self.engine.kind != 'tgi'",
            "TGI exports no KV-cache usage metric: use queueDepth or runningRequests with engine tgi",
            field_path=".autoscaling.metric",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.fallback) || !has(self.rollout) || !has(self.rollout.traffic)"
            " || !has(self.rollout.traffic.router) || self.rollout.traffic.router != 'inferencePool'"
            " || self.fallback.targets.all(t, !has(t.service))",
            "fallback.targets[].service cannot be used with rollout.traffic.router inferencePool: an"
            " InferencePool backend selects pods, not a Service; make the tier a modelDeployment (its"
            " stable InferencePool takes the traffic) or use router gatewayAPI",
            field_path=".fallback.targets",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.quality) || !has(self.quality.gates) || !has(self.quality.gates.atSteps)"
            " || self.quality.gates.atSteps.all(n, n <= ("
            "has(self.rollout) && has(self.rollout.steps) && size(self.rollout.steps) > 0"
            " ? size(self.rollout.steps)"
            " : (!has(self.rollout) || !has(self.rollout.strategy) || self.rollout.strategy == 'canary' ? 4"
            " : (self.rollout.strategy == 'shadow' ? 1 : 0))))",
            "quality.gates.atSteps names a step the rollout does not have: steps are numbered from 1"
            " (without rollout.steps, canary has 4, shadow 1 and blueGreen none)",
            field_path=".quality.gates.atSteps",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.adapters) || self.adapters.all(a, self.adapters.exists_one(b, b.name == a.name))",
            "adapters[].name must be unique: each is a served name",
            field_path=".adapters",
            reason="FieldValueDuplicate",
        ),
        cel(
            "!has(self.adapters) || !has(self.model.servedName)"
            " || self.adapters.all(a, a.name != self.model.servedName)",
            "adapters[].name must differ from model.servedName: clients ask for the base model by that name",
            field_path=".adapters",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.adapters) || (has(self.engine) && has(self.engine.kind) && self.engine.kind == 'tgi')"
            " || self.adapters.all(a, !has(a.revision))",
            "adapters[].revision needs engine tgi: vLLM and SGLang download an hf:// adapter at its default"
            " branch (vllm/lora/utils.py get_adapter_absolute_path @ v0.33.0, sglang/srt/lora/lora_config.py:80-91"
            " @ 0.5.23); put a pinned adapter on a PVC instead",
            field_path=".adapters",
            reason="FieldValueInvalid",
        ),
        cel(
            "!has(self.adapters) || !has(self.engine) || !has(self.engine.kind) || self.engine.kind != 'tgi'"
            " || self.adapters.all(a, !a.source.startsWith('hf://') || 'hf://' + a.name == a.source)",
            "with engine tgi an hf:// adapter answers to its Hub id (adapter_id, router/src/lib.rs:1031 @ v3.3.7):"
            " set adapters[].name to ORGANISATION/ADAPTER, or serve it from a PVC under any name",
            field_path=".adapters",
            reason="FieldValueInvalid",
        ),
        # engine.args that would remove or reshape the series a feature needs (core/engine_flags.py).
        *_engine_flag_rules(engine_flags.spec_cel_rules(default_kind=EngineKind.VLLM.value)),
    )

    model: ModelSource
    """The model to serve."""
    engine: Engine = Engine()
    """The serving engine."""
    resources: Resources = Resources()
    """Compute per replica."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Stable replicas when not autoscaled. Defaults to ``1``."""
    autoscaling: Autoscaling | None = None
    """Horizontal autoscaling; omitted means a fixed ``replicas``."""
    slo: SLO | None = None
    """Service level objectives. Without them rollouts are not analysed (promotion follows the steps)."""
    rollout: Rollout = Rollout()
    """Progressive delivery of new revisions."""
    fallback: Fallback | None = None
    """Fallback tiers."""
    budget: Budget | None = None
    """Cost limit; omitted means no ``OverBudget`` condition."""
    observability: Observability = Observability()
    """Input drift detection and its settings."""
    network_policy: NetworkPolicy = NetworkPolicy()
    """Who may reach the engine pods: a NetworkPolicy, on by default."""
    quality: Quality | None = None
    """Evaluation suites that gate rollouts and probe stable in production; omitted: none."""
    adapters: Annotated[list[Adapter], Field(max_length=16)] = []
    """LoRA adapters served beside the base model, each under its own name. A change of adapters is
    a new revision, rolled out and analysed like any other."""


# ------------------------------------------------------------------------------------------- status


class ConditionStatus(enum.StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    """The condition holds."""
    FALSE = "False"
    """The condition does not hold."""
    UNKNOWN = "Unknown"
    """Not known yet."""


class Condition(_Status):
    """metav1.Condition."""

    type: Annotated[str, Field(max_length=316)]
    """Condition type in CamelCase (``Ready``, ``Available``, ``Progressing``, ``Degraded``, ...)."""
    status: ConditionStatus
    """``True``, ``False`` or ``Unknown``."""
    observed_generation: int | None = None
    """The ``metadata.generation`` the condition was computed from."""
    last_transition_time: str
    """When the status last changed (RFC 3339)."""
    reason: Annotated[str, Field(max_length=1024)]
    """Machine-readable CamelCase reason an SRE can grep."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable detail."""


class Phase(enum.StrEnum):
    """Summary of where a ModelDeployment stands; derived from its conditions."""

    PENDING = "Pending"
    """Accepted, nothing Ready yet."""
    PROGRESSING = "Progressing"
    """A rollout is under way."""
    PAUSED = "Paused"
    """A rollout waits for a person."""
    READY = "Ready"
    """Stable serves, no rollout."""
    ROLLED_BACK = "RolledBack"
    """The last candidate was rolled back; stable serves."""
    DEGRADED = "Degraded"
    """Serving, but below its SLO or with too few replicas."""
    FALLBACK = "Fallback"
    """Traffic is on a fallback tier."""
    FAILED = "Failed"
    """Cannot run (invalid spec, no GPUs anywhere)."""


class Verdict(enum.StrEnum):
    """Outcome of a measurement or an analysis run."""

    PASS = "Pass"
    """Within the objective."""
    FAIL = "Fail"
    """Breaches the objective."""
    INCONCLUSIVE = "Inconclusive"
    """No verdict: too little traffic, no data, or Prometheus unreachable. Never a pass."""


class ObjectiveResult(_Status):
    """One objective measured once."""

    name: str
    """Objective name."""
    value: str | None = None
    """Measured value, formatted with its unit (``612ms``, ``0.4%``); empty when there was no data."""
    threshold: str
    """The threshold it was compared with."""
    verdict: Verdict
    """Pass, Fail or Inconclusive."""
    message: str = ""
    """Why, in words (e.g. ``42 requests < minRequests 100``)."""


class AnalysisStatus(_Status):
    """The latest analysis run and the counters the rollout decisions use."""

    time: str
    """When it ran (RFC 3339)."""
    revision: str
    """The revision analysed."""
    verdict: Verdict
    """The run's verdict."""
    results: Annotated[list[ObjectiveResult], Field(max_length=32)] = []
    """Per objective."""
    failures: int = 0
    """Failed runs in this rollout."""
    consecutive_inconclusive: int = 0
    """Inconclusive runs in a row."""
    passing_runs: int = 0
    """Passing runs that count as evidence for the current step (their whole window after the step
    began and after the warm-up); the step needs ``analysis.minPassingRuns``."""


class HistoryEntry(_Status):
    """One finished rollout."""

    revision: str
    """The candidate revision."""
    outcome: str
    """``Promoted``, ``RolledBack`` or ``Aborted``."""
    time: str
    """When it ended (RFC 3339)."""
    reason: str = ""
    """Why, in words."""


class FallbackStatus(_Status):
    """Where traffic goes when the primary cannot serve."""

    active: bool = False
    """Whether a fallback tier takes traffic."""
    target: str | None = None
    """The active tier (``modelDeployment/NAME`` or ``service/NAME``)."""
    since: str | None = None
    """When it became active, or when the primary started breaching (RFC 3339)."""
    reason: str = ""
    """Why."""
    unhealthy_since: str | None = None
    """When the primary started breaching or lost its last ready replica (RFC 3339)."""
    healthy_since: str | None = None
    """While fallback is active: when the primary became healthy again (RFC 3339)."""


class CostStatus(_Status):
    """Estimated running cost of the GPUs the ModelDeployment's running pods hold (docs/cost.md)."""

    gpus: int = 0
    """GPUs held by running pods (a MIG slice counts as one)."""
    per_hour: str | None = None
    """Estimated cost per hour, in ``currency``: each GPU at its product's price, a MIG slice at its
    share of the parent GPU."""
    per_million_tokens: str | None = None
    """Cost per million generated tokens; absent without traffic. From ``source``: OpenCost's
    ``llm_cost_per_million_tokens``, or ``perHour`` over the token rate of ``window``. Rewritten
    only when it moves by more than 5% and is at least 5 minutes old, or its source changed."""
    currency: str | None = None
    """ISO 4217 code of the price table."""
    window: str | None = None
    """Window the token rate is averaged over: ``slo.window``, else ``5m``."""
    source: str | None = None
    """Where ``perMillionTokens`` comes from. ``opencost``: OpenCost's
    ``llm_cost_per_million_tokens`` (cost basis ``allocation``, phase ``generation``) for the
    ``llm-d.ai/model`` label value all running pods carry. ``estimate``: the price table and the
    generated-token rate (``perHour`` is always the price table's)."""
    source_detail: str | None = None
    """The OpenCost series used (a PromQL selector), or why OpenCost's price was not used although
    the pods carry ``llm-d.ai/model`` (unlabelled pods, several values, pods of other workloads with
    the same value, no series, a value of 0). Absent when no running pod carries the label."""
    time: str | None = None
    """When these numbers were last rewritten (RFC 3339)."""


class InputBaseline(_Status):
    """The request mix recorded when the stable revision was promoted, or at the first check with
    enough traffic after it (docs/drift.md)."""

    revision: str
    """The stable revision it was recorded for; a new promotion replaces it."""
    recorded_at: str
    """When it was recorded (RFC 3339)."""
    window: str
    """Window it was taken over."""
    requests: int
    """Requests in that window."""
    prompt: Annotated[
        list[Annotated[list[str], Field(min_length=2, max_length=2)]], Field(max_length=128)
    ] = []
    """Prompt length distribution: ``[upper bound in tokens, fraction of requests at or below it]``,
    ascending, trimmed to one point at 0 and one at 1."""
    generation: Annotated[
        list[Annotated[list[str], Field(min_length=2, max_length=2)]], Field(max_length=128)
    ] = []
    """Generated length distribution, in the same form."""


class RolloutStatus(_Status):
    """Rollout bookkeeping that must survive an operator restart."""

    paused_reason: str | None = None
    """Why the rollout waits (a manual gate, a person, inconclusive analysis), and what to run next."""
    outcome: str | None = None
    """``RolledBack`` or ``Aborted`` when the last rollout ended that way."""
    outcome_message: str | None = None
    """Why it ended that way: the objective, value and threshold that failed."""
    promoting: bool | None = None
    """The candidate is being scaled to full size to become stable."""
    promoted_by_person: bool | None = None
    """``slogate promote --full`` skipped the remaining steps (the promotion is counted as manual)."""
    last_command_id: str | None = None
    """Id of the last person's command applied (commands are applied once)."""
    waiting_for: str | None = None
    """What the current step waits for before it can complete (a passing analysis, with the last
    verdict and why), when its own condition (weight Ready, pause duration) is already met."""


class FailingCase(_Status):
    """A case that failed, with one answer (truncated) and the checks it failed."""

    case: str
    """The case's name (or ``case-INDEX``)."""
    failed: Annotated[list[str], Field(max_length=16)] = []
    """The failed checks, in words."""
    answer: Annotated[str, Field(max_length=512)] = ""
    """The start of one failing answer (at most 200 characters), or the error when none came."""
    samples: str = ""
    """``passed/asked`` for this case."""


class SuiteResult(_Status):
    """One suite asked of one revision."""

    name: str
    """The suite (``quality.suites[].name``)."""
    revision: str
    """The revision asked."""
    verdict: Verdict
    """Pass, Fail or Inconclusive."""
    pass_rate: str | None = None
    """Passed share of the answered samples (``93.3%``)."""
    interval: str | None = None
    """The confidence interval the verdict was decided on (``85.1%..97.2%``)."""
    samples: int = 0
    """Samples asked."""
    errors: int = 0
    """Samples without an answer."""
    stable_pass_rate: str | None = None
    """Stable's pass rate on the same cases (``maxRegression``)."""
    message: str = ""
    """Why, in words."""
    failing_cases: Annotated[list[FailingCase], Field(max_length=5)] = []
    """A few failing cases (at most 3), never the whole payload."""


class QualityRun(_Status):
    """One run of the suites."""

    time: str
    """When it finished (RFC 3339)."""
    revision: str
    """The revision judged."""
    gate: str | None = None
    """The gate it was for (``preTraffic``, ``step 2``); empty for a probe."""
    verdict: Verdict
    """Fail if any suite failed, else Inconclusive if any was, else Pass."""
    duration_seconds: float | None = None
    """How long the run took."""
    suites: Annotated[list[SuiteResult], Field(max_length=8)] = []
    """Per suite."""


class QualityGateStatus(_Status):
    """The quality gates of the current rollout: state that must survive an operator restart."""

    revision: str
    """The candidate."""
    gate: str | None = None
    """The gate the rollout holds at now (``preTraffic``, ``step 2``); empty between gates."""
    passed: Annotated[list[str], Field(max_length=40)] = []
    """Gates passed (or released by a person) in this rollout."""
    runs: int = 0
    """Runs recorded in this rollout (a result is recorded once: its run number must match)."""
    failures: int = 0
    """Failed runs in this rollout (against ``analysis.failureLimit``)."""
    consecutive_inconclusive: int = 0
    """Inconclusive runs in a row (against ``analysis.inconclusiveLimit``)."""
    last_run: QualityRun | None = None
    """The latest run."""


class QualityProbeStatus(_Status):
    """The production probe of the stable revision."""

    last_run: QualityRun | None = None
    """The latest probe run."""


class ModelDeploymentStatus(_Status):
    """Observed state, written only by the operator."""

    observed_generation: int | None = None
    """The ``metadata.generation`` this status describes."""
    phase: Phase | None = None
    """Summary; derived from the conditions."""
    conditions: Annotated[
        list[Condition],
        Field(
            max_length=32,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = []
    """Standard conditions."""
    stable_revision: str | None = None
    """Revision serving users."""
    canary_revision: str | None = None
    """Candidate revision during a rollout."""
    canary_weight: int | None = None
    """Percent of traffic on the candidate."""
    current_step: int | None = None
    """Index of the current rollout step."""
    step_started_at: str | None = None
    """When the current step began (RFC 3339); pause durations count from here."""
    rollout_started_at: str | None = None
    """When the current rollout began (RFC 3339)."""
    candidate_ready_at: str | None = None
    """When the candidate became Ready (RFC 3339); analysis waits ``initialDelay`` from here."""
    replicas: int | None = None
    """Pods of all tracks."""
    ready_replicas: int | None = None
    """Ready pods of all tracks."""
    ready: str | None = None
    """``ready/desired`` for ``kubectl get``."""
    slo_verdict: Verdict | None = None
    """Latest SLO verdict for ``kubectl get``."""
    last_analysis: AnalysisStatus | None = None
    """The latest analysis run."""
    rollout: RolloutStatus | None = None
    """Rollout bookkeeping."""
    rejected_revisions: Annotated[list[str], Field(max_length=64)] = []
    """Revisions rolled back; not retried until the spec changes again or a person retries."""
    history: Annotated[list[HistoryEntry], Field(max_length=64)] = []
    """Finished rollouts, newest last (bounded)."""
    fallback: FallbackStatus | None = None
    """Fallback state."""
    cost: CostStatus | None = None
    """Cost estimate."""
    quality_gate: QualityGateStatus | None = None
    """The current rollout's quality gates."""
    quality_probe: QualityProbeStatus | None = None
    """The production quality probe of stable."""
    input_baseline: InputBaseline | None = None
    """The request-mix baseline ``InputDrift`` compares with."""
    autoscaler: str | None = None
    """The autoscaler in use (``keda`` or ``hpa``) and why, when it differs from the spec."""
    message: str | None = None
    """The most important thing to know now, in one line."""


class ObjectMeta(BaseModel):
    """The parts of metadata that validation looks at; everything else passes through."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] | None = None
    """Name, a DNS label; at most 53 characters (a CEL rule) so that ``NAME-REVISION`` children stay within 63."""
    namespace: str | None = None


class ModelDeployment(BaseModel):
    """A served model, its SLOs, how new versions roll out and what serves when it cannot."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "size(self.metadata.name) <= 53",
                    "metadata.name must be at most 53 characters so that NAME-REVISION children fit in 63",
                    reason="FieldValueInvalid",
                ),
                cel(
                    "!has(self.spec.fallback) || self.spec.fallback.targets.all(t,"
                    " !has(t.modelDeployment) || t.modelDeployment != self.metadata.name)",
                    "a fallback target cannot be the ModelDeployment itself",
                    field_path=".spec.fallback.targets",
                    reason="FieldValueInvalid",
                ),
            ]
        },
    )

    api_version: str = "slogate.io/v1alpha1"
    kind: str = "ModelDeployment"
    metadata: ObjectMeta = ObjectMeta()
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None
