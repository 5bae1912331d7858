"""What a ModelDeployment costs: the GPU price table, cost per hour and per million tokens. Pure.

Issue 7 ("Observability and cost by design") asks for ``status.cost``: the GPUs running pods hold,
their price per hour from a price table, and the cost per million generated tokens over the SLO
window. Everything that decides is here as plain data in, plain data out, so the money maths, the
MIG rule and the rule that keeps the status from churning are tested as tables (docs/cost.md).
The controller reads the price file at start-up (``parse_price_table`` says what is wrong with it),
lists pods and nodes, asks Prometheus the queries ``namespace_tokens_queries`` builds (once per
namespace for all its ModelDeployments), and writes what
``cost_status`` and ``budget_condition`` return. Issue 18: where OpenCost exports
``llm_cost_per_million_tokens`` for the pods (``opencost_query``, ``opencost_price``), that is the
cost per million tokens, and ``status.cost.source`` says so.

Money is ``Decimal`` throughout: prices are written as decimal strings and summing binary floats
would print ``12.000000000000002``. Only the exported metrics are floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from slogate import constants as C
from slogate.api.types import format_duration, parse_duration
from slogate.api.v1alpha1 import Budget, EngineKind, ModelDeploymentSpec
from slogate.core.conditions import remove_condition, set_condition
from slogate.core.engine_metrics import (
    ENGINES,
    PROM_LABEL_DEPLOYMENT,
    generated_tokens_series,
    metrics_for,
    selector,
)
from slogate.core.preflight import is_mig, pod_extended_requests
from slogate.core.timefmt import parse_rfc3339, rfc3339
from slogate.core.vocabulary import ConditionStatus, ConditionType, Event, Events, PodPhase, Reason

# ------------------------------------------------------------------------------------ price table

CURRENCY_PATTERN: Final = re.compile(r"^[A-Z]{3}$")
PRICE_PATTERN: Final = re.compile(r"^[0-9]+(\.[0-9]+)?$")
MAX_PRICE: Final = Decimal(100_000)
"""No GPU costs more than this per hour: a larger number is a typo (cents for units, a monthly price)."""


@dataclass(frozen=True)
class PriceTable:
    """Hourly price of one GPU by product, in one currency."""

    currency: str
    """ISO 4217 code, e.g. ``USD``."""
    gpu_hourly: Mapping[str, Decimal]
    """Price of one GPU-hour by product, as GPU Feature Discovery names it in ``nvidia.com/gpu.product``."""
    default: Decimal
    """Price of one GPU-hour of a product not in ``gpu_hourly`` (or of a pod whose product is unknown)."""
    source: str = "built-in"
    """Where the table came from, for the start-up log: ``built-in`` or the file's path."""

    def price(self, product: str | None) -> Decimal:
        """The hourly price of one GPU of ``product``; ``default`` when unknown. Pure."""
        if product is None:
            return self.default
        return self.gpu_hourly.get(product, self.default)


BUILTIN_PRICES: Final = PriceTable(
    currency="USD",
    gpu_hourly={
        "NVIDIA-H200": Decimal("4.50"),
        "NVIDIA-H100-80GB-HBM3": Decimal("4.00"),
        "NVIDIA-H100-NVL": Decimal("3.50"),
        "NVIDIA-H100-PCIe": Decimal("3.00"),
        "NVIDIA-A100-SXM4-80GB": Decimal("2.00"),
        "NVIDIA-A100-80GB-PCIe": Decimal("1.80"),
        "NVIDIA-A100-SXM4-40GB": Decimal("1.50"),
        "NVIDIA-L40S": Decimal("1.20"),
        "NVIDIA-A10G": Decimal("1.00"),
        "Tesla-V100-SXM2-16GB": Decimal("0.90"),
        "NVIDIA-L4": Decimal("0.80"),
        "Tesla-T4": Decimal("0.40"),
    },
    default=Decimal("2.00"),
)
"""The documented default table (docs/cost.md): indicative on-demand cloud prices per GPU-hour in USD,
rounded. Replace them with what you pay (Helm values ``cost.prices`` and ``cost.default``)."""


class PriceTableError(ValueError):
    """The price file cannot be used; the message says where and why, in one line."""


