"""``slogate run``: configure logging, the Kubernetes client and kopf, then run until SIGTERM."""

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
    )


def _api_client(kubeconfig: str | None):  # noqa: ANN202 - kubernetes.client.ApiClient
    from kubernetes import client, config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        return config.new_client_from_config()


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
    api = _api_client(args.kubeconfig)
    api.user_agent = f"slogate/{cfg.identity}"  # audit logs tell replicas apart
    handlers.RUNTIME.kube = Kube(api)
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
