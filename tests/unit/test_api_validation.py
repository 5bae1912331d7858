"""Offline validation of ModelDeployment manifests: ``validate_document`` and ``slogate validate``.

Every invalid case starts from one valid, realistic manifest (``BASE_YAML``) and applies exactly one
mutation, then asserts the exact field path and the message a user would read. The set of reported
paths must be exactly the expected one, so a rule that fires in the wrong place, or a second rule
that fires by accident, fails the test.
"""

from __future__ import annotations

import copy
import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from slogate.api.validation import Problem, validate_document
from slogate.cli import main

BASE_YAML = """\
apiVersion: slogate.io/v1alpha1
kind: ModelDeployment
metadata:
  name: chat-llama
  namespace: llm
spec:
  model:
    source: hf://meta-llama/Llama-3.1-8B-Instruct
    credentialsSecret: hf-token
  engine:
    kind: vllm
    port: 8000
    tensorParallelSize: 2
  resources:
    gpu:
      count: 2
      products: [NVIDIA-L4, NVIDIA-A10G]
      minMemoryGiB: 24
    cpu: "8"
    memory: 64Gi
  replicas: 2
  autoscaling:
    provider: keda
    minReplicas: 1
    maxReplicas: 4
    metric: queueDepth
    target: "5"
  slo:
    window: 5m
    minRequests: 100
    objectives:
      - name: ttft-p95
        metric: ttft
        percentile: 95
        max: 800ms
      - name: errors
        metric: errorRate
        maxPercent: 1
      - name: truncation
        query: sum(rate(vllm:request_success_total{finished_reason="length"}[$window]))
        max: "0.2"
  rollout:
    strategy: canary
    steps:
      - setWeight: 10
      - pause:
          duration: 5m
      - setWeight: 50
      - pause: {}
    analysis:
      interval: 1m
      initialDelay: 2m
      failureLimit: 2
      inconclusiveLimit: 3
      onInconclusive: pause
      prometheus:
        url: http://prometheus.monitoring:9090
    autoRollback: true
  fallback:
    targets:
      - modelDeployment: chat-llama-small
      - service:
          name: external-llm
          port: 443
    after: 2m
    restoreAfter: 10m
"""

Mutation = Callable[[dict[str, Any]], None]


def base() -> dict[str, Any]:
    return copy.deepcopy(_BASE)


_BASE: dict[str, Any] = yaml.safe_load(BASE_YAML)


