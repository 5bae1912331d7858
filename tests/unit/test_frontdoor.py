"""The local cluster's front door (slogate.dev.frontdoor): who sends, what, and where it goes.

The pure parts are table-tested; the sender is run in-process against real simulators (slogate.sim)
on loopback, with a routing state built from API-server-shaped JSON, so a request that the router
model sends to one pod must show up in that pod's own engine counters and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Mapping
from typing import Any

import pytest

from slogate.dev import frontdoor as F
from slogate.dev import router as R
from slogate.sim import SimConfig, Simulator
from slogate.sim.server import estimate_tokens


def md(name: str = "chat", ns: str = "ns", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"model": {"source": "hf://m/m"}, **spec}}


# ------------------------------------------------------------------------------------- configs


def test_defaults_and_validation():
    cfg = F.TrafficConfig()
    assert cfg.rps == F.DEFAULT_RPS and cfg.streamed_share == 1.0
    for bad, field in [
        ({"rps": -1.0}, "rps"),
        ({"rps": F.MAX_RPS + 1}, "rps"),
        ({"streamed_share": 1.5}, "streamed_share"),
        ({"prompt_tokens": 0}, "prompt_tokens"),
        ({"generation_tokens": 2.5}, "generation_tokens"),
        ({"rps": True}, "rps"),
    ]:
        with pytest.raises(F.TrafficError, match=field):
            F.apply_change(cfg, bad)
    with pytest.raises(F.TrafficError, match=r"unknown traffic field.*rpss"):
        F.apply_change(cfg, {"rpss": 1})
    # JSON has one number type: integral floats for the integer fields, ints for the float ones.
    assert F.apply_change(cfg, {"prompt_tokens": 2048.0, "rps": 3}) == F.TrafficConfig(
        rps=3.0, prompt_tokens=2048
    )


def test_rules_apply_in_order_and_match_namespace_and_name():
    rules = [
        F.TrafficRule(change={"rps": 1.0}),
        F.TrafficRule(change={"rps": 2.0}, namespace="ns"),
        F.TrafficRule(change={"rps": 3.0}, namespace="ns", name="b"),
        F.TrafficRule(change={"prompt_tokens": 100}, namespace="other"),
        F.TrafficRule(change={"rps": "fast"}, namespace="ns"),  # invalid: skipped, not fatal
    ]
    assert F.resolve_config(rules, "ns", "a") == F.TrafficConfig(rps=2.0)
    assert F.resolve_config(rules, "ns", "b") == F.TrafficConfig(rps=3.0)
    assert F.resolve_config(rules, "other", "a") == F.TrafficConfig(rps=1.0, prompt_tokens=100)
    assert F.resolve_config([], "x", "y") == F.TrafficConfig()


@pytest.mark.parametrize(
    "spec, target",
    [
        ({}, R.ServiceTarget("ns", "chat")),
        ({"rollout": {"traffic": {"router": "replicas"}}}, R.ServiceTarget("ns", "chat")),
        (
            {
                "rollout": {
                    "traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
                }
            },
            R.RouteTarget("ns", "chat", 0),
        ),
    ],
    ids=["default", "replicas", "gatewayAPI"],
)
def test_the_front_door_is_the_root_service_or_the_httproute(spec, target):
    assert F.front_door_of(md(**spec)) == target


def test_the_front_door_names_match_what_the_operator_builds():
    """The names the front door sends to are the ones core.traffic gives the root Service and route."""
    from slogate.api.v1alpha1 import ModelDeploymentSpec
    from slogate.core.naming import Owner, root_service_name
    from slogate.core.traffic import build_httproute

    doc = md(rollout={"traffic": {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}})
    spec = ModelDeploymentSpec.model_validate(doc["spec"])
    route = build_httproute(
        name="chat",
        namespace="ns",
        owner=Owner(name="chat", uid="u"),
        traffic=spec.rollout.traffic.gateway_api,
        canary=False,
        canary_weight=0,
        mirror=False,
        fallback_backend=None,
    )
    target = F.front_door_of(doc)
    assert (route["metadata"]["namespace"], route["metadata"]["name"]) == (target.namespace, target.name)
    assert F.front_door_of(md()) == R.ServiceTarget("ns", root_service_name("chat"))


def test_the_model_name_is_the_served_name():
    assert F.served_model_of(md()) == "chat"
    assert F.served_model_of(md(model={"source": "hf://m/m", "servedName": "llama"})) == "llama"


def test_clients_skip_deleted_deployments_and_add_standalone_targets():
    gone = md("gone")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    rules = [
        F.TrafficRule(change={"rps": 5.0}, namespace="ns", target=("HTTPRoute", "r"), model="m"),
        F.TrafficRule(change={"rps": 7.0}, namespace="ns", name="chat"),
    ]
    clients = {c.key: c for c in F.clients_for([md(), gone], rules)}
    assert set(clients) == {"ns/chat", "ns/HTTPRoute/r"}
    assert clients["ns/chat"].config.rps == 7.0 and clients["ns/chat"].target == R.ServiceTarget("ns", "chat")
    route = clients["ns/HTTPRoute/r"]
    assert route.target == R.RouteTarget("ns", "r", 0) and route.model == "m" and route.config.rps == 5.0


def test_a_target_rule_needs_a_kind_a_name_and_a_namespace():
    with pytest.raises(F.TrafficError, match="kind Service or HTTPRoute"):
        F.TrafficRule.from_dict({"namespace": "ns", "target": {"kind": "Pod", "name": "p"}})
    with pytest.raises(F.TrafficError, match="namespace"):
        F.TrafficRule.from_dict({"target": {"kind": "Service", "name": "s"}})


def test_set_traffic_validates_before_writing(tmp_path):
    with pytest.raises(F.TrafficError):
        F.set_traffic(tmp_path, change={"rps": 1e9})
    assert not (tmp_path / F.RULES_FILE).exists()
    F.set_traffic(tmp_path, change={"rps": 2.0}, namespace="ns")
    F.set_traffic(tmp_path, change={"rps": 4.0}, namespace="ns", target=("Service", "s"), model="m")
    assert F.read_rules(tmp_path) == [
        F.TrafficRule(change={"rps": 2.0}, namespace="ns"),
        F.TrafficRule(change={"rps": 4.0}, namespace="ns", target=("Service", "s"), model="m"),
    ]


# ------------------------------------------------------------------------------------- requests


def test_request_mix_is_what_the_simulator_counts():
    """The prompt length a request carries is the one the simulator's tokenizer estimate reads back,
    and the mix follows the config: streamed share, mean prompt and generation lengths."""
    cfg = F.TrafficConfig(prompt_tokens=300, generation_tokens=40, streamed_share=0.25, jitter=0.2)
    rng = random.Random(7)
    bodies = [F.request_body(cfg, "chat", rng) for _ in range(4000)]
    prompts = [estimate_tokens(b["messages"][0]["content"]) for b in bodies]
    assert abs(sum(prompts) / len(prompts) - 300) < 300 * 0.02
    assert abs(sum(b["max_tokens"] for b in bodies) / len(bodies) - 40) < 40 * 0.03
    streamed = sum(b["stream"] for b in bodies)
    assert F.binomial_tolerance(4000, 0.25) * 4000 >= abs(streamed - 1000)
    assert {b["model"] for b in bodies} == {"chat"}
    exact = F.request_body(F.TrafficConfig(prompt_tokens=17, generation_tokens=3, jitter=0.0), "m", rng)
    assert estimate_tokens(exact["messages"][0]["content"]) == 17 and exact["max_tokens"] == 3
    assert exact["stream"] is True


def test_shares_and_tolerance():
    assert F.shares({}) == {}
    assert F.shares({"b": 9, "a": 1}) == {"a": 10.0, "b": 90.0}
    assert F.binomial_tolerance(0, 0.1) == 1.0
    assert F.binomial_tolerance(400, 0.1, sigmas=1) == pytest.approx(0.015)


def test_the_rate_is_measured_over_the_last_ten_seconds():
    led = F.ClientLedger("ns", "chat", "Service ns/chat", "chat", 5.0)
    for t in range(0, 31):
        led.sent = t * 5 if t < 20 else 100  # 5/s for 20 s, then nothing
        led.tick_rate(float(t))
    assert led.rate == 0.0
    assert "_times" not in led.to_dict()


# ------------------------------------------------------------------------------------- the sender


def slice_of(service: str, pods: Mapping[str, str], ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": f"{service}-x", "labels": {R.SERVICE_NAME_LABEL: service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8000}],
        "endpoints": [
            {"addresses": [ip], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": pod}}
            for pod, ip in pods.items()
        ],
    }


def route(
    name: str, backends: list[dict[str, Any]], filters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name},
        "spec": {"rules": [{"backendRefs": backends, **({"filters": filters} if filters else {})}]},
    }


class FakeCache:
    """What FrontDoor reads from ApiCache, over fixed objects."""

    def __init__(self, mds, slices, routes=(), services=None) -> None:
        self.mds, self.synced = list(mds), True
        self._state = R.build_state(endpointslices=slices, httproutes=routes, services=services)

    def items(self, kind: str):
        assert kind == "modeldeployments"
        return self.mds

    def state(self):
        return self._state


def requests_in(sim: Simulator) -> int:
    """Finished requests in a vLLM simulator's own counters (``vllm:request_success_total``)."""
    return int(
        sum(
            float(m.group(1))
            for m in re.finditer(r"^vllm:request_success_total\{[^}]*\} (\S+)$", sim.metrics_text(), re.M)
        )
    )


