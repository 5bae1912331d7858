"""slogate's PromQL and the simulator against the engines' contract fixtures.

The fixtures (``tests/fixtures/engines/``) were written from each engine's released source at the
version slogate pins, with file and line for every family. Two contracts:

1. Every series selector slogate generates — analysis, minRequests, burn-rate rules, dashboard,
   KEDA/HPA triggers, cost, drift — names a series the engine exports, with labels it has and
   label values it can take. A dead or misspelt name fails the build here, not in production.
2. The simulator's ``/metrics`` in each engine mode exposes only families of that engine's
   fixture, each with the fixture's type, labels and buckets, and every family slogate selects.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slogate import dashboard
from slogate.api.v1alpha1 import Autoscaling, AutoscalingMetric, EngineKind, ModelDeploymentSpec
from slogate.core import analysis, cost, desired, drift, rules
from slogate.core.engine_metrics import VLLM, autoscaling_series, metrics_for
from tests.unit import engine_fixtures as fx
from tests.unit.test_dashboard import expressions

ENGINES = [e for e in ("vllm", "tgi", "sglang") if e in {k.value for k in EngineKind}]
OBJECTIVES = [
    {"metric": "ttft", "percentile": 95, "max": "500ms"},
    {"metric": "latency", "percentile": 99, "max": "20s"},
    {"metric": "interTokenLatency", "percentile": 95, "max": "50ms"},
    {"metric": "errorRate", "maxPercent": 1},
]


def _spec(engine: str) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://org/m"},
            "engine": {"kind": engine},
            "slo": {"window": "5m", "objectives": OBJECTIVES},
        }
    )


def generated_promql(engine: str) -> list[tuple[str, str]]:
    """``(where, promql)`` for everything slogate asks Prometheus about an ``engine`` deployment."""
    spec, kind = _spec(engine), EngineKind(engine)
    out = [
        (f"analysis {q.objective}", q.promql)
        for q in analysis.build_queries(spec=spec, namespace="ml", name="a", revision="r")
    ]
    out.append(("minRequests", analysis.requests_query(spec=spec, namespace="ml", name="a", revision="r")))
    for group in rules.build_rule_groups(name="a", namespace="ml", spec=spec):
        out += [(f"rule {r.get('record') or r.get('alert')}", r["expr"]) for r in group["rules"]]
    for metric in AutoscalingMetric:
        if autoscaling_series(kind, metric) is None:
            continue  # validation rejects autoscaling on a metric the engine lacks
        scaler = desired.build_scaled_object(
            name="a",
            namespace="ml",
            owner=desired.Owner(name="a", uid="u"),
            autoscaling=Autoscaling(metric=metric, target="1", max_replicas=3),
            engine=kind,
            stable_revision="r",
            prometheus_url="http://p",
        )
        # The HPA asks prometheus-adapter for the same series (desired.hpa_metric_name).
        out.append((f"KEDA {metric}", scaler["spec"]["triggers"][0]["metadata"]["query"]))
    out += [("cost", q) for q in cost.namespace_tokens_queries(namespace="ml", window="5m")]
    for dim in drift.DIMENSIONS:
        out.append(
            (
                f"drift {dim}",
                drift.bucket_query(engine=kind, dimension=dim, namespace="ml", name="a", window="1h"),
            )
        )
    return out


def _owner(name: str) -> str | None:
    """Which engine a series belongs to, by its name (``None``: not an engine series)."""
    for engine in ENGINES:
        if name in fx.series_names(engine):
            return engine
    if name.startswith(("vllm:", "http_")):
        return "vllm"
    if name.startswith("tgi_"):
        return "tgi"
    if name.startswith("sglang:"):
        return "sglang"
    return None


def _engine_problems(where: str, promql: str, only: str | None = None) -> list[str]:
    out = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{[^}]*\}", promql):
        engine = _owner(match.group(1))
        if engine is None or (only is not None and engine != only):
            continue
        out += [f"{where}: {p}" for p in fx.problems(engine, match.group(0))]
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_every_generated_selector_exists_in_the_engine(engine):
    assert engine in fx.available(), f"no contract fixture for {engine}: {fx.PINNED[engine]}"
    found = generated_promql(engine)
    assert len(found) >= 10
    problems = [p for where, q in found for p in _engine_problems(where, q, only=engine)]
    assert not problems, "\n".join(problems)
    # the engine's own series are what it is judged by (not only the other engine's)
    assert any(_owner(n) == engine for _, q in found for n in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", q))


@pytest.mark.parametrize("engine", ENGINES)
def test_every_profile_series_exists_in_the_engine(engine):
    m = metrics_for(EngineKind(engine))
    known = fx.series_names(engine)
    missing = sorted(s for s in m.series() if s not in known and f"{s}_bucket" not in known)
    assert not missing, f"{engine} profile names series the engine does not export: {missing}"


def test_dashboard_selectors_exist_in_their_engines():
    problems = [
        p for where, e in expressions(dashboard.build_dashboard()) for p in _engine_problems(where, e)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("broken", "expect"),
    [
        pytest.param({"ttft": "vllm:time_to_first_token"}, "no such series", id="misspelt-histogram"),
        pytest.param({"kv_cache_usage": "vllm:gpu_cache_usage_perc"}, "no such series", id="dead-name"),
        pytest.param({"server_fault": 'finished_reason="failed"'}, "never takes", id="unknown-label-value"),
        pytest.param({"server_fault": 'reason="error"'}, "no label", id="unknown-label"),
    ],
)
def test_a_broken_name_fails_the_contract(monkeypatch, broken, expect):
    """The contract is not vacuous: break one fact of the vLLM profile and it reports it."""
    import slogate.core.engine_metrics as em

    monkeypatch.setitem(em._BY_KIND, EngineKind.VLLM, dataclasses.replace(VLLM, **broken))
    problems = [p for where, q in generated_promql("vllm") for p in _engine_problems(where, q, only="vllm")]
    assert any(expect in p for p in problems), problems


# ---------------------------------------------------------------------------------- the simulator


def _sim_exposition(engine: str) -> str:
    """The simulator's /metrics after traffic with every outcome (TGI registers a family at its
    first use, like the real router, so a fresh one exports nothing)."""
    from slogate.sim import SimConfig, Simulator

    sim = Simulator(
        SimConfig(
            mode=engine, model="m", rps=200, error_rate=0.1, overload_rate=0.1, client_drop_rate=0.1, seed=7
        )
    )
    for stage in ("midstream", "prestream"):
        sim.update(error_stage=stage)
        sim.synthetic_tick(1.0)
    return sim.metrics_text()


@pytest.mark.parametrize("engine", ENGINES)
def test_simulator_families_match_the_engine_family_for_family(engine):
    families = fx.families(engine)
    suffix = fx.load(engine)["counter_suffix"]
    text = _sim_exposition(engine)
    exposed = {fam.name: fam for fam in text_string_to_metric_families(text)}
    problems = []
    for name, fam in exposed.items():
        want = families.get(name)
        if want is None:
            problems.append(
                f"{name}: the simulator exports it, {engine} {fx.load(engine)['version']} does not"
            )
            continue
        if fam.type != want.type and not (want.type == "counter" and fam.type == "unknown"):
            problems.append(f"{name}: type {fam.type}, the engine's is {want.type} ({want.source})")
        labels = {k for s in fam.samples for k in s.labels} - {"le", "quantile"}
        if labels and labels != set(want.labels):
            problems.append(
                f"{name}: labels {sorted(labels)}, the engine's {sorted(want.labels)} ({want.source})"
            )
        if want.type == "histogram" and want.buckets is not None:
            bounds = sorted({float(s.labels["le"]) for s in fam.samples if "le" in s.labels} - {float("inf")})
            if tuple(bounds) != want.buckets:
                problems.append(
                    f"{name}: buckets {bounds[:4]}…({len(bounds)}), the engine's {list(want.buckets[:4])}…({len(want.buckets)}) ({want.source})"
                )
    for n in sorted(metrics_for(EngineKind(engine)).series()):
        if n not in exposed and (not suffix or n.removesuffix(suffix) not in exposed):
            problems.append(f"{n}: slogate selects it, the simulator does not export it")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("metric", ["ttft", "latency", "interTokenLatency"])
def test_alert_bucket_tables_are_the_engine_defaults(engine, metric):
    """The burn-rate rules round thresholds to these bounds and select ``le`` by them: they must be
    the buckets the engine really exports (by default; engine_flags rejects the flags that change them)."""
    from slogate.api.v1alpha1 import SLIMetric

    m = metrics_for(EngineKind(engine))
    buckets = rules.buckets_for(EngineKind(engine), SLIMetric(metric))
    if buckets is None:
        assert engine == "tgi" and metric == "ttft"  # TGI exports no TTFT histogram
        return
    histogram = {"ttft": m.ttft, "latency": m.e2e_latency, "interTokenLatency": m.inter_token_latency}[metric]
    assert histogram is not None
    assert tuple(buckets) == fx.families(engine)[histogram].buckets