# ------------------------------------------------------------------------------------ mutation helpers

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parts(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def _parent(doc: dict[str, Any], path: str) -> tuple[Any, str | int]:
    parts = _parts(path)
    node: Any = doc
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def setting(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        node[key] = copy.deepcopy(value)

    return mutate


def removing(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        del node[key]

    return mutate


def merging(path: str, values: dict[str, Any]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node, key = _parent(doc, path)
        node[key].update(copy.deepcopy(values))

    return mutate


def mutated(*mutations: Mutation) -> dict[str, Any]:
    doc = base()
    for mutation in mutations:
        mutation(doc)
    return doc


def _show(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems) or "<no problems>"


# ------------------------------------------------------------------------------------------ the cases

SRC = "spec.model.source"
OBJ = "spec.slo.objectives"
STEPS = "spec.rollout.steps"
TP = "spec.engine.tensorParallelSize"
ARGS = "spec.engine.args"

INVALID = [
    # --- CEL: model source
    pytest.param(
        setting(SRC, "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct"),
        SRC,
        "source must be a URI with scheme hf://, s3://, gs://, pvc:// or oci://",
        id="source-https-scheme",
    ),
    pytest.param(
        setting(SRC, "meta-llama/Llama-3.1-8B-Instruct"),
        SRC,
        "source must be a URI with scheme",
        id="source-without-scheme",
    ),
    pytest.param(
        setting(SRC, "pvc://model-cache"),
        SRC,
        "a pvc:// source is pvc://CLAIM/path/in/volume",
        id="pvc-without-path",
    ),
    pytest.param(
        setting(SRC, "pvc://Model_Cache/llama-8b"),
        SRC,
        "a pvc:// source is pvc://CLAIM/path/in/volume",
        id="pvc-claim-not-dns-label",
    ),
    pytest.param(
        setting(SRC, "hf://meta-llama/Llama-3.1-8B-Instruct/main"),
        SRC,
        "an hf:// source is hf://ORGANISATION/MODEL",
        id="hf-with-extra-segment",
    ),
    pytest.param(
        setting(SRC, "hf://Llama-3.1-8B-Instruct"),
        SRC,
        "an hf:// source is hf://ORGANISATION/MODEL",
        id="hf-without-organisation",
    ),
    # --- CEL: GPU
    pytest.param(
        merging("spec.resources.gpu", {"resource": "nvidia.com/mig-3g.40gb"}),
        "spec.resources.gpu.count",
        "count must be 1 with an nvidia.com/mig-* resource",
        id="mig-slice-count-2",
    ),
    pytest.param(
        setting("spec.resources.gpu.products", ["NVIDIA-L4", "NVIDIA-A10G", "NVIDIA-L4"]),
        "spec.resources.gpu.products",
        "products must not repeat a GPU product",
        id="duplicate-gpu-products",
    ),
    # --- CEL: autoscaling
    pytest.param(
        merging("spec.autoscaling", {"minReplicas": 5, "maxReplicas": 3}),
        "spec.autoscaling.maxReplicas",
        "maxReplicas must be greater than or equal to minReplicas",
        id="max-replicas-below-min",
    ),
    pytest.param(
        merging("spec.autoscaling", {"provider": "hpa", "minReplicas": 0}),
        "spec.autoscaling.minReplicas",
        "an HPA cannot scale to zero: minReplicas must be at least 1 with provider hpa",
        id="hpa-scale-to-zero",
    ),
    # --- CEL: objectives
    pytest.param(
        merging(f"{OBJ}[1]", {"query": "sum(rate(errors[5m]))", "max": "0.5"}),
        f"{OBJ}[1]",
        "an objective sets exactly one of metric (a built-in SLI) or query (custom PromQL)",
        id="objective-metric-and-query",
    ),
    pytest.param(
        removing(f"{OBJ}[0].metric"),
        f"{OBJ}[0]",
        "an objective sets exactly one of metric",
        id="objective-neither-metric-nor-query",
    ),
    pytest.param(
        removing(f"{OBJ}[2].name"),
        f"{OBJ}[2].name",
        "a custom query objective needs a name",
        id="custom-query-without-name",
    ),
    pytest.param(
        removing(f"{OBJ}[0].percentile"),
        f"{OBJ}[0]",
        "a latency objective (ttft, latency, interTokenLatency) needs percentile and max",
        id="latency-without-percentile",
    ),
    pytest.param(
        removing(f"{OBJ}[0].max"), f"{OBJ}[0]", "needs percentile and max", id="latency-without-max"
    ),
    pytest.param(
        setting(f"{OBJ}[0].max", "0.8"),
        f"{OBJ}[0].max",
        "max of a latency objective is a duration such as 500ms or 4s",
        id="latency-max-plain-number",
    ),
    pytest.param(
        setting(f"{OBJ}[0].max", "800 ms"),
        f"{OBJ}[0].max",
        "max of a latency objective is a duration",
        id="latency-max-with-space",
    ),
    pytest.param(
        setting(f"{OBJ}[1].percentile", 99),
        f"{OBJ}[1].maxPercent",
        "an errorRate objective takes maxPercent and no percentile",
        id="error-rate-with-percentile",
    ),
    pytest.param(
        removing(f"{OBJ}[1].maxPercent"),
        f"{OBJ}[1].maxPercent",
        "an errorRate objective takes maxPercent and no percentile",
        id="error-rate-without-max-percent",
    ),
    pytest.param(
        setting(f"{OBJ}[0].maxPercent", 5),
        f"{OBJ}[0].maxPercent",
        "maxPercent applies to the errorRate metric only",
        id="max-percent-on-latency",
    ),
    pytest.param(
        setting(f"{OBJ}[2].max", "5s"),
        f"{OBJ}[2].max",
        'a custom query objective needs max as a plain number, such as "0.9"',
        id="custom-max-duration",
    ),
    pytest.param(
        removing(f"{OBJ}[2].max"),
        f"{OBJ}[2].max",
        "a custom query objective needs max as a plain number",
        id="custom-without-max",
    ),
    pytest.param(
        setting(f"{OBJ}[2].max", 0.2),
        f"{OBJ}[2].max",
        "must be a string: quote the value",
        id="custom-max-unquoted-yaml-float",
    ),
    pytest.param(
        setting(f"{OBJ}[0].percentile", 0),
        f"{OBJ}[0].percentile",
        "percentile must lie strictly between 0 and 100",
        id="percentile-0",
    ),
    pytest.param(
        setting(f"{OBJ}[0].percentile", 100),
        f"{OBJ}[0].percentile",
        "percentile must lie strictly between 0 and 100",
        id="percentile-100",
    ),
    pytest.param(
        setting(f"{OBJ}[0].percentile", 150),
        f"{OBJ}[0].percentile",
        "percentile must lie strictly between 0 and 100",
        id="percentile-150",
    ),
    pytest.param(
        setting(f"{OBJ}[0].percentile", -1),
        f"{OBJ}[0].percentile",
        "percentile must lie strictly between 0 and 100",
        id="percentile-negative",
    ),
    pytest.param(
        setting(f"{OBJ}[1].name", "ttft-p95"),
        OBJ,
        "objective names must be unique",
        id="duplicate-objective-names",
    ),
    # --- CEL: rollout
    pytest.param(
        setting(f"{STEPS}[0]", {"setWeight": 10, "pause": {"duration": "5m"}}),
        f"{STEPS}[0]",
        "a step sets exactly one of setWeight or pause",
        id="step-set-weight-and-pause",
    ),
    pytest.param(
        setting(f"{STEPS}[3]", {}),
        f"{STEPS}[3]",
        "a step sets exactly one of setWeight or pause",
        id="step-empty",
    ),
    pytest.param(
        setting(f"{STEPS}[2].setWeight", 5),
        STEPS,
        "setWeight must increase from step to step",
        id="set-weight-decreasing",
    ),
    pytest.param(
        setting(f"{STEPS}[2].setWeight", 10),
        STEPS,
        "setWeight must increase from step to step",
        id="set-weight-repeated",
    ),
    pytest.param(
        setting("spec.rollout.strategy", "shadow"),
        "spec.rollout.strategy",
        "strategy shadow mirrors traffic through an HTTPRoute: it requires traffic.router gatewayAPI",
        id="shadow-without-gateway-api",
    ),
    pytest.param(
        (
            lambda d: (
                setting("spec.rollout.traffic", {"router": "inferencePool"})(d),
                removing("spec.fallback.targets[1]")(d),
            )
        ),
        "spec.rollout.traffic.inferencePool",
        "router inferencePool needs inferencePool.parentRefs: the Inference Gateway the HTTPRoute"
        " attaches to (set inferencePool.parentRefs[0].name to your Gateway)",
        id="inference-pool-without-gateway",
    ),
    pytest.param(
        (
            lambda d: (
                setting(
                    "spec.rollout.traffic",
                    {
                        "router": "inferencePool",
                        "inferencePool": {"parentRefs": [{"name": "mesh", "kind": "Service"}]},
                    },
                )(d),
                removing("spec.fallback.targets[1]")(d),
            )
        ),
        "spec.rollout.traffic.inferencePool.parentRefs",
        "inferencePool.parentRefs must be Gateways (kind Gateway, group gateway.networking.k8s.io):"
        " InferencePools are served by an Inference Gateway; drop kind and group or set them to those",
        id="inference-pool-parent-not-a-gateway",
    ),
    pytest.param(
        (
            lambda d: (
                setting(
                    "spec.rollout",
                    {
                        "strategy": "shadow",
                        "traffic": {
                            "router": "inferencePool",
                            "inferencePool": {"parentRefs": [{"name": "gw"}]},
                        },
                    },
                )(d),
                removing("spec.fallback.targets[1]")(d),
            )
        ),
        "spec.rollout.strategy",
        "strategy shadow is not supported with traffic.router inferencePool: no conformant Inference"
        " Gateway (Istio, Agentgateway, NGINX Gateway Fabric) mirrors to an InferencePool; use"
        " router gatewayAPI for a shadow, or strategy canary with a small first setWeight",
        id="shadow-with-inference-pool",
    ),
    pytest.param(
        merging(
            "spec",
            {
                "rollout": {
                    "traffic": {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "gw"}]}}
                },
                "fallback": {"targets": [{"service": {"name": "openai"}}]},
            },
        ),
        "spec.fallback.targets",
        "fallback.targets[].service cannot be used with rollout.traffic.router inferencePool: an"
        " InferencePool backend selects pods, not a Service; make the tier a modelDeployment (its"
        " stable InferencePool takes the traffic) or use router gatewayAPI",
        id="service-fallback-with-inference-pool",
    ),
    pytest.param(
        setting(STEPS, [{"pause": {"duration": "5m"}}]),
        STEPS,
        "strategy canary needs a setWeight step: at weight 0 the candidate runs no pods and cannot be"
        " judged (use blueGreen to analyse it at full size and switch at once)",
        id="canary-with-pauses-only",
    ),
    pytest.param(
        setting("spec.rollout.strategy", "blueGreen"),
        STEPS,
        "strategy blueGreen switches all traffic at once: its steps can only be pauses",
        id="blue-green-with-set-weight",
    ),
    pytest.param(
        setting("spec.rollout.traffic", {"router": "gatewayAPI"}),
        "spec.rollout.traffic.gatewayAPI",
        "router gatewayAPI needs gatewayAPI.parentRefs",
        id="gateway-api-router-without-block",
    ),
    # --- CEL: fallback
    pytest.param(
        setting("spec.fallback.targets[1].modelDeployment", "chat-llama-tiny"),
        "spec.fallback.targets[1]",
        "a fallback target sets exactly one of modelDeployment or service",
        id="fallback-target-both",
    ),
    pytest.param(
        setting("spec.fallback.targets[0]", {}),
        "spec.fallback.targets[0]",
        "a fallback target sets exactly one of modelDeployment or service",
        id="fallback-target-empty",
    ),
    pytest.param(
        setting("spec.fallback.targets[0].modelDeployment", "chat-llama"),
        "spec.fallback.targets",
        "a fallback target cannot be the ModelDeployment itself",
        id="fallback-to-itself",
    ),
    # --- CEL: engine vs resources, metadata
    pytest.param(
        setting(TP, 3),
        TP,
        "engine.tensorParallelSize must divide resources.gpu.count",
        id="tensor-parallel-not-dividing-count",
    ),
    pytest.param(
        removing("spec.resources.gpu"),
        TP,
        "engine.tensorParallelSize must divide resources.gpu.count",
        id="tensor-parallel-without-gpu",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "tgi", "tensorParallelSize": 1}),
        TP,
        "TGI shards over every GPU of the pod: tensorParallelSize must equal resources.gpu.count",
        id="tgi-tensor-parallel-below-count",
    ),
    # --- engine.args against the engine flag tables (core/engine_flags.py): reported per entry
    pytest.param(
        setting("spec.engine.args", ["--max-model-len=8192", "--port=9000"]),
        f"{ARGS}[1]",
        "--port is set by slogate from engine.port; set engine.port instead",
        id="args-vllm-port-owned",
    ),
    pytest.param(
        setting("spec.engine.args", ["-tp", "2"]),
        f"{ARGS}[0]",
        "--tensor-parallel-size (-tp) is set by slogate from engine.tensorParallelSize",
        id="args-vllm-tp-alias-owned",
    ),
    pytest.param(
        setting("spec.engine.args", ["--model", "other/model"]),
        f"{ARGS}[0]",
        "--model is set by slogate from model.source; set model.source instead",
        id="args-vllm-model-owned",
    ),
    pytest.param(
        setting("spec.engine.args", ["--disable-log-stats"]),
        f"{ARGS}[0]",
        "--disable-log-stats turns off every vllm:* series, which slo needs",
        id="args-vllm-disable-log-stats-with-slo",
    ),
    pytest.param(
        setting("spec.engine.args", ["--custom-histogram-buckets", '{"time_to_first_token": [0.1, 1]}']),
        f"{ARGS}[0]",
        "burn-rate alert rules slogate generates for ttft objectives select vLLM's default le bounds",
        id="args-vllm-ttft-buckets-with-ttft-objective",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "tgi", "args": ["--num-shard=2"]}),
        f"{ARGS}[0]",
        "--num-shard is set by slogate from resources.gpu.count; set resources.gpu.count instead",
        id="args-tgi-num-shard-owned",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "tgi", "args": ["--api-key", "two words"]}),
        f"{ARGS}[1]",
        "so whitespace splits this argument in two",
        id="args-tgi-whitespace",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "sglang", "args": ["--context-length", "8192", "--host", "::"]}),
        f"{ARGS}[2]",
        "--host is set by slogate to 0.0.0.0; remove it",
        id="args-sglang-host-owned",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "sglang", "args": ["--tensor-parallel-size=2"]}),
        f"{ARGS}[0]",
        "--tp-size (--tensor-parallel-size) is set by slogate from engine.tensorParallelSize",
        id="args-sglang-tp-alias-owned",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "sglang", "args": ["--enable-metrics"]}),
        f"{ARGS}[0]",
        "--enable-metrics is always set by slogate",
        id="args-sglang-enable-metrics-owned",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "sglang", "args": ["--enable-metrics-for-all-schedulers"]}),
        f"{ARGS}[0]",
        "the autoscaler sums them",
        id="args-sglang-all-schedulers-with-autoscaling",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "sglang", "args": ["--bucket-time-to-first-token", "0.5", "1"]}),
        f"{ARGS}[0]",
        "for ttft objectives select SGLang's default le bounds",
        id="args-sglang-ttft-buckets-with-ttft-objective",
    ),
    pytest.param(
        merging("spec.engine", {"kind": "sglang", "args": ["--ho=0.0.0.0"]}),
        f"{ARGS}[0]",
        "--ho is --host to SGLang (a unique prefix)",
        id="args-sglang-host-abbreviation-offline-only",
    ),
    pytest.param(
        setting("metadata.name", "chat-llama-" + "x" * 43),
        "<root>",
        "metadata.name must be at most 53 characters so that NAME-REVISION children fit in 63",
        id="name-54-chars",
    ),
    # --- pydantic: structure, types, enums, bounds, patterns
    pytest.param(
        merging("spec.engine", {"tensorParallel": 2}),
        "spec.engine.tensorParallel",
        "unknown field",
        id="unknown-field-in-engine",
    ),
    pytest.param(
        merging("spec", {"replica": 3}), "spec.replica", "unknown field", id="unknown-field-typo-in-spec"
    ),
    pytest.param(removing(SRC), SRC, "required field is missing", id="missing-model-source"),
    pytest.param(removing("metadata.name"), "metadata.name", "required field is missing", id="missing-name"),
    pytest.param(
        setting("spec.slo.window", "5 minutes"),
        "spec.slo.window",
        "must be a duration such as 500ms, 90s, 5m or 1h30m (got '5 minutes')",
        id="duration-in-words",
    ),
    pytest.param(
        setting("spec.slo.window", "0s"),
        "spec.slo.window",
        "window must be longer than 0s: every objective is a rate over it (e.g. 5m)",
        id="zero-slo-window",
    ),
    pytest.param(
        setting("spec.slo.window", "0m0.000s"),
        "spec.slo.window",
        "window must be longer than 0s: every objective is a rate over it (e.g. 5m)",
        id="zero-slo-window-spelt-long",
    ),
    pytest.param(
        setting("spec.rollout.analysis.interval", "0s"),
        "spec.rollout.analysis.interval",
        "interval must be at least 1s: each run queries Prometheus (e.g. 1m)",
        id="zero-analysis-interval",
    ),
    pytest.param(
        setting("spec.rollout.analysis.interval", "999ms"),
        "spec.rollout.analysis.interval",
        "interval must be at least 1s: each run queries Prometheus (e.g. 1m)",
        id="sub-second-analysis-interval",
    ),
    pytest.param(
        setting("spec.fallback.after", "120"),
        "spec.fallback.after",
        "must be a duration such as 500ms, 90s, 5m or 1h30m (got '120')",
        id="duration-without-unit",
    ),
    pytest.param(
        setting("spec.resources.memory", "64GB"),
        "spec.resources.memory",
        "must be a Kubernetes quantity such as 8, 500m or 64Gi (got '64GB')",
        id="quantity-bad-suffix",
    ),
    pytest.param(
        setting("spec.engine.kind", "lmdeploy"),
        "spec.engine.kind",
        "Input should be 'vllm', 'tgi' or 'sglang' (got 'lmdeploy')",
        id="engine-kind-not-in-enum",
    ),
    pytest.param(
        merging("spec.model", {"servedName": "llama:chat"}),
        "spec.model.servedName",
        "must be letters, digits, '.', '_', '/' and '-', starting with a letter or digit (no ':', which "
        "SGLang reserves for model:adapter and refuses at start-up) (got 'llama:chat')",
        id="served-name-with-colon",
    ),
    pytest.param(
        setting("spec.autoscaling.metric", "gpuUtilization"),
        "spec.autoscaling.metric",
        "(got 'gpuUtilization')",
        id="autoscaling-metric-not-in-enum",
    ),
    pytest.param(
        setting("spec.rollout.analysis.onInconclusive", "abort"),
        "spec.rollout.analysis.onInconclusive",
        "Input should be 'pause' or 'rollback' (got 'abort')",
        id="on-inconclusive-not-in-enum",
    ),
    pytest.param(
        setting("spec.engine.port", 0),
        "spec.engine.port",
        "Input should be greater than or equal to 1",
        id="port-0",
    ),
    pytest.param(
        setting("spec.engine.port", 70000),
        "spec.engine.port",
        "Input should be less than or equal to 65535",
        id="port-70000",
    ),
    pytest.param(
        setting(f"{STEPS}[0].setWeight", 0),
        f"{STEPS}[0].setWeight",
        "Input should be greater than or equal to 1",
        id="set-weight-0",
    ),
    pytest.param(
        setting(f"{STEPS}[2].setWeight", 101),
        f"{STEPS}[2].setWeight",
        "Input should be less than or equal to 100",
        id="set-weight-101",
    ),
    pytest.param(
        setting("spec.replicas", -1),
        "spec.replicas",
        "Input should be greater than or equal to 0",
        id="replicas-negative",
    ),
    pytest.param(
        setting("spec.resources.gpu.count", 32),
        "spec.resources.gpu.count",
        "Input should be less than or equal to 16",
        id="gpu-count-32",
    ),
    pytest.param(
        setting(f"{OBJ}[1].maxPercent", 150),
        f"{OBJ}[1].maxPercent",
        "Input should be less than or equal to 100",
        id="max-percent-150",
    ),
    pytest.param(setting(OBJ, []), OBJ, "List should have at least 1 item", id="objectives-empty"),
    pytest.param(
        setting("spec.fallback.targets", []),
        "spec.fallback.targets",
        "List should have at least 1 item",
        id="fallback-targets-empty",
    ),
    pytest.param(
        setting("spec.rollout.traffic", {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": []}}),
        "spec.rollout.traffic.gatewayAPI.parentRefs",
        "List should have at least 1 item",
        id="gateway-api-parent-refs-empty",
    ),
    pytest.param(
        setting("spec.model.credentialsSecret", "HF_TOKEN"),
        "spec.model.credentialsSecret",
        "must be a DNS subdomain",
        id="credentials-secret-not-dns-name",
    ),
    pytest.param(
        setting("spec.rollout.analysis.prometheus.url", "prometheus.monitoring:9090"),
        "spec.rollout.analysis.prometheus.url",
        "String should match pattern '^https?://.+$'",
        id="prometheus-url-without-scheme",
    ),
    pytest.param(
        setting("metadata.name", "Chat_Llama"),
        "metadata.name",
        "must be a DNS label",
        id="name-not-dns-label",
    ),
    pytest.param(
        setting("apiVersion", "slogate.io/v1"),
        "apiVersion",
        "unsupported version 'slogate.io/v1': use slogate.io/v1alpha1",
        id="api-version-v1",
    ),
]


def test_base_manifest_is_valid() -> None:
    assert validate_document(base()) == []


def test_there_are_at_least_35_distinct_invalid_manifests() -> None:
    ids = [p.id for p in INVALID]
    assert len(ids) == len(set(ids))
    manifests = {json.dumps(mutated(p.values[0]), sort_keys=True) for p in INVALID}
    assert len(manifests) == len(INVALID) >= 35


@pytest.mark.parametrize(("mutation", "path", "message"), INVALID)
def test_invalid_manifest_is_reported_at_its_field(mutation: Mutation, path: str, message: str) -> None:
    problems = validate_document(mutated(mutation))
    assert any(p.path == path and message in p.message for p in problems), (
        f"expected {path}: ...{message}... in:\n{_show(problems)}"
    )
    assert {p.path for p in problems} == {path}, f"unexpected extra problems:\n{_show(problems)}"


def test_mutations_do_not_leak_into_the_base() -> None:
    for p in INVALID:
        mutated(p.values[0])
    assert base() == yaml.safe_load(BASE_YAML)
    assert validate_document(base()) == []


def test_valid_variants_are_accepted() -> None:
    """The other side of the rules: shapes each rule must let through."""
    variants: list[tuple[Mutation, ...]] = [
        (setting(SRC, "pvc://model-cache/meta-llama/Llama-3.1-8B-Instruct"),),
        (setting(SRC, "s3://models/llama/8b"),),
        (setting(SRC, "oci://registry.example.com/models/llama:8b"),),
        (
            merging("spec.resources.gpu", {"resource": "nvidia.com/mig-3g.40gb", "count": 1}),
            removing("spec.engine.tensorParallelSize"),
        ),
        (merging("spec.engine", {"tensorParallelSize": 1}),),  # 2 % 1 == 0: pipeline parallel 2 (vLLM)
        (merging("spec.engine", {"kind": "tgi", "tensorParallelSize": 2}),),
        (merging("spec.autoscaling", {"minReplicas": 0}),),  # keda scales to zero
        (merging("spec.autoscaling", {"minReplicas": 4, "maxReplicas": 4}),),
        (setting(f"{OBJ}[0].percentile", 99.9),),
        (setting(f"{OBJ}[0].max", "1m30s"),),
        (setting(f"{OBJ}[2].max", "-1.5"),),
        (setting("spec.rollout.steps", [{"setWeight": 1}, {"setWeight": 100}]),),
        (setting("spec.rollout.steps", []),),
        (setting("spec.rollout.analysis.interval", "1s"), setting("spec.slo.window", "500ms")),
        (merging("spec.rollout", {"strategy": "blueGreen", "steps": [{"pause": {}}]}),),
        (merging("spec.rollout", {"strategy": "canary", "steps": [{"pause": {}}, {"setWeight": 5}]}),),
        (
            setting("spec.rollout.strategy", "shadow"),
            setting(
                "spec.rollout.traffic",
                {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}},
            ),
        ),
        (
            setting(
                "spec.rollout.traffic",
                {
                    "router": "inferencePool",
                    "inferencePool": {
                        "parentRefs": [
                            {"name": "gw", "kind": "Gateway", "group": "gateway.networking.k8s.io"}
                        ],
                        "endpointPicker": {"port": 9002, "failureMode": "FailOpen"},
                        "appProtocol": "kubernetes.io/h2c",
                    },
                },
            ),
            setting("spec.fallback", {"targets": [{"modelDeployment": "llama-small"}]}),
        ),
        (setting("metadata.name", "m" * 53),),
        (removing("spec.fallback"),),
        (removing("spec.slo"),),
        # engine.args: an overridable flag, a passthrough, buckets of a family no rule reads
        (setting("spec.engine.args", ["--gpu-memory-utilization=0.95", "--max-model-len=8192"]),),
        (setting("spec.engine.args", ["--custom-histogram-buckets", '{"request_tokens": [1, 10]}']),),
        (merging("spec.engine", {"kind": "tgi", "args": ["--max-total-tokens", "4096"]}),),
        # SGLang: pipeline parallelism below the GPU count, object stores it streams itself, every
        # autoscaling metric (queue, running, KV usage), metric flags no feature here reads
        (merging("spec.engine", {"kind": "sglang", "tensorParallelSize": 1}),),
        (merging("spec.engine", {"kind": "sglang"}), setting(SRC, "gs://models/llama/8b")),
        (merging("spec.engine", {"kind": "sglang"}), merging("spec.autoscaling", {"metric": "kvCacheUsage"})),
        (
            merging("spec.engine", {"kind": "sglang"}),
            merging("spec.autoscaling", {"metric": "runningRequests"}),
        ),
        (
            merging(
                "spec.engine",
                {
                    "kind": "sglang",
                    "args": ["--bucket-e2e-request-latency", "1", "10", "--mem-fraction-static=0.8"],
                },
            ),
        ),
        (
            merging("spec.engine", {"kind": "sglang", "args": ["--enable-metrics-for-all-schedulers"]}),
            removing("spec.autoscaling"),
        ),
        (
            setting("spec.engine.args", ["--disable-log-stats"]),
            removing("spec.slo"),
            removing("spec.autoscaling"),
            setting("spec.observability", {"inputDrift": {"enabled": False}}),
        ),
    ]
    for i, variant in enumerate(variants):
        problems = validate_document(mutated(*variant))
        assert problems == [], f"variant {i} rejected:\n{_show(problems)}"


