"""Run a quality suite against an OpenAI-compatible endpoint (the I/O half of ``core.quality``).

Every case is asked ``samples`` times, non-streamed, through ``/v1/chat/completions`` (``messages``)
or ``/v1/completions`` (``prompt``): the same requests for vLLM, TGI and SGLang, which all serve the
OpenAI API. At most ``concurrency`` requests are in flight and each has ``timeout`` seconds; a
refused connection, a timeout or an HTTP error counts as an *error* sample (no answer), never as a
failed one, so an unreachable candidate is Inconclusive rather than Fail. Consumed by ``slogate
eval`` (``cli.eval``) and, through ``run_quality`` and ``Evaluator``, by the operator's quality
gates and production probe (``controller.reconcile``).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from slogate import constants as C
from slogate.adapters.endpoints import Endpoints
from slogate.api.suite import Case, Suite, suite_problems
from slogate.api.types import parse_duration
from slogate.api.v1alpha1 import ModelDeploymentSpec, QualitySuiteRef
from slogate.core.naming import Track, track_service_name
from slogate.core.quality import (
    Answer,
    CaseOutcome,
    SuiteOutcome,
    Tally,
    failed_checks,
    fold,
    judge_messages,
    judge_verdict,
    score_of,
    suite_status,
)
from slogate.core.timefmt import rfc3339

log = logging.getLogger("slogate.quality")

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


@dataclass(frozen=True)
class JudgeTarget:
    """The model that scores ``judge`` checks: an OpenAI-compatible endpoint and model name, asked
    ``samples`` times per answer (``core.quality.judge_verdict`` takes the median)."""

    endpoint: str
    model: str
    samples: int = 3


def judge_answer(
    case: Case, answer: Answer, judge: JudgeTarget | None, send: Post, timeout: float
) -> tuple[list[str], str | None]:
    """``(why the judge checks failed, error)`` for one answer: each ``judge`` check asked of the
    judge ``samples`` times, non-streamed, at temperature 0. ``error`` (the sample becomes an
    error, not a failure) when there is no judge or it gave too few scores."""
    checks = [c.judge for c in case.checks if c.judge is not None]
    if not checks:
        return [], None
    if judge is None:
        return (
            [],
            "the suite has judge checks but no judge is configured (spec.quality.judge, --judge-endpoint)",
        )
    failed = []
    for check in checks:
        scores = []
        for _ in range(judge.samples):
            body = {
                "model": judge.model,
                "messages": judge_messages(check.rubric, case, answer.text),
                "temperature": 0,
                "max_tokens": 8,
            }
            try:
                scores.append(
                    score_of(
                        answer_of(
                            send(judge.endpoint.rstrip("/") + "/v1/chat/completions", body, timeout)
                        ).text
                    )
                )
            except (OSError, ValueError):
                scores.append(None)
        why, decided = judge_verdict(scores, check.min_score)
        if not decided:
            return (
                [],
                f"the judge gave too few scores ({sum(s is not None for s in scores)} of {len(scores)})",
            )
        if why is not None:
            failed.append(why)
    return failed, None


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
        return Tally.total(c.tally for c in self.cases)


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
    judge: JudgeTarget | None = None,
) -> SuiteRun:
    """Ask every case ``samples`` times with at most ``concurrency`` in flight; ``judge`` scores
    the ``judge`` checks of each answer."""
    if samples < 1 or concurrency < 1:
        raise ValueError("samples and concurrency must be at least 1")
    send = post or http_post
    base = endpoint.rstrip("/")
    jobs = [(i, s) for i in range(len(suite.cases)) for s in range(samples)]

    def one(job: tuple[int, int]) -> tuple[int, Answer | None, str, list[str]]:
        i, _ = job
        case = suite.cases[i]
        path, body = request_of(case, model)
        try:
            got = answer_of(send(base + path, body, timeout))
        except (OSError, ValueError) as exc:  # refused, timed out, HTTP error, not JSON
            return i, None, str(exc) or type(exc).__name__, []
        judged, error = judge_answer(case, got, judge, send, timeout)
        if error is not None:
            return i, None, error, []
        return i, got, "", failed_checks(case, got, suite.refusal_patterns) + judged

    results = [CaseResult(name=suite.case_name(i)) for i in range(len(suite.cases))]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for i, answer, error, why in pool.map(one, jobs):
            r = results[i]
            t = r.tally
            if answer is None:
                r.tally = replace(t, errors=t.errors + 1)
                if len(r.errors) < keep_failures:
                    r.errors.append(error)
                continue
            if why:
                r.tally = replace(t, failed=t.failed + 1)
                if len(r.failures) < keep_failures:
                    r.failures.append({"answer": answer.text[:MAX_EXAMPLE], "failed": why})
            else:
                r.tally = replace(t, passed=t.passed + 1)
    return SuiteRun(cases=results)


# ---------------------------------------------------------------------- in the operator


def outcome_of(run: SuiteRun, *, name: str, revision: str) -> SuiteOutcome:
    """A ``SuiteRun`` as the plain ``core.quality.SuiteOutcome`` the verdict rules read."""
    return SuiteOutcome(
        name=name,
        revision=revision,
        cases=tuple(
            CaseOutcome(
                name=c.name,
                tally=c.tally,
                failures=tuple((f["answer"], tuple(f["failed"])) for f in c.failures),
                errors=tuple(c.errors),
            )
            for c in run.cases
        ),
    )


def load_suite_from(kube: Any, namespace: str, ref: QualitySuiteRef) -> Suite | str:
    """The suite ``ref`` names, read from its ConfigMap (one GET, only when a run starts), or the
    problem in words: a missing ConfigMap or key, YAML that does not parse, an invalid suite."""
    import yaml

    cm = kube.get("v1", "ConfigMap", namespace, ref.config_map)
    if cm is None:
        return f"ConfigMap {namespace}/{ref.config_map} not found"
    text = (cm.get("data") or {}).get(ref.key)
    if text is None:
        return f"ConfigMap {ref.config_map} has no key {ref.key}"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return f"ConfigMap {ref.config_map} key {ref.key} is not YAML: {exc}"
    problems = suite_problems(raw)
    if problems:
        return f"ConfigMap {ref.config_map} key {ref.key} is not a valid suite: " + "; ".join(problems[:3])
    return Suite.model_validate(raw)


def run_quality(
    kube: Any,
    endpoints: Endpoints,
    *,
    spec: ModelDeploymentSpec,
    namespace: str,
    name: str,
    revision: str,
    track: Track,
    stable_revision: str | None,
    suites: Sequence[str] = (),
    gate: str | None,
    post: Post | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[str, dict[str, Any], str]:
    """Run ``spec.quality``'s suites (``suites``: only these names) on ``revision`` through its track
    Service (``NAME-canary`` or ``NAME-stable``) and, for suites with ``maxRegression``, on
    ``stable_revision`` through ``NAME-stable``. Returns ``(verdict, record, summary)``: ``record``
    is ``status.qualityGate.lastRun`` / ``status.qualityProbe.lastRun``. Never raises for what the
    cluster or the candidate does: each becomes an Inconclusive suite with the reason."""
    q = spec.quality
    assert q is not None
    started = clock()
    model = spec.model.served_name or name
    timeout = parse_duration(q.timeout).total_seconds()

    def ask(suite: Suite | str, ref: QualitySuiteRef, rev: str, service: str) -> SuiteOutcome:
        if isinstance(suite, str):
            return SuiteOutcome(name=ref.name, revision=rev, problem=suite)
        url = endpoints.url(namespace, service, {C.LABEL_DEPLOYMENT: name, C.LABEL_REVISION: rev})
        if url is None:
            return SuiteOutcome(name=ref.name, revision=rev, problem=f"no pod of revision {rev} answers")
        run = run_suite(
            suite,
            endpoint=url,
            model=model,
            samples=ref.samples,
            concurrency=q.concurrency,
            timeout=timeout,
            post=post,
            judge=judge,
        )
        return outcome_of(run, name=ref.name, revision=rev)

    judge: JudgeTarget | None = None
    judge_problem = None
    if q.judge is not None:
        found = kube.get(C.API_VERSION, C.KIND, namespace, q.judge.model_deployment)
        url = endpoints.url(
            namespace, q.judge.model_deployment, {C.LABEL_DEPLOYMENT: q.judge.model_deployment}
        )
        if found is None or url is None:
            judge_problem = f"the judge ModelDeployment {q.judge.model_deployment} " + (
                "is not found" if found is None else "has no pod that answers"
            )
        else:
            served = ((found.get("spec") or {}).get("model") or {}).get(
                "servedName"
            ) or q.judge.model_deployment
            judge = JudgeTarget(endpoint=url, model=served, samples=q.judge.samples)
    results = []
    for ref in q.suites:
        if suites and ref.name not in suites:
            continue
        suite = load_suite_from(kube, namespace, ref)
        if judge_problem and isinstance(suite, Suite) and any(c.judge for k in suite.cases for c in k.checks):
            suite = judge_problem
        candidate = ask(suite, ref, revision, track_service_name(name, track))
        stable = None
        if ref.max_regression is not None and stable_revision and stable_revision != revision:
            stable = ask(suite, ref, stable_revision, track_service_name(name, "stable"))
        results.append(
            suite_status(
                candidate,
                min_pass_rate=ref.min_pass_rate,
                confidence=q.confidence,
                max_error_share=q.max_error_share,
                stable=stable,
                max_regression=ref.max_regression,
            )
        )
    verdict_, summary = fold(results)
    finished = clock()
    record = {
        "time": rfc3339(finished),
        "revision": revision,
        **({"gate": gate} if gate else {}),
        "verdict": verdict_,
        "durationSeconds": round((finished - started).total_seconds(), 3),
        "suites": results,
    }
    return verdict_, record, summary


class Evaluator:
    """Quality runs in the background, so a reconcile never waits for a suite: a pass asks for the
    run it needs (``collect``), which starts it the first time and hands back its result once it
    has finished. Runs are keyed by what status says is awaited: ``(namespace, name, kind, ...)``
    with ``kind`` ``gate`` (then revision, gate, run number) or ``probe`` (revision, last run's
    time); the key's result is handed out once, and a run supersedes the unfinished runs of the
    same ModelDeployment and kind (a gate's never a probe's). Losing an unfinished run (a restart) costs
    only its time: status still awaits the same run number, so the next operator starts it again
    and a result is recorded once. At most ``workers`` runs at a time across the operator; each
    bounds its own requests (``quality.concurrency``)."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="quality")
        self._runs: dict[tuple[Any, ...], Future[Any]] = {}
        self._lock = threading.Lock()

    def collect(self, key: tuple[Any, ...], start: Callable[[], Any]) -> Any | None:
        """The finished result for ``key`` (once), else None after starting it if it is not running.
        Unfinished runs under other keys with the same first three parts are dropped (their result
        would not be recorded). A run that raised returns the exception, for the caller to report."""
        with self._lock:
            for other in [k for k in self._runs if k[:3] == key[:3] and k != key]:
                self._runs.pop(other).cancel()
            future = self._runs.get(key)
            if future is None:
                self._runs[key] = self._pool.submit(start)
                return None
            if not future.done():
                return None
            del self._runs[key]
        try:
            return future.result()
        except Exception as exc:  # a bug or an API error: reported as an Inconclusive run
            log.warning("quality run %s failed: %s", key, exc)
            return exc

    def forget(self, namespace: str, name: str) -> None:
        """Drop every run of a ModelDeployment (gone, or without ``spec.quality`` now)."""
        with self._lock:
            for k in [k for k in self._runs if k[:2] == (namespace, name)]:
                self._runs.pop(k).cancel()
