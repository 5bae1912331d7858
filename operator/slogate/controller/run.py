"""``slogate run``: configure logging, the Kubernetes client and kopf, then run until SIGTERM.

Before anything starts, ``startup_problem`` asks the API server what the operator cannot do without:
that it answers, and that the credentials may read what the caches list. A missing piece stops the
operator with one line naming it and exit 1 (a pod restarts with that line in its log), instead of
informers retrying a refused connection forever (issue 16).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from slogate.config import OperatorConfig, read_price_table
from slogate.core.cost import PriceTableError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        help="watch this namespace (repeatable); default: cluster-wide",
    )
    p.add_argument("--prometheus-url", help="Prometheus for analysis and KEDA triggers (env PROMETHEUS_URL)")
    p.add_argument("--metrics-port", type=int, help="operator /metrics port (0 disables; default 8080)")
    p.add_argument(
        "--health-port", type=int, help="liveness/readiness /healthz port (0 disables; default 8081)"
    )
    p.add_argument("--bind-address", help="address for the metrics and health endpoints")
    p.add_argument("--resync-seconds", type=float, help="reconcile every object at least this often")
    p.add_argument("--workers", type=int, help="concurrent reconciles")
    p.add_argument("--log-format", choices=["text", "json"], help="log format")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    p.add_argument(
        "--leader-elect",
        action="store_true",
        default=None,
        help="only the holder of a coordination.k8s.io Lease reconciles (run several replicas)",
    )
    p.add_argument("--lease-namespace", help="namespace of the Lease (env POD_NAMESPACE)")
    p.add_argument("--identity", help="this replica's identity in the Lease (env POD_NAME)")
    p.add_argument(
        "--quality-endpoints",
        help="how quality gates reach pods: dns (default) or bridge:DIR (the local cluster's pod bridge)",
    )
    p.add_argument(
        "--prices-file", help="GPU price table, YAML (env SLOGATE_PRICES_FILE); default: the built-in table"
    )


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    return OperatorConfig.from_env(
        namespaces=args.namespaces,
        prometheus_url=args.prometheus_url,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        bind_address=args.bind_address,
        resync_seconds=args.resync_seconds,
        workers=args.workers,
        log_format=args.log_format,
        leader_election=args.leader_elect,
        lease_namespace=args.lease_namespace,
        identity=args.identity,
        prices_file=getattr(args, "prices_file", None),
        quality_endpoints=getattr(args, "quality_endpoints", None),
    )


def _api_client(kubeconfig: str | None):  # noqa: ANN202 - kubernetes.client.ApiClient
    from kubernetes import client, config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException as in_cluster:
        try:
            return config.new_client_from_config()
        except config.ConfigException as exc:
            raise config.ConfigException(f"not in-cluster ({in_cluster}) and no kubeconfig ({exc})") from exc


def startup_problem(kube, cfg: OperatorConfig) -> str | None:  # noqa: ANN001 - adapters.kube.Kube
    """What stops the operator from working with this API server and these credentials, as one line;
    None when nothing does.

    One GET of /version without retries (no retry warnings before the line), then a LIST (limit 1) of
    every kind the caches will list, where they will list it, and with leader election a GET of the
    Lease: only requests the operator sends anyway, so the granted RBAC stays exactly what is used.
    A kind the server does not serve (404) is fine, as it is for the caches. Writes are not probed (that
    would need SelfSubjectAccessReviews): a missing write permission shows at the first write, in the
    ModelDeployment's status and an Event."""
    import json

    import urllib3
    from kubernetes.client.rest import ApiException

    from slogate.adapters.cache import informers_for
    from slogate.adapters.kube import PLURALS, _path
    from slogate.controller.reconcile import CHILD_KINDS

    host = kube.api.configuration.host
    method, url, headers, _, _ = kube.api.param_serialize(
        method="GET", resource_path="/version", auth_settings=["BearerToken"]
    )
    try:
        answer = kube.api.rest_client.pool_manager.request(
            method, url, headers=headers, timeout=urllib3.Timeout(connect=10, read=10), retries=False
        )
    except urllib3.exceptions.HTTPError as exc:
        return f"cannot reach the Kubernetes API server at {host}: {exc}"
    if answer.status == 401:
        return f"the Kubernetes API server at {host} rejects the credentials (401 Unauthorized: token invalid or expired)"

    def resource(api_version: str, kind: str) -> str:  # as RBAC spells it: modeldeployments.slogate.io
        group = api_version.rpartition("/")[0]
        return PLURALS[kind] + (f".{group}" if group else "")

    reads: list[tuple[str, str, str | None]] = []  # (what, path, namespace)
    for informer in informers_for(kube, list(cfg.namespaces), CHILD_KINDS, lambda _: None):
        w = informer.watched
        path = _path(w.api_version, w.kind, informer.namespace)
        reads.append((f"list {resource(w.api_version, w.kind)}", path, informer.namespace))
    if cfg.leader_election:
        lease = ("coordination.k8s.io/v1", "Lease")
        path = _path(*lease, cfg.lease_namespace, cfg.lease_name)
        reads.append((f"get {resource(*lease)}", path, cfg.lease_namespace))
    refused: list[str] = []
    user = ""
    for what, path, namespace in reads:
        try:
            kube._call("GET", path, query=[("limit", "1")] if what.startswith("list") else None)
        except ApiException as exc:
            if exc.status == 404:
                continue
            try:
                message = json.loads(exc.body or "{}").get("message") or exc.reason
            except (ValueError, AttributeError):
                message = exc.reason
            if exc.status != 403:
                return f"the Kubernetes API server at {host} answers {what}: {exc.status} {message}"
            user = user or message.partition("User ")[2].partition(" cannot")[0]
            refused.append(f"{what} ({f'in {namespace}' if namespace else 'cluster-wide'})")
        except urllib3.exceptions.HTTPError as exc:
            return f"cannot reach the Kubernetes API server at {host}: {exc}"
    if refused:
        return (
            f"RBAC refuses {user or 'these credentials'} what the operator needs at {host}: "
            f"{', '.join(refused)} (the chart's RBAC grants it: docs/install.md)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # Before importing the Kubernetes client: it reads KUBECONFIG at import time, and kopf's own
        # login (login_via_client) uses the client's default location.
        os.environ["KUBECONFIG"] = args.kubeconfig
    import kopf
    from prometheus_client import start_http_server

    from slogate.adapters.kube import Kube
    from slogate.controller import handlers
    from slogate.controller.reconcile import Reconciler
    from slogate.telemetry import REGISTRY

    cfg = config_from_args(args)
    try:
        # Before anything starts: a bad price table stops the operator with one clear line (exit 2),
        # not a traceback; in a rolling upgrade the old pods keep running (docs/cost.md).
        prices = read_price_table(cfg.prices_file)
    except PriceTableError as exc:
        print(f"slogate run: invalid price table {exc}", file=sys.stderr)
        return 2
    if not cfg.identity:
        import socket

        cfg = cfg.model_copy(update={"identity": f"{socket.gethostname()}-{os.getpid()}"})
    kopf.configure(
        verbose=cfg.log_level == "DEBUG",
        log_format=kopf.LogFormat.JSON if cfg.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(cfg.log_level)
    logging.getLogger("slogate.run").info(
        "price table: %s, %s, %d GPU products, default %s per GPU-hour",
        prices.source,
        prices.currency,
        len(prices.gpu_hourly),
        prices.default,
    )
    handlers.RUNTIME.config = cfg
    from kubernetes.config import ConfigException

    try:
        api = _api_client(args.kubeconfig)
    except ConfigException as exc:
        print(f"slogate run: no Kubernetes configuration: {exc}", file=sys.stderr)
        return 1
    api.user_agent = f"slogate/{cfg.identity}"  # audit logs tell replicas apart
    handlers.RUNTIME.kube = Kube(api)
    problem = startup_problem(handlers.RUNTIME.kube, cfg)
    if problem:
        print(f"slogate run: {problem}", file=sys.stderr)
        return 1
    handlers.RUNTIME.reconciler = Reconciler(handlers.RUNTIME.kube, cfg, prices=prices)
    if cfg.metrics_port:
        start_http_server(cfg.metrics_port, addr=cfg.bind_address, registry=REGISTRY)
    liveness = f"http://{cfg.bind_address}:{cfg.health_port}/healthz" if cfg.health_port else None
    asyncio.run(
        kopf.operator(
            # No kopf peering: high availability is the Lease (--leader-elect, controller.leader).
            standalone=True,
            clusterwide=not cfg.namespaces,
            namespaces=cfg.namespaces,
            liveness_endpoint=liveness,
        )
    )
    return 0
