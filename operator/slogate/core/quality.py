"""Quality verdicts: checks on one answer, and Pass/Fail/Inconclusive from repeated samples. Pure.

A gate asks every case of a suite ``samples`` times and counts a *sample* as passed when every check
of its case passed. One answer proves little (an LLM samples), so the verdict comes from the pass
rate's Wilson score interval at a stated confidence (docs/quality.md):

- **Pass** when the interval's lower bound is at least ``minPassRate``;
- **Fail** when its upper bound is below ``minPassRate``;
- **Inconclusive** when the interval straddles ``minPassRate``, or when too few samples were
  answered (the candidate unreachable, timeouts beyond ``maxErrorShare``).

With ``maxRegression`` and stable's run on the same cases: the candidate also fails when even its
upper bound is more than ``maxRegression`` below stable's lower bound (a regression beyond doubt),
and is inconclusive unless its lower bound is within ``maxRegression`` of stable's upper bound.

Consumed by ``adapters.evaluate`` (``slogate eval``); nothing here reads a clock or a socket.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from typing import Any

from slogate.api.suite import Case, Check
from slogate.api.types import parse_duration
from slogate.api.v1alpha1 import ModelDeploymentSpec
from slogate.core.analysis import worst
from slogate.core.timefmt import parse_rfc3339

REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'m| am) (?:sorry|afraid)\b.{0,40}\b(?:can(?:'|no)?t|unable|not able)\b",
    r"\bI (?:can(?:'|no)?t|cannot|won't|will not) (?:help|assist|comply|provide|do that|answer)\b",
    r"\bI(?:'m| am) (?:unable|not able) to (?:help|assist|comply|provide|answer)\b",
    r"\bI (?:must|have to) (?:decline|refuse)\b",
    r"\bas an AI(?: language model)?\b",
    r"\bagainst (?:my|the) (?:guidelines|policies|policy)\b",
)
"""The built-in refusal patterns (case-insensitive ``re.search``), as docs/quality.md lists them.
A suite's ``refusalPatterns`` extend them."""


@dataclass(frozen=True)
class Answer:
    """What the server returned for one sample: the text and its completion tokens (``usage``)."""

    text: str
    completion_tokens: int | None = None


def _norm(text: str, ignore_case: bool) -> str:
    out = text.strip().rstrip(".").strip()
    return out.lower() if ignore_case else out


def json_of(text: str) -> object:
    """The JSON value in an answer: the whole text, or the body of one fenced ```json block.
    Raises ``ValueError`` when neither parses."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*\n(.*)\n```", body, flags=re.DOTALL)
    if fenced:
        body = fenced.group(1)
    return json.loads(body)


def is_refusal(text: str, extra: Iterable[str] = ()) -> bool:
    """Whether an answer matches a built-in refusal pattern or one of ``extra``."""
    return any(re.search(p, text, flags=re.IGNORECASE | re.DOTALL) for p in (*REFUSAL_PATTERNS, *extra))


def check_answer(check: Check, answer: Answer, refusal_patterns: Sequence[str] = ()) -> str | None:
    """``None`` when ``answer`` satisfies ``check``, else why not (short, for status and ``slogate
    explain``)."""
    text, ic = answer.text, check.ignore_case
    hay = text.lower() if ic else text
    match check.kind:
        case "contains":
            assert check.contains is not None
            needle = check.contains.lower() if ic else check.contains
            return None if needle in hay else f"does not contain {check.contains!r}"
        case "notContains":
            assert check.not_contains is not None
            needle = check.not_contains.lower() if ic else check.not_contains
            return None if needle not in hay else f"contains {check.not_contains!r}"
        case "regex":
            assert check.regex is not None
            flags = re.IGNORECASE if ic else 0
            return None if re.search(check.regex, text, flags) else f"does not match /{check.regex}/"
        case "equals":
            assert check.equals is not None
            got = _norm(text, ic)
            return None if got == _norm(check.equals, ic) else f"is {got[:40]!r}, not {check.equals!r}"
        case "oneOf":
            assert check.one_of is not None
            got = _norm(text, ic)
            return (
                None
                if got in {_norm(c, ic) for c in check.one_of}
                else f"{got[:40]!r} is none of {check.one_of}"
            )
        case "validJSON":
            try:
                json_of(text)
            except ValueError as exc:
                return f"is not valid JSON ({exc})"
            return None
        case "jsonSchema":
            from jsonschema import validators

            try:
                value = json_of(text)
            except ValueError as exc:
                return f"is not valid JSON ({exc})"
            assert check.json_schema is not None
            validator = validators.validator_for(check.json_schema)(check.json_schema)
            error = next(iter(validator.iter_errors(value)), None)
            if error is None:
                return None
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return f"does not conform to the schema at {where}: {error.message}"
        case "maxTokens":
            assert check.max_tokens is not None
            if answer.completion_tokens is None:
                return "the server reported no completion tokens (usage)"
            n = answer.completion_tokens
            return None if n <= check.max_tokens else f"has {n} tokens, more than {check.max_tokens}"
        case "notRefusal":
            return "is a refusal" if is_refusal(text, refusal_patterns) else None
        case "judge":
            raise ValueError("a judge check is decided by judge_verdict, from the judge's scores")
    raise AssertionError(check.kind)  # pragma: no cover - Check guarantees one kind


JUDGE_SYSTEM = (
    "You are a strict grader. Read the RUBRIC, the QUESTION and the ANSWER. Score how well the "
    "ANSWER meets the RUBRIC on a scale from 0 (not at all) to 10 (fully). Reply with the score only."
)
"""The judge's instructions (docs/quality.md quotes them)."""


