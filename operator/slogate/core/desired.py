"""Every child object a ModelDeployment spec implies, as plain dicts. Pure.

Owns the translation of a spec into Kubernetes objects: the Deployment of the spec's revision,
the Services, the PodDisruptionBudget, the NetworkPolicy, the autoscaler (KEDA ScaledObject or
HPA) and the PodMonitor. Nothing here talks to the API server: ``controller.reconcile`` calls
``build_desired`` and server-side-applies what it returns. Every builder is deterministic (same
input, equal dicts) and writes no field the API server would rewrite, so the controller can
compare desired with live objects and write nothing when nothing changed. Defaults documented
in ``api.v1alpha1`` are applied here, never written back into ``spec``. See docs/desired-state.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from slogate import constants as C
from slogate.api.types import parse_duration, parse_quantity
from slogate.api.v1alpha1 import (
    Autoscaling,
    AutoscalingProvider,
    EngineKind,
    ModelDeploymentSpec,
    Router,
    Spread,
    Toleration,
)
from slogate.core import engine_flags
from slogate.core.engine_flags import Derived
from slogate.core.engine_metrics import autoscaling_series, selector
from slogate.core.naming import (
    Capabilities,
    Owner,
    Track,
    common_labels,
    deployment_name,
    pod_labels,
    revision_of,
    root_service_name,
    selector_labels,
    track_service_name,
)
from slogate.core.preflight import is_mig, memory_floor_mib

DEFAULT_IMAGES: dict[EngineKind, str] = {
    EngineKind.VLLM: "vllm/vllm-openai:v0.33.0",
    EngineKind.TGI: "ghcr.io/huggingface/text-generation-inference:3.3.6",
    # Not verifiable here (no registry access): the tag follows the `v<version>` scheme of
    # lmsysorg/sglang (sgl-project/sglang#26897 runs lmsysorg/sglang:v0.5.12.post1-runtime), and
    # `-runtime` names the slimmer `--target runtime` build of the same Dockerfile.
    EngineKind.SGLANG: "lmsysorg/sglang:v0.5.23",
}
"""Pinned, tested image per engine kind (``engine.image`` overrides)."""

ENGINE_COMMANDS: dict[EngineKind, tuple[str, ...]] = {
    EngineKind.SGLANG: ("python3", "-m", "sglang.launch_server"),
}
"""The container ``command`` for images without an entrypoint of their own; other kinds keep the
image's ENTRYPOINT (``vllm serve``, ``tgi-entrypoint.sh``). SGLang's Dockerfile ends with
``CMD ["/bin/bash"]`` and declares no ENTRYPOINT (v0.5.17:948, the nearest release read), so
``args`` alone would go to the CUDA base image's ``nvidia_entrypoint.sh``. ``python3 -m
sglang.launch_server`` parses exactly what ``sglang serve`` parses (``launch_server.py:70-86``,
``srt/server_args.py:670-696`` @ 0.5.23) without that command's model-type probe of the Hub
(``cli/serve.py:30-59``). Like ``IMAGE_USERS``, it follows the kind, also with ``engine.image``."""


@dataclass(frozen=True)
class ImageUser:
    """Who an engine image can run as, read from the image's Dockerfile at the pinned version."""

    run_as_user: int
    """``runAsUser``; ``0`` only when the image cannot run as anyone else."""
    run_as_group: int
    """``runAsGroup``."""
    fs_group: int | None
    """``fsGroup`` for the volumes (``None``: not set)."""
    evidence: str
    """Why, with the Dockerfile lines."""


IMAGE_USERS: dict[EngineKind, ImageUser] = {
    EngineKind.VLLM: ImageUser(
        run_as_user=2000,
        run_as_group=2000,
        fs_group=2000,
        evidence=(
            "vLLM v0.33.0 docker/Dockerfile (sdist): the vllm-openai target keeps USER root (:1336-1344) "
            "but the runtime base creates the image's own non-root user, `useradd --uid 2000 --gid 0 "
            "--home-dir /home/vllm vllm` (:889-900), and keeps uv's Python and cache out of /root "
            "(UV_PYTHON_INSTALL_DIR=/opt/uv/python, chmod -R g+rwX,a+rX /opt/uv, :848-859); Python "
            "comes from apt and vLLM from `uv pip install --system` (:762-797, :1008-1020), both "
            "world-readable. uid 2000 is in /etc/passwd, which getpass.getuser() needs "
            "(vllm_flash_attn/cute/cache_utils.py:46) when USER/LOGNAME are unset. Group 2000 rather "
            "than the image's gid 0: gid 0 may write /etc/passwd, /etc/group (chmod g=u, :900) and "
            "/opt/uv, none of which the engine needs (HOME is /tmp)."
        ),
    ),
    EngineKind.SGLANG: ImageUser(
        run_as_user=1000,
        run_as_group=1000,
        fs_group=1000,
        evidence=(
            "SGLang docker/Dockerfile (nearest release read: tag v0.5.17, same lines at 00e57d74; no "
            "v0.5.23 tag was reachable): no USER in any stage, so the image runs as root, but nothing "
            "it runs needs root. Python is apt's /usr/bin/python3.12 and every package is pip-installed "
            "into /usr/local/lib/python3.12/dist-packages (copied into the runtime stage, :901), SGLang "
            "itself editable from /sgl-workspace (:736, :907): root-owned and, installed with the "
            "default umask, world-readable (inferred, not checked on an image). Unlike TGI nothing the "
            "engine loads lives under /root. SGLang puts its own and the Triton, Inductor, CUDA, "
            "TileLang and FlashInfer caches under SGLANG_CACHE_DIR, ~/.cache/sglang from HOME "
            "(srt/environ.py:1383, 2308-2336, sglang/__init__.py:14 @ 0.5.23), so with HOME=/tmp "
            "they are on the emptyDir, and torch's getpass-based Inductor default is never used; "
            "SGLang itself never looks the user up (no getpass or pwd in the wheel). uid/gid 1000 is "
            "the `ubuntu` user of the Ubuntu 24.04 base (nvidia/cuda:*-ubuntu24.04, :808; inferred). "
            "Cost: the FlashAttention-3 kernels pre-fetched under /root/.cache (:738-760, 919-920) "
            "are not seen (HOME=/tmp hides them from root too); SGLang then fetches them from the Hub "
            "or falls back to sgl-kernel's, with a warning (kernels/ops/attention/flash_attention_v3.py:39-65)."
        ),
    ),
    EngineKind.TGI: ImageUser(
        run_as_user=0,
        run_as_group=0,
        fs_group=None,
        evidence=(
            "TGI v3.3.7 Dockerfile: no USER line, so the image runs as root; `uv python install 3.11` "
            "runs as root (:170), putting CPython under /root/.local/share/uv/python, and the "
            "launcher needs its libpython from there (LD_LIBRARY_PATH, :248). Nothing chmods /root, which "
            "the base image nvidia/cuda:12.4.0-base-ubuntu22.04 (:144) keeps at mode 0700 as Ubuntu's "
            "base-files create it (inferred), so any other uid fails at once with `libpython3.11.so.1.0: "
            "cannot open shared object file` (huggingface/text-generation-inference#3082, reported with "
            "--user 1000 on 3.1.1; its fix, PR #3197, is not in v3.3.7)."
        ),
    ),
}
"""Per engine kind: the identity its pinned image runs under. Used for ``engine.image`` overrides too."""


CONTAINER_NAME = "engine"
PORT_NAME = "http"
MODEL_MOUNT = "/mnt/models"
"""Where ``pvc://`` and ``oci://`` weights are mounted (read-only)."""
HF_CACHE_MOUNT = "/model-cache"
"""vLLM's and SGLang's Hugging Face cache (``HF_HOME``): an emptyDir, so downloads survive container
restarts. SGLang passes no ``cache_dir`` of its own unless ``--download-dir`` is given
(``srt/model_loader/weight_utils.py:695-704`` @ 0.5.23), so ``huggingface_hub`` follows ``HF_HOME``."""
TGI_CACHE_MOUNT = "/data"
"""TGI's conventional cache directory (``HUGGINGFACE_HUB_CACHE``), also an emptyDir."""
HOME_DIR = "/tmp"
"""``HOME`` for every engine user: a writable emptyDir, so caches (Triton, torch.compile, FlashInfer)
land on a volume rather than in the image's layer. SGLang derives ``SGLANG_CACHE_DIR`` from it
(``~/.cache/sglang``, ``srt/environ.py:1383`` @ 0.5.23), so slogate does not set that one."""
SHM_SIZE = "8Gi"
"""Size limit of the in-memory ``/dev/shm`` for multi-GPU pods (NCCL's shared-memory transport).
It is a cap, not a reservation, but what is used counts against the container's memory limit."""
GPU_MEMORY_UTILIZATION = "0.90"
SGLANG_HOST = "0.0.0.0"
"""SGLang binds 127.0.0.1 unless told otherwise (``srt/arg_groups/fields/serving.py:65`` @ 0.5.23)."""
SGLANG_HEALTH_CHECK_TIMEOUT_SECONDS = 20
"""How long SGLang's ``/health`` waits for its 1-token generation before it answers 503
(``HEALTH_CHECK_TIMEOUT``, ``srt/entrypoints/http_server.py:218`` @ 0.5.23; env
``SGLANG_HEALTH_CHECK_TIMEOUT``). Readiness's 10 s timeout is shorter on purpose: a pod that
produces no output for 10 s leaves the Services without waiting for SGLang's verdict."""
CPU_PER_GPU = 4
MEMORY_GI_PER_GPU = 32
CPU_WITHOUT_GPU = "2"
MEMORY_WITHOUT_GPU = "8Gi"
PROGRESS_DEADLINE_SECONDS = 2400
"""40 minutes: the startup probe's 30 minutes plus scheduling and pulling a ~10 GB engine image."""
TERMINATION_GRACE_SECONDS = 120
"""Time to finish in-flight generations after SIGTERM (long completions stream for minutes)."""
PRE_STOP_SLEEP_SECONDS = 10
"""Keep serving while the endpoint removal reaches every kube-proxy/gateway before SIGTERM."""
SCALE_DOWN_STABILIZATION_SECONDS = 300
"""Scale down only after 5 minutes of lower demand: a replica takes minutes to load a model."""

