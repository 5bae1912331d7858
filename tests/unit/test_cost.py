"""Cost: the price table, GPUs held and their price (MIG, unknown products), tokens per engine, the
money format, the rule that keeps ``status.cost`` still, the budget condition, the start-up error,
the metrics and the CLI. Everything here is pure except the price-file and ``slogate run`` cases."""

from __future__ import annotations

import doctest
import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import slogate.core.cost
from slogate.adapters.cache import matches as label_matches
from slogate.adapters.cache import parse_selector as parse_label_selector
from slogate.api.v1alpha1 import Budget, ModelDeploymentSpec
from slogate.api.validation import validate_document
from slogate.cli import main
from slogate.cli.status import cost_cells, explain_lines, render_table
from slogate.config import OperatorConfig, read_price_table
from slogate.controller.reconcile import Reconciler
from slogate.core.cost import (
    BUILTIN_PRICES,
    CHURN_MIN_AGE,
    OPENCOST_METRIC,
    OPENCOST_MODEL_LABEL,
    BudgetVerdict,
    Estimate,
    Holding,
    OpenCostPrice,
    PriceTable,
    PriceTableError,
    budget_condition,
    budget_verdict,
    cost_per_hour,
    cost_status,
    cost_window,
    format_money,
    holdings,
    mig_fraction,
    namespace_tokens_queries,
    opencost_price,
    opencost_query,
    parent_product,
    parse_price_table,
    per_million_tokens,
    token_series,
)
from slogate.errors import PrometheusUnavailable
from slogate.telemetry import REGISTRY, forget_modeldeployment, record_cost, record_modeldeployment

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
D = Decimal


def test_doctests():
    assert doctest.testmod(slogate.core.cost).failed == 0


# ------------------------------------------------------------------------------------ price table


def test_builtin_table_is_documented_and_in_usd():
    assert BUILTIN_PRICES.currency == "USD"
    assert BUILTIN_PRICES.default == D("2.00")
    assert BUILTIN_PRICES.price("NVIDIA-H100-80GB-HBM3") == D("4.00")
    assert BUILTIN_PRICES.price("NVIDIA-L4") == D("0.80")
    assert BUILTIN_PRICES.price("Some-Future-GPU") == D("2.00")
    assert BUILTIN_PRICES.price(None) == D("2.00")
    docs = (Path(__file__).parents[2] / "docs" / "cost.md").read_text()
    for product, price in BUILTIN_PRICES.gpu_hourly.items():
        assert f"| `{product}` | {price} |" in docs, f"docs/cost.md does not list {product} at {price}"
    assert f"| any other product | {BUILTIN_PRICES.default} |" in docs


@pytest.mark.parametrize(
    "doc", [None, {}, {"currency": "USD", "gpuHourly": {}}], ids=["none", "empty", "chart"]
)
def test_an_empty_file_is_the_builtin_table(doc):
    table = parse_price_table(doc, source="p.yaml")
    assert (table.currency, dict(table.gpu_hourly), table.default) == (
        "USD",
        dict(BUILTIN_PRICES.gpu_hourly),
        BUILTIN_PRICES.default,
    )
    assert table.source == "p.yaml"


def test_usd_file_amends_the_builtin_table():
    table = parse_price_table(
        {"gpuHourly": {"NVIDIA-H100-80GB-HBM3": "2.99", "My-GPU": 1, "NVIDIA-L4": 0.5}, "default": "3"},
        source="p.yaml",
    )
    assert table.price("NVIDIA-H100-80GB-HBM3") == D("2.99")  # replaced
    assert table.price("My-GPU") == D("1")  # added, a YAML int
    assert table.price("NVIDIA-L4") == D("0.5")  # a YAML float
    assert table.price("NVIDIA-A100-SXM4-80GB") == D("2.00")  # kept
    assert table.default == D("3")


def test_another_currency_is_a_whole_table_and_needs_a_default():
    with pytest.raises(PriceTableError, match=r"^p.yaml: currency EUR needs a default price .*cost.default"):
        parse_price_table({"currency": "EUR", "gpuHourly": {"NVIDIA-L4": "0.70"}}, source="p.yaml")
    table = parse_price_table(
        {"currency": "EUR", "gpuHourly": {"NVIDIA-L4": "0.70"}, "default": "1.90"}, source="p.yaml"
    )
    assert table == PriceTable("EUR", {"NVIDIA-L4": D("0.70")}, D("1.90"), "p.yaml")
    assert table.price("NVIDIA-H100-80GB-HBM3") == D("1.90")  # not the built-in USD price


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param([1, 2], "expected a mapping", id="list"),
        pytest.param({"prices": {}}, "unknown key prices", id="unknown-key"),
        pytest.param({"currency": "usd"}, "currency must be an ISO 4217 code", id="lowercase-currency"),
        pytest.param({"currency": "EURO"}, "currency must be an ISO 4217 code", id="long-currency"),
        pytest.param({"gpuHourly": ["NVIDIA-L4"]}, "gpuHourly must map", id="gpu-list"),
        pytest.param(
            {"gpuHourly": {"NVIDIA-L4": "cheap"}}, "gpuHourly.NVIDIA-L4: expected a non-negative", id="word"
        ),
        pytest.param({"gpuHourly": {"NVIDIA-L4": -1}}, "expected a non-negative", id="negative"),
        pytest.param({"gpuHourly": {"NVIDIA-L4": "1e3"}}, "expected a non-negative", id="exponent"),
        pytest.param({"gpuHourly": {"NVIDIA-L4": True}}, "expected a price", id="bool"),
        pytest.param({"gpuHourly": {"NVIDIA-L4": None}}, "expected a price", id="null"),
        pytest.param({"gpuHourly": {"NVIDIA-L4": float("nan")}}, "expected a finite price", id="nan"),
        pytest.param({"gpuHourly": {"NVIDIA-L4": "250000"}}, "is it a typo", id="too-large"),
        pytest.param({"gpuHourly": {3: "1.00"}}, "a GPU product must be a name", id="numeric-product"),
        pytest.param({"default": "free"}, "default: expected a non-negative", id="bad-default"),
    ],
)
def test_invalid_tables_say_where_and_why(doc, message):
    with pytest.raises(PriceTableError) as info:
        parse_price_table(doc, source="/etc/slogate/prices/prices.yaml")
    text = str(info.value)
    assert text.startswith("/etc/slogate/prices/prices.yaml: ") and message in text, text
    assert "\n" not in text


