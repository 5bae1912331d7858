"""Where a quality run reaches a revision's pods: the seam between a cluster and the local one.

In a cluster the operator calls the track Service (``NAME-canary`` or ``NAME-stable``, which select
exactly one revision's pods) by its cluster DNS name on the Service port. The local cluster's pods
have no network of their own: the pod bridge (``slogate.dev.bridge``) runs one simulator per pod
on a local port and lists them in ``DIR/sims.json``; ``BridgeEndpoints`` picks a pod of the
revision there. Consumed by ``controller.reconcile`` through ``resolver_of``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

SERVICE_PORT = 80
"""The port every Service the operator builds listens on (``core.desired._service``)."""


class Endpoints(Protocol):
    """Resolves the base URL of a Service of the ModelDeployment (``None``: nothing answers)."""

    def url(self, namespace: str, service: str, selector: Mapping[str, str]) -> str | None: ...


class ServiceDNS:
    """``http://SERVICE.NAMESPACE.svc:80``: kube-proxy spreads the requests over its Ready pods."""

    def url(self, namespace: str, service: str, selector: Mapping[str, str]) -> str | None:
        return f"http://{service}.{namespace}.svc:{SERVICE_PORT}"


class BridgeEndpoints:
    """The local simulator of one pod the Service's ``selector`` matches in ``namespace``, from the
    bridge's registry (``DIR/sims.json``: ``{"ns/pod": {"namespace", "pod", "port", "labels"}}``);
    the first by pod name, so a run asks one pod, as a Service with one Ready pod would."""

    def __init__(self, directory: Path) -> None:
        self.registry = Path(directory) / "sims.json"

    def url(self, namespace: str, service: str, selector: Mapping[str, str]) -> str | None:
        try:
            sims = json.loads(self.registry.read_text())
        except (OSError, ValueError):
            return None
        for _, sim in sorted(sims.items()):
            labels = sim.get("labels") or {}
            if sim.get("namespace") == namespace and all(labels.get(k) == v for k, v in selector.items()):
                return f"http://127.0.0.1:{sim['port']}"
        return None


def resolver_of(setting: str) -> Endpoints:
    """The resolver ``OperatorConfig.quality_endpoints`` names: ``dns`` or ``bridge:DIR``."""
    if setting == "dns":
        return ServiceDNS()
    if setting.startswith("bridge:") and setting[len("bridge:") :]:
        return BridgeEndpoints(Path(setting[len("bridge:") :]))
    raise ValueError(f"quality endpoints must be dns or bridge:DIR, got {setting!r}")
