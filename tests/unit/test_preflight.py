"""GPU preflight: eligibility rules, greedy placement, every message form, raw-dict parsing."""

from __future__ import annotations

import dataclasses

import pytest

from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.core.preflight import (
    NodeInfo,
    Preflight,
    Shape,
    crashloop_message,
    memory_floor_mib,
    node_info_from,
    pod_extended_requests,
    preflight,
    rejection,
    shape_of,
    tolerates,
    unschedulable_message,
)

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"
GPU = "nvidia.com/gpu"
MIG3 = "nvidia.com/mig-3g.40gb"
MIG1 = "nvidia.com/mig-1g.10gb"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
GIB = 2**30


def gpu_node(name, product, memory_mib, count, **over) -> NodeInfo:
    node = NodeInfo(
        name=name,
        labels={
            "kubernetes.io/hostname": name,
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": product,
            "nvidia.com/gpu.memory": str(memory_mib),
            "nvidia.com/gpu.count": str(count),
        },
        allocatable={"cpu": "64", "memory": "512Gi", "pods": "110", GPU: str(count)},
        requested={},
        taints=(dict(GPU_TAINT),),
    )
    return dataclasses.replace(node, **over)


GPU0 = gpu_node("gpu-0", H100, 81559, 4)
GPU1 = gpu_node("gpu-1", A100, 81920, 2)
GPU2 = gpu_node("gpu-2", L4, 23034, 1)
MIG0 = NodeInfo(
    name="mig-0",
    labels={
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": f"{A100}-MIG-MIXED",
        "nvidia.com/gpu.memory": "81920",
        "nvidia.com/mig.strategy": "mixed",
    },
    allocatable={"cpu": "64", "memory": "512Gi", MIG3: "2", MIG1: "3"},
    requested={},
    taints=(dict(GPU_TAINT),),
)
CPU0 = NodeInfo(name="cpu-0", labels={}, allocatable={"cpu": "64", "memory": "512Gi"}, requested={})

EMPTY = [GPU0, GPU1, GPU2, MIG0, CPU0]
"""Nothing running yet."""
BUSY = [
    dataclasses.replace(GPU0, requested={GPU: 2}),
    dataclasses.replace(GPU1, requested={GPU: 2}),
    GPU2,
    dataclasses.replace(MIG0, requested={MIG1: 1}),
    CPU0,
]
"""gpu-0 half used, gpu-1 full, one 1g.10gb slice taken."""
H100_FULL = [dataclasses.replace(GPU0, requested={GPU: 4}), GPU1, GPU2, MIG0, CPU0]


def shape(**over) -> Shape:
    base = Shape(resource=GPU, count=1, products=(), min_memory_gib=None, node_selector={}, tolerations=())
    return dataclasses.replace(base, **over)


def ok(placeable, message) -> Preflight:
    return Preflight(ok=True, fits_at_all=True, placeable=placeable, reason="", message=message)


def short(placeable, message) -> Preflight:
    return Preflight(
        ok=False, fits_at_all=True, placeable=placeable, reason="InsufficientGPU", message=message
    )


def never(message) -> Preflight:
    return Preflight(
        ok=False, fits_at_all=False, placeable=0, reason="GPUShapeUnsatisfiable", message=message
    )


# ------------------------------------------------------------------------------------ preflight


