"""slogate.sim: a model-server simulator imitating vLLM, TGI or SGLang for tests, demos and fault injection.

Exports ``SimConfig`` (the run-time knobs), ``Simulator`` (one fake engine on one port, with the
engine's real Prometheus metric names and a synthetic-traffic generator), ``Outcome`` (how one
request ends) and the loopback load generator ``run_load`` (imported lazily, so
``python -m slogate.sim.loadgen`` runs cleanly). Modules: ``config`` (knobs) → ``sampling``
(distributions, outcomes) → ``engines`` (what clients see, per engine) and ``metrics`` (what
Prometheus sees, per engine) → ``server`` (HTTP). See docs/simulator.md.
"""

from __future__ import annotations

from typing import Any

from slogate.sim.config import ConfigError, SimConfig, apply_update
from slogate.sim.sampling import Outcome
from slogate.sim.server import Simulator, main

__all__ = [
    "ConfigError",
    "LoadReport",
    "Outcome",
    "SimConfig",
    "Simulator",
    "apply_update",
    "main",
    "run_load",
]


def __getattr__(name: str) -> Any:
    if name in ("LoadReport", "run_load"):
        from slogate.sim import loadgen

        return getattr(loadgen, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
