"""Production hardening of the engine pods (issue 15): node-local disk, spread, probes, NetworkPolicy.

Table tests over plain data, as in test_desired.py: each case changes one factor of a small spec and
asserts the exact values a platform engineer would check. The probe paths are checked against the
engines' own released source (``engine_source`` tests, deselected where it is absent).
"""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import pytest
from pydantic import ValidationError

from slogate.api.crd import openapi_schema
from slogate.api.v1alpha1 import EngineKind, ModelDeploymentSpec
from slogate.api.validation import Problem, _cel_problems, validate_document
from slogate.core.desired import (
    LIVENESS_PATHS,
    READINESS_PATHS,
    EphemeralStorage,
    build_desired,
    build_network_policy,
    bytes_per_parameter,
    ephemeral_storage,
    model_parameters,
    probes,
    service_namespace,
)
from slogate.core.naming import Capabilities, Owner, revision_of
from slogate.core.plan import CHILD_KINDS
from tests.unit.conftest import SGLANG_SRC, TGI_GIT, VLLM_SRC

NAME = "llama"
NS = "ml"
OWNER = Owner(name=NAME, uid="0b5e2c1a-1111-2222-3333-444455556666")
PROM = "http://prometheus-operated.monitoring:9090"
BASE: dict[str, Any] = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}}


def make_spec(**changes: Any) -> ModelDeploymentSpec:
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        raw[key] = {**raw["model"], **value} if key == "model" else value
    return ModelDeploymentSpec.model_validate(raw)


def objects(spec: ModelDeploymentSpec, *, prometheus_url: str = PROM) -> list[dict[str, Any]]:
    state = build_desired(
        name=NAME,
        namespace=NS,
        spec=spec,
        owner=OWNER,
        caps=Capabilities(),
        stable_revision=revision_of(spec),
        prometheus_url=prometheus_url,
    )
    return state.objects


def pod(spec: ModelDeploymentSpec) -> dict[str, Any]:
    (dep,) = [o for o in objects(spec) if o["kind"] == "Deployment"]
    return dep["spec"]["template"]["spec"]


# ------------------------------------------------------------------------------------ disk


@pytest.mark.parametrize(
    "model, params, per_param",
    [
        pytest.param("Llama-3.1-8B-Instruct", 8e9, 2, id="8b"),
        pytest.param("Llama-3.1-70B-Instruct", 70e9, 2, id="70b"),
        pytest.param("Qwen2.5-0.5B-Instruct", 0.5e9, 2, id="decimal-count"),
        pytest.param("SmolLM2-135M-Instruct", 0.135e9, 2, id="millions"),
        pytest.param("Mixtral-8x7B-Instruct-v0.1", 56e9, 2, id="experts-times-size"),
        pytest.param("Qwen3-30B-A3B", 30e9, 2, id="active-parameters-ignored"),
        pytest.param("Qwen1.5-MoE-A2.7B", None, 2, id="active-only-is-no-count"),
        pytest.param("Qwen2.5-7B-Instruct-1M", 7e9, 2, id="context-length-smaller"),
        pytest.param("gemma-2-9b-it", 9e9, 2, id="lower-case"),
        pytest.param("Meta-Llama-3.1-8B-Instruct-FP8", 8e9, 1, id="fp8"),
        pytest.param("Qwen2.5-72B-Instruct-AWQ", 72e9, 0.5, id="awq"),
        pytest.param("Llama-3.2-3B-Instruct-bnb-4bit", 3e9, 0.5, id="bnb-4bit"),
        pytest.param("Mistral-7B-Instruct-v0.3", 7e9, 2, id="version-not-a-count"),
        pytest.param("phi-4", None, 2, id="no-count"),
    ],
)
def test_model_size_from_the_name(model, params, per_param):
    got = model_parameters(model)
    assert (got if got is None else float(got)) == params
    assert float(bytes_per_parameter(model)[0]) == per_param