@pytest.mark.parametrize(
    "the_shape, nodes, replicas, expected",
    [
        pytest.param(
            shape(),
            EMPTY,
            1,
            ok(
                7,
                "1 replica fits (room for 7): 7 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2, gpu-2: 1)",
            ),
            id="one-gpu-any-product",
        ),
        pytest.param(
            shape(count=4, products=(H100,)),
            EMPTY,
            1,
            ok(1, "1 replica fits (room for 1): 4 free nvidia.com/gpu on eligible nodes (gpu-0: 4)"),
            id="h100x4-fits",
        ),
        pytest.param(
            shape(count=4, products=(H100,)),
            EMPTY,
            3,
            short(1, "only 1 of 3 replicas fit: 4 free nvidia.com/gpu on eligible nodes (gpu-0: 4)"),
            id="h100x4-only-one-of-three",
        ),
        pytest.param(
            shape(count=4, products=(H100,)),
            BUSY,
            1,
            short(
                0,
                "no node offers 4 nvidia.com/gpu of product NVIDIA-H100-80GB-HBM3 free; "
                "the largest free is 2 on node gpu-0",
            ),
            id="h100x4-half-used",
        ),
        pytest.param(
            shape(products=(H100,)),
            H100_FULL,
            1,
            short(
                0,
                "no node offers 1 nvidia.com/gpu of product NVIDIA-H100-80GB-HBM3 free; "
                "every eligible node is fully used (gpu-0)",
            ),
            id="h100-all-used",
        ),
        pytest.param(
            shape(count=16, products=(H100,)),
            EMPTY,
            1,
            never(
                "no node can ever hold one replica: it needs 16 nvidia.com/gpu of product NVIDIA-H100-80GB-HBM3 "
                "on one node (tensor parallel runs within a node); the largest such node has 4 (gpu-0)"
            ),
            id="h100x16-never",
        ),
        pytest.param(
            shape(count=8, min_memory_gib=80),
            EMPTY,
            1,
            never(
                "no node can ever hold one replica: it needs 8 nvidia.com/gpu with at least 80 GiB each "
                "on one node (tensor parallel runs within a node); the largest such node has 4 (gpu-0)"
            ),
            id="x8-80gib-never",
        ),
        pytest.param(
            shape(products=("NVIDIA-B200",)),
            EMPTY,
            1,
            never(
                "no Ready node offers product NVIDIA-B200 "
                "(nodes offer: NVIDIA-A100-SXM4-80GB, NVIDIA-H100-80GB-HBM3, NVIDIA-L4)"
            ),
            id="product-nowhere",
        ),
        pytest.param(
            shape(products=("NVIDIA-B200", "NVIDIA-GB200")),
            EMPTY,
            1,
            never(
                "no Ready node offers any of products NVIDIA-B200, NVIDIA-GB200 "
                "(nodes offer: NVIDIA-A100-SXM4-80GB, NVIDIA-H100-80GB-HBM3, NVIDIA-L4)"
            ),
            id="products-nowhere",
        ),
        pytest.param(
            shape(products=(H100,)),
            [dataclasses.replace(GPU0, ready=False), GPU1, GPU2],
            1,
            never(
                "no Ready node offers product NVIDIA-H100-80GB-HBM3 (nodes offer: NVIDIA-A100-SXM4-80GB, NVIDIA-L4)"
            ),
            id="product-only-on-not-ready-node",
        ),
        pytest.param(
            shape(resource="nvidia.com/mig-7g.80gb"),
            EMPTY,
            1,
            never("no node offers nvidia.com/mig-7g.80gb"),
            id="mig-profile-nowhere",
        ),
        pytest.param(shape(), [], 1, never("no node offers nvidia.com/gpu"), id="no-nodes"),
        pytest.param(shape(), [CPU0], 1, never("no node offers nvidia.com/gpu"), id="cpu-only-cluster"),
        pytest.param(
            shape(),
            [dataclasses.replace(GPU0, ready=False), dataclasses.replace(GPU1, unschedulable=True), CPU0],
            1,
            never("no Ready node offers nvidia.com/gpu (gpu-0: not Ready; gpu-1: cordoned)"),
            id="gpu-nodes-down",
        ),
        pytest.param(
            shape(min_memory_gib=80),
            [GPU2, CPU0],
            1,
            never(
                "no node can ever hold one replica: every node with nvidia.com/gpu is ruled out "
                "(gpu-2: nvidia.com/gpu.memory 23034 MiB is below the 73728 MiB floor for 80 GiB)"
            ),
            id="memory-rules-out-l4",
        ),
        pytest.param(
            shape(node_selector={"pool": "inference"}),
            [GPU0, dataclasses.replace(GPU1, labels={**GPU1.labels, "pool": "batch"})],
            1,
            never(
                "no node can ever hold one replica: every node with nvidia.com/gpu is ruled out "
                "(gpu-0: does not match nodeSelector pool=inference; gpu-1: does not match nodeSelector pool=inference)"
            ),
            id="selector-rules-out-all",
        ),
        pytest.param(
            shape(products=(H100, A100)),
            [
                dataclasses.replace(
                    GPU0, taints=({"key": "dedicated", "value": "batch", "effect": "NoSchedule"},)
                ),
                dataclasses.replace(GPU1, unschedulable=True),
                GPU2,
            ],
            1,
            never(
                "no node can ever hold one replica: every node with nvidia.com/gpu is ruled out "
                "(gpu-0: taint dedicated=batch:NoSchedule not tolerated; gpu-1: cordoned; "
                "gpu-2: product NVIDIA-L4 not wanted)"
            ),
            id="mixed-exclusions",
        ),
        pytest.param(
            shape(count=2),
            EMPTY,
            3,
            ok(
                3,
                "3 replicas fit (room for 3): 7 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2, gpu-2: 1)",
            ),
            id="greedy-x2-three",
        ),
        pytest.param(
            shape(count=2),
            EMPTY,
            4,
            short(
                3,
                "only 3 of 4 replicas fit: 7 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2, gpu-2: 1)",
            ),
            id="greedy-x2-fragmented",
        ),
        pytest.param(
            shape(count=3),
            EMPTY,
            2,
            short(
                1,
                "only 1 of 2 replicas fit: 7 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2, gpu-2: 1)",
            ),
            id="greedy-x3-remainder-wasted",
        ),
        pytest.param(
            shape(count=2),
            BUSY,
            1,
            ok(
                1,
                "1 replica fits (room for 1): 3 free nvidia.com/gpu on eligible nodes (gpu-0: 2, gpu-1: 0, gpu-2: 1)",
            ),
            id="busy-x2-one",
        ),
        pytest.param(
            shape(count=2, products=(H100, A100)),
            EMPTY,
            3,
            ok(
                3, "3 replicas fit (room for 3): 6 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2)"
            ),
            id="two-products",
        ),
        pytest.param(
            shape(count=2, products=(H100, A100)),
            BUSY,
            2,
            short(
                1, "only 1 of 2 replicas fit: 2 free nvidia.com/gpu on eligible nodes (gpu-0: 2, gpu-1: 0)"
            ),
            id="two-products-busy",
        ),
        pytest.param(
            shape(min_memory_gib=80),
            EMPTY,
            6,
            ok(
                6, "6 replicas fit (room for 6): 6 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2)"
            ),
            id="memory-80-skips-l4",
        ),
        pytest.param(
            shape(min_memory_gib=24),
            EMPTY,
            7,
            ok(
                7,
                "7 replicas fit (room for 7): 7 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2, gpu-2: 1)",
            ),
            id="memory-24-keeps-l4",
        ),
        pytest.param(
            shape(resource=MIG3, products=(H100,)),
            EMPTY,
            2,
            ok(2, "2 replicas fit (room for 2): 2 free nvidia.com/mig-3g.40gb on eligible nodes (mig-0: 2)"),
            id="mig-ignores-products",
        ),
        pytest.param(
            shape(resource=MIG1),
            BUSY,
            3,
            short(2, "only 2 of 3 replicas fit: 2 free nvidia.com/mig-1g.10gb on eligible nodes (mig-0: 2)"),
            id="mig-slice-taken",
        ),
        pytest.param(
            shape(),
            [dataclasses.replace(GPU0, requested={GPU: 6})],
            1,
            short(0, "no node offers 1 nvidia.com/gpu free; every eligible node is fully used (gpu-0)"),
            id="overcommitted-node-counts-as-zero-free",
        ),
        pytest.param(
            shape(),
            EMPTY,
            0,
            ok(
                7,
                "0 replicas fit (room for 7): 7 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2, gpu-2: 1)",
            ),
            id="zero-replicas",
        ),
        pytest.param(
            shape(resource="nvidia.com/mig-7g.80gb"),
            EMPTY,
            0,
            never("no node offers nvidia.com/mig-7g.80gb"),
            id="zero-replicas-still-unsatisfiable",
        ),
    ],
)
def test_preflight(the_shape, nodes, replicas, expected):
    assert preflight(the_shape, nodes, replicas=replicas) == expected


