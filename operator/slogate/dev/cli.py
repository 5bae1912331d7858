"""``slogate dev``: up, status, down, and ``sim set|list`` for fault injection."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from slogate.sim.config import QUALITY_FAULTS


def _dir(args: argparse.Namespace) -> Path:
    from slogate.dev.cluster import default_dir

    return Path(args.dir) if args.dir else default_dir()


def _cmd_up(args: argparse.Namespace) -> int:
    from slogate.dev.cluster import ClusterError, LocalCluster
    from slogate.dev.nodes import PRODUCTS, NodeSet

    nodes = NodeSet(
        gpu_nodes=args.gpu_nodes,
        products=tuple(PRODUCTS[p] for p in args.products.split(",")) if args.products else NodeSet.products,
        gpus_per_node=(args.gpus_per_node,) if args.gpus_per_node else NodeSet.gpus_per_node,
        cpu_nodes=args.cpu_nodes,
        pods_per_node=args.pods_per_node,
    )
    cluster = LocalCluster(_dir(args), nodes=nodes, optional_crds=not args.no_optional_crds)
    try:
        cluster.up()
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"local control plane up in {cluster.state['startup_seconds']}s ({cluster.dir})", file=sys.stderr)
    sys.stdout.write(cluster.env_file.read_text())
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from slogate.dev.cluster import ClusterError, LocalCluster

    try:
        cluster = LocalCluster.load(_dir(args))
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    st = cluster.status()
    for name, info in st["components"].items():
        print(f"{name:26} pid {info['pid']:<8} {'running' if info['running'] else 'STOPPED'}")
    print(f"kubeconfig: {st['kubeconfig']}")
    if all(i["running"] for i in st["components"].values()) and st["components"]:
        print(cluster.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product,nvidia.com/gpu.count"), end="")
        return 0
    return 1


def _cmd_down(args: argparse.Namespace) -> int:
    from slogate.dev.cluster import ClusterError, LocalCluster

    try:
        cluster = LocalCluster.load(_dir(args))
    except ClusterError as exc:
        print(f"nothing to stop: {exc}", file=sys.stderr)
        return 0
    left = cluster.down()
    if left:
        print(f"error: still running: {', '.join(left)}", file=sys.stderr)
        return 1
    print("local control plane stopped", file=sys.stderr)
    return 0


def _sims(directory: Path) -> dict[str, dict[str, Any]]:
    path = directory / "sims.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _admin(port: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/admin/config"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method="POST" if data else "GET", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def set_simulators(
    directory: Path,
    *,
    namespace: str,
    change: dict[str, float | int | str],
    selector: str | None = None,
    pod: str | None = None,
) -> list[str]:
    """Fault injection: change the simulators of matching pods now, and record the setting so pods that
    match and start later get it too. Returns the ``namespace/pod`` names changed now. Used by
    ``slogate dev sim set``, the demo, the benchmarks and the tests."""
    from slogate.dev.bridge import parse_selector, selector_matches

    if bool(pod) == bool(selector):
        raise ValueError("give exactly one of a pod name or a label selector")
    labels = parse_selector(selector) if selector else {}
    rules_path = directory / "sim-rules.json"
    rules = json.loads(rules_path.read_text()) if rules_path.exists() else []
    rules.append({"namespace": namespace, "pod": pod, "selector": labels, "config": change})
    rules_path.write_text(json.dumps(rules, indent=1))
    changed = []
    for sim in _sims(directory).values():
        if sim["namespace"] != namespace:
            continue
        if (pod and sim["pod"] == pod) or (labels and selector_matches(labels, sim["labels"])):
            _admin(sim["port"], change)
            changed.append(f"{sim['namespace']}/{sim['pod']}")
    return changed


def _cmd_sim_set(args: argparse.Namespace) -> int:
    change = {
        k: v
        for k, v in {
            "ttft_ms": args.ttft_ms,
            "itl_ms": args.itl_ms,
            "error_rate": args.error_rate,
            "error_stage": args.error_stage,
            "overload_rate": args.overload_rate,
            "client_drop_rate": args.client_drop_rate,
            "rps": args.rps,
            "streamed_share": args.streamed_share,
            "prompt_tokens": args.prompt_tokens,
            "generation_tokens": args.generation_tokens,
            **{name: getattr(args, name, None) for name in QUALITY_FAULTS},
        }.items()
        if v is not None
    }
    if not change:
        print(
            "error: nothing to set (use --ttft-ms, --itl-ms, --error-rate, --error-stage,"
            " --overload-rate, --client-drop-rate, --rps, --streamed-share, --prompt-tokens or --generation-tokens)",
            file=sys.stderr,
        )
        return 2
    try:
        changed = set_simulators(
            _dir(args), namespace=args.namespace, change=change, selector=args.selector, pod=args.pod
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in changed:
        print(f"{name}: {change}")
    if not changed:
        print(
            "no running simulator matched now; the setting applies to matching pods when they start",
            file=sys.stderr,
        )
    return 0


def _cmd_sim_list(args: argparse.Namespace) -> int:
    rows = []
    for sim in _sims(_dir(args)).values():
        try:
            cfg = _admin(sim["port"])
        except OSError as exc:
            cfg = {"error": str(exc)}
        rows.append((f"{sim['namespace']}/{sim['pod']}", sim["port"], cfg))
    print(
        f"{'POD':50} {'PORT':6} {'MODE':5} {'TTFT':>7} {'ITL':>6} {'ERR':>6} {'RPS':>5} {'PROMPT':>6} {'GEN':>5}"
    )
    for name, port, cfg in rows:
        print(
            f"{name:50} {port:<6} {cfg.get('mode', '?'):5} {cfg.get('ttft_ms', 0):>5.0f}ms {cfg.get('itl_ms', 0):>4.0f}ms "
            f"{cfg.get('error_rate', 0):>6.3f} {cfg.get('rps', 0):>5.1f} "
            f"{cfg.get('prompt_tokens', 0):>6} {cfg.get('generation_tokens', 0):>5}"
        )
    return 0


def _cmd_traffic_set(args: argparse.Namespace) -> int:
    from slogate.dev.frontdoor import TrafficError, set_traffic

    change = {
        k: v
        for k, v in {
            "rps": args.rps,
            "streamed_share": args.streamed_share,
            "prompt_tokens": args.prompt_tokens,
            "generation_tokens": args.generation_tokens,
            "jitter": args.jitter,
        }.items()
        if v is not None
    }
    if not change:
        print(
            "error: nothing to change (give --rps, --streamed-share, --prompt-tokens, ...)", file=sys.stderr
        )
        return 2
    target = None
    if args.service or args.route:
        if args.all_namespaces:
            print("error: a --service or --route target needs one namespace", file=sys.stderr)
            return 2
        target = ("Service", args.service) if args.service else ("HTTPRoute", args.route)
    try:
        rule = set_traffic(
            _dir(args),
            change=change,
            namespace=None if args.all_namespaces else args.namespace,
            name=args.name,
            target=target,
            model=args.model,
        )
    except TrafficError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rule.to_dict()))
    return 0


def _cmd_traffic_show(args: argparse.Namespace) -> int:
    from slogate.dev.frontdoor import read_ledger, shares

    ledger = read_ledger(_dir(args))
    if args.json:
        print(json.dumps(ledger, indent=1))
        return 0
    print(f"{'CLIENT':40} {'TARGET':36} {'RPS':>6} {'RATE':>6} {'SENT':>7}  ANSWERED BY REVISION (share)")
    for key, c in ledger.items():
        split = ", ".join(f"{rev} {pct:g}%" for rev, pct in shares(c["answered"]).items()) or "-"
        mirrored = f"; mirrored {c['mirrored']}" if c.get("mirrored") else ""
        print(f"{key:40} {c['target']:36} {c['rps']:>6g} {c['rate']:>6g} {c['sent']:>7}  {split}{mirrored}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``slogate dev ...`` to the main parser."""
    dev = sub.add_parser(
        "dev", help="the local control plane with GPU-shaped fake nodes, Prometheus and simulators"
    )
    dev.add_argument("--dir", help="cluster directory (default: $SLOGATE_DEV_DIR or ./.slogate-dev)")
    dsub = dev.add_subparsers(dest="dev_command", required=True)

    p = dsub.add_parser(
        "up", help="start etcd, API server, controller-manager, scheduler, kwok, Prometheus, bridge"
    )
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.add_argument("--gpu-nodes", type=int, default=3, help="number of GPU nodes (default 3)")
    p.add_argument("--gpus-per-node", type=int, help="GPUs on every GPU node (default: 4, 2, 1 in turn)")
    p.add_argument("--cpu-nodes", type=int, default=1, help="number of CPU-only nodes (default 1)")
    p.add_argument(
        "--pods-per-node", type=int, default=110, help="every node's pod capacity (default 110, as a kubelet)"
    )
    p.add_argument("--products", help="comma-separated GPU products to cycle through")
    p.add_argument(
        "--no-optional-crds", action="store_true", help="skip Gateway API, KEDA and prometheus-operator CRDs"
    )
    p.set_defaults(func=_cmd_up)

    p = dsub.add_parser("status", help="show the components and nodes")
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_status)

    p = dsub.add_parser("down", help="stop every process the cluster started")
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_down)

    sim = dsub.add_parser("sim", help="inspect and steer the model-server simulators")
    ssub = sim.add_subparsers(dest="sim_command", required=True)
    p = ssub.add_parser(
        "set", help="change latency, errors, traffic or request mix of simulators (fault injection)"
    )
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.add_argument("pod", nargs="?", help="pod name")
    p.add_argument("-l", "--selector", help="label selector, e.g. slogate.io/revision=abc123")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--ttft-ms", type=float)
    p.add_argument("--itl-ms", type=float)
    p.add_argument("--error-rate", type=float, help="fraction of requests failing with an engine-side fault")
    p.add_argument(
        "--error-stage",
        choices=("midstream", "prestream"),
        help="where --error-rate faults happen: mid-stream after some tokens (HTTP 200 + SSE error when"
        " streamed) or before the engine (vLLM JSON 500; TGI failed prefill)",
    )
    p.add_argument(
        "--overload-rate", type=float, help="fraction shed for load (TGI 429 overloaded, vLLM 503)"
    )
    p.add_argument(
        "--client-drop-rate",
        type=float,
        help="fraction the client abandons after some tokens (TGI err=dropped; not a server fault)",
    )
    p.add_argument(
        "--rps",
        type=float,
        help="synthetic requests/s inside the simulator (0 by default: client traffic comes from the front door,"
        " `slogate dev traffic`)",
    )
    p.add_argument(
        "--streamed-share", type=float, help="fraction of synthetic requests sent streamed (default 1)"
    )
    p.add_argument(
        "--prompt-tokens", type=int, help="mean prompt length of synthetic requests (shifts the request mix)"
    )
    p.add_argument("--generation-tokens", type=int, help="mean generated length of synthetic requests")
    for name in QUALITY_FAULTS:  # answers wrong on purpose (docs/quality.md, slogate.sim.answers)
        p.add_argument(f"--{name.replace('_', '-')}", type=float, help="quality fault: share of answers")
    p.set_defaults(func=_cmd_sim_set)
    p = ssub.add_parser("list", help="list simulators and their settings")
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_sim_list)

    traffic = dsub.add_parser(
        "traffic",
        help="the front door: client requests to each ModelDeployment through its Service or HTTPRoute",
    )
    tsub = traffic.add_subparsers(dest="traffic_command", required=True)
    p = tsub.add_parser("set", help="change the request rate or mix of ModelDeployments' clients")
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.add_argument("name", nargs="?", help="ModelDeployment (default: every one in the namespace)")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--rps", type=float, help="requests a second (0 stops the client)")
    p.add_argument("--streamed-share", type=float, help="fraction of requests sent streamed")
    p.add_argument("--prompt-tokens", type=int, help="mean prompt length, tokens (shifts the request mix)")
    p.add_argument("--generation-tokens", type=int, help="mean max_tokens")
    p.add_argument("--jitter", type=float, help="coefficient of variation of the lengths")
    p.add_argument("--service", help="a standalone client sending to this Service (not a ModelDeployment)")
    p.add_argument("--route", help="a standalone client sending to this HTTPRoute's first rule")
    p.add_argument("--model", help="model name a standalone client asks for")
    p.set_defaults(func=_cmd_traffic_set)
    p = tsub.add_parser("show", help="what each client sent and which revisions answered")
    p.add_argument("--dir", dest="dir", default=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_traffic_show)
