"""Write the child objects the operator would build for every example ModelDeployment, for linting.

`make lint` (hack/lint/run.sh) runs kubeconform and checkov over this output: the engine Deployments,
Services, PDBs, autoscalers and PodMonitors come from the operator's own pure builders, so a schema
error or a pod-security regression in ``core/desired.py`` fails the lint without a cluster.

Per ModelDeployment in ``examples/`` (``--examples``), with every optional API installed:

* ``build_desired`` with the spec's own revision as stable and no canary (what a first reconcile
  applies);
* the same spec as the *candidate* of a rollout (``canary_revision``), of which only the objects not
  already built are kept (the ``NAME-canary`` Service);
* the ``gatewayAPI`` router's HTTPRoute (``core.traffic.build_httproute``) mid-rollout: weight 10, or
  mirroring for ``shadow``; the ``inferencePool`` router's two InferencePools and their HTTPRoute at
  weight 10;
* the PrometheusRule of its SLOs (``core.rules.prometheus_rule``).

One multi-document YAML file per example file is written into ``--out`` (``examples/a/b.yaml`` becomes
``a__b.yaml``); the summary on stderr counts ModelDeployments and objects by kind.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from slogate.api.v1alpha1 import ModelDeploymentSpec, Router, Strategy
from slogate.api.validation import is_model_deployment
from slogate.core import rules
from slogate.core.desired import build_desired
from slogate.core.naming import Capabilities, Owner, revision_of
from slogate.core.traffic import build_httproute, build_inference_pools

PROMETHEUS_URL = "http://prometheus-operated.monitoring:9090"
ALL_APIS = Capabilities(
    keda=True, prometheus_operator=True, prometheus_rules=True, gateway_api=True, inference_pool=True
)
# A stable revision that is not the spec's own: the spec is then built as a rollout's candidate.
OTHER_REVISION = "0" * 8


def children(md: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the operator builds for one ModelDeployment manifest (see the module docstring)."""
    meta = md["metadata"]
    name, namespace = meta["name"], meta.get("namespace") or "default"
    spec = ModelDeploymentSpec.model_validate(md.get("spec") or {})
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
    owner = Owner(
        name=name, uid=f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"
    )
    common: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "spec": spec,
        "owner": owner,
        "caps": ALL_APIS,
        "prometheus_url": PROMETHEUS_URL,
    }
    objects = list(build_desired(stable_revision=revision_of(spec), **common).objects)
    seen = {(o["kind"], o["metadata"]["name"]) for o in objects}
    candidate = build_desired(
        stable_revision=OTHER_REVISION, canary_revision=revision_of(spec), canary_replicas=1, **common
    )
    objects += [o for o in candidate.objects if (o["kind"], o["metadata"]["name"]) not in seen]
    traffic = spec.rollout.traffic
    if traffic is not None and traffic.router == Router.GATEWAY_API and traffic.gateway_api is not None:
        shadow = spec.rollout.strategy == Strategy.SHADOW
        objects.append(
            build_httproute(
                name=name,
                namespace=namespace,
                owner=owner,
                traffic=traffic.gateway_api,
                canary_weight=0 if shadow else 10,
                canary=True,
                mirror=shadow,
            )
        )
    if traffic is not None and traffic.router == Router.INFERENCE_POOL and traffic.inference_pool is not None:
        objects += build_inference_pools(
            name=name,
            namespace=namespace,
            owner=owner,
            stable=OTHER_REVISION,
            canary=revision_of(spec),
            port=spec.engine.port,
            traffic=traffic.inference_pool,
        )
        objects.append(
            build_httproute(
                name=name,
                namespace=namespace,
                owner=owner,
                traffic=traffic.inference_pool,
                canary_weight=10,
                canary=True,
                mirror=False,
            )
        )
    if spec.slo is not None and spec.slo.objectives:
        objects.append(
            rules.prometheus_rule(
                name=name, namespace=namespace, spec=spec, owner_reference=owner.reference()
            )
        )
    return objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=Path, required=True, help="the examples/ directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the YAML files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    mds, kinds = 0, Counter[str]()
    for path in sorted(args.examples.rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if is_model_deployment(d)]
        if not docs:
            continue
        objects = [o for md in docs for o in children(md)]
        mds += len(docs)
        kinds.update(o["kind"] for o in objects)
        target = args.out / path.relative_to(args.examples).as_posix().replace("/", "__")
        target.write_text(yaml.safe_dump_all(objects, sort_keys=False, width=1_000_000))
    if mds == 0:
        print(f"gen_children: no ModelDeployment under {args.examples}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(
        f"gen_children: {mds} ModelDeployments -> {sum(kinds.values())} objects ({summary})", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
