"""slogate.sim: a model-server simulator that imitates vLLM or TGI for tests, demos and fault injection.

Exports ``SimConfig`` (the run-time knobs), ``Simulator`` (one fake engine on one port, with the
engine's real Prometheus metric names and a synthetic-traffic generator) and the loopback load
generator ``run_load`` (imported lazily, so ``python -m slogate.sim.loadgen`` runs cleanly).
See docs/simulator.md for the metric names per mode and the admin API.
"""

from __future__ import annotations

from typing import Any

from slogate.sim.config import ConfigError, SimConfig, apply_update
from slogate.sim.server import Simulator, main

__all__ = ["ConfigError", "LoadReport", "SimConfig", "Simulator", "apply_update", "main", "run_load"]


def __getattr__(name: str) -> Any:
    if name in ("LoadReport", "run_load"):
        from slogate.sim import loadgen

        return getattr(loadgen, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