def test_a_document_with_several_mistakes_reports_all_of_them_sorted_by_path() -> None:
    doc = mutated(
        setting("spec.replicas", -1),
        setting(SRC, "ftp://models/llama"),
        setting(f"{OBJ}[0].percentile", 100),
        setting("spec.rollout.strategy", "shadow"),
        merging("spec.engine", {"threads": 4}),
        setting("metadata.name", "x" * 60),
    )
    problems = validate_document(doc)
    got = [(p.path, p.message) for p in problems]
    expected = [
        ("<root>", "NAME-REVISION"),
        ("spec.engine.threads", "unknown field"),
        (SRC, "scheme hf://"),
        ("spec.replicas", "greater than or equal to 0"),
        ("spec.rollout.strategy", "strategy shadow"),
        (f"{OBJ}[0].percentile", "strictly between 0 and 100"),
    ]
    for path, message in expected:
        assert any(p == path and message in m for p, m in got), f"missing {path}: {message} in {got}"
    assert {p for p, _ in got} == {p for p, _ in expected}
    assert [p for p, _ in got] == sorted(p for p, _ in got)


def test_problem_renders_as_path_colon_message() -> None:
    assert str(Problem("spec.replicas", "too many")) == "spec.replicas: too many"


# ------------------------------------------------------------------- parity with the API server
# The API server prunes null values of non-nullable fields and never coerces types; so does the
# offline validator (prune_nulls, strict JSON-mode validation).


