"""The pod-to-simulator bridge: every Running model-server pod gets a simulator on loopback.

kwok makes pods Running without running their containers, so nothing would answer on the pod's
metrics port. For each Running pod labelled ``slogate.io/deployment`` (or ``slogate.io/simulate=true``)
the bridge starts a ``slogate.sim`` simulator on a free 127.0.0.1 port, in vLLM, TGI or SGLang mode
after the pod's engine (``engine_mode``), and registers it in Prometheus ``file_sd`` with the pod's
labels turned into Prometheus labels the way a PodMonitor with ``podTargetLabels`` does
(``slogate.io/revision`` becomes ``slogate_io_revision``), plus ``namespace``, ``pod`` and
``container``. PromQL written for a real
cluster therefore works unchanged. When the pod goes, so does its simulator and its target.

With ``--traffic`` the same process runs the front door (``slogate.dev.frontdoor``): clients that
send each ModelDeployment's requests through its Service or HTTPRoute to these simulators.

Fault injection (``slogate dev sim set``) talks to the simulators' admin endpoints directly and
records label-selector rules in ``sim-rules.json`` that the bridge applies to pods created later.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
from pathlib import Path
from typing import Any

from slogate.sim import SimConfig, Simulator

log = logging.getLogger("slogate.dev.bridge")

SIM_LABELS = ("slogate.io/deployment", "slogate.io/simulate")
CONFIG_ANNOTATION = "sim.slogate.io/config"
DEFAULTS: dict[str, Any] = {"ttft_ms": 120.0, "itl_ms": 20.0, "error_rate": 0.0, "rps": 0.0}
"""A bridged simulator generates no load of its own (``rps`` 0): it serves what the front door
(``slogate.dev.frontdoor``) delivers to its pod. ``sim set --rps`` turns the synthetic load back on."""


def sanitize_label(name: str) -> str:
    """Prometheus label name for a Kubernetes label key, as prometheus-operator sanitises it. Pure.

    >>> sanitize_label("slogate.io/revision")
    'slogate_io_revision'
    """
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def wants_simulator(pod: dict[str, Any]) -> bool:
    """Whether the bridge serves this pod: labelled for it, Running, with an IP, not terminating. Pure."""
    meta = pod.get("metadata", {})
    labels = meta.get("labels") or {}
    if not ("slogate.io/deployment" in labels or labels.get("slogate.io/simulate") == "true"):
        return False
    if meta.get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and bool(status.get("podIP"))


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Equality-based label selector match. Pure."""
    return all(labels.get(k) == v for k, v in selector.items())


def parse_selector(text: str) -> dict[str, str]:
    """``a=b,c=d`` to a dict. Pure."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"only equality selectors (key=value) are supported, got {part!r}")
        out[key.strip()] = value.strip().lstrip("=")
    return out


def engine_mode(image: str, command: list[str]) -> str:
    """The simulator mode for an engine container, from its image and command line. Pure.

    SGLang: an image whose name contains ``sglang`` (``lmsysorg/sglang``), or a command that runs
    ``sglang.launch_server`` (``python3 -m sglang.launch_server``, which slogate emits; the image's
    own default command is a shell). TGI: ``text-generation-inference`` in the image. Anything else
    is vLLM.

    >>> engine_mode("lmsysorg/sglang:v0.5.23", [])
    'sglang'
    >>> engine_mode("registry.local/llm:1", ["python3", "-m", "sglang.launch_server", "--model-path", "m"])
    'sglang'
    >>> engine_mode("ghcr.io/huggingface/text-generation-inference:3.3.6", [])
    'tgi'
    """
    if "sglang" in image or any("sglang.launch_server" in part for part in command):
        return "sglang"
    if "text-generation-inference" in image:
        return "tgi"
    return "vllm"


def sim_config_for(pod: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The simulator settings for a pod: defaults, then its engine, then its annotation, then matching
    ``sim set`` rules in order. Pure."""
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    containers = pod.get("spec", {}).get("containers") or [{}]
    engine = containers[0]
    image = engine.get("image", "")
    args = [*engine.get("command", []), *engine.get("args", [])]
    mode = engine_mode(image, args)
    model = labels.get("slogate.io/deployment") or meta["name"]
    aliases: list[str] = []
    for flag in ("--served-model-name", "--model-id"):
        if flag in args:
            i = args.index(flag) + 1
            names = []
            while i < len(args) and not args[i].startswith("--"):
                names.append(args[i])
                i += 1
            if names:
                model, aliases = names[0], names[1:]
            break
    cfg: dict[str, Any] = {**DEFAULTS, "mode": mode, "model": model, "aliases": aliases}
    if mode == "sglang":
        path = _flag_value(args, "--model-path", "--model")
        if path is not None:
            cfg["model_path"] = path  # what /model_info shows
            if "--served-model-name" not in args:
                # SGLang serves under the model path by default
                # (sglang/srt/arg_groups/serving_hook.py:642-647 @ 0.5.23).
                cfg["model"] = path
    annotation = (meta.get("annotations") or {}).get(CONFIG_ANNOTATION)
    if annotation:
        cfg.update(json.loads(annotation))
    for rule in rules:
        if rule.get("namespace") not in (None, meta.get("namespace")):
            continue
        if rule.get("pod") and rule["pod"] != meta["name"]:
            continue
        if selector_matches(rule.get("selector") or {}, labels):
            cfg.update(rule["config"])
    return cfg


