"""The ModelDeployment API: pydantic models (the single source of truth), the CRD generated
from them, and offline validation that evaluates the CRD's own CEL rules."""

from slogate.api.v1alpha1 import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus

__all__ = ["ModelDeployment", "ModelDeploymentSpec", "ModelDeploymentStatus"]