GIB = 2**30
BYTES_PER_PARAMETER = Decimal(2)
"""Bytes per parameter of a checkpoint whose name names no quantisation: bf16 or fp16, 2 bytes each
(the dtypes of current Hub checkpoints; vLLM sizes them the same way, see ``QUANTISED``)."""
QUANTISED: tuple[tuple[re.Pattern[str], Decimal, str], ...] = (
    (
        re.compile(r"(?<![a-z0-9])(awq|gptq|int4|w4a16|w4a8|4bit|nf4|mxfp4|nvfp4|fp4)(?![a-z0-9])"),
        Decimal("0.5"),
        "4-bit",
    ),
    (re.compile(r"(?<![a-z0-9])(fp8|int8|w8a8|w8a16|8bit)(?![a-z0-9])"), Decimal(1), "8-bit"),
)
"""Quantisation named in a model name (lower-cased), first match wins: 4-bit formats store half a
byte per weight, 8-bit ones one byte (scales and unquantised layers are in the headroom)."""
_PARAMETERS = re.compile(r"(?<![a-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")
"""A parameter count in a model name (lower-cased): ``8b``, ``0.5b``, ``135m``, ``8x7b`` (experts x
size). ``a3b`` (active parameters of ``30b-a3b``) and ``v0.3`` do not match."""
WEIGHTS_HEADROOM = Decimal("1.2")
"""Checkpoint files exceed ``parameters x bytes``: names round the count down (Qwen2.5-7B has 7.6B
parameters), and embeddings, norms and quantisation scales add to it."""
MODEL_CACHE_EXTRA_GIB = 1
"""Config, tokenizer and Hub metadata files beside the weights in ``model-cache``."""
MOUNTED_CACHE_GIB = 1
"""``model-cache`` for sources that download no weights into the pod (``pvc``, ``oci``, ``s3``, ``gs``)."""
TMP_GIB = 8
"""``sizeLimit`` of ``/tmp`` (``HOME``): torch.compile, Triton, FlashInfer and SGLang's JIT caches, and
the config files an object-store source copies locally."""
WRITABLE_LAYER_GIB = 2
"""The container's writable root filesystem (``__pycache__``, outlines grammars) and its logs, which
count against the container's ephemeral-storage limit as the emptyDirs do."""
UNKNOWN_GPU_MEMORY_GIB = 80
"""Per-GPU memory assumed when neither ``minMemoryGiB`` nor a product name says it (A100/H100 80GB)."""
UNKNOWN_CPU_WEIGHTS_GIB = 16
"""Weights assumed for a CPU-only replica whose model name gives no parameter count."""
OVERRIDE_BASIS = "resources.ephemeralStorage"
NODE_TOPOLOGY_KEY = "kubernetes.io/hostname"
"""The node label ``resources.spread.nodes`` spreads over (the kubelet sets it on every node)."""
ZONE_TOPOLOGY_KEY = "topology.kubernetes.io/zone"
"""The node label ``resources.spread.zones`` spreads over (set by cloud providers, often absent)."""
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server sets on every Namespace to its name (Kubernetes 1.22+)."""


@dataclass(frozen=True)
class DesiredState:
    """Everything a spec implies, for ``controller.reconcile`` to apply."""

    objects: list[dict[str, Any]]
    """Every child to server-side-apply, each owned by the ModelDeployment and labelled."""
    autoscaler: str | None
    """``keda``, ``hpa`` or ``None`` (fixed replicas). The controller deletes the other kind."""
    notes: list[str] = field(default_factory=list)
    """Plain-words notes for the status headline: settings ignored, a revision not built."""
    autoscaler_notes: list[str] = field(default_factory=list)
    """Why the autoscaler is not the one asked for (``status.autoscaler`` and the
    ``AutoscalerFallback`` Event carry these, and only these)."""


@dataclass(frozen=True)
class ModelLocation:
    """Where the engine reads the weights from, derived from ``model.source``."""

    scheme: str
    """``hf``, ``s3``, ``gs``, ``pvc`` or ``oci``."""
    model: str
    """What the engine receives as its model: vLLM's positional argument, TGI's ``--model-id``,
    SGLang's ``--model-path``."""
    volume: dict[str, Any] | None
    """The pod volume holding the weights (``pvc``, ``oci``), mounted read-only at ``/mnt/models``."""


# ---------------------------------------------------------------------------------------- helpers


def _metadata(*, name: str, namespace: str, labels: dict[str, str], owner: Owner) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(sorted(labels.items())),
        "ownerReferences": [owner.reference()],
    }


def _plain_number(quantity: str) -> str:
    """A quantity as a plain decimal number, for consumers that parse floats (KEDA thresholds).

    >>> _plain_number("500m"), _plain_number("10"), _plain_number("1k"), _plain_number("0.80")
    ('0.5', '10', '1000', '0.8')
    """
    return format(parse_quantity(quantity).normalize(), "f")


