"""The Grafana dashboard for ModelDeployments, built as plain data. Pure.

One dashboard (``build_dashboard()``) with template variables for the data source, namespace,
ModelDeployment, revision and percentile, and rows for the overview, SLIs against their thresholds
per revision, the canary weight with rollback and promotion markers, fallback, cost, input drift
and the operator's own health. It is generated rather than hand-written so every engine series
comes from ``core.engine_metrics`` and every recorded ratio from ``core.rules``: renaming one there
changes the dashboard, and the committed copy in the chart (``charts/slogate/dashboards/
slogate.json``, written by ``make dashboards`` = ``slogate dashboard``) is checked for staleness by
tests/unit/test_dashboard.py. docs/dashboards.md describes each row.

Two label conventions meet here: the operator's series carry ``namespace`` and ``modeldeployment``
(``slogate.telemetry``); the engines' series carry the pod labels a PodMonitor copies
(``slogate_io_deployment``, ``slogate_io_revision``, ``slogate_io_track``, ``core.naming.pod_labels``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slogate.core.drift import DEFAULT_THRESHOLD as DRIFT_THRESHOLD
from slogate.core.engine_metrics import (
    ENGINES,
    PROM_LABEL_DEPLOYMENT,
    PROM_LABEL_REVISION,
    PROM_LABEL_TRACK,
    SGLANG,
    TGI,
    EngineMetrics,
    error_ratio_expr,
    overload_ratio_expr,
    requests_expr,
    with_matchers,
)
from slogate.core.rules import RECORD_PREFIX

UID = "slogate-modeldeployments"
"""Stable across versions, so an import or the sidecar replaces the dashboard instead of copying it."""
TITLE = "slogate / ModelDeployments"
SCHEMA_VERSION = 39
"""Grafana 11's dashboard schema; older Grafana (≥ 9) migrates nothing it does not know."""
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel, query, variable and annotation uses the data-source variable: no hard-coded uid."""

FILE_NAME = "slogate.json"
"""The key in the chart's ConfigMap and the file name under ``charts/slogate/dashboards/``."""

RATE = "$__rate_interval"
REV = PROM_LABEL_REVISION
TRACK = PROM_LABEL_TRACK

MD = '{namespace="$namespace",modeldeployment="$modeldeployment"}'
"""The operator's series of the selected ModelDeployment."""
ENGINE_ALL = f'{{namespace="$namespace",{PROM_LABEL_DEPLOYMENT}="$modeldeployment"}}'
"""The engines' series of every revision of the selected ModelDeployment."""
ENGINE = f'{{namespace="$namespace",{PROM_LABEL_DEPLOYMENT}="$modeldeployment",{REV}=~"$revision"}}'
"""The engines' series of the selected revisions."""

LATENCY_OBJECTIVES = "(ttft|latency|interTokenLatency)-p.+"
"""Objective names of the built-in latency SLIs (``core.analysis.objective_name``), in seconds."""
ERROR_RATE_OBJECTIVE = "errorRate"

ANNOTATION_STEP = "60s"
ANNOTATION_WINDOW = "2m"
"""Counter changes are looked for over two steps: at least two scrapes even at a 30 s interval."""


# ------------------------------------------------------------------------------------------ queries


def _quantile_by_revision(histogram: str, sel: str, q: str = "$quantile") -> str:
    return f"histogram_quantile({q}, sum by (le, {REV}) (rate({histogram}_bucket{sel}[{RATE}])))"


def _ttft(m: EngineMetrics) -> str:
    """TTFT by revision; for TGI the sum of its parts' quantiles (``EngineMetrics.ttft_approximation``)."""
    if m.ttft is not None:
        return _quantile_by_revision(m.ttft, ENGINE)
    return " + ".join(
        _quantile_by_revision(histogram, with_matchers(ENGINE, extra))
        for histogram, extra in m.ttft_approximation
    )


def _requests(m: EngineMetrics, sel: str, by: str = REV) -> str:
    """Requests per second (successful or not) of one engine by ``by`` (``engine_metrics.requests_expr``)."""
    return requests_expr(m, sel, window=RATE, by=(by,))


