"""``slogate run``: the operator itself (kopf), the container image's entrypoint.

Its arguments belong to ``slogate.controller.run``; this module only wires them into the parser.
"""

from __future__ import annotations

import argparse


def _cmd_run(args: argparse.Namespace) -> int:
    from slogate.controller.run import run

    return run(args)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` to the main parser."""
    from slogate.controller.run import add_arguments

    p = sub.add_parser("run", help="run the operator (kopf) against the current cluster")
    add_arguments(p)
    p.set_defaults(func=_cmd_run)