def model_location(source: str) -> ModelLocation:
    """Map ``model.source`` to the engine's model argument and a volume. Pure.

    Consumed by ``engine_args`` and ``build_deployment``.

    >>> model_location("hf://meta-llama/Llama-3.1-8B").model
    'meta-llama/Llama-3.1-8B'
    >>> model_location("pvc://models/llama/8b").model
    '/mnt/models/llama/8b'
    """
    scheme, _, rest = source.partition("://")
    if scheme == "hf":
        return ModelLocation(scheme, rest, None)
    if scheme in ("s3", "gs"):
        return ModelLocation(scheme, source, None)
    if scheme == "pvc":
        claim, _, path = rest.partition("/")
        volume = {"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        return ModelLocation(scheme, f"{MODEL_MOUNT}/{path}" if path else MODEL_MOUNT, volume)
    if scheme == "oci":
        volume = {"name": "model", "image": {"reference": rest, "pullPolicy": "IfNotPresent"}}
        return ModelLocation(scheme, MODEL_MOUNT, volume)
    raise ValueError(f"model.source {source!r}: use hf://, s3://, gs://, pvc:// or oci://")


ADAPTER_MOUNT = "/mnt/adapters"
"""Where a ``pvc://`` adapter's claim is mounted (read-only): ``/mnt/adapters/CLAIM``."""
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The ``--max-lora-rank`` values vLLM accepts (``MaxLoRARanks``, ``vllm/config/lora.py:27`` @ v0.33.0)."""
SGLANG_MAX_LORAS_PER_BATCH = 8
"""SGLang's default ``--max-loras-per-batch``, base-only requests included
(``srt/arg_groups/fields/lora.py:66-69`` @ 0.5.23)."""


def adapter_claims(spec: ModelDeploymentSpec) -> list[str]:
    """The claims of the ``pvc://`` adapters, in order of first use: volume ``adapter-I`` each. Pure."""
    out: list[str] = []
    for a in spec.adapters:
        if a.source.startswith("pvc://"):
            claim = a.source[len("pvc://") :].partition("/")[0]
            if claim not in out:
                out.append(claim)
    return out


def adapter_path(source: str) -> str:
    """Where the engine loads an adapter from: the Hub id of an ``hf://`` one (the engine downloads
    it), the mounted path of a ``pvc://`` one. Pure.

    >>> adapter_path("hf://org/sql-lora"), adapter_path("pvc://loras/sql/v3")
    ('org/sql-lora', '/mnt/adapters/loras/sql/v3')
    """
    scheme, _, rest = source.partition("://")
    return rest if scheme == "hf" else f"{ADAPTER_MOUNT}/{rest}"


def lora_flags(spec: ModelDeploymentSpec) -> list[Derived]:
    """The LoRA flags ``spec.adapters`` derives, per engine (docs/desired-state.md, "LoRA adapters"). Pure.

    - vLLM: ``--enable-lora``, ``--max-loras`` (every adapter in one batch), ``--max-lora-rank``
      (the smallest value vLLM accepts at or above the largest ``rank``, when one is set) and
      ``--lora-modules NAME=PATH ...``: each adapter answers to its ``name``.
    - SGLang: ``--lora-paths NAME=PATH ...`` (``--enable-lora`` follows from it, ``lora_hook.py:39-43``),
      ``--max-lora-rank`` when a ``rank`` is set, ``--max-loras-per-batch`` when the adapters and
      the base model exceed its default of 8. Requests ask for ``SERVED:NAME``
      (``entrypoints/openai/serving_base.py:40-60``).
    - TGI: ``--lora-adapters`` as one comma-separated value: ``ORG/ADAPTER[@REVISION]`` for the Hub
      (its id is its name: a CEL rule holds ``name`` to it), ``NAME=PATH`` for a PVC (TGI then skips
      the download, ``launcher/src/main.rs:2244-2250``).
    """
    adapters = spec.adapters
    if not adapters:
        return []
    kind = spec.engine.kind
    ranks = [a.rank for a in adapters if a.rank]
    if kind == EngineKind.TGI:
        items = [
            (adapter_path(a.source) + (f"@{a.revision}" if a.revision else ""))
            if a.source.startswith("hf://")
            else f"{a.name}={adapter_path(a.source)}"
            for a in adapters
        ]
        return [Derived("--lora-adapters", (",".join(items),))]
    pairs = tuple(f"{a.name}={adapter_path(a.source)}" for a in adapters)
    if kind == EngineKind.SGLANG:
        out = [Derived("--lora-paths", pairs)]
        if ranks:
            out.append(Derived("--max-lora-rank", (str(max(ranks)),)))
        if len(adapters) + 1 > SGLANG_MAX_LORAS_PER_BATCH:
            out.append(Derived("--max-loras-per-batch", (str(len(adapters) + 1),)))
        return out
    out = [Derived("--enable-lora", ()), Derived("--max-loras", (str(len(adapters)),))]
    if ranks:
        out.append(Derived("--max-lora-rank", (str(next(r for r in VLLM_LORA_RANKS if r >= max(ranks))),)))
    return [*out, Derived("--lora-modules", pairs)]


LORA_FLAGS = {
    EngineKind.VLLM: ("--enable-lora", "--lora-modules"),
    EngineKind.SGLANG: ("--enable-lora", "--lora-paths"),
    EngineKind.TGI: ("--lora-adapters",),
}
"""The flags of an engine that load adapters: with ``spec.adapters`` set, ``engine.args`` may not
give them too (``lora_conflicts``)."""


def lora_conflicts(spec: ModelDeploymentSpec) -> list[tuple[int, str]]:
    """``(index, message)`` for each ``engine.args`` entry that loads adapters while
    ``spec.adapters`` is set (in any spelling the engine accepts). Pure; consumed by
    ``core.plan.parse_spec`` and ``api.validation``: one list of adapters, never two."""
    if not spec.adapters:
        return []
    table = engine_flags.ENGINES[spec.engine.kind]
    owned = set(LORA_FLAGS[spec.engine.kind])
    out = []
    for i, arg in enumerate(spec.engine.args):
        m = table.resolve(arg)
        if m is not None and m.flag.name in owned:
            out.append(
                (
                    i,
                    f"{m.spelled} loads adapters, and spec.adapters is set: list every adapter in spec.adapters",
                )
            )
    return out


def parallelism(spec: ModelDeploymentSpec) -> tuple[int, int]:
    """``(tensor, pipeline)`` parallel degrees of one replica. Pure; consumed by ``engine_args``.

    Tensor parallelism defaults to the GPU count; a smaller ``tensorParallelSize`` must divide it
    and the quotient becomes pipeline parallelism (vLLM and SGLang; TGI shards over every GPU).
    CPU-only replicas run ``(1, 1)``.
    """
    count = spec.resources.gpu.count if spec.resources.gpu else 1
    tp = spec.engine.tensor_parallel_size or count
    if count % tp:
        raise ValueError(f"engine.tensorParallelSize {tp} must divide resources.gpu.count {count}")
    if spec.engine.kind == EngineKind.TGI and tp != count:
        raise ValueError(
            f"TGI shards over every GPU of the pod: engine.tensorParallelSize {tp} must equal "
            f"resources.gpu.count {count}"
        )
    return tp, count // tp


def min_memory_mib_exclusive(min_memory_gib: int) -> int:
    """The value for ``nvidia.com/gpu.memory Gt X`` that accepts a GPU marketed with ``minMemoryGiB``.

    Pure; consumed by ``build_deployment``. GPU Feature Discovery publishes the memory the driver
    reports, in MiB, which is less than the marketed size: an "80 GB" H100 reports 81559 MiB
    (< 80 x 1024 = 81920) and a "24 GB" L4 reports 23034 MiB (< 24576). A literal
    ``Gt 81919`` would reject the very GPUs the user meant, so 10% is allowed. The floor is the GPU
    preflight's own (``preflight.memory_floor_mib``), so the scheduler and the preflight accept the
    same nodes; ``Gt`` is strict, hence the -1.

    >>> min_memory_mib_exclusive(80), min_memory_mib_exclusive(24)
    (73727, 22118)
    """
    return memory_floor_mib(min_memory_gib) - 1


# ----------------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class EphemeralStorage:
    """The node-local disk one replica needs, and why. Built by ``ephemeral_storage``."""

    total: str
    """The engine container's ``ephemeral-storage`` request and limit (a quantity)."""
    model_cache: str
    """``sizeLimit`` of the ``model-cache`` emptyDir."""
    tmp: str
    """``sizeLimit`` of the ``tmp`` emptyDir."""
    basis: str
    """How it was sized, in plain words (the preflight quotes it)."""

    @property
    def bytes(self) -> int:
        """``total`` in bytes."""
        return int(parse_quantity(self.total))

    @property
    def breakdown(self) -> str:
        """``total`` in its parts and how each was sized, in words."""
        if self.basis == OVERRIDE_BASIS:
            return f"set by {OVERRIDE_BASIS}"
        return (
            f"model-cache {self.model_cache} for {self.basis}, /tmp {self.tmp}, "
            f"writable layer and logs {WRITABLE_LAYER_GIB}Gi"
        )


def _num(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


def model_parameters(model: str) -> Decimal | None:
    """The parameter count a model name states, or ``None``. Pure; consumed by ``ephemeral_storage``.

    The largest count in the name wins (a context length such as ``1M`` is smaller).

    >>> [model_parameters(m) for m in ("Llama-3.1-8B-Instruct", "Qwen2.5-0.5B", "Mixtral-8x7B-v0.1")]
    [Decimal('8000000000'), Decimal('500000000.0'), Decimal('56000000000')]
    >>> model_parameters("Qwen3-30B-A3B") == 30 * 10**9, model_parameters("phi-4")
    (True, None)
    """
    counts = [
        Decimal(experts or 1) * Decimal(size) * (10**9 if unit == "b" else 10**6)
        for experts, size, unit in _PARAMETERS.findall(model.lower())
    ]
    return max(counts) if counts else None


def bytes_per_parameter(model: str) -> tuple[Decimal, str]:
    """Bytes per weight a model name implies, with the dtype in words. Pure.

    >>> bytes_per_parameter("Llama-3.1-8B-Instruct-FP8"), bytes_per_parameter("Qwen2.5-72B-Instruct-AWQ")
    ((Decimal('1'), '8-bit'), (Decimal('0.5'), '4-bit'))
    >>> bytes_per_parameter("Llama-3.1-8B-Instruct")
    (Decimal('2'), 'bf16/fp16')
    """
    lowered = model.lower()
    for pattern, size, words in QUANTISED:
        if pattern.search(lowered):
            return size, words
    return BYTES_PER_PARAMETER, "bf16/fp16"


def _gpu_memory_gib(spec: ModelDeploymentSpec) -> tuple[int, str]:
    """An upper bound of the weights of a replica: the memory of its GPUs, which must hold them."""
    gpu = spec.resources.gpu
    if gpu is None:
        return UNKNOWN_CPU_WEIGHTS_GIB, "the default for a CPU-only replica"
    if is_mig(gpu.resource):
        m = re.search(r"\.(\d+)gb$", gpu.resource)
        size = int(m.group(1)) if m else UNKNOWN_GPU_MEMORY_GIB
        return size, f"the memory of one {gpu.resource} slice"
    if gpu.min_memory_gi_b is not None:
        return gpu.count * gpu.min_memory_gi_b, f"{gpu.count} GPU(s) x minMemoryGiB {gpu.min_memory_gi_b}"
    sizes = [re.search(r"(\d+)GB", p) for p in gpu.products]
    if gpu.products and all(sizes):
        most = max(int(m.group(1)) for m in sizes if m)
        return gpu.count * most, f"{gpu.count} GPU(s) x {most} GB (the largest product named)"
    return gpu.count * UNKNOWN_GPU_MEMORY_GIB, f"{gpu.count} GPU(s) x {UNKNOWN_GPU_MEMORY_GIB} GiB assumed"


def ephemeral_storage(spec: ModelDeploymentSpec) -> EphemeralStorage:
    """The ephemeral-storage request (= limit) and emptyDir bounds of one replica. Pure; consumed by
    ``engine_container``, ``pod_spec`` and ``preflight.shape_of``.

    ``total = model-cache + tmp (8Gi) + writable layer and logs (2Gi)``: the kubelet counts the
    emptyDirs (not the in-memory ``/dev/shm``), the writable layer and the logs against the pod's
    limit, and the scheduler places the pod only where its request fits in the node's allocatable.
    ``model-cache`` holds what the engine downloads:

    - ``hf://``: one copy of the weights, ``parameters x bytes per parameter x 1.2 + 1Gi``, from
      the parameter count in the model name (``model_parameters``) and its quantisation
      (``bytes_per_parameter``); without a count, the memory of the replica's GPUs bounds them.
      One copy because vLLM 0.33.0 fetches one format: with a safetensors index only the files
      its ``weight_map`` names, else the first of ``*.safetensors``, ``*.bin`` the repository has
      (``model_executor/model_loader/weight_utils.py:478-503``, ``default_loader.py:184-186``),
      Mistral's ``consolidated*.safetensors`` alone when present (``default_loader.py:168-181``,
      ``:194-196``), and never Llama's ``original/`` checkpoint (``config/load.py:102``).
    - ``pvc://``, ``oci://``: mounted read-only, nothing downloaded: 1Gi.
    - ``s3://``, ``gs://``: streamed to the GPUs by the Run:ai streamer, never written to disk: 1Gi.
      vLLM copies only the config and tokenizer files (``config/model.py:1220-1248``), into
      ``VLLM_ASSETS_CACHE`` under ``~/.cache/vllm`` (``envs.py:35``, ``:68``), i.e. ``/tmp``,
      where its torch.compile cache also lives (``compilation/backends.py:1096``).

    A rollout's surge pod is a pod of its own with its own request, so nothing is multiplied.
    ``resources.ephemeralStorage`` replaces the total; ``model-cache`` may then use all of it.

    >>> e = ephemeral_storage(ModelDeploymentSpec.model_validate({"model": {"source": "hf://m/Llama-3.1-8B"}}))
    >>> e.total, e.model_cache, e.tmp
    ('29Gi', '19Gi', '8Gi')
    """
    override = spec.resources.ephemeral_storage
    tmp = f"{TMP_GIB}Gi"
    if override is not None:
        if parse_quantity(override) < TMP_GIB * GIB:
            tmp = override
        return EphemeralStorage(total=override, model_cache=override, tmp=tmp, basis=OVERRIDE_BASIS)
    location = model_location(spec.model.source)
    if location.scheme == "hf":
        name = location.model.rsplit("/", 1)[-1]
        params = model_parameters(name)
        if params is not None:
            per, dtype = bytes_per_parameter(name)
            weights = params * per
            cache_gib = math.ceil(weights * WEIGHTS_HEADROOM / GIB) + MODEL_CACHE_EXTRA_GIB
            basis = (
                f"about {_num(weights / 10**9)} GB of weights ({_num(params / 10**9)}B parameters from the "
                f"model name x {_num(per)} bytes, {dtype})"
            )
        else:
            bound, what = _gpu_memory_gib(spec)
            cache_gib = bound + MODEL_CACHE_EXTRA_GIB
            basis = f"up to {bound} GiB of weights ({what}; the model name gives no parameter count)"
    else:
        cache_gib = MOUNTED_CACHE_GIB
        how = "mounted" if location.scheme in ("pvc", "oci") else "streamed to the GPUs"
        basis = f"no weights on disk ({location.scheme}:// is {how})"
    total = cache_gib + TMP_GIB + WRITABLE_LAYER_GIB
    return EphemeralStorage(total=f"{total}Gi", model_cache=f"{cache_gib}Gi", tmp=tmp, basis=basis)


# --------------------------------------------------------------------------------------- container


def engine_args(*, name: str, spec: ModelDeploymentSpec, aliases: Sequence[str] = ()) -> list[str]:
    """The engine's command-line arguments. Pure; consumed by ``engine_container``.

    vLLM (the image's ENTRYPOINT is ``vllm serve``): ``MODEL --served-model-name SERVED [ALIASES...]
    --tensor-parallel-size TP [--pipeline-parallel-size PP] --port PORT --gpu-memory-utilization 0.90
    [--revision R] [--load-format runai_streamer]``. The model is the first positional argument,
    as vLLM 0.33 asks (``utils/argparse_utils.py:324-354`` deprecates ``--model`` with ``vllm
    serve``; ``entrypoints/cli/serve.py:56-57`` lets the positional model win). ``aliases`` are
    extra served names (the fallback feature passes a primary's served name so this model answers
    for it).

    TGI (``text-generation-launcher``): ``--model-id M [--revision R] --num-shard COUNT --port
    PORT``. TGI serves one model and ignores the OpenAI ``model`` field, so it needs no served name
    or aliases.

    SGLang (``python3 -m sglang.launch_server``, ``ENGINE_COMMANDS``): ``--model-path M
    --served-model-name SERVED --tp-size TP [--pp-size PP] --host 0.0.0.0 --port PORT [--revision
    R] --enable-metrics``. ``--served-model-name`` takes one name (``srt/arg_groups/fields/
    serving.py:168-171`` @ 0.5.23) and SGLang's OpenAI routes answer whatever ``model`` a request
    names (``srt/entrypoints/openai/serving_base.py:40-62``), so ``aliases`` are not needed and not
    passed. ``--host 0.0.0.0`` because SGLang binds 127.0.0.1 by default; ``--enable-metrics``
    because it exports nothing without it. ``s3://`` and ``gs://`` go to ``--model-path`` as
    written: SGLang picks its runai_streamer loader for them itself
    (``srt/arg_groups/model_path_hook.py:189-194``, ``srt/utils/runai_utils.py:14``).

    ``engine.args`` follow as written, after ``engine_flags.merge`` has dropped each derived
    ``Overridable`` flag the user gives (``--gpu-memory-utilization``, ``--load-format``), in any
    spelling the engine accepts: the flag appears once, because TGI's clap parser rejects a
    repeated option (``error: the argument '--port <PORT>' cannot be used multiple times``) and
    so "last occurrence wins" is not something both engines do. A user flag that slogate owns
    (model, served name, parallelism, port, revision) or that would remove the series slogate
    reads (``--disable-log-stats``, ``--custom-histogram-buckets`` against latency objectives)
    raises ``ValueError``, as the CRD's CEL rules and ``slogate validate`` reject it
    (``engine_flags.check``).
    """
    kind = spec.engine.kind
    problems = engine_flags.check(
        kind=kind,
        args=spec.engine.args,
        features=engine_flags.features_of(spec.model_dump(mode="json", by_alias=True, exclude_none=True)),
    )
    if problems:
        raise ValueError("; ".join(f"engine.args[{p.index}]: {p.message}" for p in problems))
    location = model_location(spec.model.source)
    revision = spec.model.revision if location.scheme == "hf" else None
    tp, pp = parallelism(spec)
    port = str(spec.engine.port)
    derived: list[Derived]
    if kind == EngineKind.SGLANG:
        derived = [
            Derived("--model-path", (location.model,)),
            Derived("--served-model-name", (spec.model.served_name or name,)),
            Derived("--tp-size", (str(tp),)),
        ]
        if pp > 1:
            derived.append(Derived("--pp-size", (str(pp),)))
        derived += [Derived("--host", (SGLANG_HOST,)), Derived("--port", (port,))]
        if revision:
            derived.append(Derived("--revision", (revision,)))
        derived.append(Derived("--enable-metrics", ()))
        derived += lora_flags(spec)
    elif kind == EngineKind.TGI:
        count = spec.resources.gpu.count if spec.resources.gpu else 1
        derived = [Derived("--model-id", (location.model,))]
        if revision:
            derived.append(Derived("--revision", (revision,)))
        derived += [Derived("--num-shard", (str(count),)), Derived("--port", (port,))]
        derived += lora_flags(spec)
    else:
        derived = [
            Derived(None, (location.model,)),
            Derived("--served-model-name", (spec.model.served_name or name, *aliases)),
            Derived("--tensor-parallel-size", (str(tp),)),
        ]
        if pp > 1:
            derived.append(Derived("--pipeline-parallel-size", (str(pp),)))
        derived += [
            Derived("--port", (port,)),
            Derived("--gpu-memory-utilization", (GPU_MEMORY_UTILIZATION,)),
        ]
        if revision:
            derived.append(Derived("--revision", (revision,)))
        if location.scheme in ("s3", "gs"):
            derived.append(Derived("--load-format", ("runai_streamer",)))
        derived += lora_flags(spec)
    return engine_flags.merge(kind=kind, derived=derived, user=spec.engine.args)


def _env(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    """Derived variables first (sorted), then ``engine.env``; a user variable replaces a derived one
    of the same name (server-side apply rejects duplicate keys in ``env``)."""
    derived = {"HOME": HOME_DIR}
    if spec.engine.kind == EngineKind.TGI:
        derived["HUGGINGFACE_HUB_CACHE"] = TGI_CACHE_MOUNT
    else:  # vLLM, SGLang
        derived["HF_HOME"] = HF_CACHE_MOUNT
    user = {e.name for e in spec.engine.env}
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(derived.items()) if k not in user]
    for e in spec.engine.env:
        item: dict[str, Any] = {"name": e.name}
        if e.value:  # the API server drops an empty value, so never write one
            item["value"] = e.value
        if e.value_from is not None:
            item["valueFrom"] = e.value_from
        out.append(item)
    return out


def _resources(spec: ModelDeploymentSpec) -> dict[str, Any]:
    gpu = spec.resources.gpu
    if gpu:
        cpu = spec.resources.cpu or str(CPU_PER_GPU * gpu.count)
        memory = spec.resources.memory or f"{MEMORY_GI_PER_GPU * gpu.count}Gi"
    else:
        cpu = spec.resources.cpu or CPU_WITHOUT_GPU
        memory = spec.resources.memory or MEMORY_WITHOUT_GPU
    amounts = {"cpu": cpu, "memory": memory, "ephemeral-storage": ephemeral_storage(spec).total}
    if gpu:
        amounts[gpu.resource] = str(gpu.count)
    amounts = dict(sorted(amounts.items()))
    return {"limits": dict(amounts), "requests": dict(amounts)}


def _probe(
    *, path: str = "/health", period: int, failures: int, timeout: int | None = None
) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "failureThreshold": failures,
    }
    if timeout is not None:
        probe["timeoutSeconds"] = timeout
    return probe


def _cache_mount(kind: EngineKind) -> str:
    return TGI_CACHE_MOUNT if kind == EngineKind.TGI else HF_CACHE_MOUNT


LIVENESS_PATHS: dict[EngineKind, str] = {
    EngineKind.VLLM: "/version",
    EngineKind.TGI: "/info",
    EngineKind.SGLANG: "/model_info",
}
"""Per engine: the route liveness reads, one that answers from the HTTP server alone (``probes``)."""
READINESS_PATHS: dict[EngineKind, str] = {
    EngineKind.VLLM: "/health",
    EngineKind.TGI: "/health",
    EngineKind.SGLANG: "/health",
}
"""Per engine: the engine's own health check, which readiness reads (``probes``)."""
LIVENESS_PERIOD_SECONDS = 20
LIVENESS_TIMEOUT_SECONDS = 10
LIVENESS_FAILURES = 6
"""Liveness restarts an engine only after its HTTP server has not answered for two minutes
(6 x 20 s, 10 s each): a reload costs minutes, so a saturated engine must never be restarted for
being slow."""


STARTUP_FLOOR_S = 30 * 60
"""The startup window is never shorter than 30 minutes (what every engine had before it was derived)."""
ENGINE_INIT_S = 10 * 60
"""Start-up work besides moving weights: CUDA graph capture, torch.compile, warm-up."""
NETWORK_BYTES_PER_S = 125_000_000
"""1 Gb/s: the Hub, object storage or a network volume, the link a node commonly has."""
LOCAL_BYTES_PER_S = 1_000_000_000
"""1 GB/s: reading weights from a local disk (a downloaded cache, a pulled model image) into the GPUs."""


@dataclass(frozen=True)
class StartupBudget:
    """The startup probe's window and how it was decided (``status`` and docs quote ``basis``)."""

    seconds: int
    basis: str


def startup_budget(spec: ModelDeploymentSpec) -> StartupBudget:
    """How long the startup probe waits before the engine must answer. Pure; consumed by ``probes``.

    ``engine.startupTimeout`` when set. Otherwise ``10 min`` of engine start-up plus the time to
    move the weights, at least 30 minutes:

    - ``hf://``: download at 1 Gb/s into the pod, then load from its disk at 1 GB/s;
    - ``s3://``, ``gs://``: streamed to the GPUs at 1 Gb/s (the Run:ai streamer writes no copy);
    - ``pvc://``: read from the volume at 1 Gb/s (usually network storage);
    - ``oci://``: the kubelet pulls the image before the container starts, so only the load from
      local disk at 1 GB/s counts.

    The weights are those ``ephemeral_storage`` counts (parameters from the model name x bytes per
    parameter), or, when the name gives no parameter count, the memory of the replica's GPUs,
    which bounds them: a longer window, never a premature restart into a reload.

    >>> startup_budget(ModelDeploymentSpec.model_validate({"model": {"source": "hf://m/Llama-3.1-405B"}})).seconds
    7890
    """
    if spec.engine.startup_timeout is not None:
        return StartupBudget(
            int(parse_duration(spec.engine.startup_timeout).total_seconds()), "engine.startupTimeout"
        )
    location = model_location(spec.model.source)
    # The model's own name: the repository, the last path segment, or the image without its tag.
    name = spec.model.source.rstrip("/").rsplit("/", 1)[-1].split("@")[0]
    if location.scheme == "oci":
        name = name.split(":")[0]
    params = model_parameters(name)
    if params is not None:
        per, _ = bytes_per_parameter(name)
        weights = float(params * per)
        what = f"{_num(Decimal(weights) / 10**9)} GB of weights"
    else:
        bound, _ = _gpu_memory_gib(spec)
        weights = float(bound * GIB)
        what = f"up to {bound} GiB of weights"
    if location.scheme == "hf":
        move = weights / NETWORK_BYTES_PER_S + weights / LOCAL_BYTES_PER_S
        how = "downloaded at 1 Gb/s and loaded at 1 GB/s"
    elif location.scheme == "oci":
        move = weights / LOCAL_BYTES_PER_S
        how = "loaded from the pulled image at 1 GB/s"
    else:
        move = weights / NETWORK_BYTES_PER_S
        how = f"read from {location.scheme}:// at 1 Gb/s"
    derived = ENGINE_INIT_S + math.ceil(move)
    seconds = max(STARTUP_FLOOR_S, -(-derived // 10) * 10)
    floor = " (the 30-minute floor)" if seconds == STARTUP_FLOOR_S else ""
    return StartupBudget(seconds, f"{what} {how}, plus 10 min of engine start-up{floor}")


def probes(kind: EngineKind, startup_seconds: int = STARTUP_FLOOR_S) -> dict[str, dict[str, Any]]:
    """The engine container's startup, readiness and liveness probes. Pure; consumed by
    ``engine_container``.

    Readiness runs the engine's real health check (``READINESS_PATHS``) and takes a struggling pod
    out of the Services within seconds. Liveness asks a route that only the HTTP server answers
    (``LIVENESS_PATHS``) and waits two minutes (``LIVENESS_*``): each engine already ends its own
    process when its engine side dies (SGLang also when it hangs), so the kubelet needs to restart
    it only when the server itself is wedged, and a busy engine is never restarted into a reload.

    vLLM 0.33.0: ``/health`` (``entrypoints/serve/instrumentator/health.py:22-33``) is
    ``check_health()``, which raises ``EngineDeadError`` once the engine core is dead
    (``v1/engine/async_llm.py:1129-1134``, no round trip to the engine core) and becomes 503.
    ``/version`` (``entrypoints/serve/instrumentator/basic.py:53-56``) returns a constant.
    (``/ping`` is ``/health`` again, ``serve/sagemaker/api_router.py:91-96``; ``/v1/models`` lists
    the served and LoRA models, ``openai/models/api_router.py:20-25``.) vLLM exits by itself when
    the engine dies: a watchdog checks every 5 s and stops the server
    (``entrypoints/launchers/launcher.py:233-237``, ``:314-337``) unless
    ``VLLM_KEEP_ALIVE_ON_ENGINE_DEATH`` is set (off by default, ``envs.py:106``, ``:1108-1109``).
    ``/health`` never reached the engine core, so liveness on it noticed no hang either.

    TGI v3.3.6 (the pinned image): ``/health`` (``router/src/server.rs:230-241``) asks the backend,
    which calls every shard over gRPC (``device_health``) or, after a failed generation, runs a
    1-token prefill (``model_health``; ``backends/v3/src/backend.rs:105-113``,
    ``backends/v3/src/client/sharded_client.rs:207-230``). ``/info`` (``server.rs:153-163``, route
    ``:2236``) returns the router's own model info. The launcher stops everything when a shard
    crashes or the router dies (``launcher/src/main.rs:2329-2345``).

    SGLang 0.5.23 (``srt/entrypoints/http_server.py``): ``/health`` and ``/health_generate`` are one
    handler (``:721-799``) that submits a 1-token generation and answers 200 at the first
    detokenizer output after the call, polled once a second, or 503 after
    ``SGLANG_HEALTH_CHECK_TIMEOUT`` (20 s); it answers 503 while starting and during shutdown, and
    a generation queued behind a pause never answers. ``/model_info`` (``:812-850``) reads the
    tokenizer manager's attributes only; ``/ready`` (``:714-718``) and ``/ping`` (``:2190-2199``)
    read the status a failed ``/health`` sets to UnHealthy, so they would turn readiness's verdict
    into a restart. SGLang ends itself when a forward batch hangs past ``--watchdog-timeout``
    (300 s, ``srt/arg_groups/fields/device.py:66-69``): the scheduler's watchdog sends SIGQUIT
    (``srt/utils/watchdog.py:133-163``) and the handler kills the process tree
    (``srt/managers/tokenizer_manager.py:4072-4081``). Startup reads ``/ready`` (200 once warmup
    finished, ``/health`` answering 503 while starting), with vLLM's budget; readiness reads
    ``/health`` every 10 s with a 10 s timeout (one 1-token generation each, which the engine
    batches with live requests and keeps out of its request metrics).

    The startup probe allows ``startup_seconds`` (``startup_budget``; at least 30 minutes, 180 x
    10 s) to download and load weights.
    """
    startup_path = "/ready" if kind == EngineKind.SGLANG else "/health"
    readiness = (
        _probe(path=READINESS_PATHS[kind], period=10, failures=3, timeout=10)
        if kind == EngineKind.SGLANG
        else _probe(path=READINESS_PATHS[kind], period=5, failures=3, timeout=5)
    )
    return {
        "startupProbe": _probe(path=startup_path, period=10, failures=-(-startup_seconds // 10)),
        "readinessProbe": readiness,
        "livenessProbe": _probe(
            path=LIVENESS_PATHS[kind],
            period=LIVENESS_PERIOD_SECONDS,
            failures=LIVENESS_FAILURES,
            timeout=LIVENESS_TIMEOUT_SECONDS,
        ),
    }


def _multi_gpu(spec: ModelDeploymentSpec) -> bool:
    return bool(spec.resources.gpu and spec.resources.gpu.count > 1)


def engine_container(*, name: str, spec: ModelDeploymentSpec, aliases: Sequence[str] = ()) -> dict[str, Any]:
    """The ``engine`` container. Pure; consumed by ``build_deployment``.

    Probes fit models that load for minutes (``probes``: the startup probe allows 30 minutes
    before liveness starts). ``command`` is set only for an image without an entrypoint of its own
    (``ENGINE_COMMANDS``: SGLang). The root filesystem stays writable: the engines and their
    libraries write caches under paths baked into the images (Triton and torch.compile kernels,
    outlines grammars, ``__pycache__``) that cannot all be redirected to volumes.
    """
    location = model_location(spec.model.source)
    mounts = [
        {"name": "model-cache", "mountPath": _cache_mount(spec.engine.kind)},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if _multi_gpu(spec):
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if location.volume is not None:
        mounts.append({"name": "model", "mountPath": MODEL_MOUNT, "readOnly": True})
    for i, claim in enumerate(adapter_claims(spec)):
        mounts.append({"name": f"adapter-{i}", "mountPath": f"{ADAPTER_MOUNT}/{claim}", "readOnly": True})
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.engine.image or DEFAULT_IMAGES[spec.engine.kind],
    }
    command = ENGINE_COMMANDS.get(spec.engine.kind)
    if command is not None:
        container["command"] = list(command)
    container |= {
        "args": engine_args(name=name, spec=spec, aliases=aliases),
        "ports": [{"name": PORT_NAME, "containerPort": spec.engine.port}],
        "env": _env(spec),
    }
    if spec.model.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": spec.model.credentials_secret}}]
    container |= {
        "resources": _resources(spec),
        "volumeMounts": sorted(mounts, key=lambda m: m["mountPath"]),
        **probes(spec.engine.kind, startup_budget(spec).seconds),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": False,
        },
    }
    return container


# ------------------------------------------------------------------------------------------ pod


def _toleration(t: Toleration) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if t.key is not None:
        out["key"] = t.key
    out["operator"] = str(t.operator)
    if t.value is not None:
        out["value"] = t.value
    if t.effect is not None:
        out["effect"] = str(t.effect)
    if t.toleration_seconds is not None:
        out["tolerationSeconds"] = t.toleration_seconds
    return out


def _tolerations(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if spec.resources.gpu:
        out.append({"key": C.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"})
    for t in spec.resources.tolerations:
        item = _toleration(t)
        if item not in out:
            out.append(item)
    return out


def _revision_pods(name: str, revision: str) -> dict[str, Any]:
    return {"matchLabels": {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: revision}}


def topology_spread(*, name: str, revision: str, spread: Spread | None) -> list[dict[str, Any]]:
    """The pod's ``topologySpreadConstraints`` (``resources.spread.nodes``). Pure; consumed by
    ``pod_spec``.

    One soft constraint on ``kubernetes.io/hostname`` over the pods of this revision: the
    scheduler prefers the node with the fewest of them, so 1-GPU replicas do not pile onto one
    8-GPU node, yet it still places a pod when only a crowded node has a free GPU. Zones are *not*
    a spread constraint here: with explicit constraints the scheduler ignores, for every
    constraint, the nodes that lack any of their keys (kubernetes v1.37.1
    ``pkg/scheduler/framework/plugins/podtopologyspread/scoring.go:87-90``, ``:160-168``), so a
    zone constraint on a cluster without zone labels would switch the node spread off too; the
    zone preference is a pod anti-affinity instead (``pod_anti_affinity``). Every node carries
    ``kubernetes.io/hostname`` (the kubelet sets it), so the node constraint ignores none.
    """
    s = spread or Spread()
    if not s.nodes:
        return []
    return [
        {
            "labelSelector": _revision_pods(name, revision),
            "maxSkew": s.max_skew,
            "topologyKey": NODE_TOPOLOGY_KEY,
            "whenUnsatisfiable": "ScheduleAnyway",
        }
    ]


def pod_anti_affinity(*, name: str, revision: str, spread: Spread | None) -> dict[str, Any] | None:
    """Preferred pod anti-affinity across zones (``resources.spread.zones``). Pure; consumed by
    ``pod_spec``.

    A node in a zone that already runs a pod of this revision scores lower; a node without a
    ``topology.kubernetes.io/zone`` label gets no score from the term at all (kubernetes v1.37.1
    ``pkg/scheduler/framework/plugins/interpodaffinity/scoring.go:53``, ``:250-253``), so an
    unlabelled cluster schedules as before.
    """
    s = spread or Spread()
    if not s.zones:
        return None
    term = {"labelSelector": _revision_pods(name, revision), "topologyKey": ZONE_TOPOLOGY_KEY}
    return {"preferredDuringSchedulingIgnoredDuringExecution": [{"podAffinityTerm": term, "weight": 100}]}


def _affinity(spec: ModelDeploymentSpec) -> dict[str, Any] | None:
    """Node affinity from ``resources.gpu``.

    Required: ``nvidia.com/gpu.product In products`` and ``nvidia.com/gpu.memory Gt X`` in one
    term (both must hold). Preferred: one term per product, weights 100, 90, 80, ... (at least 1)
    in declared order. A MIG resource gets neither: only nodes carved into that profile advertise
    it, so the resource already places the pod, and the product and memory labels describe the
    whole card, not the slice (a memory rule would wrongly admit a 10 GB slice of an 80 GB card).
    """
    gpu = spec.resources.gpu
    if gpu is None or is_mig(gpu.resource):
        return None
    required: list[dict[str, Any]] = []
    if gpu.products:
        required.append({"key": C.GPU_LABEL_PRODUCT, "operator": "In", "values": list(gpu.products)})
    if gpu.min_memory_gi_b is not None:
        required.append(
            {
                "key": C.GPU_LABEL_MEMORY,
                "operator": "Gt",
                "values": [str(min_memory_mib_exclusive(gpu.min_memory_gi_b))],
            }
        )
    node_affinity: dict[str, Any] = {}
    if required:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchExpressions": required}]
        }
    if gpu.products:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {
                "weight": max(1, 100 - 10 * i),
                "preference": {
                    "matchExpressions": [{"key": C.GPU_LABEL_PRODUCT, "operator": "In", "values": [p]}]
                },
            }
            for i, p in enumerate(gpu.products)
        ]
    return {"nodeAffinity": node_affinity} if node_affinity else None


def _volumes(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    disk = ephemeral_storage(spec)
    volumes: list[dict[str, Any]] = [
        {"name": "model-cache", "emptyDir": {"sizeLimit": disk.model_cache}},
        {"name": "tmp", "emptyDir": {"sizeLimit": disk.tmp}},
    ]
    if _multi_gpu(spec):
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}})
    location = model_location(spec.model.source)
    if location.volume is not None:
        volumes.append(location.volume)
    for i, claim in enumerate(adapter_claims(spec)):
        volumes.append(
            {"name": f"adapter-{i}", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
    return sorted(volumes, key=lambda v: v["name"])


def pod_security_context(kind: EngineKind) -> dict[str, Any]:
    """The pod ``securityContext`` for an engine kind. Pure; consumed by ``pod_spec``.

    vLLM runs as uid/gid 2000 (the image's own ``vllm`` user) and SGLang as uid/gid 1000 (its
    image needs no root at run time); both meet the *restricted* Pod Security Standard. TGI runs
    as root because its image cannot start as any other user
    (``IMAGE_USERS`` has the Dockerfile evidence): such pods meet *baseline* only, so a namespace
    that enforces ``restricted`` rejects them. All keep seccomp ``RuntimeDefault``; the container
    drops every capability and forbids privilege escalation (``engine_container``), root included.
    """
    user = IMAGE_USERS[kind]
    out: dict[str, Any] = {
        "runAsNonRoot": user.run_as_user != 0,
        "runAsUser": user.run_as_user,
        "runAsGroup": user.run_as_group,
    }
    if user.fs_group is not None:
        out |= {"fsGroup": user.fs_group, "fsGroupChangePolicy": "OnRootMismatch"}
    out["seccompProfile"] = {"type": "RuntimeDefault"}
    return out


def pod_spec(
    *, name: str, spec: ModelDeploymentSpec, revision: str | None = None, aliases: Sequence[str] = ()
) -> dict[str, Any]:
    """The pod spec of one revision. Pure; consumed by ``build_deployment``.

    ``revision`` (default ``revision_of(spec)``) names the pods the spread preferences count
    (``topology_spread``, ``pod_anti_affinity``): one revision's replicas, so a canary's pods
    spread among themselves and never push stable's away.

    The security context is ``pod_security_context`` of the engine kind. Service links are off:
    Kubernetes would otherwise inject ``<SERVICE>_PORT=tcp://...`` variables, and a Service
    named ``vllm`` sets ``VLLM_PORT``, which vLLM reads as its own setting and fails on. The engine
    needs no Kubernetes API access, so no service-account token is mounted.
    """
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": pod_security_context(spec.engine.kind),
        "containers": [engine_container(name=name, spec=spec, aliases=aliases)],
        "volumes": _volumes(spec),
    }
    revision = revision or revision_of(spec)
    affinity = _affinity(spec) or {}
    anti = pod_anti_affinity(name=name, revision=revision, spread=spec.resources.spread)
    if anti:
        affinity["podAntiAffinity"] = anti
    if affinity:
        pod["affinity"] = affinity
    tolerations = _tolerations(spec)
    if tolerations:
        pod["tolerations"] = tolerations
    if spec.resources.node_selector:
        pod["nodeSelector"] = dict(sorted(spec.resources.node_selector.items()))
    spread = topology_spread(name=name, revision=revision, spread=spec.resources.spread)
    if spread:
        pod["topologySpreadConstraints"] = spread
    return pod


# ------------------------------------------------------------------------------------------ objects


_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def llm_d_labels(name: str, spec: ModelDeploymentSpec) -> dict[str, str]:
    """The pod labels llm-d's endpoint picker and OpenCost's inference-cost module group pods by,
    with the ``inferencePool`` router only (adding a label to a running Deployment's pod template
    restarts its pods, so other routers' pods are left as they are): ``llm-d.ai/model``, the served
    name (llm-d sets it equal to ``--served-model-name`` so that it matches the engine's
    ``model_name`` metric label), and ``llm-d.ai/inference-serving: "true"``. A served name that is
    not a valid label value (a ``/``, over 63 characters) falls back to the ModelDeployment's name.

    >>> from slogate.api.v1alpha1 import ModelDeploymentSpec
    >>> pools = {"rollout": {"traffic": {"router": "inferencePool", "inferencePool": {"parentRefs": [{"name": "gw"}]}}}}
    >>> llm_d_labels("chat", ModelDeploymentSpec.model_validate({"model": {"source": "hf://a/b", "servedName": "Qwen3-32B"}, **pools}))
    {'llm-d.ai/model': 'Qwen3-32B', 'llm-d.ai/inference-serving': 'true'}
    >>> llm_d_labels("chat", ModelDeploymentSpec.model_validate({"model": {"source": "hf://a/b", "servedName": "a/b"}, **pools}))
    {'llm-d.ai/model': 'chat', 'llm-d.ai/inference-serving': 'true'}
    >>> llm_d_labels("chat", ModelDeploymentSpec.model_validate({"model": {"source": "hf://a/b"}}))
    {}
    """
    if spec.rollout.traffic.router != Router.INFERENCE_POOL:
        return {}
    served = spec.model.served_name or name
    return {
        C.LABEL_LLM_D_MODEL: served if _LABEL_VALUE.match(served) else name,
        C.LABEL_LLM_D_SERVING: "true",
    }


def build_deployment(
    *,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    owner: Owner,
    revision: str,
    track: Track,
    replicas: int | None,
    aliases: Sequence[str] = (),
) -> dict[str, Any]:
    """The Deployment ``NAME-REVISION`` of one track. Pure; consumed by ``build_desired``.

    ``replicas=None`` omits ``spec.replicas`` so that the autoscaler, not this operator's field
    manager, owns it. The selector (immutable) holds only deployment and revision; the track is a
    label on the Deployment and its pods. Rolling updates surge one pod and never take one away
    first (a replacement needs minutes to load the model and a GPU to load it on).
    """
    pod_meta = {
        "labels": dict(sorted({**pod_labels(name, revision, track), **llm_d_labels(name, spec)}.items())),
        "annotations": {
            "prometheus.io/path": "/metrics",
            "prometheus.io/port": str(spec.engine.port),
            "prometheus.io/scrape": "true",
        },
    }
    body: dict[str, Any] = {}
    if replicas is not None:
        body["replicas"] = replicas
    body |= {
        "revisionHistoryLimit": 2,
        "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
        "selector": {"matchLabels": {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: revision}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": pod_meta,
            "spec": pod_spec(name=name, spec=spec, revision=revision, aliases=aliases),
        },
    }
    labels = {**common_labels(name), C.LABEL_REVISION: revision, C.LABEL_TRACK: track}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            name=deployment_name(name, revision), namespace=namespace, labels=labels, owner=owner
        ),
        "spec": body,
    }


def _service(
    *, name: str, namespace: str, owner: Owner, svc_name: str, sel: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name=svc_name, namespace=namespace, labels=common_labels(name), owner=owner),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(sorted(sel.items())),
            "ports": [{"name": PORT_NAME, "port": 80, "targetPort": PORT_NAME}],
        },
    }