def judge_messages(rubric: str, case: Case, answer: str) -> list[dict[str, str]]:
    """The chat a judge model is asked: ``JUDGE_SYSTEM``, then the rubric, the case's question
    (its last user message or its prompt) and the answer, each in its own section. Pure."""
    question = case.prompt or next((m.content for m in reversed(case.messages or []) if m.role == "user"), "")
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"RUBRIC:\n{rubric}\n\nQUESTION:\n{question}\n\nANSWER:\n{answer}"},
    ]


_SCORE = re.compile(r"(?<![\d.])(10(?:\.0+)?|\d(?:\.\d+)?)(?![\d.])")


def score_of(text: str) -> float | None:
    """The first score 0..10 in a judge's reply (``8``, ``Score: 7.5``, ``9/10``), else None. Pure.

    >>> [score_of(t) for t in ("8", "Score: 7.5/10", "10", "none", "42")]
    [8.0, 7.5, 10.0, None, None]
    """
    m = _SCORE.search(text)
    return float(m.group(1)) if m else None


def judge_verdict(scores: Sequence[float | None], min_score: float) -> tuple[str | None, bool]:
    """``(why it failed or None, decided)`` from one answer's judge scores: the median of the scores
    the judge gave decides; fewer scores than half the asks is no decision (the sample is then an
    error, not a failure: a broken judge must not fail a candidate). Pure.

    >>> judge_verdict([8, 6, 9], 7)
    (None, True)
    >>> judge_verdict([3, None, 5], 7)
    ('judge: median score 4 < 7 (scores 3, 5)', True)
    >>> judge_verdict([None, None, 9], 7)
    (None, False)
    """
    got = sorted(s for s in scores if s is not None)
    if not got or 2 * len(got) < len(scores):
        return None, False
    median = statistics.median(got)
    if median >= min_score:
        return None, True
    shown = ", ".join(f"{s:g}" for s in got)
    return f"judge: median score {median:g} < {min_score:g} (scores {shown})", True


def failed_checks(case: Case, answer: Answer, refusal_patterns: Sequence[str] = ()) -> list[str]:
    """Why each failing check of ``case`` failed, as ``KIND: why``; empty when the sample passed.
    ``judge`` checks need another model's scores: ``judge_verdict`` decides them, not this."""
    out = []
    for check in case.checks:
        if check.kind == "judge":
            continue
        why = check_answer(check, answer, refusal_patterns)
        if why is not None:
            out.append(f"{check.kind}: {why}")
    return out