@pytest.mark.parametrize(
    "changes, expected",
    [
        pytest.param(
            {},
            EphemeralStorage(
                "29Gi",
                "19Gi",
                "8Gi",
                "about 16 GB of weights (8B parameters from the model name x 2 bytes, bf16/fp16)",
            ),
            id="hf-8b",
        ),
        pytest.param(
            {
                "model": {"source": "hf://meta-llama/Llama-3.1-70B-Instruct"},
                "resources": {"gpu": {"count": 4}},
            },
            EphemeralStorage(
                "168Gi",
                "158Gi",
                "8Gi",
                "about 140 GB of weights (70B parameters from the model name x 2 bytes, bf16/fp16)",
            ),
            id="hf-70b-tp4-not-multiplied-by-gpus",
        ),
        pytest.param(
            {"model": {"source": "hf://neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8"}},
            EphemeralStorage(
                "90Gi",
                "80Gi",
                "8Gi",
                "about 70 GB of weights (70B parameters from the model name x 1 bytes, 8-bit)",
            ),
            id="hf-fp8",
        ),
        pytest.param(
            {
                "model": {"source": "hf://microsoft/phi-4"},
                "resources": {"gpu": {"count": 2, "minMemoryGiB": 24}},
            },
            EphemeralStorage(
                "59Gi",
                "49Gi",
                "8Gi",
                "up to 48 GiB of weights (2 GPU(s) x minMemoryGiB 24; the model name gives no parameter count)",
            ),
            id="hf-no-count-bounded-by-gpu-memory",
        ),
        pytest.param(
            {
                "model": {"source": "hf://microsoft/phi-4"},
                "resources": {"gpu": {"products": ["NVIDIA-A100-SXM4-40GB"]}},
            },
            EphemeralStorage(
                "51Gi",
                "41Gi",
                "8Gi",
                "up to 40 GiB of weights (1 GPU(s) x 40 GB (the largest product named); the model name "
                "gives no parameter count)",
            ),
            id="hf-no-count-product-memory",
        ),
        pytest.param(
            {
                "model": {"source": "hf://microsoft/phi-4"},
                "resources": {"gpu": {"resource": "nvidia.com/mig-3g.40gb"}},
            },
            EphemeralStorage(
                "51Gi",
                "41Gi",
                "8Gi",
                "up to 40 GiB of weights (the memory of one nvidia.com/mig-3g.40gb slice; the model name "
                "gives no parameter count)",
            ),
            id="hf-no-count-mig-slice",
        ),
        pytest.param(
            {"model": {"source": "hf://microsoft/phi-4"}, "resources": {"gpu": {}}},
            EphemeralStorage(
                "91Gi",
                "81Gi",
                "8Gi",
                "up to 80 GiB of weights (1 GPU(s) x 80 GiB assumed; the model name gives no parameter count)",
            ),
            id="hf-no-count-unknown-gpu",
        ),
        pytest.param(
            {"model": {"source": "hf://sshleifer/tiny-gpt2"}},
            EphemeralStorage(
                "27Gi",
                "17Gi",
                "8Gi",
                "up to 16 GiB of weights (the default for a CPU-only replica; the model name gives no "
                "parameter count)",
            ),
            id="hf-no-count-cpu",
        ),
        pytest.param(
            {"model": {"source": "pvc://models/llama/70b"}},
            EphemeralStorage("11Gi", "1Gi", "8Gi", "no weights on disk (pvc:// is mounted)"),
            id="pvc",
        ),
        pytest.param(
            {"model": {"source": "oci://registry.example/models/llama-70b:1"}},
            EphemeralStorage("11Gi", "1Gi", "8Gi", "no weights on disk (oci:// is mounted)"),
            id="oci",
        ),
        pytest.param(
            {"model": {"source": "s3://bucket/llama-70b"}},
            EphemeralStorage("11Gi", "1Gi", "8Gi", "no weights on disk (s3:// is streamed to the GPUs)"),
            id="s3",
        ),
        pytest.param(
            {"resources": {"ephemeralStorage": "300Gi"}},
            EphemeralStorage("300Gi", "300Gi", "8Gi", "resources.ephemeralStorage"),
            id="override",
        ),
        pytest.param(
            {"resources": {"ephemeralStorage": "4Gi"}},
            EphemeralStorage("4Gi", "4Gi", "4Gi", "resources.ephemeralStorage"),
            id="override-below-tmp",
        ),
    ],
)
def test_ephemeral_storage(changes, expected):
    spec = make_spec(**changes)
    assert ephemeral_storage(spec) == expected
    p = pod(spec)
    (c,) = p["containers"]
    assert c["resources"]["requests"]["ephemeral-storage"] == expected.total
    assert c["resources"]["limits"]["ephemeral-storage"] == expected.total
    volumes = {v["name"]: v for v in p["volumes"]}
    assert volumes["model-cache"]["emptyDir"] == {"sizeLimit": expected.model_cache}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": expected.tmp}


