"""SLO alerting rules (``core.rules``, ``slogate rules``): pure structure, and the real promtool.

``promtool check rules`` proves every generated file loads in Prometheus; ``promtool test rules``
feeds synthetic counters growing at chosen rates and proves each burn-rate alert fires at its burn
rate and stays quiet below it. promtool comes from Debian's ``prometheus`` package; a missing
promtool is a failure, never a skip.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from slogate.api.v1alpha1 import EngineKind, ModelDeploymentSpec, Objective, SLIMetric
from slogate.cli.rules import register, render
from slogate.core import rules
from tests.unit.engine_series import SERIES, Mix

FIXTURES = Path(__file__).parent.parent / "fixtures" / "promtool"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).is_file(), "promtool is missing: apt-get install prometheus (Debian) provides it"
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120)


def spec_of(*objectives: dict, engine: str = "vllm", window: str = "5m") -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://org/model"},
            "engine": {"kind": engine},
            "slo": {"window": window, "objectives": list(objectives)},
        }
    )


ERROR_RATE = {"metric": "errorRate", "maxPercent": 1}
TTFT_P99 = {"metric": "ttft", "percentile": 99, "max": "400ms"}


def dump(doc: object, path: Path) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000))
    return path


# ------------------------------------------------------------------------------------ pure structure


def test_bucket_tables_match_the_simulator():
    from slogate.sim import metrics as sim

    assert rules.VLLM_TTFT_BUCKETS == sim.VLLM_TTFT_BUCKETS
    assert rules.VLLM_ITL_BUCKETS == sim.VLLM_ITL_BUCKETS
    assert rules.VLLM_REQUEST_LATENCY_BUCKETS == sim.VLLM_REQUEST_LATENCY_BUCKETS
    assert list(rules.TGI_DURATION_BUCKETS) == sim.tgi_duration_buckets()


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        pytest.param(0.5, 0.5, id="on-a-bound"),
        pytest.param(0.4, 0.5, id="rounds-up"),
        pytest.param(0.0001, 0.001, id="below-the-smallest"),
        pytest.param(0.5000001, 0.75, id="just-above-a-bound"),
        pytest.param(5000, 2560.0, id="above-the-largest-falls-back"),
    ],
)
def test_bucket_bound(threshold, expected):
    assert rules.bucket_bound(threshold, rules.VLLM_TTFT_BUCKETS) == expected


def test_le_label_matches_the_exporters_spelling():
    from prometheus_client.utils import floatToGoString

    for bound in (*rules.VLLM_TTFT_BUCKETS, *rules.VLLM_REQUEST_LATENCY_BUCKETS, *rules.TGI_DURATION_BUCKETS):
        assert rules.le_label(bound) == floatToGoString(bound)


@pytest.mark.parametrize(
    ("objective", "budget"),
    [
        ({"metric": "ttft", "percentile": 95, "max": "500ms"}, "0.05"),
        ({"metric": "latency", "percentile": 99.9, "max": "4s"}, "0.001"),
        ({"metric": "errorRate", "maxPercent": 1}, "0.01"),
        ({"metric": "errorRate", "maxPercent": 0.5}, "0.005"),
    ],
)
def test_error_budget(objective, budget):
    assert str(rules.error_budget(Objective.model_validate(objective))) == budget


def test_recording_rules_names_labels_and_windows():
    groups = rules.build_rule_groups(name="llama", namespace="ml", spec=spec_of(TTFT_P99, ERROR_RATE))
    assert [g["name"] for g in groups] == ["slogate-ml-llama-sli", "slogate-ml-llama-alerts"]
    records = groups[0]["rules"]
    assert [(r["record"], r["labels"]["objective"]) for r in records] == [
        *((f"slogate:sli_error_ratio:rate{w}", "ttft-p99") for w in ("5m", "30m", "1h", "6h")),
        *((f"slogate:sli_error_ratio:rate{w}", "errorRate") for w in ("5m", "30m", "1h", "6h")),
    ]
    assert all(
        r["labels"]
        == {"namespace": "ml", "slogate_io_deployment": "llama", "objective": r["labels"]["objective"]}
        for r in records
    )
    ttft_5m = records[0]["expr"]
    assert ttft_5m == (
        '1 - (sum(rate(vllm:time_to_first_token_seconds_bucket{namespace="ml",slogate_io_deployment="llama",le="0.5"}[5m]))'
        ' / sum(rate(vllm:time_to_first_token_seconds_count{namespace="ml",slogate_io_deployment="llama"}[5m])))'
    )
    assert "slogate_io_revision" not in ttft_5m  # every revision together
    err_1h = records[6]["expr"]
    assert 'finished_reason="error"' in err_1h and 'status="5xx"' in err_1h and "[1h]" in err_1h


def test_burn_rate_alerts():
    groups = rules.build_rule_groups(name="llama", namespace="ml", spec=spec_of(TTFT_P99, ERROR_RATE))
    alerts = groups[1]["rules"]
    assert [(a["alert"], a["labels"]["objective"]) for a in alerts] == [
        ("SlogateErrorBudgetFastBurn", "ttft-p99"),
        ("SlogateErrorBudgetSlowBurn", "ttft-p99"),
        ("SlogateErrorBudgetFastBurn", "errorRate"),
        ("SlogateErrorBudgetSlowBurn", "errorRate"),
    ]
    fast = alerts[2]
    sel = '{namespace="ml",slogate_io_deployment="llama",objective="errorRate"}'
    assert fast["expr"] == (
        f"slogate:sli_error_ratio:rate1h{sel} > 0.144 and slogate:sli_error_ratio:rate5m{sel} > 0.144"
    )
    assert alerts[3]["expr"].startswith(f"slogate:sli_error_ratio:rate6h{sel} > 0.06 and ")
    assert fast["labels"]["severity"] == "page"
    assert "ml/llama" in fast["annotations"]["summary"] and "errorRate ≤ 1%" in fast["annotations"]["summary"]
    assert "slogate explain llama -n ml" in fast["annotations"]["runbook"]
    assert "(measured at the histogram bucket 0.5s)" in alerts[0]["annotations"]["summary"]


def test_threshold_alerts_for_custom_queries_and_tgi_ttft():
    spec = spec_of(
        {"metric": "ttft", "percentile": 95, "max": "800ms"},
        {
            "name": "queue",
            "query": 'max(q{ns="$namespace",slogate_io_revision="$revision"}[$window])',
            "max": "20",
        },
        engine="tgi",
        window="1.5m",
    )
    groups = rules.build_rule_groups(name="m", namespace="llm", spec=spec)
    assert [g["name"] for g in groups] == ["slogate-llm-m-alerts"]  # nothing to record
    ttft, queue = groups[0]["rules"]
    assert ttft["alert"] == queue["alert"] == "SlogateObjectiveBreached"
    assert ttft["for"] == queue["for"] == "5m"
    assert "tgi_request_queue_duration_bucket" in ttft["expr"] and ttft["expr"].endswith(") > 0.8")
    assert queue["expr"] == '(max(q{ns="llm",slogate_io_revision=~".+"}[1m30s])) > 20'


def test_no_slo_no_rules():
    spec = ModelDeploymentSpec.model_validate({"model": {"source": "hf://org/model"}})
    assert rules.rules_file(name="x", namespace="y", spec=spec) == {"groups": []}


def test_prometheus_rule():
    owner = {"apiVersion": "slogate.io/v1alpha1", "kind": "ModelDeployment", "name": "llama", "uid": "u-1"}
    spec = spec_of(ERROR_RATE)
    pr = rules.prometheus_rule(name="llama", namespace="ml", spec=spec, owner_reference=owner)
    assert pr["apiVersion"] == "monitoring.coreos.com/v1" and pr["kind"] == "PrometheusRule"
    assert pr["metadata"] == {
        "name": "llama-slo",
        "namespace": "ml",
        "labels": {"app.kubernetes.io/managed-by": "slogate", "slogate.io/deployment": "llama"},
        "ownerReferences": [owner],
    }
    assert pr["spec"]["groups"] == rules.build_rule_groups(name="llama", namespace="ml", spec=spec)
    assert (
        "ownerReferences"
        not in rules.prometheus_rule(name="llama", namespace="ml", spec=spec, owner_reference=None)[
            "metadata"
        ]
    )


def test_buckets_for():
    assert rules.buckets_for(EngineKind.VLLM, SLIMetric.LATENCY) == rules.VLLM_REQUEST_LATENCY_BUCKETS
    assert rules.buckets_for(EngineKind.TGI, SLIMetric.INTER_TOKEN_LATENCY) == rules.TGI_DURATION_BUCKETS
    assert rules.buckets_for(EngineKind.TGI, SLIMetric.TTFT) is None


# ------------------------------------------------------------------------------------- promtool check


@pytest.mark.parametrize("fixture", ["vllm-all-objectives.yaml", "tgi-all-objectives.yaml"])
@pytest.mark.parametrize("prometheus_rule", [False, True], ids=["rules-file", "prometheus-rule"])
def test_promtool_check_rules(tmp_path, fixture, prometheus_rule):
    out = yaml.safe_load(
        render(
            yaml.safe_load_all((FIXTURES / fixture).read_text()),
            default_namespace="default",
            prometheus_rule=prometheus_rule,
        )
    )
    groups = out["spec"]["groups"] if prometheus_rule else out["groups"]
    path = dump({"groups": groups}, tmp_path / "rules.yaml")
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_cli_reads_a_manifest(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["rules", str(FIXTURES / "vllm-all-objectives.yaml")])
    assert args.func(args) == 0
    path = tmp_path / "cli.yaml"
    path.write_text(capsys.readouterr().out)
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    args = parser.parse_args(["rules", str(FIXTURES / "vllm-all-objectives.yaml"), "--prometheus-rule"])
    assert args.func(args) == 0
    assert yaml.safe_load(capsys.readouterr().out)["kind"] == "PrometheusRule"


def test_cli_rejects_a_file_without_model_deployments(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    empty = tmp_path / "cm.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    args = parser.parse_args(["rules", str(empty)])
    assert args.func(args) == 1
    assert "no ModelDeployment" in capsys.readouterr().err


# -------------------------------------------------------------------------------------- promtool test

# Three deployments, each served at 100 requests a minute, whose bad share gives a burn rate of 20
# (both alerts), 8 (the slow one only: above 6, below 14.4) and 2 (quiet). Budget 1% everywhere.
BURNS = {"burn20": 20, "burn8": 8, "burn2": 2}
MINUTES = 120
EVAL = "70m"  # the 1h window is full; the 6h one is not, and rate() extrapolates over what exists


def _series_error_rate(engine: str) -> list[dict[str, str]]:
    """Each deployment fails ``burn`` of 100 *streamed* chat requests a minute inside the engine —
    HTTP 200 then an error event on vLLM, tgi_request_count twice per request on TGI — as the
    engines count them (tests/unit/engine_series.py)."""
    series = []
    for name, burn in BURNS.items():
        lab = f'namespace="ml",slogate_io_deployment="{name}",slogate_io_revision="abc12345"'
        series += SERIES[engine](lab, Mix(ok_streamed=100 - burn, fault_streamed=burn), MINUTES)
    return series


def _series_ttft() -> list[dict[str, str]]:
    series = []
    for name, burn in BURNS.items():
        lab = f'namespace="ml",slogate_io_deployment="{name}",slogate_io_revision="abc12345",model_name="m",engine="0"'
        h = "vllm:time_to_first_token_seconds"
        series += [
            # 400ms rounds up to the 0.5 bucket; the 0.25 bucket holds far fewer and would page all three
            {"series": f'{h}_bucket{{{lab},le="0.25"}}', "values": f"0+50x{MINUTES}"},
            {"series": f'{h}_bucket{{{lab},le="0.5"}}', "values": f"0+{100 - burn}x{MINUTES}"},
            {"series": f'{h}_bucket{{{lab},le="+Inf"}}', "values": f"0+100x{MINUTES}"},
            {"series": f"{h}_count{{{lab}}}", "values": f"0+100x{MINUTES}"},
        ]
    return series


def _expected(groups: list[dict], alert: str, firing: list[str]) -> list[dict]:
    """The alerts promtool should see: labels and annotations as generated, with $value filled in."""
    out = []
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") != alert or rule["labels"]["slogate_io_deployment"] not in firing:
                continue
            ratio = BURNS[rule["labels"]["slogate_io_deployment"]] / 100
            annotations = {
                k: v.replace("{{ $value | humanizePercentage }}", f"{ratio * 100:g}%")
                for k, v in rule["annotations"].items()
            }
            out.append({"exp_labels": {**rule["labels"], "alertname": alert}, "exp_annotations": annotations})
    return out


def _run_burn_test(tmp_path: Path, objective: dict, engine: str, series: list[dict]) -> None:
    groups = [
        g
        for name in BURNS
        for g in rules.build_rule_groups(name=name, namespace="ml", spec=spec_of(objective, engine=engine))
    ]
    dump({"groups": groups}, tmp_path / "rules.yaml")
    fast, slow = (b.alert for b in rules.BURN_RATE_ALERTS)
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": EVAL, "alertname": fast, "exp_alerts": _expected(groups, fast, ["burn20"])},
                    {
                        "eval_time": EVAL,
                        "alertname": slow,
                        "exp_alerts": _expected(groups, slow, ["burn20", "burn8"]),
                    },
                    # before any traffic, no ratio exists and nothing fires
                    {"eval_time": "0m", "alertname": fast, "exp_alerts": []},
                ],
                "promql_expr_test": [
                    {
                        # per mille, rounded: promtool compares floats exactly
                        "expr": f'round(1000 * slogate:sli_error_ratio:rate1h{{slogate_io_deployment="{name}"}})',
                        "eval_time": EVAL,
                        "exp_samples": [
                            {
                                "labels": (
                                    f'{{namespace="ml",objective="'
                                    f'{groups[0]["rules"][0]["labels"]["objective"]}",slogate_io_deployment="{name}"}}'
                                ),
                                "value": burn * 10,
                            }
                        ],
                    }
                    for name, burn in BURNS.items()
                ],
            }
        ],
    }
    path = dump(test, tmp_path / "test.yaml")
    result = promtool("test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("engine", ["vllm", "tgi"])
def test_promtool_burn_rate_alerts_error_rate(tmp_path, engine):
    _run_burn_test(tmp_path, ERROR_RATE, engine, _series_error_rate(engine))


def test_promtool_burn_rate_alerts_ttft(tmp_path):
    _run_burn_test(tmp_path, TTFT_P99, "vllm", _series_ttft())


def test_promtool_custom_query_threshold_alert(tmp_path):
    objective = {
        "name": "queue",
        "query": 'max(vllm:num_requests_waiting{namespace="$namespace",slogate_io_revision="$revision"})',
        "max": "20",
    }
    groups = rules.build_rule_groups(name="llama", namespace="ml", spec=spec_of(objective))
    dump({"groups": groups}, tmp_path / "rules.yaml")
    lab = 'namespace="ml",slogate_io_deployment="llama"'
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                # two revisions: the new one queues 30 from minute 10 on
                "input_series": [
                    {
                        "series": f'vllm:num_requests_waiting{{{lab},slogate_io_revision="old"}}',
                        "values": "5x30",
                    },
                    {
                        "series": f'vllm:num_requests_waiting{{{lab},slogate_io_revision="new"}}',
                        "values": "0x9 30x20",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "12m", "alertname": rules.THRESHOLD_ALERT, "exp_alerts": []},  # pending
                    {
                        "eval_time": "16m",
                        "alertname": rules.THRESHOLD_ALERT,
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **groups[0]["rules"][0]["labels"],
                                    "alertname": rules.THRESHOLD_ALERT,
                                },
                                "exp_annotations": {
                                    k: v.replace("{{ $value | humanize }}", "30")
                                    for k, v in groups[0]["rules"][0]["annotations"].items()
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    result = promtool("test", "rules", dump(test, tmp_path / "test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_doctests():
    import doctest

    assert doctest.testmod(rules).failed == 0


def test_promtool_quality_probe_alert_fires_on_a_failing_probe_only(tmp_path):
    """The probe's alert reads the operator's own verdict series: it fires while the latest probe
    verdict of its suite is Fail, and not for another suite, another ModelDeployment or a gate run."""
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://org/model"},
            "quality": {
                "suites": [{"name": "extraction", "configMap": "s", "minPassRate": 0.9}],
                "probe": {"interval": "10m"},
            },
        }
    )
    groups = rules.build_rule_groups(name="llama", namespace="ml", spec=spec)
    assert [g["name"] for g in groups] == ["slogate-ml-llama-quality"]
    dump({"groups": groups}, tmp_path / "rules.yaml")
    assert promtool("check", "rules", tmp_path / "rules.yaml").returncode == 0

    def series(verdict: str, values: str, **labels: str) -> dict[str, str]:
        lab = {
            "namespace": "ml",
            "modeldeployment": "llama",
            "suite": "extraction",
            "kind": "probe",
            **labels,
        }
        text = ",".join(f'{k}="{v}"' for k, v in {**lab, "verdict": verdict}.items())
        return {"series": f"slogate_quality_verdict{{{text}}}", "values": values}

    rule = groups[0]["rules"][0]
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("Pass", "1x4 0x5 1x5"),
                    series("Fail", "0x4 1x5 0x5"),  # minutes 5..9 the probe fails
                    series("Fail", "1x15", kind="gate"),  # a failing gate run is not production
                    series("Fail", "1x15", modeldeployment="other"),
                    series("Fail", "1x15", suite="another"),
                ],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": rules.QUALITY_ALERT, "exp_alerts": []},
                    {
                        "eval_time": "7m",
                        "alertname": rules.QUALITY_ALERT,
                        "exp_alerts": [
                            {
                                "exp_labels": {**rule["labels"], "alertname": rules.QUALITY_ALERT},
                                "exp_annotations": rule["annotations"],
                            }
                        ],
                    },
                    {"eval_time": "12m", "alertname": rules.QUALITY_ALERT, "exp_alerts": []},
                ],
            }
        ],
    }
    result = promtool("test", "rules", dump(test, tmp_path / "test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
