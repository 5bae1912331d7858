"""The Grafana dashboard (``slogate.dashboard``, shipped as charts/slogate/dashboards/slogate.json).

The committed JSON is what the generator writes (``make dashboards``); it is a Grafana dashboard
with unique panel ids on a non-overlapping grid, every panel, query, variable and annotation on the
``${datasource}`` variable, and no variable used that is not defined. Every PromQL expression —
panels, annotations and the selectors of the variable queries, with Grafana's variables replaced by
representative values — parses in the real ``promtool`` (as recording rules: ``promtool check
rules`` parses offline), and every metric it names exists: in the operator's registry
(``slogate.telemetry.REGISTRY``), in the recording rules ``core.rules`` generates, in the engine
names of ``core.engine_metrics``, or is Prometheus' own ``up``. The chart's rendering is tested with
helm in tests/integration/test_chart.py; the panels against live data in
tests/integration/test_dashboard.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from slogate import telemetry
from slogate.core import rules
from slogate.dashboard import DATASOURCE, FILE_NAME, SCHEMA_VERSION, UID, build_dashboard, dashboard_json
from tests.unit import engine_fixtures

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "slogate"
COMMITTED = CHART / "dashboards" / FILE_NAME
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__all"}
"""Variables Grafana itself defines (``$__all`` is the value of an "All" selection)."""

SAMPLE_VALUES = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "1h",
    "namespace": "ml",
    "modeldeployment": "llama",
    "revision": "(abc12345|def67890)",
    "quantile": "0.95",
}
"""What Grafana puts in place of each variable, in the shape it uses (a multi-value as a regex group)."""

PROMETHEUS_OWN = {"up"}
"""Series Prometheus writes for every target itself: ``up`` carries the PodMonitor's pod labels."""

HISTOGRAM_FIELDS = {
    "ttft",
    "inter_token_latency",
    "e2e_latency",
    "queue_time",
    "prompt_tokens",
    "generation_tokens",
}


# ------------------------------------------------------------------------------------------ helpers
def walk(node: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, promql)`` for every ``expr`` (panels, annotations) and every variable query's selector."""
    found = [
        (path, node["expr"])
        for path, node in walk(dashboard)
        if isinstance(node, dict) and isinstance(node.get("expr"), str)
    ]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", query)
            assert match, f"variable {var['name']}: only label_values(SELECTOR, LABEL) is used: {query}"
            found.append((f"$templating.{var['name']}", match.group(1)))
    return found


VARIABLE = re.compile(
    r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)|\[\[(\w+)\]\]"
)


def substitute(promql: str) -> str:
    """Grafana's variables replaced by ``SAMPLE_VALUES`` (an unknown one fails the test)."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        assert name in SAMPLE_VALUES, f"no sample value for ${name}"
        return SAMPLE_VALUES[name]

    return VARIABLE.sub(value, promql)


_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "inf", "nan"}


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression selects. Pure; strings, label matchers, ranges and
    grouping clauses are removed first, then every identifier that is not a function call or a
    keyword is a metric name.

    >>> sorted(metric_names('histogram_quantile(0.9, sum by (le) (rate(a:b_bucket{x="y"}[5m]))) / c'))
    ['a:b_bucket', 'c']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def registry_names() -> set[str]:
    """Series names the operator exports, per metric type (a labelled metric without children too)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
    }
    return {
        family.name + suffix
        for family in telemetry.REGISTRY.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def engine_names() -> set[str]:
    """Every series the engines export, from their contract fixtures (written from their source)."""
    return {name for engine in engine_fixtures.available() for name in engine_fixtures.series_names(engine)}


def recorded_names() -> set[str]:
    return {f"{rules.RECORD_PREFIX}{window}" for window in rules.WINDOWS}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text())


# ------------------------------------------------------------------------------------------ the file
def test_committed_dashboard_is_not_stale():
    assert COMMITTED.read_text() == dashboard_json(), (
        "charts/slogate/dashboards/ is stale: run `make dashboards`"
    )


def test_cli_prints_the_dashboard(capsys):
    from slogate.cli import main

    assert main(["dashboard"]) == 0
    assert capsys.readouterr().out == dashboard_json()


def test_dashboard_metadata(committed):
    assert committed["uid"] == UID and len(UID) <= 40
    assert committed["schemaVersion"] == SCHEMA_VERSION >= 39
    assert "slogate" in committed["tags"] and committed["title"]
    assert committed.get("id") is None, "an exported id would clash on import"
    assert "__inputs" not in committed, "the data source is a variable, not an import-time input"