def test_read_price_table_from_a_file(tmp_path):
    assert read_price_table("") is BUILTIN_PRICES
    good = tmp_path / "prices.yaml"
    good.write_text('currency: "USD"\ngpuHourly:\n  "NVIDIA-L4": "0.65"\n')
    assert read_price_table(str(good)).price("NVIDIA-L4") == D("0.65")
    with pytest.raises(PriceTableError, match=r"missing.yaml: cannot read the price table: No such file"):
        read_price_table(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("currency: USD\ngpuHourly: {NVIDIA-L4: [\n")
    with pytest.raises(PriceTableError, match=r"bad.yaml: not valid YAML at line \d+"):
        read_price_table(str(bad))


def test_prices_file_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SLOGATE_PRICES_FILE", "/etc/slogate/prices/prices.yaml")
    assert OperatorConfig.from_env().prices_file == "/etc/slogate/prices/prices.yaml"
    assert OperatorConfig.from_env(prices_file="/x.yaml").prices_file == "/x.yaml"


def test_slogate_run_with_an_invalid_price_table_exits_with_one_line(tmp_path, capsys):
    bad = tmp_path / "prices.yaml"
    bad.write_text('currency: EUR\ngpuHourly: {NVIDIA-L4: "0.70"}\n')
    assert main(["run", "--prices-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"slogate run: invalid price table {bad}: currency EUR needs a default price")


# ----------------------------------------------------------------------------------------- GPUs


def gpu_pod(units=1, *, phase="Running", node="gpu-0", resource="nvidia.com/gpu", cpu=None) -> dict:
    limits = {resource: str(units), "memory": "8Gi"} | ({"cpu": cpu} if cpu else {})
    return {
        "metadata": {"name": "p"},
        "spec": {"nodeName": node, "containers": [{"name": "engine", "resources": {"limits": limits}}]},
        "status": {"phase": phase},
    }


@pytest.mark.parametrize(
    ("resource", "fraction"),
    [
        ("nvidia.com/gpu", D(1)),
        ("nvidia.com/mig-7g.80gb", D(1)),
        ("nvidia.com/mig-3g.40gb", D(3) / 7),
        ("nvidia.com/mig-1g.10gb", D(1) / 7),
        ("nvidia.com/mig-1g.10gb+me", D(1) / 7),
        ("nvidia.com/mig-2g.20gb", D(2) / 7),
        ("nvidia.com/mig-odd", D(1)),  # unknown profile: the whole GPU, never free
    ],
)
def test_mig_slices_are_a_share_of_the_parent(resource, fraction):
    assert mig_fraction(resource) == fraction


@pytest.mark.parametrize(
    ("label", "parent"),
    [
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "NVIDIA-A100-SXM4-40GB"),
        ("NVIDIA-A100-SXM4-80GB-MIG-MIXED", "NVIDIA-A100-SXM4-80GB"),
        ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-80GB-HBM3"),
    ],
)
def test_parent_product(label, parent):
    assert parent_product(label) == parent


def test_holdings_count_running_pods_on_their_nodes_product():
    nodes = {"gpu-0": "NVIDIA-H100-80GB-HBM3", "mig-0": "NVIDIA-A100-SXM4-80GB-MIG-MIXED"}
    pods = [
        gpu_pod(2, node="gpu-0"),
        gpu_pod(1, phase="Pending", node=None),  # holds nothing yet
        gpu_pod(1, phase="Succeeded"),  # holds nothing any more
        gpu_pod(1, node="mig-0", resource="nvidia.com/mig-3g.40gb"),
        gpu_pod(1, node="unlabelled"),  # no GFD label: the spec's product
        gpu_pod(0, node="gpu-0"),  # no GPU at all
    ]
    held = holdings(pods, node_products=nodes, spec_product="NVIDIA-L4")
    assert held == [
        Holding("nvidia.com/gpu", 2, "NVIDIA-H100-80GB-HBM3"),
        Holding("nvidia.com/mig-3g.40gb", 1, "NVIDIA-A100-SXM4-80GB"),
        Holding("nvidia.com/gpu", 1, "NVIDIA-L4"),
    ]
    assert holdings([gpu_pod(1, node=None)], node_products={}, spec_product=None) == [
        Holding("nvidia.com/gpu", 1, None)
    ]
    other = gpu_pod(1, resource="example.com/fpga")
    assert holdings([other], node_products=nodes, spec_product=None) == []


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        pytest.param([], D("0"), id="nothing"),
        pytest.param([Holding("nvidia.com/gpu", 4, "NVIDIA-H100-80GB-HBM3")], D("16.00"), id="h100x4"),
        pytest.param([Holding("nvidia.com/gpu", 1, "Unknown-GPU")], D("2.00"), id="unknown-product"),
        pytest.param([Holding("nvidia.com/gpu", 1, None)], D("2.00"), id="no-product"),
        pytest.param(
            [Holding("nvidia.com/mig-1g.10gb", 7, "NVIDIA-A100-SXM4-80GB")], D("2.00"), id="seven-1g-slices"
        ),
        pytest.param(
            [
                Holding("nvidia.com/gpu", 2, "NVIDIA-L4"),
                Holding("nvidia.com/gpu", 1, "NVIDIA-A100-SXM4-80GB"),
            ],
            D("3.60"),
            id="mixed",
        ),
    ],
)
def test_cost_per_hour(held, expected):
    assert cost_per_hour(held, BUILTIN_PRICES).quantize(D("0.01")) == expected