def _price(value: Any, where: str) -> Decimal:
    """A price from YAML: a decimal string (``"4.50"``) or a plain non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PriceTableError(f'{where}: expected a price such as "4.50", got {value!r}')
    if isinstance(value, float) and not math.isfinite(value):
        raise PriceTableError(f"{where}: expected a finite price, got {value!r}")
    text = str(value).strip()
    if not PRICE_PATTERN.match(text):
        raise PriceTableError(f'{where}: expected a non-negative decimal such as "4.50", got {value!r}')
    price = Decimal(text)
    if price > MAX_PRICE:
        raise PriceTableError(f"{where}: {text} per GPU-hour is more than {MAX_PRICE}; is it a typo?")
    return price


def parse_price_table(doc: Any, *, source: str) -> PriceTable:
    """The price table a parsed ``prices.yaml`` describes. Pure; raises ``PriceTableError``.

    The file (rendered by the Helm chart from ``cost.currency``, ``cost.prices`` and
    ``cost.default``) has three optional keys::

        currency: USD                       # ISO 4217; defaults to USD
        gpuHourly:                          # price of one GPU-hour by nvidia.com/gpu.product
          NVIDIA-H100-80GB-HBM3: "4.50"
        default: "2.00"                     # any product not listed

    In the built-in currency (USD) the file *amends* the built-in table: its products replace or
    add to the built-in ones, and ``default`` replaces the built-in default. In another currency
    the built-in prices mean nothing, so the file is the whole table and ``default`` is required.
    An empty file (``None`` or ``{}``) is the built-in table. ``source`` names the file in
    messages. Consumed by ``config.read_price_table``, which reads and YAML-parses the file.
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PriceTableError(f"{source}: expected a mapping with currency, gpuHourly and default")
    unknown = sorted(str(k) for k in doc if k not in ("currency", "gpuHourly", "default"))
    if unknown:
        raise PriceTableError(
            f"{source}: unknown key {', '.join(unknown)} (expected currency, gpuHourly, default)"
        )
    currency = doc.get("currency") or BUILTIN_PRICES.currency
    if not isinstance(currency, str) or not CURRENCY_PATTERN.match(currency):
        raise PriceTableError(f"{source}: currency must be an ISO 4217 code such as USD, got {currency!r}")
    hourly = doc.get("gpuHourly") or {}
    if not isinstance(hourly, dict):
        raise PriceTableError(f"{source}: gpuHourly must map GPU products to prices")
    prices: dict[str, Decimal] = {}
    for product, value in hourly.items():
        if not isinstance(product, str) or not product.strip():
            raise PriceTableError(f"{source}: gpuHourly: a GPU product must be a name, got {product!r}")
        prices[product] = _price(value, f"{source}: gpuHourly.{product}")
    raw_default = doc.get("default")
    default = None if raw_default in (None, "") else _price(raw_default, f"{source}: default")
    if currency == BUILTIN_PRICES.currency:
        return PriceTable(
            currency=currency,
            gpu_hourly={**BUILTIN_PRICES.gpu_hourly, **prices},
            default=BUILTIN_PRICES.default if default is None else default,
            source=source,
        )
    if default is None:
        raise PriceTableError(
            f"{source}: currency {currency} needs a default price (the built-in prices are in "
            f"{BUILTIN_PRICES.currency}): set default (Helm value cost.default)"
        )
    return PriceTable(currency=currency, gpu_hourly=prices, default=default, source=source)


# ----------------------------------------------------------------------------------------- GPUs

MIG_SLICES: Final = 7
"""Compute slices of a MIG-capable GPU (A100, H100, H200 all have 7): ``7g`` is the whole GPU."""

_MIG_PROFILE = re.compile(r"^(\d+)g\.")
_MIG_PRODUCT_SUFFIX = re.compile(r"-MIG-.*$")


def mig_fraction(resource: str) -> Decimal:
    """The share of its parent GPU one unit of ``resource`` is priced at. Pure.

    A MIG slice ``nvidia.com/mig-<g>g.<memory>`` is ``g/7`` of the parent GPU: the GPU has seven
    compute slices and the profile names how many it takes. Anything else is a whole GPU.

    >>> mig_fraction("nvidia.com/mig-3g.40gb"), mig_fraction("nvidia.com/mig-1g.10gb+me")
    (Decimal('0.4285714285714285714285714286'), Decimal('0.1428571428571428571428571429'))
    >>> mig_fraction("nvidia.com/gpu")
    Decimal('1')
    """
    if not is_mig(resource):
        return Decimal(1)
    m = _MIG_PROFILE.match(resource[len(C.MIG_RESOURCE_PREFIX) :])
    if m is None:
        return Decimal(1)  # an unknown profile: priced as the whole GPU rather than as nothing
    return min(Decimal(int(m.group(1))) / MIG_SLICES, Decimal(1))


