"""GPU preflight: can one replica's GPU shape (and its disk) run on this cluster, and if not, why.

The controller reads Nodes and their Pods; :func:`node_info_from` boils each down to a
:class:`NodeInfo`, :func:`shape_of` turns the spec into a :class:`Shape`, and :func:`preflight`
answers with a :class:`Preflight` that becomes the ``InsufficientGPU`` condition. "Never" (no node
could hold one replica even if it were empty: ``GPUShapeUnsatisfiable``) is kept apart from "not
now" (the GPUs exist but are in use: ``InsufficientGPU``), because only the second heals by waiting.
Node eligibility mirrors what the Deployment asks of the scheduler (taints, node selector, product
and memory affinity), so the preflight and the scheduler disagree as little as possible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from slogate import constants as C
from slogate.api.types import parse_quantity
from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.core.vocabulary import NODE_READY, ConditionStatus, PodPhase, Reason

# Names shared with the Deployment builder (slogate.constants): the taint GPU nodes carry (tolerated
# implicitly whenever GPUs are requested), GPU Feature Discovery's product and memory (MiB) labels,
# and the MIG resource prefix.
GPU_TAINT_KEY = C.GPU_TAINT_KEY
LABEL_PRODUCT = C.GPU_LABEL_PRODUCT
LABEL_MEMORY = C.GPU_LABEL_MEMORY
MIG_PREFIX = C.MIG_RESOURCE_PREFIX

EPHEMERAL_STORAGE = "ephemeral-storage"
_WAITING_FAILURES = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError")
_SCHEDULING_EFFECTS = ("NoSchedule", "NoExecute")
_IMPLICIT_TOLERATION: Mapping[str, str] = {"key": GPU_TAINT_KEY, "operator": "Exists"}


@dataclass(frozen=True)
class NodeInfo:
    """What the preflight needs to know about one Node."""

    name: str
    labels: dict[str, str]
    allocatable: dict[str, str]
    """As in ``node.status.allocatable`` (quantity strings)."""
    requested: dict[str, int]
    """Extended-resource units already requested by non-terminated pods bound to the node."""
    taints: tuple[dict[str, str], ...] = ()
    ready: bool = True
    unschedulable: bool = False


@dataclass(frozen=True)
class Shape:
    """One replica's GPU needs and placement constraints."""

    resource: str
    """Extended resource, e.g. ``nvidia.com/gpu`` or ``nvidia.com/mig-3g.40gb``."""
    count: int
    """Units per replica, all on one node."""
    products: tuple[str, ...]
    """Acceptable ``nvidia.com/gpu.product`` values; empty accepts any (ignored for MIG resources)."""
    min_memory_gib: int | None
    """Minimum per-GPU memory, matched against ``nvidia.com/gpu.memory`` with a 10% allowance."""
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, Any], ...]
    """From the spec (camelCase core/v1 shape); the ``nvidia.com/gpu`` taint is always tolerated."""
    ephemeral_storage: int | None = None
    """Bytes of node-local disk one replica requests (``ephemeral-storage``); ``None``: not judged."""
    ephemeral_storage_basis: str = ""
    """How that size was reached, in words (``desired.ephemeral_storage``), for the message."""


@dataclass(frozen=True)
class Preflight:
    """The answer: can ``replicas`` replicas of a shape run now, and if not, why."""

    ok: bool
    """Enough room for ``replicas`` replicas now (never true for a shape no node can hold)."""
    fits_at_all: bool
    """Some node could hold one replica if it were empty."""
    placeable: int
    """How many replicas fit in current free capacity (greedy, first-fit over nodes); may exceed ``replicas``."""
    reason: str
    """``""`` when ok; else ``InsufficientGPU`` or ``GPUShapeUnsatisfiable``."""
    message: str
    """Plain words: what is needed, what the cluster has, and where."""


def is_mig(resource: str) -> bool:
    """Whether ``resource`` is a MIG slice (``nvidia.com/mig-*``). Pure."""
    return resource.startswith(MIG_PREFIX)