def test_mig_slice_cost():
    per_hour = cost_per_hour([Holding("nvidia.com/mig-3g.40gb", 1, "NVIDIA-A100-SXM4-80GB")], BUILTIN_PRICES)
    assert format_money(per_hour) == "0.857"  # 3/7 of 2.00


# ----------------------------------------------------------------------------------------- tokens


def spec(**extra) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": {"source": "hf://o/m"}, **extra})


def test_token_source_per_engine():
    assert token_series("vllm") == "vllm:generation_tokens_total"  # a counter
    assert token_series("tgi") == "tgi_request_generated_tokens_sum"  # TGI has none: the histogram's _sum
    assert token_series("sglang") == "sglang:generation_tokens_total"


def test_tokens_are_asked_per_namespace_one_query_per_engine_series_by_modeldeployment():
    qs = namespace_tokens_queries(namespace="ml", window="5m")
    assert qs == (
        '3600 * sum by (slogate_io_deployment) (rate(vllm:generation_tokens_total{namespace="ml"}[5m]))',
        '3600 * sum by (slogate_io_deployment) (rate(tgi_request_generated_tokens_sum{namespace="ml"}[5m]))',
        '3600 * sum by (slogate_io_deployment) (rate(sglang:generation_tokens_total{namespace="ml"}[5m]))',
    )
    assert not any("prompt" in q or "input_length" in q for q in qs)  # generated tokens only (docs/cost.md)
    assert 'namespace="a\\"b"' in namespace_tokens_queries(namespace='a"b', window="5m")[0]  # escaped


def test_token_window_is_the_slo_window():
    assert cost_window(spec()) == "5m"
    slo = {"window": "1.5m", "objectives": [{"metric": "errorRate", "maxPercent": 1}]}
    assert cost_window(spec(slo=slo)) == "1m30s"
    assert "[1m30s]" in namespace_tokens_queries(namespace="ml", window=cost_window(spec(slo=slo)))[0]


@pytest.mark.parametrize(
    ("per_hour", "tokens", "expected"),
    [
        pytest.param(D("4.00"), 2_000_000.0, D("2"), id="2M-tokens-per-hour"),
        pytest.param(D("16.00"), 5_400_000.0, D("2.962962962962962962962962963"), id="h100x4"),
        pytest.param(D("0"), 1000.0, D("0"), id="free"),
        pytest.param(D("4.00"), None, None, id="no-data"),
        pytest.param(D("4.00"), 0.0, None, id="no-traffic"),
        pytest.param(D("4.00"), -1.0, None, id="counter-reset"),
        pytest.param(D("4.00"), float("nan"), None, id="nan"),
        pytest.param(D("4.00"), float("inf"), None, id="inf"),
    ],
)
def test_per_million_tokens(per_hour, tokens, expected):
    assert per_million_tokens(per_hour, tokens) == expected


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("12.345", "12.35"),
        ("12.344", "12.34"),
        ("1", "1.00"),
        ("1234.5", "1234.50"),
        ("0.5714285", "0.571"),
        ("0.0123456", "0.0123"),
        ("0.00001234", "0.0000123"),
        ("0.9996", "1.00"),
        ("0", "0.00"),
        ("-1", "0.00"),
    ],
)
def test_format_money(amount, text):
    assert format_money(D(amount)) == text


# ----------------------------------------------------------------------------------------- status


def estimate(tokens: float | None = 2_000_000.0, *, gpus=1, per_hour="4.00", measured=True, window="5m"):
    return Estimate(
        gpus=gpus,
        per_hour=D(per_hour),
        currency="USD",
        window=window,
        tokens_per_hour=tokens,
        measured=measured,
    )


STEADY = {
    "gpus": 1,
    "perHour": "4.00",
    "currency": "USD",
    "window": "5m",
    "source": "estimate",
    "perMillionTokens": "2.00",
    "time": "2026-03-01T10:00:00Z",
}


def test_first_estimate_is_written_with_its_time():
    assert cost_status(None, estimate(), now=T0) == STEADY
    assert cost_status({}, estimate(None), now=T0) == {
        k: v for k, v in STEADY.items() if k != "perMillionTokens"
    }


@pytest.mark.parametrize(
    ("tokens", "age", "expected"),
    [
        pytest.param(2_000_000.0, timedelta(hours=1), "2.00", id="same"),
        pytest.param(1_950_000.0, timedelta(hours=1), "2.00", id="old-moved-2.6pc"),  # 2.05: within 5%
        pytest.param(1_800_000.0, timedelta(minutes=1), "2.00", id="young-moved-11pc"),
        pytest.param(1_800_000.0, CHURN_MIN_AGE, "2.22", id="old-moved-11pc"),
        pytest.param(2_300_000.0, timedelta(hours=1), "1.74", id="old-moved-down-13pc"),
        pytest.param(None, timedelta(minutes=1), "2.00", id="young-traffic-stopped"),
        pytest.param(0.0, timedelta(hours=1), None, id="old-traffic-stopped"),
    ],
)
def test_per_million_tokens_moves_only_by_more_than_5pc_once_5min_old(tokens, age, expected):
    out = cost_status(STEADY, estimate(tokens), now=T0 + age)
    assert out.get("perMillionTokens") == expected
    if expected == "2.00":
        assert out == STEADY  # nothing to write: no status patch
    else:
        assert out["time"] == "2026-03-01T10:00:00Z".replace("10:00:00", (T0 + age).strftime("%H:%M:%S"))


