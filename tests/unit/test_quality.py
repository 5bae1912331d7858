"""Quality suites: every check kind, the refusal patterns, the Wilson rule at its boundaries, suite
validation errors (case index and check named), the simulator's derived answers and quality faults,
and ``slogate eval`` run for real against a simulator process (docs/quality.md)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import validators

from slogate.adapters.evaluate import answer_of, request_of, run_suite
from slogate.api.suite import Case, Check, Suite, suite_problems
from slogate.core.quality import Answer, Tally, check_answer, failed_checks, is_refusal, verdict, wilson
from slogate.sim import answers

# ------------------------------------------------------------------------------------ checks


def ck(**kw) -> Check:
    return Check.model_validate(kw)


@pytest.mark.parametrize(
    ("check", "text", "tokens", "ok"),
    [
        (ck(contains="total"), "the total is 4", None, True),
        (ck(contains="Total"), "the total is 4", None, False),
        (ck(contains="Total", ignoreCase=True), "the total is 4", None, True),
        (ck(notContains="sorry"), "here you go", None, True),
        (ck(notContains="sorry"), "sorry, no", None, False),
        (ck(regex=r"^\d{4}-\d{2}-\d{2}$"), "2026-12-04", None, True),
        (ck(regex=r"^\d{4}-\d{2}-\d{2}$"), "4 Dec 2026", None, False),
        (ck(equals="positive"), "  positive.\n", None, True),
        (ck(equals="positive"), "Positive", None, False),
        (ck(equals="positive", ignoreCase=True), "Positive", None, True),
        (ck(oneOf=["positive", "negative"]), "negative", None, True),
        (ck(oneOf=["positive", "negative"]), "mixed", None, False),
        (ck(validJSON=True), '{"a": 1}', None, True),
        (ck(validJSON=True), '```json\n{"a": 1}\n```', None, True),
        (ck(validJSON=True), '{"a": 1', None, False),
        (ck(jsonSchema={"type": "object", "required": ["a"]}), '{"a": 1}', None, True),
        (ck(jsonSchema={"type": "object", "required": ["a"]}), '{"b": 1}', None, False),
        (ck(jsonSchema={"type": "object", "required": ["a"]}), "not json", None, False),
        (ck(maxTokens=10), "x", 10, True),
        (ck(maxTokens=10), "x", 11, False),
        (ck(maxTokens=10), "x", None, False),  # no usage: cannot be judged, so not passed
        (ck(notRefusal=True), "The capital is Paris.", None, True),
        (ck(notRefusal=True), "I'm sorry, but I can't help with that.", None, False),
    ],
)
def test_every_check_kind(check, text, tokens, ok):
    why = check_answer(check, Answer(text, tokens))
    assert (why is None) is ok, why


def test_a_failure_says_which_check_and_why():
    case = Case.model_validate(
        {"prompt": "p", "checks": [{"contains": "a"}, {"jsonSchema": {"type": "array"}}]}
    )
    assert failed_checks(case, Answer('{"x": 1}')) == [
        "contains: does not contain 'a'",
        "jsonSchema: does not conform to the schema at (root): {'x': 1} is not of type 'array'",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with this request.",
        "I am unable to provide that information.",
        "As an AI language model, I do not have opinions.",
        "I must decline to answer.",
    ],
)
def test_built_in_refusals(text):
    assert is_refusal(text)


def test_suite_patterns_extend_the_built_in_refusals():
    assert not is_refusal("Ce n'est pas possible.")
    assert is_refusal("Ce n'est pas possible.", [r"pas possible"])


# ------------------------------------------------------------------------------------ Wilson


def test_wilson_known_values_and_edges():
    lo, hi = wilson(9, 10, 0.95)
    assert (round(lo, 4), round(hi, 4)) == (0.5958, 0.9821)  # Wilson 1927 / Newcombe 1998, method 3
    assert (
        wilson(0, 10, 0.95)[0] == pytest.approx(0.0, abs=1e-12) and round(wilson(0, 10, 0.95)[1], 4) == 0.2775
    )
    assert (
        wilson(10, 10, 0.95)[1] == pytest.approx(1.0, abs=1e-12)
        and round(wilson(10, 10, 0.95)[0], 4) == 0.7225
    )
    assert wilson(0, 0, 0.95) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(3, 2, 0.95)


def test_the_verdict_at_its_boundaries():
    # 50/50 at 95%: lower bound 0.9289 → passes 0.92, straddles 0.93.
    assert verdict(Tally(passed=50), min_pass_rate=0.92).verdict == "Pass"
    assert verdict(Tally(passed=50), min_pass_rate=0.93).verdict == "Inconclusive"
    # 20 of 50: upper bound 0.5377 → fails 0.54, straddles 0.53.
    assert verdict(Tally(passed=20, failed=30), min_pass_rate=0.54).verdict == "Fail"
    assert verdict(Tally(passed=20, failed=30), min_pass_rate=0.53).verdict == "Inconclusive"
    # Errors: 20% of the samples is the limit; one more is Inconclusive whatever the pass rate.
    assert verdict(Tally(passed=40, errors=10), min_pass_rate=0.5).verdict == "Pass"
    v = verdict(Tally(passed=40, errors=11), min_pass_rate=0.5)
    assert v.verdict == "Inconclusive" and "11 of 51 samples got no answer" in v.reason
    assert verdict(Tally(), min_pass_rate=0.5).verdict == "Inconclusive"  # nothing asked


def test_one_sample_never_decides():
    """The flapping single-sample judge: one pass, one fail, both Inconclusive at 0.7 (one sample's
    95% interval is 0.207 to 1 or 0 to 0.793; only a threshold above 0.793 is failed by one miss)."""
    assert verdict(Tally(passed=1), min_pass_rate=0.7).verdict == "Inconclusive"
    assert verdict(Tally(failed=1), min_pass_rate=0.7).verdict == "Inconclusive"
    assert verdict(Tally(failed=1), min_pass_rate=0.8).verdict == "Fail"


def test_regression_against_stable():
    stable = Tally(passed=98, failed=2)
    assert (
        verdict(Tally(passed=97, failed=3), min_pass_rate=0.8, stable=stable, max_regression=0.1).verdict
        == "Pass"
    )
    v = verdict(Tally(passed=70, failed=30), min_pass_rate=0.6, stable=stable, max_regression=0.05)
    assert v.verdict == "Fail" and "regresses more than 5.0%" in v.reason
    assert (
        verdict(Tally(passed=88, failed=12), min_pass_rate=0.6, stable=stable, max_regression=0.05).verdict
        == "Inconclusive"
    )


# ------------------------------------------------------------------------------------ suite format


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"cases": []}, "cases: List should have at least 1 item after validation, not 0"),
        (
            {"cases": [{"prompt": "p", "checks": [{"contains": "a", "regex": "b"}]}]},
            "cases[0].checks[0] (contains): a check sets exactly one of",
        ),
        (
            {
                "cases": [
                    {"prompt": "p", "checks": [{"contains": "a"}]},
                    {"prompt": "q", "checks": [{"regex": "("}]},
                ]
            },
            "cases[1].checks[0] (regex).regex: regex does not compile",
        ),
        (
            {"cases": [{"prompt": "p", "checks": [{"jsonSchema": {"type": "nope"}}]}]},
            "cases[0].checks[0] (jsonSchema).jsonSchema: jsonSchema is not a valid JSON Schema",
        ),
        (
            {
                "cases": [
                    {
                        "prompt": "p",
                        "messages": [{"role": "user", "content": "m"}],
                        "checks": [{"contains": "a"}],
                    }
                ]
            },
            "cases[0]: a case sets exactly one of messages (a chat) or prompt (a completion)",
        ),
        ({"cases": [{"prompt": "p", "checks": []}]}, "cases[0].checks: List should have at least 1 item"),
        ({"cases": [{"prompt": "p", "checks": [{"oneOf": ["a"]}]}]}, "cases[0].checks[0] (oneOf).oneOf"),
        (
            {"cases": [{"prompt": "p", "checks": [{"contians": "a"}]}]},
            "cases[0].checks[0].contians: Extra inputs",
        ),
        (
            {"cases": [{"prompt": "p", "checks": [{"maxTokens": 0}]}]},
            "cases[0].checks[0] (maxTokens).maxTokens",
        ),
        (
            {"cases": [{"prompt": "p", "checks": [{"notRefusal": True}]}], "refusalPatterns": ["("]},
            "refusalPatterns",
        ),
    ],
)
def test_invalid_suites_name_the_case_and_the_check(raw, expected):
    problems = suite_problems(raw)
    assert any(p.startswith(expected) for p in problems), problems


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "quality"


def test_the_example_suites_are_valid():
    import yaml

    from slogate.api.suite import SUITE_KEY

    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        doc = yaml.safe_load(f.read_text())
        assert suite_problems(yaml.safe_load(doc["data"][SUITE_KEY])) == [], f


def test_slogate_validate_reports_a_bad_suite_configmap(tmp_path):
    cm = tmp_path / "suite.yaml"
    cm.write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: broken, labels: {slogate.io/suite: "true"}}
            data:
              suite.yaml: |
                cases:
                  - prompt: hi
                    checks: [{equals: a, oneOf: [a, b]}]
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "slogate", "validate", str(cm)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "data.suite.yaml: cases[0].checks[0] (equals): a check sets exactly one of" in out.stdout


# ------------------------------------------------------------------------------------ the simulator


SCHEMAS = [
    {"type": "object", "required": ["total"], "properties": {"total": {"type": "number", "minimum": 0}}},
    {
        "type": "object",
        "properties": {
            "items": {"type": "array", "minItems": 2, "items": {"type": "string", "minLength": 5}},
            "kind": {"enum": ["invoice", "receipt"]},
            "paid": {"type": "boolean"},
            "note": {"type": ["string", "null"]},
        },
        "required": ["items", "kind", "paid"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "integer", "minimum": 3, "maximum": 5}},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_simulator_s_json_conforms_to_the_schema_it_was_asked(schema):
    body = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    kind, text = answers.derived(body)
    assert kind == "json"
    assert list(validators.validator_for(schema)(schema).iter_errors(json.loads(text))) == []


def test_the_simulator_answers_the_first_option_and_faults_at_their_rates():
    body = {
        "messages": [
            {"role": "user", "content": "Great phone! Answer with one of: positive, negative or neutral."}
        ]
    }
    assert answers.derived(body) == ("choice", "positive")
    rng = random.Random(3)
    got = Counter(answers.answer(body, {"wrong_choice_rate": 0.3}, rng)[0] for _ in range(4000))
    assert abs(got["positive"] / 4000 - 0.7) < 0.03 and set(got) == {"positive", "negative", "neutral"}
    js = {"response_format": {"type": "json_object"}}
    broken = sum(1 for _ in range(4000) if not _parses(answers.answer(js, {"broken_json_rate": 0.3}, rng)[0]))
    assert abs(broken / 4000 - 0.3) < 0.03
    assert (
        answers.answer({"messages": [{"role": "user", "content": "hello"}]}, {"refusal_rate": 1.0}, rng)
        is None
    )


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------ the runner


def test_requests_and_answers_are_openai_shaped():
    chat = Case.model_validate(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "params": {"temperature": 0},
            "checks": [{"contains": "a"}],
        }
    )
    assert request_of(chat, "llama") == (
        "/v1/chat/completions",
        {
            "model": "llama",
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.0,
            "max_tokens": 256,
        },
    )
    assert answer_of({"choices": [{"text": "t"}], "usage": {"completion_tokens": 3}}) == Answer("t", 3)
    with pytest.raises(ValueError):
        answer_of({"choices": []})


def test_errors_are_no_answers_not_failures():
    suite = Suite.model_validate({"cases": [{"prompt": "p", "checks": [{"contains": "x"}]}]})

    def refused(url, body, timeout):
        raise OSError("connection refused")

    run = run_suite(suite, endpoint="http://x", model="m", samples=4, post=refused)
    assert run.tally == Tally(errors=4) and run.cases[0].errors == ["connection refused"] * 3


@pytest.fixture
def sim():
    """A real simulator process (``python -m slogate.sim``), and a way to start it with faults."""
    procs = []

    def start(*flags: str) -> str:
        p = subprocess.Popen(
            [sys.executable, "-m", "slogate.sim", "--port", "0", "--ttft-ms", "1", "--itl-ms", "0", "--jitter", "0",
             "--model", "sim-llama", "--seed", "7", *flags],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(p)
        line = p.stdout.readline()
        port = re.search(r":(\d+)$", line.strip())
        assert port, line
        return f"http://127.0.0.1:{port.group(1)}"

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def eval_cli(suite: Path, endpoint: str, *extra: str) -> tuple[int, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "slogate", "eval", str(suite), "--endpoint", endpoint, "--model", "sim-llama",
         "-o", "json", "--timeout", "5", *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return out.returncode, json.loads(out.stdout) if out.stdout else {"stderr": out.stderr}


def test_slogate_eval_passes_a_healthy_simulator(sim):
    url = sim()
    for suite in sorted(EXAMPLES.glob("*.yaml")):
        code, report = eval_cli(suite, url, "--samples", "20", "--min-pass-rate", "0.8")
        assert code == 0 and report["verdict"] == "Pass", (suite.name, report)


def test_slogate_eval_fails_broken_json_at_30_percent(sim):
    url = sim("--broken-json-rate", "0.3")
    code, report = eval_cli(EXAMPLES / "extraction.yaml", url, "--samples", "20", "--min-pass-rate", "0.95")
    assert code == 1 and report["verdict"] == "Fail", report
    failing = [f for c in report["cases"] for f in c.get("failures", [])]
    assert failing and all(len(f["answer"]) <= 200 for f in failing)
    assert any("is not valid JSON" in why for f in failing for why in f["failed"])


def test_slogate_eval_is_inconclusive_when_the_endpoint_is_unreachable(tmp_path):
    started = time.monotonic()
    code, report = eval_cli(EXAMPLES / "classification.yaml", "http://127.0.0.1:9", "--samples", "2")
    assert code == 2 and report["verdict"] == "Inconclusive" and "got no answer" in report["reason"], report
    assert time.monotonic() - started < 60


def test_slogate_eval_refuses_an_invalid_suite(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [{prompt: p, checks: [{regex: '('}]}]\n")
    out = subprocess.run(
        [sys.executable, "-m", "slogate", "eval", str(bad), "--endpoint", "http://x", "--model", "m"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 3 and "cases[0].checks[0] (regex)" in out.stderr


JUDGED_SUITE = """
cases:
  - name: invoice-judged
    messages:
      - {role: user, content: "Invoice 2026-114 from ACME, total 129.90 EUR. Extract vendor and total."}
    params:
      temperature: 0
      response_format:
        type: json_schema
        json_schema:
          name: invoice
          schema: {type: object, required: [vendor, total], properties: {vendor: {type: string}, total: {type: number}}}
    checks:
      - judge: {rubric: 'The answer names the "vendor" and the "total".', minScore: 7}
