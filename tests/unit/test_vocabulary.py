"""One vocabulary (``core.vocabulary``) and one time format (``core.timefmt``), enforced.

The words slogate writes into status and Events are spelled once: a literal ``"RolledBack"`` or
``"Warning"`` anywhere else under ``core/``, ``controller/`` or ``adapters/`` fails here, as does a
reason with two Event types, an Event made by hand instead of from its ``EventSpec``, docs that
name an Event differently from the code, or a second timestamp parser.
"""

from __future__ import annotations

import ast
import doctest
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import slogate.core.timefmt
import slogate.core.vocabulary
from slogate.core import vocabulary as V
from slogate.core.timefmt import parse_rfc3339, rfc3339, rfc3339_micro

OPERATOR = Path(slogate.core.vocabulary.__file__).resolve().parents[1]
"""``operator/slogate``."""
ROOT = OPERATOR.parents[1]
DOCS = ROOT / "docs"
VOCABULARY = OPERATOR / "core" / "vocabulary.py"
SCANNED = ("core", "controller", "adapters")
"""Where no vocabulary word may be a string literal."""


def _words() -> dict[str, str]:
    """Every vocabulary value → where it is defined (``Reason.ROLLED_BACK``)."""
    out: dict[str, str] = {}
    for cls in (V.ConditionType, V.Reason, V.DriftReason, V.Outcome, V.EventType, V.PodPhase):
        for name, value in vars(cls).items():
            if name.isupper():
                out.setdefault(value, f"{cls.__name__}.{name}")
    for phase in V.Phase:
        out.setdefault(phase.value, f"Phase.{phase.name}")
    for spec in V.EVENTS:
        out.setdefault(spec.reason, f"Events[{spec.reason}]")
    out.setdefault(V.NODE_READY, "NODE_READY")
    return out


WORDS = _words()


def _sources(*parts: str) -> list[Path]:
    files = [p for part in parts for p in sorted((OPERATOR / part).rglob("*.py"))]
    assert files, f"no sources under {parts}"
    return files


def _string_literals(tree: ast.AST) -> list[ast.Constant]:
    """String constants that are code, not documentation (a statement that is only a string is a
    docstring: of a module, class or function, or of the attribute above it)."""
    docs = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def vocabulary_literals(source: str, label: str) -> list[str]:
    """``label:line: 'Word' (use Reason.X)`` for each literal spelling of a vocabulary word."""
    return [
        f"{label}:{node.lineno}: {node.value!r} (use {WORDS[node.value]})"
        for node in _string_literals(ast.parse(source))
        if node.value in WORDS
    ]


# ------------------------------------------------------------------------------ spelled once


def test_the_scan_finds_a_literal_and_ignores_docstrings():
    """The scan itself can fail: a literal reason is found, the same word in a docstring is not."""
    source = (
        '"""Module docs may say RolledBack."""\n'
        "X = 1\n"
        '"""Attribute docs may say Warning."""\n'
        "def f():\n"
        '    """Function docs: Paused."""\n'
        '    return ("Warning", "RolledBack", f"{X} rolled back")\n'
    )
    assert vocabulary_literals(source, "probe.py") == [
        "probe.py:6: 'Warning' (use EventType.WARNING)",
        "probe.py:6: 'RolledBack' (use Reason.ROLLED_BACK)",
    ]


@pytest.mark.parametrize(
    "path",
    [p for p in _sources(*SCANNED) if p != VOCABULARY],
    ids=lambda p: str(p.relative_to(OPERATOR)),
)
def test_no_vocabulary_word_is_spelled_outside_the_vocabulary(path):
    """Every reason, phase, outcome, condition type and Event type the core, the controller and the
    adapters use comes from ``core.vocabulary`` — so every Event the core can emit has a reason
    from the vocabulary, and a renamed word changes everywhere at once."""
    assert vocabulary_literals(path.read_text(), str(path.relative_to(OPERATOR))) == []


@pytest.mark.parametrize(
    "path",
    [p for p in _sources(*SCANNED) if p != VOCABULARY],
    ids=lambda p: str(p.relative_to(OPERATOR)),
)
def test_events_are_made_from_their_spec(path):
    """No ``Event(...)`` or ``EventSpec(...)`` outside the vocabulary: an Event is made by calling
    its spec (``Events.PROMOTED("...")``), so its type always goes with its reason and it always
    has the one shape."""
    tree = ast.parse(path.read_text())
    calls = [
        f"{path.relative_to(OPERATOR)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in ("Event", "EventSpec"))
            or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("Event", "EventSpec")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("V", "vocabulary")  # not threading.Event
            )
        )
    ]
    assert calls == []


# ------------------------------------------------------------------------------ one type per reason


def test_every_event_reason_has_exactly_one_type():
    reasons = [spec.reason for spec in V.EVENTS]
    twice = sorted({r for r in reasons if reasons.count(r) > 1})
    assert twice == [], f"Event reasons defined more than once: {twice}"
    assert {spec.type for spec in V.EVENTS} <= {V.EventType.NORMAL, V.EventType.WARNING}
    assert V.EVENTS_BY_REASON == {spec.reason: spec for spec in V.EVENTS}
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", r) for r in reasons)


@pytest.mark.parametrize("cls", [V.ConditionType, V.Reason, V.DriftReason, V.Outcome, V.PodPhase])
def test_no_word_is_defined_twice_in_one_class(cls):
    values = [v for k, v in vars(cls).items() if k.isupper()]
    assert len(values) == len(set(values))