async def run_door(
    tmp_path, cache, sims: dict[str, Simulator], labels: dict[str, dict[str, str]], seconds: float
):
    door = F.FrontDoor(
        tmp_path,
        cache,
        lambda ns, pod: (sims[pod].port, labels[pod]) if pod in sims else None,
        seed=3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(door.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    await asyncio.sleep(0.3)  # let the last requests finish
    door.write(1e9)
    return json.loads((tmp_path / F.LEDGER_FILE).read_text())["clients"]


FAST = {"ttft_ms": 1.0, "itl_ms": 0.5, "jitter": 0.0}


async def sims(*names: str) -> dict[str, Simulator]:
    """Started vLLM simulators serving ``chat``, fast and exact; each test stops them."""
    out = {}
    for name in names:
        out[name] = Simulator(SimConfig(model="chat", **FAST), host="127.0.0.1", port=0)
        await out[name].start()
    return out


def test_weights_reach_the_pods_the_router_chose(tmp_path):
    """An HTTPRoute at 90/10: each simulator's own counters hold exactly the requests the ledger says
    it answered, the canary's share is within four binomial sigmas of 10%, and clients saw only OKs."""

    async def main():
        s = await sims("stable-1", "stable-2", "canary-1")
        labels = {
            "stable-1": {"slogate.io/revision": "aaa", "slogate.io/deployment": "chat"},
            "stable-2": {"slogate.io/revision": "aaa", "slogate.io/deployment": "chat"},
            "canary-1": {"slogate.io/revision": "bbb", "slogate.io/deployment": "chat"},
        }
        gateway = {"router": "gatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}}
        cache = FakeCache(
            [md(rollout={"traffic": gateway})],
            [
                slice_of("chat-stable", {"stable-1": "10.0.0.1", "stable-2": "10.0.0.2"}),
                slice_of("chat-canary", {"canary-1": "10.0.0.3"}),
            ],
            [
                route(
                    "chat",
                    [
                        {"name": "chat-stable", "port": 80, "weight": 90},
                        {"name": "chat-canary", "port": 80, "weight": 10},
                    ],
                )
            ],
        )
        F.set_traffic(tmp_path, change={"rps": 200.0, "generation_tokens": 2, "prompt_tokens": 8})
        ledger = (await run_door(tmp_path, cache, s, labels, 2.0))["ns/chat"]
        counts = {name: requests_in(sim) for name, sim in s.items()}
        for sim in s.values():
            await sim.stop()
        return ledger, counts

    ledger, counts = asyncio.run(main())
    n = sum(ledger["answered"].values())
    assert n == ledger["sent"] > 300
    assert ledger["answered"]["bbb"] == counts["canary-1"]
    assert ledger["answered"]["aaa"] == counts["stable-1"] + counts["stable-2"]
    assert abs(counts["canary-1"] / n - 0.10) <= F.binomial_tolerance(n, 0.10)
    assert ledger["seen"] == {"ok": n} and ledger["statuses"] == {"200": n}
    assert ledger["target"] == "HTTPRoute ns/chat" and ledger["reasons"] == {"Served": n}


def test_a_mirror_gets_copies_and_the_client_only_stable_answers(tmp_path):
    async def main():
        s = await sims("stable-1", "shadow-1")
        labels = {"stable-1": {"slogate.io/revision": "aaa"}, "shadow-1": {"slogate.io/revision": "bbb"}}
        s["shadow-1"].update(error_rate=1.0)  # every mirrored copy fails: the client must not notice
        cache = FakeCache(
            [],
            [slice_of("stable", {"stable-1": "10.0.0.1"}), slice_of("shadow", {"shadow-1": "10.0.0.2"})],
            [
                route(
                    "r",
                    [{"name": "stable", "port": 80}],
                    [
                        {
                            "type": "RequestMirror",
                            "requestMirror": {"backendRef": {"name": "shadow", "port": 80}},
                        }
                    ],
                )
            ],
        )
        F.set_traffic(
            tmp_path,
            change={"rps": 100.0, "generation_tokens": 2, "prompt_tokens": 8, "streamed_share": 0.0},
            namespace="ns",
            target=("HTTPRoute", "r"),
            model="chat",
        )
        ledger = (await run_door(tmp_path, cache, s, labels, 1.5))["ns/HTTPRoute/r"]
        shadow = s["shadow-1"].metrics_text()
        for sim in s.values():
            await sim.stop()
        return ledger, shadow

    ledger, shadow = asyncio.run(main())
    n = ledger["sent"]
    assert ledger["answered"] == {"aaa": n} and ledger["seen"] == {"ok": n}
    assert ledger["mirrored"] == {"bbb": n}
    assert ledger["mirror_statuses"] == {"500": n}  # non-streamed engine faults are 500s, discarded
    # vLLM counts a failed request under finished_reason="error" in its own series.
    assert re.search(r'^vllm:request_success_total\{[^}]*finished_reason="error"[^}]*\} (\S+)$', shadow, re.M)


@pytest.mark.parametrize(
    "backends, filters, expect",
    [
        # Weights summing to 0: no backend can be chosen; the model answers 500 (router.choose_backend).
        ([{"name": "stable", "port": 80, "weight": 0}], None, ({"500": 1}, "AllWeightsZero")),
        # A backendRef to a Service that does not exist: 500 (BackendNotFound).
        ([{"name": "nope", "port": 80}], None, ({"500": 1}, "BackendNotFound")),
        # A backend Service without a Ready endpoint: 503.
        ([{"name": "empty", "port": 80}], None, ({"503": 1}, "NoReadyEndpoints")),
    ],
    ids=["weights-sum-to-0", "missing-backend", "no-ready-endpoint"],
)
def test_bad_routes_answer_as_the_spec_says(tmp_path, backends, filters, expect):
    async def main():
        s = await sims("stable-1")
        cache = FakeCache(
            [],
            [
                slice_of("stable", {"stable-1": "10.0.0.1"}),
                slice_of("empty", {"e-1": "10.0.0.9"}, ready=False),
            ],
            [route("r", backends, filters)],
        )
        F.set_traffic(tmp_path, change={"rps": 50.0}, namespace="ns", target=("HTTPRoute", "r"), model="chat")
        ledger = (await run_door(tmp_path, cache, s, {"stable-1": {}}, 0.5))["ns/HTTPRoute/r"]
        count = requests_in(s["stable-1"])
        await s["stable-1"].stop()
        return ledger, count

    ledger, count = asyncio.run(main())
    status, reason = expect
    n = ledger["sent"]
    assert n > 5 and count == 0 and ledger["answered"] == {}
    assert ledger["statuses"] == {k: v * n for k, v in status.items()}
    assert ledger["reasons"] == {reason: n}


def test_a_mirror_target_without_endpoints_is_dropped_and_clients_are_served(tmp_path):
    async def main():
        s = await sims("stable-1")
        mirror = [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "empty", "port": 80}}}]
        cache = FakeCache(
            [],
            [slice_of("stable", {"stable-1": "10.0.0.1"}), slice_of("empty", {})],
            [route("r", [{"name": "stable", "port": 80}], mirror)],
        )
        F.set_traffic(
            tmp_path,
            change={"rps": 50.0, "generation_tokens": 2},
            namespace="ns",
            target=("HTTPRoute", "r"),
            model="chat",
        )
        ledger = await run_door(tmp_path, cache, s, {"stable-1": {"slogate.io/revision": "aaa"}}, 0.5)
        await s["stable-1"].stop()
        return ledger["ns/HTTPRoute/r"]

    ledger = asyncio.run(main())
    assert ledger["mirrored"] == {} and ledger["seen"] == {"ok": ledger["sent"]}


