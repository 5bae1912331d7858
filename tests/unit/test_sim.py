"""Tests of slogate.sim: distributions, config validation, the HTTP API and the exposed metrics.

Server tests start real simulators on port 0 with ``asyncio.run`` (no pytest-asyncio); latencies
are set to a few milliseconds so the whole module runs in a few seconds. The fault tests drive N
requests per engine and fault (synthetic ticks with a seed, and real HTTP requests) and assert the
exact counters each engine's source says it keeps: vLLM 0.33.0 and TGI 3.3.7 (docs/simulator.md).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from slogate.sim import ConfigError, Outcome, SimConfig, Simulator, apply_update, run_load
from slogate.sim import loadgen as loadgen_mod
from slogate.sim.engines import Api, profile_for
from slogate.sim.metrics import (
    TgiMetrics,
    VllmMetrics,
    build_1_2_5_buckets,
    sglang_token_latencies,
    tgi_duration_buckets,
    tgi_linear_buckets,
)
from slogate.sim.sampling import (
    RequestSample,
    draw_outcome,
    due_requests,
    expected_load,
    lognormal_around,
    percentile,
    sample_request,
    split_weights,
)
from slogate.sim.server import main as sim_main

FAST = {"ttft_ms": 5.0, "itl_ms": 1.0, "jitter": 0.0}

# Copied from vllm/v1/metrics/loggers.py (PrometheusStatLogger), independently of slogate.sim.metrics.
VLLM_TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                     7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]  # fmt: skip
VLLM_ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                    10.0, 20.0, 40.0, 80.0]  # fmt: skip
VLLM_REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                                50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0]  # fmt: skip


def run_with_sim(
    config: SimConfig,
    body: Callable[[Simulator, aiohttp.ClientSession], Awaitable[Any]],
    *,
    tick_s: float = 0.05,
) -> Any:
    async def go() -> Any:
        sim = Simulator(config, host="127.0.0.1", port=0, tick_s=tick_s)
        await sim.start()
        try:
            async with aiohttp.ClientSession() as session:
                return await body(sim, session)
        finally:
            await sim.stop()

    return asyncio.run(go())


def families(text: str) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(text: str, family: str, sample: str, **labels: str) -> float:
    """The value of one sample (labels must match exactly, ignoring ``le`` unless given)."""
    fam = families(text)[family]
    hits = [
        s.value
        for s in fam.samples
        if s.name == sample
        and all(s.labels.get(k) == v for k, v in labels.items())
        and ("le" in labels or "le" not in s.labels)
    ]
    assert len(hits) == 1, (family, sample, labels, fam.samples[:5])
    return hits[0]


def bucket_bounds(text: str, family: str) -> list[str]:
    fam = families(text)[family]
    return [s.labels["le"] for s in fam.samples if s.name == family + "_bucket"]


async def sse_events(resp: aiohttp.ClientResponse) -> list[str]:
    raw = (await resp.read()).decode()
    assert raw.endswith("\n\n"), raw[-50:]
    return raw[:-2].split("\n\n")


# --- pure functions ---------------------------------------------------------------------------------


def test_lognormal_around_matches_mean_and_jitter() -> None:
    rng = random.Random(7)
    draws = [lognormal_around(0.2, 0.3, rng) for _ in range(20000)]
    mean = sum(draws) / len(draws)
    std = (sum((d - mean) ** 2 for d in draws) / len(draws)) ** 0.5
    assert mean == pytest.approx(0.2, rel=0.02)
    assert std / mean == pytest.approx(0.3, rel=0.1)
    assert min(draws) > 0
    assert lognormal_around(0.2, 0.0, rng) == 0.2
    assert lognormal_around(0.0, 0.5, rng) == 0.0


def test_sampling_is_seedable_and_honours_config() -> None:
    cfg = SimConfig(ttft_ms=100, itl_ms=10, generation_tokens=50, error_rate=0.0)
    a = sample_request(cfg, random.Random(3))
    b = sample_request(cfg, random.Random(3))
    assert a == b
    assert a.ok and a.generation_tokens >= 1
    assert sum(w for _, w in a.itls) == a.generation_tokens - 1
    assert a.e2e_s == pytest.approx(a.ttft_s + a.decode_s)
    assert a.queue_s + a.prefill_s == pytest.approx(a.ttft_s)

    fixed = sample_request(SimConfig(**FAST), random.Random(1), max_tokens=9)
    assert (fixed.generation_tokens, fixed.finish_reason) == (9, "length")
    assert fixed.ttft_s == pytest.approx(0.005) and all(v == pytest.approx(0.001) for v, _ in fixed.itls)

    failing = SimConfig(error_rate=1.0)
    assert not any(sample_request(failing, random.Random(i)).ok for i in range(20))
    rng = random.Random(5)
    half = [sample_request(SimConfig(error_rate=0.5), rng).ok for _ in range(2000)]
    assert 0.45 < sum(half) / len(half) < 0.55


def test_due_requests_carries_fractions_and_split_weights() -> None:
    carry, total = 0.0, 0
    for _ in range(8):
        n, carry = due_requests(carry, 2.0, 0.25)
        total += n
    assert total == 4
    assert due_requests(0.7, 0.0, 1.0) == (0, 0.0)
    assert split_weights(10, 4) == [3, 3, 2, 2]
    assert split_weights(2, 4) == [1, 1]
    assert split_weights(0, 4) == []


def test_expected_load_follows_littles_law() -> None:
    cfg = SimConfig(rps=10, ttft_ms=200, itl_ms=10, generation_tokens=101)
    running, waiting = expected_load(cfg)
    assert running == pytest.approx(10 * (0.15 + 1.0))
    assert waiting == pytest.approx(10 * 0.05)
    assert expected_load(SimConfig()) == (0.0, 0.0)


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def test_bucket_layouts_match_the_engines() -> None:
    assert build_1_2_5_buckets(4096) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]
    dur = tgi_duration_buckets()
    assert len(dur) == 35
    assert dur[0] == pytest.approx(0.00015) and dur[-1] == pytest.approx(0.0001 * 1.5**35)
    lin = tgi_linear_buckets(4096)
    assert len(lin) == 100 and lin[0] == pytest.approx(40.96) and lin[-1] == pytest.approx(4096)


def test_config_validation() -> None:
    cfg = SimConfig()
    assert cfg.mode == "vllm" and cfg.jitter == 0.2 and cfg.healthy is True
    updated = apply_update(cfg, {"ttft_ms": 900, "error_rate": 0.1, "prompt_tokens": 100.0})
    assert (updated.ttft_ms, updated.error_rate, updated.prompt_tokens) == (900.0, 0.1, 100)
    assert isinstance(updated.ttft_ms, float) and isinstance(updated.prompt_tokens, int)
    assert cfg.ttft_ms == 150.0  # the original is untouched
    bad: list[tuple[dict[str, Any], str]] = [
        ({"error_rate": 1.5}, "error_rate"),
        ({"ttft_ms": "fast"}, "ttft_ms"),
        ({"ttft_ms": -1}, "ttft_ms"),
        ({"rps": True}, "rps"),
        ({"healthy": "yes"}, "healthy"),
        ({"mode": "llamacpp"}, "mode"),
        ({"prompt_tokens": 0}, "prompt_tokens"),
        ({"generation_tokens": 1.5}, "generation_tokens"),
        ({"aliases": "x"}, "aliases"),
        ({"kv_cache_usage": 2}, "kv_cache_usage"),
        ({"model": ""}, "model"),
        ({"bogus": 1}, "bogus"),
        ({"error_stage": "later"}, "error_stage"),
        ({"overload_rate": -0.1}, "overload_rate"),
        ({"client_drop_rate": "x"}, "client_drop_rate"),
        ({"error_rate": 0.5, "overload_rate": 0.3, "client_drop_rate": 0.3}, "at most 1"),
        ({"model_path": ""}, "model_path"),
    ]
    for change, field in bad:
        with pytest.raises(ConfigError, match=field):
            apply_update(cfg, change)
    with pytest.raises(ConfigError):
        SimConfig(jitter=float("nan"))
    faults = apply_update(cfg, {"error_stage": "prestream", "overload_rate": 0.2, "client_drop_rate": 0.3})
    assert (faults.error_stage, faults.overload_rate, faults.client_drop_rate) == ("prestream", 0.2, 0.3)
    assert (cfg.error_stage, cfg.overload_rate, cfg.client_drop_rate) == ("midstream", 0.0, 0.0)
    assert apply_update(cfg, {"overload_rate": 1, "error_rate": 0}).overload_rate == 1.0


# --- HTTP API -----------------------------------------------------------------------------------------


def test_models_health_and_info() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        async with s.get(sim.url + "/v1/models") as r:
            assert r.status == 200
            doc = await r.json()
        # vLLM: one card per served name, root = the --model path, one permission entry.
        assert doc["object"] == "list"
        assert [m["id"] for m in doc["data"]] == ["llama", "llama-alias"]
        for card in doc["data"]:
            assert (card["object"], card["owned_by"], card["root"]) == ("model", "vllm", "meta/llama-3")
            assert card["max_model_len"] == 4096 and card["parent"] is None
            [perm] = card["permission"]
            assert perm["object"] == "model_permission" and perm["id"].startswith("modelperm-")
            assert (perm["allow_sampling"], perm["allow_fine_tuning"], perm["organization"]) == (
                True,
                False,
                "*",
            )
        # vLLM's /health and /ping are empty 200s, and empty 503s when the engine is dead.
        for path in ("/health", "/ping"):
            async with s.get(sim.url + path) as r:
                assert (r.status, await r.text()) == (200, "")
        sim.update(healthy=False)
        async with s.get(sim.url + "/health") as r:
            assert (r.status, await r.text()) == (503, "")
        async with s.get(sim.url + "/info") as r:
            assert r.status == 404  # a TGI route
        async with s.post(sim.url + "/generate", json={"inputs": "x"}) as r:
            assert r.status == 404

    run_with_sim(SimConfig(model="llama", aliases=["llama-alias"], model_path="meta/llama-3", **FAST), body)


def test_tgi_models_info_and_health() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        async with s.get(sim.url + "/v1/models") as r:
            doc = await r.json()
        # router/src/server.rs:176-186: one entry, id = owned_by = model_id, created 0; no aliases.
        assert doc == {
            "object": "list",
            "data": [{"id": "bigcode", "object": "model", "created": 0, "owned_by": "bigcode"}],
        }
        async with s.get(sim.url + "/info") as r:
            info = await r.json()
        assert "model_dtype" not in info
        assert (info["model_id"], info["router"], info["version"]) == (
            "bigcode",
            "text-generation-router",
            "3.3.6-dev0",
        )
        assert (info["max_concurrent_requests"], info["max_input_tokens"], info["max_total_tokens"]) == (
            128,
            4095,
            4096,
        )
        async with s.get(sim.url + "/health") as r:
            assert (r.status, await r.text()) == (200, "")
        sim.update(healthy=False)
        for path in ("/health", "/ping"):
            async with s.get(sim.url + path) as r:
                assert r.status == 503
                assert await r.json() == {"error": "unhealthy", "error_type": "healthcheck"}

    run_with_sim(SimConfig(mode="tgi", model="bigcode", aliases=["ignored"], **FAST), body)


def test_chat_completion_non_streaming_is_served_and_recorded() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> str:
        payload = {
            "model": "llama-alias",
            "messages": [{"role": "user", "content": "x" * 400}],
            "max_tokens": 7,
        }
        async with s.post(sim.url + "/v1/chat/completions", json=payload) as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["object"] == "chat.completion" and doc["model"] == "llama-alias"
        choice = doc["choices"][0]
        assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
        assert len(choice["message"]["content"].split()) == 7
        assert doc["usage"] == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
        async with s.post(sim.url + "/v1/completions", json={"model": "llama", "prompt": "hi"}) as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["object"] == "text_completion" and doc["usage"]["completion_tokens"] == 16
        async with s.get(sim.url + "/metrics") as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            return await r.text()

    text = run_with_sim(SimConfig(model="llama", aliases=["llama-alias"], **FAST), body)
    lv = {"model_name": "llama", "engine": "0"}
    assert (
        value(text, "vllm:request_success", "vllm:request_success_total", finished_reason="length", **lv) == 2
    )
    assert value(text, "vllm:generation_tokens", "vllm:generation_tokens_total", **lv) == 7 + 16
    assert value(text, "vllm:prompt_tokens", "vllm:prompt_tokens_total", **lv) == 100 + 1
    ttft_count = value(
        text, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count", **lv
    )
    ttft_sum = value(text, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_sum", **lv)
    assert ttft_count == 2 and ttft_sum >= 2 * 0.005
    itl = value(text, "vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_count", **lv)
    assert itl == 6 + 15
    http = {"handler": "/v1/chat/completions", "method": "POST", "status": "2xx"}
    assert value(text, "http_requests", "http_requests_total", **http) == 1


def test_streaming_chat_and_completion_sse_framing() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        payload = {
            "model": "llama",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        started = loop.time()
        async with s.post(sim.url + "/v1/chat/completions", json=payload) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/event-stream")
            first = await r.content.readline()
            assert loop.time() - started >= 0.05  # the configured TTFT was slept
            assert first.startswith(b"data: {")
            raw = (first + await r.content.read()).decode()
        assert raw.endswith("\n\n")
        events = raw[:-2].split("\n\n")
        assert all(e.startswith("data: ") for e in events), events
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(e[len("data: ") :]) for e in events[:-1]]
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert len({c["id"] for c in chunks}) == 1
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        tokens = [
            c["choices"][0]["delta"]["content"]
            for c in chunks
            if c["choices"] and c["choices"][0]["delta"].get("content")
        ]
        assert len(tokens) == 5
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5

        payload = {"model": "llama", "prompt": "hi", "max_tokens": 3, "stream": True}
        async with s.post(sim.url + "/v1/completions", json=payload) as r:
            assert r.status == 200
            events = await sse_events(r)
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(e[len("data: ") :]) for e in events[:-1]]
        assert [c["object"] for c in chunks] == ["text_completion"] * 4
        assert [bool(c["choices"][0]["text"]) for c in chunks] == [True, True, True, False]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"

    run_with_sim(SimConfig(model="llama", ttft_ms=50, itl_ms=1, jitter=0.0), body)


def test_request_errors_use_openai_error_bodies() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        msgs = [{"role": "user", "content": "hi"}]
        async with s.post(sim.url + "/v1/chat/completions", json={"model": "nope", "messages": msgs}) as r:
            assert r.status == 404
            err = (await r.json())["error"]
        assert err == {
            "message": "The model `nope` does not exist. Valid aliases: llama.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
        async with s.post(sim.url + "/v1/chat/completions", data=b"{not json") as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == 400
        async with s.post(sim.url + "/v1/chat/completions", json={"messages": msgs, "max_tokens": 0}) as r:
            assert r.status == 400
            assert "max_tokens" in (await r.json())["error"]["message"]

    run_with_sim(SimConfig(model="llama", **FAST), body)


def test_admin_config_get_update_and_validation() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        async with s.get(sim.url + "/admin/config") as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["model"] == "llama" and doc["mode"] == "vllm" and doc["error_rate"] == 0.0
        async with s.post(sim.url + "/admin/config", json={"ttft_ms": 900, "error_rate": 0.1}) as r:
            assert r.status == 200
            doc = await r.json()
        assert (doc["ttft_ms"], doc["error_rate"]) == (900.0, 0.1)
        assert (sim.config.ttft_ms, sim.config.error_rate) == (900.0, 0.1)
        for bad, needle in (
            ({"error_rate": 2}, "error_rate"),
            ({"healthy": 1}, "healthy"),
            ({"ttft": 5}, "unknown"),
            ([1, 2], "object"),
        ):
            async with s.post(sim.url + "/admin/config", json=bad) as r:
                assert r.status == 400, bad
                assert needle in (await r.json())["error"]
        async with s.post(sim.url + "/admin/config", data=b"{") as r:
            assert r.status == 400
        assert sim.config.error_rate == 0.1  # rejected updates change nothing
        assert sim.update(error_rate=0.0).error_rate == 0.0
        with pytest.raises(ConfigError):
            sim.update(jitter=-1)

    run_with_sim(SimConfig(model="llama", **FAST), body)


def test_tgi_native_routes_and_error_injection() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> str:
        async with s.post(
            sim.url + "/generate",
            json={"inputs": "hello", "parameters": {"max_new_tokens": 4, "details": True}},
        ) as r:
            assert r.status == 200
            doc = await r.json()
        assert len(doc["generated_text"].split()) == 4 and doc["details"]["generated_tokens"] == 4
        async with s.post(
            sim.url + "/generate_stream", json={"inputs": "hello", "parameters": {"max_new_tokens": 3}}
        ) as r:
            events = await sse_events(r)
        docs = [json.loads(e[len("data:") :]) for e in events]
        assert [d["index"] for d in docs] == [1, 2, 3]
        assert docs[-1]["generated_text"] and docs[0]["generated_text"] is None
        async with s.post(sim.url + "/generate", json={"parameters": {}}) as r:
            assert r.status == 422
            assert (await r.json())["error_type"] == "validation"
        sim.update(error_rate=1.0)
        async with s.post(sim.url + "/generate", json={"inputs": "hello"}) as r:
            assert r.status == 424
            assert (await r.json())["error_type"] == "generation"
        async with s.post(
            sim.url + "/v1/chat/completions",
            json={"model": "tgi", "messages": [{"role": "user", "content": "hi"}]},
        ) as r:
            assert r.status == 424  # GenerationError -> FAILED_DEPENDENCY (server.rs:2407)
        async with s.get(sim.url + "/metrics") as r:
            return await r.text()

    text = run_with_sim(SimConfig(mode="tgi", model="bigcode", **FAST), body)
    # /generate and /generate_stream count once each (inner generate); the 422 never got that far;
    # the chat request counts twice (handler + inner generate).
    assert value(text, "tgi_request_count", "tgi_request_count_total") == 1 + 1 + 1 + 2
    assert value(text, "tgi_request_success", "tgi_request_success_total") == 2
    assert value(text, "tgi_request_failure", "tgi_request_failure_total", err="generation") == 2
    assert value(text, "tgi_request_generated_tokens", "tgi_request_generated_tokens_sum") == 7


# --- metric names, types and labels ------------------------------------------------------------------

VLLM_EXPECTED = {
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:request_time_per_output_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_inference_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
    "vllm:request_num_preemptions": "histogram",
    "vllm:request_prefill_kv_computed_tokens": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:request_max_num_generation_tokens": "histogram",
    "vllm:request_params_n": "histogram",
    "vllm:request_params_max_tokens": "histogram",
    "vllm:iteration_tokens_total": "histogram",
    "vllm:request_success": "counter",
    "vllm:admission_rejections": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:prompt_tokens_by_source": "counter",
    "vllm:prompt_tokens_cached": "counter",
    "vllm:prompt_tokens_cached_by_source": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:num_preemptions": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
    "vllm:external_prefix_cache_queries": "counter",
    "vllm:external_prefix_cache_hits": "counter",
    "vllm:mm_cache_queries": "counter",
    "vllm:mm_cache_hits": "counter",
    "vllm:estimated_flops_per_gpu": "counter",
    "vllm:estimated_read_bytes_per_gpu": "counter",
    "vllm:estimated_write_bytes_per_gpu": "counter",
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_waiting_by_reason": "gauge",
    "vllm:engine_sleep_state": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "http_requests": "counter",
    "http_request_size_bytes": "summary",
    "http_response_size_bytes": "summary",
    "http_request_duration_seconds": "histogram",
    "http_request_duration_highr_seconds": "histogram",
}
# Names the simulator once exported that vLLM 0.33.0 does not have (grep of the wheel: no match).
VLLM_ABSENT = ("vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds")

TGI_EXPECTED = {
    "tgi_request_count": "counter",
    "tgi_request_success": "counter",
    "tgi_request_failure": "counter",
    "tgi_request_duration": "histogram",
    "tgi_request_validation_duration": "histogram",
    "tgi_request_queue_duration": "histogram",
    "tgi_request_inference_duration": "histogram",
    "tgi_request_mean_time_per_token_duration": "histogram",
    "tgi_batch_inference_duration": "histogram",
    "tgi_request_input_length": "histogram",
    "tgi_request_generated_tokens": "histogram",
    "tgi_request_max_new_tokens": "histogram",
    "tgi_request_skipped_tokens": "summary",
    "tgi_batch_next_size": "histogram",
    "tgi_batch_inference_count": "counter",
    "tgi_batch_inference_success": "counter",
    "tgi_batch_inference_failure": "counter",
    "tgi_batch_forward_duration": "histogram",
    "tgi_batch_decode_duration": "histogram",
    "tgi_batch_filter_duration": "histogram",
    "tgi_queue_size": "gauge",
    "tgi_batch_current_size": "gauge",
    "tgi_batch_current_max_tokens": "gauge",
}


def test_vllm_metrics_exposition() -> None:
    sim = Simulator(
        SimConfig(model="llama", rps=50, error_rate=0.2, error_stage="prestream", kv_cache_usage=0.42, seed=1)
    )
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    fams = families(text)
    assert set(fams) == set(VLLM_EXPECTED), set(fams) ^ set(VLLM_EXPECTED)
    for name, kind in VLLM_EXPECTED.items():
        assert fams[name].type == kind, (name, fams[name].type)
    for name in VLLM_ABSENT:
        assert name not in text
    # Counter names are exactly the engine's, with a single _total suffix.
    assert "# TYPE vllm:request_success_total counter" in text
    assert "# TYPE http_requests_total counter" in text
    assert "_total_total" not in text
    for name, fam in fams.items():
        for s in fam.samples:
            if name.startswith("vllm:") and name != "vllm:admission_rejections":
                assert {"model_name", "engine"} <= set(s.labels), (name, s.labels)
                assert (s.labels["model_name"], s.labels["engine"]) == ("llama", "0")
    reasons = {s.labels["finished_reason"] for s in fams["vllm:request_success"].samples}
    assert reasons == {"stop", "length", "abort", "error", "repetition"}
    # vllm:admission_rejections has no engine label (loggers.py:847-858).
    assert {tuple(sorted(s.labels)) for s in fams["vllm:admission_rejections"].samples} == {
        ("model_name", "reason")
    }
    assert value(text, "vllm:engine_sleep_state", "vllm:engine_sleep_state", sleep_state="awake") == 1
    assert value(text, "vllm:request_params_n", "vllm:request_params_n_bucket", le="1.0") == value(
        text, "vllm:request_params_n", "vllm:request_params_n_count"
    )
    assert {tuple(sorted(s.labels)) for s in fams["http_requests"].samples} == {
        ("handler", "method", "status")
    }
    assert set(fams["http_request_duration_highr_seconds"].samples[0].labels) == {"le"}

    def floats(bounds: list[str]) -> list[float]:
        return [float(b) for b in bounds]

    assert floats(bucket_bounds(text, "vllm:time_to_first_token_seconds")) == [
        *VLLM_TTFT_BUCKETS,
        float("inf"),
    ]
    assert floats(bucket_bounds(text, "vllm:inter_token_latency_seconds")) == [
        *VLLM_ITL_BUCKETS,
        float("inf"),
    ]
    assert floats(bucket_bounds(text, "vllm:e2e_request_latency_seconds")) == [
        *VLLM_REQUEST_LATENCY_BUCKETS,
        float("inf"),
    ]
    assert value(text, "vllm:kv_cache_usage_perc", "vllm:kv_cache_usage_perc") == 0.42
    ok = sum(s.value for s in fams["vllm:request_success"].samples)
    failed = value(
        text,
        "http_requests",
        "http_requests_total",
        status="5xx",
        handler="/v1/chat/completions",
        method="POST",
    )
    assert ok + failed == 50 and 2 <= failed <= 20
    assert value(text, "vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count") == ok
    # Nothing leaked into the process-global registry.
    assert not any(m.name.startswith(("vllm:", "tgi_")) for m in prometheus_client.REGISTRY.collect())


def test_tgi_metrics_exposition() -> None:
    sim = Simulator(SimConfig(mode="tgi", model="bigcode", rps=40, error_rate=0.25, seed=2))
    assert sim.metrics_text() == ""  # families appear on first use, as with Rust's exporter
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    fams = families(text)
    assert set(fams) == set(TGI_EXPECTED), set(fams) ^ set(TGI_EXPECTED)
    for name, kind in TGI_EXPECTED.items():
        assert fams[name].type == kind, (name, fams[name].type)
    assert not any(name.startswith("vllm:") or name.startswith("http_") for name in fams)
    # Rust's metrics exporter writes counters without a _total suffix; so must we.
    lines = text.splitlines()
    assert not any(
        line.split(" ")[0].split("{")[0].endswith("_total") for line in lines if line and line[0] != "#"
    )
    assert "# TYPE tgi_request_count counter" in lines
    assert any(line.startswith("tgi_request_count ") for line in lines)
    assert any(line.startswith('tgi_request_failure{err="generation"} ') for line in lines)
    count = value(text, "tgi_request_count", "tgi_request_count_total")
    success = value(text, "tgi_request_success", "tgi_request_success_total")
    failure = value(text, "tgi_request_failure", "tgi_request_failure_total", err="generation")
    assert count == 2 * 40 and success + failure == 40 and failure >= 3  # synthetic = streamed chat
    assert value(text, "tgi_request_duration", "tgi_request_duration_count") == success
    bounds = [float(b) for b in bucket_bounds(text, "tgi_request_duration")]
    assert bounds == pytest.approx([*tgi_duration_buckets(), float("inf")])
    assert len(bucket_bounds(text, "tgi_request_input_length")) == 101
    for fam in fams.values():
        for s in fam.samples:
            assert set(s.labels) <= {"le", "err", "method", "quantile"}, (fam.name, s.labels)
    assert {s.labels["method"] for s in fams["tgi_batch_inference_duration"].samples} == {"prefill", "decode"}
    assert len(bucket_bounds(text, "tgi_batch_next_size")) == 1025
    assert "# HELP tgi_request_count Total number of requests" in lines
    assert not any(line.startswith("# HELP tgi_request_failure") for line in lines)  # not described
    quantiles = [
        s.labels["quantile"] for s in fams["tgi_request_skipped_tokens"].samples if "quantile" in s.labels
    ]
    assert quantiles == ["0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"]


def test_mode_change_rebuilds_metrics() -> None:
    sim = Simulator(SimConfig(model="llama", rps=10))
    sim.synthetic_tick(1.0)
    assert "vllm:request_success_total" in sim.metrics_text()
    sim.update(mode="tgi")
    text = sim.metrics_text()
    assert text == ""  # a freshly started TGI exports nothing (tests/fixtures/engines/tgi-3.3.7.json)
    sim.synthetic_tick(0.5)
    assert (
        "tgi_request_count 10\n" in sim.metrics_text()
    )  # 5 streamed chats, counted twice; Rust number format


# --- synthetic traffic ---------------------------------------------------------------------------------


def test_synthetic_rps_drives_metrics_within_a_second() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> tuple[str, str, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with s.get(sim.url + "/metrics") as r:
            before = await r.text()
        await asyncio.sleep(0.6)
        async with s.get(sim.url + "/metrics") as r:
            after = await r.text()
        return before, after, loop.time() - started

    before, after, elapsed = run_with_sim(
        SimConfig(model="llama", rps=200, ttft_ms=80, itl_ms=20, seed=4), body
    )
    lv = {"model_name": "llama", "engine": "0"}

    def successes(text: str) -> float:
        return sum(s.value for s in families(text)["vllm:request_success"].samples)

    done = successes(after)
    # ~0.6 s at 200 rps; the upper bound follows the wall clock in case the event loop was slow.
    assert successes(before) < 60 <= done <= 200 * (elapsed + 0.1), (done, elapsed)
    ttft_count = value(
        after, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count", **lv
    )
    assert ttft_count == done
    mean_ttft = (
        value(after, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_sum") / done
    )
    assert mean_ttft == pytest.approx(0.08, rel=0.25)
    # Little's law: 200 rps * (0.06 s prefill + 127 * 0.02 s decode) = 520 running on average.
    running = value(after, "vllm:num_requests_running", "vllm:num_requests_running", **lv)
    assert 400 <= running <= 650
    assert (
        value(
            after,
            "http_requests",
            "http_requests_total",
            status="2xx",
            handler="/v1/chat/completions",
            method="POST",
        )
        == done
    )


def test_ttft_injection_shifts_observed_ttft() -> None:
    def mean_delta(before: str, after: str, family: str) -> float:
        def get(text: str, suffix: str) -> float:
            return value(text, family, family + suffix)

        return (get(after, "_sum") - get(before, "_sum")) / (get(after, "_count") - get(before, "_count"))

    sim = Simulator(SimConfig(model="llama", rps=100, ttft_ms=50, jitter=0.1, seed=9))
    sim.synthetic_tick(1.0)
    base = sim.metrics_text()
    sim.update(ttft_ms=2000)
    sim.synthetic_tick(1.0)
    slow = sim.metrics_text()
    assert mean_delta(base, slow, "vllm:time_to_first_token_seconds") == pytest.approx(2.0, rel=0.1)
    # Nothing that arrived after the injection lands in the sub-second buckets.
    fast_before = value(
        base, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_bucket", le="1.0"
    )
    fast_after = value(
        slow, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_bucket", le="1.0"
    )
    assert fast_before == fast_after == 100

    tgi = Simulator(SimConfig(mode="tgi", rps=100, ttft_ms=50, jitter=0.1, seed=9))
    tgi.synthetic_tick(1.0)
    base = tgi.metrics_text()
    tgi.update(ttft_ms=2000)
    tgi.synthetic_tick(1.0)
    slow = tgi.metrics_text()
    # TGI has no TTFT histogram; queue + prefill is where the injected TTFT shows.
    assert mean_delta(base, slow, "tgi_request_queue_duration") == pytest.approx(0.5, rel=0.15)
    assert mean_delta(base, slow, "tgi_request_duration") > 2.0


def test_simulators_in_one_process_are_isolated() -> None:
    async def go() -> tuple[str, str]:
        busy = Simulator(SimConfig(model="a", rps=100), tick_s=0.05)
        idle = Simulator(SimConfig(model="b"), tick_s=0.05)
        await busy.start()
        await idle.start()
        try:
            assert busy.port != idle.port
            await asyncio.sleep(0.3)
            return busy.metrics_text(), idle.metrics_text()
        finally:
            await busy.stop()
            await idle.stop()

    busy_text, idle_text = asyncio.run(go())
    assert value(busy_text, "vllm:prompt_tokens", "vllm:prompt_tokens_total") > 0
    assert value(idle_text, "vllm:prompt_tokens", "vllm:prompt_tokens_total", model_name="b") == 0
    assert 'model_name="a"' not in idle_text


# --- load generator and command line --------------------------------------------------------------------


def test_run_load_against_simulator() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        report = await run_load(sim.url, rps=40, duration_s=0.25, model="llama", max_tokens=4)
        assert (report.sent, report.ok, report.errors) == (10, 10, 0)
        assert report.statuses == {"200": 10}
        assert report.ttft_p50_s is not None and report.ttft_p50_s >= 0.02
        assert report.ttft_p95_s is not None and report.ttft_p95_s >= report.ttft_p50_s
        plain = await run_load(
            sim.url + "/v1/chat/completions", rps=40, duration_s=0.1, model="llama", stream=False
        )
        assert (plain.sent, plain.ok) == (4, 4)
        sim.update(error_rate=1.0)
        # Mid-stream engine faults: HTTP 200 and [DONE], yet every request failed.
        failing = await run_load(sim.url, rps=40, duration_s=0.1, model="llama")
        assert (failing.ok, failing.errors, failing.stream_errors, failing.http_errors) == (0, 4, 4, 0)
        assert failing.statuses == {"200": 4} and failing.ttft_p50_s is None
        plain = await run_load(sim.url, rps=40, duration_s=0.1, model="llama", stream=False)
        assert (plain.http_errors, plain.statuses) == (4, {"500": 4})

    run_with_sim(SimConfig(model="llama", ttft_ms=20, itl_ms=1, jitter=0.0), body)


def test_loadgen_refuses_non_loopback_and_unbounded_runs() -> None:
    for url in ("http://10.0.0.1:8000", "http://example.com", "ftp://127.0.0.1"):
        with pytest.raises(ValueError):
            loadgen_mod.loopback_endpoint(url)
    assert loadgen_mod.loopback_endpoint("http://[::1]:8000/") == "http://[::1]:8000/v1/chat/completions"
    with pytest.raises(ValueError):
        asyncio.run(run_load("http://127.0.0.1:1", rps=10_000, duration_s=1, model="m"))
    with pytest.raises(ValueError):
        asyncio.run(run_load("http://127.0.0.1:1", rps=1, duration_s=10_000, model="m"))
    assert loadgen_mod.main(["--url", "http://10.1.2.3", "--model", "m"]) == 2


def test_cli_rejects_bad_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["--error-rate", "2", "--port", "0"]) == 2
    assert "error_rate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sim_main(["--mode", "llamacpp"])


# --- faults, per engine and stage ---------------------------------------------------------------------

N_SYNTHETIC = 1000
CHAT = {"handler": "/v1/chat/completions", "method": "POST"}
LV = {"model_name": "llama", "engine": "0"}


def drive_synthetic(config: SimConfig, n: int = N_SYNTHETIC) -> tuple[str, collections.Counter[Outcome]]:
    """``n`` seeded synthetic requests; returns the exposition and the outcome of each request,
    as the engine saw it (a spy on ``metrics.record``), to compare the counters with exactly."""
    sim = Simulator(apply_update(config, {"model": "llama", "rps": float(n), "seed": 11}))
    seen: collections.Counter[Outcome] = collections.Counter()
    record = sim.metrics.record

    def spy(sample: RequestSample) -> None:
        assert sample.outcome is not None
        seen[sample.outcome] += 1
        record(sample)

    sim.metrics.record = spy  # type: ignore[method-assign]
    assert sim.synthetic_tick(1.0) == n
    return sim.metrics_text(), seen


def successes(text: str, reason: str) -> float:
    return value(text, "vllm:request_success", "vllm:request_success_total", finished_reason=reason, **LV)


def http_count(text: str, status: str) -> float:
    fam = families(text)["http_requests"]
    hits = [s.value for s in fam.samples if s.labels == {**CHAT, "status": status}]
    return hits[0] if hits else 0.0


def tgi_failures(text: str) -> dict[str, float]:
    fam = families(text).get("tgi_request_failure")
    return {s.labels["err"]: s.value for s in fam.samples} if fam else {}


def tgi_count(text: str, name: str = "tgi_request_count") -> float:
    fam = families(text).get(name)
    return fam.samples[0].value if fam else 0.0


def test_outcome_draw_partitions_one_uniform() -> None:
    cfg = SimConfig(error_rate=0.2, overload_rate=0.1, client_drop_rate=0.3)
    rng = random.Random(5)
    counts = collections.Counter(draw_outcome(cfg, rng) for _ in range(20000))
    assert counts[Outcome.ENGINE_ERROR] / 20000 == pytest.approx(0.2, abs=0.01)
    assert counts[Outcome.OVERLOAD] / 20000 == pytest.approx(0.1, abs=0.01)
    assert counts[Outcome.CLIENT_DROP] / 20000 == pytest.approx(0.3, abs=0.01)
    assert Outcome.PRESTREAM_ERROR not in counts
    assert draw_outcome(SimConfig(error_rate=1.0, error_stage="prestream"), rng) is Outcome.PRESTREAM_ERROR
    # The old error draw is kept: the first uniform decides, so seeded failure patterns stay.
    assert (draw_outcome(SimConfig(error_rate=0.3), random.Random(9)) is Outcome.OK) == (
        random.Random(9).random() >= 0.3
    )
    engine_error = sample_request(SimConfig(error_rate=1.0, **FAST), random.Random(2), max_tokens=10)
    assert 1 <= engine_error.generation_tokens <= 9 and engine_error.finish_reason == "error"
    assert sum(w for _, w in engine_error.itls) == engine_error.generation_tokens  # + the failing step
    with pytest.raises(ValueError, match="contradicts"):
        RequestSample(
            ok=True, prompt_tokens=1, generation_tokens=1, ttft_s=0, itls=(), outcome=Outcome.OVERLOAD
        )


def test_vllm_midstream_errors_are_2xx_and_finished_reason_error() -> None:
    text, seen = drive_synthetic(SimConfig(error_rate=0.2))
    errors = seen[Outcome.ENGINE_ERROR]
    assert set(seen) == {Outcome.OK, Outcome.ENGINE_ERROR}
    assert 0.15 * N_SYNTHETIC < errors < 0.25 * N_SYNTHETIC
    # The 200 was sent before the engine failed: every request is 2xx, none 5xx.
    assert (http_count(text, "2xx"), http_count(text, "5xx")) == (N_SYNTHETIC, 0)
    assert successes(text, "error") == errors
    assert successes(text, "stop") + successes(text, "length") == N_SYNTHETIC - errors
    # Failed requests are observed in the per-request histograms like every finished one.
    for fam in (
        "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds",
        "vllm:request_decode_time_seconds",
    ):
        assert value(text, fam, fam + "_count", **LV) == N_SYNTHETIC
    assert (
        value(text, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count")
        == N_SYNTHETIC
    )


def test_vllm_prestream_errors_are_5xx_and_invisible_to_the_engine() -> None:
    text, seen = drive_synthetic(SimConfig(error_rate=0.2, error_stage="prestream"))
    errors = seen[Outcome.PRESTREAM_ERROR]
    assert 0.15 * N_SYNTHETIC < errors < 0.25 * N_SYNTHETIC
    assert (http_count(text, "2xx"), http_count(text, "5xx")) == (N_SYNTHETIC - errors, errors)
    assert successes(text, "error") == 0
    total = sum(successes(text, r) for r in ("stop", "length", "abort", "error", "repetition"))
    assert total == N_SYNTHETIC - errors
    assert value(text, "vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count") == total


def test_vllm_overload_is_503_and_an_admission_rejection() -> None:
    text, seen = drive_synthetic(SimConfig(overload_rate=0.1))
    shed = seen[Outcome.OVERLOAD]
    assert shed > 50
    assert http_count(text, "5xx") == shed
    rejected = value(
        text, "vllm:admission_rejections", "vllm:admission_rejections_total", reason="max_num_queued_reqs"
    )
    assert rejected == shed
    assert sum(successes(text, r) for r in ("stop", "length", "error")) == N_SYNTHETIC - shed


def test_vllm_client_drops_count_tokens_but_no_finished_request() -> None:
    text, seen = drive_synthetic(SimConfig(client_drop_rate=0.3))
    drops = seen[Outcome.CLIENT_DROP]
    assert drops > 200
    assert http_count(text, "2xx") == N_SYNTHETIC and http_count(text, "5xx") == 0
    # AsyncLLM.generate aborts; OutputProcessor.abort_requests drops the state without stats.
    assert successes(text, "abort") == 0 and successes(text, "error") == 0
    finished = successes(text, "stop") + successes(text, "length")
    assert finished == N_SYNTHETIC - drops
    assert (
        value(text, "vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count") == finished
    )
    # ... but the tokens the aborted requests got are counted (per-iteration stats).
    generated = value(text, "vllm:generation_tokens", "vllm:generation_tokens_total")
    histogram = value(text, "vllm:request_generation_tokens", "vllm:request_generation_tokens_sum")
    assert generated > histogram


@pytest.mark.parametrize(
    "config, outcome, err",
    [
        pytest.param(SimConfig(error_rate=0.2), Outcome.ENGINE_ERROR, "generation", id="midstream"),
        pytest.param(
            SimConfig(error_rate=0.2, error_stage="prestream"),
            Outcome.PRESTREAM_ERROR,
            "generation",
            id="prestream",
        ),
        pytest.param(SimConfig(overload_rate=0.2), Outcome.OVERLOAD, "overloaded", id="overload"),
        pytest.param(SimConfig(client_drop_rate=0.2), Outcome.CLIENT_DROP, "dropped", id="client-drop"),
    ],
)
def test_tgi_synthetic_chat_counts_twice_and_fails_once(
    config: SimConfig, outcome: Outcome, err: str
) -> None:
    text, seen = drive_synthetic(apply_update(config, {"mode": "tgi"}))
    failed = seen[outcome]
    assert set(seen) == {Outcome.OK, outcome} and 0.15 * N_SYNTHETIC < failed < 0.25 * N_SYNTHETIC
    # Each synthetic request is a streamed /v1/chat/completions: the handler and the inner
    # generate both increment tgi_request_count; success/failure count once.
    assert tgi_count(text) == 2 * N_SYNTHETIC
    assert tgi_count(text, "tgi_request_success") == N_SYNTHETIC - failed
    assert tgi_failures(text) == {err: failed}
    assert value(text, "tgi_request_duration", "tgi_request_duration_count") == N_SYNTHETIC - failed
    inputs = value(text, "tgi_request_input_length", "tgi_request_input_length_count")
    assert inputs == N_SYNTHETIC - (failed if outcome is Outcome.OVERLOAD else 0)  # shed before validation
    prefill_failures = families(text).get("tgi_batch_inference_failure")
    by_method = {s.labels["method"]: s.value for s in prefill_failures.samples} if prefill_failures else {}
    expected = {
        Outcome.ENGINE_ERROR: {"decode": failed},
        Outcome.PRESTREAM_ERROR: {"prefill": failed},
    }.get(outcome, {})
    assert by_method == expected


def test_tgi_synthetic_mix() -> None:
    text, seen = drive_synthetic(
        SimConfig(mode="tgi", error_rate=0.1, overload_rate=0.1, client_drop_rate=0.1)
    )
    assert tgi_count(text) == 2 * N_SYNTHETIC
    assert tgi_failures(text) == {
        "generation": seen[Outcome.ENGINE_ERROR],
        "overloaded": seen[Outcome.OVERLOAD],
        "dropped": seen[Outcome.CLIENT_DROP],
    }
    assert tgi_count(text, "tgi_request_success") + sum(tgi_failures(text).values()) == N_SYNTHETIC


def test_no_longer_existing_vllm_series() -> None:
    sim = Simulator(SimConfig(rps=20, error_rate=0.1, seed=1))
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    for name in VLLM_ABSENT:
        assert name not in text
    assert "vllm:kv_cache_usage_perc" in text and "vllm:inter_token_latency_seconds_bucket" in text


# Real HTTP requests: each fault at rate 1, streamed and not, on both OpenAI routes.

MSGS = [{"role": "user", "content": "hi"}]
VLLM_ENGINE_ERROR = {
    "error": {"message": "Internal server error", "type": "InternalServerError", "param": None, "code": 500}
}
TGI_GENERATION = "Request failed during generation: Server error: simulated failure (slogate sim error_rate)"


async def post(s: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> tuple[int | None, str]:
    """Status and raw body of one request; ``None`` when the server cut the connection."""
    try:
        async with s.post(url, json=payload) as r:
            return r.status, (await r.read()).decode()
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
        return None, ""


def events(raw: str) -> list[str]:
    assert raw.endswith("\n\n"), raw[-80:]
    return [e.removeprefix("data: ") for e in raw[:-2].split("\n\n")]


def run_requests(
    config: SimConfig, requests: list[tuple[str, dict[str, Any]]]
) -> tuple[list[tuple[int | None, str]], str]:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> tuple[list[tuple[int | None, str]], str]:
        replies = [await post(s, sim.url + path, payload) for path, payload in requests]
        await asyncio.sleep(0.02)
        async with s.get(sim.url + "/metrics") as r:
            return replies, await r.text()

    return run_with_sim(apply_update(config, {"model": "llama", **FAST}), body)


def openai_requests(n: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """``n`` requests per (route, stream): chat and completion, streamed and not."""
    out = []
    for path, extra in (("/v1/chat/completions", {"messages": MSGS}), ("/v1/completions", {"prompt": "hi"})):
        for stream in (False, True):
            out += [(path, {"model": "llama", "max_tokens": 6, "stream": stream, **extra})] * n
    return out


def test_vllm_real_midstream_errors() -> None:
    replies, text = run_requests(SimConfig(error_rate=1.0), openai_requests())
    chat_plain, chat_stream, cmpl_plain, cmpl_stream = (replies[i : i + 3] for i in range(0, 12, 3))
    for status, raw in chat_plain + cmpl_plain:
        assert (status, json.loads(raw)) == (500, VLLM_ENGINE_ERROR)
    for group, error in (
        (
            chat_stream,
            '{"error":{"message":"Internal server error","type":"InternalServerError","param":null,"code":500}}',
        ),
        # completion/serving.py:552-558 serialises with json.dumps: spaces after separators.
        (
            cmpl_stream,
            '{"error": {"message": "Internal server error", "type": "InternalServerError", "param": null, "code": 500}}',
        ),
    ):
        for status, raw in group:
            evs = events(raw)
            assert status == 200 and evs[-2:] == [error, "[DONE]"]
            chunks = [json.loads(e)["choices"][0] for e in evs[:-2]]
            tokens = [c for c in chunks if c.get("text") or c.get("delta", {}).get("content")]
            assert 1 <= len(tokens) <= 5  # some of the 6 tokens, then the error
            assert all(c["finish_reason"] is None for c in chunks)
    assert http_count(text, "5xx") == 3
    assert (
        value(
            text,
            "http_requests",
            "http_requests_total",
            handler="/v1/completions",
            method="POST",
            status="5xx",
        )
        == 3
    )
    assert http_count(text, "2xx") == 3
    assert (
        value(
            text,
            "http_requests",
            "http_requests_total",
            handler="/v1/completions",
            method="POST",
            status="2xx",
        )
        == 3
    )
    assert successes(text, "error") == 12
    assert value(text, "vllm:e2e_request_latency_seconds", "vllm:e2e_request_latency_seconds_count") == 12


@pytest.mark.parametrize(
    "config, status, message, rejections",
    [
        pytest.param(
            SimConfig(error_rate=1.0, error_stage="prestream"),
            500,
            "The server had an error while processing your request.",
            0,
            id="prestream",
        ),
        pytest.param(
            SimConfig(overload_rate=1.0),
            503,
            "The engine is currently busy and cannot accept new requests. Please try again later or on a different instance.",
            12,
            id="overload",
        ),
    ],
)
def test_vllm_real_rejections_before_the_stream(
    config: SimConfig, status: int, message: str, rejections: int
) -> None:
    replies, text = run_requests(config, openai_requests())
    for got, raw in replies:  # streamed or not: rejected before the StreamingResponse exists
        error = json.loads(raw)["error"]
        assert (got, error["message"], error["code"]) == (status, message, status)
    assert http_count(text, "5xx") == 6 and http_count(text, "2xx") == 0
    assert sum(successes(text, r) for r in ("stop", "length", "abort", "error")) == 0
    assert value(text, "vllm:prompt_tokens", "vllm:prompt_tokens_total") == 0
    assert (
        value(
            text, "vllm:admission_rejections", "vllm:admission_rejections_total", reason="max_num_queued_reqs"
        )
        == rejections
    )


def test_vllm_real_client_drops() -> None:
    replies, text = run_requests(SimConfig(client_drop_rate=1.0), openai_requests(2))
    assert all(status is None for status, _ in replies)  # the connection was cut
    assert http_count(text, "2xx") == 4 and http_count(text, "5xx") == 0  # with_cancellation: empty 200
    assert sum(successes(text, r) for r in ("stop", "length", "abort", "error")) == 0


def test_tgi_real_requests_count_per_route() -> None:
    requests = [
        ("/v1/chat/completions", {"messages": MSGS, "max_tokens": 3}),
        ("/v1/chat/completions", {"messages": MSGS, "max_tokens": 3, "stream": True}),
        ("/v1/completions", {"prompt": ["a", "b"], "max_tokens": 3}),  # 1 + one per prompt
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 3}}),
        ("/generate_stream", {"inputs": "x", "parameters": {"max_new_tokens": 3}}),
    ]
    replies, text = run_requests(SimConfig(mode="tgi"), requests)
    assert [status for status, _ in replies] == [200] * 5
    assert len(json.loads(replies[2][1])["choices"]) == 2
    assert events(replies[1][1])[-1] == "[DONE]" and "[DONE]" not in replies[4][1]
    assert tgi_count(text) == 2 + 2 + 3 + 1 + 1
    assert tgi_count(text, "tgi_request_success") == 1 + 1 + 2 + 1 + 1
    assert tgi_failures(text) == {}


def test_tgi_real_generation_errors() -> None:
    requests = [
        *openai_requests(1),
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 6}}),
        ("/generate_stream", {"inputs": "x", "parameters": {"max_new_tokens": 6}}),
    ]
    for stage in ("midstream", "prestream"):
        replies, text = run_requests(SimConfig(mode="tgi", error_rate=1.0, error_stage=stage), requests)
        openai_event = json.dumps(
            {"error": {"message": TGI_GENERATION, "http_status_code": 422}}, separators=(",", ":")
        )
        native = {"error": TGI_GENERATION, "error_type": "generation"}
        (s1, chat), (s2, chat_stream), (s3, cmpl), (s4, cmpl_stream), (s5, gen), (s6, gen_stream) = replies
        assert (s1, json.loads(chat)) == (424, native) and (s3, json.loads(cmpl)) == (424, native)
        assert (s5, json.loads(gen)) == (424, native)
        for status, raw in ((s2, chat_stream), (s4, cmpl_stream)):
            evs = events(raw)
            assert status == 200 and evs[-2:] == [openai_event, "[DONE]"]
            assert (len(evs) > 2) == (stage == "midstream")  # tokens only mid-stream
        gen_events = events(gen_stream)
        assert s6 == 200 and json.loads(gen_events[-1]) == native and "[DONE]" not in gen_stream
        assert tgi_count(text) == 2 * 4 + 2
        assert tgi_failures(text) == {"generation": 6}
        assert tgi_count(text, "tgi_request_success") == 0
        method = "decode" if stage == "midstream" else "prefill"
        assert (
            value(text, "tgi_batch_inference_failure", "tgi_batch_inference_failure_total", method=method)
            == 6
        )


def test_tgi_real_overload_and_drops() -> None:
    requests = [
        ("/v1/chat/completions", {"messages": MSGS, "max_tokens": 4, "stream": st}) for st in (False, True)
    ]
    replies, text = run_requests(SimConfig(mode="tgi", overload_rate=1.0), requests)
    assert replies[0] == (429, '{"error":"Model is overloaded","error_type":"overloaded"}')
    assert replies[1][0] == 200 and events(replies[1][1]) == [
        '{"error":{"message":"Model is overloaded","http_status_code":422}}',
        "[DONE]",
    ]
    assert tgi_count(text) == 4 and tgi_failures(text) == {"overloaded": 2}
    assert tgi_count(text, "tgi_request_input_length") == 0  # no family: shed before validation

    replies, text = run_requests(SimConfig(mode="tgi", client_drop_rate=1.0), requests)
    assert [status for status, _ in replies] == [None, None]
    assert tgi_count(text) == 4 and tgi_failures(text) == {"dropped": 2}  # and not "generation"


def test_a_real_client_disconnect_is_a_drop() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> str:
        payload = {"messages": MSGS, "max_tokens": 200, "stream": True}
        async with s.post(sim.url + "/v1/chat/completions", json=payload) as r:
            for _ in range(3):
                await r.content.readline()
            r.close()  # the client goes away mid-stream
        for _ in range(100):
            await asyncio.sleep(0.02)
            if tgi_failures(sim.metrics_text()):
                break
        return sim.metrics_text()

    text = run_with_sim(SimConfig(mode="tgi", model="llama", ttft_ms=5, itl_ms=5, jitter=0.0), body)
    assert tgi_failures(text) == {"dropped": 1} and tgi_count(text) == 2


def test_loadgen_counts_client_visible_outcomes() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        # Seeded mix of every fault on vLLM: mid-stream 500s are stream errors, 503s HTTP errors,
        # cut connections transport errors.
        report = await run_load(sim.url, rps=100, duration_s=0.5, model="llama", max_tokens=4)
        assert report.sent == 50
        assert report.ok + report.http_errors + report.stream_errors + report.transport_errors == 50
        assert report.errors == 50 - report.ok
        assert min(report.http_errors, report.stream_errors, report.transport_errors, report.ok) > 0
        assert report.statuses.get("503") == report.http_errors and "500" not in report.statuses
        # Streams that failed or were cut had their 200 first.
        assert report.statuses["200"] == report.ok + report.stream_errors + report.transport_errors

    run_with_sim(
        SimConfig(
            model="llama",
            ttft_ms=5,
            itl_ms=1,
            jitter=0.0,
            seed=4,
            error_rate=0.3,
            overload_rate=0.2,
            client_drop_rate=0.2,
        ),
        body,
    )


def test_engine_profiles_answer_every_outcome() -> None:
    for mode in ("vllm", "tgi", "sglang"):
        profile = profile_for(mode)
        apis = (Api.CHAT, Api.COMPLETIONS) if mode == "vllm" else (Api.CHAT, Api.COMPLETIONS, Api.GENERATE)
        for outcome in Outcome:
            for api in apis:
                for stream in (False, True):
                    reply = profile.reply(outcome, api=api, stream=stream)
                    assert reply.ok == (outcome is Outcome.OK)
                    if reply.status != 200:
                        # a JSON body, or (SGLang's /generate) an exception Starlette answers
                        assert (reply.body is not None) != reply.raised and reply.event is None
        # TGI never answers a stream with anything but 200 (the SSE body starts before generation).
        if mode == "tgi":
            assert {profile.synthetic_status(o) for o in Outcome} == {200}
        else:
            assert {o: profile.synthetic_status(o) for o in Outcome} == {
                Outcome.OK: 200,
                Outcome.ENGINE_ERROR: 200,
                Outcome.PRESTREAM_ERROR: 500,
                # vLLM refuses before the stream; SGLang's queue-full abort is a chunk in a 200
                Outcome.OVERLOAD: 503 if mode == "vllm" else 200,
                Outcome.CLIENT_DROP: 200,
            }
    with pytest.raises(ValueError):
        profile_for("llamacpp")


def test_metrics_classes_accept_ok_flag_samples() -> None:
    # Callers that only know ok/failed (tests elsewhere) keep working: ok=False is an engine fault.
    tgi = TgiMetrics()
    tgi.record(RequestSample(ok=False, prompt_tokens=10, generation_tokens=5, ttft_s=0.1, itls=((0.02, 5),)))
    assert tgi.failure.value("generation") == 1 and tgi.count.value() == 1
    vllm = VllmMetrics("m")
    vllm.record(RequestSample(ok=False, prompt_tokens=10, generation_tokens=5, ttft_s=0.1, itls=((0.02, 5),)))
    assert vllm.success.value("m", "0", "error") == 1


def test_dev_sim_set_accepts_the_fault_knobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from slogate.dev.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["dev", "--dir", str(tmp_path), "sim", "set", "-l", "app=x", "--error-rate", "0.1",
         "--error-stage", "prestream", "--overload-rate", "0.05", "--client-drop-rate", "0.2"]
    )  # fmt: skip
    assert args.func(args) == 0
    [rule] = json.loads((tmp_path / "sim-rules.json").read_text())
    assert rule["config"] == {
        "error_rate": 0.1,
        "error_stage": "prestream",
        "overload_rate": 0.05,
        "client_drop_rate": 0.2,
    }
    apply_update(SimConfig(), rule["config"])  # what the bridge will apply is valid
    with pytest.raises(SystemExit):
        parser.parse_args(["dev", "sim", "set", "-l", "a=b", "--error-stage", "sometimes"])
    capsys.readouterr()


def test_cli_accepts_fault_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    from slogate.sim.server import build_parser, config_from_args

    cfg = config_from_args(
        build_parser().parse_args(["--error-rate", "0.1", "--error-stage", "prestream", "--overload-rate", "0.2",
                                   "--client-drop-rate", "0.3", "--model-path", "org/m"])
    )  # fmt: skip
    assert (cfg.error_stage, cfg.overload_rate, cfg.client_drop_rate, cfg.model_path) == (
        "prestream",
        0.2,
        0.3,
        "org/m",
    )
    assert sim_main(["--error-rate", "0.6", "--overload-rate", "0.6", "--port", "0"]) == 2
    assert "at most 1" in capsys.readouterr().err


def test_tgi_numbers_are_written_like_rust() -> None:
    sim = Simulator(SimConfig(mode="tgi", rps=20, seed=3))
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    # metrics-exporter-prometheus writes f64 with Rust's Display: no ".0", no exponent.
    assert 'tgi_request_generated_tokens_bucket{le="1024"}' in text
    assert 'tgi_request_duration_bucket{le="0.00015000000000000001"}' in text
    assert 'tgi_batch_next_size_bucket{le="1"}' in text
    assert "tgi_request_count 40\n" in text


# --- SGLang 0.5.23 ---------------------------------------------------------------------------------
#
# Expected values come from SGLang's source (paths under sglang/srt/ @ 0.5.23) and from the engine's
# contract fixture, read here independently of slogate.sim.

SGLANG_FIXTURE = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "engines" / "sglang-0.5.23.json").read_text()
)
SG = {"model_name": "llama", "engine_type": "unified"}
SG_SCHED = {**SG, "tp_rank": "0", "pp_rank": "0", "moe_ep_rank": "0"}
SG_EXPECTED = {
    "sglang:num_running_reqs": "gauge",
    "sglang:num_queue_reqs": "gauge",
    "sglang:num_grammar_queue_reqs": "gauge",
    "sglang:cache_hit_rate": "gauge",
    "sglang:token_usage": "gauge",
    "sglang:full_token_usage": "gauge",
    "sglang:queue_time_seconds": "histogram",
    "sglang:time_to_first_token_seconds": "histogram",
    "sglang:inter_token_latency_seconds": "histogram",
    "sglang:request_time_per_output_token_seconds": "histogram",
    "sglang:e2e_request_latency_seconds": "histogram",
    "sglang:prompt_tokens_histogram": "histogram",
    "sglang:uncached_prompt_tokens_histogram": "histogram",
    "sglang:generation_tokens_histogram": "histogram",
    "sglang:num_requests": "counter",
    "sglang:prompt_tokens": "counter",
    "sglang:generation_tokens": "counter",
    "sglang:num_aborted_requests": "counter",
    "sglang:http_requests": "counter",
    "sglang:http_responses": "counter",
    "sglang:http_requests_active": "gauge",
}
# managers/schedule_batch.py:3514-3517; serving_base.py:223-237 (json.dumps: spaces after separators)
SG_OOM = (
    "Out of memory even after retracting all other requests in the decode batch. Aborting the last request."
)
SG_ENGINE_EVENT = (
    '{"error": {"object": "error", "message": "' + SG_OOM + '", "type": "INTERNAL_SERVER_ERROR", '
    '"param": null, "code": 500}}'
)
SG_QUEUE_FULL_EVENT = (
    '{"error": {"object": "error", "message": "The request queue is full.", "type": "SERVICE_UNAVAILABLE", '
    '"param": null, "code": 503}}'
)


def sg_value(text: str, family: str, sample: str | None = None, **labels: str) -> float:
    """A sample's value, or 0 when the family or the series does not exist (SGLang registers a
    labelled series at its first use)."""
    fam = families(text).get(family)
    if fam is None:
        return 0.0
    name = sample or (family + "_total" if fam.type == "counter" else family)
    hits = [
        s.value
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()) and "le" not in s.labels
    ]
    assert len(hits) <= 1, (family, labels, hits)
    return hits[0] if hits else 0.0


def sg_requests(text: str, stream: str = "true") -> float:
    return sg_value(text, "sglang:num_requests", is_streaming=stream, **SG)


def sg_http(text: str, status: str, endpoint: str = "/v1/chat/completions", method: str = "POST") -> float:
    return sg_value(text, "sglang:http_responses", endpoint=endpoint, method=method, status_code=status)


def sg_count(text: str, family: str, **labels: str) -> float:
    return sg_value(text, family, family + "_count", **labels)


def sg_drive(config: SimConfig, n: int = N_SYNTHETIC) -> tuple[str, list[RequestSample]]:
    """``n`` seeded synthetic SGLang requests; the exposition and every sample the engine got."""
    sim = Simulator(apply_update(config, {"mode": "sglang", "model": "llama", "rps": float(n), "seed": 11}))
    samples: list[RequestSample] = []
    record = sim.metrics.record

    def spy(sample: RequestSample) -> None:
        samples.append(sample)
        record(sample)

    sim.metrics.record = spy  # type: ignore[method-assign]
    assert sim.synthetic_tick(1.0) == n
    return sim.metrics_text(), samples


def test_sglang_exposition_matches_the_engine() -> None:
    cfg = SimConfig(
        mode="sglang",
        model="llama",
        rps=50,
        error_rate=0.2,
        client_drop_rate=0.1,
        kv_cache_usage=0.42,
        seed=1,
    )
    sim = Simulator(cfg)
    # A family appears with its first series (MultiProcessCollector reads only written values):
    # nothing aborted yet, so no sglang:num_aborted_requests at all, not even # HELP.
    assert "sglang:num_aborted_requests" not in sim.metrics_text()
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    fams = families(text)
    assert set(fams) == set(SG_EXPECTED), set(fams) ^ set(SG_EXPECTED)
    fixture = {f["name"]: f for f in SGLANG_FIXTURE["families"]}
    for name, kind in SG_EXPECTED.items():
        want = fixture[name]
        assert fams[name].type == kind == want["type"], name
        labels = {k for s in fams[name].samples for k in s.labels} - {"le"}
        assert labels == set(want["labels"]), (name, labels)
        if kind == "histogram":
            bounds = [float(b) for b in bucket_bounds(text, name) if b != "+Inf"]
            # some bucket lists repeat per series; the first series' bounds are the table
            assert bounds[: len(want["buckets"])] == [float(b) for b in want["buckets"]], name
    # prometheus_client multiprocess mode: counters end in _total, no _created, gauges without pid.
    assert "# TYPE sglang:num_requests_total counter" in text
    assert "_created" not in text and "pid=" not in text and "_total_total" not in text
    # Scheduler series: TP rank 0 only; engine_type "unified" everywhere.
    assert {s.labels["tp_rank"] for s in fams["sglang:num_running_reqs"].samples} == {"0"}
    assert {
        s.labels["engine_type"] for f in fams.values() for s in f.samples if "engine_type" in s.labels
    } == {"unified"}
    assert sg_value(text, "sglang:token_usage", **SG_SCHED) == 0.42
    # Synthetic traffic is streamed chat: 50 requests, every one answered 200.
    assert sg_http(text, "200") == 50 and 30 < sg_requests(text) <= 50
    assert sg_value(text, "sglang:http_requests", endpoint="/v1/chat/completions", method="POST") == 50
    assert not any(m.name.startswith("sglang:") for m in prometheus_client.REGISTRY.collect())


def test_sglang_start_up_warm_up_is_counted() -> None:
    # http_server.py:2360-2535: GET /model_info, then POST /generate (8 tokens, not streamed).
    sim = Simulator(SimConfig(mode="sglang", model="llama", ttft_ms=100, itl_ms=10, jitter=0.5, seed=3))
    text = sim.metrics_text()
    assert sg_requests(text, "false") == 1 and sg_requests(text, "true") == 0
    assert sg_value(text, "sglang:generation_tokens", is_streaming="false", **SG) == 8
    assert sg_value(text, "sglang:prompt_tokens", is_streaming="false", **SG) == 8  # 29 characters / 4
    assert sg_http(text, "200", "/generate") == 1 and sg_http(text, "200", "/model_info", "GET") == 1
    # Deterministic: the configured means, no random draw.
    ttft_sum = sg_value(
        text,
        "sglang:time_to_first_token_seconds",
        "sglang:time_to_first_token_seconds_sum",
        is_streaming="false",
        **SG,
    )
    assert ttft_sum == pytest.approx(0.1)
    # 8 tokens in one output (not streamed, below the 50-token interval): no ITL observation.
    assert sg_count(text, "sglang:inter_token_latency_seconds", **SG) == 0
    assert sg_count(text, "sglang:request_time_per_output_token_seconds", is_streaming="false", **SG) == 1
    assert sg_value(text, "sglang:num_running_reqs", **SG_SCHED) == 0  # gauges exist before traffic
    assert 'endpoint="/v1/chat/completions"' not in text  # HTTP series only once a route was used
    # A restart (another mode or model) warms up again; seeded draws are not disturbed by it.
    sim.update(mode="vllm")
    sim.update(mode="sglang", model="other")
    assert sg_value(sim.metrics_text(), "sglang:num_requests", is_streaming="false", model_name="other") == 1


def test_sglang_token_latencies_per_output() -> None:
    def sample(n: int, outcome: Outcome, *, stream: bool, failing: bool = False) -> RequestSample:
        gaps = tuple((0.01 * (i + 1), 1) for i in range(n - 1)) + (((0.5, 1),) if failing else ())
        return RequestSample(
            ok=outcome is Outcome.OK, prompt_tokens=5, generation_tokens=n, ttft_s=0.1, itls=gaps,
            outcome=outcome, stream=stream,
        )  # fmt: skip

    # Streamed: one output per token; the failing step's abort output carries no token.
    assert sglang_token_latencies(sample(3, Outcome.OK, stream=True)) == (True, [(0.01, 1), (0.02, 1)])
    assert sglang_token_latencies(sample(3, Outcome.ENGINE_ERROR, stream=True, failing=True)) == (
        True,
        [(0.01, 1), (0.02, 1)],
    )
    assert sglang_token_latencies(sample(0, Outcome.CLIENT_DROP, stream=True)) == (False, [])
    # Not streamed: an output every 50 tokens and at the end (output_streamer.py:475-477).
    ttft, itls = sglang_token_latencies(sample(120, Outcome.OK, stream=False))
    assert ttft and [w for _, w in itls] == [50, 20]
    gaps = [0.01 * (i + 1) for i in range(119)]  # gaps[k] comes before token k + 2
    assert itls[0][0] == pytest.approx(sum(gaps[49:99]) / 50)  # tokens 51..100
    assert itls[1][0] == pytest.approx(sum(gaps[99:119]) / 20)  # tokens 101..120
    # A non-streamed abort before its first output: the only output is the abort, nothing observed.
    assert sglang_token_latencies(sample(30, Outcome.ENGINE_ERROR, stream=False, failing=True)) == (False, [])
    # ... after 100 tokens the abort output brings 0 new ones: no ITL from it.
    ttft, itls = sglang_token_latencies(sample(100, Outcome.ENGINE_ERROR, stream=False, failing=True))
    assert ttft and [w for _, w in itls] == [50]


def test_sglang_synthetic_success() -> None:
    text, samples = sg_drive(SimConfig())
    n = len(samples)
    assert n == N_SYNTHETIC and all(s.outcome is Outcome.OK and s.stream for s in samples)
    assert sg_requests(text) == n and sg_http(text, "200") == n
    assert sg_count(text, "sglang:time_to_first_token_seconds", is_streaming="true", **SG) == n
    assert sg_count(text, "sglang:e2e_request_latency_seconds", is_streaming="true", **SG) == n
    assert sg_count(text, "sglang:queue_time_seconds", **SG_SCHED) == n + 1  # + the warm-up
    tpot = sum(1 for s in samples if s.generation_tokens > 1)
    assert sg_count(text, "sglang:request_time_per_output_token_seconds", is_streaming="true", **SG) == tpot
    # ITL: one observation per output token after the first (the warm-up adds none).
    itl = sum(s.generation_tokens - 1 for s in samples)
    assert sg_count(text, "sglang:inter_token_latency_seconds", **SG) == itl
    tokens = sum(s.generation_tokens for s in samples)
    assert sg_value(text, "sglang:generation_tokens", is_streaming="true", **SG) == tokens
    assert sg_value(
        text, "sglang:generation_tokens_histogram", "sglang:generation_tokens_histogram_sum", **SG
    ) == (tokens + 8)
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == 0


def test_sglang_synthetic_midstream_errors_are_200_streams_counted_as_finished() -> None:
    text, samples = sg_drive(SimConfig(error_rate=0.2))
    failed = sum(s.outcome is Outcome.ENGINE_ERROR for s in samples)
    assert 0.15 * N_SYNTHETIC < failed < 0.25 * N_SYNTHETIC
    # The 200 went out first; the scheduler's abort finishes the request like any other.
    assert sg_http(text, "200") == N_SYNTHETIC and sg_http(text, "500") == 0
    assert sg_requests(text) == N_SYNTHETIC
    assert sg_count(text, "sglang:e2e_request_latency_seconds", is_streaming="true", **SG) == N_SYNTHETIC
    assert sg_count(text, "sglang:time_to_first_token_seconds", is_streaming="true", **SG) == N_SYNTHETIC
    # TPOT only for stop/length; the failing step's abort output carries no token (no ITL).
    ok_tpot = sum(1 for s in samples if s.outcome is Outcome.OK and s.generation_tokens > 1)
    assert (
        sg_count(text, "sglang:request_time_per_output_token_seconds", is_streaming="true", **SG) == ok_tpot
    )
    assert sg_count(text, "sglang:inter_token_latency_seconds", **SG) == sum(
        s.generation_tokens - 1 for s in samples
    )
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == 0


def test_sglang_synthetic_prestream_errors_are_http_500_only() -> None:
    text, samples = sg_drive(SimConfig(error_rate=0.2, error_stage="prestream"))
    failed = sum(s.outcome is Outcome.PRESTREAM_ERROR for s in samples)
    assert 0.15 * N_SYNTHETIC < failed < 0.25 * N_SYNTHETIC
    assert sg_http(text, "500") == failed and sg_http(text, "200") == N_SYNTHETIC - failed
    assert sg_requests(text) == N_SYNTHETIC - failed
    assert sg_count(text, "sglang:queue_time_seconds", **SG_SCHED) == N_SYNTHETIC - failed + 1
    assert (
        sg_value(text, "sglang:http_requests", endpoint="/v1/chat/completions", method="POST") == N_SYNTHETIC
    )


def test_sglang_synthetic_overload_is_invisible_but_for_http() -> None:
    text, samples = sg_drive(SimConfig(overload_rate=0.2))
    shed = sum(s.outcome is Outcome.OVERLOAD for s in samples)
    assert 0.15 * N_SYNTHETIC < shed < 0.25 * N_SYNTHETIC
    # Streamed: a 200 carrying a 503 error event; the abort echo skips collect_metrics.
    assert sg_http(text, "200") == N_SYNTHETIC and sg_http(text, "503") == 0
    assert sg_requests(text) == N_SYNTHETIC - shed
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == 0
    assert sg_count(text, "sglang:queue_time_seconds", **SG_SCHED) == N_SYNTHETIC - shed + 1


def test_sglang_synthetic_client_drops_are_aborts() -> None:
    text, samples = sg_drive(SimConfig(client_drop_rate=0.2))
    drops = [s for s in samples if s.outcome is Outcome.CLIENT_DROP]
    queued = sum(s.generation_tokens == 0 for s in drops)
    assert 0.15 * N_SYNTHETIC < len(drops) < 0.25 * N_SYNTHETIC and queued > 0
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == len(drops)
    # A running request finishes with an abort output; a queued one is popped without one.
    assert sg_requests(text) == N_SYNTHETIC - queued
    assert sg_http(text, "200") == N_SYNTHETIC
    finished_ok = sum(1 for s in samples if s.outcome is Outcome.OK and s.generation_tokens > 1)
    assert (
        sg_count(text, "sglang:request_time_per_output_token_seconds", is_streaming="true", **SG)
        == finished_ok
    )


def test_sglang_http_active_follows_synthetic_load() -> None:
    sim = Simulator(SimConfig(mode="sglang", model="llama", rps=100, ttft_ms=200, itl_ms=10, seed=5))
    sim.synthetic_tick(0.5)
    text = sim.metrics_text()
    running = sg_value(text, "sglang:num_running_reqs", **SG_SCHED)
    waiting = sg_value(text, "sglang:num_queue_reqs", **SG_SCHED)
    active = sg_value(text, "sglang:http_requests_active", endpoint="/v1/chat/completions", method="POST")
    assert running > 50 and active == running + waiting


def sg_requests_http(
    config: SimConfig, requests: list[tuple[str, dict[str, Any]]]
) -> tuple[list[tuple[int | None, str]], str, list[RequestSample]]:
    """Real HTTP requests against an SGLang simulator: replies, exposition, samples recorded."""

    async def body(sim: Simulator, s: aiohttp.ClientSession) -> tuple[list[tuple[int | None, str]], str]:
        record = sim.metrics.record

        def spy(sample: RequestSample) -> None:
            samples.append(sample)
            record(sample)

        sim.metrics.record = spy  # type: ignore[method-assign]
        replies = [await post(s, sim.url + path, payload) for path, payload in requests]
        await asyncio.sleep(0.02)
        return replies, sim.metrics_text()

    samples: list[RequestSample] = []
    replies, text = run_with_sim(apply_update(config, {"mode": "sglang", "model": "llama", **FAST}), body)
    return replies, text, samples


def test_sglang_models_health_ready_and_model_info() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        async with s.get(sim.url + "/v1/models") as r:
            doc = await r.json()
        [card] = doc["data"]
        assert doc["object"] == "list" and isinstance(card.pop("created"), int)
        # protocol.py:87-103: owned_by sglang, root = the served name, one card (no aliases).
        assert card == {
            "id": "llama", "object": "model", "owned_by": "sglang", "root": "llama", "parent": None,
            "max_model_len": 4096,
        }  # fmt: skip
        for path in ("/health", "/ready", "/ping"):
            async with s.get(sim.url + path) as r:
                assert (r.status, await r.text()) == (200, ""), path
        async with s.get(sim.url + "/model_info") as r:
            info = await r.json()
        assert (info["model_path"], info["served_model_name"], info["is_generation"]) == (
            "org/llama",
            "llama",
            True,
        )
        for path in ("/info", "/generate_stream"):
            async with s.request("GET" if path == "/info" else "POST", sim.url + path, json={}) as r:
                assert r.status == 404, path  # TGI's routes
        sim.update(healthy=False)
        for path in ("/health", "/ready", "/ping"):
            async with s.get(sim.url + path) as r:
                assert (r.status, await r.text()) == (503, ""), path
        # A LoRA adapter in `model` while LoRA is off: 400 before any generation.
        payload = {"model": "llama:my-adapter", "messages": MSGS}
        async with s.post(sim.url + "/v1/chat/completions", json=payload) as r:
            assert r.status == 400
            err = await r.json()
        assert err["type"] == "BadRequestError" and err["message"].startswith(
            "LoRA adapter 'my-adapter' was requested"
        )
        async with s.post(
            sim.url + "/v1/chat/completions", json={"model": "whatever", "messages": MSGS}
        ) as r:
            assert r.status == 200  # SGLang does not check the model name
        async with s.post(sim.url + "/v1/chat/completions", data=b"{oops") as r:
            assert r.status == 400
            assert (await r.json())["type"] == "Bad Request"
        async with s.get(sim.url + "/no/such/route") as r:
            assert r.status == 404
        text = sim.metrics_text()
        # Every route is counted, probes and unknown paths included (endpoint = the raw path).
        assert sg_http(text, "503", "/ready", "GET") == 1 and sg_http(text, "200", "/health", "GET") == 1
        assert sg_http(text, "404", "/no/such/route", "GET") == 1
        assert sg_http(text, "400", "/v1/chat/completions") == 2
        assert sg_requests(text, "false") == 1 + 1  # the warm-up and the "whatever" request

    run_with_sim(SimConfig(mode="sglang", model="llama", model_path="org/llama", **FAST), body)


@pytest.mark.parametrize("mode, status", [("vllm", 200), ("tgi", 404), ("sglang", 404)])
def test_the_liveness_routes_each_engine_answers(mode: str, status: int) -> None:
    """What the generated liveness probes ask (core.desired.LIVENESS_PATHS) is served by the simulator
    as by the engine: vLLM's /version, TGI's /info, SGLang's /model_info; /version is vLLM's only."""
    from slogate.api.v1alpha1 import EngineKind
    from slogate.core.desired import LIVENESS_PATHS

    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        async with s.get(sim.url + "/version") as r:
            assert r.status == status
            if status == 200:
                assert await r.json() == {"version": "0.33.0"}
        async with s.get(sim.url + LIVENESS_PATHS[EngineKind(mode)]) as r:
            assert r.status == 200

    run_with_sim(SimConfig(mode=mode, model="llama", model_path="org/llama", **FAST), body)


def test_sglang_real_midstream_errors() -> None:
    requests = openai_requests(2)
    requests[2] = (requests[2][0], {**requests[2][1], "stream_options": {"include_usage": True}})
    replies, text, samples = sg_requests_http(SimConfig(error_rate=1.0), requests)
    chat_plain, chat_stream, cmpl_plain, cmpl_stream = (replies[i : i + 2] for i in range(0, 8, 2))
    body = {"object": "error", "message": SG_OOM, "type": "500", "param": None, "code": 500}
    for status, raw in chat_plain + cmpl_plain:
        assert (status, json.loads(raw)) == (500, body)
    for i, (status, raw) in enumerate(chat_stream + cmpl_stream):
        evs = events(raw)
        assert status == 200 and evs[-1] == "[DONE]"
        if i == 0:  # include_usage: the usage chunk follows the error (serving_chat.py:2767-2799)
            assert evs[-3] == SG_ENGINE_EVENT and json.loads(evs[-2])["usage"]["completion_tokens"] >= 1
            evs = evs[:-1]
        assert evs[-2] == SG_ENGINE_EVENT
        tokens = [e for e in evs[:-2] if json.loads(e)["choices"] and "error" not in e]
        assert tokens  # some tokens came first
    # Finished by the scheduler (+1 each, like a success); HTTP 500 only when not streamed.
    assert sg_requests(text, "true") == 4 and sg_requests(text, "false") == 1 + 4
    assert sg_http(text, "500") == 2 and sg_http(text, "200") == 2
    assert sg_http(text, "500", "/v1/completions") == 2 and sg_http(text, "200", "/v1/completions") == 2
    assert sg_count(text, "sglang:request_time_per_output_token_seconds", is_streaming="true", **SG) == 0
    # Non-streamed and fewer than 50 tokens: the abort was the only output, so no TTFT.
    assert sg_count(text, "sglang:time_to_first_token_seconds", is_streaming="false", **SG) == 1  # warm-up
    assert sg_count(text, "sglang:time_to_first_token_seconds", is_streaming="true", **SG) == 4
    assert len(samples) == 8


@pytest.mark.parametrize(
    "config, status, body, stream_event",
    [
        pytest.param(
            SimConfig(error_rate=1.0, error_stage="prestream"),
            500,
            {
                "object": "error",
                "message": "Internal server error: simulated failure (slogate sim error_rate)",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            },
            None,  # the same JSON 500, streamed or not (serving_base.py:136-142)
            id="prestream",
        ),
        pytest.param(
            SimConfig(overload_rate=1.0),
            503,
            {
                "object": "error",
                "message": "The request queue is full.",
                "type": "503",
                "param": None,
                "code": 503,
            },
            SG_QUEUE_FULL_EVENT,
            id="queue-full",
        ),
    ],
)
def test_sglang_real_refusals(
    config: SimConfig, status: int, body: dict[str, Any], stream_event: str | None
) -> None:
    replies, text, _ = sg_requests_http(config, openai_requests(2))
    plain = replies[0:2] + replies[4:6]
    streamed = replies[2:4] + replies[6:8]
    for got, raw in plain:
        assert (got, json.loads(raw)) == (status, body)
    for got, raw in streamed:
        if stream_event is None:
            assert (got, json.loads(raw)) == (status, body)
        else:
            assert (got, events(raw)) == (200, [stream_event, "[DONE]"])
    # Neither reached the scheduler's outputs: no request counted but the warm-up.
    assert sg_requests(text, "true") == 0 and sg_requests(text, "false") == 1
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == 0
    http_failed = 4 if stream_event is None else 2  # a streamed refusal was a 200
    assert sg_http(text, str(status)) + sg_http(text, str(status), "/v1/completions") == 2 * http_failed
    assert sg_http(text, "200") + sg_http(text, "200", "/v1/completions") == 8 - 2 * http_failed


def test_sglang_real_client_drops() -> None:
    replies, text, samples = sg_requests_http(SimConfig(client_drop_rate=1.0), openai_requests(2))
    assert all(status is None for status, _ in replies)  # the connection was cut
    assert len(samples) == 8
    queued = sum(s.generation_tokens == 0 for s in samples)
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == 8
    assert sg_requests(text, "true") + sg_requests(text, "false") - 1 == 8 - queued
    # The non-streamed 400 was written into the closed socket; streams had their 200.
    assert sg_http(text, "400") + sg_http(text, "400", "/v1/completions") == 4
    assert sg_http(text, "200") + sg_http(text, "200", "/v1/completions") == 4


def test_sglang_native_generate() -> None:
    def gen(stream: bool, **params: Any) -> tuple[str, dict[str, Any]]:
        return "/generate", {"text": "hello", "sampling_params": params, "stream": stream}

    replies, text, _ = sg_requests_http(
        SimConfig(), [gen(False, max_new_tokens=3), gen(True, max_new_tokens=3), gen(False)]
    )
    (s1, plain), (s2, streamed), (s3, default) = replies
    doc = json.loads(plain)
    assert s1 == 200 and doc["output_ids"] == [0, 1, 2] and len(doc["text"].split()) == 3
    assert doc["meta_info"]["finish_reason"] == {"type": "length", "length": 3}
    assert doc["meta_info"]["completion_tokens"] == 3 and doc["meta_info"]["prompt_tokens"] == 2
    evs = events(streamed)
    assert s2 == 200 and evs[-1] == "[DONE]"
    chunks = [json.loads(e) for e in evs[:-1]]
    assert [c["meta_info"]["completion_tokens"] for c in chunks] == [1, 2, 3]
    assert [c["meta_info"]["finish_reason"] for c in chunks][-1] == {"type": "length", "length": 3}
    assert chunks[-1]["text"] == doc["text"]  # the text so far, not a delta
    assert (
        s3 == 200 and json.loads(default)["meta_info"]["completion_tokens"] == 128
    )  # SamplingParams default
    assert sg_requests(text, "false") == 1 + 2 and sg_requests(text, "true") == 1
    assert sg_http(text, "200", "/generate") == 1 + 3
    replies, _, _ = sg_requests_http(SimConfig(), [("/generate", {"sampling_params": {}})])
    assert replies[0][0] == 400 and "text" in json.loads(replies[0][1])["error"]


def test_sglang_native_generate_failures() -> None:
    requests = [
        ("/generate", {"text": "x", "sampling_params": {"max_new_tokens": 5}, "stream": st})
        for st in (False, True)
    ]
    replies, text, _ = sg_requests_http(SimConfig(error_rate=1.0), requests)
    assert replies[0] == (
        500,
        compact({"object": "error", "message": SG_OOM, "type": "500", "param": None, "code": 500}),
    )
    evs = events(replies[1][1])
    assert replies[1][0] == 200 and evs[-1] == "[DONE]"
    last = json.loads(evs[-2])["meta_info"]["finish_reason"]
    assert last == {"type": "abort", "message": SG_OOM, "status_code": 500, "err_type": None}
    assert sg_http(text, "500", "/generate") == 1 and sg_requests(text, "true") == 1

    replies, text, _ = sg_requests_http(SimConfig(overload_rate=1.0), requests)
    assert replies[0][0] == 503 and json.loads(replies[0][1])["type"] == "503"
    evs = events(replies[1][1])
    assert json.loads(evs[0])["meta_info"]["finish_reason"] == {
        "type": "abort", "status_code": 503, "message": "The request queue is full."
    }  # fmt: skip
    assert evs[1:] == ["[DONE]"]

    # An unhandled exception on /generate: Starlette's plain 500, or a cut stream; the metrics
    # middleware counts the request but no response (http_request_metrics.py:92-105).
    replies, text, _ = sg_requests_http(SimConfig(error_rate=1.0, error_stage="prestream"), requests)
    assert replies == [(500, "Internal Server Error"), (None, "")]
    assert sg_value(text, "sglang:http_requests", endpoint="/generate", method="POST") == 1 + 2
    assert sg_http(text, "500", "/generate") == 0 and sg_http(text, "200", "/generate") == 1  # warm-up
    assert sg_value(text, "sglang:http_requests_active", endpoint="/generate", method="POST") == 0


def compact(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def test_sglang_real_disconnect_is_an_abort() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> str:
        payload = {"messages": MSGS, "max_tokens": 200, "stream": True}
        async with s.post(sim.url + "/v1/chat/completions", json=payload) as r:
            for _ in range(3):
                await r.content.readline()
            r.close()  # the client goes away mid-stream
        for _ in range(100):
            await asyncio.sleep(0.02)
            if sg_value(sim.metrics_text(), "sglang:num_aborted_requests", **SG):
                break
        return sim.metrics_text()

    text = run_with_sim(SimConfig(mode="sglang", model="llama", ttft_ms=5, itl_ms=5, jitter=0.0), body)
    assert sg_value(text, "sglang:num_aborted_requests", **SG) == 1
    assert sg_requests(text, "true") == 1  # it was running: it finishes with an abort output
    assert sg_http(text, "200") == 1
    assert sg_count(text, "sglang:request_time_per_output_token_seconds", is_streaming="true", **SG) == 0


def test_loadgen_sees_sglang_failures_as_a_client_does() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        sim.update(error_rate=1.0)
        failing = await run_load(sim.url, rps=40, duration_s=0.1, model="llama")
        assert (failing.stream_errors, failing.statuses) == (4, {"200": 4})
        sim.update(error_rate=0.0, overload_rate=1.0)
        shed = await run_load(sim.url, rps=40, duration_s=0.1, model="llama")
        assert (shed.stream_errors, shed.statuses) == (4, {"200": 4})  # 503 inside a 200 stream
        plain = await run_load(sim.url, rps=40, duration_s=0.1, model="llama", stream=False)
        assert (plain.http_errors, plain.statuses) == (4, {"503": 4})

    run_with_sim(SimConfig(mode="sglang", model="llama", ttft_ms=5, itl_ms=1, jitter=0.0), body)


def test_sglang_failures_of_non_streamed_requests_have_their_status() -> None:
    # Not streamed, SGLang answers a scheduler failure with 500 and a full queue with 503
    # (serving_base.py:205-221, scheduler.py:3552-3596 @ 0.5.23); streamed, both are a 200 whose
    # stream carries the error event. streamed_share picks which the synthetic traffic sends.
    mixed = {"error_rate": 0.2, "overload_rate": 0.2}
    text, samples = sg_drive(apply_update(SimConfig(), {**mixed, "streamed_share": 0.0}))
    assert not any(s.stream for s in samples)
    assert sg_http(text, "500") > 0 and sg_http(text, "503") > 0
    assert sg_requests(text, "true") == 0 and sg_requests(text, "false") > 0
    text, samples = sg_drive(apply_update(SimConfig(), {**mixed, "streamed_share": 1.0}))
    assert all(s.stream for s in samples)
    assert sg_http(text, "500") == 0 and sg_http(text, "503") == 0
    text, samples = sg_drive(apply_update(SimConfig(), {**mixed, "streamed_share": 0.5}))
    assert 0.3 < sum(s.stream for s in samples) / len(samples) < 0.7
    with pytest.raises(ConfigError, match="streamed_share"):
        apply_update(SimConfig(), {"streamed_share": 1.5})
