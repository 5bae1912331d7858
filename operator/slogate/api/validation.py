"""Offline validation of ModelDeployment manifests: the same rules the API server applies.

Three layers, each with one source of truth:
1. pydantic validates types, enums, patterns and bounds (the same models the CRD is generated from);
2. the CEL rules (``x-kubernetes-validations``) are read from the *generated* CRD schema and
   evaluated here with cel-python, so a rule is written once and enforced identically by the API
   server and by ``slogate validate`` in a GitOps pipeline;
3. ``engine.args`` are checked against the engine flag tables (``core.engine_flags.check``), which
   also generate the CEL rules about them. The API server can only say ``spec.engine.args``; this
   layer names the entry, ``spec.engine.args[i]``, and replaces the CEL problem it refines. It also
   knows the spellings CEL does not try (vLLM's unique prefixes), as the operator does.
``validate_document`` is pure (a dict in, problems out); the CLI adds file names and exit codes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from pydantic import ValidationError

from slogate import constants as C
from slogate.api.crd import openapi_schema
from slogate.api.types import DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, DURATION_PATTERN, QUANTITY_PATTERN
from slogate.api.v1alpha1 import SERVED_NAME_PATTERN, EngineKind, ModelDeployment, ModelDeploymentSpec
from slogate.core import engine_flags


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, at a field path such as ``spec.slo.objectives[1].max``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_FRIENDLY_PATTERNS = {
    DURATION_PATTERN: "must be a duration such as 500ms, 90s, 5m or 1h30m",
    QUANTITY_PATTERN: "must be a Kubernetes quantity such as 8, 500m or 64Gi",
    DNS_LABEL_PATTERN: "must be a DNS label: lower-case letters, digits and '-', starting and ending alphanumeric",
    DNS_SUBDOMAIN_PATTERN: "must be a DNS subdomain: lower-case letters, digits, '-' and '.'",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "must be a DNS label: lower-case letters, digits and '-', "
    "starting and ending alphanumeric",
    SERVED_NAME_PATTERN: "must be letters, digits, '.', '_', '/' and '-', starting with a letter or digit "
    "(no ':', which SGLang reserves for model:adapter and refuses at start-up)",
}


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_message(err: dict[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _FRIENDLY_PATTERNS:
        return f"{_FRIENDLY_PATTERNS[ctx['pattern']]} (got {err['input']!r})"
    if (
        kind == "string_type"
        and isinstance(err.get("input"), (int, float))
        and not isinstance(err["input"], bool)
    ):
        return f'must be a string: quote the value, e.g. "{err["input"]}"'
    if kind in ("enum", "literal_error"):
        return f"{err['msg']} (got {err['input']!r})"
    if kind == "value_error":
        # A model's own check (its message is the CEL rule's, so the two are reported once).
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def _is_sorted(values: celtypes.ListType) -> celtypes.BoolType:
    """Kubernetes' CEL list library ``isSorted()``."""
    return celtypes.BoolType(all(values[i] <= values[i + 1] for i in range(len(values) - 1)))


_CEL_FUNCTIONS = {"isSorted": _is_sorted}


@functools.cache
def _program(rule: str) -> celpy.Runner:
    env = celpy.Environment()
    return env.program(env.compile(rule), functions=_CEL_FUNCTIONS)


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return openapi_schema()


def _join(path: str, field_path: str) -> str:
    """Append a CEL ``fieldPath`` (``.engine.tensorParallelSize``) to a path."""
    if not field_path:
        return path
    return (path + field_path) if path else field_path.lstrip(".")


def _cel_problems(schema: dict[str, Any], value: Any, path: str) -> list[Problem]:
    problems: list[Problem] = []
    if value is None:
        return problems
    for rule in schema.get("x-kubernetes-validations", []):
        try:
            result = _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        except Exception:
            continue
        if isinstance(result, celpy.CELEvalError) or result is False or result == celtypes.BoolType(False):
            if isinstance(result, celpy.CELEvalError):
                continue
            problems.append(Problem(_join(path, rule.get("fieldPath", "")) or "<root>", rule["message"]))
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                problems += _cel_problems(sub, value[key], _join(path, "." + key))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                problems += _cel_problems(extra, item, _join(path, "." + str(key)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += _cel_problems(schema["items"], item, f"{path}[{i}]")
    return problems


def is_model_deployment(doc: Any) -> bool:
    """Whether a parsed YAML document is meant as one of our objects: any kind in our API group, so that a
    misspelt kind is reported rather than silently skipped. Other groups' kinds are not ours to judge."""
    return isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith(C.GROUP + "/")


def prune_nulls(value: Any) -> Any:
    """Drop ``null`` object fields, as the API server prunes them before validating. Pure.

    >>> prune_nulls({"a": None, "b": [{"c": None, "d": 1}]})
    {'b': [{'d': 1}]}
    """
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def _engine_arg_problems(spec: Any) -> tuple[list[Problem], set[str]]:
    """Per-index problems of ``spec.engine.args``, and the CEL messages they refine."""
    engine = spec.get("engine") if isinstance(spec, dict) else None
    if not isinstance(engine, dict):
        return [], set()
    args, kind = engine.get("args"), engine.get("kind", EngineKind.VLLM.value)
    if kind not in engine_flags.ENGINES or not isinstance(args, list):
        return [], set()
    if not all(isinstance(a, str) for a in args):
        return [], set()  # pydantic reports the type
    found = engine_flags.check(kind=kind, args=args, features=engine_flags.features_of(spec))
    return [Problem(f"spec.engine.args[{p.index}]", p.message) for p in found], {p.rule for p in found}


def _adapter_problems(doc: dict[str, Any]) -> list[Problem]:
    """What ``core.plan.parse_spec`` rejects beyond the schema, for a valid document: its
    ``adapter_problems``, one list for the operator and for ``slogate validate``."""
    from slogate.core.plan import adapter_problems

    spec = ModelDeploymentSpec.model_validate(doc.get("spec") or {})
    return [
        Problem(path, why) for path, why in adapter_problems(spec, (doc.get("metadata") or {}).get("name"))
    ]


def validate_document(doc: dict[str, Any]) -> list[Problem]:
    """All problems of one ModelDeployment document, sorted by path. Pure; consumed by the CLI's
    ``validate`` command and by tests that compare it with the API server's verdict."""
    if doc.get("apiVersion") != C.API_VERSION:
        return [Problem("apiVersion", f"unsupported version {doc.get('apiVersion')!r}: use {C.API_VERSION}")]
    if doc.get("kind") != C.KIND:
        return [Problem("kind", f"unknown kind {doc.get('kind')!r} in {C.GROUP}: use {C.KIND}")]
    doc = prune_nulls(doc)
    problems: list[Problem] = []
    try:
        # Strict JSON-mode validation: "2" is not an integer and true is not a number, as in the API server.
        ModelDeployment.model_validate_json(json.dumps(doc), strict=True)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(Problem(_format_loc(err["loc"]) or "<root>", _pydantic_message(dict(err))))
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        problems.append(Problem("metadata.name", "required field is missing"))
    else:
        problems += _cel_problems(_schema(), doc, "")
    arg_problems, refined = _engine_arg_problems(doc.get("spec"))
    problems = [p for p in problems if not (p.path == "spec.engine.args" and p.message in refined)]
    problems += arg_problems
    if not problems:
        problems += _adapter_problems(doc)
    seen: set[Problem] = set()
    unique = [p for p in problems if not (p in seen or seen.add(p))]
    return sorted(unique, key=lambda p: p.path)