def parent_product(product: str) -> str:
    """The GPU product a MIG-partitioned node's label names. Pure.

    GPU Feature Discovery's ``single`` MIG strategy appends the profile to the product
    (``NVIDIA-A100-SXM4-40GB-MIG-1g.5gb``); the price is that of the parent GPU.

    >>> parent_product("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"), parent_product("NVIDIA-L4")
    ('NVIDIA-A100-SXM4-40GB', 'NVIDIA-L4')
    """
    return _MIG_PRODUCT_SUFFIX.sub("", product)


def is_gpu_resource(resource: str) -> bool:
    """Whether an extended resource is a GPU or a MIG slice of one. Pure."""
    return resource == C.GPU_RESOURCE or is_mig(resource)


@dataclass(frozen=True)
class Holding:
    """GPUs of one kind that one running pod holds."""

    resource: str
    """``nvidia.com/gpu`` or ``nvidia.com/mig-<profile>``."""
    units: int
    """How many of them."""
    product: str | None
    """The parent GPU product (``nvidia.com/gpu.product`` without a MIG suffix); ``None`` when unknown."""


def holdings(
    pods: Iterable[Mapping[str, Any]],
    *,
    node_products: Mapping[str, str],
    spec_product: str | None,
) -> list[Holding]:
    """The GPUs held by the running pods. Pure; consumed by ``controller.reconcile``.

    Only pods in phase ``Running`` hold GPUs for cost (a Pending pod holds none, a finished one no
    longer). Every ``nvidia.com/gpu`` and ``nvidia.com/mig-*`` the pod requests counts, whatever the
    spec says now (a candidate may use another shape than stable). The product is the label of the
    pod's node (``node_products``: node name → ``nvidia.com/gpu.product``), else ``spec_product``
    (the first of ``resources.gpu.products``), else unknown (the table's default price).
    """
    out: list[Holding] = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != PodPhase.RUNNING:
            continue
        node = (pod.get("spec") or {}).get("nodeName")
        label = node_products.get(node) if node else None
        product = parent_product(label) if label else spec_product
        for resource, units in sorted(pod_extended_requests(pod).items()):
            if is_gpu_resource(resource) and units > 0:
                out.append(Holding(resource=resource, units=units, product=product))
    return out


def cost_per_hour(held: Iterable[Holding], table: PriceTable) -> Decimal:
    """Sum over holdings of units * price of the product * MIG fraction. Pure.

    >>> cost_per_hour([Holding("nvidia.com/gpu", 2, "NVIDIA-L4")], BUILTIN_PRICES)
    Decimal('1.60')
    """
    return sum((h.units * table.price(h.product) * mig_fraction(h.resource) for h in held), start=Decimal(0))


# ----------------------------------------------------------------------------------------- tokens

DEFAULT_WINDOW: Final = "5m"
"""Token rate window when the ModelDeployment has no SLO (otherwise ``slo.window``)."""

TOKEN_SERIES: Final = tuple(generated_tokens_series(m) for m in ENGINES)
"""Generated-token counters from each engine's profile (``engine_metrics.generated_tokens_series``):
vLLM's ``vllm:generation_tokens_total``; TGI has no counter, so the ``_sum`` of its
``tgi_request_generated_tokens`` histogram (tokens per request, summed)."""


def token_series(engine: str) -> str:
    """The counter of generated tokens of one engine. Pure.

    >>> token_series("vllm"), token_series("tgi"), token_series("sglang")
    ('vllm:generation_tokens_total', 'tgi_request_generated_tokens_sum', 'sglang:generation_tokens_total')
    """
    return generated_tokens_series(metrics_for(EngineKind(engine)))


def cost_window(spec: ModelDeploymentSpec) -> str:
    """The window tokens are averaged over: ``slo.window``, else 5m, written as PromQL wants it. Pure."""
    return format_duration(parse_duration(spec.slo.window if spec.slo else DEFAULT_WINDOW))


