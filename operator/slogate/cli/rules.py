"""``slogate rules FILE_OR_NAME``: the Prometheus alerting rules for a ModelDeployment's SLOs.

The argument is a manifest (a path, or ``-`` for stdin; every ModelDeployment in it) or, when no
such file exists, the name of a ModelDeployment fetched from the cluster (``KUBECONFIG`` and
``--context`` as kubectl). Prints a rules file for plain Prometheus, or with ``--prometheus-rule``
a prometheus-operator ``PrometheusRule`` (owned by the ModelDeployment when fetched from the
cluster, so it goes away with it). The rules themselves are built by ``core.rules``; docs/alerting.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slogate import constants as C


def _load_manifests(source: str) -> list[dict[str, Any]]:
    import yaml

    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return [
        doc
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
        and doc.get("kind") == "ModelDeployment"
        and doc.get("apiVersion", "").startswith(f"{C.GROUP}/")
    ]


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    from kubernetes import client

    from slogate.cli.commands import api_client

    api = client.CustomObjectsApi(api_client(args.kubeconfig, args.context))
    return api.get_namespaced_custom_object(C.GROUP, C.VERSION, args.namespace, C.PLURAL, args.target)


def _owner_reference(md: dict[str, Any]) -> dict[str, Any] | None:
    uid = md.get("metadata", {}).get("uid")
    if not uid:
        return None
    return {
        "apiVersion": md.get("apiVersion", f"{C.GROUP}/{C.VERSION}"),
        "kind": "ModelDeployment",
        "name": md["metadata"]["name"],
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": False,
    }


def render(mds: list[dict[str, Any]], *, default_namespace: str, prometheus_rule: bool) -> str:
    """YAML for the ModelDeployments: one rules file with every group, or one PrometheusRule each."""
    import yaml

    from slogate.api.v1alpha1 import ModelDeploymentSpec
    from slogate.core import rules

    docs: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for md in mds:
        meta = md.get("metadata") or {}
        name, namespace = meta["name"], meta.get("namespace") or default_namespace
        spec = ModelDeploymentSpec.model_validate(md.get("spec") or {})
        if prometheus_rule:
            docs.append(
                rules.prometheus_rule(
                    name=name, namespace=namespace, spec=spec, owner_reference=_owner_reference(md)
                )
            )
        else:
            groups += rules.build_rule_groups(name=name, namespace=namespace, spec=spec)
    if not prometheus_rule:
        docs = [{"groups": groups}]
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=1_000_000)


def _cmd(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    try:
        if args.target == "-" or Path(args.target).is_file():
            mds = _load_manifests(args.target)
            if not mds:
                print(f"error: {args.target}: no ModelDeployment in it", file=sys.stderr)
                return 1
        else:
            from kubernetes.client.rest import ApiException

            try:
                mds = [_fetch(args)]
            except ApiException as exc:
                print(f"error: {args.namespace}/{args.target}: {exc.status} {exc.reason}", file=sys.stderr)
                return 1
        out = render(mds, default_namespace=args.namespace, prometheus_rule=args.prometheus_rule)
    except (OSError, ValueError, ValidationError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``rules`` to the main parser."""
    p = sub.add_parser(
        "rules",
        help="Prometheus SLO recording rules and burn-rate alerts for a ModelDeployment (file or cluster)",
    )
    p.add_argument(
        "target", metavar="FILE_OR_NAME", help="a manifest path (or -), or a ModelDeployment's name"
    )
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument(
        "--prometheus-rule",
        action="store_true",
        help="print a monitoring.coreos.com/v1 PrometheusRule instead of a plain rules file",
    )
    p.add_argument("--kubeconfig")
    p.add_argument("--context")
    p.set_defaults(func=_cmd)
