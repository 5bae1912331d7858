"""Desired state (``slogate.core.desired``) and engine metric names (``slogate.core.engine_metrics``).

Each table starts from a small valid spec and changes one factor (engine, GPUs, model source,
autoscaling, capabilities), then asserts the exact values a platform engineer would check by hand:
argument lists, affinity terms, resources, selectors, PromQL. ``build`` builds the whole desired
state with the spec's own revision as stable unless a case says otherwise.
"""

from __future__ import annotations

import copy
import doctest
import json
import re
from typing import Any

import pytest

import slogate.core.desired
import slogate.core.engine_metrics
from slogate import constants as C
from slogate.api.v1alpha1 import AutoscalingMetric, EngineKind, ModelDeploymentSpec
from slogate.core.desired import (
    ENGINE_COMMANDS,
    IMAGE_USERS,
    SGLANG_HEALTH_CHECK_TIMEOUT_SECONDS,
    DesiredState,
    build_deployment,
    build_desired,
    build_hpa,
    build_pdb,
    build_pod_monitor,
    build_root_service,
    build_scaled_object,
    build_track_service,
    engine_args,
    engine_container,
    min_memory_mib_exclusive,
    model_location,
)
from slogate.core.engine_metrics import (
    TGI,
    VLLM,
    autoscaling_series,
    metrics_for,
    prometheus_label,
    selector,
)
from slogate.core.naming import Capabilities, Owner, common_labels, revision_of
from slogate.core.preflight import memory_floor_mib
from slogate.sim.metrics import TgiMetrics, VllmMetrics
from slogate.sim.sampling import RequestSample
from tests.unit.conftest import SGLANG_SRC

NAME = "llama"
NS = "ml"
OWNER = Owner(name=NAME, uid="0b5e2c1a-1111-2222-3333-444455556666")
PROM = "http://prometheus.monitoring:9090"
H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
BASE: dict[str, Any] = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}}
DISK_8B = "29Gi"
"""The ephemeral-storage request of BASE's model: a 19Gi model cache, 8Gi /tmp, 2Gi writable layer."""


def make_spec(**changes: Any) -> ModelDeploymentSpec:
    """BASE with top-level keys replaced (``model`` is merged so a test can change one field)."""
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        if key == "model":
            raw["model"] = {**raw["model"], **value}
        else:
            raw[key] = value
    return ModelDeploymentSpec.model_validate(raw)


def build(
    spec: ModelDeploymentSpec,
    *,
    caps: Capabilities | None = None,
    stable: str | None = None,
    canary: str | None = None,
    canary_replicas: int = 0,
    aliases: tuple[str, ...] = (),
) -> DesiredState:
    return build_desired(
        name=NAME,
        namespace=NS,
        spec=spec,
        owner=OWNER,
        caps=caps or Capabilities(),
        stable_revision=stable or revision_of(spec),
        canary_revision=canary,
        canary_replicas=canary_replicas,
        prometheus_url=PROM,
        aliases=aliases,
    )


def find(state: DesiredState, kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [o for o in state.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {len(hits)}"
    return hits[0]


def kinds(state: DesiredState) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in state.objects]


def deployment(spec: ModelDeploymentSpec, **kw: Any) -> dict[str, Any]:
    state = build(spec, **kw)
    return find(state, "Deployment")


def container(spec: ModelDeploymentSpec, **kw: Any) -> dict[str, Any]:
    return deployment(spec, **kw)["spec"]["template"]["spec"]["containers"][0]


def pod(spec: ModelDeploymentSpec) -> dict[str, Any]:
    return deployment(spec)["spec"]["template"]["spec"]


# ------------------------------------------------------------------------------------ engine args

GPU1 = {"gpu": {"count": 1}}
GPU4_H100 = {"gpu": {"count": 4, "products": [H100], "minMemoryGiB": 80}}


@pytest.mark.parametrize(
    "changes, aliases, expected",
    [
        pytest.param(
            {"resources": GPU1},
            (),
            "meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tensor-parallel-size 1"
            " --port 8000 --gpu-memory-utilization 0.90",
            id="vllm-defaults",
        ),
        pytest.param(
            {"resources": GPU4_H100},
            (),
            "meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tensor-parallel-size 4"
            " --port 8000 --gpu-memory-utilization 0.90",
            id="vllm-tp4",
        ),
        pytest.param(
            {"resources": {"gpu": {"count": 4}}, "engine": {"tensorParallelSize": 2}},
            (),
            "meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tensor-parallel-size 2"
            " --pipeline-parallel-size 2 --port 8000 --gpu-memory-utilization 0.90",
            id="vllm-tp2-of-4-pipeline-2",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"revision": "0e9e39f", "servedName": "chat"}},
            ("gpt-4o-mini", "primary"),
            "meta-llama/Llama-3.1-8B-Instruct --served-model-name chat gpt-4o-mini primary"
            " --tensor-parallel-size 1 --port 8000 --gpu-memory-utilization 0.90 --revision 0e9e39f",
            id="vllm-served-name-aliases-revision",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"source": "s3://models/llama-8b"}},
            (),
            "s3://models/llama-8b --served-model-name llama --tensor-parallel-size 1 --port 8000"
            " --gpu-memory-utilization 0.90 --load-format runai_streamer",
            id="vllm-s3",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"source": "gs://bucket/llama", "revision": "main"}},
            (),
            "gs://bucket/llama --served-model-name llama --tensor-parallel-size 1 --port 8000"
            " --gpu-memory-utilization 0.90 --load-format runai_streamer",
            id="vllm-gs-revision-ignored",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"source": "pvc://weights/llama/8b"}},
            (),
            "/mnt/models/llama/8b --served-model-name llama --tensor-parallel-size 1 --port 8000"
            " --gpu-memory-utilization 0.90",
            id="vllm-pvc",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"source": "oci://registry.example/models/llama:8b"}},
            (),
            "/mnt/models --served-model-name llama --tensor-parallel-size 1 --port 8000"
            " --gpu-memory-utilization 0.90",
            id="vllm-oci",
        ),
        pytest.param(
            {
                "resources": GPU1,
                "engine": {
                    "port": 9000,
                    "args": ["--max-model-len", "8192", "--gpu-memory-utilization", "0.95"],
                },
            },
            (),
            "meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tensor-parallel-size 1"
            " --port 9000 --max-model-len 8192 --gpu-memory-utilization 0.95",
            id="vllm-port-extra-args-last-override-replaces",
        ),
        pytest.param(
            {},
            (),
            "meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tensor-parallel-size 1"
            " --port 8000 --gpu-memory-utilization 0.90",
            id="vllm-cpu-only",
        ),
        pytest.param(
            {"engine": {"kind": "tgi"}, "resources": GPU1},
            ("ignored",),
            "--model-id meta-llama/Llama-3.1-8B-Instruct --num-shard 1 --port 8000",
            id="tgi-defaults-no-aliases",
        ),
        pytest.param(
            {
                "engine": {"kind": "tgi", "args": ["--max-total-tokens", "4096"]},
                "resources": {"gpu": {"count": 2}},
                "model": {"revision": "v2"},
            },
            (),
            "--model-id meta-llama/Llama-3.1-8B-Instruct --revision v2 --num-shard 2 --port 8000"
            " --max-total-tokens 4096",
            id="tgi-shards-revision-extra",
        ),
        pytest.param(
            {"engine": {"kind": "tgi"}, "resources": GPU1, "model": {"source": "pvc://weights/mistral"}},
            (),
            "--model-id /mnt/models/mistral --num-shard 1 --port 8000",
            id="tgi-pvc",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}, "resources": GPU1},
            (),
            "--model-path meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tp-size 1"
            " --host 0.0.0.0 --port 8000 --enable-metrics",
            id="sglang-defaults",
        ),
        pytest.param(
            {"engine": {"kind": "sglang", "port": 30000}, "resources": GPU4_H100},
            (),
            "--model-path meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tp-size 4"
            " --host 0.0.0.0 --port 30000 --enable-metrics",
            id="sglang-tp4-port",
        ),
        pytest.param(
            {"engine": {"kind": "sglang", "tensorParallelSize": 2}, "resources": {"gpu": {"count": 4}}},
            (),
            "--model-path meta-llama/Llama-3.1-8B-Instruct --served-model-name llama --tp-size 2"
            " --pp-size 2 --host 0.0.0.0 --port 8000 --enable-metrics",
            id="sglang-tp2-of-4-pipeline-2",
        ),
        pytest.param(
            {
                "engine": {"kind": "sglang", "args": ["--mem-fraction-static", "0.85"]},
                "resources": GPU1,
                "model": {"revision": "0e9e39f", "servedName": "chat"},
            },
            ("gpt-4o-mini", "primary"),
            "--model-path meta-llama/Llama-3.1-8B-Instruct --served-model-name chat --tp-size 1"
            " --host 0.0.0.0 --port 8000 --revision 0e9e39f --enable-metrics --mem-fraction-static 0.85",
            id="sglang-one-served-name-no-aliases-revision-extra",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}, "resources": GPU1, "model": {"source": "gs://bucket/qwen"}},
            (),
            "--model-path gs://bucket/qwen --served-model-name llama --tp-size 1 --host 0.0.0.0"
            " --port 8000 --enable-metrics",
            id="sglang-gs-streamed-by-sglang-itself",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}, "resources": GPU1, "model": {"source": "pvc://weights/qwen/7b"}},
            (),
            "--model-path /mnt/models/qwen/7b --served-model-name llama --tp-size 1 --host 0.0.0.0"
            " --port 8000 --enable-metrics",
            id="sglang-pvc",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}, "model": {"source": "oci://registry.example/models/qwen:7b"}},
            (),
            "--model-path /mnt/models --served-model-name llama --tp-size 1 --host 0.0.0.0 --port 8000"
            " --enable-metrics",
            id="sglang-oci-cpu-only",
        ),
    ],
)
def test_engine_args(changes, aliases, expected):
    spec = make_spec(**changes)
    assert engine_args(name=NAME, spec=spec, aliases=aliases) == expected.split()
    # the Deployment carries exactly these
    assert container(spec, aliases=aliases)["args"] == expected.split()