def build_root_service(*, name: str, namespace: str, owner: Owner) -> dict[str, Any]:
    """Service ``NAME`` over every track's pods. Pure; consumed by ``build_desired``.

    With the ``replicas`` router the canary's share of traffic is its share of ready pods.
    """
    return _service(
        name=name,
        namespace=namespace,
        owner=owner,
        svc_name=root_service_name(name),
        sel=selector_labels(name),
    )


def build_track_service(
    *, name: str, namespace: str, owner: Owner, track: Track, revision: str
) -> dict[str, Any]:
    """Service ``NAME-stable`` or ``NAME-canary`` over one revision's pods. Pure; consumed by
    ``build_desired`` (and by HTTPRoute backends and analysis that must reach one track)."""
    sel = {**selector_labels(name), C.LABEL_REVISION: revision}
    return _service(
        name=name, namespace=namespace, owner=owner, svc_name=track_service_name(name, track), sel=sel
    )


def build_pdb(*, name: str, namespace: str, owner: Owner) -> dict[str, Any]:
    """PodDisruptionBudget ``NAME``: one pod of the ModelDeployment may be evicted at a time. Pure;
    consumed by ``build_desired``.

    ``maxUnavailable`` rather than ``minAvailable`` so a single-replica model never blocks a node
    drain; ``AlwaysAllow`` lets a drain evict pods that are not ready anyway (a crash-looping
    engine must not hold a node hostage).
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name=name, namespace=namespace, labels=common_labels(name), owner=owner),
        "spec": {
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": selector_labels(name)},
        },
    }


def _series(kind: EngineKind, autoscaling: Autoscaling) -> str:
    series = autoscaling_series(kind, autoscaling.metric)
    if series is None:
        raise ValueError(f"engine {kind} exports no {autoscaling.metric} metric to autoscale on")
    return series


def _scale_target(name: str, revision: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name(name, revision)}


def _scale_down_behavior() -> dict[str, Any]:
    return {"scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_STABILIZATION_SECONDS}}


def build_scaled_object(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    autoscaling: Autoscaling,
    engine: EngineKind,
    stable_revision: str,
    prometheus_url: str,
) -> dict[str, Any]:
    """KEDA ScaledObject ``NAME`` scaling the stable Deployment. Pure; consumed by ``build_desired``.

    The Prometheus trigger's query sums the engine gauge over the stable revision's pods; KEDA
    divides it by ``threshold`` (the per-replica target), which is the replica count an HPA on the
    per-pod average would pick. The threshold is written as a plain number because KEDA parses a
    float (a quantity such as ``500m`` would not parse).
    """
    query = f"sum({_series(engine, autoscaling)}{selector(namespace, name, stable_revision)})"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(name=name, namespace=namespace, labels=common_labels(name), owner=owner),
        "spec": {
            "scaleTargetRef": _scale_target(name, stable_revision),
            "minReplicaCount": autoscaling.min_replicas,
            "maxReplicaCount": autoscaling.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _scale_down_behavior()}},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": query,
                        "threshold": _plain_number(autoscaling.target),
                    },
                }
            ],
        },
    }


def hpa_metric_name(engine: EngineKind, autoscaling: Autoscaling) -> str:
    """The custom metric an HPA asks for: the engine series with ``:`` replaced by ``_``, as
    prometheus-adapter exposes it (``vllm:num_requests_waiting`` → ``vllm_num_requests_waiting``).
    Pure; consumed by ``build_hpa`` and the fallback note."""
    return _series(engine, autoscaling).replace(":", "_")


def build_hpa(
    *,
    name: str,
    namespace: str,
    owner: Owner,
    autoscaling: Autoscaling,
    engine: EngineKind,
    stable_revision: str,
) -> dict[str, Any]:
    """autoscaling/v2 HorizontalPodAutoscaler ``NAME`` on the stable Deployment. Pure; consumed by
    ``build_desired``.

    A ``Pods`` metric averaged over the target's pods (needs prometheus-adapter serving the
    custom metrics API). An HPA cannot scale to zero, so ``minReplicas`` is at least 1.
    ``averageValue`` is the target exactly as written; the API server stores quantities in
    canonical form (``0.8`` reads back as ``800m``), so compare quantities by value.
    """
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name=name, namespace=namespace, labels=common_labels(name), owner=owner),
        "spec": {
            "scaleTargetRef": _scale_target(name, stable_revision),
            "minReplicas": max(1, autoscaling.min_replicas),
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": hpa_metric_name(engine, autoscaling)},
                        "target": {"type": "AverageValue", "averageValue": autoscaling.target},
                    },
                }
            ],
            "behavior": _scale_down_behavior(),
        },
    }


def build_pod_monitor(*, name: str, namespace: str, owner: Owner) -> dict[str, Any]:
    """prometheus-operator PodMonitor ``NAME`` scraping ``/metrics`` on the API port every 15 s.
    Pure; consumed by ``build_desired`` when ``monitoring.coreos.com/v1`` is served.

    ``podTargetLabels`` copy the slogate pod labels onto every series (sanitised to
    ``slogate_io_deployment``, ``slogate_io_revision``, ``slogate_io_track``), which is what
    ``engine_metrics.selector`` and SLO analysis select on.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _metadata(name=name, namespace=namespace, labels=common_labels(name), owner=owner),
        "spec": {
            "selector": {"matchLabels": selector_labels(name)},
            "podMetricsEndpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": "15s"}],
            "podTargetLabels": [C.LABEL_DEPLOYMENT, C.LABEL_REVISION, C.LABEL_TRACK],
        },
    }