def _error_ratio(m: EngineMetrics) -> str:
    """Server faults / all requests by revision, 0..1 (``engine_metrics.error_ratio_expr``, as analysed)."""
    return error_ratio_expr(m, ENGINE, window=RATE, by=(REV,))


def _overload_ratio(m: EngineMetrics) -> str:
    """Requests shed for load / all requests by revision (TGI 429); an empty query for vLLM."""
    return overload_ratio_expr(m, ENGINE, window=RATE, by=(REV,)) or ""


def _tokens(m: EngineMetrics, kind: str) -> str:
    """Prompt or generated tokens per second by revision (TGI counts them only in its histograms)."""
    counter = m.prompt_tokens_total if kind == "prompt" else m.generation_tokens_total
    if counter is None:
        counter = f"{m.prompt_tokens if kind == 'prompt' else m.generation_tokens}_sum"
    return f"sum by ({REV}) (rate({counter}{ENGINE}[{RATE}]))"


def _new_or_changed(counter: str) -> str:
    """Steps at which a counter of the selected ModelDeployment went up, including its first increment.

    A labelled counter appears with its first increment already counted (1), which ``changes`` cannot
    see (it has no earlier sample); ``unless … offset`` catches such a new series.
    """
    sel = f"{counter}{MD}"
    return f"changes({sel}[{ANNOTATION_WINDOW}]) > 0 or ({sel} unless {sel} offset {ANNOTATION_WINDOW})"


# ------------------------------------------------------------------------------------------ panels


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": True, "refId": ref}


def _targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def _mappings(values: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Value mappings ``{"0": ("off", "green")}`` → Grafana's ``value`` mapping."""
    return [
        {
            "type": "value",
            "options": {
                value: {"text": text, "color": color, "index": i}
                for i, (value, (text, color)) in enumerate(values.items())
            },
        }
    ]


def _dashed(regex: str, color: str = "red") -> dict[str, Any]:
    """An override drawing the series whose name matches ``regex`` as a dashed line: thresholds, budgets."""
    return {
        "matcher": {"id": "byRegexp", "options": regex},
        "properties": [
            {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
            {"id": "custom.fillOpacity", "value": 0},
            {"id": "color", "value": {"mode": "fixed", "fixedColor": color}},
        ],
    }


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    width: int,
    height: int = 8,
    unit: str = "short",
    defaults: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    field_defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "palette-classic"}}
    field_defaults.update(defaults or {})
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": field_defaults, "overrides": overrides or []},
        "options": options or {},
        "gridPos": {"w": width, "h": height},
    }


def _timeseries(title: str, description: str, targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    kw.setdefault("options", {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}})
    kw["options"].setdefault("tooltip", {"mode": "multi", "sort": "desc"})
    return _panel("timeseries", title, description, targets, **kw)