@pytest.mark.parametrize(
    "changes, message",
    [
        pytest.param(
            {"resources": {"gpu": {"count": 4}}, "engine": {"tensorParallelSize": 3}},
            "must divide",
            id="tp-not-dividing",
        ),
        pytest.param(
            {"resources": {"gpu": {"count": 4}}, "engine": {"kind": "tgi", "tensorParallelSize": 2}},
            "TGI shards over every GPU",
            id="tgi-tp-below-count",
        ),
    ],
)
def test_engine_args_rejects_what_the_crd_rejects(changes, message):
    with pytest.raises(ValueError, match=message):
        engine_args(name=NAME, spec=make_spec(**changes))


@pytest.mark.parametrize(
    "source, model, volume",
    [
        pytest.param("hf://org/model", "org/model", None, id="hf"),
        pytest.param("s3://b/p/q", "s3://b/p/q", None, id="s3"),
        pytest.param("gs://b/p", "gs://b/p", None, id="gs"),
        pytest.param(
            "pvc://claim-1/a/b",
            "/mnt/models/a/b",
            {"name": "model", "persistentVolumeClaim": {"claimName": "claim-1", "readOnly": True}},
            id="pvc",
        ),
        pytest.param(
            "oci://ghcr.io/org/m:1",
            "/mnt/models",
            {"name": "model", "image": {"reference": "ghcr.io/org/m:1", "pullPolicy": "IfNotPresent"}},
            id="oci",
        ),
    ],
)
def test_model_location(source, model, volume):
    loc = model_location(source)
    assert (loc.model, loc.volume) == (model, volume)


def test_model_location_rejects_unknown_scheme():
    with pytest.raises(ValueError, match="hf://"):
        model_location("http://example.com/model")


# ------------------------------------------------------------------------------------- container


@pytest.mark.parametrize(
    "changes, image",
    [
        pytest.param({}, "vllm/vllm-openai:v0.33.0", id="vllm-default"),
        pytest.param(
            {"engine": {"kind": "tgi"}},
            "ghcr.io/huggingface/text-generation-inference:3.3.6",
            id="tgi-default",
        ),
        pytest.param({"engine": {"kind": "sglang"}}, "lmsysorg/sglang:v0.5.23", id="sglang-default"),
        pytest.param(
            {"engine": {"image": "registry.local/vllm:patched"}}, "registry.local/vllm:patched", id="override"
        ),
    ],
)
def test_image(changes, image):
    assert container(make_spec(**changes))["image"] == image


@pytest.mark.parametrize(
    "engine, command",
    [
        pytest.param({}, None, id="vllm-image-entrypoint"),
        pytest.param({"kind": "tgi"}, None, id="tgi-image-entrypoint"),
        pytest.param(
            {"kind": "sglang"}, ["python3", "-m", "sglang.launch_server"], id="sglang-no-entrypoint"
        ),
        pytest.param(
            {"kind": "sglang", "image": "registry.local/sglang:patched"},
            ["python3", "-m", "sglang.launch_server"],
            id="sglang-custom-image-keeps-the-command",
        ),
    ],
)
def test_command_only_where_the_image_has_no_entrypoint(engine, command):
    c = container(make_spec(engine=engine))
    assert c.get("command") == command
    expected = ["name", "image", "command", "args"] if command else ["name", "image", "args", "ports"]
    assert list(c)[:4] == expected


