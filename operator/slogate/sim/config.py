"""Run-time configuration of one model-server simulator.

Owns ``SimConfig`` (the knobs a test or an operator turns: latency, error rate, synthetic load, ...)
and ``apply_update``, the single validation path shared by ``Simulator.update`` and the
``POST /admin/config`` endpoint. Everything here is pure: no I/O, no clock, no globals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODES: tuple[str, ...] = ("vllm", "tgi")

# Upper bounds keep a mistyped admin call from turning the simulator into a CPU heater.
MAX_RPS = 1000.0
MAX_LATENCY_MS = 600_000.0
MAX_TOKENS = 1_000_000


class ConfigError(ValueError):
    """A configuration change was rejected; the message says which field and why."""


@dataclass(frozen=True)
class SimConfig:
    """Behaviour of a simulated model server. Immutable: changes produce a new instance."""

    mode: str = "vllm"
    model: str = "sim-model"
    aliases: list[str] = field(default_factory=list)
    ttft_ms: float = 150.0
    itl_ms: float = 25.0
    jitter: float = 0.2
    error_rate: float = 0.0
    rps: float = 0.0
    prompt_tokens: int = 512
    generation_tokens: int = 128
    kv_cache_usage: float = 0.1
    healthy: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        # Copy so a caller mutating its list cannot change a frozen config behind our back.
        if isinstance(self.aliases, list | tuple):
            object.__setattr__(self, "aliases", list(self.aliases))
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (what ``GET /admin/config`` returns)."""
        return dataclasses.asdict(self)

    @property
    def served_names(self) -> list[str]:
        """The served model name followed by its aliases, without duplicates."""
        names = [self.model]
        for alias in self.aliases:
            if alias not in names:
                names.append(alias)
        return names


_FLOAT_FIELDS = ("ttft_ms", "itl_ms", "jitter", "error_rate", "rps", "kv_cache_usage")
_INT_FIELDS = ("prompt_tokens", "generation_tokens")
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(SimConfig))


def _check_number(name: str, value: Any, *, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__}")
    if value != value or not lo <= value <= hi:  # value != value catches NaN
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")


def _validate(cfg: SimConfig) -> None:
    if cfg.mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {cfg.mode!r}")
    if not isinstance(cfg.model, str) or not cfg.model.strip():
        raise ConfigError("model must be a non-empty string")
    if not isinstance(cfg.aliases, list) or not all(isinstance(a, str) and a for a in cfg.aliases):
        raise ConfigError("aliases must be a list of non-empty strings")
    _check_number("ttft_ms", cfg.ttft_ms, lo=0.0, hi=MAX_LATENCY_MS)
    _check_number("itl_ms", cfg.itl_ms, lo=0.0, hi=MAX_LATENCY_MS)
    _check_number("jitter", cfg.jitter, lo=0.0, hi=5.0)
    _check_number("error_rate", cfg.error_rate, lo=0.0, hi=1.0)
    _check_number("rps", cfg.rps, lo=0.0, hi=MAX_RPS)
    _check_number("kv_cache_usage", cfg.kv_cache_usage, lo=0.0, hi=1.0)
    for name in _INT_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {type(value).__name__}")
        if not 1 <= value <= MAX_TOKENS:
            raise ConfigError(f"{name} must be between 1 and {MAX_TOKENS}, got {value}")
    if not isinstance(cfg.healthy, bool):
        raise ConfigError(f"healthy must be a boolean, got {type(cfg.healthy).__name__}")
    if cfg.seed is not None and (isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int)):
        raise ConfigError("seed must be an integer or null")


def apply_update(cfg: SimConfig, changes: Mapping[str, Any]) -> SimConfig:
    """Return ``cfg`` with ``changes`` applied, or raise ``ConfigError`` naming the bad field.

    Unknown fields are rejected rather than ignored, so a typo in a fault-injection script fails
    loudly. Integral floats are accepted for the integer fields (JSON has one number type).
    """
    if not isinstance(changes, Mapping):
        raise ConfigError("the update must be a JSON object")
    unknown = sorted(set(changes) - set(_FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(_FIELD_NAMES)}")
    normalized: dict[str, Any] = {}
    for name, value in changes.items():
        if name in _INT_FIELDS and isinstance(value, float) and value.is_integer():
            value = int(value)
        normalized[name] = value
    try:
        return dataclasses.replace(cfg, **normalized)
    except TypeError as exc:  # pragma: no cover - guarded by the unknown-field check
        raise ConfigError(str(exc)) from exc
