"""What each engine's counters read for a given mix of request outcomes — written from the engines' source.

A test helper, not a test: it turns "per minute, 100 streamed chat requests of which 20 fail inside
the engine" into the counter series vLLM 0.33.0 or TGI 3.3.7 would export, following the
``failures`` facts of ``tests/fixtures/engines/<engine>-<version>.json`` (each with its source file
and line). It is written apart from ``slogate.core.engine_metrics`` on purpose: the PromQL there is
judged by promtool on these series, so a query that misreads an engine disagrees with this model.

vLLM 0.33.0 (``vllm/v1/metrics/loggers.py:1289-1297``; ``v1/engine/__init__.py:49-67``;
prometheus-fastapi-instrumentator 8.1.0 ``middleware.py``: status from ``http.response.start``,
grouped ``Nxx``, recorded when the response ends):
- every request the engine finishes increments ``vllm:request_success_total{finished_reason}``
  (``stop``/``length`` ok, ``error`` an engine fault); a request whose client went away is
  aborted without finished stats (``v1/engine/async_llm.py:804-809``, ``output_processor.py``
  ``abort_requests``), so it is in no vLLM counter but the HTTP ``2xx`` of its stream;
- a streamed request has sent HTTP 200 before generating: an engine fault mid-stream is ``2xx``
  (``chat_completion/serving.py:947-953``); a non-streamed one is ``5xx`` (``generate/base/serving.py:200-207``);
- a failure before the engine (queue full → 503, ``exceptions.py:162-176``; engine dead) is only ``5xx``;
- invalid requests are ``4xx`` and never reach the engine.

TGI 3.3.7 (``router/src/server.rs``): ``tgi_request_count`` is incremented by the OpenAI chat
handler (:1180) and again by the inner generate (:296 / :518), so twice per chat request;
``tgi_request_success`` / ``tgi_request_failure{err}`` once per generate, with ``err`` one of
``generation`` / ``incomplete`` (server faults), ``dropped`` (client gone, ``queue.rs:282``),
``overloaded`` (429), ``validation`` / ``template`` (422).

SGLang 0.5.23 (tests/fixtures/engines/sglang-0.5.23.json ``failures``;
``observability/http_request_metrics.py``: ``sglang:http_responses_total{endpoint,status_code}``
counts each response by its exact status when the response starts): ``sglang:num_requests_total``
counts what the scheduler finished — stop, length, and aborts with a status, so a failure inside a
*streamed* request is HTTP 200 and a finished request, seen nowhere as a failure; a non-streamed
engine failure is HTTP 500 and finished; an exception before the scheduler is HTTP 500 only; a full
queue is 503 (non-streamed) and not finished; invalid requests are 400.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mix:
    """Requests per minute by outcome, all on ``/v1/chat/completions``."""

    ok_streamed: int = 0
    ok_plain: int = 0
    fault_streamed: int = 0
    """Engine fault after HTTP 200 was sent (vLLM: SSE error event; TGI: err=generation in-stream)."""
    fault_plain: int = 0
    """Engine fault on a non-streamed request (vLLM 500; TGI 424 err=generation)."""
    pre_engine: int = 0
    """vLLM: 5xx before the engine (queue full, engine dead). TGI: not modelled (see incomplete)."""
    incomplete: int = 0
    """TGI: the stream ended without a final token (err=incomplete, 500)."""
    client_drop: int = 0
    """The client went away mid-stream (vLLM finished_reason=abort; TGI err=dropped)."""
    overloaded: int = 0
    """Shed for load: TGI 429 err=overloaded. vLLM answers 503 before the engine (like pre_engine)."""
    invalid: int = 0
    """Rejected as invalid: vLLM 4xx before the engine; TGI 422 err=validation."""

    @property
    def accepted(self) -> int:
        """Requests that count as requests on every engine: all but the invalid ones."""
        return (
            self.ok_streamed
            + self.ok_plain
            + self.fault_streamed
            + self.fault_plain
            + self.pre_engine
            + self.incomplete
            + self.client_drop
            + self.overloaded
        )

    def requests(self, engine: str) -> int:
        """The requests the engine's counters can see: vLLM never counts a client disconnect."""
        return self.accepted - (self.client_drop if engine in ("vllm", "sglang") else 0)

    def faults(self, engine: str) -> int:
        """Server faults the engine's metrics can show: what slogate must count as errors (vLLM's 503
        on overload included). SGLang shows no failure of a streamed request."""
        if engine == "sglang":
            return self.fault_plain + self.pre_engine
        base = self.fault_streamed + self.fault_plain + self.pre_engine + self.incomplete
        return base + (self.overloaded if engine == "vllm" else 0)