def test_an_idle_modeldeployment_keeps_its_status_resync_after_resync():
    status = cost_status(None, estimate(), now=T0)
    for i, tokens in enumerate([2_050_000.0, 1_910_000.0, 2_080_000.0, 1_930_000.0] * 5):  # ±4%
        now = T0 + timedelta(seconds=30 * (i + 1))
        assert cost_status(status, estimate(tokens), now=now) == status


def test_traffic_appearing_is_written_at_once():
    young = {k: v for k, v in STEADY.items() if k != "perMillionTokens"}
    out = cost_status(young, estimate(), now=T0 + timedelta(seconds=10))
    assert out["perMillionTokens"] == "2.00" and out["time"] == "2026-03-01T10:00:10Z"


def test_gpus_price_and_window_are_written_at_once_and_recompute_the_token_cost():
    out = cost_status(STEADY, estimate(2_050_000.0, gpus=2, per_hour="8.00"), now=T0 + timedelta(seconds=5))
    assert out == {
        "gpus": 2,
        "perHour": "8.00",
        "currency": "USD",
        "window": "5m",
        "source": "estimate",
        "perMillionTokens": "3.90",
        "time": "2026-03-01T10:00:05Z",
    }
    out = cost_status(STEADY, estimate(window="10m"), now=T0 + timedelta(seconds=5))
    assert out["window"] == "10m" and out["time"] == "2026-03-01T10:00:05Z"


def test_without_a_measurement_the_token_cost_is_kept():
    assert cost_status(STEADY, estimate(None, measured=False), now=T0 + timedelta(hours=1)) == STEADY
    out = cost_status(STEADY, estimate(None, gpus=2, per_hour="8.00", measured=False), now=T0)
    assert out["perHour"] == "8.00" and out["perMillionTokens"] == "2.00"


def test_an_unreadable_status_value_is_replaced():
    out = cost_status({**STEADY, "perMillionTokens": "lots"}, estimate(), now=T0 + timedelta(seconds=1))
    assert out["perMillionTokens"] == "2.00"
    out = cost_status({**STEADY, "time": "yesterday"}, estimate(1_000_000.0), now=T0)
    assert out["perMillionTokens"] == "4.00"  # no readable time: old enough


# ----------------------------------------------------------------------------------------- OpenCost
# OpenCost's own names (metric, labels, label values, the pod label) are in a fixture written from
# its source at a named revision (tests/fixtures/opencost/). The query and the reading of its
# answer are checked against it: renaming either side fails here.

OPENCOST = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "opencost" / "llm_cost_per_million_tokens.json").read_text()
)
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_selector(promql: str) -> tuple[str, dict[str, str]]:
    """``name{k="v",...}`` as (name, matchers); only equality matchers, as slogate writes them."""
    m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}", promql)
    assert m, promql
    matchers = dict(_MATCHER.findall(m.group(2)))
    assert ",".join(f'{k}="{v}"' for k, v in matchers.items()) == m.group(2), 'only k="v" matchers'
    return m.group(1), matchers