def test_preflight_rejects_negative_replicas():
    with pytest.raises(ValueError, match="replicas must not be negative"):
        preflight(shape(), EMPTY, replicas=-1)


def test_first_fit_follows_node_order():
    # The largest-free tie goes to the first node in the order given.
    nodes = [dataclasses.replace(GPU1, requested={GPU: 1}), dataclasses.replace(GPU0, requested={GPU: 3})]
    result = preflight(shape(count=2), nodes, replicas=1)
    assert result.message == "no node offers 2 nvidia.com/gpu free; the largest free is 1 on node gpu-1"


# ------------------------------------------------------------------------------------ eligibility


def tainted(*taints) -> NodeInfo:
    return dataclasses.replace(GPU0, taints=(dict(GPU_TAINT), *taints))


DEDICATED = {"key": "dedicated", "value": "llm", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    "the_shape, node, expected",
    [
        pytest.param(shape(), GPU0, None, id="gpu-taint-tolerated-implicitly"),
        pytest.param(shape(), CPU0, "no nvidia.com/gpu", id="no-resource"),
        pytest.param(shape(), dataclasses.replace(GPU0, ready=False), "not Ready", id="not-ready"),
        pytest.param(shape(), dataclasses.replace(GPU0, unschedulable=True), "cordoned", id="cordoned"),
        pytest.param(
            shape(),
            dataclasses.replace(GPU0, ready=False, unschedulable=True),
            "not Ready",
            id="not-ready-before-cordoned",
        ),
        pytest.param(shape(products=(H100,)), GPU0, None, id="product-wanted"),
        pytest.param(
            shape(products=(A100, L4)),
            GPU0,
            "product NVIDIA-H100-80GB-HBM3 not wanted",
            id="product-not-wanted",
        ),
        pytest.param(
            shape(products=(H100,)),
            dataclasses.replace(GPU0, labels={}),
            "no nvidia.com/gpu.product label",
            id="product-label-missing",
        ),
        pytest.param(shape(resource=MIG3, products=(H100,)), MIG0, None, id="mig-ignores-product"),
        pytest.param(shape(min_memory_gib=80), GPU0, None, id="h100-reports-81559-for-80gib"),
        pytest.param(shape(min_memory_gib=80), gpu_node("x", H100, 73728, 4), None, id="80gib-at-floor"),
        pytest.param(
            shape(min_memory_gib=80),
            gpu_node("x", H100, 73727, 4),
            "nvidia.com/gpu.memory 73727 MiB is below the 73728 MiB floor for 80 GiB",
            id="80gib-one-below-floor",
        ),
        pytest.param(shape(min_memory_gib=24), GPU2, None, id="l4-reports-23034-for-24gib"),
        pytest.param(shape(min_memory_gib=24), gpu_node("x", L4, 22119, 1), None, id="24gib-at-floor"),
        pytest.param(
            shape(min_memory_gib=24),
            gpu_node("x", L4, 22118, 1),
            "nvidia.com/gpu.memory 22118 MiB is below the 22119 MiB floor for 24 GiB",
            id="24gib-one-below-floor",
        ),
        pytest.param(
            shape(min_memory_gib=24),
            dataclasses.replace(GPU0, labels={}),
            "no nvidia.com/gpu.memory label",
            id="memory-label-missing",
        ),
        pytest.param(
            shape(min_memory_gib=24),
            dataclasses.replace(GPU0, labels={"nvidia.com/gpu.memory": "80Gi"}),
            "nvidia.com/gpu.memory '80Gi' is not a number",
            id="memory-label-garbage",
        ),
        pytest.param(
            shape(node_selector={"pool": "inference"}),
            dataclasses.replace(GPU0, labels={**GPU0.labels, "pool": "inference"}),
            None,
            id="selector-matches",
        ),
        pytest.param(
            shape(node_selector={"pool": "inference", "zone": "a"}),
            dataclasses.replace(GPU0, labels={**GPU0.labels, "pool": "inference"}),
            "does not match nodeSelector zone=a",
            id="selector-label-missing",
        ),
        pytest.param(
            shape(),
            tainted(DEDICATED),
            "taint dedicated=llm:NoSchedule not tolerated",
            id="taint-untolerated",
        ),
        pytest.param(
            shape(),
            tainted({"key": "maintenance", "effect": "NoExecute"}),
            "taint maintenance:NoExecute not tolerated",
            id="noexecute-taint-untolerated",
        ),
        pytest.param(
            shape(),
            tainted({"key": "spot", "value": "true", "effect": "PreferNoSchedule"}),
            None,
            id="prefer-no-schedule-ignored",
        ),
        pytest.param(
            shape(tolerations=({"key": "dedicated", "operator": "Equal", "value": "llm"},)),
            tainted(DEDICATED),
            None,
            id="equal-toleration",
        ),
        pytest.param(
            shape(tolerations=({"key": "dedicated", "operator": "Equal", "value": "batch"},)),
            tainted(DEDICATED),
            "taint dedicated=llm:NoSchedule not tolerated",
            id="equal-toleration-wrong-value",
        ),
        pytest.param(
            shape(tolerations=({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},)),
            tainted(DEDICATED),
            None,
            id="exists-toleration",
        ),
        pytest.param(
            shape(tolerations=({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},)),
            tainted(DEDICATED),
            "taint dedicated=llm:NoSchedule not tolerated",
            id="toleration-effect-mismatch",
        ),
        pytest.param(
            shape(tolerations=({"operator": "Exists"},)), tainted(DEDICATED), None, id="tolerate-everything"
        ),
        pytest.param(
            shape(products=(A100,), node_selector={"pool": "x"}),
            dataclasses.replace(GPU0, ready=False),
            "not Ready",
            id="first-reason-wins",
        ),
    ],
)
def test_rejection(the_shape, node, expected):
    assert rejection(the_shape, node) == expected