def namespace_tokens_queries(*, namespace: str, window: str) -> tuple[str, ...]:
    """PromQL for the tokens per hour of every ModelDeployment in a namespace, one query per
    engine's series, each one series per ModelDeployment (``slogate_io_deployment``). Pure.

    Generated (output) tokens only: prefill processes a prompt in one batched pass, decoding
    generates one token per step, and decoding is what keeps a GPU busy; counting prompt tokens
    would make long-prompt workloads look cheap (docs/cost.md). The controller asks these once per
    namespace and window (rate-limited) instead of a query per ModelDeployment: at rest with 1,000
    ModelDeployments that is three queries, not a thousand. The answers are summed per
    ModelDeployment, so a rollout from one engine to another is counted whole; a ModelDeployment
    absent from every answer generated no tokens ("no traffic", never a price per token).

    >>> print(namespace_tokens_queries(namespace="ml", window="5m")[0])
    3600 * sum by (slogate_io_deployment) (rate(vllm:generation_tokens_total{namespace="ml"}[5m]))
    """
    sel = selector(namespace)
    return tuple(f"3600 * sum by ({PROM_LABEL_DEPLOYMENT}) (rate({s}{sel}[{window}]))" for s in TOKEN_SERIES)


def per_million_tokens(per_hour: Decimal, tokens_per_hour: float | None) -> Decimal | None:
    """Cost per million generated tokens = cost per hour / (tokens per hour / 10⁶). Pure.

    No traffic (``None``, zero, negative or not finite) gives ``None``: absent, never infinity.

    >>> per_million_tokens(Decimal("4.00"), 2_000_000.0)
    Decimal('2.0')
    >>> per_million_tokens(Decimal("4.00"), 0.0) is None
    True
    """
    if tokens_per_hour is None or not math.isfinite(tokens_per_hour) or tokens_per_hour <= 0:
        return None
    return per_hour / (Decimal(repr(tokens_per_hour)) / Decimal(1_000_000))


# ----------------------------------------------------------------------------------------- OpenCost

OPENCOST_METRIC: Final = "llm_cost_per_million_tokens"
"""OpenCost's gauge of the infrastructure cost of one million tokens, one series per model,
namespace, cost basis and phase (opencost/opencost ``pkg/inferencecost/exporter.go``; the revision
it was checked against is in ``tests/fixtures/opencost/``)."""
OPENCOST_MODEL_LABEL: Final = "llm-d.ai/model"
"""The pod label OpenCost attributes a pod's cost to a model by: the default of its
``INFERENCE_MODEL_LABEL``. Its value is the metric's ``model_name``."""
OPENCOST_COST_BASIS: Final = "allocation"
"""``cost_basis="allocation"``: what the pods hold, idle and shared infrastructure included (it
reconciles to the bill); ``usage`` leaves idle time out. slogate prices the GPUs pods hold, used
or not, so allocation is its counterpart."""
OPENCOST_PHASE: Final = "generation"
"""``phase="generation"``: cost per million generated (output) tokens; slogate counts generated
tokens only (the blended series, ``phase=""``, divides by prompt tokens too)."""
SOURCE_OPENCOST: Final = "opencost"
SOURCE_ESTIMATE: Final = "estimate"


def opencost_query(namespace: str, model: str | None = None) -> str:
    """PromQL for OpenCost's price per million generated tokens of every model in a namespace, or
    of one ``model`` (the selector status shows in ``sourceDetail``). Pure; asked by the controller
    once per namespace (rate-limited), only for namespaces with pods that carry
    ``OPENCOST_MODEL_LABEL``.

    >>> print(opencost_query("ml"))
    llm_cost_per_million_tokens{namespace="ml",cost_basis="allocation",phase="generation"}
    >>> print(opencost_query("ml", "llama"))
    llm_cost_per_million_tokens{namespace="ml",model_name="llama",cost_basis="allocation",phase="generation"}
    """
    model_label = f',model_name="{model}"' if model is not None else ""
    return (
        f'{OPENCOST_METRIC}{{namespace="{namespace}"{model_label},'
        f'cost_basis="{OPENCOST_COST_BASIS}",phase="{OPENCOST_PHASE}"}}'
    )


