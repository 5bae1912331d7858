"""``slogate promote|pause|resume|abort|retry NAME``: a person's command to a rollout.

A command is the annotation ``slogate.io/command: VERB:ID`` on the ModelDeployment. The operator
applies it once (it remembers the id in status), then removes the annotation; ``spec`` is never
touched, so GitOps tools see no drift. kubectl users can do the same by hand:
``kubectl annotate mdep NAME slogate.io/command=promote:$(date +%s) --overwrite``.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from slogate import constants as C

VERBS = {
    "promote": "release a manual gate (or a pause) and continue with the next step",
    "pause": "hold the rollout where it is",
    "resume": "continue a paused rollout",
    "abort": "roll the candidate back now",
    "retry": "roll out a rejected revision again",
}


def api_client(kubeconfig: str | None, context: str | None):  # noqa: ANN201 - kubernetes.client.ApiClient
    """A client that honours KUBECONFIG and --context like kubectl."""
    from kubernetes import client, config

    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except config.ConfigException:
        config.load_incluster_config()
        return client.ApiClient()


def _cmd(args: argparse.Namespace) -> int:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    verb = "promote-full" if args.verb == "promote" and args.full else args.verb
    value = f"{verb}:{uuid.uuid4().hex[:12]}"
    api = client.CustomObjectsApi(api_client(args.kubeconfig, args.context))
    try:
        api.patch_namespaced_custom_object(
            C.GROUP,
            C.VERSION,
            args.namespace,
            C.PLURAL,
            args.name,
            {"metadata": {"annotations": {f"{C.GROUP}/command": value}}},
        )
    except ApiException as exc:
        print(f"error: {args.verb} {args.namespace}/{args.name}: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
    print(
        f"{args.verb}: sent to {args.namespace}/{args.name} ({value}); `slogate status {args.name}` shows the effect"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the rollout commands to the main parser."""
    for verb, help_text in VERBS.items():
        p = sub.add_parser(verb, help=help_text)
        p.add_argument("name")
        p.add_argument("-n", "--namespace", default="default")
        p.add_argument("--kubeconfig")
        p.add_argument("--context")
        if verb == "promote":
            p.add_argument("--full", action="store_true", help="skip every remaining step and promote now")
        p.set_defaults(func=_cmd, verb=verb)