@pytest.mark.parametrize(
    "gib, floor",
    [
        pytest.param(80, 73728, id="80"),
        pytest.param(24, 22119, id="24-rounds-up"),
        pytest.param(40, 36864, id="40"),
        pytest.param(1, 922, id="1-rounds-up"),
    ],
)
def test_memory_floor(gib, floor):
    assert memory_floor_mib(gib) == floor


@pytest.mark.parametrize(
    "toleration, taint, expected",
    [
        pytest.param(
            {"key": "a", "value": "b"},
            {"key": "a", "value": "b", "effect": "NoSchedule"},
            True,
            id="equal-default-op",
        ),
        pytest.param({"key": "a"}, {"key": "a", "effect": "NoSchedule"}, True, id="equal-empty-values"),
        pytest.param(
            {"key": "a"}, {"key": "a", "value": "b", "effect": "NoSchedule"}, False, id="equal-value-differs"
        ),
        pytest.param(
            {"key": "a", "operator": "Exists"}, {"key": "b", "effect": "NoSchedule"}, False, id="key-differs"
        ),
        pytest.param(
            {"operator": "Exists", "effect": "NoExecute"},
            {"key": "b", "effect": "NoExecute"},
            True,
            id="any-key-one-effect",
        ),
    ],
)
def test_tolerates(toleration, taint, expected):
    assert tolerates(toleration, taint) is expected