def _counter(series: str, per_minute: int, minutes: int) -> dict[str, str]:
    return {"series": series, "values": f"0+{per_minute}x{minutes}"}


def vllm_series(labels: str, mix: Mix, minutes: int) -> list[dict[str, str]]:
    """promtool ``input_series`` for vLLM 0.33.0 serving ``mix`` per minute (see the module docstring)."""
    eng = f'{labels},model_name="m",engine="0"'
    reasons = {
        "stop": mix.ok_streamed + mix.ok_plain,
        "length": 0,
        "abort": 0,  # engine-initiated aborts only; a client disconnect records no finished stats
        "error": mix.fault_streamed + mix.fault_plain,
        "repetition": 0,
    }
    chat = f'{labels},handler="/v1/chat/completions",method="POST"'
    statuses = {
        "2xx": mix.ok_streamed + mix.ok_plain + mix.fault_streamed + mix.client_drop,
        "4xx": mix.invalid,
        "5xx": mix.fault_plain + mix.pre_engine + mix.overloaded,
    }
    out = [
        _counter(f'vllm:request_success_total{{{eng},finished_reason="{r}"}}', n, minutes)
        for r, n in reasons.items()
    ]
    out += [_counter(f'http_requests_total{{{chat},status="{s}"}}', n, minutes) for s, n in statuses.items()]
    # Not a generation route: must never count, however often it fails.
    out.append(
        _counter(
            f'http_requests_total{{{labels},handler="/v1/models",method="GET",status="5xx"}}', 500, minutes
        )
    )
    # Every finished request is observed in the e2e histogram (loggers.py:1293).
    finished = sum(reasons.values())
    out.append(_counter(f"vllm:e2e_request_latency_seconds_count{{{eng}}}", finished, minutes))
    return out


def tgi_series(labels: str, mix: Mix, minutes: int) -> list[dict[str, str]]:
    """promtool ``input_series`` for TGI 3.3.7 serving ``mix`` per minute on its OpenAI chat route."""
    generates = mix.accepted + mix.invalid
    failures = {
        "generation": mix.fault_streamed + mix.fault_plain,
        "incomplete": mix.incomplete,
        "dropped": mix.client_drop,
        "overloaded": mix.overloaded,
        "validation": mix.invalid,
    }
    out = [
        _counter(f"tgi_request_count{{{labels}}}", 2 * generates, minutes),
        _counter(f"tgi_request_success{{{labels}}}", mix.ok_streamed + mix.ok_plain, minutes),
    ]
    # The metrics crate registers a labelled counter at its first increment: absent until then.
    out += [
        _counter(f'tgi_request_failure{{{labels},err="{e}"}}', n, minutes) for e, n in failures.items() if n
    ]
    return out


def sglang_series(labels: str, mix: Mix, minutes: int) -> list[dict[str, str]]:
    """promtool ``input_series`` for SGLang 0.5.23 serving ``mix`` per minute (client drops and
    TGI's ``incomplete`` are not modelled for SGLang)."""
    assert not mix.client_drop and not mix.incomplete
    eng = f'{labels},model_name="m",engine_type="unified"'
    finished = {
        "true": mix.ok_streamed + mix.fault_streamed,
        "false": mix.ok_plain + mix.fault_plain,
    }
    out = [
        _counter(f'sglang:num_requests_total{{{eng},is_streaming="{k}"}}', n, minutes)
        for k, n in finished.items()
    ]
    chat = f'{labels},endpoint="/v1/chat/completions",method="POST"'
    codes = {
        "200": mix.ok_streamed + mix.ok_plain + mix.fault_streamed,
        "400": mix.invalid,
        "500": mix.fault_plain + mix.pre_engine,
        "503": mix.overloaded,
    }
    out += [
        _counter(f'sglang:http_responses_total{{{chat},status_code="{c}"}}', n, minutes)
        for c, n in codes.items()
        if n
    ]
    out.append(
        _counter(
            f'sglang:http_responses_total{{{labels},endpoint="/v1/models",method="GET",status_code="500"}}',
            500,
            minutes,
        )
    )
    return out


SERIES = {"vllm": vllm_series, "tgi": tgi_series, "sglang": sglang_series}
