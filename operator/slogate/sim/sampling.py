"""Latency, token-count and load distributions of the simulator, as pure seedable functions.

Owns how one simulated request looks (``RequestSample``: its ``Outcome``, TTFT, inter-token
latencies, token counts) and how much synthetic traffic is due per tick. Every function takes its
``random.Random`` explicitly, so unit tests pin a seed and assert exact values; nothing here
sleeps, reads the clock or touches metrics. What an outcome means to each engine's metrics and
clients is decided elsewhere (``slogate.sim.metrics``, ``slogate.sim.engines``).
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from slogate.sim.config import SimConfig

# Share of TTFT spent waiting in the scheduler queue; the rest is prefill. No engine lets
# us derive this from a single TTFT knob, so it is a fixed, documented assumption.
QUEUE_FRACTION = 0.25
# Per synthetic request, inter-token latencies are observed as this many weighted groups instead
# of one observation per token: same histogram shape, a fraction of the CPU.
ITL_GROUPS = 4
# Synthetic requests that are not cut by max_tokens end on a stop token this often.
STOP_SHARE = 0.85


class Outcome(enum.StrEnum):
    """How one request ends. The knobs of ``SimConfig`` choose it; the engines disagree on how it
    shows (``slogate.sim.engines`` for the client, ``slogate.sim.metrics`` for Prometheus)."""

    OK = "ok"
    """Finished normally (``stop`` or ``length``)."""
    ENGINE_ERROR = "engine_error"
    """``error_rate`` with ``error_stage="midstream"``: failed inside the engine after some tokens."""
    PRESTREAM_ERROR = "prestream_error"
    """``error_rate`` with ``error_stage="prestream"``: a server fault before any token."""
    OVERLOAD = "overload"
    """``overload_rate``: shed for load before it was queued."""
    CLIENT_DROP = "client_drop"
    """``client_drop_rate``: the client went away after some (possibly zero) tokens."""


def draw_outcome(cfg: SimConfig, rng: random.Random) -> Outcome:
    """One request's outcome from the fault knobs, with a single uniform draw. Pure but for ``rng``.

    The draw ``u`` is split in this order: ``[0, error_rate)`` is a server fault (its stage from
    ``error_stage``), the next ``overload_rate`` is load shedding, the next ``client_drop_rate`` a
    client drop, the rest succeeds. With only ``error_rate`` set this is the draw the simulator
    always made, so seeded runs keep their failure pattern.
    """
    u = rng.random()
    if u < cfg.error_rate:
        return Outcome.ENGINE_ERROR if cfg.error_stage == "midstream" else Outcome.PRESTREAM_ERROR
    u -= cfg.error_rate
    if u < cfg.overload_rate:
        return Outcome.OVERLOAD
    u -= cfg.overload_rate
    if u < cfg.client_drop_rate:
        return Outcome.CLIENT_DROP
    return Outcome.OK


def tokens_before_failure(outcome: Outcome, planned: int, rng: random.Random) -> int:
    """How many tokens a request produced before ``outcome`` ended it (``planned`` when it did not).

    A mid-stream engine fault comes after at least one token ("some tokens, then the error"); a
    client may leave before the first token; shed and pre-stream failures produce none.
    """
    if outcome is Outcome.OK:
        return planned
    if outcome is Outcome.ENGINE_ERROR:
        return rng.randint(1, max(1, planned - 1))
    if outcome is Outcome.CLIENT_DROP:
        return rng.randint(0, max(0, planned - 1))
    return 0


@dataclass(frozen=True)
class RequestSample:
    """Everything the metrics need to know about one engine request, however it ended.

    ``generation_tokens`` counts the tokens actually produced (before the failure, if any), and
    ``itls`` the gaps after each of them; a mid-stream engine fault adds one last gap, from the last
    token to the failing step, as vLLM's ``IterationStats.update_from_output`` records it for the
    token-less error output (vllm/v1/metrics/stats.py:509-561 @ 0.33.0). ``ok`` is kept for callers
    that only know success and failure: ``ok=False`` without an outcome means an engine fault.
    ``stream`` matters only to SGLang, whose metrics tell streamed requests apart.
    """

    ok: bool
    prompt_tokens: int
    generation_tokens: int
    ttft_s: float
    itls: tuple[tuple[float, int], ...]  # (inter-token latency in s, how many tokens had it)
    finish_reason: str = "length"
    outcome: Outcome | None = None
    max_tokens: int | None = None  # the request's max_tokens, None when the client set none
    stream: bool = True
    """Whether the client asked for a stream (SGLang's ``is_streaming`` label, and how often its
    scheduler sends outputs); synthetic traffic is streamed."""

    def __post_init__(self) -> None:
        if self.outcome is None:
            object.__setattr__(self, "outcome", Outcome.OK if self.ok else Outcome.ENGINE_ERROR)
        elif self.ok != (self.outcome is Outcome.OK):
            raise ValueError(f"ok={self.ok} contradicts outcome={self.outcome.value}")

    @property
    def queue_s(self) -> float:
        return self.ttft_s * QUEUE_FRACTION

    @property
    def prefill_s(self) -> float:
        return self.ttft_s - self.queue_s

    @property
    def decode_s(self) -> float:
        return sum(v * w for v, w in self.itls)

    @property
    def inference_s(self) -> float:
        """Time spent running (prefill + decode), i.e. excluding the queue."""
        return self.prefill_s + self.decode_s

    @property
    def e2e_s(self) -> float:
        return self.ttft_s + self.decode_s

    @property
    def mean_itl_s(self) -> float:
        """Decode time over tokens after the first, 0 for one token, as vLLM computes
        ``mean_time_per_output_token`` (vllm/v1/metrics/stats.py:611-616 @ 0.33.0)."""
        n = self.generation_tokens - 1
        return self.decode_s / n if n > 0 else 0.0

    @property
    def reached_engine(self) -> bool:
        """Whether the engine ever held the request (pre-stream faults and shed requests did not)."""
        return self.outcome not in (Outcome.PRESTREAM_ERROR, Outcome.OVERLOAD)


def lognormal_around(mean: float, jitter: float, rng: random.Random) -> float:
    """A lognormal draw whose expectation is ``mean`` and coefficient of variation is ``jitter``.

    ``jitter == 0`` (or ``mean <= 0``) returns ``mean`` exactly, which keeps tests deterministic.
    """
    if mean <= 0.0 or jitter <= 0.0:
        return max(mean, 0.0)
    sigma = math.sqrt(math.log1p(jitter * jitter))
    mu = math.log(mean) - sigma * sigma / 2.0
    return rng.lognormvariate(mu, sigma)


def sample_count(mean: float, jitter: float, rng: random.Random) -> int:
    """A positive integer count (tokens) drawn around ``mean``."""
    return max(1, round(lognormal_around(float(mean), jitter, rng)))


def split_weights(total: int, parts: int) -> list[int]:
    """Split ``total`` into at most ``parts`` positive integers that differ by at most one."""
    if total <= 0:
        return []
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def sample_itls(
    itl_ms: float, jitter: float, n_tokens: int, rng: random.Random
) -> tuple[tuple[float, int], ...]:
    """Inter-token latencies (seconds) for a request of ``n_tokens`` output tokens, grouped."""
    request_mean = lognormal_around(itl_ms / 1000.0, jitter, rng)
    return tuple(
        (lognormal_around(request_mean, jitter / 2.0, rng), w)
        for w in split_weights(n_tokens - 1, ITL_GROUPS)
    )


def sample_request(
    cfg: SimConfig,
    rng: random.Random,
    *,
    max_tokens: int | None = None,
    outcome: Outcome | None = None,
) -> RequestSample:
    """Draw one synthetic request from ``cfg``'s distributions.

    With ``max_tokens`` the request plans exactly that many tokens and finishes on ``length``
    (what the simulator's own endpoints do); otherwise the count is drawn around
    ``cfg.generation_tokens`` and most requests finish on ``stop``. The outcome is drawn from the
    fault knobs unless given; a failed request keeps only the tokens (and latencies) it produced
    before the failure, and ``finish_reason`` becomes ``error``/``abort`` where vLLM would say so.
    """
    if outcome is None:
        outcome = draw_outcome(cfg, rng)
    prompt = sample_count(cfg.prompt_tokens, cfg.jitter, rng)
    if max_tokens is not None:
        planned, reason = max(1, max_tokens), "length"
    else:
        planned = sample_count(cfg.generation_tokens, cfg.jitter, rng)
        reason = "stop" if rng.random() < STOP_SHARE else "length"
    ttft = lognormal_around(cfg.ttft_ms / 1000.0, cfg.jitter, rng)
    produced = tokens_before_failure(outcome, planned, rng)
    itls = sample_itls(cfg.itl_ms, cfg.jitter, produced, rng)
    if outcome is Outcome.ENGINE_ERROR:
        # The failing engine step comes one inter-token latency after the last token.
        itls = (*itls, (lognormal_around(cfg.itl_ms / 1000.0, cfg.jitter, rng), 1))
        reason = "error"
    elif outcome is Outcome.CLIENT_DROP:
        reason = "abort"
    elif outcome is not Outcome.OK:
        reason, ttft = "error", 0.0  # never reached the engine: no latency to speak of
    return RequestSample(
        ok=outcome is Outcome.OK,
        prompt_tokens=prompt,
        generation_tokens=produced,
        ttft_s=ttft,
        itls=itls,
        finish_reason=reason,
        outcome=outcome,
        max_tokens=max_tokens,
    )


def due_requests(carry: float, rps: float, dt_s: float) -> tuple[int, float]:
    """How many synthetic requests arrive in ``dt_s`` at ``rps``; returns (count, new carry).

    Fractional arrivals carry over to the next tick, so the long-run rate is exact even when
    ``rps * dt_s`` is below one.
    """
    if rps <= 0.0 or dt_s <= 0.0:
        return 0, 0.0
    total = carry + rps * dt_s
    n = int(total)
    return n, total - n


def expected_load(cfg: SimConfig) -> tuple[float, float]:
    """Little's law: mean (running, waiting) requests under ``cfg.rps`` of synthetic traffic."""
    ttft_s = cfg.ttft_ms / 1000.0
    queue_s = ttft_s * QUEUE_FRACTION
    inference_s = (ttft_s - queue_s) + max(cfg.generation_tokens - 1, 0) * cfg.itl_ms / 1000.0
    return cfg.rps * inference_s, cfg.rps * queue_s


def noisy_level(expected: float, rng: random.Random) -> int:
    """An integer gauge reading around ``expected`` (Poisson-like spread), never negative."""
    if expected <= 0.0:
        return 0
    return max(0, round(rng.gauss(expected, math.sqrt(expected))))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * min(max(q, 0.0), 1.0)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