# ------------------------------------------------------------------------------------ shape_of


def test_shape_of_spec():
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://meta-llama/Llama-3.1-70B-Instruct"},
            "resources": {
                "gpu": {"count": 4, "products": [H100, A100], "minMemoryGiB": 80},
                "nodeSelector": {"pool": "inference"},
                "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            },
        }
    )
    assert shape_of(spec) == Shape(
        resource="nvidia.com/gpu",
        count=4,
        products=(H100, A100),
        min_memory_gib=80,
        node_selector={"pool": "inference"},
        tolerations=({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},),
        ephemeral_storage=168 * GIB,
        ephemeral_storage_basis=(
            "model-cache 158Gi for about 140 GB of weights (70B parameters from the model name x 2 bytes, "
            "bf16/fp16), /tmp 8Gi, writable layer and logs 2Gi"
        ),
    )


def test_shape_of_mig_defaults_operator():
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://Qwen/Qwen2.5-7B-Instruct"},
            "resources": {"gpu": {"resource": MIG3}, "tolerations": [{"key": "team", "value": "ml"}]},
        }
    )
    assert shape_of(spec) == Shape(
        resource=MIG3,
        count=1,
        products=(),
        min_memory_gib=None,
        node_selector={},
        tolerations=({"key": "team", "operator": "Equal", "value": "ml"},),
        ephemeral_storage=27 * GIB,
        ephemeral_storage_basis=(
            "model-cache 17Gi for about 14 GB of weights (7B parameters from the model name x 2 bytes, "
            "bf16/fp16), /tmp 8Gi, writable layer and logs 2Gi"
        ),
    )


def test_shape_of_cpu_only_is_none():
    spec = ModelDeploymentSpec.model_validate({"model": {"source": "hf://sshleifer/tiny-gpt2"}})
    assert shape_of(spec) is None


# ------------------------------------------------------------------------------------ disk


def with_disk(node: NodeInfo, quantity: str | None) -> NodeInfo:
    """The node with ``ephemeral-storage`` allocatable set (``None``: not reported)."""
    allocatable = {k: v for k, v in node.allocatable.items() if k != "ephemeral-storage"}
    if quantity is not None:
        allocatable["ephemeral-storage"] = quantity
    return dataclasses.replace(node, allocatable=allocatable)


DISK_70B = shape(count=4, ephemeral_storage=168 * GIB, ephemeral_storage_basis="model-cache 158Gi for 70B")
"""A 70B replica on 4 GPUs, asking for 168Gi of node disk."""


@pytest.mark.parametrize(
    "nodes, expected",
    [
        pytest.param(
            [with_disk(GPU0, "100Gi"), with_disk(GPU1, "1Ti"), with_disk(GPU2, "1Ti"), CPU0],
            never(
                "no node can ever hold one replica: it requests 168Gi of ephemeral-storage "
                "(model-cache 158Gi for 70B), and the largest allocatable is 100Gi (gpu-0); "
                "set resources.ephemeralStorage, or serve the weights from a pvc:// or oci:// source"
            ),
            id="only-the-gpu-node-is-too-small",
        ),
        pytest.param(
            [with_disk(GPU0, "100Gi"), with_disk(dataclasses.replace(GPU0, name="gpu-9"), "150Gi")],
            never(
                "no node can ever hold one replica: it requests 168Gi of ephemeral-storage "
                "(model-cache 158Gi for 70B), and the largest allocatable of 2 nodes with the GPUs is "
                "150Gi (gpu-9); set resources.ephemeralStorage, or serve the weights from a pvc:// or "
                "oci:// source"
            ),
            id="two-gpu-nodes-both-too-small",
        ),
        pytest.param(
            [with_disk(GPU0, "168Gi"), GPU1],
            ok(
                1, "1 replica fits (room for 1): 6 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2)"
            ),
            id="exactly-enough",
        ),
        pytest.param(
            [with_disk(GPU0, None), GPU1],
            ok(
                1, "1 replica fits (room for 1): 6 free nvidia.com/gpu on eligible nodes (gpu-0: 4, gpu-1: 2)"
            ),
            id="not-reported-is-not-judged",
        ),
        pytest.param(
            [with_disk(GPU0, "100Gi"), with_disk(GPU1, "1Ti")],
            never(
                "no node can ever hold one replica: it requests 168Gi of ephemeral-storage "
                "(model-cache 158Gi for 70B), and the largest allocatable is 100Gi (gpu-0); "
                "set resources.ephemeralStorage, or serve the weights from a pvc:// or oci:// source"
            ),
            id="a-big-disk-without-the-gpus-does-not-count",
        ),
    ],
)
def test_preflight_disk(nodes, expected):
    assert preflight(DISK_70B, nodes, replicas=1) == expected


