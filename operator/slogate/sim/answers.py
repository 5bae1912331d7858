"""What a simulated model answers when a request says what it wants (docs/quality.md). Pure.

A healthy simulator should pass a reasonable quality suite, and a faulty one fail it in a chosen
way, so the answer is derived from the request, never from the suite's checks:

- ``response_format`` ``json_schema``: an instance of the schema (``instance_of``: every property,
  an ``enum``'s or ``const``'s value, ``minimum``/``minItems`` respected); ``json_object``:
  ``{"answer": "..."}``;
- a last user message asking for "one of: a, b, c" (or "one of a, b or c"): the first option;
- a judge's request (``core.quality.judge_messages``: ``RUBRIC:``, ``QUESTION:``, ``ANSWER:``): a
  score 0..10 derived from the answer (``judge_score``);
- otherwise ``None``: the simulator's usual filler tokens.

Quality faults (``SimConfig.broken_json_rate``, ``refusal_rate``, ``wrong_choice_rate``,
``truncation_rate``) split one uniform draw per answer: a JSON answer cut in half, a refusal, another
option than the first, or the answer's first half. A fault that does not apply to the answer (broken
JSON for a plain answer) leaves it as it is.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

REFUSAL = "I'm sorry, but I can't help with that."
_ONE_OF = re.compile(r"\bone of:?\s+(.+?)(?:[.?!]\s|[.?!]?$|\n)", re.IGNORECASE | re.DOTALL)


def instance_of(schema: Any, depth: int = 0) -> Any:
    """A value that conforms to the JSON Schema ``schema`` (the common keywords). Pure.

    >>> instance_of({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 3}}})
    {'n': 3}
    """
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return instance_of(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {k: instance_of(v, depth + 1) for k, v in props.items()}
    if kind == "array":
        item = instance_of(schema.get("items") or {"type": "string"}, depth + 1)
        return [item for _ in range(max(int(schema.get("minItems", 1)), 1))]
    if kind in ("integer", "number"):
        low = schema.get(
            "minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0)
        )
        value = max(low, 1) if "maximum" not in schema else min(max(low, 1), schema["maximum"])
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = "sim"
    return text * max(1, -(-int(schema.get("minLength", 0)) // len(text)))


def _last_user_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("prompt"), str):
        return body["prompt"]
    for message in reversed(body.get("messages") or []):
        if (
            isinstance(message, dict)
            and message.get("role") == "user"
            and isinstance(message.get("content"), str)
        ):
            return message["content"]
    return ""


def choices_in(text: str) -> list[str]:
    """The options of "one of: a, b, c" (or "one of a, b or c") in ``text``. Pure.

    >>> choices_in("Classify the review. Answer with one of: positive, negative, neutral.")
    ['positive', 'negative', 'neutral']
    """
    m = _ONE_OF.search(text)
    if not m:
        return []
    parts = re.split(r"\s*(?:,|\bor\b|/|\|)\s*", m.group(1).strip())
    return [p.strip(" \"'`") for p in parts if p.strip(" \"'`")]


_JUDGED = re.compile(r"\ARUBRIC:\n(?P<rubric>.*)\n\nQUESTION:\n.*\n\nANSWER:\n(?P<answer>.*)\Z", re.DOTALL)


def judge_score(rubric: str, answer: str) -> int:
    """What a simulated judge scores: with phrases in double quotes in the rubric, 10 times the share
    of them the answer contains (case-insensitive); without, 8 for an answer that is not empty and
    not a refusal, else 1. Pure.

    >>> judge_score('Mentions "ACME" and "129.90"', '{"vendor": "ACME", "total": 1}')
    5
    >>> judge_score("Is helpful", "I'm sorry, but I can't help with that.")
    1
    """
    phrases = re.findall(r'"([^"]+)"', rubric)
    if phrases:
        low = answer.lower()
        return round(10 * sum(p.lower() in low for p in phrases) / len(phrases))
    return 8 if answer.strip() and answer != REFUSAL else 1


def derived(body: dict[str, Any]) -> tuple[str, str] | None:
    """``(kind, answer)`` for a request that says what it wants (``json``, ``choice`` or ``judge``),
    else None."""
    judged = _JUDGED.match(_last_user_text(body))
    if judged:
        return "judge", str(judge_score(judged.group("rubric"), judged.group("answer")))
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = ((fmt.get("json_schema") or {}).get("schema")) or {}
        return "json", json.dumps(instance_of(schema))
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return "json", json.dumps({"answer": "sim"})
    options = choices_in(_last_user_text(body))
    if len(options) >= 2:
        return "choice", options[0]
    return None


def answer(body: dict[str, Any], rates: dict[str, float], rng: random.Random) -> tuple[str, bool] | None:
    """The answer text for ``body`` and whether it was cut (``finish_reason: length``), with the
    quality faults drawn; ``None`` when the request says nothing of what it wants."""
    found = derived(body)
    if found is None:
        return None
    kind, text = found
    draw = rng.random()
    edge = 0.0
    for fault in ("broken_json_rate", "refusal_rate", "wrong_choice_rate", "truncation_rate"):
        edge += rates.get(fault, 0.0)
        if draw < edge:
            if fault == "broken_json_rate" and kind == "json":
                return text[: max(1, len(text) // 2)], False
            if fault == "refusal_rate":
                return REFUSAL, False
            if fault == "wrong_choice_rate" and kind == "choice":
                options = choices_in(_last_user_text(body))
                return options[1 + rng.randrange(len(options) - 1)], False
            if fault == "truncation_rate":
                return text[: max(1, len(text) // 2)], True
            break
    return text, False