def test_string_replicas_are_rejected_like_the_api_server_does() -> None:
    problems = validate_document(mutated(setting("spec.replicas", "2")))
    assert [p.path for p in problems] == ["spec.replicas"]


def test_null_pause_step_is_rejected_like_the_api_server_does() -> None:
    problems = validate_document(mutated(setting(f"{STEPS}[3]", {"pause": None})))
    assert [p.path for p in problems] == [f"{STEPS}[3]"]


# ---------------------------------------------------------------------------------------------- CLI

VALID_DOC = BASE_YAML
INVALID_DOC = yaml.safe_dump(
    mutated(setting("spec.replicas", -1), setting("metadata.name", "broken")), sort_keys=False
)


def _write(tmp_path: Path, name: str, *docs: str) -> Path:
    path = tmp_path / name
    path.write_text("---\n".join(docs))
    return path


def test_cli_multi_document_file_reports_the_invalid_document(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "both.yaml", VALID_DOC, INVALID_DOC)
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{path}:1: spec.replicas: Input should be greater than or equal to 0"]
    assert "2 ModelDeployment(s) and suite(s) checked, 1 invalid" in err


def test_cli_valid_file_exits_0_and_prints_nothing(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "ok.yaml", VALID_DOC)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "1 ModelDeployment(s) and suite(s) checked, 0 invalid" in err