def service_namespace(url: str) -> str | None:
    """The namespace a cluster Service URL names (``http://SERVICE.NAMESPACE[.svc[...]]:PORT``), or
    ``None`` (an IP address, one label, an outside host). Pure; consumed by ``build_network_policy``
    to admit Prometheus.

    >>> [service_namespace(u) for u in ("http://prometheus-operated.monitoring:9090",
    ...     "https://prom.observability.svc.cluster.local", "http://127.0.0.1:9090", "https://prom.example.com")]
    ['monitoring', 'observability', None, None]
    """
    host = urlsplit(url).hostname or ""
    labels = host.split(".")
    if len(labels) < 2 or labels[-1].isdigit() or (len(labels) > 2 and labels[2] != "svc"):
        return None
    return labels[1]


def _namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}


def build_network_policy(
    *,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    owner: Owner,
    prometheus_url: str,
    operator_namespace: str = "",
) -> dict[str, Any] | None:
    """NetworkPolicy ``NAME``: who may open a connection to the engine port of the ModelDeployment's
    pods (every track). Pure; consumed by ``build_desired``. ``None`` when
    ``networkPolicy.enabled`` is false.

    Admitted, in this order (``networkPolicy`` has the switches): every pod of the namespace
    (``allowSameNamespace``); the namespace of Prometheus, read from the Prometheus URLs the
    operator and ``rollout.analysis.prometheus`` use when they name a cluster Service
    (``service_namespace``), since Prometheus scrapes ``/metrics`` on the same port; the namespaces
    of the Gateways an HTTPRoute attaches to (``gatewayAPI`` and ``inferencePool`` routers); ``allowNamespaces``; and
    ``allowFrom`` as written. The operator itself needs a rule only with ``spec.quality``: its
    quality gates and probe ask the engine pods (``operator_namespace``, the operator's own
    namespace, when known); otherwise it reads metrics from Prometheus and never connects to one. The kubelet's probes come from the node, which a
    NetworkPolicy always admits. Only ingress is limited (``policyTypes: [Ingress]``): the engines
    download weights from outside. With no peer at all there is no ingress rule, which admits
    nothing (a rule with no ``from`` would admit everyone; an empty ``ingress`` list the API server
    drops, and the live object would never match).
    """
    policy = spec.network_policy
    if not policy.enabled:
        return None
    peers: list[dict[str, Any]] = []
    if policy.allow_same_namespace:
        peers.append({"podSelector": {}})
    namespaces: list[str] = []
    urls = [prometheus_url]
    if spec.rollout.analysis.prometheus is not None:
        urls.append(spec.rollout.analysis.prometheus.url)
    namespaces += [ns for ns in map(service_namespace, urls) if ns]
    traffic = spec.rollout.traffic
    if traffic.router == Router.GATEWAY_API and traffic.gateway_api is not None:
        namespaces += [ref.namespace or namespace for ref in traffic.gateway_api.parent_refs]
    if traffic.router == Router.INFERENCE_POOL and traffic.inference_pool is not None:
        namespaces += [ref.namespace or namespace for ref in traffic.inference_pool.parent_refs]
    if spec.quality is not None and operator_namespace:
        namespaces.append(operator_namespace)
    namespaces += policy.allow_namespaces
    skip = {namespace} if policy.allow_same_namespace else set()
    for ns in dict.fromkeys(namespaces):
        if ns not in skip:
            peers.append(_namespace_peer(ns))
    peers += [dict(p) for p in policy.allow_from]
    body: dict[str, Any] = {"podSelector": {"matchLabels": selector_labels(name)}, "policyTypes": ["Ingress"]}
    if peers:  # no rule at all denies every connection; the API server drops an empty list
        body["ingress"] = [{"from": peers, "ports": [{"port": spec.engine.port, "protocol": "TCP"}]}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name=name, namespace=namespace, labels=common_labels(name), owner=owner),
        "spec": body,
    }