def _stat(title: str, description: str, targets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    text_mode = kw.pop("text_mode", "auto")
    kw.setdefault("height", 4)
    defaults = {"color": {"mode": "thresholds"}, **kw.pop("defaults", {})}
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": text_mode,
        "colorMode": "background" if "mappings" in defaults else "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return _panel("stat", title, description, targets, defaults=defaults, options=options, **kw)


def _state_timeline(
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    mappings: dict[str, tuple[str, str]],
    **kw: Any,
) -> dict[str, Any]:
    options = {
        "mergeValues": True,
        "showValue": "auto",
        "rowHeight": 0.9,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
    }
    defaults = {"color": {"mode": "thresholds"}, "mappings": _mappings(mappings)}
    return _panel("state-timeline", title, description, targets, defaults=defaults, options=options, **kw)


def _row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each panel an id and a place: left to right, a new line when 24 columns are full or at a row."""
    x = y = line_height = 0
    for i, panel in enumerate(panels, start=1):
        grid = panel["gridPos"]
        if panel["type"] == "row" or x + grid["w"] > 24:
            y, x, line_height = y + line_height, 0, 0
        grid["x"], grid["y"] = x, y
        panel["id"] = i
        x += grid["w"]
        line_height = max(line_height, grid["h"])
        if panel["type"] == "row":
            x = 24  # nothing beside a row header
    return panels


def _overview() -> list[dict[str, Any]]:

    def verdict(value: str) -> str:
        sel = with_matchers(MD, f'verdict="{value}"')
        return f"max by (objective) (slogate_slo_objective_verdict{sel})"

    return [
        _row("Overview"),
        _stat(
            "Phase",
            "The ModelDeployment's phase (status.phase).",
            _targets((f"max by (phase) (slogate_modeldeployment_phase{MD}) == 1", "{{phase}}")),
            width=4,
            text_mode="name",
        ),
        _stat(
            "Pods scraped by track",
            "Engine pods Prometheus scrapes, by track and revision (up = 1 per reachable pod).",
            _targets((f"sum by ({TRACK}, {REV}) (up{ENGINE_ALL})", f"{{{{{TRACK}}}}} {{{{{REV}}}}}")),
            width=5,
            text_mode="value_and_name",
        ),
        _stat(
            "Canary weight",
            "Traffic weight asked for the candidate revision.",
            _targets((f"max(slogate_rollout_canary_weight_percent{MD})", "weight")),
            width=3,
            unit="percent",
            defaults={"min": 0, "max": 100},
        ),
        _stat(
            "Rollout step",
            "Index of the current rollout step (0-based).",
            _targets((f"max(slogate_rollout_step{MD})", "step")),
            width=3,
            defaults={"mappings": _mappings({"-1": ("no rollout", "text")})},
        ),
        _stat(
            "Fallback",
            "Whether traffic is on a fallback tier.",
            _targets((f"max(slogate_fallback_active{MD})", "fallback")),
            width=3,
            defaults={"mappings": _mappings({"0": ("off", "green"), "1": ("ACTIVE", "red")})},
        ),
        _stat(
            "GPUs",
            "GPUs of the ModelDeployment's pods: requested and running.",
            _targets((f"sum by (state) (slogate_gpus{MD})", "{{state}}")),
            width=3,
            text_mode="value_and_name",
        ),
        _stat(
            "Cost per hour",
            "GPU cost of the running pods per hour, from the chart's price table (cost.prices).",
            _targets((f"sum by (currency) (slogate_cost_per_hour{MD})", "{{currency}}/h")),
            width=3,
            text_mode="value_and_name",
            defaults={"decimals": 2},
        ),
        _stat(
            "SLO verdicts (latest analysis)",
            "The latest verdict of each objective: Pass, Inconclusive (no or too little data) or Fail.",
            _targets(
                (f"{verdict('Fail')} * 2 + {verdict('Inconclusive')}", "{{objective}}"),
            ),
            width=24,
            height=3,
            text_mode="value_and_name",
            defaults={
                "mappings": _mappings(
                    {"0": ("Pass", "green"), "1": ("Inconclusive", "yellow"), "2": ("Fail", "red")}
                )
            },
        ),
    ]


def _objective_panel(title: str, description: str, matcher: str, unit: str, width: int) -> dict[str, Any]:
    sel = with_matchers(MD, 'revision=~"$revision"', matcher)
    return _timeseries(
        title,
        description,
        _targets(
            (f"slogate_slo_objective_value{sel}", "{{objective}} {{revision}}"),
            (f"max by (objective) (slogate_slo_objective_threshold{sel})", "{{objective}} threshold"),
        ),
        width=width,
        unit=unit,
        overrides=[_dashed("/threshold$/")],
    )


ENGINE_NAMES = {"vllm": "vLLM", "tgi": "TGI", "sglang": "SGLang"}


def _by_engine(
    title: str, description: str, query: Callable[[EngineMetrics], str], legend: str, **kw: Any
) -> dict[str, Any]:
    """One panel, one query per engine profile (``engine_metrics.ENGINES``): only the engine the
    ModelDeployment runs returns data."""
    return _timeseries(
        title,
        description,
        _targets(*((query(m), f"{legend} ({ENGINE_NAMES[m.kind]})") for m in ENGINES)),
        **kw,
    )


def _slis() -> list[dict[str, Any]]:
    rev = f"{{{{{REV}}}}}"
    quantile = f"{rev} ${{quantile:text}}"
    recorded = f'{{namespace="$namespace",{PROM_LABEL_DEPLOYMENT}="$modeldeployment"}}'
    return [
        _row("SLIs against thresholds, per revision"),
        _objective_panel(
            "Latency objectives: value vs threshold",
            "What the operator's analysis measured per revision (ttft, latency, interTokenLatency "
            "percentiles over slo.window) against each objective's max (dashed).",
            f'objective=~"{LATENCY_OBJECTIVES}"',
            "s",
            12,
        ),
        _objective_panel(
            "Error rate objective: value vs threshold",
            "Failed share of requests per revision, as analysed, against maxPercent (dashed).",
            f'objective="{ERROR_RATE_OBJECTIVE}"',
            "percentunit",
            6,
        ),
        _objective_panel(
            "Custom objectives: value vs threshold",
            "Objectives with a custom query (and built-in ones given a name), in their own units.",
            f'objective!~"{LATENCY_OBJECTIVES}|{ERROR_RATE_OBJECTIVE}"',
            "short",
            6,
        ),
        _by_engine(
            "Time to first token, ${quantile:text}, by revision",
            "From the engines' histograms over $__rate_interval. TGI exports no TTFT histogram: its "
            "value is queue time plus prefill time, an estimate that errs high under load.",
            _ttft,
            quantile,
            width=8,
            unit="s",
        ),
        _by_engine(
            "Request latency, ${quantile:text}, by revision",
            "Whole-request latency from the engines' histograms.",
            lambda m: _quantile_by_revision(m.e2e_latency, ENGINE),
            quantile,
            width=8,
            unit="s",
        ),
        _by_engine(
            "Inter-token latency, ${quantile:text}, by revision",
            "Time between output tokens (TGI: mean time per token, prefill included).",
            lambda m: _quantile_by_revision(m.inter_token_latency, ENGINE),
            quantile,
            width=8,
            unit="s",
        ),
        _by_engine(
            "Error ratio by revision",
            "Server faults / all requests, as analysed: vLLM finished_reason=error (streamed "
            "failures included) plus 5xx before the engine; TGI err=generation|incomplete "
            "(not client drops, 422 or 429); SGLang HTTP 5xx but 503 (its streamed failures are "
            "invisible to its metrics). docs/engines.md.",
            _error_ratio,
            rev,
            width=8,
            unit="percentunit",
        ),
        _by_engine(
            "Requests per second by revision",
            "All model requests, successful or not.",
            lambda m: _requests(m, ENGINE),
            rev,
            width=8,
            unit="reqps",
        ),
        _timeseries(
            "Load shed by revision",
            'Requests refused for load (TGI: 429, tgi_request_failure{err="overloaded"}; SGLang: 503), a capacity '
            "signal kept apart from errors. vLLM answers a full queue with 503, counted as an error.",
            _targets((_overload_ratio(TGI), f"{rev} (TGI)"), (_overload_ratio(SGLANG), f"{rev} (SGLang)")),
            width=8,
            unit="percentunit",
        ),
        _timeseries(
            "Error ratio, all revisions (recording rules)",
            "The ratios the burn-rate alerts read (`slogate rules`), over 5m and 1h. Empty until the "
            "rules are loaded into Prometheus (docs/alerting.md).",
            _targets(
                (f"{RECORD_PREFIX}5m{recorded}", "{{objective}} 5m"),
                (f"{RECORD_PREFIX}1h{recorded}", "{{objective}} 1h"),
            ),
            width=8,
            unit="percentunit",
        ),
    ]


def _rollout() -> list[dict[str, Any]]:
    phases = f"max by (phase) (slogate_modeldeployment_phase{MD})"
    return [
        _row("Rollout: canary weight, rollbacks and promotions"),
        _timeseries(
            "Canary weight and step",
            "Traffic weight asked for the candidate and the current step (right axis). Red markers: "
            "rollbacks and aborts; green: promotions; orange regions: fallback (dashboard annotations).",
            _targets(
                (f"max(slogate_rollout_canary_weight_percent{MD})", "canary weight"),
                (f"max(slogate_rollout_step{MD})", "step"),
            ),
            width=12,
            unit="percent",
            defaults={"min": 0, "max": 100, "custom": {"lineInterpolation": "stepAfter", "fillOpacity": 10}},
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "step"},
                    "properties": [
                        {"id": "unit", "value": "none"},
                        {"id": "min", "value": -1},
                        {"id": "max"},
                        {"id": "custom.axisPlacement", "value": "right"},
                        {"id": "custom.fillOpacity", "value": 0},
                    ],
                }
            ],
        ),
        _state_timeline(
            "Phase over time",
            "One lane per phase; coloured while the ModelDeployment is in it.",
            _targets((phases, "{{phase}}")),
            {"0": ("", "transparent"), "1": ("current", "blue")},
            width=8,
        ),
        _stat(
            "Rollbacks and promotions in range",
            "Counted over the dashboard's time range.",
            _targets(
                (
                    f"sum by (outcome, reason) (increase(slogate_rollbacks_total{MD}[$__range]))",
                    "{{outcome}} ({{reason}})",
                ),
                (
                    f"sum by (reason) (increase(slogate_promotions_total{MD}[$__range]))",
                    "Promoted ({{reason}})",
                ),
            ),
            width=4,
            height=8,
            text_mode="value_and_name",
            defaults={"decimals": 0},
        ),
    ]


def _fallback() -> list[dict[str, Any]]:
    engines = " or ".join(_requests(m, ENGINE_ALL, TRACK) for m in ENGINES)
    return [
        _row("Fallback"),
        _state_timeline(
            "Fallback active",
            "While active, the ModelDeployment's traffic goes to a fallback tier (spec.fallback).",
            _targets((f"max(slogate_fallback_active{MD})", "fallback")),
            {"0": ("primary", "green"), "1": ("fallback", "red")},
            width=12,
        ),
        _timeseries(
            "Requests per second on this ModelDeployment, by track",
            "Requests its own pods serve: this drops while traffic is on a fallback tier.",
            _targets((engines, f"{{{{{TRACK}}}}}")),
            width=12,
            unit="reqps",
        ),
    ]


def _cost() -> list[dict[str, Any]]:
    rev = f"{{{{{REV}}}}}"
    return [
        _row("Cost"),
        _timeseries(
            "Cost per hour",
            "GPU cost of the running pods per hour, from the price table.",
            _targets((f"sum by (currency) (slogate_cost_per_hour{MD})", "{{currency}}/h")),
            width=6,
            defaults={"decimals": 2},
        ),
        _timeseries(
            "Cost per million tokens vs budget",
            "Cost per million generated tokens against spec.budget.maxCostPerMillionTokens (dashed).",
            _targets(
                (f"max by (currency) (slogate_cost_per_million_tokens{MD})", "{{currency}} per Mtok"),
                (f"max by (currency) (slogate_cost_budget_per_million_tokens{MD})", "{{currency}} budget"),
            ),
            width=6,
            overrides=[_dashed("/budget$/")],
        ),
        _timeseries(
            "Tokens per second by revision",
            "Prompt and generated tokens the engines processed.",
            _targets(
                *(
                    (_tokens(m, kind), f"{rev} {label} ({ENGINE_NAMES[m.kind]})")
                    for m in ENGINES
                    for kind, label in (("prompt", "prompt"), ("generation", "generated"))
                ),
            ),
            width=6,
        ),
        _timeseries(
            "GPUs requested and running",
            "GPUs the pods ask for and GPUs of pods that run.",
            _targets((f"sum by (state) (slogate_gpus{MD})", "{{state}}")),
            width=6,
            defaults={"decimals": 0, "min": 0},
        ),
    ]


def _drift() -> list[dict[str, Any]]:
    rev = f"{{{{{REV}}}}}"
    return [
        _row("Input drift"),
        _timeseries(
            "Drift distance by dimension",
            "Kolmogorov-Smirnov distance between the prompt and generated length distributions now and "
            "those recorded at the last promotion (docs/drift.md), against the ModelDeployment's "
            f"threshold (dashed line: the default {DRIFT_THRESHOLD:g}).",
            _targets(
                (f"max by (dimension) (slogate_input_drift_distance{MD})", "{{dimension}}"),
                (f"max(slogate_input_drift_threshold{MD})", "threshold"),
            ),
            width=10,
            defaults={
                "min": 0,
                "max": 1,
                "custom": {"thresholdsStyle": {"mode": "dashed"}},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "red", "value": DRIFT_THRESHOLD}],
                },
            },
        ),
        _state_timeline(
            "Input drift detected",
            "The InputDrift condition: a distance above its threshold.",
            _targets((f"max(slogate_input_drift{MD})", "drift")),
            {"0": ("no drift", "green"), "1": ("drift", "orange")},
            width=6,
        ),
        _by_engine(
            "Prompt length, ${quantile:text}, by revision",
            "What the drift distance compares: the prompt length per request, in tokens.",
            lambda m: _quantile_by_revision(m.prompt_tokens, ENGINE),
            f"{rev} ${{quantile:text}}",
            width=8,
        ),
    ]


def _quality() -> list[dict[str, Any]]:
    return [
        _row("Quality"),
        _timeseries(
            "Quality pass ratio by suite and revision",
            "Passed share of the answered samples of each quality suite's latest run (docs/quality.md):"
            " gate runs judge a rollout's candidate, probe runs judge stable in production.",
            _targets(
                (
                    f"max by (suite, revision, kind) (slogate_quality_pass_ratio{MD})",
                    "{{suite}} {{kind}} {{revision}}",
                )
            ),
            width=14,
            unit="percentunit",
            defaults={"min": 0, "max": 1},
        ),
        _state_timeline(
            "Quality probe verdict",
            "The production probe's latest verdict per suite; Fail sets QualityDegraded and can trigger"
            " the fallback policy.",
            _targets(
                (
                    'max by (suite) (slogate_quality_verdict{namespace="$namespace",'
                    'modeldeployment="$modeldeployment",kind="probe",verdict="Fail"})'
                    ' * 2 + max by (suite) (slogate_quality_verdict{namespace="$namespace",'
                    'modeldeployment="$modeldeployment",kind="probe",verdict="Inconclusive"})',
                    "{{suite}}",
                )
            ),
            {"0": ("pass", "green"), "1": ("inconclusive", "yellow"), "2": ("fail", "red")},
            width=10,
        ),
    ]


def _operator() -> list[dict[str, Any]]:
    buckets = f"rate(slogate_reconcile_duration_seconds_bucket[{RATE}])"
    return [
        _row("Operator"),
        _timeseries(
            "Reconciles per second by result",
            "Every operator replica; only the leader reconciles.",
            _targets((f"sum by (result) (rate(slogate_reconcile_total[{RATE}]))", "{{result}}")),
            width=6,
            unit="ops",
        ),
        _timeseries(
            "Reconcile errors per second by error",
            "Errors by class (transient API errors are retried).",
            _targets((f"sum by (error) (rate(slogate_reconcile_errors_total[{RATE}]))", "{{error}}")),
            width=6,
            unit="ops",
        ),
        _timeseries(
            "Reconcile duration",
            "Time to reconcile one ModelDeployment.",
            _targets(
                (f"histogram_quantile(0.5, sum by (le) ({buckets}))", "p50"),
                (f"histogram_quantile(0.99, sum by (le) ({buckets}))", "p99"),
            ),
            width=6,
            unit="s",
        ),
        _timeseries(
            "API writes per second by kind",
            "Writes the operator sends to the Kubernetes API; near zero when nothing changes.",
            _targets((f"sum by (verb, kind) (rate(slogate_api_writes_total[{RATE}]))", "{{verb}} {{kind}}")),
            width=6,
            unit="ops",
        ),
    ]


# ------------------------------------------------------------------------------------------ variables


def _query_variable(name: str, label: str, query: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "includeAll": False,
        "multi": False,
        "hide": 0,
        "current": {},
        "options": [],
        "regex": "",
        **extra,
    }


def _variables() -> list[dict[str, Any]]:
    quantiles = {"p50": "0.5", "p90": "0.9", "p95": "0.95", "p99": "0.99"}
    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        _query_variable("namespace", "Namespace", "label_values(slogate_modeldeployment_phase, namespace)"),
        _query_variable(
            "modeldeployment",
            "ModelDeployment",
            'label_values(slogate_modeldeployment_phase{namespace="$namespace"}, modeldeployment)',
        ),
        _query_variable(
            "revision",
            "Revision",
            f"label_values(up{ENGINE_ALL}, {REV})",
            includeAll=True,
            multi=True,
            allValue=".*",
            current={"selected": True, "text": ["All"], "value": ["$__all"]},
        ),
        {
            "type": "custom",
            "name": "quantile",
            "label": "Percentile",
            "query": ",".join(f"{text} : {value}" for text, value in quantiles.items()),
            "current": {"selected": True, "text": "p95", "value": "0.95"},
            "options": [
                {"selected": text == "p95", "text": text, "value": value} for text, value in quantiles.items()
            ],
            "hide": 0,
            "includeAll": False,
            "multi": False,
        },
    ]


def _annotation(name: str, color: str, expr: str, title: str, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": ANNOTATION_STEP,
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": "namespace,modeldeployment",
        "useValueForTime": False,
        "target": {"expr": expr, "interval": ANNOTATION_STEP, "refId": name.replace(" ", "")},
    }


def _annotations() -> list[dict[str, Any]]:
    return [
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        },
        _annotation(
            "Rollbacks",
            "red",
            f"sum by (namespace, modeldeployment, outcome, reason) ({_new_or_changed('slogate_rollbacks_total')})",
            "{{outcome}}",
            "{{modeldeployment}}: rollout {{outcome}} ({{reason}})",
        ),
        _annotation(
            "Promotions",
            "green",
            f"sum by (namespace, modeldeployment, reason) ({_new_or_changed('slogate_promotions_total')})",
            "Promoted",
            "{{modeldeployment}}: candidate promoted to stable ({{reason}})",
        ),
        _annotation(
            "Fallback",
            "orange",
            f"max by (namespace, modeldeployment) (slogate_fallback_active{MD}) == 1",
            "Fallback active",
            "{{modeldeployment}}: traffic on a fallback tier",
        ),
    ]


# ------------------------------------------------------------------------------------------ dashboard


def build_dashboard() -> dict[str, Any]:
    """The whole dashboard as a dict (Grafana's JSON model). Pure; consumed by ``dashboard_json``."""
    panels = [
        *_overview(),
        *_slis(),
        *_rollout(),
        *_fallback(),
        *_cost(),
        *_drift(),
        *_quality(),
        *_operator(),
    ]
    return {
        "uid": UID,
        "title": TITLE,
        "description": "SLIs against thresholds per revision, canary rollouts, fallback, cost, input "
        "drift and quality of slogate ModelDeployments, and the operator's health. Generated by `slogate dashboard`.",
        "tags": ["slogate", "llm", "slo", "kubernetes"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "weekStart": "",
        "links": [],
        "annotations": {"list": _annotations()},
        "templating": {"list": _variables()},
        "panels": _layout(panels),
    }


def dashboard_json() -> str:
    """The dashboard as JSON text, exactly as committed in the chart (2-space indent, trailing newline)."""
    return json.dumps(build_dashboard(), indent=2, ensure_ascii=False) + "\n"


__all__ = ["DATASOURCE", "FILE_NAME", "SCHEMA_VERSION", "TITLE", "UID", "build_dashboard", "dashboard_json"]
