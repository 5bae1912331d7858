"""What each engine's clients see: routes, info bodies and, above all, how a failed request looks.

Owns one ``EngineProfile`` per mode: the routes only that engine serves, its ``/health``,
``/v1/models`` and ``/info`` bodies, its 404 for an unknown model and, for every ``Outcome`` x API x
streamed-or-not, the ``Reply`` (HTTP status, JSON body or SSE error event, ``[DONE]`` or not). The
HTTP server executes a ``Reply``; the Prometheus side of the same outcome is in
``slogate.sim.metrics``. The split is the engines' own: the status line is decided by the API
server, the counters by the engine, and the two disagree for streamed failures (HTTP 200, yet an
error). Everything here is pure data and functions; adding an engine (SGLang) is one more profile
here plus one more metrics class.

Facts are cited as path:line @ version: vLLM 0.33.0 (release wheel), TGI v3.3.7 (tag dfb3fbe7).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from dataclasses import dataclass
from typing import Any

from slogate.sim.config import SimConfig
from slogate.sim.sampling import Outcome

# The model length both simulated engines report (vLLM max_model_len, TGI max_total_tokens).
MAX_MODEL_LEN = 4096
TGI_MAX_INPUT_TOKENS = MAX_MODEL_LEN - 1
TGI_MAX_TOTAL_TOKENS = MAX_MODEL_LEN
# CARGO_PKG_VERSION of the router at tag v3.3.7: the workspace Cargo.toml still says 3.3.6-dev0
# (Cargo.toml:24 @ v3.3.7; router/src/server.rs:2140 puts it in /info).
TGI_ROUTER_VERSION = "3.3.6-dev0"
TGI_GIT_SHA = "dfb3fbe78e0d1d69251bd33065591c61bafdfaa8"


class Api(enum.StrEnum):
    """The generation APIs, by route. ``GENERATE`` streamed is TGI's ``/generate_stream``."""

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

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is None and self.event is None and not self.cut


def compact_json(payload: Any) -> str:
    """JSON the way Starlette's ``JSONResponse``, pydantic's ``model_dump_json`` and serde write it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class EngineProfile:
    """The client-facing behaviour of one engine. Subclasses fill in the tables; all methods pure."""

    mode = ""
    native_routes: frozenset[str] = frozenset()
    admission_per_http_request = False
    """Whether a request refused before the engine is refused once per HTTP request (vLLM's
    ``_preflight``) rather than once per engine request (TGI's permit per inner generate)."""
    """Routes only this engine serves (the OpenAI routes, /health, /ping, /v1/models and /metrics
    are common)."""

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


PROFILES: dict[str, EngineProfile] = {"vllm": VllmProfile(), "tgi": TgiProfile()}


def profile_for(mode: str) -> EngineProfile:
    """The client-facing behaviour of ``mode``. Pure."""
    try:
        return PROFILES[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}") from None
