"""Pure parts of the local control plane: node shapes, PodMonitor-style labels, simulator settings."""

from __future__ import annotations

import json

import pytest

from slogate.dev.bridge import (
    engine_mode,
    parse_selector,
    sanitize_label,
    selector_matches,
    sim_config_for,
    target_labels,
    wants_simulator,
)
from slogate.dev.nodes import A100, H100, NodeSet, build_nodes
from slogate.sim import SimConfig


def test_default_nodes_look_like_gpu_feature_discovery():
    nodes = {n["metadata"]["name"]: n for n in build_nodes(NodeSet())}
    assert list(nodes) == ["gpu-0", "gpu-1", "gpu-2", "mig-0", "cpu-0"]
    gpu0 = nodes["gpu-0"]
    assert gpu0["metadata"]["labels"]["nvidia.com/gpu.product"] == H100.name
    assert gpu0["metadata"]["labels"]["nvidia.com/gpu.memory"] == "81559"
    assert gpu0["metadata"]["labels"]["nvidia.com/gpu.count"] == "4"
    assert gpu0["status"]["capacity"]["nvidia.com/gpu"] == "4"
    assert gpu0["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert gpu0["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert nodes["mig-0"]["status"]["capacity"]["nvidia.com/mig-3g.40gb"] == "2"
    assert "nvidia.com/gpu" not in nodes["mig-0"]["status"]["capacity"]
    assert nodes["cpu-0"]["spec"]["taints"] == []
    assert "nvidia.com/gpu" not in nodes["cpu-0"]["status"]["capacity"]


def test_node_set_is_configurable():
    nodes = build_nodes(
        NodeSet(gpu_nodes=4, products=(A100,), gpus_per_node=(8,), mig_node=False, cpu_node=False)
    )
    assert [n["metadata"]["name"] for n in nodes] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    assert {n["status"]["capacity"]["nvidia.com/gpu"] for n in nodes} == {"8"}
    assert {n["metadata"]["labels"]["nvidia.com/gpu.product"] for n in nodes} == {A100.name}


def _pod(**over):
    pod = {
        "metadata": {
            "name": "llama-abc-1",
            "namespace": "ml",
            "uid": "u1",
            "labels": {"slogate.io/deployment": "llama", "slogate.io/revision": "abc", "app": "x"},
        },
        "spec": {
            "containers": [
                {
                    "name": "engine",
                    "image": "vllm/vllm-openai:v0.33.0",
                    "args": ["--model", "m", "--served-model-name", "chat", "chat-alias", "--port", "8000"],
                }
            ]
        },
        "status": {"phase": "Running", "podIP": "10.244.0.3"},
    }
    for k, v in over.items():
        pod[k] = {**pod[k], **v}
    return pod


@pytest.mark.parametrize(
    "pod, wanted",
    [
        pytest.param(_pod(), True, id="running-managed"),
        pytest.param(_pod(status={"phase": "Pending"}), False, id="pending"),
        pytest.param(_pod(status={"podIP": None}), False, id="no-ip"),
        pytest.param(_pod(metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}), False, id="terminating"),
        pytest.param(_pod(metadata={"labels": {"app": "x"}}), False, id="not-ours"),
        pytest.param(_pod(metadata={"labels": {"slogate.io/simulate": "true"}}), True, id="opt-in-label"),
    ],
)
def test_wants_simulator(pod, wanted):
    assert wants_simulator(pod) is wanted


def test_labels_follow_podmonitor_pod_target_labels():
    assert target_labels(_pod()) == {
        "slogate_io_deployment": "llama",
        "slogate_io_revision": "abc",
        "app": "x",
        "namespace": "ml",
        "pod": "llama-abc-1",
        "container": "engine",
    }
    assert sanitize_label("app.kubernetes.io/name") == "app_kubernetes_io_name"