# ------------------------------------------------------------------------------------------ all


def _autoscaler(
    *,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    owner: Owner,
    caps: Capabilities,
    stable_revision: str,
    prometheus_url: str,
) -> tuple[str | None, dict[str, Any] | None, list[str]]:
    a = spec.autoscaling
    if a is None:
        return None, None, []
    kind = spec.engine.kind
    notes: list[str] = []
    if a.provider == AutoscalingProvider.KEDA and caps.keda:
        if a.min_replicas == 0:
            notes.append(
                "autoscaling.minReplicas 0: the engine's own metrics disappear with its last pod, "
                "so once at zero nothing in them can scale it up again; scale from zero needs a "
                "request signal from outside the pods"
            )
        obj = build_scaled_object(
            name=name,
            namespace=namespace,
            owner=owner,
            autoscaling=a,
            engine=kind,
            stable_revision=stable_revision,
            prometheus_url=prometheus_url,
        )
        return "keda", obj, notes
    if a.provider == AutoscalingProvider.KEDA:
        notes.append(
            "autoscaling.provider keda asked but KEDA is not installed: using an HPA on the custom "
            f"metric {hpa_metric_name(kind, a)} (needs prometheus-adapter)"
        )
    if a.min_replicas == 0:
        notes.append("autoscaling.minReplicas 0 needs KEDA: the HPA uses minReplicas 1")
    obj = build_hpa(
        name=name,
        namespace=namespace,
        owner=owner,
        autoscaling=a,
        engine=kind,
        stable_revision=stable_revision,
    )
    return "hpa", obj, notes