def test_panel_ids_are_unique_and_the_grid_has_no_overlap(committed):
    ids = [p["id"] for p in panels(committed)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    taken: set[tuple[int, int]] = set()
    for p in panels(committed):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        cells = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells


def test_every_query_uses_the_datasource_variable(committed):
    for p in panels(committed):
        if p["type"] == "row":
            continue
        assert p["datasource"] == DATASOURCE, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
    for var in committed["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]
    for anno in committed["annotations"]["list"]:
        if not anno.get("builtIn"):
            assert anno["datasource"] == DATASOURCE, anno["name"]
    uids = {node["uid"] for _, node in walk(committed) if isinstance(node, dict) and "uid" in node}
    assert uids <= {UID, "${datasource}", "-- Grafana --"}, f"hard-coded data source uids: {uids}"


def test_variables_are_defined_and_used(committed):
    defined = [v["name"] for v in committed["templating"]["list"]]
    assert defined[:4] == ["datasource", "namespace", "modeldeployment", "revision"]
    assert committed["templating"]["list"][0] == {**committed["templating"]["list"][0], "query": "prometheus"}
    used = {
        next(g for g in m.groups() if g)
        for _, node in walk(committed)
        if isinstance(node, str)
        for m in VARIABLE.finditer(node)
    }
    assert used - GRAFANA_BUILTINS <= set(defined), (
        f"undefined variables: {used - GRAFANA_BUILTINS - set(defined)}"
    )
    assert set(defined) <= used, f"defined but unused: {set(defined) - used}"


def test_the_rows_the_issue_asks_for(committed):
    rows = [p["title"] for p in committed["panels"] if p["type"] == "row"]
    for word in ("Overview", "SLIs", "canary weight", "Fallback", "Cost", "drift", "Operator"):
        assert any(word in row for row in rows), (word, rows)
    names = {a["name"] for a in committed["annotations"]["list"]}
    assert {"Rollbacks", "Promotions"} <= names


# ------------------------------------------------------------------------------------------ PromQL
def test_metric_name_extraction():
    assert metric_names(
        'sum by (slogate_io_revision) (rate(vllm:x_total{handler=~"/v1|y"}[$__rate_interval]))'
    ) == {"vllm:x_total"}
    assert metric_names("a offset 2m unless b or on(x) group_left(y) c > bool 0") == {"a", "b", "c"}
    assert metric_names('{namespace="ml"}') == set()


def test_every_expression_parses_in_promtool(committed, tmp_path):
    assert Path(PROMTOOL).is_file(), "promtool is missing: apt-get install prometheus (Debian) provides it"
    exprs = expressions(committed)
    assert len(exprs) >= 40
    rules_file = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"slogate_dashboard_query_{i}", "expr": substitute(expr)}
                    for i, (_, expr) in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules_file, width=1_000_000))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_rejects_a_broken_expression(tmp_path):
    """The check above is not vacuous: promtool fails a query Grafana would fail too."""
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x", "expr": "sum(rate(x[5m])"}]}]})
    )
    assert subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True).returncode != 0


def test_every_metric_name_exists():
    known = registry_names() | recorded_names() | engine_names() | PROMETHEUS_OWN
    used = {name for _, expr in expressions(build_dashboard()) for name in metric_names(substitute(expr))}
    assert "vllm:time_to_first_token_seconds_bucket" in used and "slogate_reconcile_total" in used
    missing = sorted(used - known)
    assert not missing, f"the dashboard queries series nothing exports: {missing}"


def test_engine_series_are_selected_by_the_pod_labels():
    """Engine series by the PodMonitor's labels, operator series by ``namespace``/``modeldeployment``."""
    engine = engine_names() | PROMETHEUS_OWN
    for where, expr in expressions(build_dashboard()):
        if where.startswith("$templating"):
            continue  # the variable queries narrow by what is chosen so far (namespace, then name)
        for selector in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
            name, matchers = selector.groups()
            if name in engine:
                assert 'slogate_io_deployment="$modeldeployment"' in matchers, (where, expr)
                assert "modeldeployment=" not in matchers.replace("slogate_io_deployment=", ""), (where, expr)
            elif name.startswith("slogate_") and "reconcile" not in name and "api_writes" not in name:
                assert 'modeldeployment="$modeldeployment"' in matchers, (where, expr)


# ------------------------------------------------------------------------------------------ chart
def test_the_chart_template_ships_the_committed_file():
    template = (CHART / "templates" / "grafana-dashboard.yaml").read_text()
    assert f'.Files.Get "dashboards/{FILE_NAME}"' in template and f"{FILE_NAME}: |-" in template
    values = yaml.safe_load((CHART / "values.yaml").read_text())["grafana"]["dashboards"]
    assert values["enabled"] is True
    assert (values["label"], values["labelValue"]) == ("grafana_dashboard", "1")
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) == set(schema["properties"]["grafana"]["properties"]["dashboards"]["properties"])
