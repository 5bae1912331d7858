"""Run a quality suite against an OpenAI-compatible endpoint (the I/O half of ``core.quality``).

Every case is asked ``samples`` times, non-streamed, through ``/v1/chat/completions`` (``messages``)
or ``/v1/completions`` (``prompt``): the same requests for vLLM, TGI and SGLang, which all serve the
OpenAI API. At most ``concurrency`` requests are in flight and each has ``timeout`` seconds; a
refused connection, a timeout or an HTTP error counts as an *error* sample (no answer), never as a
failed one, so an unreachable candidate is Inconclusive rather than Fail. Consumed by ``slogate
eval`` (``cli.eval``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from slogate.api.suite import Case, Suite
from slogate.core.quality import Answer, Tally, failed_checks

MAX_EXAMPLE = 200
"""Characters of an answer kept as a failing example (answers are never kept whole)."""

Post = Callable[[str, dict[str, Any], float], dict[str, Any]]
"""``(url, body, timeout) → decoded JSON``; raises ``OSError`` (or ``ValueError``) on failure."""


def http_post(url: str, body: dict[str, Any], timeout: float, api_key: str | None = None) -> dict[str, Any]:
    """POST ``body`` as JSON and decode the JSON answer; an HTTP error status raises ``OSError``."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code}") from exc


def request_of(case: Case, model: str) -> tuple[str, dict[str, Any]]:
    """The path and body one sample of ``case`` sends. Pure."""
    params = case.params.model_dump(by_alias=True, exclude_none=True)
    if case.messages is not None:
        messages = [m.model_dump() for m in case.messages]
        return "/v1/chat/completions", {"model": model, "messages": messages, **params}
    return "/v1/completions", {"model": model, "prompt": case.prompt, **params}


def answer_of(body: dict[str, Any]) -> Answer:
    """The first choice's text (chat ``message.content`` or completion ``text``) and
    ``usage.completion_tokens``. Raises ``ValueError`` for a body without a choice. Pure."""
    choices = body.get("choices") or []
    if not choices:
        raise ValueError("no choices in the answer")
    first = choices[0]
    text = (first.get("message") or {}).get("content") if "message" in first else first.get("text")
    usage = body.get("usage") or {}
    tokens = usage.get("completion_tokens")
    return Answer(text=text or "", completion_tokens=int(tokens) if tokens is not None else None)


@dataclass
class CaseResult:
    """One case's samples: counts, and a few failing examples (truncated)."""

    name: str
    tally: Tally = field(default_factory=Tally)
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class SuiteRun:
    """Every case's result and the suite's tally (a sample passes when all its checks pass)."""

    cases: list[CaseResult]

    @property
    def tally(self) -> Tally:
        return Tally(
            passed=sum(c.tally.passed for c in self.cases),
            failed=sum(c.tally.failed for c in self.cases),
            errors=sum(c.tally.errors for c in self.cases),
        )


def run_suite(
    suite: Suite,
    *,
    endpoint: str,
    model: str,
    samples: int = 3,
    concurrency: int = 4,
    timeout: float = 60.0,
    post: Post | None = None,
    keep_failures: int = 3,
) -> SuiteRun:
    """Ask every case ``samples`` times with at most ``concurrency`` in flight."""
    if samples < 1 or concurrency < 1:
        raise ValueError("samples and concurrency must be at least 1")
    send = post or http_post
    base = endpoint.rstrip("/")
    jobs = [(i, s) for i in range(len(suite.cases)) for s in range(samples)]

    def one(job: tuple[int, int]) -> tuple[int, Answer | None, str]:
        i, _ = job
        path, body = request_of(suite.cases[i], model)
        try:
            return i, answer_of(send(base + path, body, timeout)), ""
        except (OSError, ValueError) as exc:  # refused, timed out, HTTP error, not JSON
            return i, None, str(exc) or type(exc).__name__

    results = [CaseResult(name=suite.case_name(i)) for i in range(len(suite.cases))]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for i, answer, error in pool.map(one, jobs):
            r = results[i]
            t = r.tally
            if answer is None:
                r.tally = replace(t, errors=t.errors + 1)
                if len(r.errors) < keep_failures:
                    r.errors.append(error)
                continue
            why = failed_checks(suite.cases[i], answer, suite.refusal_patterns)
            if why:
                r.tally = replace(t, failed=t.failed + 1)
                if len(r.failures) < keep_failures:
                    r.failures.append({"answer": answer.text[:MAX_EXAMPLE], "failed": why})
            else:
                r.tally = replace(t, passed=t.passed + 1)
    return SuiteRun(cases=results)