@pytest.mark.parametrize(
    "resources, expected",
    [
        pytest.param(
            {},
            {"cpu": "2", "ephemeral-storage": DISK_8B, "memory": "8Gi"},
            id="cpu-only-defaults",
        ),
        pytest.param(
            GPU1,
            {"cpu": "4", "ephemeral-storage": DISK_8B, "memory": "32Gi", "nvidia.com/gpu": "1"},
            id="one-gpu-defaults",
        ),
        pytest.param(
            GPU4_H100,
            {"cpu": "16", "ephemeral-storage": DISK_8B, "memory": "128Gi", "nvidia.com/gpu": "4"},
            id="four-gpus-defaults-scale",
        ),
        pytest.param(
            {"gpu": {"count": 2}, "cpu": "500m", "memory": "0.5Ti"},
            {"cpu": "500m", "ephemeral-storage": DISK_8B, "memory": "0.5Ti", "nvidia.com/gpu": "2"},
            id="explicit-written-as-given",
        ),
        pytest.param(
            {"gpu": {"resource": "nvidia.com/mig-3g.40gb"}},
            {"cpu": "4", "ephemeral-storage": DISK_8B, "memory": "32Gi", "nvidia.com/mig-3g.40gb": "1"},
            id="mig",
        ),
    ],
)
def test_resources_requests_equal_limits(resources, expected):
    """Ephemeral storage follows the model (Llama-3.1-8B here), never the GPU count: every rank
    reads one cache (test_hardening.py has the sizes)."""
    res = container(make_spec(resources=resources))["resources"]
    assert res == {"limits": expected, "requests": expected}


def test_container_shape():
    c = container(make_spec(resources=GPU1, engine={"port": 8080}))
    assert c["name"] == "engine"
    assert c["ports"] == [{"name": "http", "containerPort": 8080}]
    assert c["startupProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 180,
    }
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 30 * 60
    assert c["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 3,
        "timeoutSeconds": 5,
    }
    assert c["livenessProbe"] == {
        "httpGet": {"path": "/version", "port": "http"},
        "periodSeconds": 20,
        "failureThreshold": 6,
        "timeoutSeconds": 10,
    }
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": False,
    }
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert "envFrom" not in c


def test_sglang_probes():
    """Startup reads SGLang's ``/ready`` (warmup done); readiness its real check, ``/health``, which
    runs a 1-token generation; liveness ``/model_info``, which reads attributes only (the routes and
    why: ``desired.probes``, checked against the source in test_hardening.py)."""
    c = container(make_spec(resources=GPU1, engine={"kind": "sglang"}))
    assert c["startupProbe"] == {
        "httpGet": {"path": "/ready", "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 180,
    }
    assert c["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": 10,
        "failureThreshold": 3,
        "timeoutSeconds": 10,
    }
    assert c["livenessProbe"] == {
        "httpGet": {"path": "/model_info", "port": "http"},
        "periodSeconds": 20,
        "failureThreshold": 6,
        "timeoutSeconds": 10,
    }
    ready = c["readinessProbe"]
    assert ready["timeoutSeconds"] <= ready["periodSeconds"] < SGLANG_HEALTH_CHECK_TIMEOUT_SECONDS


def _sglang(path: str) -> str:
    return (SGLANG_SRC / path).read_text()


@pytest.mark.engine_source(kind="sglang")
def test_sglang_pod_facts_as_the_source_says():
    """What the SGLang pod relies on, read from the 0.5.23 wheel (docs/engines-flags-notes.md)."""
    http = _sglang("sglang/srt/entrypoints/http_server.py").splitlines()
    # readiness: /health generates one token and gives up after HEALTH_CHECK_TIMEOUT (20 s) with a 503
    assert http[217] == 'HEALTH_CHECK_TIMEOUT = int(os.getenv("SGLANG_HEALTH_CHECK_TIMEOUT", 20))'
    assert SGLANG_HEALTH_CHECK_TIMEOUT_SECONDS == 20
    assert http[720:722] == ['@app.get("/health")', '@app.get("/health_generate")']
    assert "while time.time() < tic + HEALTH_CHECK_TIMEOUT:" in "\n".join(http[720:799])
    # startup: /ready reads state only (not paused, not shutting down, status Up)
    assert http[713:717] == [
        '@app.get("/ready")',
        "async def ready() -> Response:",
        '    """Report whether the server is ready to receive new requests."""',
        "    status_code = 200 if _global_state.tokenizer_manager.is_ready() else 503",
    ]
    tm = _sglang("sglang/srt/managers/tokenizer_manager.py")
    assert "return not self.is_pause and self.is_healthy()" in tm
    assert "return not self.gracefully_exit and self.server_status == ServerStatus.Up" in tm
    # --host: SGLang binds the loopback unless told otherwise
    serving = _sglang("sglang/srt/arg_groups/fields/serving.py").splitlines()
    assert serving[64] == '    host: A[str, "The host of the HTTP server."] = "127.0.0.1"'
    # HOME=/tmp moves SGLANG_CACHE_DIR, and the JIT caches it redirects, onto the emptyDir
    environ = _sglang("sglang/srt/environ.py").splitlines()
    assert environ[1382] == '    SGLANG_CACHE_DIR = EnvStr(os.path.expanduser("~/.cache/sglang"))'
    assert '"TORCHINDUCTOR_CACHE_DIR": os.path.join(base, "inductor"),' in "\n".join(environ[2307:2336])
    assert "_redirect_third_party_caches()" in _sglang("sglang/__init__.py")
    # s3:// and gs:// need no --load-format: SGLang picks runai_streamer from the scheme
    runai = _sglang("sglang/srt/utils/runai_utils.py").splitlines()
    assert runai[13] == 'SUPPORTED_SCHEMES = ["s3://", "gs://", "az://"]'
    hook = "\n".join(_sglang("sglang/srt/arg_groups/model_path_hook.py").splitlines()[188:194])
    assert "if is_runai_obj_uri(cfg.model_path):" in hook and 'load_format="runai_streamer",' in hook
    # one served name, never ':', and the OpenAI routes do not check a request's model against it
    validation = "\n".join(_sglang("sglang/srt/arg_groups/validation_hook.py").splitlines()[212:219])
    assert 'assert ":" not in cfg.served_model_name' in validation
    base = "\n".join(_sglang("sglang/srt/entrypoints/openai/serving_base.py").splitlines()[39:62])
    assert 'if ":" not in model:\n            return model, None' in base
    # the identity: nothing in SGLang looks the user up (uid 1000 need not be in /etc/passwd)
    tree = [p for p in (SGLANG_SRC / "sglang").rglob("*.py") if "/test" not in str(p)]
    assert [str(p) for p in tree if re.search(r"\bgetpass\b|\bimport pwd\b", p.read_text())] == []
    assert IMAGE_USERS[EngineKind.SGLANG].run_as_user == 1000
    assert ENGINE_COMMANDS[EngineKind.SGLANG] == ("python3", "-m", "sglang.launch_server")
    assert "server_args = prepare_server_args(sys.argv[1:])" in _sglang("sglang/launch_server.py")


@pytest.mark.parametrize(
    "changes, env, env_from",
    [
        pytest.param(
            {},
            [{"name": "HF_HOME", "value": "/model-cache"}, {"name": "HOME", "value": "/tmp"}],
            None,
            id="vllm",
        ),
        pytest.param(
            {"engine": {"kind": "tgi"}},
            [{"name": "HOME", "value": "/tmp"}, {"name": "HUGGINGFACE_HUB_CACHE", "value": "/data"}],
            None,
            id="tgi",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}},
            [{"name": "HF_HOME", "value": "/model-cache"}, {"name": "HOME", "value": "/tmp"}],
            None,
            id="sglang-cache-dir-follows-home",
        ),
        pytest.param(
            {
                "model": {"credentialsSecret": "hf-token"},
                "engine": {
                    "env": [
                        {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
                        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "api"}}},
                        {"name": "EMPTY"},
                    ]
                },
            },
            [
                {"name": "HF_HOME", "value": "/model-cache"},
                {"name": "HOME", "value": "/tmp"},
                {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
                {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "api"}}},
                {"name": "EMPTY"},
            ],
            [{"secretRef": {"name": "hf-token"}}],
            id="credentials-and-user-env-appended",
        ),
        pytest.param(
            {"engine": {"env": [{"name": "HF_HOME", "value": "/elsewhere"}]}},
            [{"name": "HOME", "value": "/tmp"}, {"name": "HF_HOME", "value": "/elsewhere"}],
            None,
            id="user-env-replaces-derived",
        ),
    ],
)
def test_env(changes, env, env_from):
    c = container(make_spec(**changes))
    assert c["env"] == env
    assert c.get("envFrom") == env_from


