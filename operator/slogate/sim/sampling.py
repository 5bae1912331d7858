"""Latency, token-count and load distributions of the simulator, as pure seedable functions.

Owns how one simulated request looks (``RequestSample``: TTFT, inter-token latencies, token
counts, success) and how much synthetic traffic is due per tick. Every function takes its
``random.Random`` explicitly, so unit tests pin a seed and assert exact values; nothing here
sleeps, reads the clock or touches metrics.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from slogate.sim.config import SimConfig

# Share of TTFT spent waiting in the scheduler queue; the rest is prefill. Neither engine lets
# us derive this from a single TTFT knob, so it is a fixed, documented assumption.
QUEUE_FRACTION = 0.25
# Per synthetic request, inter-token latencies are observed as this many weighted groups instead
# of one observation per token: same histogram shape, a fraction of the CPU.
ITL_GROUPS = 4
# Synthetic requests that are not cut by max_tokens end on a stop token this often.
STOP_SHARE = 0.85


@dataclass(frozen=True)
class RequestSample:
    """Everything the metrics need to know about one finished (or failed) request."""

    ok: bool
    prompt_tokens: int
    generation_tokens: int
    ttft_s: float
    itls: tuple[tuple[float, int], ...]  # (inter-token latency in s, how many tokens had it)
    finish_reason: str = "length"

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
        """Mean time per output token after the first (vLLM's request_time_per_output_token)."""
        n = sum(w for _, w in self.itls)
        return self.decode_s / n if n else 0.0


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


def sample_request(cfg: SimConfig, rng: random.Random, *, max_tokens: int | None = None) -> RequestSample:
    """Draw one synthetic request from ``cfg``'s distributions.

    With ``max_tokens`` the request generates exactly that many tokens and finishes on
    ``length`` (what the simulator's own endpoints do); otherwise the count is drawn around
    ``cfg.generation_tokens`` and most requests finish on ``stop``.
    """
    ok = rng.random() >= cfg.error_rate
    prompt = sample_count(cfg.prompt_tokens, cfg.jitter, rng)
    if max_tokens is not None:
        generated, reason = max(1, max_tokens), "length"
    else:
        generated = sample_count(cfg.generation_tokens, cfg.jitter, rng)
        reason = "stop" if rng.random() < STOP_SHARE else "length"
    ttft = lognormal_around(cfg.ttft_ms / 1000.0, cfg.jitter, rng)
    return RequestSample(
        ok=ok,
        prompt_tokens=prompt,
        generation_tokens=generated,
        ttft_s=ttft,
        itls=sample_itls(cfg.itl_ms, cfg.jitter, generated, rng),
        finish_reason=reason,
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