def _spec_notes(spec: ModelDeploymentSpec) -> list[str]:
    notes: list[str] = []
    scheme = model_location(spec.model.source).scheme
    if spec.model.revision and scheme != "hf":
        notes.append(f"model.revision applies to hf:// sources only: ignored for {scheme}://")
    if spec.engine.kind == EngineKind.TGI and scheme in ("s3", "gs"):
        notes.append(
            f"engine tgi cannot read {scheme}:// itself (it loads from the Hugging Face Hub or a "
            "local directory): use a pvc:// or oci:// source"
        )
    gpu = spec.resources.gpu
    if gpu and is_mig(gpu.resource) and (gpu.products or gpu.min_memory_gi_b is not None):
        notes.append(
            f"resources.gpu.products and minMemoryGiB are ignored with {gpu.resource}: "
            "the MIG profile fixes the slice"
        )
    return notes


def build_desired(
    *,
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    owner: Owner,
    caps: Capabilities,
    stable_revision: str,
    canary_revision: str | None = None,
    canary_replicas: int = 0,
    prometheus_url: str,
    aliases: Sequence[str] = (),
    operator_namespace: str = "",
) -> DesiredState:
    """Every child object of one ModelDeployment. Pure; consumed by ``controller.reconcile``,
    which server-side-applies ``objects`` and puts ``notes`` into status.

    Only the Deployment of the spec's own revision (``revision_of(spec)``) is built: as the
    stable track with ``spec.replicas`` (omitted when autoscaled) when it is ``stable_revision``,
    as the canary track with ``canary_replicas`` when it is ``canary_revision``, and not at all
    otherwise (a rejected revision; a note says so). Deployments of other revisions are the
    controller's to scale and delete. Services ``NAME`` and ``NAME-stable`` always exist,
    ``NAME-canary`` only with a canary revision. The NetworkPolicy exists unless
    ``networkPolicy.enabled`` is false (the controller then prunes it). The autoscaler always
    targets the stable Deployment; the PodMonitor is built only when prometheus-operator is
    installed.
    """
    revision = revision_of(spec)
    objects: list[dict[str, Any]] = []
    notes = _spec_notes(spec)
    track: Track | None = None
    replicas: int | None = None
    if revision == stable_revision:
        track, replicas = "stable", (None if spec.autoscaling else spec.replicas)
    elif revision == canary_revision:
        track, replicas = "canary", canary_replicas
    else:
        notes.append(
            f"revision {revision} is neither stable ({stable_revision}) nor the canary "
            f"({canary_revision or 'none'}): its Deployment is not built"
        )
    if track is not None:
        objects.append(
            build_deployment(
                name=name,
                namespace=namespace,
                spec=spec,
                owner=owner,
                revision=revision,
                track=track,
                replicas=replicas,
                aliases=aliases,
            )
        )
    objects.append(build_root_service(name=name, namespace=namespace, owner=owner))
    objects.append(
        build_track_service(
            name=name, namespace=namespace, owner=owner, track="stable", revision=stable_revision
        )
    )
    if canary_revision is not None:
        objects.append(
            build_track_service(
                name=name, namespace=namespace, owner=owner, track="canary", revision=canary_revision
            )
        )
    objects.append(build_pdb(name=name, namespace=namespace, owner=owner))
    policy = build_network_policy(
        name=name,
        namespace=namespace,
        spec=spec,
        owner=owner,
        prometheus_url=prometheus_url,
        operator_namespace=operator_namespace,
    )
    if policy is not None:
        objects.append(policy)
    autoscaler, scaler, scaler_notes = _autoscaler(
        name=name,
        namespace=namespace,
        spec=spec,
        owner=owner,
        caps=caps,
        stable_revision=stable_revision,
        prometheus_url=prometheus_url,
    )
    if scaler is not None:
        objects.append(scaler)
    if caps.prometheus_operator:
        objects.append(build_pod_monitor(name=name, namespace=namespace, owner=owner))
    return DesiredState(objects=objects, autoscaler=autoscaler, notes=notes, autoscaler_notes=scaler_notes)
