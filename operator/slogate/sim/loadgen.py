"""A small, bounded load generator for an OpenAI-compatible endpoint on the loopback interface.

Owns ``run_load`` (open-loop chat-completion requests at a fixed rate for a fixed time, TTFT
measured on the client side) and its ``main``. It refuses non-loopback URLs and caps rate,
duration and request count, so it can only ever exercise a local simulator or a port-forward.
It judges each request the way a client would: a stream that carries an error event failed, even
though it was HTTP 200 and ended in ``[DONE]`` (how vLLM and TGI report engine failures mid-stream).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
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


class Seen(enum.StrEnum):
    """What the client saw of one request."""

    OK = "ok"
    """HTTP 200 and a complete answer (a stream ending in ``[DONE]`` with no error event)."""
    HTTP_ERROR = "http_error"
    """A non-200 status: the server refused or failed the request before answering."""
    STREAM_ERROR = "stream_error"
    """HTTP 200, but the stream carried an error event (``{"error": ...}``), or the body was one."""
    TRANSPORT_ERROR = "transport_error"
    """No usable answer: connection refused or cut, a stream without ``[DONE]``, a timeout, bad JSON."""


@dataclass(frozen=True)
class LoadReport:
    """What one load run saw. TTFT is client-side (for non-streaming requests: the whole response).

    ``errors`` is every request that was not ``ok``: ``http_errors + stream_errors +
    transport_errors``. ``statuses`` counts the HTTP status codes received (as strings).
    """

    sent: int
    ok: int
    errors: int
    http_errors: int
    stream_errors: int
    transport_errors: int
    statuses: dict[str, int]
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    duration_s: float

    def to_dict(self) -> dict[str, object]:
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


async def send_one(
    session: aiohttp.ClientSession, endpoint: str, payload: dict[str, object], *, stream: bool
) -> tuple[Seen, int | None, float | None]:
    """Send one request; returns what the client saw, the HTTP status (if any) and the TTFT."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    status: int | None = None
    try:
        async with session.post(endpoint, json=payload) as resp:
            status = resp.status
            if resp.status != 200:
                await resp.read()
                return Seen.HTTP_ERROR, status, None
            if not stream:
                doc = await resp.json()
                if not isinstance(doc, dict) or "error" in doc:
                    return Seen.STREAM_ERROR if isinstance(doc, dict) else Seen.TRANSPORT_ERROR, status, None
                return Seen.OK, status, loop.time() - started
            ttft: float | None = None
            done = failed = False
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = _event(data)
                if chunk is None or "error" in chunk:
                    failed = True  # keep reading: the engines still send [DONE] after the error
                elif ttft is None and _has_content(chunk):
                    ttft = loop.time() - started
            if failed:
                return Seen.STREAM_ERROR, status, None
            return (Seen.OK, status, ttft) if done else (Seen.TRANSPORT_ERROR, status, None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
        return Seen.TRANSPORT_ERROR, status, None


def _event(data: str) -> dict[str, object] | None:
    """One SSE data payload as a JSON object, or ``None`` if it is not one."""
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None


def _has_content(chunk: dict[str, object]) -> bool:
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if (isinstance(delta, dict) and delta.get("content")) or choice.get("text"):
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
        tasks: list[asyncio.Task[tuple[Seen, int | None, float | None]]] = []
        for i in range(total):
            delay = started + i / rps - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send_one(session, endpoint, payload, stream=stream)))
        results = await asyncio.gather(*tasks)
    seen = [s for s, _, _ in results]
    statuses: dict[str, int] = {}
    for _, status, _ in results:
        if status is not None:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    ok = seen.count(Seen.OK)
    ttfts = [t for s, _, t in results if s is Seen.OK and t is not None]
    return LoadReport(
        sent=len(results),
        ok=ok,
        errors=len(results) - ok,
        http_errors=seen.count(Seen.HTTP_ERROR),
        stream_errors=seen.count(Seen.STREAM_ERROR),
        transport_errors=seen.count(Seen.TRANSPORT_ERROR),
        statuses=dict(sorted(statuses.items())),
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