def test_sim_config_from_engine_annotation_and_rules():
    cfg = sim_config_for(_pod(), [])
    assert cfg["mode"] == "vllm" and cfg["model"] == "chat" and cfg["aliases"] == ["chat-alias"]
    tgi = _pod(
        spec={
            "containers": [
                {
                    "name": "engine",
                    "image": "ghcr.io/huggingface/text-generation-inference:3.3.6",
                    "args": ["--model-id", "mistral"],
                }
            ]
        }
    )
    assert sim_config_for(tgi, [])["mode"] == "tgi"
    annotated = _pod(metadata={"annotations": {"sim.slogate.io/config": json.dumps({"ttft_ms": 50})}})
    assert sim_config_for(annotated, [])["ttft_ms"] == 50
    rules = [
        {
            "namespace": "ml",
            "pod": None,
            "selector": {"slogate.io/revision": "abc"},
            "config": {"ttft_ms": 900},
        },
        {"namespace": "other", "pod": None, "selector": {}, "config": {"error_rate": 1.0}},
        {"namespace": "ml", "pod": "someone-else", "selector": {}, "config": {"rps": 5}},
    ]
    cfg = sim_config_for(annotated, rules)
    assert cfg["ttft_ms"] == 900 and cfg["error_rate"] == 0.0 and cfg["rps"] == 0.0


def _engine_pod(container):
    return _pod(spec={"containers": [{"name": "engine", **container}]})


@pytest.mark.parametrize(
    "container, mode, model, model_path",
    [
        pytest.param(
            # what slogate emits for SGLang (core.desired): the launcher module and one served name
            {
                "image": "lmsysorg/sglang:v0.5.23",
                "command": ["python3", "-m", "sglang.launch_server"],
                "args": ["--model-path", "org/m", "--served-model-name", "a", "--port", "8000"],
            },
            "sglang",
            "a",
            "org/m",
            id="sglang-as-slogate-runs-it",
        ),
        pytest.param(
            {
                "image": "registry.local/llm:7",
                "command": ["python3", "-m", "sglang.launch_server", "--model=org/m"],
            },
            "sglang",
            "org/m",  # no --served-model-name: SGLang serves under the model path
            "org/m",
            id="sglang-by-command-only",
        ),
        pytest.param(
            {"image": "lmsysorg/sglang:v0.5.23-runtime", "args": ["--model-path", "org/m"]},
            "sglang",
            "org/m",
            "org/m",
            id="sglang-by-image-only",
        ),
        pytest.param(
            {"image": "lmsysorg/sglang:latest"},
            "sglang",
            "llama",
            None,
            id="sglang-no-flags-keeps-deployment",
        ),
        pytest.param(
            {"image": "ghcr.io/huggingface/text-generation-inference:3.3.6", "args": ["--model-id", "m"]},
            "tgi",
            "m",
            None,
            id="tgi",
        ),
        pytest.param(
            {"image": "vllm/vllm-openai:v0.33.0", "args": ["--model", "org/m"]},
            "vllm",
            "llama",
            None,
            id="vllm-model-path-not-a-served-name",
        ),
    ],
)
def test_engine_mode_and_served_name_per_engine(container, mode, model, model_path):
    cfg = sim_config_for(_engine_pod(container), [])
    assert (cfg["mode"], cfg["model"], cfg.get("model_path")) == (mode, model, model_path)
    SimConfig(**cfg)  # what the bridge starts is a valid simulator configuration


def test_engine_mode_is_not_fooled_by_lookalikes():
    assert engine_mode("vllm/vllm-openai:v0.33.0", ["--model", "sglang-finetune"]) == "vllm"
    assert engine_mode("vllm/vllm-openai:v0.33.0", ["python3", "-m", "sglang.launch_server"]) == "sglang"
    assert engine_mode("", []) == "vllm"


def test_selectors():
    assert parse_selector("a=b, c==d") == {"a": "b", "c": "d"}
    assert selector_matches({"a": "b"}, {"a": "b", "x": "y"})
    assert not selector_matches({"a": "b"}, {"a": "c"})
    with pytest.raises(ValueError, match="equality"):
        parse_selector("a in (b)")


def test_the_local_service_range_holds_5000_modeldeployments_in_a_rollout():
    import ipaddress

    from slogate.dev.cluster import SERVICE_CIDR

    usable = ipaddress.ip_network(SERVICE_CIDR).num_addresses - 2
    assert usable >= 5000 * 3, SERVICE_CIDR  # NAME, NAME-stable and NAME-canary each
    assert ipaddress.ip_address("10.0.0.1") in ipaddress.ip_network(SERVICE_CIDR)  # pki's service IP
