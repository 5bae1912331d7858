"""``slogate sim serve|load``: the simulator and its load generator from the main command."""

from __future__ import annotations

import argparse


def _serve(args: argparse.Namespace) -> int:
    from slogate.sim.server import main

    return main(args.rest)


def _load(args: argparse.Namespace) -> int:
    from slogate.sim.loadgen import main

    return main(args.rest)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``slogate sim ...`` to the main parser."""
    sim = sub.add_parser("sim", help="the model-server simulator (vLLM/TGI/SGLang metrics, fault injection)")
    ssub = sim.add_subparsers(dest="sim_command", required=True)
    p = ssub.add_parser(
        "serve", help="serve one simulated engine (see `slogate sim serve -- --help`)", add_help=False
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_serve)
    p = ssub.add_parser("load", help="drive a simulator at a steady rate (loopback only)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_load)