def test_preflight_disk_from_the_spec():
    """The spec's own size reaches the message: shape_of sizes it as the Deployment does."""
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "resources": {"gpu": {"count": 1}}}
    )
    got = preflight(shape_of(spec), [with_disk(GPU2, "20Gi")], replicas=1)
    assert not got.fits_at_all and got.reason == "GPUShapeUnsatisfiable"
    assert "it requests 29Gi of ephemeral-storage (model-cache 19Gi for about 16 GB of weights" in got.message
    assert "the largest allocatable is 20Gi (gpu-2)" in got.message
    override = spec.model_copy(
        update={"resources": spec.resources.model_copy(update={"ephemeral_storage": "20Gi"})}
    )
    assert preflight(shape_of(override), [with_disk(GPU2, "20Gi")], replicas=1).ok


def test_rejection_names_the_disk():
    assert rejection(DISK_70B, with_disk(GPU0, "100Gi")) == (
        "ephemeral-storage 100Gi allocatable, below the 168Gi a replica requests"
    )
    assert rejection(DISK_70B, with_disk(GPU0, "168Gi")) is None
    assert rejection(shape(count=4), with_disk(GPU0, "1Gi")) is None  # no request: not judged


# ------------------------------------------------------------------------------------ raw dicts


def container(name, *, requests=None, limits=None, restart_policy=None) -> dict:
    c = {"name": name, "image": "img", "resources": {}}
    if requests is not None:
        c["resources"]["requests"] = requests
    if limits is not None:
        c["resources"]["limits"] = limits
    if restart_policy:
        c["restartPolicy"] = restart_policy
    return c


def pod(name, *, containers, init=(), phase="Running", deleting=False) -> dict:
    p = {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"nodeName": "gpu-0", "containers": list(containers), "initContainers": list(init)},
        "status": {"phase": phase},
    }
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-03-01T10:00:00Z"
    return p


ENGINE_2 = container("engine", requests={"cpu": "8", "memory": "64Gi"}, limits={GPU: "2", "memory": "64Gi"})


@pytest.mark.parametrize(
    "the_pod, expected",
    [
        pytest.param(pod("a", containers=[ENGINE_2]), {GPU: 2}, id="limits-only"),
        pytest.param(
            pod("a", containers=[container("c", requests={GPU: "1"})]), {GPU: 1}, id="requests-only"
        ),
        pytest.param(
            pod("a", containers=[container("c", requests={"cpu": "2", "memory": "1Gi"})]),
            {},
            id="no-extended",
        ),
        pytest.param(
            pod("a", containers=[ENGINE_2, container("proxy", limits={GPU: "1"})]),
            {GPU: 3},
            id="containers-sum",
        ),
        pytest.param(
            pod(
                "a", containers=[container("c", limits={GPU: "1"})], init=[container("dl", limits={GPU: "3"})]
            ),
            {GPU: 3},
            id="init-larger-wins",
        ),
        pytest.param(
            pod(
                "a",
                containers=[ENGINE_2],
                init=[container("i1", limits={GPU: "1"}), container("i2", limits={GPU: "2"})],
            ),
            {GPU: 2},
            id="init-max-not-sum",
        ),
        pytest.param(
            pod(
                "a",
                containers=[container("c", limits={GPU: "1"})],
                init=[
                    container("side", limits={GPU: "1"}, restart_policy="Always"),
                    container("warm", limits={GPU: "2"}),
                ],
            ),
            {GPU: 3},
            id="sidecar-adds-to-later-init",
        ),
        pytest.param(
            pod(
                "a",
                containers=[container("c", limits={GPU: "2"})],
                init=[container("side", limits={GPU: "1"}, restart_policy="Always")],
            ),
            {GPU: 3},
            id="sidecar-adds-to-containers",
        ),
        pytest.param(
            pod("a", containers=[container("c", limits={MIG1: "1"}), container("d", limits={GPU: "1"})]),
            {MIG1: 1, GPU: 1},
            id="several-resources",
        ),
    ],
)
def test_pod_extended_requests(the_pod, expected):
    assert pod_extended_requests(the_pod) == expected


