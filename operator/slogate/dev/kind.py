"""The kind path (docs/kind.md): everything about a kind cluster that is not a docker, kind or helm call.

``hack/kind/*.sh`` only run docker, kind and helm; what they feed them is rendered here, pure and
unit-tested: the kind Cluster config (the audit policy shared with the local API server, the audit
log on a host mount), the chart's values for kind, the Docker network's gateway address and the
environment ``make e2e-kind`` hands to pytest. The test fixtures (``slogate.dev.e2e``) import the
same constants, so the installed chart and the tests cannot disagree on names, ports or identity.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from slogate.dev.cluster import AUDIT_POLICY

CLUSTER_NAME = "slogate"
NAMESPACE = "slogate-system"
# The chart names everything after the release when the release name contains the chart's name:
# the Deployment is `slogate`, its pods carry app.kubernetes.io/instance=slogate.
RELEASE = "slogate"
SERVICE_ACCOUNT = "slogate-operator"
# The operator's user name in the audit log: the chart's ServiceAccount.
OPERATOR_USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
IMAGE = "slogate:kind"
# Prometheus runs on the host, bound to the kind network's gateway at this fixed port, so the chart's
# prometheus.url can be rendered before the tests start it.
PROMETHEUS_PORT = 29090
METRICS_PORT, HEALTH_PORT = 8080, 8081  # the chart's defaults (operator.metricsPort, healthPort)
# Inside the node container: the host directory with the audit policy and the audit log.
AUDIT_MOUNT = "/var/log/slogate-audit"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


def kind_config(
    *, audit_dir: Path, name: str = CLUSTER_NAME, node_image: str | None = None
) -> dict[str, Any]:
    """kind's Cluster config: one node whose API server audits writes into ``audit_dir`` on the host. Pure.

    The policy is ``slogate.dev.cluster.AUDIT_POLICY`` (written next to the log by ``write_config``).
    The kubeadm patch has no apiVersion, so kind merges it into whichever kubeadm API it generates for
    the node's Kubernetes version (v1beta4 turns the ``extraArgs`` map into its list form).
    """
    node: dict[str, Any] = {
        "role": "control-plane",
        "extraMounts": [{"hostPath": str(audit_dir.resolve()), "containerPath": AUDIT_MOUNT}],
        "kubeadmConfigPatches": [
            yaml.safe_dump(
                {
                    "kind": "ClusterConfiguration",
                    "apiServer": {
                        "extraArgs": {
                            "audit-policy-file": f"{AUDIT_MOUNT}/policy.yaml",
                            "audit-log-path": f"{AUDIT_MOUNT}/audit.log",
                            "audit-log-format": "json",
                            "audit-log-maxsize": "200",
                        },
                        "extraVolumes": [
                            {
                                "name": "slogate-audit",
                                "hostPath": AUDIT_MOUNT,
                                "mountPath": AUDIT_MOUNT,
                                "readOnly": False,
                                "pathType": "DirectoryOrCreate",
                            }
                        ],
                    },
                },
                sort_keys=False,
            )
        ],
    }
    if node_image:
        node["image"] = node_image
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "name": name, "nodes": [node]}


def helm_values(*, host_ip: str, image: str = IMAGE) -> dict[str, Any]:
    """The chart's values on kind. Pure; ``hack/kind/up.sh`` installs the chart with them.

    One replica without leader election, so stopping and starting it in the tests is a plain scale;
    the image loaded with ``kind load`` (never pulled); Prometheus on the host through the kind
    network's gateway; a 3 s resync like the local tests' operator; and the pod pinned to kind's real
    node (the fake kwok nodes would take it and never run it).
    """
    if ":" not in image.rsplit("/", 1)[-1]:
        raise ValueError(f"image {image!r} needs a tag (REPOSITORY:TAG)")
    repository, _, tag = image.rpartition(":")
    return {
        "fullnameOverride": RELEASE,
        "replicaCount": 1,
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "ha": {"leaderElection": {"enabled": False}},
        "prometheus": {"url": f"http://{host_ip}:{PROMETHEUS_PORT}"},
        "operator": {"resyncSeconds": 3, "logFormat": "text"},
        "nodeSelector": {CONTROL_PLANE: ""},
        "tolerations": [{"key": CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"}],
    }


def gateway_ip(inspect_json: str) -> str:
    """The IPv4 gateway of a Docker network from ``docker network inspect NAME`` output. Pure.

    >>> gateway_ip('[{"IPAM": {"Config": [{"Subnet": "fc00:f853::/64"}, {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}}]')
    '172.18.0.1'
    """
    for network in json.loads(inspect_json):
        for cfg in (network.get("IPAM") or {}).get("Config") or []:
            gateway = cfg.get("Gateway")
            if gateway and ipaddress.ip_address(gateway).version == 4:
                return gateway
    raise ValueError("the network has no IPv4 gateway (docker network inspect kind)")


def e2e_env(*, directory: Path, host_ip: str, name: str = CLUSTER_NAME) -> dict[str, str]:
    """The environment that selects the kind fixtures (read by ``slogate.dev.e2e.E2ESettings``). Pure."""
    directory = directory.resolve()
    return {
        "SLOGATE_E2E_CLUSTER": "kind",
        "SLOGATE_E2E_KUBECONFIG": str(directory / "kubeconfig"),
        "SLOGATE_E2E_CONTEXT": f"kind-{name}",
        "SLOGATE_E2E_HOST_IP": host_ip,
        "SLOGATE_E2E_AUDIT_LOG": str(directory / "audit" / "audit.log"),
    }


def write_config(directory: Path, *, node_image: str | None = None, name: str = CLUSTER_NAME) -> Path:
    """Write ``kind.yaml`` and ``audit/policy.yaml`` into ``directory``; returns the config's path.

    The audit log is created empty with mode 0644 before the API server opens it: its log writer keeps
    an existing file's mode (also across rotation), so the log written by root inside the node stays
    readable by the user running the tests.
    """
    audit = directory / "audit"
    audit.mkdir(parents=True, exist_ok=True)
    (audit / "policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
    log = audit / "audit.log"
    log.touch()
    log.chmod(0o644)
    path = directory / "kind.yaml"
    path.write_text(
        yaml.safe_dump(kind_config(audit_dir=audit, name=name, node_image=node_image), sort_keys=False)
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slogate.dev.kind", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="write DIR/kind.yaml and DIR/audit/; print the config's path")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--name", default=CLUSTER_NAME)
    p.add_argument("--node-image", default=None, help="kindest/node image (default: kind's own)")
    p = sub.add_parser("values", help="print the chart's values for kind (YAML)")
    p.add_argument("--host-ip", required=True)
    p.add_argument("--image", default=IMAGE)
    sub.add_parser("gateway", help="print the IPv4 gateway from `docker network inspect` JSON on stdin")
    p = sub.add_parser("env", help="print the shell exports that select the kind fixtures")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--host-ip", required=True)
    p.add_argument("--name", default=CLUSTER_NAME)
    args = parser.parse_args(argv)
    if args.command == "config":
        print(write_config(args.dir, node_image=args.node_image, name=args.name))
    elif args.command == "values":
        sys.stdout.write(yaml.safe_dump(helm_values(host_ip=args.host_ip, image=args.image), sort_keys=False))
    elif args.command == "gateway":
        try:
            print(gateway_ip(sys.stdin.read()))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        env = e2e_env(directory=args.dir, host_ip=args.host_ip, name=args.name)
        sys.stdout.write("".join(f"export {k}={v}\n" for k, v in env.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