@pytest.mark.parametrize("value, valid", [("0", False), ("0Gi", False), ("0.0Ti", False), ("200Gi", True)])
def test_ephemeral_storage_must_be_positive(value, valid):
    """The CRD's CEL rule (what the API server and ``slogate validate`` run) and the pydantic validator
    (what the operator runs on a stored object) each reject a zero size."""
    message = "ephemeralStorage must be greater than 0: it bounds the model cache (e.g. 200Gi)"
    spec = {**BASE, "resources": {"ephemeralStorage": value}}
    try:
        ModelDeploymentSpec.model_validate(spec)
        pydantic_ok = True
    except ValidationError as exc:
        pydantic_ok = False
        assert message in str(exc)
    assert pydantic_ok is valid
    doc = {
        "apiVersion": "slogate.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": spec,
    }
    cel = [p for p in _cel_problems(openapi_schema(), doc, "") if p.path == "spec.resources.ephemeralStorage"]
    assert cel == ([] if valid else [Problem("spec.resources.ephemeralStorage", message)])
    assert (validate_document(doc) == []) is valid


def test_dshm_stays_in_memory_and_out_of_the_disk_request():
    p = pod(make_spec(resources={"gpu": {"count": 2}}))
    volumes = {v["name"]: v for v in p["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Gi"}
    assert p["containers"][0]["resources"]["requests"]["ephemeral-storage"] == "29Gi"


def test_unset_new_fields_keep_the_revision():
    """An operator upgrade must not start a rollout: the new optional fields, unset, are not hashed."""
    spec = make_spec(resources={"gpu": {"count": 1}})
    assert "ephemeralStorage" not in spec.resources.model_dump(mode="json", by_alias=True)
    assert "spread" not in spec.resources.model_dump(mode="json", by_alias=True)
    assert revision_of(spec) == revision_of(make_spec(resources={"gpu": {"count": 1}, "spread": None}))
    for changed in ({"ephemeralStorage": "50Gi"}, {"spread": {"zones": False}}):
        assert revision_of(make_spec(resources={"gpu": {"count": 1}, **changed})) != revision_of(spec)
    # the network policy is not pod-relevant
    assert revision_of(make_spec(resources={"gpu": {"count": 1}}, networkPolicy={"enabled": False})) == (
        revision_of(spec)
    )


# ------------------------------------------------------------------------------------ spread


def revision_pods(spec: ModelDeploymentSpec) -> dict[str, Any]:
    return {"matchLabels": {"slogate.io/deployment": NAME, "slogate.io/revision": revision_of(spec)}}


@pytest.mark.parametrize(
    "spread, nodes, zones",
    [
        pytest.param(None, 1, True, id="default-both"),
        pytest.param({"maxSkew": 2}, 2, True, id="skew"),
        pytest.param({"zones": False}, 1, False, id="nodes-only"),
        pytest.param({"nodes": False}, None, True, id="zones-only"),
        pytest.param({"nodes": False, "zones": False}, None, False, id="opt-out"),
    ],
)
def test_spread(spread, nodes, zones):
    resources: dict[str, Any] = {"gpu": {"count": 1, "products": ["NVIDIA-L4"]}}
    if spread is not None:
        resources["spread"] = spread
    spec = make_spec(resources=resources)
    p = pod(spec)
    if nodes is None:
        assert "topologySpreadConstraints" not in p
    else:
        assert p["topologySpreadConstraints"] == [
            {
                "labelSelector": revision_pods(spec),
                "maxSkew": nodes,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ]
    affinity = p["affinity"]
    assert "nodeAffinity" in affinity  # the GPU product affinity is kept beside it
    if zones:
        assert affinity["podAntiAffinity"] == {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "podAffinityTerm": {
                        "labelSelector": revision_pods(spec),
                        "topologyKey": "topology.kubernetes.io/zone",
                    },
                    "weight": 100,
                }
            ]
        }
    else:
        assert "podAntiAffinity" not in affinity


