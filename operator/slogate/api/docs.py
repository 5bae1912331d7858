"""Render docs/api.md's reference section from the generated schema. Pure.

The hand-written part of docs/api.md (design choices) lives in docs/api.intro.md; this module
appends a field reference and the list of CEL rules, so the document cannot drift from the CRD
(a test fails when docs/api.md is stale).
"""

from __future__ import annotations

from typing import Any

from slogate.api.crd import openapi_schema


def _type_of(schema: dict[str, Any]) -> str:
    t = schema.get("type", "object")
    if "enum" in schema:
        return " \\| ".join(f"`{e}`" for e in schema["enum"])
    if t == "array":
        return f"[]{_type_of(schema.get('items', {}))}"
    if t == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[string]{_type_of(schema['additionalProperties'])}"
    return t


def _rows(schema: dict[str, Any], path: str, required: bool, out: list[str], rules: list[str]) -> None:
    desc = schema.get("description", "").replace("|", "\\|")
    bounds = []
    for key in ("minimum", "maximum", "minItems", "maxItems", "maxLength", "pattern"):
        if key in schema:
            bounds.append(f"{key} {schema[key]}")
    if bounds:
        desc += f" <br><sub>{'; '.join(bounds).replace('|', '&#124;')}</sub>"
    if path:
        out.append(f"| `{path}` | {_type_of(schema)} | {'yes' if required else ''} | {desc} |")
    for rule in schema.get("x-kubernetes-validations", []):
        where = (path or "(root)") + rule.get("fieldPath", "")
        rules.append(f"| `{where}` | {rule['message']} | `{rule['rule'].replace('|', '&#124;')}` |")
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    for key, sub in (target.get("properties") or {}).items():
        if not path and key in ("apiVersion", "kind", "metadata"):
            continue
        child = f"{path}{'[]' if target is not schema else ''}.{key}" if path else key
        _rows(sub, child, key in target.get("required", []), out, rules)


def render_reference() -> str:
    """The generated reference: every field with type, required, description, bounds; every CEL rule."""
    rows: list[str] = []
    rules: list[str] = []
    _rows(openapi_schema(), "", True, rows, rules)
    return "\n".join(
        [
            "## Field reference (generated)",
            "",
            "| Field | Type | Required | Description |",
            "|---|---|---|---|",
            *rows,
            "",
            "## Cross-field rules (CEL, generated)",
            "",
            "Enforced by the API server and, identically, by `slogate validate`.",
            "",
            "| Field | Message | Rule |",
            "|---|---|---|",
            *rules,
            "",
        ]
    )


def render_api_md(intro: str) -> str:
    """docs/api.md: the hand-written intro followed by the generated reference."""
    marker = "<!-- Generated below by `make docs` (slogate docs). Do not edit below this line. -->"
    return intro.rstrip() + "\n\n" + marker + "\n\n" + render_reference()
