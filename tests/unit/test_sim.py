"""Tests of slogate.sim: distributions, config validation, the HTTP API and the exposed metrics.

Server tests start real simulators on port 0 with ``asyncio.run`` (no pytest-asyncio); latencies
are set to a few milliseconds so the whole module runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import prometheus_client
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from slogate.sim import ConfigError, SimConfig, Simulator, apply_update, run_load
from slogate.sim import loadgen as loadgen_mod
from slogate.sim.metrics import (
    build_1_2_5_buckets,
    tgi_duration_buckets,
    tgi_linear_buckets,
)
from slogate.sim.sampling import (
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
        ({"mode": "sglang"}, "mode"),
        ({"prompt_tokens": 0}, "prompt_tokens"),
        ({"generation_tokens": 1.5}, "generation_tokens"),
        ({"aliases": "x"}, "aliases"),
        ({"kv_cache_usage": 2}, "kv_cache_usage"),
        ({"model": ""}, "model"),
        ({"bogus": 1}, "bogus"),
    ]
    for change, field in bad:
        with pytest.raises(ConfigError, match=field):
            apply_update(cfg, change)
    with pytest.raises(ConfigError):
        SimConfig(jitter=float("nan"))


# --- HTTP API -----------------------------------------------------------------------------------------


def test_models_health_and_info() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> None:
        async with s.get(sim.url + "/v1/models") as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["object"] == "list"
        assert [m["id"] for m in doc["data"]] == ["llama", "llama-alias"]
        assert all(m["object"] == "model" and m["root"] == "llama" for m in doc["data"])
        async with s.get(sim.url + "/health") as r:
            assert (r.status, await r.text()) == (200, "ok")
        sim.update(healthy=False)
        async with s.get(sim.url + "/health") as r:
            assert r.status == 503
        async with s.get(sim.url + "/info") as r:
            assert r.status == 404  # a TGI route
        async with s.post(sim.url + "/generate", json={"inputs": "x"}) as r:
            assert r.status == 404

    run_with_sim(SimConfig(model="llama", aliases=["llama-alias"], **FAST), body)


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
        assert err["type"] == "NotFoundError" and err["code"] == 404 and "nope" in err["message"]
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


def test_error_injection_vllm() -> None:
    async def body(sim: Simulator, s: aiohttp.ClientSession) -> str:
        msgs = [{"role": "user", "content": "hi"}]
        for stream in (False, True):
            payload = {"model": "llama", "messages": msgs, "stream": stream}
            async with s.post(sim.url + "/v1/chat/completions", json=payload) as r:
                assert r.status == 500
                err = (await r.json())["error"]
            assert err["code"] == 500 and err["type"] == "InternalServerError"
        async with s.get(sim.url + "/metrics") as r:
            return await r.text()

    text = run_with_sim(SimConfig(model="llama", error_rate=1.0, **FAST), body)
    http = {"handler": "/v1/chat/completions", "method": "POST"}
    assert value(text, "http_requests", "http_requests_total", status="5xx", **http) == 2
    assert 'status="2xx",handler="/v1/chat/completions"' not in text
    for reason in ("stop", "length", "abort", "error", "repetition"):
        assert value(text, "vllm:request_success", "vllm:request_success_total", finished_reason=reason) == 0


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
        async with s.get(sim.url + "/info") as r:
            assert (await r.json())["model_id"] == "bigcode"
        sim.update(error_rate=1.0)
        async with s.post(sim.url + "/generate", json={"inputs": "hello"}) as r:
            assert r.status == 424
            assert (await r.json())["error_type"] == "generation"
        async with s.post(
            sim.url + "/v1/chat/completions",
            json={"model": "tgi", "messages": [{"role": "user", "content": "hi"}]},
        ) as r:
            assert r.status == 500
        async with s.get(sim.url + "/metrics") as r:
            return await r.text()

    text = run_with_sim(SimConfig(mode="tgi", model="bigcode", **FAST), body)
    assert value(text, "tgi_request_count", "tgi_request_count_total") == 4
    assert value(text, "tgi_request_success", "tgi_request_success_total") == 2
    assert value(text, "tgi_request_failure", "tgi_request_failure_total", err="generation") == 2
    assert value(text, "tgi_request_generated_tokens", "tgi_request_generated_tokens_sum") == 7


# --- metric names, types and labels ------------------------------------------------------------------

VLLM_EXPECTED = {
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:time_per_output_token_seconds": "histogram",
    "vllm:request_time_per_output_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_inference_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:request_success": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:num_preemptions": "counter",
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:gpu_cache_usage_perc": "gauge",
    "http_requests": "counter",
    "http_request_duration_seconds": "histogram",
    "http_request_duration_highr_seconds": "histogram",
}

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
    "tgi_queue_size": "gauge",
    "tgi_batch_current_size": "gauge",
}


def test_vllm_metrics_exposition() -> None:
    sim = Simulator(SimConfig(model="llama", rps=50, error_rate=0.2, kv_cache_usage=0.42, seed=1))
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    fams = families(text)
    for name, kind in VLLM_EXPECTED.items():
        assert name in fams, name
        assert fams[name].type == kind, (name, fams[name].type)
    # Counter names are exactly the engine's, with a single _total suffix.
    assert "# TYPE vllm:request_success_total counter" in text
    assert "# TYPE http_requests_total counter" in text
    assert "_total_total" not in text
    for name, fam in fams.items():
        for s in fam.samples:
            if name.startswith("vllm:"):
                assert {"model_name", "engine"} <= set(s.labels), (name, s.labels)
                assert (s.labels["model_name"], s.labels["engine"]) == ("llama", "0")
    reasons = {s.labels["finished_reason"] for s in fams["vllm:request_success"].samples}
    assert reasons == {"stop", "length", "abort", "error", "repetition"}
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
    assert value(text, "vllm:gpu_cache_usage_perc", "vllm:gpu_cache_usage_perc") == 0.42
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
    # Same observations in the current and the deprecated ITL histogram.
    itl = value(text, "vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_sum")
    assert value(text, "vllm:time_per_output_token_seconds", "vllm:time_per_output_token_seconds_sum") == itl
    # Nothing leaked into the process-global registry.
    assert not any(m.name.startswith(("vllm:", "tgi_")) for m in prometheus_client.REGISTRY.collect())


def test_tgi_metrics_exposition() -> None:
    sim = Simulator(SimConfig(mode="tgi", model="bigcode", rps=40, error_rate=0.25, seed=2))
    sim.synthetic_tick(1.0)
    text = sim.metrics_text()
    fams = families(text)
    for name, kind in TGI_EXPECTED.items():
        assert name in fams, name
        assert fams[name].type == kind, (name, fams[name].type)
    assert not any(name.startswith("vllm:") or name.startswith("http_") for name in fams)
    # Rust's metrics exporter writes counters without a _total suffix; so must we.
    assert "_total" not in text
    lines = text.splitlines()
    assert "# TYPE tgi_request_count counter" in lines
    assert any(line.startswith("tgi_request_count ") for line in lines)
    assert any(line.startswith('tgi_request_failure{err="generation"} ') for line in lines)
    count = value(text, "tgi_request_count", "tgi_request_count_total")
    success = value(text, "tgi_request_success", "tgi_request_success_total")
    failure = value(text, "tgi_request_failure", "tgi_request_failure_total", err="generation")
    assert count == 40 and success + failure == count and failure >= 3
    assert value(text, "tgi_request_duration", "tgi_request_duration_count") == success
    bounds = [float(b) for b in bucket_bounds(text, "tgi_request_duration")]
    assert bounds == pytest.approx([*tgi_duration_buckets(), float("inf")])
    assert len(bucket_bounds(text, "tgi_request_input_length")) == 101
    for fam in fams.values():
        for s in fam.samples:
            assert set(s.labels) <= {"le", "err", "method"}, (fam.name, s.labels)
    assert {s.labels["method"] for s in fams["tgi_batch_inference_duration"].samples} == {"prefill", "decode"}


def test_mode_change_rebuilds_metrics() -> None:
    sim = Simulator(SimConfig(model="llama", rps=10))
    sim.synthetic_tick(1.0)
    assert "vllm:request_success_total" in sim.metrics_text()
    sim.update(mode="tgi")
    text = sim.metrics_text()
    assert "vllm:" not in text and "tgi_request_count 0" in text


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
        assert report.ttft_p50_s is not None and report.ttft_p50_s >= 0.02
        assert report.ttft_p95_s is not None and report.ttft_p95_s >= report.ttft_p50_s
        plain = await run_load(
            sim.url + "/v1/chat/completions", rps=40, duration_s=0.1, model="llama", stream=False
        )
        assert (plain.sent, plain.ok) == (4, 4)
        sim.update(error_rate=1.0)
        failing = await run_load(sim.url, rps=40, duration_s=0.1, model="llama")
        assert (failing.ok, failing.errors) == (0, 4) and failing.ttft_p50_s is None

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
        sim_main(["--mode", "sglang"])
