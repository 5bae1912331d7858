"""A small, bounded load generator for an OpenAI-compatible endpoint on the loopback interface.

Owns ``run_load`` (open-loop chat-completion requests at a fixed rate for a fixed time, TTFT
measured on the client side) and its ``main``. It refuses non-loopback URLs and caps rate,
duration and request count, so it can only ever exercise a local simulator or a port-forward.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import aiohttp

from slogate.sim.sampling import percentile

MAX_LOAD_RPS = 200.0
MAX_LOAD_DURATION_S = 600.0
MAX_LOAD_REQUESTS = 10_000
REQUEST_TIMEOUT_S = 60.0
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class LoadReport:
    """What one load run saw. TTFT is client-side (for non-streaming requests: the whole response)."""

    sent: int
    ok: int
    errors: int
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    duration_s: float

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def loopback_endpoint(url: str) -> str:
    """The chat-completions URL for ``url``; raises ``ValueError`` unless it is on loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"refusing to load a non-loopback host {host!r}: use a port-forward")
    base = url.rstrip("/")
    return base if parts.path.rstrip("/").endswith(CHAT_PATH) else base + CHAT_PATH


async def _one(
    session: aiohttp.ClientSession, endpoint: str, payload: dict[str, object], *, stream: bool
) -> tuple[bool, float | None]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with session.post(endpoint, json=payload) as resp:
            if resp.status != 200:
                await resp.read()
                return False, None
            if not stream:
                await resp.json()
                return True, loop.time() - started
            ttft: float | None = None
            done = False
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                if ttft is None and _has_content(data):
                    ttft = loop.time() - started
            return done, ttft
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
        return False, None


def _has_content(data: str) -> bool:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or choice.get("text"):
            return True
    return False


async def run_load(
    url: str, *, rps: float, duration_s: float, model: str, stream: bool = True, max_tokens: int = 16
) -> LoadReport:
    """Send ``rps`` chat completions per second for ``duration_s`` seconds and report the outcome."""
    endpoint = loopback_endpoint(url)
    if not 0.0 < rps <= MAX_LOAD_RPS:
        raise ValueError(f"rps must be in (0, {MAX_LOAD_RPS:g}]")
    if not 0.0 < duration_s <= MAX_LOAD_DURATION_S:
        raise ValueError(f"duration_s must be in (0, {MAX_LOAD_DURATION_S:g}]")
    total = min(MAX_LOAD_REQUESTS, max(1, round(rps * duration_s)))
    payload: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say something simulated."}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    started = loop.time()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks: list[asyncio.Task[tuple[bool, float | None]]] = []
        for i in range(total):
            delay = started + i / rps - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(session, endpoint, payload, stream=stream)))
        results = await asyncio.gather(*tasks)
    ok = sum(1 for success, _ in results if success)
    ttfts = [t for success, t in results if success and t is not None]
    return LoadReport(
        sent=len(results),
        ok=ok,
        errors=len(results) - ok,
        ttft_p50_s=percentile(ttfts, 0.5),
        ttft_p95_s=percentile(ttfts, 0.95),
        duration_s=loop.time() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slogate.sim.loadgen", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="loopback base URL")
    parser.add_argument("--model", required=True)
    parser.add_argument("--rps", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args(argv)
    try:
        report = asyncio.run(
            run_load(
                args.url,
                rps=args.rps,
                duration_s=args.duration,
                model=args.model,
                stream=not args.no_stream,
                max_tokens=args.max_tokens,
            )
        )
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict()))
    return 0 if report.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