"""


def test_a_judge_model_scores_the_answers_and_fails_refusals(sim, tmp_path):
    """A real simulator as the judge (its score is derived from the answer: sim.answers.judge_score):
    a healthy candidate passes, one that refuses half the time fails, and without a judge every
    sample is an error (Inconclusive), never a failure."""
    suite = tmp_path / "judged.yaml"
    suite.write_text(JUDGED_SUITE)
    judge = sim()
    args = ("--samples", "30", "--min-pass-rate", "0.8", "--judge-endpoint", judge, "--judge-samples", "3")
    code, report = eval_cli(suite, sim(), *args)
    assert code == 0 and report["samples"] == {"passed": 30, "failed": 0, "errors": 0}, report
    code, report = eval_cli(suite, sim("--refusal-rate", "0.5"), *args)
    assert code == 1 and report["verdict"] == "Fail", report
    why = [w for c in report["cases"] for f in c.get("failures", []) for w in f["failed"]]
    assert why and all(w.startswith("judge: median score 0 < 7") for w in why), why
    code, report = eval_cli(suite, sim(), "--samples", "3")
    assert code == 2 and report["samples"]["errors"] == 3, report
    assert "no judge is configured" in report["cases"][0]["errorMessages"][0]


def test_judge_verdicts_and_scores():
    from slogate.core.quality import judge_verdict, score_of

    assert [score_of(t) for t in ("7", " 9/10", "Score: 3.5", "", "11", "-")] == [
        7.0,
        9.0,
        3.5,
        None,
        None,
        None,
    ]
    assert judge_verdict([7, 7, 6], 7) == (None, True)
    assert judge_verdict([6, 7], 7) == ("judge: median score 6.5 < 7 (scores 6, 7)", True)
    assert judge_verdict([None, None], 7) == (None, False)
    assert judge_verdict([], 7) == (None, False)
