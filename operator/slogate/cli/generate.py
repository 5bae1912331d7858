"""``slogate crd``, ``slogate dashboard``, ``slogate docs``: files generated from the API models.

``make crds``, ``make dashboards`` and ``make docs`` commit their output (``crds/``, the chart's
dashboard, ``docs/api.md``); the unit tests check the committed copies are current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_crd(args: argparse.Namespace) -> int:
    from slogate.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from slogate.dashboard import dashboard_json

    sys.stdout.write(dashboard_json())
    return 0


def _cmd_docs(args: argparse.Namespace) -> int:
    from slogate.api.docs import render_api_md

    intro = Path(args.intro).read_text()
    sys.stdout.write(render_api_md(intro))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``crd``, ``dashboard`` and ``docs`` to the main parser."""
    p = sub.add_parser("crd", help="print the ModelDeployment CRD generated from the API models")
    p.set_defaults(func=_cmd_crd)

    p = sub.add_parser(
        "dashboard",
        help="print the Grafana dashboard JSON (the chart ships the same file: charts/slogate/dashboards/)",
    )
    p.set_defaults(func=_cmd_dashboard)

    p = sub.add_parser("docs", help="print docs/api.md generated from the API models")
    p.add_argument("--intro", default="docs/api.intro.md", help="hand-written introduction to prepend")
    p.set_defaults(func=_cmd_docs)
