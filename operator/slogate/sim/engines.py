"""What each engine's clients see: routes, info bodies and, above all, how a failed request looks.

Owns one ``EngineProfile`` per mode: the routes only that engine serves, its ``/health``,
``/v1/models`` and ``/info`` bodies, its 404 for an unknown model and, for every ``Outcome`` x API x
streamed-or-not, the ``Reply`` (HTTP status, JSON body or SSE error event, ``[DONE]`` or not). The
HTTP server executes a ``Reply``; the Prometheus side of the same outcome is in
``slogate.sim.metrics``. The split is the engines' own: the status line is decided by the API
server, the counters by the engine, and the two disagree for streamed failures (HTTP 200, yet an
error). Everything here is pure data and functions; an engine is one profile here plus one
metrics class.

Facts are cited as path:line @ version: vLLM 0.33.0 (release wheel), TGI v3.3.7 (tag dfb3fbe7),
SGLang 0.5.23 (release wheel, paths under ``sglang/``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from slogate.sim.config import SimConfig
from slogate.sim.sampling import Outcome

# The model length the simulated engines report (vLLM and SGLang max_model_len, TGI max_total_tokens).
MAX_MODEL_LEN = 4096
TGI_MAX_INPUT_TOKENS = MAX_MODEL_LEN - 1
TGI_MAX_TOTAL_TOKENS = MAX_MODEL_LEN
# CARGO_PKG_VERSION of the router at tag v3.3.7: the workspace Cargo.toml still says 3.3.6-dev0
# (Cargo.toml:24 @ v3.3.7; router/src/server.rs:2140 puts it in /info).
TGI_ROUTER_VERSION = "3.3.6-dev0"
TGI_GIT_SHA = "dfb3fbe78e0d1d69251bd33065591c61bafdfaa8"


class Api(enum.StrEnum):
    """The generation APIs, by route. ``GENERATE`` is TGI's ``/generate`` (streamed: its
    ``/generate_stream``) or SGLang's native ``/generate`` (streamed with ``"stream": true``)."""

    CHAT = "/v1/chat/completions"
    COMPLETIONS = "/v1/completions"
    GENERATE = "/generate"


@dataclass(frozen=True)
class Reply:
    """How one request ends on the wire. Built by an ``EngineProfile``, executed by the server."""

    status: int
    """HTTP status line. 200 for every request that started streaming, failed or not."""
    body: dict[str, Any] | None = None
    """JSON body sent instead of a result (non-streamed failures, rejections before a stream)."""
    event: str | None = None
    """Exact ``data:`` payload of the SSE error event of a streamed failure."""
    done: bool = False
    """Whether ``data: [DONE]`` ends the stream (after the error event, if any)."""
    after_tokens: bool = False
    """The failure comes after the tokens the request produced (they are generated, and streamed)."""
    cut: bool = False
    """The client is gone: nothing more is sent and the connection is closed (client drop)."""
    raised: bool = False
    """The handler raised an unhandled exception: SGLang's metrics middleware then counts no
    response (``sglang/srt/observability/http_request_metrics.py:92-105`` @ 0.5.23), and the client
    gets Starlette's plain-text 500 ``Internal Server Error`` or, in a started stream, a cut."""
    finish_reason: dict[str, Any] | None = None
    """SGLang's ``/generate`` stream: the ``meta_info.finish_reason`` of the last chunk (an abort
    with its ``status_code``) instead of an error event."""

    @property
    def ok(self) -> bool:
        return (
            self.status == 200
            and self.body is None
            and self.event is None
            and self.finish_reason is None
            and not self.cut
            and not self.raised
        )


@dataclass(frozen=True)
class Warmup:
    """A request an engine sends to itself at start-up (SGLang's warm-up), as the metrics see it."""

    probe: str
    """Route polled (GET) until it answers 200, before the request."""
    route: str
    """Route of the warm-up request (POST, not streamed)."""
    text: str
    """Its prompt."""
    max_new_tokens: int
    """Tokens it generates."""


