"""``slogate eval SUITE --endpoint URL --model NAME``: a quality suite against any OpenAI-compatible
endpoint, from the command line, with the verdict rules of a rollout's quality gate (docs/quality.md).

Exit 0 Pass, 1 Fail, 2 Inconclusive (the endpoint unreachable, too many errors, or the pass rate's
interval straddles ``--min-pass-rate``), 3 an unreadable or invalid suite. ``-o json`` prints the
per-case counts, a few failing answers (truncated) and the verdict, for a pipeline to keep.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT = {"Pass": 0, "Fail": 1, "Inconclusive": 2}
EXIT_BAD_SUITE = 3


def load_suite(path: str):  # noqa: ANN201 - slogate.api.suite.Suite
    """The suite in ``path``: a suite document or a ConfigMap holding one (``suite.yaml``).
    Raises ``ValueError`` with every problem when it is unreadable or invalid."""
    import yaml

    from slogate.api.suite import Suite, suite_of, suite_problems

    try:
        raw = suite_of(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    problems = suite_problems(raw)
    if problems:
        raise ValueError("\n".join(f"{path}: {p}" for p in problems))
    return Suite.model_validate(raw)


def _cmd_eval(args: argparse.Namespace) -> int:
    from slogate.adapters.evaluate import run_suite
    from slogate.core.quality import verdict

    try:
        suite = load_suite(args.suite)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_SUITE
    judge = None
    if args.judge_endpoint:
        from slogate.adapters.evaluate import JudgeTarget

        judge = JudgeTarget(
            endpoint=args.judge_endpoint, model=args.judge_model or args.model, samples=args.judge_samples
        )
    run = run_suite(
        suite,
        endpoint=args.endpoint,
        model=args.model,
        samples=args.samples,
        concurrency=args.concurrency,
        timeout=args.timeout,
        judge=judge,
    )
    v = verdict(
        run.tally,
        min_pass_rate=args.min_pass_rate,
        confidence=args.confidence,
        max_error_share=args.max_error_share,
    )
    t = run.tally
    if args.output == "json":
        out = {
            "verdict": v.verdict,
            "reason": v.reason,
            "passRate": round(t.rate, 4) if t.rate is not None else None,
            "interval": [round(v.low, 4), round(v.high, 4)],
            "confidence": args.confidence,
            "samples": {"passed": t.passed, "failed": t.failed, "errors": t.errors},
            "cases": [
                {
                    "name": c.name,
                    "passed": c.tally.passed,
                    "failed": c.tally.failed,
                    "errors": c.tally.errors,
                    **({"failures": c.failures} if c.failures else {}),
                    **({"errorMessages": c.errors} if c.errors else {}),
                }
                for c in run.cases
            ],
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for c in run.cases:
            mark = "✓" if c.tally.failed == 0 and c.tally.errors == 0 else "✗"
            print(
                f"{mark} {c.name}: {c.tally.passed}/{c.tally.asked} passed"
                + (f", {c.tally.errors} errors" if c.tally.errors else "")
            )
            for f in c.failures[:1]:
                print(f"    {'; '.join(f['failed'])} — answer: {f['answer'][:80]!r}")
        print(f"{v.verdict}: {v.reason}")
    return EXIT[v.verdict]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the main parser."""
    p = sub.add_parser(
        "eval", help="run a quality suite against an OpenAI-compatible endpoint (docs/quality.md)"
    )
    p.add_argument("suite", help="a suite file, or a ConfigMap YAML holding one under suite.yaml")
    p.add_argument("--endpoint", required=True, help="base URL, e.g. http://llama.ml.svc:80")
    p.add_argument("--model", required=True, help="the model name to ask for (the served name)")
    p.add_argument("--samples", type=int, default=5, help="times each case is asked (default 5)")
    p.add_argument("--min-pass-rate", type=float, default=0.9, help="pass rate required (default 0.9)")
    p.add_argument("--confidence", type=float, default=0.95, help="Wilson interval level (default 0.95)")
    p.add_argument(
        "--max-error-share", type=float, default=0.2, help="unanswered share beyond which it is Inconclusive"
    )
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at most (default 4)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument(
        "--judge-endpoint", help="the model that scores judge checks: an OpenAI-compatible base URL"
    )
    p.add_argument("--judge-model", help="the judge's model name (default: --model)")
    p.add_argument("--judge-samples", type=int, default=3, help="judge scores per answer; the median decides")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_eval)