# ------------------------------------------------------------------------------------------- pod

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _pref(product: str, weight: int) -> dict[str, Any]:
    return {
        "weight": weight,
        "preference": {
            "matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}]
        },
    }


@pytest.mark.parametrize(
    "gpu, affinity",
    [
        pytest.param(None, None, id="cpu-only"),
        pytest.param({"count": 1}, None, id="any-gpu"),
        pytest.param(
            {"count": 4, "products": [H100], "minMemoryGiB": 80},
            {
                "nodeAffinity": {
                    REQUIRED: {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "nvidia.com/gpu.product", "operator": "In", "values": [H100]},
                                    {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["73727"]},
                                ]
                            }
                        ]
                    },
                    PREFERRED: [_pref(H100, 100)],
                }
            },
            id="tp4-h100-products-and-memory",
        ),
        pytest.param(
            {"products": ["NVIDIA-L4", A100, H100]},
            {
                "nodeAffinity": {
                    REQUIRED: {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "nvidia.com/gpu.product",
                                        "operator": "In",
                                        "values": ["NVIDIA-L4", A100, H100],
                                    }
                                ]
                            }
                        ]
                    },
                    PREFERRED: [_pref("NVIDIA-L4", 100), _pref(A100, 90), _pref(H100, 80)],
                }
            },
            id="products-preferred-in-order",
        ),
        pytest.param(
            {"minMemoryGiB": 24},
            {
                "nodeAffinity": {
                    REQUIRED: {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["22118"]}
                                ]
                            }
                        ]
                    }
                }
            },
            id="memory-only",
        ),
        pytest.param(
            {"resource": "nvidia.com/mig-3g.40gb", "products": [A100], "minMemoryGiB": 40},
            None,
            id="mig-no-product-or-memory-affinity",
        ),
    ],
)
def test_affinity(gpu, affinity):
    spec = make_spec(resources={"gpu": gpu} if gpu else {})
    got = dict(pod(spec).get("affinity") or {})
    got.pop("podAntiAffinity", None)  # the zone spread, tested in test_hardening.py
    assert (got or None) == affinity


def test_preferred_weights_never_below_one():
    products = [f"GPU-{i}" for i in range(16)]
    prefs = pod(make_spec(resources={"gpu": {"products": products}}))["affinity"]["nodeAffinity"][PREFERRED]
    assert [p["weight"] for p in prefs] == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    "min_gib, reported_mib, fits",
    [
        pytest.param(80, 81559, True, id="h100-80gb-reports-81559"),
        pytest.param(80, 40960, False, id="a100-40gb-rejected-for-80"),
        pytest.param(24, 23034, True, id="l4-24gb-reports-23034"),
        pytest.param(24, 15360, False, id="t4-16gb-rejected-for-24"),
        pytest.param(48, 46068, True, id="l40s-48gb"),
    ],
)
def test_min_memory_allowance(min_gib, reported_mib, fits):
    assert (reported_mib > min_memory_mib_exclusive(min_gib)) is fits


@pytest.mark.parametrize("min_gib", range(1, 200))
def test_node_affinity_and_preflight_accept_the_same_memory(min_gib):
    """The Deployment's ``Gt`` term and the GPU preflight agree on every node, at the boundary too."""
    gt = min_memory_mib_exclusive(min_gib)
    floor = memory_floor_mib(min_gib)
    for reported in (floor - 2, floor - 1, floor, floor + 1):
        assert (reported > gt) is (reported >= floor), reported


