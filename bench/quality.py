"""How long a quality gate run takes, and what bounds it: ``run_suite`` against a real simulator
process (``python -m slogate.sim``) at a chosen time to first token, for several ``concurrency``
values. Prints one line per setting and the ratio to the ideal ``samples x cases x latency /
concurrency``. Run: ``.venv/bin/python bench/quality.py``; figures go to bench/README.md."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from slogate.adapters.evaluate import run_suite  # noqa: E402
from slogate.api.suite import Suite, suite_of  # noqa: E402


def simulator(ttft_ms: int, itl_ms: int) -> tuple[subprocess.Popen[str], str]:
    p = subprocess.Popen(
        [sys.executable, "-m", "slogate.sim", "--port", "0", "--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms),
         "--jitter", "0", "--model", "m", "--seed", "1"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert p.stdout is not None
    port = re.search(r":(\d+)$", p.stdout.readline().strip())
    assert port, "the simulator printed no port"
    return p, f"http://127.0.0.1:{port.group(1)}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--ttft-ms", type=int, default=200)
    ap.add_argument("--itl-ms", type=int, default=5)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    args = ap.parse_args()
    suite = Suite.model_validate(
        suite_of(yaml.safe_load((ROOT / "examples/quality/extraction.yaml").read_text()))
    )
    proc, url = simulator(args.ttft_ms, args.itl_ms)
    try:
        run_suite(suite, endpoint=url, model="m", samples=2, concurrency=2)  # warm-up
        asked = args.samples * len(suite.cases)
        for c in args.concurrency:
            started = time.perf_counter()
            run = run_suite(suite, endpoint=url, model="m", samples=args.samples, concurrency=c)
            took = time.perf_counter() - started
            one = took * c / asked
            print(
                f"concurrency {c:>2}: {asked} samples in {took:.2f}s, {asked / took:.1f} samples/s, "
                f"{one * 1000:.0f} ms per sample in flight (TTFT {args.ttft_ms} ms), "
                f"{run.tally.passed} passed, {run.tally.errors} errors"
            )
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
