"""Evaluation suites: the format of a quality gate's cases (docs/quality.md).

A suite is data: a YAML document (a file, or the ``suite.yaml`` key of a ConfigMap labelled
``slogate.io/suite: "true"``) with a list of cases. A case is a chat (``messages``) or a completion
(``prompt``), its sampling parameters, and one or more checks on the answer. These models are the
single definition of the format: ``slogate validate`` and ``slogate eval`` parse with them, and an
invalid suite is reported with the case index and the check named (``suite_problems``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

SUITE_KEY = "suite.yaml"
"""The ConfigMap key that holds a suite."""
SUITE_LABEL = "slogate.io/suite"
"""The label (value ``"true"``) that marks a ConfigMap as a suite for ``slogate validate``."""

CHECK_KINDS = (
    "contains",
    "notContains",
    "regex",
    "equals",
    "oneOf",
    "validJSON",
    "jsonSchema",
    "maxTokens",
    "notRefusal",
    "judge",
)
"""Every check kind, in the order docs/quality.md lists them."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Judge(_Model):
    """A judge check: another model reads the answer against a rubric and scores it 0..10."""

    rubric: Annotated[str, Field(min_length=1, max_length=4000)]
    """What a good answer does, in words the judge model reads (``core.quality.judge_messages``)."""
    min_score: Annotated[float, Field(ge=0, le=10)] = 7
    """The median of the judge's scores (``quality.judge.samples`` of them) must reach this. Defaults to ``7``."""


class Check(_Model):
    """One check on an answer: exactly one of the kinds below is set."""

    contains: Annotated[str, Field(min_length=1)] | None = None
    """The answer contains this text."""
    not_contains: Annotated[str, Field(min_length=1)] | None = None
    """The answer does not contain this text."""
    regex: Annotated[str, Field(min_length=1)] | None = None
    """The answer matches this regular expression (Python ``re.search``)."""
    equals: str | None = None
    """The answer, stripped of surrounding whitespace and a trailing full stop, is this text."""
    one_of: Annotated[list[str], Field(min_length=2)] | None = None
    """The answer, stripped as for ``equals``, is one of these (classification)."""
    valid_json: Literal[True] | None = Field(default=None, alias="validJSON")
    """The answer parses as JSON (a fenced ```json block is unwrapped first)."""
    json_schema: dict[str, Any] | None = None
    """The answer parses as JSON and conforms to this JSON Schema (draft 2020-12 unless ``$schema``
    says otherwise)."""
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    """The answer has at most this many completion tokens (the server's ``usage``)."""
    not_refusal: Literal[True] | None = None
    """The answer is not a refusal: none of the built-in refusal patterns (``core.quality``) nor the
    suite's ``refusalPatterns`` match."""
    judge: Judge | None = None
    """Another model scores the answer against a rubric (``spec.quality.judge`` or ``slogate eval
    --judge-endpoint`` names it); scored over repeated judge samples, the median decides."""
    ignore_case: bool = False
    """``contains``, ``notContains``, ``regex``, ``equals`` and ``oneOf`` ignore case."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Check:
        set_kinds = [k for k in CHECK_KINDS if getattr(self, _field(k)) is not None]
        if len(set_kinds) != 1:
            raise ValueError(
                f"a check sets exactly one of {', '.join(CHECK_KINDS)}; this one sets "
                f"{', '.join(set_kinds) or 'none'}"
            )
        return self

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
        return value

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from jsonschema import exceptions, validators

            try:
                validators.validator_for(value).check_schema(value)
            except exceptions.SchemaError as exc:
                raise ValueError(f"jsonSchema is not a valid JSON Schema: {exc.message}") from exc
        return value

    @property
    def kind(self) -> str:
        """The check's kind (``contains``, ``jsonSchema``, ...)."""
        return next(k for k in CHECK_KINDS if getattr(self, _field(k)) is not None)


def _field(kind: str) -> str:
    return {"validJSON": "valid_json"}.get(kind) or re.sub(r"(?<!^)([A-Z])", r"_\1", kind).lower()


class Message(_Model):
    """A chat message."""

    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(min_length=1)]


class Params(_Model):
    """Sampling parameters sent with the case (OpenAI API names)."""

    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = Field(default=None, alias="top_p")
    max_tokens: Annotated[int, Field(ge=1, le=32768)] = Field(default=256, alias="max_tokens")
    seed: int | None = None
    response_format: dict[str, Any] | None = Field(default=None, alias="response_format")
    """OpenAI's ``response_format``: ``{"type": "json_object"}`` or ``{"type": "json_schema",
    "json_schema": {"name": ..., "schema": {...}}}``."""


class Case(_Model):
    """One case: what is asked, how, and what the answer must satisfy."""

    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    messages: Annotated[list[Message], Field(min_length=1)] | None = None
    prompt: Annotated[str, Field(min_length=1)] | None = None
    params: Params = Params()
    checks: Annotated[list[Check], Field(min_length=1, max_length=16)]

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a case sets exactly one of messages (a chat) or prompt (a completion)")
        return self


class Suite(_Model):
    """A list of cases, and refusal patterns that extend the built-in set."""

    cases: Annotated[list[Case], Field(min_length=1, max_length=500)]
    refusal_patterns: list[str] = []
    """Regular expressions (case-insensitive) that also mark an answer as a refusal."""

    @field_validator("refusal_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"refusalPatterns[{i}] does not compile: {exc}") from exc
        return value

    def case_name(self, index: int) -> str:
        """A case's name, or ``case-INDEX``."""
        return self.cases[index].name or f"case-{index}"


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``cases[3].checks[1] (jsonSchema)``: the path, and the check's kind when inside a check."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    if len(loc) >= 4 and loc[0] == "cases" and loc[2] == "checks" and isinstance(loc[3], int):
        try:
            check = raw["cases"][loc[1]]["checks"][loc[3]]
            kinds = [k for k in CHECK_KINDS if isinstance(check, dict) and k in check]
            if kinds:
                head = f"cases[{loc[1]}].checks[{loc[3]}]"
                out = out.replace(head, f"{head} ({kinds[0]})", 1)
        except (KeyError, IndexError, TypeError):
            pass
    return out


def suite_problem_pairs(raw: Any) -> list[tuple[str, str]]:
    """``(path, message)`` per problem of ``raw`` (a parsed suite document), the path with the case
    index and the check's kind (``cases[3].checks[1] (jsonSchema)``; empty for the document
    itself). Empty when it is valid. Pure."""
    try:
        Suite.model_validate(raw)
    except ValidationError as exc:
        return [(_where(tuple(e["loc"]), raw), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    return []


def suite_problems(raw: Any) -> list[str]:
    """``PATH: message`` per problem of ``raw`` (``suite_problem_pairs``). Pure."""
    return [f"{where}: {why}" if where else why for where, why in suite_problem_pairs(raw)]


def suite_of(doc: Any) -> Any:
    """The suite document inside ``doc``: a ConfigMap's ``data["suite.yaml"]`` parsed, or ``doc``
    itself. Raises ``ValueError`` for a ConfigMap without the key."""
    import yaml

    if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
        text = (doc.get("data") or {}).get(SUITE_KEY)
        if text is None:
            name = (doc.get("metadata") or {}).get("name", "?")
            raise ValueError(f"ConfigMap {name} has no {SUITE_KEY} key")
        return yaml.safe_load(text)
    return doc