RAW_GPU0 = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": "gpu-0",
        "labels": {"nvidia.com/gpu.product": H100, "nvidia.com/gpu.memory": "81559"},
    },
    "spec": {"taints": [dict(GPU_TAINT)]},
    "status": {
        "allocatable": {"cpu": "64", "memory": "512Gi", "pods": "110", GPU: "4"},
        "conditions": [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
        ],
    },
}


def test_node_info_from_counts_live_pods_only():
    pods = [
        pod("llama-a", containers=[ENGINE_2]),
        pod(
            "llama-b",
            containers=[container("c", limits={GPU: "1"})],
            init=[container("dl", limits={GPU: "1"})],
            phase="Pending",
        ),
        pod("done", containers=[container("c", limits={GPU: "4"})], phase="Succeeded"),
        pod("oom", containers=[container("c", limits={GPU: "4"})], phase="Failed"),
        pod("going", containers=[container("c", limits={GPU: "4"})], deleting=True),
        pod("dcgm", containers=[container("exporter", requests={"cpu": "100m"})]),
    ]
    assert node_info_from(RAW_GPU0, pods) == NodeInfo(
        name="gpu-0",
        labels={"nvidia.com/gpu.product": H100, "nvidia.com/gpu.memory": "81559"},
        allocatable={"cpu": "64", "memory": "512Gi", "pods": "110", GPU: "4"},
        requested={GPU: 3},
        taints=(dict(GPU_TAINT),),
        ready=True,
        unschedulable=False,
    )


@pytest.mark.parametrize(
    "status_over, spec_over, ready, unschedulable",
    [
        pytest.param(
            {"conditions": [{"type": "Ready", "status": "False"}]}, {}, False, False, id="not-ready"
        ),
        pytest.param(
            {"conditions": [{"type": "Ready", "status": "Unknown"}]}, {}, False, False, id="unknown"
        ),
        pytest.param({"conditions": []}, {}, False, False, id="no-ready-condition"),
        pytest.param({}, {"unschedulable": True}, True, True, id="cordoned"),
    ],
)
def test_node_info_from_states(status_over, spec_over, ready, unschedulable):
    node = {
        **RAW_GPU0,
        "status": {**RAW_GPU0["status"], **status_over},
        "spec": {**RAW_GPU0["spec"], **spec_over},
    }
    info = node_info_from(node, [])
    assert (info.ready, info.unschedulable, info.requested) == (ready, unschedulable, {})


def test_node_info_from_bare_node():
    info = node_info_from({"metadata": {"name": "cpu-0"}}, [])
    assert info == NodeInfo(name="cpu-0", labels={}, allocatable={}, requested={}, taints=(), ready=False)


def test_node_info_feeds_preflight():
    info = node_info_from(RAW_GPU0, [pod("llama-a", containers=[ENGINE_2])])
    result = preflight(shape(count=4, products=(H100,)), [info], replicas=1)
    assert result.message == (
        "no node offers 4 nvidia.com/gpu of product NVIDIA-H100-80GB-HBM3 free; the largest free is 2 on node gpu-0"
    )


# ------------------------------------------------------------------------------------ pod symptoms

SCHEDULER_MESSAGE = (
    "0/5 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node affinity/selector, "
    "3 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/5 nodes are available: "
    "1 No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling."
)


def pending(name, *, reason="Unschedulable", message=SCHEDULER_MESSAGE, deleting=False) -> dict:
    p = {
        "metadata": {"name": name, "namespace": "ml"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": "2026-03-01T10:00:00Z",
                }
            ],
        },
    }
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-03-01T10:01:00Z"
    return p


RUNNING = {
    "metadata": {"name": "llama-6f1c2d3e-7d9f8-aaaaa"},
    "status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]},
}


