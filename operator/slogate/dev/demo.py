"""``make demo``: the whole story on the local control plane, told live in the terminal.

1. A local control plane with GPU-shaped nodes, Prometheus and model-server simulators comes up, the
   operator starts, and ``examples/quickstart/`` is applied: the first revision becomes Ready.
2. A new revision starts a canary; its simulators are told to answer with 900 ms TTFT (fault
   injection); the operator's analysis sees the breach and rolls it back on its own.
3. A healthy revision is promoted step by step.
Traffic comes from the local cluster's front door (``slogate.dev.frontdoor``): clients send 10
requests a second to the ModelDeployment's Service, and kube-proxy's choice over Ready endpoints
decides which revision answers, so the canary's share is its share of Ready pods. The screen shows
the rate and each revision's share of the answers in the current chapter.
Progress is a status table that refreshes as it happens. Everything started is stopped at the end
(``make demo-down`` cleans up an interrupted run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from slogate import constants as C

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart" / "modeldeployment.yaml"
BAD_MODEL = "hf://meta-llama/Llama-3.2-3B-Instruct"
GOOD_MODEL = "hf://meta-llama/Llama-3.1-8B-Instruct-FP8"


class Screen:
    """Redraws in place on a terminal; prints only changes otherwise (CI logs, pipes)."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = ""
        self.chapter = ""

    def title(self, text: str) -> None:
        self.chapter = text
        print(f"\n\033[1m== {text}\033[0m" if self.tty else f"\n== {text}", flush=True)
        self.last = ""

    def show(self, body: str) -> None:
        if body == self.last:
            return
        if self.tty:
            sys.stdout.write("\033[H\033[2J\033[1m== " + self.chapter + "\033[0m\n\n" + body + "\n")
        else:
            stamp = time.strftime("%H:%M:%S")
            print(f"[{stamp}]\n{body}", flush=True)
        sys.stdout.flush()
        self.last = body


def _events(api: Any, name: str, limit: int = 6) -> list[str]:
    from kubernetes import client

    items = (
        client.CoreV1Api(api)
        .list_namespaced_event(
            "default", field_selector=f"involvedObject.name={name},involvedObject.kind=ModelDeployment"
        )
        .items
    )
    items.sort(key=lambda e: e.last_timestamp or e.event_time or e.first_timestamp)
    return [f"  {'⚠' if e.type == 'Warning' else '•'} {e.reason}: {e.message}" for e in items[-limit:]]


def traffic_lines(now: dict[str, Any] | None, before: dict[str, Any] | None) -> list[str]:
    """What the front door's clients of one ModelDeployment sent and which revisions answered, since
    ``before`` (a ledger entry of ``traffic.json``, ``None``: since the start). Pure.

    >>> traffic_lines({"rps": 10, "rate": 9.9, "sent": 30, "target": "Service default/m",
    ...                "answered": {"a": 27, "b": 3}, "seen": {"ok": 30}, "mirrored": {}}, None)
    ['traffic: 10 req/s offered to Service default/m, 9.9 req/s measured; 30 sent, 30 ok', '  answered by revision: a 90% (27), b 10% (3)']
    """
    if not now:
        return ["traffic: no client yet"]
    before = before or {}

    def delta(table: str) -> dict[str, int]:
        old = before.get(table) or {}
        out = {k: v - old.get(k, 0) for k, v in (now.get(table) or {}).items()}
        return {k: v for k, v in out.items() if v > 0}

    sent = now["sent"] - before.get("sent", 0)
    answered, seen = delta("answered"), delta("seen")
    total = sum(answered.values())
    failed = sum(v for k, v in seen.items() if k != "ok")
    lines = [
        f"traffic: {now['rps']:g} req/s offered to {now['target']}, {now['rate']:g} req/s measured;"
        f" {sent} sent, {seen.get('ok', 0)} ok" + (f", {failed} failed" if failed else "")
    ]
    if total:
        split = ", ".join(f"{rev} {round(100 * n / total)}% ({n})" for rev, n in sorted(answered.items()))
        lines.append(f"  answered by revision: {split}")
    mirrored = delta("mirrored")
    if mirrored:
        lines.append("  mirrored to: " + ", ".join(f"{rev} ({n})" for rev, n in sorted(mirrored.items())))
    return lines


def _watch(
    screen: Screen,
    api: Any,
    name: str,
    done: Callable[[dict[str, Any]], bool],
    *,
    timeout: float,
    directory: Path | None = None,
) -> dict[str, Any]:
    from kubernetes import client

    from slogate.cli.status import render_table
    from slogate.dev.frontdoor import read_ledger

    custom = client.CustomObjectsApi(api)
    key = f"default/{name}"
    before = read_ledger(directory).get(key) if directory else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = custom.get_namespaced_custom_object(C.GROUP, C.VERSION, "default", C.PLURAL, name)
        traffic = traffic_lines(read_ledger(directory).get(key), before) if directory else []
        screen.show(
            render_table([md])
            + ("\n\n" + "\n".join(traffic) if traffic else "")
            + "\n\nrecent events:\n"
            + "\n".join(_events(api, name))
        )
        if done(md):
            return md
        time.sleep(1.0)
    raise SystemExit(
        f"demo: timed out after {timeout:.0f}s in '{screen.chapter}' (logs: operator.log in the demo dir)"
    )


