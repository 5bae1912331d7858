"""The simulator's HTTP server: a fake vLLM, TGI or SGLang that Prometheus cannot tell from the real one.

Owns ``Simulator`` (aiohttp app, lifecycle, run-time reconfiguration, the synthetic-traffic
task) and the ``python -m slogate.sim`` entry point (``main``). Requests to the OpenAI routes (and
TGI's and SGLang's ``/generate``) draw an ``Outcome`` from the fault knobs, sleep the configured TTFT and
inter-token latencies, and answer the way the engine's profile says (``slogate.sim.engines``);
they are recorded in the engine's metrics exactly like synthetic traffic, which is drawn from the
pure functions in ``slogate.sim.sampling`` without sockets or sleeping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from slogate.sim import answers
from slogate.sim.config import (
    ERROR_STAGES,
    MAX_TOKENS,
    MODES,
    QUALITY_FAULTS,
    ConfigError,
    SimConfig,
    apply_update,
)
from slogate.sim.engines import (
    MAX_MODEL_LEN,
    Api,
    EngineProfile,
    Reply,
    compact_json,
    profile_for,
    sglang_error_body,
)
from slogate.sim.metrics import CONTENT_TYPE, EngineMetrics, build_metrics
from slogate.sim.sampling import (
    Outcome,
    RequestSample,
    draw_outcome,
    due_requests,
    expected_load,
    lognormal_around,
    noisy_level,
    sample_request,
    tokens_before_failure,
)

DEFAULT_MAX_TOKENS = 16
# SamplingParams.max_new_tokens (sglang/srt/sampling/sampling_params.py:149 @ 0.5.23): SGLang's
# /generate default.
SGLANG_DEFAULT_MAX_NEW_TOKENS = 128
DEFAULT_TICK_S = 0.25
# Synthetic traffic is accounted as streamed requests arriving on this route.
SYNTHETIC_HANDLER = Api.CHAT.value
# After an event-loop stall, at most this much synthetic time is caught up in one tick.
MAX_CATCH_UP_S = 5.0
# How long a request rejected before the engine (pre-stream fault, load shedding) takes.
REJECTION_S = 0.002
# JSON around a synthetic request's prompt, for the instrumentator's request-size summary.
SYNTHETIC_BODY_OVERHEAD_BYTES = 200
_NOT_INSTRUMENTED = frozenset({"/admin/config"})
_WORDS = (
    "the", "model", "server", "is", "simulated", "and", "every", "token", "here", "is", "made",
    "up", "by", "slogate", "for", "testing", "latency", "objectives",
)  # fmt: skip

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Emit = Callable[[int, str], Awaitable[None]]


class _ApiError(Exception):
    """A request error answered in the calling API's error format."""

    def __init__(self, status: int, message: str, *, err_type: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type


class _Raised(Exception):
    """The handler raised instead of answering (``Reply.raised``): Starlette's
    ``ServerErrorMiddleware`` answers a plain-text 500, or the started stream is cut.

    ``response`` is the already-prepared stream, if there is one.
    """

    def __init__(self, response: web.StreamResponse | None = None) -> None:
        super().__init__("simulated unhandled exception")
        self.response = response


class _ClientGone(Exception):
    """The client closed the connection while the response was streaming.

    ``_generate_tokens`` fills in the latencies of the tokens produced until then.
    """

    ttft: float = 0.0
    itls: tuple[float, ...] = ()


def json_reply(status: int, body: dict[str, Any] | None) -> web.Response:
    """A JSON response written compactly, as Starlette and axum write it; ``None`` = empty body."""
    if body is None:
        return web.Response(status=status)
    return web.Response(status=status, text=compact_json(body), content_type="application/json")


def openai_error(status: int, message: str, err_type: str, *, param: str | None = None) -> web.Response:
    """An OpenAI-style error body, as vLLM's API server returns it."""
    return json_reply(
        status, {"error": {"message": message, "type": err_type, "param": param, "code": status}}
    )


def tgi_error(status: int, message: str, error_type: str) -> web.Response:
    """TGI's error body (``ErrorResponse`` in router/src/lib.rs)."""
    return json_reply(status, {"error": message, "error_type": error_type})


def quality_rates(cfg: SimConfig) -> dict[str, float]:
    """The quality fault rates of ``cfg`` by name (``slogate.sim.answers``)."""
    return {name: getattr(cfg, name) for name in QUALITY_FAULTS}


def fake_token(i: int) -> str:
    return _WORDS[i % len(_WORDS)] + " "


def estimate_tokens(text: str) -> int:
    """A tokenizer-free prompt length estimate (about four characters per token)."""
    return max(1, (len(text) + 3) // 4)


def _prompt_texts(body: dict[str, Any], *, chat: bool) -> list[str]:
    """The prompts of a request: one for chat, one per list entry for a completion."""
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
        return ["\n".join(parts)]
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, int) for p in prompt):
            return [" ".join(str(p) for p in prompt)]  # one prompt given as token ids
        return [str(p) for p in prompt]
    raise _ApiError(400, "prompt must be a string or a non-empty list")


