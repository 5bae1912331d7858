"""Operator configuration: flags override environment variables override defaults.

Every setting has a docstring; ``slogate run --help`` and the Helm chart's values use the same names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

from slogate.core.cost import BUILTIN_PRICES, PriceTable, PriceTableError, parse_price_table


class OperatorConfig(BaseModel):
    """How ``slogate run`` behaves."""

    model_config = ConfigDict(use_attribute_docstrings=True, frozen=True)

    namespaces: list[str] = []
    """Namespaces to watch; empty means cluster-wide."""
    prometheus_url: str = "http://prometheus-operated.monitoring:9090"
    """Prometheus the operator queries and that KEDA triggers point at (``SLOGATE_PROMETHEUS_URL``)."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    """Port of the operator's own /metrics (0 disables)."""
    health_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    """Port of the liveness/readiness endpoint /healthz (0 disables)."""
    bind_address: str = "0.0.0.0"
    """Address the metrics and health endpoints bind to."""
    resync_seconds: Annotated[float, Field(gt=0)] = 30.0
    """Every ModelDeployment is reconciled at least this often (level-triggered safety net)."""
    workers: Annotated[int, Field(ge=1, le=64)] = 4
    """Concurrent reconciles (different objects; one object is never reconciled twice at once)."""
    log_format: str = "text"
    """``text`` or ``json``."""
    log_level: str = "INFO"
    """Python log level."""
    leader_election: bool = False
    """Run as one of several replicas: only the holder of a coordination.k8s.io Lease reconciles."""
    lease_namespace: str = "default"
    """Namespace of the Lease (the operator's own namespace in a cluster: ``POD_NAMESPACE``)."""
    lease_name: str = "slogate-operator"
    """Name of the Lease."""
    identity: str = ""
    """This replica's identity in the Lease (``POD_NAME``; default hostname-pid)."""
    operator_namespace: str = ""
    """The operator's own namespace (``POD_NAMESPACE``, which the chart sets): a ModelDeployment's
    NetworkPolicy admits it when ``spec.quality`` needs the operator to ask the engine pods."""
    quality_endpoints: str = "dns"
    """How quality gates and probes reach a revision's pods (``SLOGATE_QUALITY_ENDPOINTS``): ``dns``
    (the track Service's cluster DNS name, in a cluster), or ``bridge:DIR`` (the local cluster's pod
    bridge, whose ``DIR/sims.json`` maps pods to local ports; docs/local-cluster.md)."""
    prices_file: str = ""
    """GPU price table (``SLOGATE_PRICES_FILE``; the chart mounts one); empty: the built-in table
    (docs/cost.md)."""

    @classmethod
    def from_env(cls, **overrides: object) -> OperatorConfig:
        """Read ``SLOGATE_*`` environment variables, then apply non-None overrides."""
        env = os.environ
        values: dict[str, object] = {}
        if env.get("SLOGATE_NAMESPACES"):
            values["namespaces"] = [n.strip() for n in env["SLOGATE_NAMESPACES"].split(",") if n.strip()]
        for key in ("prometheus_url", "bind_address", "log_format", "log_level"):
            if env.get(f"SLOGATE_{key.upper()}"):
                values[key] = env[f"SLOGATE_{key.upper()}"]
        if env.get("PROMETHEUS_URL") and "prometheus_url" not in values:
            values["prometheus_url"] = env["PROMETHEUS_URL"]
        for key in ("metrics_port", "health_port", "workers"):
            if env.get(f"SLOGATE_{key.upper()}"):
                values[key] = int(env[f"SLOGATE_{key.upper()}"])
        if env.get("SLOGATE_LEADER_ELECTION", "").lower() in ("1", "true", "yes"):
            values["leader_election"] = True
        if env.get("SLOGATE_LEASE_NAMESPACE") or env.get("POD_NAMESPACE"):
            values["lease_namespace"] = env.get("SLOGATE_LEASE_NAMESPACE") or env["POD_NAMESPACE"]
        if env.get("POD_NAMESPACE"):
            values["operator_namespace"] = env["POD_NAMESPACE"]
        if env.get("POD_NAME"):
            values["identity"] = env["POD_NAME"]
        if env.get("SLOGATE_PRICES_FILE"):
            values["prices_file"] = env["SLOGATE_PRICES_FILE"]
        if env.get("SLOGATE_QUALITY_ENDPOINTS"):
            values["quality_endpoints"] = env["SLOGATE_QUALITY_ENDPOINTS"]
        if env.get("SLOGATE_RESYNC_SECONDS"):
            values["resync_seconds"] = float(env["SLOGATE_RESYNC_SECONDS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def read_price_table(path: str | None) -> PriceTable:
    """The price table in ``path`` (YAML, docs/cost.md), or the built-in one when ``path`` is empty.

    Raises ``PriceTableError`` with a one-line message naming the file and the problem: a missing
    or unreadable file, invalid YAML, or an invalid price (``core.cost.parse_price_table``).
    """
    if not path:
        return BUILTIN_PRICES
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceTableError(f"{path}: cannot read the price table: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PriceTableError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        ) from None
    return parse_price_table(doc, source=path)