def test_an_event_is_its_spec_with_a_message():
    event = V.Events.ROLLED_BACK("revision b rolled back: ttft p95 900ms > 500ms")
    assert isinstance(event, V.Event)
    assert event == ("Warning", "RolledBack", "revision b rolled back: ttft p95 900ms > 500ms")
    assert (event.type, event.reason) == (V.Events.ROLLED_BACK.type, V.Events.ROLLED_BACK.reason)


@pytest.mark.parametrize(
    "reason",
    [
        # What core.status tells when InsufficientGPU or Degraded turns True (by the condition's reason).
        V.Reason.INSUFFICIENT_GPU,
        V.Reason.GPU_SHAPE_UNSATISFIABLE,
        V.Reason.ENGINE_CRASH_LOOPING,
        V.Reason.PODS_UNSCHEDULABLE,
        V.Reason.MINIMUM_REPLICAS_UNAVAILABLE,
    ],
)
def test_a_condition_turning_bad_has_a_warning_event(reason):
    assert V.EVENTS_BY_REASON[reason].type == V.EventType.WARNING


def test_words_shared_by_several_meanings_are_one_spelling():
    """``RolledBack`` is a phase, a condition reason, an outcome and an Event; ``Promoted`` an outcome
    and an Event: the spellings agree (telemetry counts outcomes from the Events)."""
    assert V.Phase.ROLLED_BACK == V.Reason.ROLLED_BACK == V.Outcome.ROLLED_BACK == V.Events.ROLLED_BACK.reason
    assert V.Outcome.PROMOTED == V.Events.PROMOTED.reason
    assert V.Outcome.ABORTED == V.Events.ABORTED.reason
    assert set(V.ROLLOUT_PHASES) <= set(V.Phase)


# ------------------------------------------------------------------------------ docs


def _docs_events_table() -> list[tuple[str, str]]:
    text = (DOCS / "operator.md").read_text()
    section = text.split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z]+)` \| (Normal|Warning) \|", section, flags=re.M)


def test_the_docs_events_table_lists_exactly_the_vocabulary():
    rows = _docs_events_table()
    assert len(rows) == len(set(rows)), "an Event is listed twice in docs/operator.md"
    documented = {reason: type_ for reason, type_ in rows}
    assert documented == {spec.reason: spec.type for spec in V.EVENTS}


MENTIONS = (
    # (pattern, group of the type or None, group of the reason)
    (re.compile(r"\b(Normal|Warning) (?:Event )?`([A-Za-z]+)`"), 1, 2),  # Warning Event `OverBudget`
    (re.compile(r"`(Normal|Warning) ([A-Za-z]+)`"), 1, 2),  # `Warning InputDrift`
    (re.compile(r"`([A-Za-z]+)` \((Normal|Warning)\)"), 2, 1),  # `FallbackActivated` (Warning)
    (re.compile(r"(?<!Normal )(?<!Warning )\bEvent `([A-Za-z]+)`"), None, 1),  # Event `PauseExtended`
    (re.compile(r"`([A-Za-z]+)` Event\b"), None, 1),  # one `FallbackUnavailable` Event
)


def doc_mentions(text: str) -> list[tuple[str | None, str]]:
    """``(type or None, reason)`` of every Event the text names in one of the usual ways."""
    out = []
    for pattern, type_group, reason_group in MENTIONS:
        for m in pattern.finditer(text):
            out.append((m.group(type_group) if type_group else None, m.group(reason_group)))
    return out


def test_doc_mentions_are_recognised():
    text = (
        "A Warning Event `OverBudget`, `Normal InputDriftCleared`, `FallbackActivated` (Warning), Event `X`."
    )
    assert doc_mentions(text) == [
        ("Warning", "OverBudget"),
        ("Normal", "InputDriftCleared"),
        ("Warning", "FallbackActivated"),
        (None, "X"),
    ]


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_events_named_in_docs_are_in_the_vocabulary_with_their_type(doc):
    wrong = [
        f"{doc.name}: {type_ or '?'} {reason}"
        for type_, reason in doc_mentions(doc.read_text())
        if reason not in V.EVENTS_BY_REASON or (type_ and V.EVENTS_BY_REASON[reason].type != type_)
    ]
    assert wrong == []


# ------------------------------------------------------------------------------ one time format


@pytest.mark.parametrize("module", [slogate.core.timefmt, slogate.core.vocabulary])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    "path",
    [p for p in _sources(".") if "dev" not in p.relative_to(OPERATOR).parts and p.name != "timefmt.py"],
    ids=lambda p: str(p.relative_to(OPERATOR)),
)
def test_one_timestamp_parser(path):
    """``timefmt.parse_rfc3339`` is the only parser of timestamps (``dev/`` tooling aside), and in
    the operator proper (``core``, ``controller``, ``adapters``) ``timefmt`` the only formatter."""
    banned = {"fromisoformat", "strptime"}
    if path.relative_to(OPERATOR).parts[0] in SCANNED:
        banned.add("strftime")
    tree = ast.parse(path.read_text())
    found = [
        f"{path.relative_to(OPERATOR)}:{node.lineno}: {node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in banned
    ]
    assert found == []


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_written_times_read_back(now):
    assert parse_rfc3339(rfc3339(now)) == now.replace(microsecond=0)
    assert parse_rfc3339(rfc3339_micro(now)) == now
    assert rfc3339(now).endswith("Z") and rfc3339_micro(now).endswith("Z")


@pytest.mark.parametrize("value", [None, "", "yesterday", "2026-03-01T10:00:00", 1_772_359_200])
def test_unreadable_or_naive_times_are_none(value):
    assert parse_rfc3339(value) is None


@pytest.mark.parametrize("write", [rfc3339, rfc3339_micro])
def test_a_naive_time_is_never_written(write):
    with pytest.raises(ValueError, match="timezone-aware"):
        write(datetime(2026, 3, 1))