def _max_tokens(value: Any, *, name: str, default: int = DEFAULT_MAX_TOKENS) -> int:
    if value is None:
        return default
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


def _cut(request: web.Request) -> None:
    """Close the connection without another byte: the simulator plays the client that left."""
    if request.transport is not None:
        request.transport.close()


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
        self._profile: EngineProfile = profile_for(self._config.mode)
        self._inflight = 0
        self._carry = 0.0
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = self._build_app()
        self._warm_up()
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

    @property
    def profile(self) -> EngineProfile:
        return self._profile

    def update(self, **changes: Any) -> SimConfig:
        """Change the configuration at run time (same validation as ``POST /admin/config``).

        Changing ``mode`` or ``model`` starts a fresh metric set, as restarting the engine would.
        Raises ``ConfigError`` and leaves the configuration unchanged on bad input.
        """
        new = apply_update(self._config, changes)
        old, self._config = self._config, new
        if (new.mode, new.model) != (old.mode, old.model):
            self._metrics = build_metrics(new.mode, new.model)
            self._profile = profile_for(new.mode)
            self._warm_up()
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
        """Serve ``dt_s`` seconds' worth of synthetic requests into the metrics; returns how many.

        Each synthetic request is a ``/v1/chat/completions`` request, streamed with probability
        ``streamed_share`` (one draw per request, after the outcome's): it goes through
        the handler (TGI counts it there and again in the inner generate), the engine (one
        ``record``) and the HTTP layer with the status a streamed request of its outcome gets
        (vLLM: 200 for a mid-stream fault or a drop, 500/503 when rejected before the stream;
        not streamed, every failure has its error status).
        """
        cfg = self._config
        n, self._carry = due_requests(self._carry, cfg.rps, dt_s)
        metrics, profile = self._metrics, self._profile
        for _ in range(n):
            sample = sample_request(cfg, self._rng)
            if cfg.streamed_share < 1.0 and self._rng.random() >= cfg.streamed_share:
                sample = dataclasses.replace(sample, stream=False)
            metrics.record_http_start(SYNTHETIC_HANDLER, "POST")
            metrics.record_handler(SYNTHETIC_HANDLER)
            metrics.record(sample)
            reply = profile.reply(sample.outcome or Outcome.OK, api=Api.CHAT, stream=sample.stream)
            metrics.record_http(
                SYNTHETIC_HANDLER,
                "POST",
                reply.status,
                sample.e2e_s if sample.reached_engine else REJECTION_S,
                request_bytes=4 * sample.prompt_tokens + SYNTHETIC_BODY_OVERHEAD_BYTES,
                response_bytes=len(compact_json(reply.body)) if reply.body is not None else 0,
            )
        self._refresh_gauges()
        return n

    def _refresh_gauges(self) -> None:
        cfg = self._config
        running, waiting = expected_load(cfg)
        synthetic_running, synthetic_waiting = (
            noisy_level(running, self._rng),
            noisy_level(waiting, self._rng),
        )
        self._metrics.set_load(
            running=synthetic_running + self._inflight,
            waiting=synthetic_waiting,
            kv_cache_usage=cfg.kv_cache_usage,
            tokens_per_request=cfg.prompt_tokens + cfg.generation_tokens,
        )
        self._metrics.set_synthetic_in_flight(
            SYNTHETIC_HANDLER, "POST", synthetic_running + synthetic_waiting
        )

    def _warm_up(self) -> None:
        """Record the engine's own start-up request, if it sends one (SGLang: ``/model_info``
        polled, then a non-streamed ``/generate`` of 8 tokens,
        sglang/srt/entrypoints/http_server.py:2360-2535 @ 0.5.23), at the configured mean latencies
        (no random draw, so seeded runs are unchanged)."""
        warmup = self._profile.warmup
        if warmup is None:
            return
        cfg, metrics = self._config, self._metrics
        metrics.record_http_start(warmup.probe, "GET")
        metrics.record_http(warmup.probe, "GET", 200, REJECTION_S)
        n = warmup.max_new_tokens
        sample = RequestSample(
            ok=True,
            prompt_tokens=estimate_tokens(warmup.text),
            generation_tokens=n,
            ttft_s=cfg.ttft_ms / 1000.0,
            itls=((cfg.itl_ms / 1000.0, n - 1),),
            outcome=Outcome.OK,
            max_tokens=n,
            stream=False,
        )
        metrics.record_http_start(warmup.route, "POST")
        metrics.record_handler(warmup.route)
        metrics.record(sample)
        metrics.record_http(warmup.route, "POST", 200, sample.e2e_s)

    # --- HTTP ----------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/health", self._health)
        app.router.add_get("/ping", self._ping)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_post("/generate", self._generate)
        app.router.add_put("/generate", self._generate)  # SGLang only (http_server.py:928-932)
        app.router.add_post("/generate_stream", self._generate_stream)
        app.router.add_get("/info", self._info)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/model_info", self._model_info)
        app.router.add_get("/version", self._version)
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/admin/config", self._get_config)
        app.router.add_post("/admin/config", self._post_config)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource
        metrics = self._metrics
        path = route.canonical if route is not None else metrics.unmatched_handler(request.path)
        status: int | None = 500
        response: web.StreamResponse | None = None
        if path not in _NOT_INSTRUMENTED:
            metrics.record_http_start(path, request.method)
        try:
            response = await handler(request)
            status = response.status
            return response
        except _ApiError as exc:
            status = exc.status
            mode = self._config.mode
            if mode == "tgi" and path in ("/generate", "/generate_stream"):
                response = tgi_error(exc.status, exc.message, "validation")
            elif mode == "sglang" and path == "/generate":
                # generate_request's contract check (sglang/srt/entrypoints/http_server.py:936-939)
                response = json_reply(exc.status, {"error": exc.message})
            elif mode == "sglang":
                # RequestValidationError, rewritten to 400 (http_server.py:635-692 @ 0.5.23)
                response = json_reply(exc.status, sglang_error_body(exc.message, "Bad Request", exc.status))
            else:
                response = openai_error(exc.status, exc.message, exc.err_type)
            return response
        except _Raised as exc:
            status = None  # SGLang's middleware: call_next raised, no response counted
            response = exc.response or web.Response(status=500, text="Internal Server Error")
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if path not in _NOT_INSTRUMENTED:
                out = response.content_length if isinstance(response, web.Response) else None
                metrics.record_http(
                    path,
                    request.method,
                    status,
                    time.perf_counter() - started,
                    request_bytes=request.content_length or 0,
                    response_bytes=out or 0,
                )

    def _native(self, path: str) -> None:
        """404 unless the engine being imitated serves ``path``."""
        if path not in self._profile.native_routes:
            raise web.HTTPNotFound()

    async def _health(self, request: web.Request) -> web.Response:
        return json_reply(*self._profile.health(healthy=self._config.healthy))

    async def _ping(self, request: web.Request) -> web.Response:
        # Both engines answer /ping like /health: vLLM's SageMaker router
        # (serve/sagemaker/api_router.py:91-96 @ 0.33.0), TGI (router/src/server.rs:2242 @ v3.3.7).
        return await self._health(request)

    async def _models(self, request: web.Request) -> web.Response:
        return json_reply(200, self._profile.models(self._config, now=int(time.time())))

    async def _ready(self, request: web.Request) -> web.Response:
        # SGLang: 200 iff the server is Up (warmed up, and no later /health failed), not paused,
        # not shutting down (sglang/srt/entrypoints/http_server.py:714-718 @ 0.5.23).
        self._native("/ready")
        return json_reply(*self._profile.health(healthy=self._config.healthy))

    async def _model_info(self, request: web.Request) -> web.Response:
        info = self._profile.model_info(self._config)
        if info is None:
            raise web.HTTPNotFound()
        return json_reply(200, info)

    async def _version(self, request: web.Request) -> web.Response:
        body = self._profile.version()
        if body is None:
            raise web.HTTPNotFound()
        return json_reply(200, body)

    async def _info(self, request: web.Request) -> web.Response:
        info = self._profile.info(self._config)
        if info is None:
            raise web.HTTPNotFound()
        return json_reply(200, info)

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

    def _plan(self, *, api: Api, stream: bool, max_tokens: int) -> tuple[Outcome, Reply, int]:
        """Draw this request's outcome; returns it, the engine's reply and the tokens to produce."""
        outcome = draw_outcome(self._config, self._rng)
        reply = self._profile.reply(outcome, api=api, stream=stream)
        produced = tokens_before_failure(outcome, max_tokens, self._rng) if reply.after_tokens else 0
        return outcome, reply, (max_tokens if outcome is Outcome.OK else produced)

    def _record(
        self,
        outcome: Outcome,
        prompt_tokens: Sequence[int],
        *,
        produced: int,
        max_tokens: int,
        ttft: float = 0.0,
        itls: Sequence[float] = (),
        stream: bool = True,
    ) -> None:
        """Account the engine requests of one HTTP request (one per prompt) that ended as ``outcome``."""
        reason = {Outcome.OK: "length", Outcome.CLIENT_DROP: "abort"}.get(outcome, "error")
        for tokens in prompt_tokens:
            self._metrics.record(
                RequestSample(
                    ok=outcome is Outcome.OK,
                    prompt_tokens=tokens,
                    generation_tokens=produced,
                    ttft_s=ttft,
                    itls=tuple((x, 1) for x in itls),
                    finish_reason=reason,
                    outcome=outcome,
                    max_tokens=max_tokens,
                    stream=stream,
                )
            )

    async def _generate_tokens(
        self, n: int, emit: Emit | None = None, *, error_step: bool = False
    ) -> tuple[float, list[float]]:
        """Sleep like an engine producing ``n`` tokens; returns (ttft, inter-token latencies).

        ``error_step`` adds the engine step that fails after the last token (one more gap).
        ``emit`` raising ``_ClientGone`` stops early; the tokens so far are in the latencies.
        """
        cfg = self._config
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(lognormal_around(cfg.ttft_ms / 1000.0, cfg.jitter, self._rng))
        prev = loop.time()
        ttft = prev - start
        itls: list[float] = []
        for i in range(n + (1 if error_step else 0)):
            if i:
                await asyncio.sleep(lognormal_around(self._config.itl_ms / 1000.0, cfg.jitter, self._rng))
                now = loop.time()
                itls.append(now - prev)
                prev = now
            if emit is not None and i < n:
                try:
                    await emit(i, fake_token(i))
                except _ClientGone as gone:
                    gone.ttft, gone.itls = ttft, tuple(itls)
                    raise
        return ttft, itls

    async def _run(
        self, outcome: Outcome, reply: Reply, produced: int, emit: Emit | None = None
    ) -> tuple[float, list[float]]:
        """Generate what ``reply`` says comes before the outcome shows: nothing for a request the
        engine refused (a streamed TGI overload or prefill failure shows at once), else tokens."""
        if outcome is not Outcome.OK and not reply.after_tokens:
            return 0.0, []
        return await self._generate_tokens(produced, emit, error_step=outcome is Outcome.ENGINE_ERROR)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, api=Api.COMPLETIONS)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, api=Api.CHAT)

    async def _openai(self, request: web.Request, *, api: Api) -> web.StreamResponse:
        cfg, chat = self._config, api is Api.CHAT
        body = await _json_object(request)
        model = body.get("model")
        rejection = self._profile.unknown_model(cfg, model)
        if rejection is not None:
            return json_reply(*rejection)
        served = model if isinstance(model, str) and model and model != "tgi" else cfg.model
        limit = body.get("max_completion_tokens") if chat else None
        n = _max_tokens(limit if limit is not None else body.get("max_tokens"), name="max_tokens")
        prompts = [estimate_tokens(text) for text in _prompt_texts(body, chat=chat)]
        stream = bool(body.get("stream"))
        # A request that says what it wants (a JSON schema, "one of: a, b") gets a derived answer,
        # with the quality faults drawn (slogate.sim.answers); its length is the answer's.
        wanted = None if stream else answers.answer(body, quality_rates(cfg), self._rng)
        if wanted is not None:
            n = min(n, estimate_tokens(wanted[0]))
        self._metrics.record_handler(api.value)
        outcome, reply, produced = self._plan(api=api, stream=stream, max_tokens=n)
        if reply.body is not None and not reply.after_tokens:
            # Rejected before the engine produced anything (vLLM pre-stream 500 / 503, TGI 424 / 429).
            refused = prompts[:1] if self._profile.admission_per_http_request else prompts
            self._record(outcome, refused, produced=0, max_tokens=n, stream=stream)
            return json_reply(reply.status, reply.body)
        self._inflight += 1
        try:
            if stream:
                options = body.get("stream_options")
                usage = isinstance(options, dict) and bool(options.get("include_usage"))
                return await self._openai_stream(
                    request, api=api, model=served, outcome=outcome, reply=reply, produced=produced,
                    max_tokens=n, prompts=prompts, usage=usage,
                )  # fmt: skip
            ttft, itls = await self._run(outcome, reply, produced)
            self._record(
                outcome, prompts, produced=produced, max_tokens=n, ttft=ttft, itls=itls, stream=False
            )
            if reply.cut:
                # Never received: vLLM's with_cancellation returns an empty 200, SGLang its 400.
                _cut(request)
                return json_reply(reply.status, reply.body)
            if reply.body is not None:
                return json_reply(reply.status, reply.body)
            text = "".join(fake_token(i) for i in range(n)) if wanted is None else wanted[0]
            finish = "length" if wanted is None or wanted[1] else "stop"
            return json_reply(
                200,
                self._openai_body(chat=chat, model=served, text=text, n=n, prompts=prompts, finish=finish),
            )
        finally:
            self._inflight -= 1

    @staticmethod
    def _openai_body(
        *, chat: bool, model: str, text: str, n: int, prompts: Sequence[int], finish: str = "length"
    ) -> dict[str, Any]:
        prompt_tokens = sum(prompts)
        completion_tokens = n * len(prompts)
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        }
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish,
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
        choices = [
            {"index": i, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
            for i in range(len(prompts))
        ]
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": usage,
        }

    async def _openai_stream(
        self,
        request: web.Request,
        *,
        api: Api,
        model: str,
        outcome: Outcome,
        reply: Reply,
        produced: int,
        max_tokens: int,
        prompts: Sequence[int],
        usage: bool,
    ) -> web.StreamResponse:
        chat = api is Api.CHAT
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        rid = f"chatcmpl-{uuid.uuid4().hex}" if chat else f"cmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"
        sent = 0

        def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
            return {"id": rid, "object": obj, "created": created, "model": model, "choices": choices}

        def usage_of(tokens: int, prompted: bool) -> dict[str, int]:
            prompt = sum(prompts) if prompted else 0
            completion = tokens * len(prompts)
            return {
                "prompt_tokens": prompt,
                "total_tokens": prompt + completion,
                "completion_tokens": completion,
            }

        async def write(data: bytes) -> None:
            try:
                await response.write(data)
            except ConnectionResetError as exc:  # aiohttp's ClientConnectionResetError
                raise _ClientGone from exc

        async def emit(i: int, token: str) -> None:
            nonlocal sent
            sent = i + 1  # the engine produced it, whether or not the client still reads
            for index in range(1 if chat else len(prompts)):
                if chat:
                    if i == 0:
                        role = {"role": "assistant", "content": ""}
                        await write(
                            _sse(
                                chunk([{"index": 0, "delta": role, "logprobs": None, "finish_reason": None}])
                            )
                        )
                    choice = {
                        "index": 0,
                        "delta": {"content": token},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                else:
                    choice = {
                        "index": index,
                        "text": token,
                        "logprobs": None,
                        "finish_reason": None,
                        "stop_reason": None,
                    }
                await write(_sse(chunk([choice])))

        try:
            ttft, itls = await self._run(outcome, reply, produced, emit)
        except _ClientGone as gone:
            # A real client left: the engine sees the abort after the tokens it already streamed.
            self._record(
                Outcome.CLIENT_DROP, prompts, produced=sent, max_tokens=max_tokens, ttft=gone.ttft,
                itls=gone.itls[: max(sent - 1, 0)],
            )  # fmt: skip
            return response
        self._record(outcome, prompts, produced=produced, max_tokens=max_tokens, ttft=ttft, itls=itls)
        with contextlib.suppress(_ClientGone):
            if reply.cut:
                _cut(request)
                return response
            if reply.event is not None:
                await write(_sse(reply.event))
                if usage and self._profile.usage_after_error:
                    shown = produced if reply.after_tokens else 0
                    await write(_sse(chunk([]) | {"usage": usage_of(shown, reply.after_tokens)}))
            else:
                for index in range(1 if chat else len(prompts)):
                    final: dict[str, Any] = {"index": index, "logprobs": None, "finish_reason": "length"}
                    final |= {"delta": {}} if chat else {"text": ""}
                    final["stop_reason"] = None
                    await write(_sse(chunk([final])))
                if usage:
                    await write(_sse(chunk([]) | {"usage": usage_of(max_tokens, True)}))
            if reply.done:
                await write(_sse("[DONE]"))
            await response.write_eof()
        return response

    async def _tgi_request(self, request: web.Request) -> tuple[int, int, bool]:
        body = await _json_object(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, str) or not inputs:
            raise _ApiError(422, "`inputs` must be a non-empty string", err_type="validation")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise _ApiError(422, "`parameters` must be an object", err_type="validation")
        n = _max_tokens(params.get("max_new_tokens"), name="max_new_tokens")
        return n, estimate_tokens(inputs), bool(params.get("details"))

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        self._native("/generate")
        if self._config.mode == "sglang":
            return await self._sglang_generate(request)
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        n, prompt_tokens, details = await self._tgi_request(request)
        outcome, reply, produced = self._plan(api=Api.GENERATE, stream=False, max_tokens=n)
        if reply.body is not None and not reply.after_tokens:
            self._record(outcome, [prompt_tokens], produced=0, max_tokens=n)
            return json_reply(reply.status, reply.body)
        self._inflight += 1
        try:
            ttft, itls = await self._run(outcome, reply, produced)
        finally:
            self._inflight -= 1
        self._record(outcome, [prompt_tokens], produced=produced, max_tokens=n, ttft=ttft, itls=itls)
        if reply.cut:
            _cut(request)
            return web.Response(status=200)
        if reply.body is not None:
            return json_reply(reply.status, reply.body)
        out: dict[str, Any] = {"generated_text": "".join(fake_token(i) for i in range(n))}
        if details:
            out["details"] = {
                "finish_reason": "length",
                "generated_tokens": n,
                "seed": None,
                "prefill": [],
                "tokens": [],
            }
        return json_reply(200, out)

    async def _generate_stream(self, request: web.Request) -> web.StreamResponse:
        self._native("/generate_stream")
        n, prompt_tokens, details = await self._tgi_request(request)
        outcome, reply, produced = self._plan(api=Api.GENERATE, stream=True, max_tokens=n)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        text: list[str] = []
        complete = outcome is Outcome.OK

        async def emit(i: int, token: str) -> None:
            text.append(token)
            last = complete and i == n - 1
            event = {
                "index": i + 1,
                "token": {"id": i, "text": token, "logprob": -0.1, "special": False},
                "generated_text": "".join(text) if last else None,
                "details": {"finish_reason": "length", "generated_tokens": n, "seed": None}
                if last and details
                else None,
                "top_tokens": None,
            }
            try:
                await response.write(_sse(event))
            except ConnectionResetError as exc:
                raise _ClientGone from exc

        self._inflight += 1
        try:
            ttft, itls = await self._run(outcome, reply, produced, emit)
        except _ClientGone as gone:
            self._record(
                Outcome.CLIENT_DROP, [prompt_tokens], produced=len(text), max_tokens=n, ttft=gone.ttft,
                itls=gone.itls[: max(len(text) - 1, 0)],
            )  # fmt: skip
            return response
        finally:
            self._inflight -= 1
        self._record(outcome, [prompt_tokens], produced=produced, max_tokens=n, ttft=ttft, itls=itls)
        with contextlib.suppress(ConnectionResetError):
            if reply.cut:
                _cut(request)
                return response
            if reply.event is not None:
                await response.write(_sse(reply.event))
            await response.write_eof()
        return response

    async def _sglang_generate(self, request: web.Request) -> web.StreamResponse:
        """SGLang's native ``/generate``, minimal: ``text``, ``sampling_params.max_new_tokens``
        (default 128) and ``stream``; answers with ``text``, ``output_ids`` and the basic
        ``meta_info`` (sglang/srt/entrypoints/http_server.py:928-990,
        sglang/srt/managers/tokenizer_manager.py:2505-2575 @ 0.5.23). A stream sends the text so
        far in every chunk (``incremental_streaming_output`` is off by default) and ends with
        ``data: [DONE]``."""
        body = await _json_object(request)
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _ApiError(400, "`text` must be a non-empty string")
        params = body.get("sampling_params") or {}
        if not isinstance(params, dict):
            raise _ApiError(400, "`sampling_params` must be an object")
        n = _max_tokens(
            params.get("max_new_tokens"), name="max_new_tokens", default=SGLANG_DEFAULT_MAX_NEW_TOKENS
        )
        stream = bool(body.get("stream"))
        prompt = estimate_tokens(text)
        rid = uuid.uuid4().hex
        started = time.perf_counter()
        outcome, reply, produced = self._plan(api=Api.GENERATE, stream=stream, max_tokens=n)

        def output(tokens: int, finish_reason: dict[str, Any] | None) -> dict[str, Any]:
            meta: dict[str, Any] = {
                "id": rid,
                "finish_reason": finish_reason,
                "prompt_tokens": prompt,
                "weight_version": "default",
                "num_retractions": 0,
                "reasoning_tokens": 0,
                "completion_tokens": tokens,
                "cached_tokens": 0,
            }
            if finish_reason is not None:
                meta["e2e_latency"] = time.perf_counter() - started
            return {
                "text": "".join(fake_token(i) for i in range(tokens)),
                "output_ids": list(range(tokens)),
                "meta_info": meta,
            }

        if not stream:
            if reply.raised or (reply.body is not None and not reply.after_tokens):
                self._record(outcome, [prompt], produced=0, max_tokens=n, stream=False)
                if reply.raised:
                    raise _Raised()
                return json_reply(reply.status, reply.body)
            self._inflight += 1
            try:
                ttft, itls = await self._run(outcome, reply, produced)
            finally:
                self._inflight -= 1
            self._record(
                outcome, [prompt], produced=produced, max_tokens=n, ttft=ttft, itls=itls, stream=False
            )
            if reply.cut:
                _cut(request)
                return json_reply(reply.status, reply.body)
            if reply.body is not None:
                return json_reply(reply.status, reply.body)
            return json_reply(200, output(n, {"type": "length", "length": n}))

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        if reply.raised:
            self._record(outcome, [prompt], produced=0, max_tokens=n)
            _cut(request)
            raise _Raised(response)
        sent = 0

        async def emit(i: int, token: str) -> None:
            nonlocal sent
            sent = i + 1
            last = outcome is Outcome.OK and i == n - 1
            finish = {"type": "length", "length": n} if last else None
            try:
                await response.write(_sse(output(i + 1, finish)))
            except ConnectionResetError as exc:
                raise _ClientGone from exc

        self._inflight += 1
        try:
            ttft, itls = await self._run(outcome, reply, produced, emit)
        except _ClientGone as gone:
            self._record(
                Outcome.CLIENT_DROP, [prompt], produced=sent, max_tokens=n, ttft=gone.ttft,
                itls=gone.itls[: max(sent - 1, 0)],
            )  # fmt: skip
            return response
        finally:
            self._inflight -= 1
        self._record(outcome, [prompt], produced=produced, max_tokens=n, ttft=ttft, itls=itls)
        with contextlib.suppress(ConnectionResetError):
            if reply.cut:
                _cut(request)
                return response
            if reply.finish_reason is not None:
                await response.write(_sse(output(produced, reply.finish_reason)))
            if reply.done:
                await response.write(_sse("[DONE]"))
            await response.write_eof()
        return response


# --- command line -----------------------------------------------------------------------------------


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``python -m slogate.sim`` (reusable by the ``slogate sim serve`` command)."""
    defaults = SimConfig()
    p = parser or argparse.ArgumentParser(
        prog="python -m slogate.sim", description="Serve a simulated vLLM, TGI or SGLang model server."
    )
    p.add_argument("--mode", choices=MODES, default=defaults.mode)
    p.add_argument("--model", default=defaults.model, help="served model name")
    p.add_argument("--alias", action="append", default=[], help="extra served name (repeatable)")
    p.add_argument(
        "--model-path",
        default=None,
        help="the engine's --model path (vLLM: root in /v1/models; SGLang: /model_info)",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 inside a container)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--ttft-ms", type=float, default=defaults.ttft_ms)
    p.add_argument("--itl-ms", type=float, default=defaults.itl_ms)
    p.add_argument("--jitter", type=float, default=defaults.jitter)
    p.add_argument("--error-rate", type=float, default=defaults.error_rate, help="engine-side server faults")
    p.add_argument("--error-stage", choices=ERROR_STAGES, default=defaults.error_stage)
    p.add_argument("--overload-rate", type=float, default=defaults.overload_rate, help="load shedding")
    p.add_argument("--client-drop-rate", type=float, default=defaults.client_drop_rate)
    p.add_argument("--rps", type=float, default=defaults.rps, help="synthetic background requests/s")
    p.add_argument(
        "--streamed-share",
        type=float,
        default=defaults.streamed_share,
        help="fraction of synthetic requests sent streamed (the rest get an error status on failure)",
    )
    p.add_argument("--prompt-tokens", type=int, default=defaults.prompt_tokens)
    p.add_argument("--generation-tokens", type=int, default=defaults.generation_tokens)
    p.add_argument("--kv-cache-usage", type=float, default=defaults.kv_cache_usage)
    p.add_argument("--seed", type=int, default=None)
    for name in QUALITY_FAULTS:  # docs/quality.md: answers that are wrong on purpose
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        mode=args.mode,
        model=args.model,
        aliases=list(args.alias),
        model_path=args.model_path,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        jitter=args.jitter,
        error_rate=args.error_rate,
        error_stage=args.error_stage,
        overload_rate=args.overload_rate,
        client_drop_rate=args.client_drop_rate,
        rps=args.rps,
        streamed_share=args.streamed_share,
        prompt_tokens=args.prompt_tokens,
        generation_tokens=args.generation_tokens,
        kv_cache_usage=args.kv_cache_usage,
        seed=args.seed,
        **{name: getattr(args, name) for name in QUALITY_FAULTS},
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


__all__ = ["MAX_MODEL_LEN", "Simulator", "build_parser", "config_from_args", "main", "serve"]