def test_a_service_without_endpoints_refuses_the_connection(tmp_path):
    """The replicas router: kube-proxy REJECTs a Service with no endpoint, so no HTTP status at all."""

    async def main():
        cache = FakeCache([md()], [slice_of("chat", {})])
        F.set_traffic(tmp_path, change={"rps": 50.0})
        return (await run_door(tmp_path, cache, {}, {}, 0.5))["ns/chat"]

    ledger = asyncio.run(main())
    assert ledger["seen"] == {"refused": ledger["sent"]} and ledger["statuses"] == {}
    assert ledger["reasons"] == {"NoEndpoints": ledger["sent"]}


def test_doctests():
    import doctest

    from slogate.dev import demo

    assert doctest.testmod(F).failed == 0 and doctest.testmod(F).attempted >= 2
    assert doctest.testmod(demo).failed == 0 and doctest.testmod(demo).attempted >= 1


def test_the_demo_shows_each_revisions_share_since_the_chapter_began():
    from slogate.dev.demo import traffic_lines

    before = {"sent": 100, "answered": {"a": 100}, "seen": {"ok": 100}}
    now = {
        "rps": 10,
        "rate": 10.0,
        "sent": 140,
        "target": "Service default/m",
        "answered": {"a": 130, "b": 10},
        "seen": {"ok": 138, "stream_error": 2},
        "mirrored": {"b": 4},
    }
    assert traffic_lines(now, before) == [
        "traffic: 10 req/s offered to Service default/m, 10 req/s measured; 40 sent, 38 ok, 2 failed",
        "  answered by revision: a 75% (30), b 25% (10)",
        "  mirrored to: b (4)",
    ]
    assert traffic_lines(None, None) == ["traffic: no client yet"]


