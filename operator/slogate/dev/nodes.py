"""Fake nodes shaped like what NVIDIA GPU Feature Discovery publishes. Pure.

Each GPU node carries ``nvidia.com/gpu`` capacity, the ``nvidia.com/gpu.product``,
``nvidia.com/gpu.memory`` (MiB) and ``nvidia.com/gpu.count`` labels and the
``nvidia.com/gpu=present:NoSchedule`` taint; the MIG node exposes ``nvidia.com/mig-*`` resources
as the device plugin's ``mixed`` strategy does; one CPU-only node takes everything else.
kwok manages the nodes (annotation ``kwok.x-k8s.io/node: fake``) and makes their pods Running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}


@dataclass(frozen=True)
class GPUProduct:
    """A GPU product as GPU Feature Discovery names it."""

    name: str
    memory_mib: int


H100 = GPUProduct("NVIDIA-H100-80GB-HBM3", 81559)
A100 = GPUProduct("NVIDIA-A100-SXM4-80GB", 81920)
L4 = GPUProduct("NVIDIA-L4", 23034)
PRODUCTS = {p.name: p for p in (H100, A100, L4)}


@dataclass(frozen=True)
class NodeSet:
    """The fake node inventory: GPU nodes cycle through ``products`` with ``gpus_per_node`` each."""

    gpu_nodes: int = 3
    products: tuple[GPUProduct, ...] = (H100, A100, L4)
    gpus_per_node: tuple[int, ...] = (4, 2, 1)
    mig_node: bool = True
    cpu_node: bool = True
    cpu_nodes: int = 1
    """How many CPU-only nodes (``cpu-0`` …) when ``cpu_node``."""
    pods_per_node: int = 110
    """Every node's ``pods`` capacity (the kubelet default is 110; raise it for scale runs)."""
    mig_resources: dict[str, int] = field(
        default_factory=lambda: {"nvidia.com/mig-3g.40gb": 2, "nvidia.com/mig-1g.10gb": 3}
    )


def _node(
    name: str,
    *,
    labels: dict[str, str],
    capacity: dict[str, str],
    taints: list[dict[str, str]],
    pods: int = 110,
) -> dict[str, Any]:
    base = {"cpu": "64", "memory": "512Gi", "pods": str(pods), "ephemeral-storage": "1Ti"}
    cap = {**base, **capacity}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict(KWOK_ANNOTATION),
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **labels,
            },
        },
        "spec": {"taints": taints},
        "status": {"allocatable": dict(cap), "capacity": dict(cap)},
    }


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def build_nodes(nodes: NodeSet) -> list[dict[str, Any]]:
    """Node manifests for ``nodes``. Pure; applied by ``LocalCluster.up``.

    >>> [n["metadata"]["name"] for n in build_nodes(NodeSet(gpu_nodes=2))]
    ['gpu-0', 'gpu-1', 'mig-0', 'cpu-0']
    """
    out = []
    for i in range(nodes.gpu_nodes):
        product = nodes.products[i % len(nodes.products)]
        count = nodes.gpus_per_node[i % len(nodes.gpus_per_node)]
        out.append(
            _node(
                f"gpu-{i}",
                labels={
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/gpu.product": product.name,
                    "nvidia.com/gpu.memory": str(product.memory_mib),
                    "nvidia.com/gpu.count": str(count),
                },
                capacity={"nvidia.com/gpu": str(count)},
                taints=[dict(GPU_TAINT)],
                pods=nodes.pods_per_node,
            )
        )
    if nodes.mig_node:
        out.append(
            _node(
                "mig-0",
                labels={
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/gpu.product": f"{A100.name}-MIG-MIXED",
                    "nvidia.com/gpu.memory": str(A100.memory_mib),
                    "nvidia.com/gpu.count": "1",
                    "nvidia.com/mig.strategy": "mixed",
                    "nvidia.com/mig.capable": "true",
                },
                capacity={k: str(v) for k, v in nodes.mig_resources.items()},
                taints=[dict(GPU_TAINT)],
                pods=nodes.pods_per_node,
            )
        )
    if nodes.cpu_node:
        for i in range(max(nodes.cpu_nodes, 1)):
            out.append(_node(f"cpu-{i}", labels={}, capacity={}, taints=[], pods=nodes.pods_per_node))
    return out