@pytest.mark.parametrize(
    "pods, expected",
    [
        pytest.param([], None, id="no-pods"),
        pytest.param([RUNNING], None, id="all-running"),
        pytest.param(
            [
                RUNNING,
                pending("llama-6f1c2d3e-7d9f8-x2k4q"),
                pending("llama-6f1c2d3e-7d9f8-zz999", message="other"),
            ],
            f"llama-6f1c2d3e-7d9f8-x2k4q: {SCHEDULER_MESSAGE}",
            id="first-pending",
        ),
        pytest.param([pending("p", reason="SchedulerError", message="boom")], None, id="other-reason"),
        pytest.param(
            [pending("gone", deleting=True), pending("p", message="0/5 nodes are available")],
            "p: 0/5 nodes are available",
            id="terminating-skipped",
        ),
        pytest.param([pending("p", message="")], "p: Unschedulable", id="empty-message"),
    ],
)
def test_unschedulable_message(pods, expected):
    assert unschedulable_message(pods) == expected


def status_pod(name, *, init=(), containers=(), deleting=False) -> dict:
    p = {
        "metadata": {"name": name},
        "status": {
            "phase": "Running",
            "initContainerStatuses": list(init),
            "containerStatuses": list(containers),
        },
    }
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-03-01T10:01:00Z"
    return p


def waiting(name, reason, message=None, *, restarts=0, last=None) -> dict:
    state = {"reason": reason}
    if message is not None:
        state["message"] = message
    cs = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": state}}
    if last:
        cs["lastState"] = {"terminated": last}
    return cs


RUNNING_ENGINE = {
    "name": "engine",
    "ready": True,
    "restartCount": 0,
    "state": {"running": {"startedAt": "x"}},
}
BACKOFF = "back-off 1m20s restarting failed container=engine pod=llama-6f1c2d3e-7d9f8-x2k4q_ml(0b1c)"


@pytest.mark.parametrize(
    "pods, expected",
    [
        pytest.param([], None, id="no-pods"),
        pytest.param([status_pod("p", containers=[RUNNING_ENGINE])], None, id="running"),
        pytest.param(
            [status_pod("p", containers=[waiting("engine", "ContainerCreating")])],
            None,
            id="creating-is-fine",
        ),
        pytest.param(
            [
                status_pod("ok", containers=[RUNNING_ENGINE]),
                status_pod(
                    "llama-6f1c2d3e-7d9f8-x2k4q",
                    containers=[
                        waiting(
                            "engine",
                            "CrashLoopBackOff",
                            BACKOFF,
                            restarts=4,
                            last={
                                "exitCode": 137,
                                "reason": "OOMKilled",
                                "finishedAt": "2026-03-01T10:00:00Z",
                            },
                        )
                    ],
                ),
            ],
            f"pod llama-6f1c2d3e-7d9f8-x2k4q container engine: CrashLoopBackOff, 4 restarts, "
            f"last exit OOMKilled (code 137): {BACKOFF}",
            id="crashloop-oom",
        ),
        pytest.param(
            [
                status_pod(
                    "p", containers=[waiting("engine", "CrashLoopBackOff", restarts=1, last={"exitCode": 1})]
                )
            ],
            "pod p container engine: CrashLoopBackOff, 1 restart, last exit unknown (code 1)",
            id="crashloop-bare",
        ),
        pytest.param(
            [
                status_pod(
                    "p",
                    containers=[
                        waiting(
                            "engine", "ImagePullBackOff", 'Back-off pulling image "vllm/vllm-openai:v9.9.9"'
                        )
                    ],
                )
            ],
            'pod p container engine: ImagePullBackOff, 0 restarts: Back-off pulling image "vllm/vllm-openai:v9.9.9"',
            id="image-pull-backoff",
        ),
        pytest.param(
            [
                status_pod(
                    "p",
                    containers=[
                        waiting(
                            "engine",
                            "ErrImagePull",
                            "rpc error: code = NotFound desc = failed to pull and unpack image",
                        )
                    ],
                )
            ],
            "pod p container engine: ErrImagePull, 0 restarts: rpc error: code = NotFound desc = failed to pull and unpack image",
            id="err-image-pull",
        ),
        pytest.param(
            [
                status_pod(
                    "p",
                    containers=[
                        waiting("engine", "CreateContainerConfigError", 'secret "hf-token" not found')
                    ],
                )
            ],
            'pod p container engine: CreateContainerConfigError, 0 restarts: secret "hf-token" not found',
            id="missing-secret",
        ),
        pytest.param(
            [
                status_pod(
                    "p",
                    init=[waiting("model-download", "CrashLoopBackOff", "back-off 10s", restarts=2)],
                    containers=[waiting("engine", "PodInitializing")],
                )
            ],
            "pod p container model-download: CrashLoopBackOff, 2 restarts: back-off 10s",
            id="init-container",
        ),
        pytest.param(
            [status_pod("gone", containers=[waiting("engine", "CrashLoopBackOff")], deleting=True)],
            None,
            id="terminating-skipped",
        ),
    ],
)
def test_crashloop_message(pods, expected):
    assert crashloop_message(pods) == expected