def test_the_cli_records_rules_and_shows_the_ledger(tmp_path, capsys):
    from slogate.cli import main

    assert main(["dev", "--dir", str(tmp_path), "traffic", "set", "-n", "ns", "chat", "--rps", "3"]) == 0
    assert main(["dev", "--dir", str(tmp_path), "traffic", "set", "-A", "--prompt-tokens", "2048"]) == 0
    assert main(["dev", "--dir", str(tmp_path), "traffic", "set", "-n", "ns", "--rps", "1e6"]) == 2
    assert "rps must be a number between 0 and 200" in capsys.readouterr().err
    assert (
        main(["dev", "--dir", str(tmp_path), "traffic", "set", "-n", "ns", "--service", "s", "--rps", "2"])
        == 0
    )
    assert F.read_rules(tmp_path) == [
        F.TrafficRule(change={"rps": 3.0}, namespace="ns", name="chat"),
        F.TrafficRule(change={"prompt_tokens": 2048}),
        F.TrafficRule(change={"rps": 2.0}, namespace="ns", target=("Service", "s")),
    ]
    (tmp_path / F.LEDGER_FILE).write_text(
        json.dumps(
            {
                "clients": {
                    "ns/chat": {
                        "target": "Service ns/chat",
                        "rps": 3.0,
                        "rate": 2.9,
                        "sent": 40,
                        "answered": {"aaa": 30, "bbb": 10},
                        "mirrored": {},
                    }
                }
            }
        )
    )
    capsys.readouterr()
    assert main(["dev", "--dir", str(tmp_path), "traffic", "show"]) == 0
    out = capsys.readouterr().out
    assert "ns/chat" in out and "aaa 75%, bbb 25%" in out
