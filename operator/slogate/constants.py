"""Names shared by every layer: API group, labels, annotations, field manager.

Kept in one module so that a label or annotation key is spelled once; nothing here
imports anything beyond the standard library.
"""

from __future__ import annotations

GROUP = "slogate.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["mdep"]
CATEGORIES = ["slogate"]
CRD_NAME = f"{PLURAL}.{GROUP}"

FIELD_MANAGER = "slogate"
"""The one server-side-apply field manager the operator writes with."""

LABEL_DEPLOYMENT = f"{GROUP}/deployment"
LABEL_REVISION = f"{GROUP}/revision"
LABEL_TRACK = f"{GROUP}/track"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_LLM_D_MODEL = "llm-d.ai/model"
"""llm-d's model label: its endpoint picker and OpenCost's inference-cost module
(``INFERENCE_MODEL_LABEL``) group pods by it."""
LABEL_LLM_D_SERVING = "llm-d.ai/inference-serving"
"""llm-d's marker of inference pods (OpenCost's ``INFERENCE_SHARED_INFRA_LABEL``)."""

ANNOTATION_PREFIX = f"{GROUP}"
"""kopf progress and diff-base storage live under this prefix (see controller settings)."""

GPU_LABEL_PRODUCT = "nvidia.com/gpu.product"
GPU_LABEL_MEMORY = "nvidia.com/gpu.memory"
GPU_LABEL_COUNT = "nvidia.com/gpu.count"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
"""MIG profiles are extended resources named ``nvidia.com/mig-<profile>`` (the device plugin's mixed strategy)."""