def test_spread_selects_the_deployments_own_revision():
    """A canary's pods spread among themselves: the selector names the Deployment's revision."""
    spec = make_spec()
    state = build_desired(
        name=NAME,
        namespace=NS,
        spec=spec,
        owner=OWNER,
        caps=Capabilities(),
        stable_revision="0ld0ld00",
        canary_revision=revision_of(spec),
        canary_replicas=1,
        prometheus_url=PROM,
    )
    (dep,) = [o for o in state.objects if o["kind"] == "Deployment"]
    template = dep["spec"]["template"]
    (constraint,) = template["spec"]["topologySpreadConstraints"]
    assert constraint["labelSelector"]["matchLabels"]["slogate.io/revision"] == revision_of(spec)
    assert template["metadata"]["labels"].items() >= constraint["labelSelector"]["matchLabels"].items()
    assert "affinity" in template["spec"]  # CPU-only: the zone preference alone


# ------------------------------------------------------------------------------------ probes


@pytest.mark.parametrize(
    "kind, startup, readiness, liveness",
    [
        pytest.param(EngineKind.VLLM, "/health", "/health", "/version", id="vllm"),
        pytest.param(EngineKind.TGI, "/health", "/health", "/info", id="tgi"),
        pytest.param(EngineKind.SGLANG, "/ready", "/health", "/model_info", id="sglang"),
    ],
)
def test_liveness_is_cheaper_than_readiness(kind, startup, readiness, liveness):
    got = probes(kind)
    assert got["startupProbe"]["httpGet"]["path"] == startup
    assert got["readinessProbe"]["httpGet"]["path"] == readiness
    assert got["livenessProbe"]["httpGet"]["path"] == liveness
    assert got["livenessProbe"] != got["readinessProbe"]
    # liveness gives a busy engine at least a minute and a half before a restart
    live = got["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 90
    assert live["timeoutSeconds"] <= live["periodSeconds"]


def _vllm(path: str) -> str:
    return (VLLM_SRC / path).read_text()


def _sglang(path: str) -> str:
    return (SGLANG_SRC / path).read_text()


def _tgi(path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(TGI_GIT), "show", f"v3.3.6:{path}"], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.engine_source(kind="vllm")
def test_vllm_probe_routes_as_the_source_says():
    """vLLM 0.33.0 (``desired.probes``): /health is the engine-death check, /version a constant, and
    vLLM's own watchdog ends the server when the engine dies."""
    kind = EngineKind.VLLM
    health = _vllm("vllm/entrypoints/serve/instrumentator/health.py").splitlines()
    assert health[21] == f'@router.get("{READINESS_PATHS[kind]}", response_class=Response)'
    assert "        await client.check_health()" in health[22:33]
    assert "    except EngineDeadError:" in health[22:33]
    basic = _vllm("vllm/entrypoints/serve/instrumentator/basic.py").splitlines()
    assert basic[52:56] == [
        f'@router.get("{LIVENESS_PATHS[kind]}")',
        "async def show_version():",
        '    ver = {"version": VLLM_VERSION}',
        "    return JSONResponse(content=ver)",
    ]
    check = _vllm("vllm/v1/engine/async_llm.py").splitlines()[1128:1134]
    assert check[0] == "    async def check_health(self) -> None:"
    assert check[-2:] == ["        if self.errored:", "            raise self.dead_error"]
    ping = _vllm("vllm/entrypoints/serve/sagemaker/api_router.py").splitlines()[90:96]
    assert '@router.get("/ping", response_class=Response)' in ping[1]
    assert ping[-1] == "        return await health(raw_request)"
    launcher = _vllm("vllm/entrypoints/launchers/launcher.py").splitlines()
    assert launcher[233] == "        loop.create_task(watchdog_loop(server, engine_client))"
    assert "        terminate_if_errored(server, engine)" in launcher[313:323]
    assert launcher[335:337] == [
        "    if not keep_alive and engine_errored:",
        "        server.should_exit = True",
    ]
    envs = _vllm("vllm/envs.py").splitlines()
    assert envs[105] == "    VLLM_KEEP_ALIVE_ON_ENGINE_DEATH: bool = False"
    assert 'int(os.getenv("VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "0"))' in envs[1108]


@pytest.mark.engine_source(kind="vllm")
def test_vllm_downloads_one_copy_of_the_weights():
    """vLLM 0.33.0 (``desired.ephemeral_storage``): one weight format, no ``original/``, and an
    object-store source copies only config files, under ``~/.cache/vllm`` (HOME=/tmp)."""
    weights = "\n".join(_vllm("vllm/model_executor/model_loader/weight_utils.py").splitlines()[477:503])
    assert 'if "*.safetensors" in allow_patterns and index_file in file_list:' in weights
    assert "allow_patterns = [list(set(weight_map.values()))]" in weights
    assert "# Use the first pattern found in the HF repo's files." in weights
    loader = _vllm("vllm/model_executor/model_loader/default_loader.py").splitlines()
    assert loader[184:186] == [
        '        if load_format == "hf":',
        '            allow_patterns = ["*.safetensors", "*.bin"]',
    ]
    assert 'allow_patterns=["consolidated*.safetensors"],' in loader[175]
    assert loader[195] == '            allow_patterns = ["consolidated*.safetensors"]'
    load = _vllm("vllm/config/load.py").splitlines()
    assert (
        load[101] == '    ignore_patterns: list[str] | str = Field(default_factory=lambda: ["original/**/*"])'
    )
    model = "\n".join(_vllm("vllm/config/model.py").splitlines()[1219:1248])
    assert 'model, allow_pattern=["*.model", "*.py", "*.json"]' in model
    assert 'ignore_pattern=["*.pt", "*.safetensors", "*.bin", "*.tensors", "*.pth"],' in model
    envs = _vllm("vllm/envs.py").splitlines()
    assert envs[34] == '    VLLM_CACHE_ROOT: str = os.path.expanduser("~/.cache/vllm")'
    assert envs[67] == '    VLLM_ASSETS_CACHE: str = os.path.join(VLLM_CACHE_ROOT, "assets")'
    backends = _vllm("vllm/compilation/backends.py").splitlines()
    assert backends[1095].strip() == 'envs.VLLM_CACHE_ROOT, "torch_compile_cache", hash_key'


@pytest.mark.engine_source(kind="sglang")
def test_sglang_probe_routes_as_the_source_says():
    """SGLang 0.5.23 (``desired.probes``): /health generates, /model_info reads attributes, /ready
    and /ping read the status a failed /health sets, and the watchdog ends a hung server."""
    kind = EngineKind.SGLANG
    http = _sglang("sglang/srt/entrypoints/http_server.py").splitlines()
    assert http[720:722] == [f'@app.get("{READINESS_PATHS[kind]}")', '@app.get("/health_generate")']
    assert '    sampling_params = {"max_new_tokens": 1, "temperature": 0.0}' in http[722:799]
    assert "    _global_state.tokenizer_manager.server_status = ServerStatus.UnHealthy" in http[790:799]
    assert http[811:814] == [
        f'@app.get("{LIVENESS_PATHS[kind]}")',
        "async def model_info():",
        '    """Get the model information."""',
    ]
    body = "\n".join(http[814:850])
    assert "await" not in body and "server_status" not in body and "is_healthy" not in body
    assert http[713] == '@app.get("/ready")'
    assert "_global_state.tokenizer_manager.is_ready()" in http[716]
    assert http[2189] == '@app.get("/ping")'
    assert "_global_state.tokenizer_manager.is_healthy()" in "\n".join(http[2190:2199])
    device = _sglang("sglang/srt/arg_groups/fields/device.py").splitlines()
    assert device[65] == "    watchdog_timeout: A["
    assert device[68] == "    ] = 300"
    watchdog = _sglang("sglang/srt/utils/watchdog.py").splitlines()
    assert watchdog[132] == "    def _watchdog_once(self):"
    assert watchdog[162] == "            self.parent_process.send_signal(signal.SIGQUIT)"
    tm = _sglang("sglang/srt/managers/tokenizer_manager.py").splitlines()
    assert tm[4071] == "    def running_phase_sigquit_handler(self, signum=None, frame=None):"
    assert tm[4080] == "        kill_process_tree(os.getpid())"


@pytest.mark.engine_source(kind="tgi")
def test_tgi_probe_routes_as_the_source_says():
    """TGI v3.3.6, the pinned image (docs/desired-state.md, "Probes")."""
    kind = EngineKind.TGI
    server = _tgi("router/src/server.rs").splitlines()
    # /info returns the router's own Info; /health asks the backend
    assert server[2235] == f'        .route("{LIVENESS_PATHS[kind]}", get(get_model_info))'
    assert server[2236] == f'        .route("{READINESS_PATHS[kind]}", get(health))'
    assert server[160:162] == [
        "async fn get_model_info(info: Extension<Info>) -> Json<Info> {",
        "    Json(info.0)",
    ]
    assert server[230] == "    match infer.health().await {"
    backend = _tgi("backends/v3/src/backend.rs").splitlines()
    assert backend[104:111] == [
        "    async fn health(&self, current_health: bool) -> bool {",
        "        if current_health {",
        "            // Generation is healthy, we only check that the shards can allocate on device",
        "            self.client.device_health().await",
        "        } else {",
        "            self.client.model_health().await",
        "        }",
    ]
    # a crashed shard or router ends the launcher, so the container exits without liveness
    launcher = "\n".join(_tgi("launcher/src/main.rs").splitlines()[2328:2345])
    assert 'tracing::error!("Shard {rank} crashed");' in launcher
    assert 'tracing::error!("Webserver Crashed");' in launcher


# ------------------------------------------------------------------------------------ network policy


def policy(spec: ModelDeploymentSpec, *, prometheus_url: str = PROM) -> dict[str, Any] | None:
    return build_network_policy(
        name=NAME, namespace=NS, spec=spec, owner=OWNER, prometheus_url=prometheus_url
    )


def ns_peer(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


SAME_NS = {"podSelector": {}}
GATEWAY = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw", "namespace": "gateways"}]}}


@pytest.mark.parametrize(
    "changes, prometheus_url, peers",
    [
        pytest.param({}, PROM, [SAME_NS, ns_peer("monitoring")], id="default"),
        pytest.param({}, "http://127.0.0.1:9090", [SAME_NS], id="prometheus-url-names-no-namespace"),
        pytest.param(
            {"rollout": {"analysis": {"prometheus": {"url": "http://prom.observability.svc:9090"}}}},
            PROM,
            [SAME_NS, ns_peer("monitoring"), ns_peer("observability")],
            id="analysis-prometheus",
        ),
        pytest.param(
            {"rollout": {"traffic": GATEWAY}},
            PROM,
            [SAME_NS, ns_peer("monitoring"), ns_peer("gateways")],
            id="gateway-namespace",
        ),
        pytest.param(
            {
                "rollout": {
                    "traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
                }
            },
            PROM,
            [SAME_NS, ns_peer("monitoring")],
            id="gateway-in-own-namespace",
        ),
        pytest.param(
            {"networkPolicy": {"allowNamespaces": ["envoy-gateway-system", "monitoring", NS]}},
            PROM,
            [SAME_NS, ns_peer("monitoring"), ns_peer("envoy-gateway-system")],
            id="allow-namespaces-deduplicated",
        ),
        pytest.param(
            {
                "networkPolicy": {
                    "allowFrom": [
                        {
                            "namespaceSelector": {"matchLabels": {"team": "a"}},
                            "podSelector": {"matchLabels": {"app": "x"}},
                        }
                    ]
                }
            },
            PROM,
            [
                SAME_NS,
                ns_peer("monitoring"),
                {
                    "namespaceSelector": {"matchLabels": {"team": "a"}},
                    "podSelector": {"matchLabels": {"app": "x"}},
                },
            ],
            id="allow-from-as-written",
        ),
        pytest.param(
            {"networkPolicy": {"allowSameNamespace": False, "allowNamespaces": [NS]}},
            PROM,
            [ns_peer("monitoring"), ns_peer(NS)],
            id="own-namespace-by-name",
        ),
        pytest.param(
            {"networkPolicy": {"allowSameNamespace": False}},
            "http://127.0.0.1:9090",
            None,
            id="no-peer-admits-nothing",
        ),
    ],
)
def test_network_policy(changes, prometheus_url, peers):
    got = policy(make_spec(**changes), prometheus_url=prometheus_url)
    assert got is not None
    assert got["apiVersion"] == "networking.k8s.io/v1" and got["kind"] == "NetworkPolicy"
    assert got["metadata"]["name"] == NAME and got["metadata"]["namespace"] == NS
    assert got["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert got["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "slogate"
    body = got["spec"]
    assert body["podSelector"] == {"matchLabels": {"slogate.io/deployment": NAME}}
    assert body["policyTypes"] == ["Ingress"]  # egress stays open: weights come from outside
    if peers is None:
        assert "ingress" not in body  # no rule denies all; never a rule without `from` (admits all)
    else:
        assert body["ingress"] == [{"from": peers, "ports": [{"port": 8000, "protocol": "TCP"}]}]


def test_network_policy_port_follows_the_engine():
    got = policy(make_spec(engine={"kind": "tgi", "port": 8080}))
    assert got is not None and got["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_network_policy_is_built_owned_and_pruned():
    spec = make_spec()
    assert [o["metadata"]["name"] for o in objects(spec) if o["kind"] == "NetworkPolicy"] == [NAME]
    assert policy(make_spec(networkPolicy={"enabled": False})) is None
    assert [
        o for o in objects(make_spec(networkPolicy={"enabled": False})) if o["kind"] == "NetworkPolicy"
    ] == []
    # owned like every other child: watched, listed and pruned through CHILD_KINDS
    assert ("networking.k8s.io/v1", "NetworkPolicy") in CHILD_KINDS


@pytest.mark.parametrize(
    "url, namespace",
    [
        ("http://prometheus-operated.monitoring:9090", "monitoring"),
        ("http://prometheus-operated.monitoring.svc:9090", "monitoring"),
        ("https://prom.observability.svc.cluster.local", "observability"),
        ("http://prometheus:9090", None),
        ("http://127.0.0.1:9090", None),
        ("https://prometheus.example.com", None),
    ],
)
def test_service_namespace(url, namespace):
    assert service_namespace(url) == namespace