@pytest.mark.parametrize(
    "resources, tolerations, node_selector",
    [
        pytest.param({}, None, None, id="cpu-only-no-gpu-toleration"),
        pytest.param(GPU1, [GPU_TOLERATION], None, id="gpu-toleration"),
        pytest.param(
            {"gpu": {"resource": "nvidia.com/mig-1g.10gb"}},
            [GPU_TOLERATION],
            None,
            id="mig-still-tolerates-gpu-taint",
        ),
        pytest.param(
            {
                "gpu": {"count": 1},
                "nodeSelector": {"pool": "gpu-spot", "cloud.google.com/gke-spot": "true"},
                "tolerations": [
                    {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "maint", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
                ],
            },
            [
                GPU_TOLERATION,
                {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
                {"key": "maint", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            ],
            {"cloud.google.com/gke-spot": "true", "pool": "gpu-spot"},
            id="spec-tolerations-appended-deduplicated-node-selector",
        ),
    ],
)
def test_tolerations_and_node_selector(resources, tolerations, node_selector):
    p = pod(make_spec(resources=resources))
    assert p.get("tolerations") == tolerations
    assert p.get("nodeSelector") == node_selector


CACHE = {"name": "model-cache", "emptyDir": {"sizeLimit": "19Gi"}}
"""BASE's Llama-3.1-8B: about 16 GB of weights x 1.2 + 1Gi (sizes: test_hardening.py)."""
MOUNTED_CACHE = {"name": "model-cache", "emptyDir": {"sizeLimit": "1Gi"}}
"""pvc:// and oci:// download no weights."""
TMP = {"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}
SHM = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}


@pytest.mark.parametrize(
    "changes, volumes, mounts",
    [
        pytest.param(
            {"resources": GPU1},
            [CACHE, TMP],
            [{"name": "model-cache", "mountPath": "/model-cache"}, {"name": "tmp", "mountPath": "/tmp"}],
            id="single-gpu-no-shm",
        ),
        pytest.param(
            {"resources": GPU4_H100},
            [SHM, CACHE, TMP],
            [
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "model-cache", "mountPath": "/model-cache"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            id="multi-gpu-shm",
        ),
        pytest.param(
            {"resources": {"gpu": {"resource": "nvidia.com/mig-3g.40gb"}}},
            [CACHE, TMP],
            [{"name": "model-cache", "mountPath": "/model-cache"}, {"name": "tmp", "mountPath": "/tmp"}],
            id="mig-no-shm",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"source": "pvc://llama-weights/8b"}},
            [
                {"name": "model", "persistentVolumeClaim": {"claimName": "llama-weights", "readOnly": True}},
                MOUNTED_CACHE,
                TMP,
            ],
            [
                {"name": "model", "mountPath": "/mnt/models", "readOnly": True},
                {"name": "model-cache", "mountPath": "/model-cache"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            id="pvc-volume-read-only",
        ),
        pytest.param(
            {"resources": GPU1, "model": {"source": "oci://ghcr.io/acme/llama:8b"}},
            [
                {
                    "name": "model",
                    "image": {"reference": "ghcr.io/acme/llama:8b", "pullPolicy": "IfNotPresent"},
                },
                MOUNTED_CACHE,
                TMP,
            ],
            [
                {"name": "model", "mountPath": "/mnt/models", "readOnly": True},
                {"name": "model-cache", "mountPath": "/model-cache"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            id="oci-image-volume",
        ),
        pytest.param(
            {"engine": {"kind": "tgi"}, "resources": {"gpu": {"count": 2}}},
            [SHM, CACHE, TMP],
            [
                {"name": "model-cache", "mountPath": "/data"},
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            id="tgi-cache-on-data",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}, "resources": {"gpu": {"count": 2}}},
            [SHM, CACHE, TMP],
            [
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "model-cache", "mountPath": "/model-cache"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            id="sglang-tp2-shm-hf-cache",
        ),
    ],
)
def test_volumes(changes, volumes, mounts):
    spec = make_spec(**changes)
    assert pod(spec)["volumes"] == volumes
    assert container(spec)["volumeMounts"] == mounts


@pytest.mark.parametrize(
    "engine, security",
    [
        pytest.param(
            {},
            {
                "runAsNonRoot": True,
                "runAsUser": 2000,
                "runAsGroup": 2000,
                "fsGroup": 2000,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            id="vllm-image-user-2000-restricted",
        ),
        pytest.param(
            {"kind": "tgi"},
            {
                "runAsNonRoot": False,
                "runAsUser": 0,
                "runAsGroup": 0,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            id="tgi-root-baseline-only",
        ),
        pytest.param(
            {"kind": "tgi", "image": "registry.example/tgi:patched"},
            {
                "runAsNonRoot": False,
                "runAsUser": 0,
                "runAsGroup": 0,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            id="tgi-custom-image-keeps-the-kind-default",
        ),
        pytest.param(
            {"kind": "sglang"},
            {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            id="sglang-uid-1000-restricted",
        ),
    ],
)
def test_pod_security_per_engine(engine, security):
    spec = make_spec(resources=GPU1, engine=engine)
    assert pod(spec)["securityContext"] == security
    # Root or not, the container never gains privileges.
    assert container(spec)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": False,
    }


def test_pod_security_and_lifecycle():
    p = pod(make_spec(resources=GPU1))
    assert p["terminationGracePeriodSeconds"] == 120
    assert p["enableServiceLinks"] is False
    assert p["automountServiceAccountToken"] is False


# ------------------------------------------------------------------------------------ deployment


def test_deployment_stable_shape():
    spec = make_spec(resources=GPU1, replicas=3, engine={"port": 8001})
    rev = revision_of(spec)
    d = deployment(spec)
    assert d["apiVersion"] == "apps/v1"
    assert d["metadata"]["name"] == f"llama-{rev}"
    assert d["metadata"]["namespace"] == NS
    assert d["metadata"]["labels"] == {
        **common_labels(NAME),
        "slogate.io/revision": rev,
        "slogate.io/track": "stable",
    }
    s = d["spec"]
    assert s["replicas"] == 3
    assert s["revisionHistoryLimit"] == 2
    assert s["progressDeadlineSeconds"] >= 1800
    assert s["selector"] == {"matchLabels": {"slogate.io/deployment": NAME, "slogate.io/revision": rev}}
    assert s["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert s["template"]["metadata"] == {
        "labels": {"slogate.io/deployment": NAME, "slogate.io/revision": rev, "slogate.io/track": "stable"},
        "annotations": {
            "prometheus.io/path": "/metrics",
            "prometheus.io/port": "8001",
            "prometheus.io/scrape": "true",
        },
    }


def test_build_deployment_directly_canary_track():
    spec = make_spec(resources=GPU1)
    d = build_deployment(
        name=NAME, namespace=NS, spec=spec, owner=OWNER, revision="abcd1234", track="canary", replicas=2
    )
    assert d["metadata"]["name"] == "llama-abcd1234"
    assert d["metadata"]["labels"]["slogate.io/track"] == "canary"
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["metadata"]["labels"]["slogate.io/track"] == "canary"
    assert d["spec"]["template"]["spec"]["containers"] == [engine_container(name=NAME, spec=spec)]


@pytest.mark.parametrize(
    "autoscaling, track, replicas",
    [
        pytest.param(None, "stable", 3, id="fixed-stable-has-replicas"),
        pytest.param({"maxReplicas": 5}, "stable", None, id="autoscaled-stable-omits-replicas"),
        pytest.param({"maxReplicas": 5}, "canary", 2, id="autoscaled-canary-keeps-canary-replicas"),
        pytest.param(None, "canary", 2, id="fixed-canary"),
    ],
)
def test_deployment_replicas(autoscaling, track, replicas):
    spec = make_spec(resources=GPU1, replicas=3, autoscaling=autoscaling)
    rev = revision_of(spec)
    if track == "stable":
        state = build(spec)
    else:
        state = build(spec, stable="0ld0ld00", canary=rev, canary_replicas=2)
    d = find(state, "Deployment")
    assert d["metadata"]["labels"]["slogate.io/track"] == track
    assert d["spec"].get("replicas") == replicas
    assert ("replicas" in d["spec"]) is (replicas is not None)


def test_only_the_current_revision_is_built():
    spec = make_spec(resources=GPU1)
    rev = revision_of(spec)
    # canary rollout: the stable revision's Deployment is the controller's to scale, not built here
    state = build(spec, stable="0ld0ld00", canary=rev, canary_replicas=1)
    assert [n for k, n in kinds(state) if k == "Deployment"] == [f"llama-{rev}"]
    # the spec's revision is neither stable nor canary (e.g. rejected): no Deployment at all
    state = build(spec, stable="0ld0ld00", canary="0the0r00")
    assert [n for k, n in kinds(state) if k == "Deployment"] == []
    assert state.notes == [
        f"revision {rev} is neither stable (0ld0ld00) nor the canary (0the0r00): its Deployment is not built"
    ]


# -------------------------------------------------------------------------------------- services


def _svc(name: str, sel: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": dict(sorted(common_labels(NAME).items())),
            "ownerReferences": [OWNER.reference()],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": sel,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def test_services_exact():
    assert build_root_service(name=NAME, namespace=NS, owner=OWNER) == _svc(
        NAME, {"slogate.io/deployment": NAME}
    )
    assert build_track_service(
        name=NAME, namespace=NS, owner=OWNER, track="stable", revision="aaaa1111"
    ) == _svc("llama-stable", {"slogate.io/deployment": NAME, "slogate.io/revision": "aaaa1111"})
    assert build_track_service(
        name=NAME, namespace=NS, owner=OWNER, track="canary", revision="bbbb2222"
    ) == _svc("llama-canary", {"slogate.io/deployment": NAME, "slogate.io/revision": "bbbb2222"})


@pytest.mark.parametrize(
    "canary, services",
    [
        pytest.param(None, ["llama", "llama-stable"], id="no-canary"),
        pytest.param("cccc3333", ["llama", "llama-stable", "llama-canary"], id="canary"),
    ],
)
def test_canary_service_only_with_canary_revision(canary, services):
    spec = make_spec()
    state = build(spec, canary=canary)
    assert [n for k, n in kinds(state) if k == "Service"] == services
    if canary:
        sel = find(state, "Service", "llama-canary")["spec"]["selector"]
        assert sel == {"slogate.io/deployment": NAME, "slogate.io/revision": canary}
    assert find(state, "Service", "llama-stable")["spec"]["selector"]["slogate.io/revision"] == revision_of(
        spec
    )


def test_pdb_exact():
    assert build_pdb(name=NAME, namespace=NS, owner=OWNER) == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "labels": dict(sorted(common_labels(NAME).items())),
            "ownerReferences": [OWNER.reference()],
        },
        "spec": {
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": {"slogate.io/deployment": NAME}},
        },
    }


# ------------------------------------------------------------------------------------ autoscaling

NOT_INSTALLED = (
    "autoscaling.provider keda asked but KEDA is not installed: using an HPA on the custom metric "
    "vllm_num_requests_waiting (needs prometheus-adapter)"
)
HPA_MIN_ONE = "autoscaling.minReplicas 0 needs KEDA: the HPA uses minReplicas 1"
ZERO_NOTE_START = "autoscaling.minReplicas 0: the engine's own metrics disappear"


@pytest.mark.parametrize(
    "autoscaling, keda, chosen, kind, min_replicas, notes",
    [
        pytest.param(None, True, None, None, None, [], id="none"),
        pytest.param({"maxReplicas": 4}, True, "keda", "ScaledObject", 1, [], id="keda-installed"),
        pytest.param(
            {"maxReplicas": 4}, False, "hpa", "HorizontalPodAutoscaler", 1, [NOT_INSTALLED], id="keda-missing"
        ),
        pytest.param(
            {"maxReplicas": 4, "minReplicas": 0},
            False,
            "hpa",
            "HorizontalPodAutoscaler",
            1,
            [NOT_INSTALLED, HPA_MIN_ONE],
            id="keda-missing-min-zero",
        ),
        pytest.param(
            {"maxReplicas": 4, "minReplicas": 0},
            True,
            "keda",
            "ScaledObject",
            0,
            [ZERO_NOTE_START],
            id="keda-min-zero",
        ),
        pytest.param(
            {"provider": "hpa", "maxReplicas": 4, "minReplicas": 2},
            True,
            "hpa",
            "HorizontalPodAutoscaler",
            2,
            [],
            id="hpa-asked",
        ),
    ],
)
def test_autoscaler_choice(autoscaling, keda, chosen, kind, min_replicas, notes):
    state = build(make_spec(autoscaling=autoscaling), caps=Capabilities(keda=keda))
    assert state.autoscaler == chosen
    scalers = [o for o in state.objects if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
    assert [o["kind"] for o in scalers] == ([kind] if kind else [])
    if kind == "ScaledObject":
        assert scalers[0]["spec"]["minReplicaCount"] == min_replicas
    elif kind:
        assert scalers[0]["spec"]["minReplicas"] == min_replicas
    assert state.notes == []  # autoscaler notes are kept apart from the spec's (issue 14)
    assert len(state.autoscaler_notes) == len(notes)
    for note, expected in zip(state.autoscaler_notes, notes, strict=True):
        assert note.startswith(expected)


def test_scaled_object_exact():
    spec = make_spec(autoscaling={"minReplicas": 1, "maxReplicas": 8, "target": "10"})
    so = build_scaled_object(
        name=NAME,
        namespace=NS,
        owner=OWNER,
        autoscaling=spec.autoscaling,
        engine=EngineKind.VLLM,
        stable_revision="aaaa1111",
        prometheus_url=PROM,
    )
    assert so == {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "labels": dict(sorted(common_labels(NAME).items())),
            "ownerReferences": [OWNER.reference()],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-aaaa1111"},
            "minReplicaCount": 1,
            "maxReplicaCount": 8,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": PROM,
                        "query": 'sum(vllm:num_requests_waiting{namespace="ml",slogate_io_deployment="llama",'
                        'slogate_io_revision="aaaa1111"})',
                        "threshold": "10",
                    },
                }
            ],
        },
    }


@pytest.mark.parametrize(
    "engine, metric, target, series, threshold",
    [
        pytest.param("vllm", "kvCacheUsage", "0.8", "vllm:kv_cache_usage_perc", "0.8", id="vllm-kv"),
        pytest.param(
            "vllm", "runningRequests", "500m", "vllm:num_requests_running", "0.5", id="vllm-running-milli"
        ),
        pytest.param("tgi", "queueDepth", "10", "tgi_queue_size", "10", id="tgi-queue"),
        pytest.param("tgi", "runningRequests", "1k", "tgi_batch_current_size", "1000", id="tgi-running-kilo"),
        pytest.param("sglang", "queueDepth", "10", "sglang:num_queue_reqs", "10", id="sglang-queue"),
        pytest.param("sglang", "kvCacheUsage", "0.8", "sglang:token_usage", "0.8", id="sglang-kv"),
    ],
)
def test_autoscaler_series_per_engine(engine, metric, target, series, threshold):
    spec = make_spec(
        engine={"kind": engine}, autoscaling={"maxReplicas": 3, "metric": metric, "target": target}
    )
    rev = revision_of(spec)
    so = find(build(spec, caps=Capabilities(keda=True)), "ScaledObject")
    trigger = so["spec"]["triggers"][0]["metadata"]
    assert (
        trigger["query"]
        == f'sum({series}{{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="{rev}"}})'
    )
    assert trigger["threshold"] == threshold
    hpa = find(build(spec, caps=Capabilities(keda=False)), "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": series.replace(":", "_")},
                "target": {"type": "AverageValue", "averageValue": target},
            },
        }
    ]


def test_hpa_exact():
    spec = make_spec(autoscaling={"provider": "hpa", "minReplicas": 2, "maxReplicas": 6, "target": "4"})
    hpa = build_hpa(
        name=NAME,
        namespace=NS,
        owner=OWNER,
        autoscaling=spec.autoscaling,
        engine=EngineKind.VLLM,
        stable_revision="aaaa1111",
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["name"] == NAME
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama-aaaa1111"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "vllm_num_requests_waiting"},
                    "target": {"type": "AverageValue", "averageValue": "4"},
                },
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
    }


def test_autoscaler_targets_stable_during_canary():
    spec = make_spec(autoscaling={"maxReplicas": 4})
    state = build(
        spec, caps=Capabilities(keda=True), stable="0ld0ld00", canary=revision_of(spec), canary_replicas=1
    )
    so = find(state, "ScaledObject")
    assert so["spec"]["scaleTargetRef"]["name"] == "llama-0ld0ld00"
    assert 'slogate_io_revision="0ld0ld00"' in so["spec"]["triggers"][0]["metadata"]["query"]


def test_tgi_kv_cache_autoscaling_rejected():
    # the CRD's CEL rule rejects this; pydantic alone does not, so the builder refuses it too
    spec = make_spec(engine={"kind": "tgi"}, autoscaling={"maxReplicas": 2, "metric": "kvCacheUsage"})
    with pytest.raises(ValueError, match="exports no kvCacheUsage"):
        build(spec, caps=Capabilities(keda=True))


# ----------------------------------------------------------------------------------- pod monitor


def test_pod_monitor_exact():
    pm = build_pod_monitor(name=NAME, namespace=NS, owner=OWNER)
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    assert pm["kind"] == "PodMonitor"
    assert pm["spec"] == {
        "selector": {"matchLabels": {"slogate.io/deployment": NAME}},
        "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        "podTargetLabels": ["slogate.io/deployment", "slogate.io/revision", "slogate.io/track"],
    }


@pytest.mark.parametrize(
    "installed", [pytest.param(True, id="with-operator"), pytest.param(False, id="without")]
)
def test_pod_monitor_only_with_prometheus_operator(installed):
    state = build(make_spec(), caps=Capabilities(prometheus_operator=installed))
    assert (("PodMonitor", NAME) in kinds(state)) is installed


# --------------------------------------------------------------------------------- whole state

SCENARIOS = [
    pytest.param(make_spec(), {}, id="minimal"),
    pytest.param(
        make_spec(
            resources=GPU4_H100,
            autoscaling={"maxReplicas": 4},
            model={"credentialsSecret": "hf"},
        ),
        {"caps": Capabilities(keda=True, prometheus_operator=True), "canary": "cccc3333"},
        id="everything-keda",
    ),
    pytest.param(
        make_spec(engine={"kind": "tgi"}, resources=GPU1, autoscaling={"maxReplicas": 2}),
        {"caps": Capabilities(prometheus_operator=True)},
        id="tgi-hpa",
    ),
    pytest.param(
        make_spec(resources={"gpu": {"resource": "nvidia.com/mig-2g.20gb"}}, model={"source": "pvc://w/m"}),
        {"aliases": ("primary",)},
        id="mig-pvc-aliases",
    ),
]


@pytest.mark.parametrize("spec, kw", SCENARIOS)
def test_every_object_owned_labelled_namespaced(spec, kw):
    state = build(spec, **kw)
    assert state.objects
    for obj in state.objects:
        meta = obj["metadata"]
        assert meta["ownerReferences"] == [OWNER.reference()], obj["kind"]
        assert meta["namespace"] == NS
        assert common_labels(NAME).items() <= meta["labels"].items(), obj["kind"]
        assert "status" not in obj


@pytest.mark.parametrize("spec, kw", SCENARIOS)
def test_deterministic(spec, kw):
    first = build(spec, **kw)
    second = build(ModelDeploymentSpec.model_validate(spec.model_dump(by_alias=True)), **kw)
    assert first == second
    assert json.dumps(first.objects) == json.dumps(second.objects)


def test_object_order_and_kinds():
    spec = make_spec(autoscaling={"maxReplicas": 2})
    rev = revision_of(spec)
    state = build(spec, caps=Capabilities(keda=True, prometheus_operator=True), canary="cccc3333")
    # the spec's revision is stable here; the canary Deployment is the controller's
    assert kinds(state) == [
        ("Deployment", f"llama-{rev}"),
        ("Service", "llama"),
        ("Service", "llama-stable"),
        ("Service", "llama-canary"),
        ("PodDisruptionBudget", "llama"),
        ("NetworkPolicy", "llama"),
        ("ScaledObject", "llama"),
        ("PodMonitor", "llama"),
    ]


@pytest.mark.parametrize(
    "changes, notes",
    [
        pytest.param(
            {"model": {"source": "s3://b/m", "revision": "v1"}},
            ["model.revision applies to hf:// sources only: ignored for s3://"],
            id="revision-non-hf",
        ),
        pytest.param(
            {"engine": {"kind": "tgi"}, "model": {"source": "gs://b/m"}},
            [
                "engine tgi cannot read gs:// itself (it loads from the Hugging Face Hub or a local "
                "directory): use a pvc:// or oci:// source"
            ],
            id="tgi-object-store",
        ),
        pytest.param(
            {"engine": {"kind": "sglang"}, "model": {"source": "s3://b/m"}}, [], id="sglang-object-store"
        ),
        pytest.param(
            {"resources": {"gpu": {"resource": "nvidia.com/mig-3g.40gb", "products": [A100]}}},
            [
                "resources.gpu.products and minMemoryGiB are ignored with nvidia.com/mig-3g.40gb: "
                "the MIG profile fixes the slice"
            ],
            id="mig-products-ignored",
        ),
        pytest.param({"resources": GPU4_H100}, [], id="no-notes"),
    ],
)
def test_spec_notes(changes, notes):
    state = build(make_spec(**changes))
    assert state.notes == notes
    assert state.autoscaler_notes == []  # never reported as an autoscaler fallback


# ------------------------------------------------------------------------------------- revision


@pytest.mark.parametrize(
    "changes, same",
    [
        pytest.param({"autoscaling": {"maxReplicas": 9}}, True, id="autoscaling"),
        pytest.param({"replicas": 7}, True, id="replicas"),
        pytest.param({"slo": {"objectives": [{"metric": "errorRate", "maxPercent": 1}]}}, True, id="slo"),
        pytest.param({"rollout": {"strategy": "blueGreen"}}, True, id="rollout"),
        pytest.param({"fallback": {"targets": [{"modelDeployment": "small"}]}}, True, id="fallback"),
        pytest.param({"engine": {"kind": "vllm", "port": 8000}}, True, id="explicit-engine-defaults"),
        pytest.param({"model": {"source": "hf://meta-llama/Llama-3.1-70B-Instruct"}}, False, id="model"),
        pytest.param({"model": {"revision": "abc"}}, False, id="model-revision"),
        pytest.param({"engine": {"kind": "tgi"}}, False, id="engine-kind"),
        pytest.param({"engine": {"args": ["--max-model-len", "4096"]}}, False, id="engine-args"),
        pytest.param({"resources": {"gpu": {"count": 2}}}, False, id="resources"),
    ],
)
def test_revision_depends_only_on_pod_relevant_fields(changes, same):
    base = make_spec(resources={}, replicas=1)
    changed = make_spec(**{"resources": {}, "replicas": 1, **changes})
    assert (revision_of(base) == revision_of(changed)) is same
    # and the Deployment built for it is named accordingly
    assert (deployment(base)["metadata"]["name"] == deployment(changed)["metadata"]["name"]) is same


# -------------------------------------------------------------------------------- engine metrics


def test_metrics_for():
    assert metrics_for(EngineKind.VLLM) is VLLM
    assert metrics_for(EngineKind("tgi")) is TGI
    assert VLLM.queue_depth == "vllm:num_requests_waiting"
    assert VLLM.ttft == "vllm:time_to_first_token_seconds"
    assert VLLM.http_requests == "http_requests_total"
    assert TGI.http_requests is None
    assert TGI.kv_cache_usage is None
    assert TGI.ttft is None
    assert TGI.ttft_approximation == (
        ("tgi_request_queue_duration", ""),
        ("tgi_batch_inference_duration", 'method="prefill"'),
    )
    assert VLLM.ttft_approximation == ()
    assert TGI.failure == "tgi_request_failure"
    assert VLLM.failure is None


@pytest.mark.parametrize(
    "kind, metric, series",
    [
        pytest.param(
            EngineKind.VLLM, AutoscalingMetric.QUEUE_DEPTH, "vllm:num_requests_waiting", id="vllm-queue"
        ),
        pytest.param(
            EngineKind.VLLM,
            AutoscalingMetric.RUNNING_REQUESTS,
            "vllm:num_requests_running",
            id="vllm-running",
        ),
        pytest.param(
            EngineKind.VLLM, AutoscalingMetric.KV_CACHE_USAGE, "vllm:kv_cache_usage_perc", id="vllm-kv"
        ),
        pytest.param(EngineKind.TGI, AutoscalingMetric.QUEUE_DEPTH, "tgi_queue_size", id="tgi-queue"),
        pytest.param(
            EngineKind.TGI, AutoscalingMetric.RUNNING_REQUESTS, "tgi_batch_current_size", id="tgi-running"
        ),
        pytest.param(EngineKind.TGI, AutoscalingMetric.KV_CACHE_USAGE, None, id="tgi-kv-none"),
    ],
)
def test_autoscaling_series(kind, metric, series):
    assert autoscaling_series(kind, metric) == series


@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param(("ml", "llama"), '{namespace="ml",slogate_io_deployment="llama"}', id="deployment"),
        pytest.param(
            ("ml", "llama", "abc12345"),
            '{namespace="ml",slogate_io_deployment="llama",slogate_io_revision="abc12345"}',
            id="revision",
        ),
        pytest.param(("a", 'b"c\\d'), '{namespace="a",slogate_io_deployment="b\\"c\\\\d"}', id="escaped"),
    ],
)
def test_selector(args, expected):
    assert selector(*args) == expected


