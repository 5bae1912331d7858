"""The ``slogate`` command: ``crd``, ``validate``, ``docs``, ``run``, rollout commands, ``dev``, ``sim``.

One module per group of subcommands, each with a ``register(sub)``: ``generate`` (``crd``,
``dashboard``, ``docs``), ``validate``, ``run`` (the operator), ``commands`` (``promote``, ``pause``,
``resume``, ``abort``, ``retry``), ``status`` (``status``, ``explain``) and ``rules``. ``dev`` (the
local control plane) and ``sim`` (the model-server simulator) are registered by ``slogate.dev`` and
``slogate.sim`` themselves, which the operator image leaves out (Dockerfile): without them the two
subcommands exit 2 and say where they come from.

Every subcommand imports what it needs lazily, so ``slogate validate`` in a CI pipeline never
imports kopf or the Kubernetes client. Exit codes: 0 success, 1 invalid input or a failed check,
2 unusable invocation or unreadable input.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

__all__ = ["build_parser", "main"]

EXIT_UNUSABLE = 2

# The development tools: what each needs beyond the operator. Both packages are left out of the
# operator image; the local control plane's throw-away CA also needs the `dev` extra (cryptography).
DEV_TOOLS = {"dev": ("slogate.dev", "cryptography"), "sim": ("slogate.sim",)}
_WHAT = {"dev": "the local control plane", "sim": "the model-server simulator"}
NEEDS_DEV_TOOLS = (
    "slogate {command} needs the development tools, which this install leaves out (the operator "
    "image ships the operator only): pip install -e '.[dev]' from a source checkout (make install)"
)


def dev_tools_missing(command: str) -> bool:
    """True when ``slogate dev`` or ``slogate sim`` cannot run here (checked without importing them)."""
    return any(importlib.util.find_spec(module) is None for module in DEV_TOOLS[command])


def _needs_dev_tools(args: argparse.Namespace) -> int:
    print(f"error: {NEEDS_DEV_TOOLS.format(command=args.command)}", file=sys.stderr)
    return EXIT_UNUSABLE


def _register_dev_tool(sub: argparse._SubParsersAction, command: str) -> None:
    if not dev_tools_missing(command):
        if command == "dev":
            from slogate.dev.cli import register
        else:
            from slogate.sim.cli import register
        register(sub)
        return
    p = sub.add_parser(
        command,
        help=f"{_WHAT[command]}: not in this install (pip install -e '.[dev]' from a source checkout)",
        add_help=False,
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_needs_dev_tools)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands register themselves here."""
    from slogate import __version__
    from slogate.cli import commands, evaluate, generate, rules, run, status, validate

    parser = argparse.ArgumentParser(prog="slogate", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"slogate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    generate.register(sub)
    validate.register(sub)
    run.register(sub)
    commands.register(sub)
    status.register(sub)
    rules.register(sub)
    evaluate.register(sub)
    _register_dev_tool(sub, "dev")
    _register_dev_tool(sub, "sim")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slogate`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] in (["dev"], ["sim"]) and dev_tools_missing(args_list[0]):
        # Before parsing: whatever follows (options included) is for a parser that is not here.
        return _needs_dev_tools(argparse.Namespace(command=args_list[0]))
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
