"""The simulator's HTTP server: a fake vLLM or TGI that Prometheus cannot tell from the real one.

Owns ``Simulator`` (aiohttp app, lifecycle, run-time reconfiguration, the synthetic-traffic
task) and the ``python -m slogate.sim`` entry point (``main``). Requests to the OpenAI routes (and
TGI's ``/generate``) sleep the configured TTFT and inter-token latencies and are recorded in the
engine's metrics exactly like synthetic traffic, which is drawn from the pure functions in
``slogate.sim.sampling`` without sockets or sleeping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from slogate.sim.config import MAX_TOKENS, ConfigError, SimConfig, apply_update
from slogate.sim.metrics import (
    CONTENT_TYPE,
    TGI_MAX_INPUT_TOKENS,
    TGI_MAX_TOTAL_TOKENS,
    VLLM_MAX_MODEL_LEN,
    EngineMetrics,
    build_metrics,
)
from slogate.sim.sampling import (
    RequestSample,
    due_requests,
    expected_load,
    lognormal_around,
    noisy_level,
    sample_request,
)

DEFAULT_MAX_TOKENS = 16
DEFAULT_TICK_S = 0.25
# Synthetic traffic is accounted as if it had arrived on this route.
SYNTHETIC_HANDLER = "/v1/chat/completions"
# After an event-loop stall, at most this much synthetic time is caught up in one tick.
MAX_CATCH_UP_S = 5.0
_NOT_INSTRUMENTED = frozenset({"/admin/config"})
_WORDS = (
    "the", "model", "server", "is", "simulated", "and", "every", "token", "here", "is", "made",
    "up", "by", "slogate", "for", "testing", "latency", "objectives",
)  # fmt: skip

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ApiError(Exception):
    """A request error answered in the calling API's error format."""

    def __init__(self, status: int, message: str, *, err_type: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type


def openai_error(status: int, message: str, err_type: str, *, param: str | None = None) -> web.Response:
    """An OpenAI-style error body, as vLLM's API server returns it."""
    body = {"error": {"message": message, "type": err_type, "param": param, "code": status}}
    return web.json_response(body, status=status)


def tgi_error(status: int, message: str, error_type: str) -> web.Response:
    """TGI's error body (``ErrorResponse`` in router/src/lib.rs)."""
    return web.json_response({"error": message, "error_type": error_type}, status=status)


def fake_token(i: int) -> str:
    return _WORDS[i % len(_WORDS)] + " "


def estimate_tokens(text: str) -> int:
    """A tokenizer-free prompt length estimate (about four characters per token)."""
    return max(1, (len(text) + 3) // 4)


def _prompt_text(body: dict[str, Any], *, chat: bool) -> str:
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _ApiError(400, "messages must be a non-empty list")
        parts: list[str] = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        return " ".join(str(p) for p in prompt)
    raise _ApiError(400, "prompt must be a string or a non-empty list")


def _max_tokens(value: Any, *, name: str) -> int:
    if value is None:
        return DEFAULT_MAX_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS:
        raise _ApiError(400, f"{name} must be an integer between 1 and {MAX_TOKENS}")
    return value


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _ApiError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _ApiError(400, "request body must be a JSON object")
    return body


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class Simulator:
    """One simulated model server on one port. See the module docstring and docs/simulator.md."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        self._config = config if config is not None else SimConfig()
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._tick_s = tick_s
        self._rng = random.Random(self._config.seed)
        self._metrics: EngineMetrics = build_metrics(self._config.mode, self._config.model)
        self._inflight = 0
        self._carry = 0.0
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = self._build_app()
        self._refresh_gauges()

    # --- public API ----------------------------------------------------------------------------------

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def metrics(self) -> EngineMetrics:
        return self._metrics

    def update(self, **changes: Any) -> SimConfig:
        """Change the configuration at run time (same validation as ``POST /admin/config``).

        Changing ``mode`` or ``model`` starts a fresh metric set, as restarting the engine would.
        Raises ``ConfigError`` and leaves the configuration unchanged on bad input.
        """
        new = apply_update(self._config, changes)
        old, self._config = self._config, new
        if (new.mode, new.model) != (old.mode, old.model):
            self._metrics = build_metrics(new.mode, new.model)
        if "seed" in changes:
            self._rng.seed(new.seed)
        self._refresh_gauges()
        return new

    def metrics_text(self) -> str:
        return self._metrics.render().decode("utf-8")

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._task = asyncio.create_task(self._synthetic_loop(), name=f"slogate-sim-{self._port}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- synthetic traffic ---------------------------------------------------------------------------

    async def _synthetic_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self._tick_s)
            now = loop.time()
            self.synthetic_tick(min(now - last, MAX_CATCH_UP_S))
            last = now

    def synthetic_tick(self, dt_s: float) -> int:
        """Serve ``dt_s`` seconds' worth of synthetic requests into the metrics; returns how many."""
        cfg = self._config
        n, self._carry = due_requests(self._carry, cfg.rps, dt_s)
        metrics = self._metrics
        for _ in range(n):
            sample = sample_request(cfg, self._rng)
            metrics.record(sample)
            status, duration = (200, sample.e2e_s) if sample.ok else (500, sample.queue_s)
            metrics.record_http(SYNTHETIC_HANDLER, "POST", status, duration)
        self._refresh_gauges()
        return n

    def _refresh_gauges(self) -> None:
        cfg = self._config
        running, waiting = expected_load(cfg)
        self._metrics.set_load(
            running=noisy_level(running, self._rng) + self._inflight,
            waiting=noisy_level(waiting, self._rng),
            kv_cache_usage=cfg.kv_cache_usage,
        )

    # --- HTTP ----------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/generate", self._generate)
        app.router.add_post("/generate_stream", self._generate_stream)
        app.router.add_get("/info", self._info)
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/admin/config", self._get_config)
        app.router.add_post("/admin/config", self._post_config)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource
        path = route.canonical if route is not None else "none"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except _ApiError as exc:
            status = exc.status
            if self._config.mode == "tgi" and path in ("/generate", "/generate_stream"):
                return tgi_error(exc.status, exc.message, "validation")
            return openai_error(exc.status, exc.message, exc.err_type)
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if path not in _NOT_INSTRUMENTED:
                self._metrics.record_http(path, request.method, status, time.perf_counter() - started)

    async def _health(self, request: web.Request) -> web.Response:
        if self._config.healthy:
            return web.Response(text="ok")
        if self._config.mode == "tgi":
            return tgi_error(503, "unhealthy", "healthcheck")
        return web.Response(status=503, text="unhealthy")

    async def _models(self, request: web.Request) -> web.Response:
        cfg = self._config
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm" if cfg.mode == "vllm" else "system",
                "root": cfg.model,
                "parent": None,
                "max_model_len": VLLM_MAX_MODEL_LEN,
            }
            for name in cfg.served_names
        ]
        return web.json_response({"object": "list", "data": data})

    async def _info(self, request: web.Request) -> web.Response:
        cfg = self._config
        if cfg.mode != "tgi":
            raise web.HTTPNotFound()
        return web.json_response(
            {
                "model_id": cfg.model,
                "model_dtype": "torch.float16",
                "max_input_tokens": TGI_MAX_INPUT_TOKENS,
                "max_total_tokens": TGI_MAX_TOTAL_TOKENS,
                "version": "slogate-sim",
                "router": "text-generation-router",
            }
        )

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _get_config(self, request: web.Request) -> web.Response:
        return web.json_response(self._config.to_dict())

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return web.json_response({"error": f"body is not valid JSON: {exc}"}, status=400)
        try:
            new = self.update(**changes) if isinstance(changes, dict) else apply_update(self._config, changes)
        except ConfigError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(new.to_dict())

    # --- generation ----------------------------------------------------------------------------------

    def _fails(self) -> bool:
        return self._rng.random() < self._config.error_rate

    def _record_failure(self, prompt_tokens: int) -> None:
        self._metrics.record(
            RequestSample(ok=False, prompt_tokens=prompt_tokens, generation_tokens=0, ttft_s=0.0, itls=())
        )

    async def _generate_tokens(
        self, n: int, emit: Callable[[int, str], Awaitable[None]] | None = None
    ) -> tuple[float, list[float]]:
        """Sleep like an engine producing ``n`` tokens; returns (ttft, inter-token latencies)."""
        cfg = self._config
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(lognormal_around(cfg.ttft_ms / 1000.0, cfg.jitter, self._rng))
        prev = loop.time()
        ttft = prev - start
        itls: list[float] = []
        for i in range(n):
            if i:
                await asyncio.sleep(lognormal_around(self._config.itl_ms / 1000.0, cfg.jitter, self._rng))
                now = loop.time()
                itls.append(now - prev)
                prev = now
            if emit is not None:
                await emit(i, fake_token(i))
        return ttft, itls

    def _record_success(self, prompt_tokens: int, n: int, ttft: float, itls: Sequence[float]) -> None:
        self._metrics.record(
            RequestSample(
                ok=True,
                prompt_tokens=prompt_tokens,
                generation_tokens=n,
                ttft_s=ttft,
                itls=tuple((x, 1) for x in itls),
                finish_reason="length",
            )
        )

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, chat=False)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, chat=True)

    async def _openai(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        cfg = self._config
        body = await _json_object(request)
        model = body.get("model")
        if cfg.mode == "vllm" and model is not None and model not in cfg.served_names:
            return openai_error(404, f"The model `{model}` does not exist.", "NotFoundError", param="model")
        served = model if isinstance(model, str) and model else cfg.model
        limit = body.get("max_completion_tokens") if chat else None
        n = _max_tokens(limit if limit is not None else body.get("max_tokens"), name="max_tokens")
        prompt_tokens = estimate_tokens(_prompt_text(body, chat=chat))
        if self._fails():
            self._record_failure(prompt_tokens)
            return openai_error(
                500, "simulated engine failure (slogate sim error_rate)", "InternalServerError"
            )
        self._inflight += 1
        try:
            if body.get("stream"):
                options = body.get("stream_options")
                usage = isinstance(options, dict) and bool(options.get("include_usage"))
                return await self._openai_stream(
                    request, chat=chat, model=served, n=n, prompt_tokens=prompt_tokens, usage=usage
                )
            ttft, itls = await self._generate_tokens(n)
            self._record_success(prompt_tokens, n, ttft, itls)
            text = "".join(fake_token(i) for i in range(n))
            return web.json_response(
                self._openai_body(chat=chat, model=served, text=text, n=n, prompt_tokens=prompt_tokens)
            )
        finally:
            self._inflight -= 1

    @staticmethod
    def _openai_body(*, chat: bool, model: str, text: str, n: int, prompt_tokens: int) -> dict[str, Any]:
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + n, "completion_tokens": n}
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "length",
                "stop_reason": None,
            }
            return {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None}
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage,
        }

    async def _openai_stream(
        self, request: web.Request, *, chat: bool, model: str, n: int, prompt_tokens: int, usage: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        rid = f"chatcmpl-{uuid.uuid4().hex}" if chat else f"cmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choice: dict[str, Any]) -> dict[str, Any]:
            return {"id": rid, "object": obj, "created": created, "model": model, "choices": [choice]}

        async def emit(i: int, token: str) -> None:
            if chat:
                if i == 0:
                    await response.write(
                        _sse(
                            chunk(
                                {
                                    "index": 0,
                                    "delta": {"role": "assistant", "content": ""},
                                    "logprobs": None,
                                    "finish_reason": None,
                                }
                            )
                        )
                    )
                choice = {"index": 0, "delta": {"content": token}, "logprobs": None, "finish_reason": None}
            else:
                choice = {
                    "index": 0,
                    "text": token,
                    "logprobs": None,
                    "finish_reason": None,
                    "stop_reason": None,
                }
            await response.write(_sse(chunk(choice)))

        try:
            ttft, itls = await self._generate_tokens(n, emit)
            self._record_success(prompt_tokens, n, ttft, itls)
            if chat:
                final = {
                    "index": 0,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": "length",
                    "stop_reason": None,
                }
            else:
                final = {
                    "index": 0,
                    "text": "",
                    "logprobs": None,
                    "finish_reason": "length",
                    "stop_reason": None,
                }
            await response.write(_sse(chunk(final)))
            if usage:
                tail = chunk(final) | {
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "total_tokens": prompt_tokens + n,
                        "completion_tokens": n,
                    },
                }
                await response.write(_sse(tail))
            await response.write(_sse("[DONE]"))
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away; nothing left to send
        return response

    async def _tgi_request(self, request: web.Request) -> tuple[dict[str, Any], int, int, bool]:
        if self._config.mode != "tgi":
            raise web.HTTPNotFound()
        body = await _json_object(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, str) or not inputs:
            raise _ApiError(422, "`inputs` must be a non-empty string", err_type="validation")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise _ApiError(422, "`parameters` must be an object", err_type="validation")
        n = _max_tokens(params.get("max_new_tokens"), name="max_new_tokens")
        return params, n, estimate_tokens(inputs), bool(params.get("details"))

    async def _generate(self, request: web.Request) -> web.Response:
        _, n, prompt_tokens, details = await self._tgi_request(request)
        if self._fails():
            self._record_failure(prompt_tokens)
            return tgi_error(424, "Request failed during generation: simulated failure", "generation")
        self._inflight += 1
        try:
            ttft, itls = await self._generate_tokens(n)
        finally:
            self._inflight -= 1
        self._record_success(prompt_tokens, n, ttft, itls)
        out: dict[str, Any] = {"generated_text": "".join(fake_token(i) for i in range(n))}
        if details:
            out["details"] = {
                "finish_reason": "length",
                "generated_tokens": n,
                "seed": None,
                "prefill": [],
                "tokens": [],
            }
        return web.json_response(out)

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        _, n, prompt_tokens, details = await self._tgi_request(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        if self._fails():
            self._record_failure(prompt_tokens)
            await response.prepare(request)
            await response.write(
                _sse(
                    {
                        "error": "Request failed during generation: simulated failure",
                        "error_type": "generation",
                    }
                )
            )
            await response.write_eof()
            return response
        await response.prepare(request)
        text: list[str] = []

        async def emit(i: int, token: str) -> None:
            text.append(token)
            last = i == n - 1
            event = {
                "index": i + 1,
                "token": {"id": i, "text": token, "logprob": -0.1, "special": False},
                "generated_text": "".join(text) if last else None,
                "details": {"finish_reason": "length", "generated_tokens": n, "seed": None}
                if last and details
                else None,
                "top_tokens": None,
            }
            await response.write(_sse(event))

        self._inflight += 1
        try:
            ttft, itls = await self._generate_tokens(n, emit)
            self._record_success(prompt_tokens, n, ttft, itls)
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            self._inflight -= 1
        return response


# --- command line -----------------------------------------------------------------------------------


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``python -m slogate.sim`` (reusable by the ``slogate sim serve`` command)."""
    defaults = SimConfig()
    p = parser or argparse.ArgumentParser(
        prog="python -m slogate.sim", description="Serve a simulated vLLM or TGI model server."
    )
    p.add_argument("--mode", choices=("vllm", "tgi"), default=defaults.mode)
    p.add_argument("--model", default=defaults.model, help="served model name")
    p.add_argument("--alias", action="append", default=[], help="extra served name (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 inside a container)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--ttft-ms", type=float, default=defaults.ttft_ms)
    p.add_argument("--itl-ms", type=float, default=defaults.itl_ms)
    p.add_argument("--jitter", type=float, default=defaults.jitter)
    p.add_argument("--error-rate", type=float, default=defaults.error_rate)
    p.add_argument("--rps", type=float, default=defaults.rps, help="synthetic background requests/s")
    p.add_argument("--prompt-tokens", type=int, default=defaults.prompt_tokens)
    p.add_argument("--generation-tokens", type=int, default=defaults.generation_tokens)
    p.add_argument("--kv-cache-usage", type=float, default=defaults.kv_cache_usage)
    p.add_argument("--seed", type=int, default=None)
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        mode=args.mode,
        model=args.model,
        aliases=list(args.alias),
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        jitter=args.jitter,
        error_rate=args.error_rate,
        rps=args.rps,
        prompt_tokens=args.prompt_tokens,
        generation_tokens=args.generation_tokens,
        kv_cache_usage=args.kv_cache_usage,
        seed=args.seed,
    )


async def serve(config: SimConfig, *, host: str, port: int) -> None:
    """Run one simulator until SIGINT or SIGTERM."""
    sim = Simulator(config, host=host, port=port)
    await sim.start()
    print(f"slogate sim: {config.mode} serving {config.model!r} on {host}:{sim.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"slogate sim: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config, host=args.host, port=args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"slogate sim: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