def fixture_series() -> list[tuple[dict[str, str], float]]:
    """The fixture's exposition as Prometheus would answer a bare selector."""
    text = "\n".join(OPENCOST["exposition"]) + "\n"
    return [(dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def select(series, matchers: dict[str, str]):
    """What Prometheus answers for an equality selector (a missing label matches "")."""
    return tuple(
        (labels, v) for labels, v in series if all(labels.get(k, "") == v for k, v in matchers.items())
    )


def test_opencost_query_names_only_what_opencost_exports():
    name, matchers = parse_selector(opencost_query("ml"))
    assert name == OPENCOST["metric"] == OPENCOST_METRIC
    assert set(matchers) <= set(OPENCOST["labels"]), "a label OpenCost does not export"
    for label, value in matchers.items():
        if label in OPENCOST["label_values"]:
            assert value in OPENCOST["label_values"][label], f"OpenCost never sets {label}={value!r}"
    assert matchers == {"namespace": "ml", "cost_basis": "allocation", "phase": "generation"}
    assert OPENCOST_MODEL_LABEL == OPENCOST["pod_label"]["default"]
    assert OPENCOST["pod_label"]["becomes"] == "model_name" in OPENCOST["labels"]
    # The selector status shows an SRE is one they can paste: the same names, plus model_name.
    price = opencost_price(namespace="ml", pods=[pod("llama-chat")], answer=())
    shown_name, shown = parse_selector(price.detail.removeprefix("no series "))
    assert shown_name == OPENCOST_METRIC and set(shown) <= set(OPENCOST["labels"])
    assert shown == {**matchers, "model_name": "llama-chat"}


def test_opencost_price_is_read_from_what_the_query_selects():
    answer = select(fixture_series(), parse_selector(opencost_query("ml"))[1])
    assert len(answer) == 2  # allocation, generation: one per model
    assert opencost_price(namespace="ml", pods=[pod("llama-chat")] * 2, answer=answer) == OpenCostPrice(
        D("1.87"),
        'llm_cost_per_million_tokens{namespace="ml",model_name="llama-chat",cost_basis="allocation",phase="generation"}',
    )
    assert opencost_price(namespace="ml", pods=[pod("qwen")], answer=answer).per_million_tokens == D("3.1")
    assert select(fixture_series(), parse_selector(opencost_query("other"))[1]) == ()


def test_docs_name_the_opencost_revisions_the_fixture_was_written_from():
    docs = (Path(__file__).parents[2] / "docs" / "cost.md").read_text()
    for read in OPENCOST["source"]["read"]:
        assert f"| `{read['path']}` | `{read['commit'][:12]}` |" in docs, read["path"]
    assert OPENCOST["source"]["scrape"]["path"].endswith("extraScrapeConfigs.yaml")
    assert "honor_labels: true" in docs


def pod(model: str | None = "llama", phase: str = "Running") -> dict:
    labels = {"slogate.io/deployment": "chat"} | ({OPENCOST_MODEL_LABEL: model} if model else {})
    return {"metadata": {"name": "p", "labels": labels}, "status": {"phase": phase}}


def series(value: float, model: str = "llama", ns: str = "ml", **labels: str) -> tuple[dict[str, str], float]:
    return {
        "namespace": ns,
        "model_name": model,
        "cost_basis": "allocation",
        "phase": "generation",
        **labels,
    }, value


SELECTOR = 'llm_cost_per_million_tokens{namespace="ml",model_name="llama",cost_basis="allocation",phase="generation"}'


@pytest.mark.parametrize(
    ("pods", "answer", "shared", "price", "detail"),
    [
        pytest.param([pod(None)], [series(2.0)], False, None, None, id="no-label-no-opencost"),
        pytest.param([pod(phase="Pending")], [series(2.0)], False, None, None, id="labelled-but-not-running"),
        pytest.param([pod(), pod(phase="Pending")], [series(2.0)], False, "2.0", SELECTOR, id="used"),
        pytest.param(
            [pod()], [series(2.0), series(2.0, instance="b")], False, "2.0", SELECTOR, id="scraped-twice"
        ),
        pytest.param(
            [pod()],
            [series(2.0, model="other"), series(9.0, ns="x")],
            False,
            "-",
            f"no series {SELECTOR}",
            id="absent",
        ),
        pytest.param([pod()], [], False, "-", f"no series {SELECTOR}", id="empty-answer"),
        pytest.param([pod()], [series(0.0)], False, "-", "is not above 0", id="zero"),
        pytest.param([pod()], [series(math.nan)], False, "-", "is not above 0", id="nan"),
        pytest.param(
            [pod()],
            [series(2.0), series(2.5, model_version="v2")],
            False,
            "-",
            "several different values",
            id="two-values",
        ),
        pytest.param(
            [pod(), pod(None)],
            [series(2.0)],
            False,
            "-",
            "not every running pod carries the llm-d.ai/model label",
            id="partial",
        ),
        pytest.param(
            [pod(), pod("qwen")],
            [series(2.0)],
            False,
            "-",
            "several llm-d.ai/model values (llama, qwen)",
            id="two-models",
        ),
        pytest.param(
            [pod()], [series(2.0)], True, "-", "kubectl get pods -n ml -l llm-d.ai/model=llama", id="shared"
        ),
    ],
)
def test_opencost_price(pods, answer, shared, price, detail):
    got = opencost_price(namespace="ml", pods=pods, answer=answer, shared=shared)
    if price is None:
        assert got is None
        return
    assert got.measured
    assert got.per_million_tokens == (None if price == "-" else D(price))
    assert detail in got.detail


def test_an_unanswered_opencost_query_is_not_measured():
    assert opencost_price(namespace="ml", pods=[pod()], answer=None) == OpenCostPrice(
        None, SELECTOR, measured=False
    )
    assert opencost_price(namespace="ml", pods=[pod(None)], answer=None) is None  # not asked at all


def oc_estimate(
    oc: OpenCostPrice | None, tokens: float | None = 2_000_000.0, measured: bool = True
) -> Estimate:
    return Estimate(
        gpus=1,
        per_hour=D("4.00"),
        currency="USD",
        window="5m",
        tokens_per_hour=tokens,
        measured=measured,
        opencost=oc,
    )


PRICED = OpenCostPrice(D("1.87"), SELECTOR)
FROM_OPENCOST = {**STEADY, "source": "opencost", "sourceDetail": SELECTOR, "perMillionTokens": "1.87"}


def test_opencost_price_replaces_the_estimate_and_says_so():
    e = oc_estimate(PRICED)
    assert (e.per_million_tokens, e.source, e.source_detail, e.answered) == (
        D("1.87"),
        "opencost",
        SELECTOR,
        True,
    )
    # Switching source is written at once, even over a young value, and so is switching back.
    out = cost_status(STEADY, e, now=T0 + timedelta(seconds=5))
    assert out == {**FROM_OPENCOST, "time": "2026-03-01T10:00:05Z"}
    why = OpenCostPrice(None, f"no series {SELECTOR}")
    back = cost_status(out, oc_estimate(why), now=T0 + timedelta(seconds=10))
    assert back == {**STEADY, "sourceDetail": f"no series {SELECTOR}", "time": "2026-03-01T10:00:10Z"}
    # Without OpenCost in play the detail goes too.
    assert cost_status(back, oc_estimate(None), now=T0 + timedelta(seconds=15)) == {
        **STEADY,
        "time": "2026-03-01T10:00:15Z",
    }


def test_opencost_price_moves_by_the_same_churn_rule():
    assert (
        cost_status(
            FROM_OPENCOST, oc_estimate(OpenCostPrice(D("1.93"), SELECTOR)), now=T0 + timedelta(hours=1)
        )
        == FROM_OPENCOST
    )
    moved = cost_status(
        FROM_OPENCOST, oc_estimate(OpenCostPrice(D("2.10"), SELECTOR)), now=T0 + timedelta(minutes=1)
    )
    assert moved == FROM_OPENCOST  # 12% but young
    moved = cost_status(
        FROM_OPENCOST, oc_estimate(OpenCostPrice(D("2.10"), SELECTOR)), now=T0 + CHURN_MIN_AGE
    )
    assert moved["perMillionTokens"] == "2.10" and moved["source"] == "opencost"


def test_opencost_is_used_without_a_token_measurement_and_kept_when_it_does_not_answer():
    # OpenCost answered, the token queries did not: its price needs no token rate of slogate's.
    assert (
        cost_status(STEADY, oc_estimate(PRICED, None, measured=False), now=T0)["perMillionTokens"] == "1.87"
    )
    # Prometheus did not answer OpenCost's query: value, source and detail stay as they are.
    unanswered = oc_estimate(OpenCostPrice(None, SELECTOR, measured=False))
    assert not unanswered.answered
    assert cost_status(FROM_OPENCOST, unanswered, now=T0 + timedelta(hours=1)) == FROM_OPENCOST
    assert cost_status(None, unanswered, now=T0) == {
        k: v for k, v in STEADY.items() if k not in ("source", "perMillionTokens")
    }


def test_the_budget_is_judged_on_opencost_price():
    verdict = budget_verdict(budget("1.50"), FROM_OPENCOST)
    assert verdict.status == "True" and "1.87 USD > budget 1.50 USD" in verdict.message


# The controller's part: asked only for labelled pods, once per namespace per interval, and the
# pod cache says whether another workload's pods carry the same model label value.


class OpenCostProm:
    def __init__(self, answer: list[tuple[dict[str, str], float]] | None) -> None:
        self.answer, self.asked = answer, []

    def query_vector(self, q: str) -> list[tuple[dict[str, str], float]]:
        self.asked.append(q)
        if self.answer is None:
            raise PrometheusUnavailable("timed out")
        return self.answer if q.startswith(OPENCOST_METRIC) else []


class PodCache:
    def __init__(self, pods: list[dict]) -> None:
        self.pods = pods

    def list(self, api_version, kind, namespace, *, selector=None):
        wanted = parse_label_selector(selector)
        return [p for p in self.pods if kind == "Pod" and label_matches(p["metadata"]["labels"], wanted)]


def test_the_controller_asks_opencost_only_for_labelled_pods_once_per_namespace():
    prom = OpenCostProm([series(2.0)])
    r = Reconciler(PodCache([]), OperatorConfig())
    r._sources["http://p"] = prom
    spec = ModelDeploymentSpec.model_validate({"model": {"source": "hf://m/x"}, "engine": {"kind": "vllm"}})
    body = {"metadata": {"namespace": "ml", "name": "chat", "generation": 1}, "spec": {}}
    m = r._measure(spec, body, {}, "http://p", T0, [pod(None)])
    assert m.opencost is None and not any(q.startswith(OPENCOST_METRIC) for q in prom.asked)
    m = r._measure(spec, body, {}, "http://p", T0, [pod()])
    assert m.opencost == (series(2.0),)
    r._measure(spec, body, {}, "http://p", T0 + timedelta(seconds=5), [pod()])
    assert [q for q in prom.asked if q.startswith(OPENCOST_METRIC)] == [opencost_query("ml")]
    prom.answer = None  # Prometheus down: remembered for the interval, then asked again
    assert r._measure(spec, body, {}, "http://p", T0 + timedelta(seconds=11), [pod()]).opencost is None
    assert len([q for q in prom.asked if q.startswith(OPENCOST_METRIC)]) == 2


def test_the_controller_sees_other_workloads_with_the_same_model_label():
    mine = pod()
    theirs = {
        "metadata": {"name": "q", "labels": {OPENCOST_MODEL_LABEL: "llama", "app": "x"}},
        "status": {"phase": "Running"},
    }
    r = Reconciler(PodCache([mine]), OperatorConfig())
    assert r._opencost_shared("ml", "chat", [mine]) is False
    r = Reconciler(PodCache([mine, theirs]), OperatorConfig())
    assert r._opencost_shared("ml", "chat", [mine]) is True
    assert r._opencost_shared("ml", "chat", [pod(None)]) is False  # nothing to compare


# ----------------------------------------------------------------------------------------- budget


def budget(value="2.50", currency=None) -> Budget:
    return Budget(max_cost_per_million_tokens=value, currency=currency)


@pytest.mark.parametrize(
    ("b", "cost", "expected"),
    [
        pytest.param(None, STEADY, None, id="no-budget"),
        pytest.param(
            budget("1.50"),
            STEADY,
            BudgetVerdict("True", "OverBudget", "cost per million tokens 2.00 USD > budget 1.50 USD"),
            id="over",
        ),
        pytest.param(
            budget("2.00"),
            STEADY,
            BudgetVerdict("False", "WithinBudget", "cost per million tokens 2.00 USD ≤ budget 2.00 USD"),
            id="equal-is-within",
        ),
        pytest.param(
            budget("2.50", "USD"),
            STEADY,
            BudgetVerdict("False", "WithinBudget", "cost per million tokens 2.00 USD ≤ budget 2.50 USD"),
            id="within-same-currency",
        ),
        pytest.param(
            budget("2.50"),
            {k: v for k, v in STEADY.items() if k != "perMillionTokens"},
            BudgetVerdict(
                "Unknown",
                "NoTraffic",
                "no tokens generated in the last 5m: cost per million tokens unknown (budget 2.50 USD)",
            ),
            id="no-traffic",
        ),
        pytest.param(
            budget("2.50", "EUR"),
            STEADY,
            BudgetVerdict(
                "Unknown", "CurrencyMismatch", "the budget is in EUR but the price table is in USD"
            ),
            id="currency-mismatch",
        ),
    ],
)
def test_budget_verdict(b, cost, expected):
    assert budget_verdict(b, cost) == expected


OVER = BudgetVerdict("True", "OverBudget", "cost per million tokens 2.00 USD > budget 1.50 USD")
WITHIN = BudgetVerdict("False", "WithinBudget", "cost per million tokens 2.00 USD ≤ budget 2.50 USD")
UNKNOWN = BudgetVerdict("Unknown", "NoTraffic", "no tokens")


def step(conditions, verdict, now=T0):
    return budget_condition(conditions, verdict, observed_generation=3, now=now)


def test_budget_condition_transitions_post_one_event_each():
    conds, events = step([], OVER)
    assert events == [("Warning", "OverBudget", OVER.message)]
    (c,) = conds
    assert c == {
        "type": "OverBudget",
        "status": "True",
        "observedGeneration": 3,
        "lastTransitionTime": "2026-03-01T10:00:00Z",
        "reason": "OverBudget",
        "message": OVER.message,
    }
    again, events = step(conds, OVER, T0 + timedelta(minutes=1))
    assert (again, events) == (conds, [])  # holds: nothing to write, nothing to tell
    back, events = step(conds, WITHIN, T0 + timedelta(minutes=2))
    assert events == [("Normal", "WithinBudget", WITHIN.message)]
    assert back[0]["status"] == "False" and back[0]["lastTransitionTime"] == "2026-03-01T10:02:00Z"
    unknown, events = step(back, UNKNOWN)
    assert events == [] and unknown[0]["status"] == "Unknown"
    _, events = step(unknown, WITHIN)
    assert events == []  # Unknown → False is no recovery
    _, events = step(unknown, OVER)
    assert events == [("Warning", "OverBudget", OVER.message)]


def test_without_a_budget_the_condition_is_absent():
    other = {"type": "Ready", "status": "True"}
    conds, _ = step([other], OVER)
    assert step(conds, None) == ([other], [])
    assert step([other], None) == ([other], [])


def test_budget_field_is_validated_like_the_api_server():
    doc = {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": {
            "model": {"source": "hf://o/m"},
            "budget": {"maxCostPerMillionTokens": "2.50", "currency": "USD"},
        },
    }
    assert validate_document(doc) == []

    def problems(b):
        return [str(p) for p in validate_document({**doc, "spec": {**doc["spec"], "budget": b}})]

    assert problems({"maxCostPerMillionTokens": "0.00"}) == [
        "spec.budget.maxCostPerMillionTokens: maxCostPerMillionTokens must be greater than 0"
    ]
    assert any("maxCostPerMillionTokens" in p for p in problems({"maxCostPerMillionTokens": "$2"}))
    assert any("maxCostPerMillionTokens" in p for p in problems({"maxCostPerMillionTokens": 2.5}))
    assert any("currency" in p for p in problems({"maxCostPerMillionTokens": "2", "currency": "usd"}))
    assert any("budget" in p for p in problems({"currency": "USD"}))


# ----------------------------------------------------------------------------------------- metrics


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_cost_metrics_carry_the_exact_values_and_go_away():
    md = {"namespace": "t-cost", "modeldeployment": "chat"}
    record_cost("t-cost", "chat", currency="USD", per_hour=4.0, per_million_tokens=2.0123, budget=2.5)
    assert value("slogate_cost_per_hour", **md, currency="USD") == 4.0
    assert value("slogate_cost_per_million_tokens", **md, currency="USD") == 2.0123
    assert value("slogate_cost_budget_per_million_tokens", **md, currency="USD") == 2.5
    # Prometheus did not answer: the per-token series stays as it was.
    record_cost(
        "t-cost",
        "chat",
        currency="USD",
        per_hour=4.0,
        per_million_tokens=None,
        budget=2.5,
        tokens_measured=False,
    )
    assert value("slogate_cost_per_million_tokens", **md, currency="USD") == 2.0123
    # No traffic and no budget: no series (absent, never 0 or +Inf).
    record_cost("t-cost", "chat", currency="USD", per_hour=4.0, per_million_tokens=None, budget=None)
    assert value("slogate_cost_per_million_tokens", **md, currency="USD") is None
    assert value("slogate_cost_budget_per_million_tokens", **md, currency="USD") is None
    # A new price table in another currency replaces the series.
    record_cost("t-cost", "chat", currency="EUR", per_hour=3.7, per_million_tokens=1.9, budget=None)
    assert value("slogate_cost_per_hour", **md, currency="USD") is None
    assert value("slogate_cost_per_hour", **md, currency="EUR") == 3.7
    forget_modeldeployment("t-cost", "chat")
    assert value("slogate_cost_per_hour", **md, currency="EUR") is None
    assert value("slogate_cost_per_million_tokens", **md, currency="EUR") is None


def analysed(revision: str, ttft: str | None, verdict="Pass") -> dict:
    return {
        "phase": "Progressing",
        "canaryRevision": revision,
        "lastAnalysis": {
            "revision": revision,
            "results": [
                {"name": "ttft-p95", "value": ttft, "threshold": "500ms", "verdict": verdict},
                {"name": "errorRate", "value": "0.40%", "threshold": "1.00%", "verdict": "Pass"},
                {"name": "hit-rate", "value": "0.93", "threshold": "0.9", "verdict": "Pass"},
            ],
        },
    }


def record(status, thresholds=None):
    record_modeldeployment(
        "t-obj", "chat", status, events=[], gpus_requested=1, gpus_running=1, thresholds=thresholds
    )


def test_objective_value_and_threshold_per_revision_in_base_units():
    md = {"namespace": "t-obj", "modeldeployment": "chat"}
    record(analysed("aaa", "612ms", "Fail"), {"ttft-p95": 0.5, "errorRate": 0.01, "hit-rate": 0.9})
    assert value("slogate_slo_objective_value", **md, revision="aaa", objective="ttft-p95") == 0.612
    assert value("slogate_slo_objective_threshold", **md, revision="aaa", objective="ttft-p95") == 0.5
    assert value("slogate_slo_objective_value", **md, revision="aaa", objective="errorRate") == 0.004
    assert value("slogate_slo_objective_threshold", **md, revision="aaa", objective="errorRate") == 0.01
    assert value("slogate_slo_objective_value", **md, revision="aaa", objective="hit-rate") == 0.93
    assert value("slogate_slo_objective_verdict", **md, objective="ttft-p95", verdict="Fail") == 1
    # No data: no value sample, the threshold stays; without the spec the status' threshold is read.
    record(analysed("aaa", None, "Inconclusive"))
    assert value("slogate_slo_objective_value", **md, revision="aaa", objective="ttft-p95") is None
    assert value("slogate_slo_objective_threshold", **md, revision="aaa", objective="ttft-p95") == 0.5
    # Another revision analysed: the old revision's series go.
    record(analysed("bbb", "101ms"))
    assert value("slogate_slo_objective_value", **md, revision="aaa", objective="errorRate") is None
    assert value("slogate_slo_objective_threshold", **md, revision="aaa", objective="ttft-p95") is None
    assert value("slogate_slo_objective_value", **md, revision="bbb", objective="ttft-p95") == 0.101
    # Promoted: no analysis in status, no objective series; the verdicts go with them.
    record({"phase": "Ready"})
    assert value("slogate_slo_objective_value", **md, revision="bbb", objective="ttft-p95") is None
    assert value("slogate_slo_objective_verdict", **md, objective="ttft-p95", verdict="Pass") is None


def test_a_deleted_modeldeployment_leaves_no_series():
    record(analysed("ccc", "90ms"), {"ttft-p95": 0.5})
    record_cost("t-obj", "chat", currency="USD", per_hour=1.0, per_million_tokens=0.5, budget=1.0)
    forget_modeldeployment("t-obj", "chat")
    leftovers = [
        (metric.name, s.labels)
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.labels.get("namespace") == "t-obj"
    ]
    assert leftovers == []
    forget_modeldeployment("t-obj", "chat")  # idempotent


# ----------------------------------------------------------------------------------------- CLI


def md_with_cost(*, budget_value=None, over=None, per_mtok="2.61") -> dict:
    conds = []
    if over is not None:
        conds.append(
            {
                "type": "OverBudget",
                "status": "True" if over else "False",
                "reason": "OverBudget" if over else "WithinBudget",
                "message": f"cost per million tokens {per_mtok} USD {'>' if over else '≤'} budget {budget_value} USD",
                "lastTransitionTime": "2026-03-01T10:05:00Z",
            }
        )
    cost = {"gpus": 4, "perHour": "16.00", "currency": "USD", "window": "5m"}
    if per_mtok:
        cost["perMillionTokens"] = per_mtok
    return {
        "metadata": {"name": "chat", "namespace": "ml"},
        "spec": {"budget": {"maxCostPerMillionTokens": budget_value}} if budget_value else {},
        "status": {"phase": "Ready", "message": "ok", "conditions": conds, "cost": cost},
    }


@pytest.mark.parametrize(
    ("md", "cells"),
    [
        pytest.param(md_with_cost(), ("16.00 USD", "2.61"), id="no-budget"),
        pytest.param(md_with_cost(budget_value="2.50", over=True), ("16.00 USD", "2.61 > 2.50 ✗"), id="over"),
        pytest.param(
            md_with_cost(budget_value="3.00", over=False), ("16.00 USD", "2.61 ≤ 3.00 ✓"), id="within"
        ),
        pytest.param(md_with_cost(per_mtok=None), ("16.00 USD", "-"), id="no-traffic"),
        pytest.param({"metadata": {"name": "new"}}, ("-", "-"), id="no-status"),
    ],
)
def test_cost_cells(md, cells):
    assert cost_cells(md) == cells


def test_status_table_has_cost_columns_and_marks_over_budget():
    header, line, _ = render_table([md_with_cost(budget_value="2.50", over=True)]).splitlines()
    assert header.split()[-2:] == ["COST/H", "COST/MTOK"]
    assert line.endswith("16.00 USD  2.61 > 2.50 ✗")


def test_explain_tells_the_cost_and_the_budget_transitions():
    md = md_with_cost(budget_value="2.50", over=True)
    lines = explain_lines(md, [])
    assert "  OverBudget (OverBudget): cost per million tokens 2.61 USD > budget 2.50 USD" in lines
    assert (
        "  cost: 16.00 USD/h for 4 GPUs; 2.61 USD per million generated tokens over 5m (budget 2.50)" in lines
    )
    # The Event expired: the condition's transition is in the timeline instead.
    assert "2026-03-01T10:05:00Z  ⚠ OverBudget: cost per million tokens 2.61 USD > budget 2.50 USD" in lines
    events = [
        {
            "type": "Warning",
            "reason": "OverBudget",
            "message": "cost per million tokens 2.61 USD > budget 2.50 USD",
            "lastTimestamp": "2026-03-01T10:05:00Z",
        },
        {
            "type": "Normal",
            "reason": "WithinBudget",
            "message": "cost per million tokens 2.31 USD ≤ budget 2.50 USD",
            "lastTimestamp": "2026-03-01T10:20:00Z",
        },
    ]
    within = md_with_cost(budget_value="2.50", over=False, per_mtok="2.31")
    timeline = explain_lines(within, events)
    assert timeline[-2:] == [
        "2026-03-01T10:05:00Z  ⚠ OverBudget: cost per million tokens 2.61 USD > budget 2.50 USD",
        "2026-03-01T10:20:00Z  • WithinBudget: cost per million tokens 2.31 USD ≤ budget 2.50 USD",
    ]
    assert not any(line.startswith("  OverBudget") for line in timeline)