def _running(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [p for p in pods if (p.get("status") or {}).get("phase") == PodPhase.RUNNING]


def _model_label(pod: Mapping[str, Any]) -> str | None:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(OPENCOST_MODEL_LABEL) or None


def opencost_models(pods: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ``OPENCOST_MODEL_LABEL`` values on the running pods; empty when OpenCost cannot price
    them (then the controller asks nothing). Pure.

    >>> pod = {"metadata": {"labels": {"llm-d.ai/model": "llama"}}, "status": {"phase": "Running"}}
    >>> opencost_models([pod]), opencost_models([{**pod, "status": {"phase": "Pending"}}])
    ({'llama'}, set())
    """
    return {m for p in _running(pods) if (m := _model_label(p))}


@dataclass(frozen=True)
class OpenCostPrice:
    """What OpenCost says one ModelDeployment's generated tokens cost (``opencost_price``)."""

    per_million_tokens: Decimal | None
    """OpenCost's price per million generated tokens; ``None`` when it has no usable one."""
    detail: str
    """The series used, as a PromQL selector to paste into Prometheus, or why none was used."""
    measured: bool = True
    """``False`` when Prometheus did not answer: status keeps its ``perMillionTokens`` and source."""


def opencost_price(
    *,
    namespace: str,
    pods: Iterable[Mapping[str, Any]],
    answer: Iterable[tuple[Mapping[str, str], float]] | None,
    shared: bool = False,
) -> OpenCostPrice | None:
    """OpenCost's price per million generated tokens for a ModelDeployment's running pods. Pure.

    ``None`` when no running pod carries ``OPENCOST_MODEL_LABEL``: OpenCost attributes no cost to
    them, and status says nothing of it. Otherwise the price is used only when it is this
    ModelDeployment's and nothing else's: every running pod carries the label, all with one value
    ``M``; no pod of another workload in the namespace carries ``M`` (``shared``, from the
    controller's pod cache; OpenCost would price them together); and ``answer`` (the series of
    ``opencost_query``) holds ``model_name=M`` with one finite value above 0 (OpenCost exports 0
    when it saw no tokens or could not join the pods' cost to them). Anything else gives a price
    of ``None`` and a ``detail`` that says why, and the built-in estimate is used. ``answer``
    ``None`` (Prometheus did not answer) is not measured.
    """
    running = _running(pods)
    labelled = [m for p in running if (m := _model_label(p))]
    if not labelled:
        return None
    label = OPENCOST_MODEL_LABEL
    models = sorted(set(labelled))
    if len(labelled) < len(running):
        return OpenCostPrice(
            None, f"not every running pod carries the {label} label: OpenCost prices only labelled pods"
        )
    if len(models) > 1:
        return OpenCostPrice(
            None,
            f"the running pods carry several {label} values ({', '.join(models)}): OpenCost prices each apart",
        )
    model = models[0]
    if shared:
        return OpenCostPrice(
            None,
            f"{label}={model} is also on pods of other workloads in {namespace} "
            f"(kubectl get pods -n {namespace} -l {label}={model}): OpenCost prices them together",
        )
    series = opencost_query(namespace, model)
    if answer is None:
        return OpenCostPrice(None, series, measured=False)
    mine = [
        v for labels, v in answer if (labels.get("namespace"), labels.get("model_name")) == (namespace, model)
    ]
    values = sorted({v for v in mine if math.isfinite(v) and v > 0})
    if not mine:
        return OpenCostPrice(None, f"no series {series}")
    if not values:
        return OpenCostPrice(
            None, f"{series} is not above 0: OpenCost saw no tokens or no cost for these pods"
        )
    if len(values) > 1:
        return OpenCostPrice(None, f"{series} has several different values")
    return OpenCostPrice(Decimal(repr(values[0])), series)


# ----------------------------------------------------------------------------------------- status

CHURN_PERCENT: Final = Decimal(5)
"""``perMillionTokens`` is rewritten only when it moves by more than this, in percent …"""
CHURN_MIN_AGE: Final = timedelta(minutes=5)
"""… and the value in status is at least this old (``cost.time``)."""

_CENT = Decimal("0.01")


def format_money(amount: Decimal) -> str:
    """An amount for status: cents from 1 up, three significant digits below 1. Pure.

    >>> [format_money(Decimal(x)) for x in ("12.345", "4", "0.5714285", "0.0123456", "0", "0.9999")]
    ['12.35', '4.00', '0.571', '0.0123', '0.00', '1.00']
    """
    if amount >= 1 or amount <= 0:
        return str(max(amount, Decimal(0)).quantize(_CENT, ROUND_HALF_UP))
    exponent = amount.adjusted() - 2  # three significant digits
    rounded = amount.quantize(Decimal(1).scaleb(exponent), ROUND_HALF_UP)
    if rounded >= 1:
        return str(rounded.quantize(_CENT, ROUND_HALF_UP))
    return format(rounded, "f")


def _decimal(text: Any) -> Decimal | None:
    try:
        value = Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


@dataclass(frozen=True)
class Estimate:
    """The exact cost now; ``cost_status`` decides what of it reaches status."""

    gpus: int
    """GPU devices running pods hold (a MIG slice is one device)."""
    per_hour: Decimal
    """Exact cost per hour."""
    currency: str
    """The price table's currency."""
    window: str
    """Window of the token rate."""
    tokens_per_hour: float | None = None
    """Generated tokens per hour over ``window``; ``None``/0 for no traffic."""
    measured: bool = True
    """Whether tokens were measured now; ``False`` when Prometheus could not answer (the status
    keeps its ``perMillionTokens``)."""
    opencost: OpenCostPrice | None = None
    """OpenCost's price for these pods (``opencost_price``); ``None`` when OpenCost cannot price them."""
    per_million_tokens: Decimal | None = field(init=False)
    """Exact cost per million generated tokens; ``None`` without traffic or measurement. OpenCost's
    price where it has one, else ``per_hour`` over the token rate."""
    source: str = field(init=False)
    """Where ``per_million_tokens`` comes from: ``SOURCE_OPENCOST`` or ``SOURCE_ESTIMATE``."""
    source_detail: str | None = field(init=False)
    """OpenCost's series, or why it was not used; ``None`` when OpenCost cannot price these pods."""
    answered: bool = field(init=False)
    """Whether the source answered now; ``False`` keeps ``perMillionTokens`` and its source in status."""

    def __post_init__(self) -> None:
        oc = self.opencost
        if oc is not None and not oc.measured:
            value, source, answered = None, SOURCE_OPENCOST, False
        elif oc is not None and oc.per_million_tokens is not None:
            value, source, answered = oc.per_million_tokens, SOURCE_OPENCOST, True
        else:
            value = per_million_tokens(self.per_hour, self.tokens_per_hour) if self.measured else None
            source, answered = SOURCE_ESTIMATE, self.measured
        object.__setattr__(self, "per_million_tokens", value)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "source_detail", oc.detail if oc is not None else None)
        object.__setattr__(self, "answered", answered)


def cost_status(old: Mapping[str, Any] | None, estimate: Estimate, *, now: datetime) -> dict[str, Any]:
    """The ``status.cost`` to write: the exact estimate, held still unless it really moved. Pure.

    ``gpus``, ``perHour``, ``currency`` and ``window`` follow from the pods and the price table,
    not from traffic, so they are written whenever they change (``perHour`` rounded by
    ``format_money``). ``perMillionTokens`` follows traffic and would change on every resync; it
    is rewritten at once when it first appears or one of the others changed; otherwise only once
    the status value is at least ``CHURN_MIN_AGE`` (5 minutes) old, and then when it moved by more
    than ``CHURN_PERCENT`` (5%) or traffic stopped (it disappears). ``source`` (``opencost`` or
    ``estimate``) and ``sourceDetail`` say where it came from and count as the first kind: a change
    of source rewrites it at once. Without a measurement (Prometheus down) all three are kept as
    they are. ``time`` is when any of it was last rewritten. The result equals ``old`` when nothing
    moved enough, so an idle ModelDeployment causes no status write (docs/cost.md). Consumed by
    ``controller.reconcile``; the exported metrics carry the exact values instead.
    """
    old = dict(old or {})
    new: dict[str, Any] = {
        "gpus": estimate.gpus,
        "perHour": format_money(estimate.per_hour),
        "currency": estimate.currency,
        "window": estimate.window,
    }
    if estimate.answered:
        origin = {"source": estimate.source, "sourceDetail": estimate.source_detail}
    else:
        origin = {k: old.get(k) for k in ("source", "sourceDetail")}
    new.update({k: v for k, v in origin.items() if v is not None})
    structural = any(old.get(k) != v for k, v in new.items()) or any(
        old.get(k) != v for k, v in origin.items()
    )
    before = old.get("perMillionTokens")
    previous = _decimal(before) if before is not None else None
    exact = estimate.per_million_tokens
    written = parse_rfc3339(old.get("time"))
    aged = written is None or now - written >= CHURN_MIN_AGE
    if not estimate.answered:
        after = before
    elif structural or previous is None:
        after = format_money(exact) if exact is not None else None
    elif exact is None:
        after = None if aged else before
    else:
        moved = abs(exact - previous) > previous * CHURN_PERCENT / 100
        after = format_money(exact) if moved and aged else before
    if after is not None:
        new["perMillionTokens"] = after
    changed = structural or after != before
    new["time"] = old["time"] if old.get("time") and not changed else rfc3339(now)
    return new


# ----------------------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class BudgetVerdict:
    """The ``OverBudget`` condition's value."""

    status: str
    """``True`` (over budget), ``False`` (within) or ``Unknown`` (no traffic, another currency)."""
    reason: str
    message: str


def budget_verdict(budget: Budget | None, cost: Mapping[str, Any]) -> BudgetVerdict | None:
    """Whether ``status.cost.perMillionTokens`` exceeds ``spec.budget``. Pure.

    Judged on the value *in status* (``cost_status``), so the condition always agrees with the
    number an SRE reads next to it, and flips only when that number moved. ``None`` without a
    budget (the caller removes the condition). Equal to the budget is within it.
    """
    if budget is None:
        return None
    limit = Decimal(budget.max_cost_per_million_tokens)
    currency = cost.get("currency") or ""

    def money(amount: str) -> str:
        return f"{amount} {currency}".rstrip()

    shown = money(budget.max_cost_per_million_tokens)
    if budget.currency and currency and budget.currency != currency:
        return BudgetVerdict(
            ConditionStatus.UNKNOWN.value,
            Reason.CURRENCY_MISMATCH,
            f"the budget is in {budget.currency} but the price table is in {currency}",
        )
    value = _decimal(cost.get("perMillionTokens")) if cost.get("perMillionTokens") is not None else None
    if value is None:
        return BudgetVerdict(
            ConditionStatus.UNKNOWN.value,
            Reason.NO_TRAFFIC,
            f"no tokens generated in the last {cost.get('window') or DEFAULT_WINDOW}: "
            f"cost per million tokens unknown (budget {shown})",
        )
    if value > limit:
        return BudgetVerdict(
            ConditionStatus.TRUE.value,
            Reason.OVER_BUDGET,
            f"cost per million tokens {money(cost['perMillionTokens'])} > budget {shown}",
        )
    return BudgetVerdict(
        ConditionStatus.FALSE.value,
        Reason.WITHIN_BUDGET,
        f"cost per million tokens {money(cost['perMillionTokens'])} ≤ budget {shown}",
    )


def budget_condition(
    conditions: list[dict[str, Any]],
    verdict: BudgetVerdict | None,
    *,
    observed_generation: int,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[Event]]:
    """Set (or, without a budget, remove) ``OverBudget``; return the conditions and the Events. Pure.

    A Warning ``OverBudget`` Event when the condition becomes ``True``, a Normal ``WithinBudget``
    one when it goes from ``True`` to ``False``; nothing while it holds (Events are transitions).
    Consumed by ``controller.reconcile``.
    """
    before = next((c for c in conditions if c.get("type") == ConditionType.OVER_BUDGET), None)
    if verdict is None:
        out, _ = remove_condition(conditions, ConditionType.OVER_BUDGET)
        return out, []
    out, _ = set_condition(
        conditions,
        type=ConditionType.OVER_BUDGET,
        status=verdict.status,
        reason=verdict.reason,
        message=verdict.message,
        observed_generation=observed_generation,
        now=now,
    )
    was = (before or {}).get("status")
    events: list[Event] = []
    if verdict.status == ConditionStatus.TRUE and was != ConditionStatus.TRUE:
        events.append(Events.OVER_BUDGET(verdict.message))
    elif verdict.status == ConditionStatus.FALSE and was == ConditionStatus.TRUE:
        events.append(Events.WITHIN_BUDGET(verdict.message))
    return out, events