def test_cli_json_output(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "both.yaml", VALID_DOC, INVALID_DOC)
    assert main(["validate", "-o", "json", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "checked": 2,
        "valid": False,
        "problems": [
            {
                "file": str(path),
                "document": 1,
                "name": "broken",
                "path": "spec.replicas",
                "message": "Input should be greater than or equal to 0",
            }
        ],
        "warnings": [],
    }


def test_cli_json_output_when_valid(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "ok.yaml", VALID_DOC)
    assert main(["validate", str(path), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "checked": 1,
        "valid": True,
        "problems": [],
        "warnings": [],
    }


def test_cli_warns_that_the_inference_pool_router_needs_the_extension_in_the_cluster(
    tmp_path: Path, capsys
) -> None:
    """Valid offline, but only the cluster can say whether the InferencePool CRD is served: a warning,
    not a failure (exit 0), in text on stderr and in JSON under ``warnings``."""
    doc = yaml.safe_load(VALID_DOC)
    doc["spec"]["rollout"] = {
        "traffic": {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "gw"}]}}
    }
    doc["spec"].pop("fallback", None)
    path = _write(tmp_path, "pools.yaml", yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert (
        f"warning: {path}:0: spec.rollout.traffic.router: inferencePool needs the Gateway API Inference Extension"
        in err
    )
    assert main(["validate", "-o", "json", str(path)]) == 0
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert (
        warning["path"] == "spec.rollout.traffic.router"
        and "Degraded RouterUnavailable" in warning["message"]
    )


def test_cli_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(INVALID_DOC))
    assert main(["validate", "-"]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == ["<stdin>:0: spec.replicas: Input should be greater than or equal to 0"]


def test_cli_reads_valid_stdin(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(VALID_DOC))
    assert main(["validate", "-"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_missing_file_exits_2(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 2
    _, err = capsys.readouterr()
    assert f"{missing}: no such file or directory" in err


def test_cli_broken_yaml_exits_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: slogate.io/v1alpha1\nkind: ModelDeployment\nspec: [unclosed\n")
    assert main(["validate", str(path)]) == 2
    _, err = capsys.readouterr()
    assert f"{path}: not valid YAML" in err


def test_cli_unreadable_input_wins_over_invalid_documents(tmp_path: Path, capsys) -> None:
    bad = _write(tmp_path, "bad.yaml", INVALID_DOC)
    assert main(["validate", str(bad), str(tmp_path / "missing.yaml")]) == 2


def test_cli_ignores_other_kinds(tmp_path: Path, capsys) -> None:
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  replicas: '-1'\n"
    secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hf-token\nstringData:\n  HF_TOKEN: hf_xxx\n"
    other_group = "apiVersion: example.com/v1alpha1\nkind: ModelDeployment\nspec: {replicas: -1}\n"
    path = _write(tmp_path, "mixed.yaml", config_map, VALID_DOC, secret, other_group)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "1 ModelDeployment(s) and suite(s) checked, 0 invalid" in err


def test_cli_only_other_kinds_checks_nothing_and_exits_0(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    assert main(["validate", str(path)]) == 0
    assert "0 ModelDeployment(s) and suite(s) checked, 0 invalid" in capsys.readouterr().err


def test_cli_reports_wrong_version_of_our_group(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "v1.yaml", yaml.safe_dump(mutated(setting("apiVersion", "slogate.io/v1"))))
    assert main(["validate", str(path)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}:0: apiVersion: unsupported version 'slogate.io/v1': use slogate.io/v1alpha1"
    ]


def test_cli_walks_directories_recursively(tmp_path: Path, capsys) -> None:
    (tmp_path / "team" / "prod").mkdir(parents=True)
    _write(tmp_path, "ok.yaml", VALID_DOC)
    nested = _write(tmp_path / "team" / "prod", "bad.yml", INVALID_DOC)
    (tmp_path / "notes.txt").write_text("not yaml: [")
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{nested}:0: spec.replicas: Input should be greater than or equal to 0"]
    assert "2 ModelDeployment(s) and suite(s) checked, 1 invalid" in err


def test_cli_metadata_that_is_not_a_mapping_is_a_problem_not_a_crash(tmp_path: Path, capsys) -> None:
    doc = mutated(setting("metadata", "chat-llama"))
    path = _write(tmp_path, "meta.yaml", yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 1
    assert f"{path}:0: metadata" in capsys.readouterr().out


def test_cli_undecodable_file_in_a_directory_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"kind: ModelDeployment\nname: caf\xe9\n")
    assert main(["validate", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