def run(directory: Path, *, keep: bool) -> int:
    from kubernetes import client, config

    from slogate.api.v1alpha1 import ModelDeploymentSpec
    from slogate.cli.status import explain_lines
    from slogate.core.naming import revision_of
    from slogate.dev.cli import set_simulators
    from slogate.dev.cluster import LocalCluster, free_port

    screen = Screen()
    if os.environ.get("KUBECONFIG"):
        print(
            "note: KUBECONFIG is set, but this demo runs on its own local control plane and leaves your cluster\n"
            "alone. To tell the same story on a real cluster: install the chart (docs/install.md), apply\n"
            "examples/quickstart/, and roll a new model revision; fault injection needs the simulator image\n"
            "(docs/simulator.md) in place of a real engine.\n"
        )
    screen.title("starting the local control plane (etcd, API server, scheduler, kwok GPU nodes, Prometheus)")
    cluster = LocalCluster(directory)
    cluster.up()
    try:
        print(f"   up in {cluster.state['startup_seconds']}s — {cluster.dir}", flush=True)
        print(
            cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product,nvidia.com/gpu.count"), flush=True
        )
        cluster._start(  # recorded with the cluster's processes, so `make demo-down` stops it too
            "operator",
            [
                sys.executable,
                "-m",
                "slogate",
                "run",
                f"--kubeconfig={cluster.dir / 'operator.kubeconfig'}",
                f"--prometheus-url={cluster.prometheus_url}",
                f"--metrics-port={free_port()}",
                f"--health-port={free_port()}",
                "--bind-address=127.0.0.1",
                "--resync-seconds=3",
                f"--quality-endpoints=bridge:{cluster.dir}",
            ],
        )
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        custom = client.CustomObjectsApi(api)
        doc = yaml.safe_load(QUICKSTART.read_text())
        name = doc["metadata"]["name"]

        screen.title("1/3  apply examples/quickstart/: the first revision comes up on H100/A100 nodes")
        cluster.kubectl("apply", "--server-side", "-f", str(QUICKSTART.parent))
        md = _watch(
            screen,
            api,
            name,
            lambda m: (m.get("status") or {}).get("phase") == "Ready",
            timeout=120,
            directory=cluster.dir,
        )
        first = md["status"]["stableRevision"]
        time.sleep(2)

        screen.title(f"2/3  a new revision ({BAD_MODEL}) with 900 ms TTFT injected: the SLO says 500 ms")
        bad_spec = {**doc["spec"], "model": {**doc["spec"]["model"], "source": BAD_MODEL}}
        bad = revision_of(ModelDeploymentSpec.model_validate(bad_spec))
        set_simulators(
            cluster.dir, namespace="default", selector=f"{C.LABEL_REVISION}={bad}", change={"ttft_ms": 900}
        )
        custom.patch_namespaced_custom_object(
            C.GROUP, C.VERSION, "default", C.PLURAL, name, {"spec": {"model": {"source": BAD_MODEL}}}
        )
        md = _watch(
            screen,
            api,
            name,
            lambda m: (m.get("status") or {}).get("phase") == "RolledBack",
            timeout=240,
            directory=cluster.dir,
        )
        print("\n   the operator rolled it back on its own. `slogate explain` says why:\n", flush=True)
        core = client.CoreV1Api(api)
        events = [
            {
                "type": e.type,
                "reason": e.reason,
                "message": e.message,
                "lastTimestamp": (e.last_timestamp or e.event_time).isoformat()
                if (e.last_timestamp or e.event_time)
                else "",
            }
            for e in core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
        ]
        print("\n".join("   " + line for line in explain_lines(md, events)), flush=True)
        time.sleep(4)

        screen.title(f"3/3  a healthy revision ({GOOD_MODEL}) is promoted step by step")
        custom.patch_namespaced_custom_object(
            C.GROUP, C.VERSION, "default", C.PLURAL, name, {"spec": {"model": {"source": GOOD_MODEL}}}
        )
        good_spec = {**doc["spec"], "model": {**doc["spec"]["model"], "source": GOOD_MODEL}}
        good = revision_of(ModelDeploymentSpec.model_validate(good_spec))
        md = _watch(
            screen,
            api,
            name,
            lambda m: (
                (m.get("status") or {}).get("stableRevision") == good
                and (m.get("status") or {}).get("phase") == "Ready"
            ),
            timeout=300,
            directory=cluster.dir,
        )
        print(f"\n   done: {first} → {bad} rolled back (TTFT breach) → {good} promoted.", flush=True)
        print("   history:", flush=True)
        for h in md["status"].get("history", []):
            print(f"     {h['time']}  {h['revision']}  {h['outcome']}  {h.get('reason', '')}", flush=True)
        if keep:
            print(
                f"\n   left running (--keep): `source {cluster.env_file}`; `slogate status -w`; stop with `make demo-down`."
            )
        return 0
    finally:
        if not keep:
            left = cluster.down()
            print("\n   stopped everything" + (f" except {left}" if left else "") + ".", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slogate.dev.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / ".slogate-demo"), type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the cluster and operator running")
    args = parser.parse_args(argv)
    return run(args.dir, keep=args.keep)


if __name__ == "__main__":
    raise SystemExit(main())