# ------------------------------------------------------------------------------ verdicts


def z_of(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (0.95 → 1.96).

    >>> round(z_of(0.95), 3)
    1.96
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(passed: int, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval of ``passed`` successes in ``n`` trials at ``confidence``:
    ``(centre ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``. ``(0, 1)`` for ``n == 0``.

    >>> [round(x, 4) for x in wilson(9, 10, 0.95)]
    [0.5958, 0.9821]
    """
    if n < 0 or not 0 <= passed <= n:
        raise ValueError(f"need 0 <= passed <= n, got {passed} of {n}")
    if n == 0:
        return (0.0, 1.0)
    z = z_of(confidence)
    p = passed / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom))


@dataclass(frozen=True)
class Tally:
    """Samples of one suite on one revision: answered ones passed or failed, the rest errors
    (unreachable, timeout, HTTP error)."""

    passed: int = 0
    failed: int = 0
    errors: int = 0

    @property
    def answered(self) -> int:
        return self.passed + self.failed

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        """The sum of ``tallies`` (a suite's, from its cases')."""
        items = list(tallies)
        return cls(
            passed=sum(t.passed for t in items),
            failed=sum(t.failed for t in items),
            errors=sum(t.errors for t in items),
        )

    @property
    def asked(self) -> int:
        return self.answered + self.errors

    @property
    def rate(self) -> float | None:
        return self.passed / self.answered if self.answered else None


@dataclass(frozen=True)
class QualityVerdict:
    """``Pass``, ``Fail`` or ``Inconclusive``, why, and the interval it was decided on."""

    verdict: str
    reason: str
    low: float
    high: float


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def verdict(
    candidate: Tally,
    *,
    min_pass_rate: float,
    confidence: float = 0.95,
    max_error_share: float = 0.2,
    stable: Tally | None = None,
    max_regression: float | None = None,
) -> QualityVerdict:
    """The gate's verdict for ``candidate`` (see the module docstring for the rules)."""
    low, high = wilson(candidate.passed, candidate.answered, confidence)
    level = f"{round(100 * confidence)}%"
    if candidate.asked == 0 or candidate.errors > max_error_share * candidate.asked:
        return QualityVerdict(
            "Inconclusive",
            f"{candidate.errors} of {candidate.asked} samples got no answer (more than "
            f"{_pct(max_error_share)}): the candidate is unreachable or too slow",
            low,
            high,
        )
    shown = f"pass rate {_pct(candidate.passed / candidate.answered)} of {candidate.answered} samples, {level} interval {_pct(low)} to {_pct(high)}"
    if high < min_pass_rate:
        return QualityVerdict("Fail", f"{shown} is below minPassRate {_pct(min_pass_rate)}", low, high)
    if low < min_pass_rate:
        return QualityVerdict(
            "Inconclusive",
            f"{shown} straddles minPassRate {_pct(min_pass_rate)}: more samples needed",
            low,
            high,
        )
    if stable is not None and max_regression is not None and stable.answered:
        s_low, s_high = wilson(stable.passed, stable.answered, confidence)
        vs = f"stable's {_pct(stable.passed / stable.answered)} ({level} interval {_pct(s_low)} to {_pct(s_high)})"
        if high < s_low - max_regression:
            return QualityVerdict(
                "Fail", f"{shown} regresses more than {_pct(max_regression)} from {vs}", low, high
            )
        if low < s_high - max_regression:
            return QualityVerdict(
                "Inconclusive",
                f"{shown} may regress more than {_pct(max_regression)} from {vs}: more samples needed",
                low,
                high,
            )
    return QualityVerdict("Pass", f"{shown} meets minPassRate {_pct(min_pass_rate)}", low, high)


# --------------------------------------------------------------------------------- gate runs


@dataclass(frozen=True)
class CaseOutcome:
    """One case's samples on one revision, with a few failing examples (already truncated)."""

    name: str
    tally: Tally
    failures: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``(answer, failed checks)`` of a few failing samples."""
    errors: tuple[str, ...] = ()
    """A few error messages of samples without an answer."""


@dataclass(frozen=True)
class SuiteOutcome:
    """One suite on one revision: every case's outcome, or why it could not run (``problem``:
    a missing ConfigMap, an invalid suite; then there are no cases)."""

    name: str
    revision: str
    cases: tuple[CaseOutcome, ...] = ()
    problem: str | None = None

    @property
    def tally(self) -> Tally:
        return Tally.total(c.tally for c in self.cases)


FAILING_CASES_KEPT = 3
"""Failing cases a suite's status keeps (the first ones by case order)."""


def suite_status(
    run: SuiteOutcome,
    *,
    min_pass_rate: float,
    confidence: float,
    max_error_share: float,
    stable: SuiteOutcome | None = None,
    max_regression: float | None = None,
) -> dict[str, object]:
    """One suite's verdict as ``status.quality*.lastRun.suites[]`` (camelCase). Pure.

    A suite that could not run (``problem``) is Inconclusive with the problem as its message;
    stable is compared only when it ran (``maxRegression``)."""
    if run.problem is not None:
        return {"name": run.name, "revision": run.revision, "verdict": "Inconclusive", "message": run.problem}
    t = run.tally
    usable = stable if stable is not None and stable.problem is None else None
    v = verdict(
        t,
        min_pass_rate=min_pass_rate,
        confidence=confidence,
        max_error_share=max_error_share,
        stable=usable.tally if usable is not None else None,
        max_regression=max_regression,
    )
    failing = []
    for c in run.cases:
        if c.tally.failed == 0 and c.tally.errors == 0:
            continue
        answer, failed = c.failures[0] if c.failures else ((c.errors or ("",))[0], ("no answer",))
        failing.append(
            {
                "case": c.name,
                "failed": list(failed),
                "answer": answer,
                "samples": f"{c.tally.passed}/{c.tally.asked}",
            }
        )
        if len(failing) == FAILING_CASES_KEPT:
            break
    out: dict[str, object] = {
        "name": run.name,
        "revision": run.revision,
        "verdict": v.verdict,
        "passRate": _pct(t.rate) if t.rate is not None else None,
        "interval": f"{_pct(v.low)}..{_pct(v.high)}" if t.answered else None,
        "samples": t.asked,
        "errors": t.errors,
        "stablePassRate": _pct(usable.tally.rate)
        if usable is not None and usable.tally.rate is not None and max_regression is not None
        else None,
        "message": v.reason,
        "failingCases": failing,
    }
    return {k: val for k, val in out.items() if val is not None and val != []}


def fold(suites: Sequence[dict[str, object]]) -> tuple[str, str]:
    """A run's verdict from its suites (any Fail, else any Inconclusive, else Pass; none:
    Inconclusive) and a one-line summary: the suites that decided it, with a failing case. Pure.

    >>> fold([{"name": "a", "verdict": "Pass", "message": "ok"}])
    ('Pass', 'a: ok')
    """
    v = worst(str(s["verdict"]) for s in suites).value
    parts = []
    for s in suites:
        if s["verdict"] != v:
            continue
        part = f"{s['name']}: {s['message']}"
        cases = s.get("failingCases") or []
        if v == "Fail" and cases:
            first = cases[0]  # type: ignore[index]
            part += f"; e.g. case {first['case']}: {'; '.join(first['failed'])}"
        parts.append(part)
    return v, " | ".join(parts) or "no suites ran"


def probe_due(
    spec: ModelDeploymentSpec, stable: str, status: Mapping[str, Any] | None, now: datetime
) -> bool:
    """A production probe of ``stable`` is due: ``quality.probe`` is set and the last probe run
    (``status.qualityProbe.lastRun``) is of another revision or at least ``probe.interval`` old.
    Pure; the interval survives a restart because the last run's time is in status."""
    if spec.quality is None or spec.quality.probe is None:
        return False
    last = (status or {}).get("lastRun") or {}
    if last.get("revision") != stable:
        return True
    at = parse_rfc3339(last.get("time"))
    return at is None or now >= at + parse_duration(spec.quality.probe.interval)