def compact_json(payload: Any) -> str:
    """JSON the way Starlette's ``JSONResponse``, pydantic's ``model_dump_json`` and serde write it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class EngineProfile:
    """The client-facing behaviour of one engine. Subclasses fill in the tables; all methods pure."""

    mode = ""
    native_routes: frozenset[str] = frozenset()
    """Routes only this engine serves (the OpenAI routes, /health, /ping, /v1/models and /metrics
    are common)."""
    admission_per_http_request = False
    """Whether a request refused before the engine is refused once per HTTP request (vLLM's
    ``_preflight``) rather than once per engine request (TGI's permit per inner generate)."""
    usage_after_error = False
    """Whether a stream that ends in an error event still sends the usage chunk (when asked for
    with ``stream_options.include_usage``) before ``[DONE]``."""
    warmup: Warmup | None = None
    """The request the server sends itself once it is up, counted in its metrics like any other."""

    def reply(self, outcome: Outcome, *, api: Api, stream: bool) -> Reply:
        raise NotImplementedError

    def synthetic_status(self, outcome: Outcome) -> int:
        """HTTP status of a synthetic request: a streamed chat completion with ``outcome``."""
        return self.reply(outcome, api=Api.CHAT, stream=True).status

    def health(self, *, healthy: bool) -> tuple[int, dict[str, Any] | None]:
        """``/health``: status and JSON body (``None`` = empty body)."""
        raise NotImplementedError

    def models(self, cfg: SimConfig, *, now: int) -> dict[str, Any]:
        raise NotImplementedError

    def info(self, cfg: SimConfig) -> dict[str, Any] | None:
        """``/info`` body, or ``None`` when the engine has no such route."""
        return None

    def model_info(self, cfg: SimConfig) -> dict[str, Any] | None:
        """``/model_info`` body, or ``None`` when the engine has no such route."""
        return None

    def version(self) -> dict[str, Any] | None:
        """``/version`` body, or ``None`` when the engine has no such route."""
        return None

    def unknown_model(self, cfg: SimConfig, model: Any) -> tuple[int, dict[str, Any]] | None:
        """The rejection of a request naming a model the server does not serve, if the engine has one."""
        return None


def vllm_error_body(message: str, err_type: str, code: int, param: str | None = None) -> dict[str, Any]:
    """vLLM's ``ErrorResponse`` (vllm/entrypoints/serve/engine/protocol.py:79-87 @ 0.33.0)."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


class VllmProfile(EngineProfile):
    """vLLM 0.33.0's OpenAI API server (FastAPI).

    - Engine fault (``finish_reason="error"``), streamed: the 200 is already out
      (chat_completion/api_router.py:82-85); ``_raise_if_error`` raises ``GenerationError``
      (generate/base/serving.py:200-207), which the stream generator turns into an error chunk and
      still ends with ``[DONE]``: chat_completion/serving.py:947-950 then :497-507 (serialised with
      ``model_dump_json()``, compact), completion/serving.py:552-558 (``json.dumps``, with spaces).
    - Engine fault, not streamed: ``GenerationError`` reaches the exception handler
      (serve/exception_handling/handlers/vllm_error.py:69-77): HTTP 500 with the same error body.
    - Pre-stream server fault: ``_preflight`` (generate/base/serving.py:169-181) runs before the
      stream starts (chat_completion/serving.py:283, completion/serving.py:111) and raises e.g.
      ``EngineDeadError``; clients get a JSON 500 with its ``CLIENT_MESSAGE``
      (v1/engine/exceptions.py:12-22, serve/exception_handling/error_response.py:68-72).
    - Overload: with ``--max-num-queued-reqs`` set, ``check_admission`` raises ``QueueOverflowError``
      (v1/engine/async_llm.py:325-369), a ``GracefulHTTPError`` answered 503 with type
      ``HTTPStatus(503).phrase`` (exceptions.py:162-174, error_response.py:39-42), also pre-stream.
    - Client drop: nothing is sent any more; a non-streamed request ends in the empty 200 of
      ``with_cancellation`` (serve/utils/api_utils.py:97-109).
    """

    mode = "vllm"
    admission_per_http_request = True
    ENGINE_ERROR_BODY = vllm_error_body("Internal server error", "InternalServerError", 500)
    PRESTREAM_BODY = vllm_error_body(
        "The server had an error while processing your request.", "InternalServerError", 500
    )
    OVERLOAD_BODY = vllm_error_body(
        "The engine is currently busy and cannot accept new requests. "
        "Please try again later or on a different instance.",
        "Service Unavailable",
        503,
    )

    def version(self) -> dict[str, Any]:
        # The liveness route (core.desired.LIVENESS_PATHS): a constant, answered by the HTTP server
        # alone (entrypoints/serve/instrumentator/basic.py:53-56).
        return {"version": "0.33.0"}

    def reply(self, outcome: Outcome, *, api: Api, stream: bool) -> Reply:
        if api is Api.GENERATE:
            raise ValueError("vLLM serves no TGI /generate route")
        if outcome is Outcome.OK:
            return Reply(200, done=stream)
        if outcome is Outcome.ENGINE_ERROR:
            if not stream:
                return Reply(500, body=self.ENGINE_ERROR_BODY, after_tokens=True)
            event = (
                compact_json(self.ENGINE_ERROR_BODY)
                if api is Api.CHAT
                else json.dumps(self.ENGINE_ERROR_BODY)
            )
            return Reply(200, event=event, done=True, after_tokens=True)
        if outcome is Outcome.PRESTREAM_ERROR:
            return Reply(500, body=self.PRESTREAM_BODY)
        if outcome is Outcome.OVERLOAD:
            return Reply(503, body=self.OVERLOAD_BODY)
        return Reply(200, cut=True, after_tokens=True)  # CLIENT_DROP

    def health(self, *, healthy: bool) -> tuple[int, dict[str, Any] | None]:
        # serve/instrumentator/health.py:22-33: an empty 200, or an empty 503 on EngineDeadError.
        return (200, None) if healthy else (503, None)

    def models(self, cfg: SimConfig, *, now: int) -> dict[str, Any]:
        """``ModelList``: one card per served name, ``root`` = the model path, one permission
        (openai/models/serving.py:64-77, serve/engine/protocol.py:90-118 @ 0.33.0)."""
        root = cfg.model_path or cfg.model
        cards = [
            {
                "id": name,
                "object": "model",
                "created": now,
                "owned_by": "vllm",
                "root": root,
                "parent": None,
                "max_model_len": MAX_MODEL_LEN,
                "permission": [
                    {
                        "id": f"modelperm-{uuid.uuid4().int & (2**64 - 1):016x}",
                        "object": "model_permission",
                        "created": now,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in cfg.served_names
        ]
        return {"object": "list", "data": cards}

    def unknown_model(self, cfg: SimConfig, model: Any) -> tuple[int, dict[str, Any]] | None:
        """404 ``NotFoundError`` naming the served names (serve/engine/serving.py:58-84 @ 0.33.0)."""
        if not model or model in cfg.served_names:
            return None
        message = f"The model `{model}` does not exist. Valid aliases: {', '.join(cfg.served_names)}."
        return 404, vllm_error_body(message, "NotFoundError", 404, param="model")


def tgi_error_body(message: str, error_type: str) -> dict[str, Any]:
    """TGI's ``ErrorResponse`` (router/src/lib.rs:1516-1519 @ v3.3.7)."""
    return {"error": message, "error_type": error_type}


class TgiProfile(EngineProfile):
    """TGI 3.3.7's router (axum).

    - Every streaming handler returns its 200 and SSE body before generation starts
      (``generate_stream_internal`` builds a lazy stream, router/src/server.rs:508-713), so in a
      stream *every* ``InferError`` (generation, overloaded, ...) becomes an error event. The
      OpenAI routes write it as ``{"error":{"message","http_status_code":422}}`` whatever the error
      (``into_openai_event``, router/src/infer/mod.rs:445-468; server.rs:1241, :890) and end with
      ``[DONE]`` (server.rs:1244, :980-982); ``/generate_stream`` writes the plain
      ``ErrorResponse`` (server.rs:2428-2436) and no ``[DONE]``.
    - Not streamed, the error maps to a status (server.rs:2404-2425): generation 424, overloaded
      429, validation/template 422, incomplete 500.
    - Engine faults are shard errors for a whole batch (``send_errors``,
      backends/v3/src/backend.rs:540-552): ``Request failed during generation: Server error: ...``.
      A fault before any token is a failed *prefill* batch; TGI has no separate pre-engine
      server-fault class, so ``prestream`` differs from ``midstream`` only in producing no tokens.
    - Overload: no semaphore permit out of ``max_concurrent_requests`` (router/src/infer/mod.rs:111-120).
    """

    mode = "tgi"
    native_routes = frozenset({"/generate", "/generate_stream", "/info"})
    GENERATION_MESSAGE = (
        "Request failed during generation: Server error: simulated failure (slogate sim error_rate)"
    )
    OVERLOADED_MESSAGE = "Model is overloaded"  # router/src/infer/mod.rs:412-413

    def _failure(self, message: str, error_type: str, status: int, *, api: Api, stream: bool) -> Reply:
        if not stream:
            return Reply(status, body=tgi_error_body(message, error_type))
        if api is Api.GENERATE:
            return Reply(200, event=compact_json(tgi_error_body(message, error_type)))
        event = compact_json({"error": {"message": message, "http_status_code": 422}})
        return Reply(200, event=event, done=True)

    def reply(self, outcome: Outcome, *, api: Api, stream: bool) -> Reply:
        done = stream and api is not Api.GENERATE
        if outcome is Outcome.OK:
            return Reply(200, done=done)
        if outcome is Outcome.ENGINE_ERROR:
            failure = self._failure(self.GENERATION_MESSAGE, "generation", 424, api=api, stream=stream)
            return dataclasses.replace(failure, after_tokens=True)
        if outcome is Outcome.PRESTREAM_ERROR:
            return self._failure(self.GENERATION_MESSAGE, "generation", 424, api=api, stream=stream)
        if outcome is Outcome.OVERLOAD:
            return self._failure(self.OVERLOADED_MESSAGE, "overloaded", 429, api=api, stream=stream)
        return Reply(200, cut=True, after_tokens=True)  # CLIENT_DROP

    def health(self, *, healthy: bool) -> tuple[int, dict[str, Any] | None]:
        # router/src/server.rs:230-241: Ok(()) is an empty 200.
        return (200, None) if healthy else (503, tgi_error_body("unhealthy", "healthcheck"))

    def models(self, cfg: SimConfig, *, now: int) -> dict[str, Any]:
        """One entry, ``id`` = ``owned_by`` = model_id, ``created`` 0 (router/src/server.rs:176-186)."""
        del now
        entry = {"id": cfg.model, "object": "model", "created": 0, "owned_by": cfg.model}
        return {"object": "list", "data": [entry]}

    def info(self, cfg: SimConfig) -> dict[str, Any]:
        """``Info`` (router/src/lib.rs:261-298, filled at server.rs:2122-2143; no ``model_dtype``).
        Router limits are the launcher defaults (launcher/src/main.rs:598, 648, 654, 662, 883)."""
        return {
            "model_id": cfg.model,
            "model_sha": None,
            "model_pipeline_tag": None,
            "max_concurrent_requests": 128,
            "max_best_of": 2,
            "max_stop_sequences": 4,
            "max_input_tokens": TGI_MAX_INPUT_TOKENS,
            "max_total_tokens": TGI_MAX_TOTAL_TOKENS,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": TGI_ROUTER_VERSION,
            "sha": TGI_GIT_SHA,
            "docker_label": None,
        }


def sglang_error_body(message: str, err_type: str, code: int) -> dict[str, Any]:
    """SGLang's ``ErrorResponse`` as ``model_dump()`` orders it
    (sglang/srt/entrypoints/openai/protocol.py:106-111 @ 0.5.23)."""
    return {"object": "error", "message": message, "type": err_type, "param": None, "code": code}


def sglang_stream_error(message: str, status: HTTPStatus) -> str:
    """The SSE error event of an SGLang OpenAI stream whose request the scheduler aborted with a
    status: ``json.dumps`` (spaces after separators) of ``{"error": ErrorResponse}``, typed with the
    ``HTTPStatus`` name (``create_streaming_error_response``,
    sglang/srt/entrypoints/openai/serving_base.py:223-237; called with ``code.name, code.value`` at
    serving_chat.py:2566-2578 and serving_completions.py:360-372 @ 0.5.23)."""
    return json.dumps({"error": sglang_error_body(message, status.name, status.value)})


class SglangProfile(EngineProfile):
    """SGLang 0.5.23's HTTP server (FastAPI), paths under ``sglang/srt/`` @ 0.5.23.

    - The OpenAI routes kick-start the generator before the 200 goes out (a ``ValueError`` on the
      first chunk is still a JSON 400: ``entrypoints/openai/serving_chat.py:2413-2439``,
      ``serving_completions.py:197-223``); a scheduler abort arrives as a *chunk*, not an exception,
      so even an abort on the first chunk is a 200 stream.
    - Engine fault (``FINISH_ABORT`` with ``HTTPStatus.INTERNAL_SERVER_ERROR``, e.g. the decode
      batch out of memory after retracting all others, ``managers/schedule_batch.py:3511-3518``):
      streamed, the abort chunk becomes ``data: {"error": {"object": "error", ..., "type":
      "INTERNAL_SERVER_ERROR", "param": null, "code": 500}}`` (``serving_chat.py:2560-2578``,
      ``serving_completions.py:355-372``), then the usage chunk if asked for, then ``data: [DONE]``
      (``serving_chat.py:2805``, ``serving_completions.py:504``). Not streamed,
      ``_handle_abort_finish_reason`` raises ``HTTPException(500, message)``
      (``managers/tokenizer_manager.py:1891-1925``), answered by ``handle_request`` as
      ``ErrorResponse`` typed ``str(status)``, i.e. ``"500"``
      (``entrypoints/openai/serving_base.py:119-122``), and on ``/generate`` by the app's handler in
      the same shape (``entrypoints/http_server.py:578-631``).
    - Pre-stream server fault: any other exception while the OpenAI handler sets the request up is
      caught by ``handle_request``: JSON 500 ``"Internal server error: ..."`` typed
      ``InternalServerError``, streamed or not (``serving_base.py:136-142``). ``/generate`` has no
      such catch: the exception reaches Starlette (plain-text 500, or a cut stream after its 200)
      and the metrics middleware counts no response (``observability/http_request_metrics.py:92-105``).
    - Overload: only with ``--max-queued-requests`` (default unbounded,
      ``arg_groups/fields/schedule.py:35-38``) a request that finds the waiting queue full is
      aborted with 503 ``The request queue is full.`` (``managers/scheduler.py:3552-3596``): not
      streamed an ``HTTPException(503)`` (``ErrorResponse`` typed ``"503"``), streamed a 200 with a
      ``SERVICE_UNAVAILABLE`` error event and ``[DONE]``. SGLang never answers 429.
    - Client drop: nothing reaches the client. A non-streamed handler still builds the 400 of the
      ``ValueError`` "Request is disconnected from the client side (type 1|3)"
      (``managers/tokenizer_manager.py:1966-1975``, ``:2062-2072``; chat/completions
      ``create_error_response`` typed ``BadRequestError``, ``/generate`` ``{"error": {"message"}}``,
      ``entrypoints/http_server.py:982-990``, ``:2246-2250``) and sends it into the closed socket.
    - ``/generate`` streams ``data: <orjson of the output>`` and ends with ``data: [DONE]``; a
      scheduler abort is an ordinary chunk whose ``meta_info.finish_reason`` is the abort
      (``entrypoints/http_server.py:943-980``).
    """

    mode = "sglang"
    native_routes = frozenset({"/generate", "/ready", "/model_info"})
    usage_after_error = True  # serving_chat.py:2767-2799: the usage chunk follows the loop's break
    # entrypoints/http_server.py:2360-2535: poll /model_info, then POST /generate, not streamed,
    # max_new_tokens 8 (a text model, one DP rank, no PD disaggregation).
    warmup = Warmup("/model_info", "/generate", "The capital city of France is", 8)
    ENGINE_ERROR_MESSAGE = (  # managers/schedule_batch.py:3514-3517 @ 0.5.23
        "Out of memory even after retracting all other requests in the decode batch. "
        "Aborting the last request."
    )
    PRESTREAM_MESSAGE = "Internal server error: simulated failure (slogate sim error_rate)"
    QUEUE_FULL_MESSAGE = "The request queue is full."  # managers/scheduler.py:3562
    # managers/tokenizer_manager.py:2071 (a running request; "type 1" while queued, :1973). The rid
    # is not simulated: the body is written into a socket the client has closed.
    DISCONNECT_MESSAGE = "Request is disconnected from the client side (type 3). Abort request obj.rid='…'"

    def reply(self, outcome: Outcome, *, api: Api, stream: bool) -> Reply:
        native = api is Api.GENERATE
        if outcome is Outcome.OK:
            return Reply(200, done=stream)
        if outcome is Outcome.ENGINE_ERROR:
            status, message = HTTPStatus.INTERNAL_SERVER_ERROR, self.ENGINE_ERROR_MESSAGE
            if not stream:
                return Reply(500, body=sglang_error_body(message, "500", 500), after_tokens=True)
            if native:
                # FINISH_ABORT.to_json() (managers/schedule_batch.py:332-345): no err_type given.
                abort = {"type": "abort", "message": message, "status_code": 500, "err_type": None}
                return Reply(200, finish_reason=abort, done=True, after_tokens=True)
            return Reply(200, event=sglang_stream_error(message, status), done=True, after_tokens=True)
        if outcome is Outcome.PRESTREAM_ERROR:
            if native:
                return Reply(200, cut=True, raised=True) if stream else Reply(500, raised=True)
            body = sglang_error_body(self.PRESTREAM_MESSAGE, "InternalServerError", 500)
            return Reply(500, body=body)
        if outcome is Outcome.OVERLOAD:
            status, message = HTTPStatus.SERVICE_UNAVAILABLE, self.QUEUE_FULL_MESSAGE
            if not stream:
                return Reply(503, body=sglang_error_body(message, "503", 503))
            if native:
                # The finished_reason dict the scheduler builds (scheduler.py:3584-3592).
                abort = {"type": "abort", "status_code": 503, "message": message}
                return Reply(200, finish_reason=abort, done=True)
            return Reply(200, event=sglang_stream_error(message, status), done=True)
        # CLIENT_DROP
        if stream:
            return Reply(200, cut=True, after_tokens=True)
        body = (
            {"error": {"message": self.DISCONNECT_MESSAGE}}
            if native
            else sglang_error_body(self.DISCONNECT_MESSAGE, "BadRequestError", 400)
        )
        return Reply(400, body=body, cut=True, after_tokens=True)

    def health(self, *, healthy: bool) -> tuple[int, dict[str, Any] | None]:
        # entrypoints/http_server.py:721-799: an empty 200 once a 1-token probe generation got an
        # output; an empty 503 while starting, shutting down, or when the probe timed out.
        return (200, None) if healthy else (503, None)

    def models(self, cfg: SimConfig, *, now: int) -> dict[str, Any]:
        """One ``ModelCard`` for the one served name: ``owned_by`` ``sglang``, ``root`` = the
        served name, ``parent`` null, ``max_model_len`` = the context length, ``created`` now
        (entrypoints/http_server.py:1993-2022, entrypoints/openai/protocol.py:87-103 @ 0.5.23)."""
        card = {
            "id": cfg.model,
            "object": "model",
            "created": now,
            "owned_by": "sglang",
            "root": cfg.model,
            "parent": None,
            "max_model_len": MAX_MODEL_LEN,
        }
        return {"object": "list", "data": [card]}

    def model_info(self, cfg: SimConfig) -> dict[str, Any]:
        """``/model_info`` (entrypoints/http_server.py:812-850 @ 0.5.23) for a text-only model
        with the default flags. The HF config is not simulated: ``model_type`` and
        ``architectures`` are null."""
        path = cfg.model_path or cfg.model
        return {
            "model_path": path,
            "served_model_name": cfg.model,
            "tokenizer_path": path,
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": "default",  # arg_groups/fields/serving.py:172-175
            "load_format": "auto",
            "reasoning_parser": None,
            "tool_call_parser": None,
            "disaggregation_mode": "null",
            "has_image_understanding": False,
            "has_audio_understanding": False,
            "model_type": None,
            "architectures": None,
        }

    def unknown_model(self, cfg: SimConfig, model: Any) -> tuple[int, dict[str, Any]] | None:
        """SGLang serves whatever ``model`` says, except ``base:adapter``: with LoRA off (the
        default) the adapter is refused with a 400 before any generation
        (``_parse_model_parameter``, entrypoints/openai/serving_base.py:40-60;
        managers/tokenizer_manager.py:3723-3740 @ 0.5.23)."""
        if not isinstance(model, str) or ":" not in model or model == cfg.model:
            return None
        if model.startswith(f"{cfg.model}:"):
            adapter = model[len(cfg.model) + 1 :].strip()
        else:
            adapter = model.split(":", 1)[1].strip()
        if not adapter:
            return None
        message = (
            f"LoRA adapter '{adapter}' was requested, but LoRA is not enabled. "
            "Please launch the server with --enable-lora flag and preload adapters "
            "using --lora-paths or /load_lora_adapter endpoint."
        )
        return 400, sglang_error_body(message, "BadRequestError", 400)


PROFILES: dict[str, EngineProfile] = {"vllm": VllmProfile(), "tgi": TgiProfile(), "sglang": SglangProfile()}


def profile_for(mode: str) -> EngineProfile:
    """The client-facing behaviour of ``mode``. Pure."""
    try:
        return PROFILES[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}") from None