def test_prometheus_labels_match_pod_labels():
    assert [prometheus_label(k) for k in (C.LABEL_DEPLOYMENT, C.LABEL_REVISION, C.LABEL_TRACK)] == [
        "slogate_io_deployment",
        "slogate_io_revision",
        "slogate_io_track",
    ]


def _exported(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+)", text, re.M))


@pytest.mark.parametrize(
    "metrics, exposition",
    [
        pytest.param(VLLM, lambda: VllmMetrics("m").render().decode(), id="vllm"),
        pytest.param(TGI, lambda: _tgi_exposition(), id="tgi"),
    ],
)
def test_simulator_exports_every_named_series(metrics, exposition):
    assert metrics.series() - _exported(exposition()) == set()


def _tgi_exposition() -> str:
    m = TgiMetrics()
    m.record(RequestSample(ok=True, prompt_tokens=10, generation_tokens=5, ttft_s=0.1, itls=((0.02, 4),)))
    m.record(RequestSample(ok=False, prompt_tokens=10, generation_tokens=5, ttft_s=0.1, itls=()))
    return m.render().decode()


@pytest.mark.parametrize(
    "module", [slogate.core.desired, slogate.core.engine_metrics], ids=lambda m: m.__name__
)
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    "image",
    [
        "vllm/vllm-openai@sha256:" + "a" * 64,
        "registry.example.com:5000/team/vllm:v0.33.0@sha256:" + "b" * 64,
    ],
)
def test_an_engine_image_by_digest_is_used_as_given(image):
    """``spec.engine.image`` may pin a digest (docs/install.md, "Engine images by digest"): it reaches
    the container unchanged and, being part of the revision, a new digest is a new revision."""
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "engine": {"kind": "vllm", "image": image},
        }
    )
    dep = find(build(spec), "Deployment")
    (engine,) = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "engine"]
    assert engine["image"] == image
    other = spec.model_copy(update={"engine": spec.engine.model_copy(update={"image": image[:-1] + "c"})})
    assert revision_of(other) != revision_of(spec)
