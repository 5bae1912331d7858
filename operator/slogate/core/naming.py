"""Names, labels and the revision hash of a ModelDeployment's children. Pure.

A *revision* is a short hash of the pod-relevant spec — model, engine, resources — with defaults
applied, so writing a default explicitly does not change it, and changing autoscaling, SLOs,
rollout or fallback never creates a new revision (those change how pods are managed, not what a
pod is). Child names are ``NAME-REVISION`` for Deployments and ``NAME``, ``NAME-stable``,
``NAME-canary`` for Services; metadata.name is limited to 53 characters so these fit in 63.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from slogate import constants as C
from slogate.api.v1alpha1 import ModelDeploymentSpec

Track = Literal["stable", "canary"]
REVISION_LENGTH = 8


def revision_of(spec: ModelDeploymentSpec) -> str:
    """The revision hash of a spec. Pure; consumed by ``desired`` and the controller.

    Only ``model``, ``engine``, ``resources`` (defaults applied) and, when set, ``adapters`` go
    into the hash.
    """
    pod_relevant = {
        "model": spec.model.model_dump(mode="json", by_alias=True),
        "engine": spec.engine.model_dump(mode="json", by_alias=True),
        "resources": spec.resources.model_dump(mode="json", by_alias=True),
    }
    if spec.adapters:  # only when set: every revision hashed before adapters existed stays the same
        pod_relevant["adapters"] = [a.model_dump(mode="json", by_alias=True) for a in spec.adapters]
    canonical = json.dumps(pod_relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:REVISION_LENGTH]


def deployment_name(name: str, revision: str) -> str:
    """``NAME-REVISION``."""
    return f"{name}-{revision}"


def root_service_name(name: str) -> str:
    """The stable endpoint users call: ``NAME``."""
    return name


def track_service_name(name: str, track: Track) -> str:
    """``NAME-stable`` or ``NAME-canary``."""
    return f"{name}-{track}"


def selector_labels(name: str) -> dict[str, str]:
    """Labels every pod of a ModelDeployment carries (the root Service selects on these)."""
    return {C.LABEL_DEPLOYMENT: name}


def pod_labels(name: str, revision: str, track: Track) -> dict[str, str]:
    """Labels of one track's pods."""
    return {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: revision, C.LABEL_TRACK: track}


def common_labels(name: str) -> dict[str, str]:
    """Labels on every child object."""
    return {
        C.LABEL_DEPLOYMENT: name,
        C.LABEL_MANAGED_BY: "slogate",
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "model-server",
    }


@dataclass(frozen=True)
class Owner:
    """The owner reference every child carries."""

    name: str
    uid: str
    api_version: str = C.API_VERSION
    kind: str = C.KIND

    def reference(self) -> dict[str, object]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class Capabilities:
    """Optional APIs found by discovery at run time."""

    keda: bool = False
    """keda.sh/v1alpha1 ScaledObject is served."""
    prometheus_operator: bool = False
    """monitoring.coreos.com/v1 PodMonitor is served."""
    prometheus_rules: bool = False
    """monitoring.coreos.com/v1 PrometheusRule is served (its CRD is installed separately from PodMonitor's)."""
    gateway_api: bool = False
    """gateway.networking.k8s.io/v1 HTTPRoute is served."""
    inference_pool: bool = False
    """inference.networking.k8s.io/v1 InferencePool is served (the Gateway API Inference Extension)."""