def memory_floor_mib(min_memory_gib: int) -> int:
    """The smallest ``nvidia.com/gpu.memory`` label (MiB) that satisfies ``minMemoryGiB``. Pure.

    GPUs report a little less than their marketing size (an 80 GB H100 reports 81559 MiB, a 24 GB
    L4 reports 23034 MiB), so 10% is allowed: the floor is ``ceil(GiB * 1024 * 0.9)``. The
    Deployment's node affinity uses the same floor (``Gt floor - 1``); used by ``preflight``.

    >>> memory_floor_mib(80), memory_floor_mib(24)
    (73728, 22119)
    """
    return -(-min_memory_gib * 1024 * 9 // 10)


def shape_of(spec: ModelDeploymentSpec) -> Shape | None:
    """One replica's GPU shape, or ``None`` when the spec requests no GPU. Pure.

    Consumed by the controller, which passes the shape to :func:`preflight`. The disk a replica
    requests is the Deployment's own (``desired.ephemeral_storage``), so the preflight and the
    scheduler judge the same number.
    """
    # desired imports this module (is_mig, memory_floor_mib); importing it here avoids the cycle.
    from slogate.core.desired import ephemeral_storage

    gpu = spec.resources.gpu
    if gpu is None:
        return None
    disk = ephemeral_storage(spec)
    return Shape(
        resource=gpu.resource,
        count=gpu.count,
        products=tuple(gpu.products),
        min_memory_gib=gpu.min_memory_gi_b,
        node_selector=dict(spec.resources.node_selector),
        tolerations=tuple(
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in spec.resources.tolerations
        ),
        ephemeral_storage=disk.bytes,
        ephemeral_storage_basis=disk.breakdown,
    )


# ------------------------------------------------------------------------------------ node info


def _units(value: Any) -> int:
    """An extended-resource quantity as whole units; unparsable counts as 0."""
    try:
        return int(parse_quantity(str(value)))
    except ValueError:
        return 0


def _container_extended(container: Mapping[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    out: dict[str, int] = {}
    for name in {*requests, *limits}:
        if "/" not in name:
            continue  # cpu, memory, ephemeral-storage, hugepages-*: not extended resources
        out[name] = max(_units(requests.get(name, 0)), _units(limits.get(name, 0)))
    return out


def pod_extended_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """Extended-resource units one pod holds, computed as the scheduler does. Pure.

    Per container the larger of request and limit (a limit alone implies the request). Per pod
    ``max(sum(containers) + sum(sidecars), max over init containers)``, where an init container's
    need also includes the restartable (sidecar) init containers started before it. Used by
    :func:`node_info_from`.
    """
    spec = pod.get("spec") or {}
    total: dict[str, int] = {}
    for container in spec.get("containers") or []:
        for name, units in _container_extended(container).items():
            total[name] = total.get(name, 0) + units
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for container in spec.get("initContainers") or []:
        units_of = _container_extended(container)
        if container.get("restartPolicy") == "Always":
            for name, units in units_of.items():
                sidecars[name] = sidecars.get(name, 0) + units
            for name, units in sidecars.items():
                init_peak[name] = max(init_peak.get(name, 0), units)
        else:
            for name in {*units_of, *sidecars}:
                need = units_of.get(name, 0) + sidecars.get(name, 0)
                init_peak[name] = max(init_peak.get(name, 0), need)
    for name in {*total, *sidecars, *init_peak}:
        total[name] = max(total.get(name, 0) + sidecars.get(name, 0), init_peak.get(name, 0))
    return {name: units for name, units in total.items() if units}


def _terminated(pod: Mapping[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in (PodPhase.SUCCEEDED, PodPhase.FAILED) or bool(
        (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def node_info_from(node: Mapping[str, Any], pods_on_node: Iterable[Mapping[str, Any]]) -> NodeInfo:
    """Boil a raw Node and the raw Pods bound to it down to a :class:`NodeInfo`. Pure.

    Succeeded and Failed pods and pods being deleted hold nothing; the rest hold what
    :func:`pod_extended_requests` says. A node is ready only with condition ``Ready=True``.
    Consumed by the controller, which passes the result to :func:`preflight`.
    """
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    requested: dict[str, int] = {}
    for pod in pods_on_node:
        if _terminated(pod):
            continue
        for name, units in pod_extended_requests(pod).items():
            requested[name] = requested.get(name, 0) + units
    ready = any(
        c.get("type") == NODE_READY and c.get("status") == ConditionStatus.TRUE
        for c in status.get("conditions") or []
    )
    return NodeInfo(
        name=metadata.get("name", ""),
        labels=dict(metadata.get("labels") or {}),
        allocatable={k: str(v) for k, v in (status.get("allocatable") or {}).items()},
        requested=requested,
        taints=tuple(dict(t) for t in spec.get("taints") or []),
        ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
    )


# ------------------------------------------------------------------------------------ eligibility


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether one toleration tolerates one taint, with core/v1 semantics. Pure.

    An empty effect matches every effect; an empty key (with ``Exists``) matches every key;
    ``Exists`` ignores the value, ``Equal`` (the default) compares it.
    """
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def _taint_text(taint: Mapping[str, Any]) -> str:
    value = taint.get("value")
    key = f"{taint.get('key', '')}={value}" if value else str(taint.get("key", ""))
    return f"{key}:{taint.get('effect', '')}"


def capacity(node: NodeInfo, resource: str) -> int:
    """Allocatable units of ``resource`` on ``node`` (0 when absent). Pure."""
    return _units(node.allocatable.get(resource, 0))


def ephemeral_allocatable(node: NodeInfo) -> int | None:
    """Bytes of ``ephemeral-storage`` the node offers pods, or ``None`` when it reports none. Pure."""
    value = node.allocatable.get(EPHEMERAL_STORAGE)
    if value is None:
        return None
    try:
        return int(parse_quantity(value))
    except ValueError:
        return None


def _gib(n: int) -> str:
    """Bytes as GiB with one decimal at most: ``30064771072`` → ``28Gi``."""
    value = round(n / 2**30, 1)
    return f"{value:g}Gi"


def free(node: NodeInfo, resource: str) -> int:
    """Allocatable minus requested units of ``resource``, never below 0. Pure."""
    return max(0, capacity(node, resource) - node.requested.get(resource, 0))


def rejection(shape: Shape, node: NodeInfo) -> str | None:
    """Why ``node`` can never run a replica of ``shape``, in a few words; ``None`` when it can. Pure.

    Checks in order: the node offers the resource, is Ready, is not cordoned, has an accepted
    product (not for MIG), has enough memory per GPU, matches the node selector, every
    NoSchedule/NoExecute taint is tolerated, and its allocatable ``ephemeral-storage`` holds the
    replica's request (a node that reports none is not judged on it; what other pods request of
    it is not counted, as disk is rarely what runs out first). Capacity is judged by
    :func:`preflight`.
    """
    if capacity(node, shape.resource) <= 0:
        return f"no {shape.resource}"
    if not node.ready:
        return "not Ready"
    if node.unschedulable:
        return "cordoned"
    if shape.products and not is_mig(shape.resource):
        product = node.labels.get(LABEL_PRODUCT)
        if product not in shape.products:
            return f"product {product} not wanted" if product else f"no {LABEL_PRODUCT} label"
    if shape.min_memory_gib is not None:
        floor = memory_floor_mib(shape.min_memory_gib)
        label = node.labels.get(LABEL_MEMORY)
        if label is None:
            return f"no {LABEL_MEMORY} label"
        if not label.isdigit():
            return f"{LABEL_MEMORY} {label!r} is not a number"
        if int(label) < floor:
            return f"{LABEL_MEMORY} {label} MiB is below the {floor} MiB floor for {shape.min_memory_gib} GiB"
    for key, value in shape.node_selector.items():
        if node.labels.get(key) != value:
            return f"does not match nodeSelector {key}={value}"
    tolerations = (*shape.tolerations, _IMPLICIT_TOLERATION)
    for taint in node.taints:
        if taint.get("effect") not in _SCHEDULING_EFFECTS:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return f"taint {_taint_text(taint)} not tolerated"
    disk = ephemeral_allocatable(node)
    if shape.ephemeral_storage is not None and disk is not None and disk < shape.ephemeral_storage:
        return f"{EPHEMERAL_STORAGE} {_gib(disk)} allocatable, below the {_gib(shape.ephemeral_storage)} a replica requests"
    return None


# ------------------------------------------------------------------------------------ the verdict


def _describe(shape: Shape) -> str:
    """``4 nvidia.com/gpu of product NVIDIA-H100-80GB-HBM3`` and the like."""
    text = f"{shape.count} {shape.resource}"
    if shape.products and not is_mig(shape.resource):
        text += f" of product {' or '.join(shape.products)}"
    if shape.min_memory_gib is not None:
        text += f" with at least {shape.min_memory_gib} GiB each"
    return text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _unsatisfiable(message: str) -> Preflight:
    return Preflight(
        ok=False, fits_at_all=False, placeable=0, reason=Reason.GPU_SHAPE_UNSATISFIABLE, message=message
    )


def _too_little_disk(shape: Shape, nodes: list[NodeInfo]) -> str | None:
    """The message when nodes could hold a replica's GPUs but none its ephemeral-storage request."""
    if shape.ephemeral_storage is None:
        return None
    gpus_only = replace(shape, ephemeral_storage=None)
    fit = [n for n in nodes if rejection(gpus_only, n) is None and capacity(n, shape.resource) >= shape.count]
    if not fit or any(rejection(shape, n) is None for n in fit):
        return None
    largest = max(fit, key=lambda n: ephemeral_allocatable(n) or 0)
    others = f" of {_plural(len(fit), 'node')} with the GPUs" if len(fit) > 1 else ""
    return (
        f"no node can ever hold one replica: it requests {_gib(shape.ephemeral_storage)} of "
        f"{EPHEMERAL_STORAGE} ({shape.ephemeral_storage_basis}), and the largest allocatable{others} is "
        f"{_gib(ephemeral_allocatable(largest) or 0)} ({largest.name}); set resources.ephemeralStorage, "
        "or serve the weights from a pvc:// or oci:// source"
    )


def _why_never(shape: Shape, nodes: list[NodeInfo], eligible: list[NodeInfo]) -> str:
    """The message for a shape no node can hold, from the most basic cause to the most specific;
    a disk too small on every node that has the GPUs is said first, since it is then the cause."""
    disk = _too_little_disk(shape, nodes)
    if disk is not None:
        return disk
    offering = [n for n in nodes if capacity(n, shape.resource) > 0]
    if not offering:
        return f"no node offers {shape.resource}"
    up = [n for n in offering if n.ready and not n.unschedulable]
    if not up:
        states = "; ".join(f"{n.name}: {rejection(shape, n)}" for n in offering)
        return f"no Ready node offers {shape.resource} ({states})"
    if shape.products and not is_mig(shape.resource):
        present = sorted({n.labels[LABEL_PRODUCT] for n in up if LABEL_PRODUCT in n.labels})
        if not set(present) & set(shape.products):
            wanted = (
                f"product {shape.products[0]}"
                if len(shape.products) == 1
                else f"any of products {', '.join(shape.products)}"
            )
            offered = ", ".join(present) if present else "none"
            return f"no Ready node offers {wanted} (nodes offer: {offered})"
    if not eligible:
        reasons = "; ".join(f"{n.name}: {rejection(shape, n)}" for n in offering)
        return f"no node can ever hold one replica: every node with {shape.resource} is ruled out ({reasons})"
    largest = max(eligible, key=lambda n: capacity(n, shape.resource))
    within = " (tensor parallel runs within a node)" if shape.count > 1 else ""
    return (
        f"no node can ever hold one replica: it needs {_describe(shape)} on one node{within}; "
        f"the largest such node has {capacity(largest, shape.resource)} ({largest.name})"
    )


def preflight(shape: Shape, nodes: list[NodeInfo], *, replicas: int) -> Preflight:
    """Can ``replicas`` replicas of ``shape`` run on ``nodes`` now, and if not, why. Pure.

    A node is eligible when :func:`rejection` finds nothing. The shape *fits at all* when some
    eligible node's allocatable is at least ``shape.count``. Replicas are then placed greedily,
    first-fit over ``nodes`` in the order given; with one shape that is ``sum(free // count)``.
    A shape no node can hold is ``GPUShapeUnsatisfiable`` even at zero replicas (so scale-to-zero
    does not hide it); too little free capacity is ``InsufficientGPU``. Consumed by the controller,
    which turns the result into the ``InsufficientGPU`` condition and an Event.
    """
    if replicas < 0:
        raise ValueError(f"replicas must not be negative, got {replicas}")
    eligible = [n for n in nodes if rejection(shape, n) is None]
    if not any(capacity(n, shape.resource) >= shape.count for n in eligible):
        return _unsatisfiable(_why_never(shape, nodes, eligible))

    frees = [(n.name, free(n, shape.resource)) for n in eligible]
    placeable = sum(f // shape.count for _, f in frees)
    total = sum(f for _, f in frees)
    breakdown = ", ".join(f"{name}: {f}" for name, f in frees)
    if placeable >= replicas:
        verb = "fits" if replicas == 1 else "fit"
        message = (
            f"{_plural(replicas, 'replica')} {verb} (room for {placeable}): "
            f"{total} free {shape.resource} on eligible nodes ({breakdown})"
        )
        return Preflight(ok=True, fits_at_all=True, placeable=placeable, reason="", message=message)
    if placeable == 0:
        name, most = max(frees, key=lambda item: item[1])
        if most == 0:
            full = ", ".join(name for name, _ in frees)
            where = f"every eligible node is fully used ({full})"
        else:
            where = f"the largest free is {most} on node {name}"
        message = f"no node offers {_describe(shape)} free; {where}"
    else:
        message = (
            f"only {placeable} of {replicas} replicas fit: "
            f"{total} free {shape.resource} on eligible nodes ({breakdown})"
        )
    return Preflight(
        ok=False, fits_at_all=True, placeable=placeable, reason=Reason.INSUFFICIENT_GPU, message=message
    )


# ------------------------------------------------------------------------------------ pod symptoms


def unschedulable_message(pods: Iterable[Mapping[str, Any]]) -> str | None:
    """The scheduler's own words for the first pending pod it cannot place, or ``None``. Pure.

    Reads the ``PodScheduled=False`` condition with reason ``Unschedulable`` and returns
    ``"POD: MESSAGE"``. Pods being deleted are skipped. Consumed by the controller for the
    ``PodsUnschedulable`` reason, next to the preflight's own explanation.
    """
    for pod in pods:
        metadata = pod.get("metadata") or {}
        status = pod.get("status") or {}
        if metadata.get("deletionTimestamp") or status.get("phase", PodPhase.PENDING) != PodPhase.PENDING:
            continue
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == ConditionStatus.FALSE
                and cond.get("reason") == "Unschedulable"
            ):
                return f"{metadata.get('name', '')}: {cond.get('message') or 'Unschedulable'}"
    return None


def crashloop_message(pods: Iterable[Mapping[str, Any]]) -> str | None:
    """The first container stuck failing to start or crash-looping, in plain words, or ``None``. Pure.

    Looks for a container waiting in CrashLoopBackOff, ImagePullBackOff, ErrImagePull or
    CreateContainerConfigError (init containers first, as they block the pod), e.g.
    ``"pod llama-1 container engine: CrashLoopBackOff, 4 restarts, last exit OOMKilled (code 137):
    back-off 1m20s ..."``. Pods being deleted are skipped. Consumed by the controller for the
    ``EngineCrashLooping`` reason.
    """
    for pod in pods:
        metadata = pod.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason not in _WAITING_FAILURES:
                continue
            text = (
                f"pod {metadata.get('name', '')} container {cs.get('name', '')}: {reason}, "
                f"{_plural(int(cs.get('restartCount') or 0), 'restart')}"
            )
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if last:
                text += f", last exit {last.get('reason') or 'unknown'} (code {last.get('exitCode', '?')})"
            if waiting.get("message"):
                text += f": {waiting['message']}"
            return text
    return None
