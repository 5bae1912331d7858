"""CRDs the operator works with, taken from their own projects' Go modules (never hand-written).

Gateway API (standard channel: HTTPRoute, Gateway, GatewayClass, ReferenceGrant), the Gateway API
Inference Extension's InferencePool, KEDA's
ScaledObject and TriggerAuthentication, prometheus-operator's PodMonitor, ServiceMonitor and
PrometheusRule. Their YAML ships inside each module's zip on the Go module proxy.
"""

from __future__ import annotations

import yaml

from slogate.dev.versions import REPO, go_module_dir, versions

OPTIONAL = {
    "GATEWAY_API_VERSION": (
        "sigs.k8s.io/gateway-api",
        [
            "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
            "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
            "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
            "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
        ],
    ),
    "GIE_VERSION": (
        "sigs.k8s.io/gateway-api-inference-extension",
        ["config/crd/bases/inference.networking.k8s.io_inferencepools.yaml"],
    ),
    "KEDA_VERSION": (
        "github.com/kedacore/keda/v2",
        [
            "config/crd/bases/keda.sh_scaledobjects.yaml",
            "config/crd/bases/keda.sh_triggerauthentications.yaml",
        ],
    ),
    "PROMETHEUS_OPERATOR_VERSION": (
        "github.com/prometheus-operator/prometheus-operator",
        [
            "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ],
    ),
}


def our_crds() -> list[dict]:
    """slogate's own CRDs, from crds/."""
    return [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]


def optional_crds() -> list[dict]:
    """The third-party CRDs, read from the Go module cache."""
    pins = versions()
    docs: list[dict] = []
    for key, (module, files) in OPTIONAL.items():
        root = go_module_dir(module, pins[key])
        for rel in files:
            for doc in yaml.safe_load_all((root / rel).read_text()):
                if doc:
                    docs.append(doc)
    return docs


KWOK_STAGES = [
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
]


def kwok_config() -> str:
    """kwok's own 'fast' node and pod stages (from its Go module), as one multi-document config."""
    root = go_module_dir("sigs.k8s.io/kwok", versions()["KWOK_VERSION"]) / "kustomize" / "stage"
    return "\n---\n".join((root / rel).read_text() for rel in KWOK_STAGES)
