"""Generate the ModelDeployment CustomResourceDefinition from the pydantic models. Pure.

pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3 schema. This module
inlines ``$ref``s, turns ``anyOf: [X, null]`` into an optional ``X``, rewrites numeric
``exclusiveMinimum`` into OpenAPI's boolean form, drops what structural schemas forbid
(``additionalProperties: false``, ``title``, ``default``) and notes each default in the description
instead: defaults are applied by the operator and never written into ``spec``.
The result is committed as ``crds/slogate.io_modeldeployments.yaml`` (a test fails when stale).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from slogate import constants as C
from slogate.api.v1alpha1 import ModelDeployment

_DROP = {"title", "default", "examples", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        merged = {**_resolve(target, defs), **{k: _resolve(v, defs) for k, v in node.items()}}
        # Validations of the referenced model and of the referencing field both apply.
        rules = target.get("x-kubernetes-validations", []) + node.get("x-kubernetes-validations", [])
        if rules:
            merged["x-kubernetes-validations"] = _resolve(rules, defs)
        return _convert(merged)
    return _convert({k: _resolve(v, defs) for k, v in node.items()})


def _describe_default(node: dict[str, Any], default: Any) -> None:
    if default in (None, [], {}) or isinstance(default, dict):
        return
    desc = node.get("description", "")
    if "Defaults to" not in desc:
        text = str(default).lower() if isinstance(default, bool) else default
        node["description"] = (desc + f" Defaults to `{text}`.").strip()


def _convert(node: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            inner = dict(options[0])
            rules = inner.get("x-kubernetes-validations", []) + rest.pop("x-kubernetes-validations", [])
            node = {**inner, **rest}
            if rules:
                node["x-kubernetes-validations"] = rules
    default = node.get("default")
    out = {k: v for k, v in node.items() if k not in _DROP}
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if key in out and not isinstance(out[key], bool):
            out[bound] = out.pop(key)
            out[key] = True
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("type", "object")
        if out.get("additionalProperties") is True:
            del out["additionalProperties"]
    if "description" in out:
        out["description"] = " ".join(out["description"].split()).replace("``", "`")
    _describe_default(out, default)
    return out


def openapi_schema() -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` of ModelDeployment. Pure; consumed by ``build_crd`` and by
    ``validation.validate_document``, which evaluates its CEL rules offline."""
    raw = ModelDeployment.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema = _resolve({k: v for k, v in raw.items() if k != "$defs"}, defs)
    props = schema["properties"]
    props["apiVersion"] = {"type": "string", "description": "APIVersion of this object."}
    props["kind"] = {"type": "string", "description": "Kind of this object."}
    props["metadata"] = {"type": "object"}
    schema["required"] = ["spec"]
    return schema


def build_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition. Pure; printed by ``slogate crd``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": C.CRD_NAME,
            "labels": {"app.kubernetes.io/name": "slogate", "app.kubernetes.io/part-of": "slogate"},
        },
        "spec": {
            "group": C.GROUP,
            "names": {
                "kind": C.KIND,
                "listKind": f"{C.KIND}List",
                "plural": C.PLURAL,
                "singular": C.SINGULAR,
                "shortNames": C.SHORT_NAMES,
                "categories": C.CATEGORIES,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": C.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
                        {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRevision"},
                        {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
                        {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
                        {"name": "SLO", "type": "string", "jsonPath": ".status.sloVerdict"},
                        {"name": "Engine", "type": "string", "jsonPath": ".spec.engine.kind", "priority": 1},
                        {"name": "Model", "type": "string", "jsonPath": ".spec.model.source", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML committed under ``crds/``. Pure."""
    header = "# Generated by `slogate crd` from operator/slogate/api/v1alpha1.py. Do not edit.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)
