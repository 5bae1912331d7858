"""Run-time configuration of one model-server simulator.

Owns ``SimConfig`` (the knobs a test or an operator turns: latency, faults, synthetic load, ...)
and ``apply_update``, the single validation path shared by ``Simulator.update`` and the
``POST /admin/config`` endpoint. Everything here is pure: no I/O, no clock, no globals. What each
fault looks like on the wire and in the metrics of each engine is decided in ``slogate.sim.engines``
and ``slogate.sim.metrics``; this module only holds and validates the numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODES: tuple[str, ...] = ("vllm", "tgi", "sglang")
ERROR_STAGES: tuple[str, ...] = ("midstream", "prestream")
# The three fault knobs split one uniform draw per request, so their sum is a probability.
FAULT_RATES: tuple[str, ...] = ("error_rate", "overload_rate", "client_drop_rate")
# The quality faults split a second draw, over the answers that are produced (slogate.sim.answers).
QUALITY_FAULTS: tuple[str, ...] = ("broken_json_rate", "refusal_rate", "wrong_choice_rate", "truncation_rate")

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
    """``vllm`` (0.33.0), ``tgi`` (3.3.7) or ``sglang`` (0.5.23): which engine to imitate."""
    model: str = "sim-model"
    """Served model name (vLLM's and SGLang's ``model_name`` label, TGI's ``model_id``)."""
    aliases: list[str] = field(default_factory=list)
    """Extra served names (vLLM ``--served-model-name A B``); TGI and SGLang (whose
    ``--served-model-name`` takes one value) have none and ignore them."""
    model_path: str | None = None
    """What vLLM reports as ``root`` in ``/v1/models`` and SGLang as ``model_path`` in
    ``/model_info`` (the ``--model``/``--model-path``); ``None`` = ``model``."""
    ttft_ms: float = 150.0
    """Mean time to first token, milliseconds."""
    itl_ms: float = 25.0
    """Mean inter-token latency, milliseconds."""
    jitter: float = 0.2
    """Coefficient of variation of every latency and token-count draw; 0 = exact."""
    error_rate: float = 0.0
    """Fraction of requests that fail with an engine-side server fault (see ``error_stage``)."""
    error_stage: str = "midstream"
    """Where an ``error_rate`` fault happens. ``midstream``: inside the engine after some tokens (a
    streamed request already has HTTP 200 and gets the engine's SSE error event; a non-streamed one
    gets vLLM's or SGLang's 500 or TGI's 424). ``prestream``: before any token (vLLM and SGLang: a
    JSON 500 from the API server, nothing in the engine's series; TGI: a failed prefill batch,
    ``err="generation"``)."""
    overload_rate: float = 0.0
    """Fraction of requests shed for load (TGI: 429 ``err="overloaded"``; vLLM: 503
    ``QueueOverflowError``, ``vllm:admission_rejections_total``; SGLang: a full waiting queue, 503
    or a 503 error event in a 200 stream, counted only by the HTTP status)."""
    client_drop_rate: float = 0.0
    """Fraction of requests the client abandons after some tokens (TGI ``err="dropped"``; vLLM
    counts only the tokens already produced; SGLang ``sglang:num_aborted_requests_total``). Not a
    server fault."""
    rps: float = 0.0
    """Synthetic background requests per second (chat completions, see ``Simulator``)."""
    streamed_share: float = 1.0
    """Fraction of the synthetic requests sent with ``"stream": true`` (the rest are non-streamed:
    a failure is then an HTTP error status on every engine, not an error event in a 200 stream)."""
    prompt_tokens: int = 512
    """Mean prompt length of synthetic requests, tokens."""
    generation_tokens: int = 128
    """Mean generated length of synthetic requests, tokens."""
    kv_cache_usage: float = 0.1
    """Value of the KV-cache gauge, 0..1: vLLM's ``vllm:kv_cache_usage_perc``, SGLang's
    ``sglang:token_usage`` (TGI has none)."""
    healthy: bool = True
    """``/health`` (and SGLang's ``/ready``) answers 503 while false; generation is not affected."""
    seed: int | None = None
    """Seed of the simulator's random generator, for reproducible runs."""
    broken_json_rate: float = 0.0
    """Quality fault (docs/quality.md): the share of JSON answers (a ``response_format`` asked for
    JSON) cut in the middle, so they no longer parse."""
    refusal_rate: float = 0.0
    """Quality fault: the share of answers replaced by a refusal ("I'm sorry, but I can't help with
    that.")."""
    wrong_choice_rate: float = 0.0
    """Quality fault: the share of "one of: a, b, c" answers that name another option than the first."""
    truncation_rate: float = 0.0
    """Quality fault: the share of answers cut to their first half (``finish_reason: length``)."""

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


_FLOAT_FIELDS = (
    "ttft_ms", "itl_ms", "jitter", "error_rate", "overload_rate", "client_drop_rate", "rps",
    "streamed_share", "kv_cache_usage", *QUALITY_FAULTS,
)  # fmt: skip
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
    if cfg.model_path is not None and (not isinstance(cfg.model_path, str) or not cfg.model_path.strip()):
        raise ConfigError("model_path must be a non-empty string or null")
    for name in FAULT_RATES:
        _check_number(name, getattr(cfg, name), lo=0.0, hi=1.0)
    total = sum(getattr(cfg, name) for name in FAULT_RATES)
    if total > 1.0 + 1e-9:
        raise ConfigError(f"error_rate + overload_rate + client_drop_rate must be at most 1, got {total:g}")
    for name in QUALITY_FAULTS:
        _check_number(name, getattr(cfg, name), lo=0.0, hi=1.0)
    quality = sum(getattr(cfg, name) for name in QUALITY_FAULTS)
    if quality > 1.0 + 1e-9:
        raise ConfigError(
            f"the quality fault rates ({', '.join(QUALITY_FAULTS)}) must sum to at most 1, got {quality:g}"
        )
    if cfg.error_stage not in ERROR_STAGES:
        raise ConfigError(f"error_stage must be one of {', '.join(ERROR_STAGES)}, got {cfg.error_stage!r}")
    _check_number("rps", cfg.rps, lo=0.0, hi=MAX_RPS)
    _check_number("streamed_share", cfg.streamed_share, lo=0.0, hi=1.0)
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
