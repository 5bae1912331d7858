"""The ``slogate`` command: ``crd``, ``validate``, ``docs``, ``dev`` (local control plane), ``sim``.

Every subcommand imports what it needs lazily, so ``slogate validate`` in a CI pipeline never
imports kopf or the Kubernetes client. Exit codes: 0 success, 1 invalid input or a failed check,
2 unusable invocation or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def _cmd_crd(args: argparse.Namespace) -> int:
    from slogate.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return EXIT_OK


def _cmd_docs(args: argparse.Namespace) -> int:
    from slogate.api.docs import render_api_md

    intro = Path(args.intro).read_text()
    sys.stdout.write(render_api_md(intro))
    return EXIT_OK


class Unreadable(Exception):
    """Input that cannot be read or parsed as YAML."""


def _iter_sources(paths: list[str]) -> Iterator[tuple[str, str]]:
    """Yield (name, text) for files, directories (``*.yaml``, ``*.yml``, ``*.json``, recursively) and ``-``."""
    for raw in paths:
        if raw == "-":
            yield "<stdin>", sys.stdin.read()
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
            )
            for f in files:
                try:
                    yield str(f), f.read_text()
                except (OSError, UnicodeDecodeError) as exc:
                    raise Unreadable(f"{f}: cannot read: {exc}") from exc
        elif path.is_file():
            try:
                yield str(path), path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise Unreadable(f"{path}: cannot read: {exc}") from exc
        else:
            raise Unreadable(f"{path}: no such file or directory")


def validate_paths(paths: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Validate every ModelDeployment in ``paths``. Returns (report entries, documents checked)."""
    import yaml

    from slogate.api.validation import is_model_deployment, validate_document

    report: list[dict[str, Any]] = []
    checked = 0
    for name, text in _iter_sources(paths):
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise Unreadable(f"{name}: not valid YAML: {exc}") from exc
        for index, doc in enumerate(docs):
            if not is_model_deployment(doc):
                continue
            checked += 1
            for problem in validate_document(doc):
                report.append(
                    {
                        "file": name,
                        "document": index,
                        "name": doc["metadata"].get("name")
                        if isinstance(doc.get("metadata"), dict)
                        else None,
                        "path": problem.path,
                        "message": problem.message,
                    }
                )
    return report, checked


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        report, checked = validate_paths(args.paths)
    except Unreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.output == "json":
        json.dump({"checked": checked, "valid": not report, "problems": report}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for p in report:
            print(f"{p['file']}:{p['document']}: {p['path']}: {p['message']}")
        bad = len({(p["file"], p["document"]) for p in report})
        print(f"{checked} ModelDeployment(s) checked, {bad} invalid", file=sys.stderr)
    return EXIT_INVALID if report else EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from slogate.dashboard import dashboard_json

    sys.stdout.write(dashboard_json())
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from slogate.controller.run import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands register themselves here."""
    from slogate import __version__

    parser = argparse.ArgumentParser(prog="slogate", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"slogate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser(
        "validate",
        help="validate ModelDeployment manifests offline with the CRD's own rules",
        description="Validate every ModelDeployment in files, directories or - (stdin). Multi-document "
        "YAML is supported; other kinds are ignored. Exit 1 on any invalid document, 2 on unreadable input.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="run the operator (kopf) against the current cluster")
    from slogate.controller.run import add_arguments

    add_arguments(p)
    p.set_defaults(func=_cmd_run)

    from slogate.commands import register as register_commands

    register_commands(sub)
    from slogate.statuscli import register as register_status

    register_status(sub)
    from slogate.rulescli import register as register_rules

    register_rules(sub)

    try:
        from slogate.dev.cli import register as register_dev
    except ImportError:  # pragma: no cover - dev tooling is optional at import time
        register_dev = None
    if register_dev is not None:
        register_dev(sub)
    try:
        from slogate.sim.cli import register as register_sim
    except ImportError:  # pragma: no cover
        register_sim = None
    if register_sim is not None:
        register_sim(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slogate`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"] and args_list[1:2] in (["serve"], ["load"]):
        # The simulator's own parsers own these arguments; hand them over untouched.
        if args_list[1] == "serve":
            from slogate.sim.server import main as serve_main

            return serve_main(args_list[2:])
        from slogate.sim.loadgen import main as load_main

        return load_main(args_list[2:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