def _flag_value(args: list[str], *flags: str) -> str | None:
    """The value after the first of ``flags`` on a command line (``--flag value`` or
    ``--flag=value``), or ``None``. Pure."""
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args) and not args[i + 1].startswith("--"):
                return args[i + 1]
            if arg.startswith(flag + "="):
                return arg[len(flag) + 1 :]
    return None


def target_labels(pod: dict[str, Any]) -> dict[str, str]:
    """Prometheus target labels for a pod, as a PodMonitor with podTargetLabels gives them. Pure."""
    meta = pod["metadata"]
    labels = {sanitize_label(k): v for k, v in (meta.get("labels") or {}).items()}
    containers = pod.get("spec", {}).get("containers") or [{"name": "engine"}]
    labels.update({"namespace": meta["namespace"], "pod": meta["name"], "container": containers[0]["name"]})
    return labels


class Bridge:
    """Keeps one simulator per served pod and the file_sd targets in step with the cluster."""

    def __init__(
        self, directory: Path, kubeconfig: str, selector: str | None = None, *, traffic: bool = False
    ) -> None:
        self.dir = directory
        self.kubeconfig = kubeconfig
        self.selector = selector
        self.traffic = traffic
        self.sims: dict[str, tuple[Simulator, dict[str, Any], str]] = {}
        self.stopping = asyncio.Event()

    def _rules(self) -> list[dict[str, Any]]:
        path = self.dir / "sim-rules.json"
        return json.loads(path.read_text()) if path.exists() else []

    def _list_pods(self) -> list[dict[str, Any]]:
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(config_file=self.kubeconfig))
        result = api.list_pod_for_all_namespaces(
            label_selector=self.selector or "", _preload_content=False, timeout_seconds=10
        )
        return json.loads(result.data)["items"]

    async def sync(self) -> None:
        pods = await asyncio.to_thread(self._list_pods)
        wanted = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods if wants_simulator(p)
        }
        for key in [
            k for k in self.sims if k not in wanted or wanted[k]["metadata"]["uid"] != self.sims[k][2]
        ]:
            sim, _, _ = self.sims.pop(key)
            await sim.stop()
            log.info("stopped simulator for %s", key)
        rules = self._rules()
        for key, pod in wanted.items():
            if key in self.sims:
                continue
            cfg = sim_config_for(pod, rules)
            sim = Simulator(SimConfig(**cfg), host="127.0.0.1", port=0)
            await sim.start()
            self.sims[key] = (sim, pod, pod["metadata"]["uid"])
            log.info("started %s simulator for %s on port %d", cfg["mode"], key, sim.port)
        self._write()

    def _write(self) -> None:
        targets = []
        registry = {}
        for key, (sim, pod, _) in sorted(self.sims.items()):
            labels = target_labels(pod)
            targets.append({"targets": [f"127.0.0.1:{sim.port}"], "labels": labels})
            registry[key] = {
                "namespace": pod["metadata"]["namespace"],
                "pod": pod["metadata"]["name"],
                "port": sim.port,
                "labels": pod["metadata"].get("labels") or {},
            }
        sd = self.dir / "file_sd" / "sims.json"
        if sd.parent.exists():
            tmp = sd.with_suffix(".tmp")
            tmp.write_text(json.dumps(targets, indent=1))
            tmp.replace(sd)
        reg = self.dir / "sims.json"
        tmp = reg.with_suffix(".tmp")
        tmp.write_text(json.dumps(registry, indent=1))
        tmp.replace(reg)

    def simulator_of(self, namespace: str, pod: str) -> tuple[int, dict[str, str]] | None:
        """The port and labels of ``namespace/pod``'s simulator, ``None`` when it has none (the front
        door's lookup)."""
        found = self.sims.get(f"{namespace}/{pod}")
        if found is None:
            return None
        sim, served, _ = found
        return sim.port, served["metadata"].get("labels") or {}

    async def run(self, interval: float = 1.0) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        ready = self.dir / "bridge.ready"
        door: asyncio.Task[None] | None = None
        if self.traffic:
            from kubernetes import config

            from slogate.dev.frontdoor import ApiCache, FrontDoor

            cache = ApiCache(config.new_client_from_config(config_file=self.kubeconfig))
            cache.start()
            door = asyncio.create_task(
                FrontDoor(self.dir, cache, self.simulator_of, listening=lambda: frozenset(self.sims)).run(
                    self.stopping
                )
            )
        while not self.stopping.is_set():
            try:
                await self.sync()
                ready.touch()
            except Exception:
                log.exception("sync failed")
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
            except TimeoutError:
                pass
        if door is not None:
            await door
        for sim, _, _ in self.sims.values():
            await sim.stop()
        ready.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slogate.dev.bridge")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument(
        "--selector",
        help="serve only the pods matching this label selector (scale runs: a few probes among many)",
    )
    parser.add_argument(
        "--traffic", action="store_true", help="run the front door: requests to every ModelDeployment"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(Bridge(args.dir, args.kubeconfig, args.selector, traffic=args.traffic).run(args.interval))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
