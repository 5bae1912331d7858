"""The Helm chart's static parts, in pure Python (no helm; rendering is tested in
tests/integration/test_chart.py): the CRD copy, values.schema.json as a JSON Schema, values.yaml
against it, the RBAC templates (no wildcard, only the verbs the operator uses) and the pod's
Pod Security settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "slogate"
TEMPLATES = CHART / "templates"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


# ------------------------------------------------------------------------------------------ CRDs
@pytest.mark.parametrize("crd", sorted(p.name for p in (REPO / "crds").glob("*.yaml")))
def test_the_charts_crd_is_an_exact_copy_of_crds(crd):
    chart_copy = CHART / "crds" / crd
    assert chart_copy.exists(), f"charts/slogate/crds/{crd} is missing: make crds"
    assert chart_copy.read_bytes() == (REPO / "crds" / crd).read_bytes(), (
        f"charts/slogate/crds/{crd} differs from crds/{crd}: make crds"
    )


def test_the_chart_crds_are_ours_only():
    names = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert doc["kind"] == "CustomResourceDefinition", path
                names[doc["metadata"]["name"]] = doc["spec"]["scope"]
    assert names == {"modeldeployments.slogate.io": "Namespaced"}


def test_the_chart_has_no_kopf_peering_left():
    """HA is the Lease (ha.leaderElection); kopf peering was removed from the operator and the chart."""
    assert not (TEMPLATES / "statefulset.yaml").exists() and not (TEMPLATES / "peering.yaml").exists()
    for path in [CHART / "values.yaml", CHART / "values.schema.json", *sorted(TEMPLATES.glob("*"))]:
        text = path.read_text().lower()
        assert "peering" not in text and "statefulset" not in text, path


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "slogate" and chart["type"] == "application"
    assert chart["appVersion"] == "0.1.0"
    assert (TEMPLATES / "NOTES.txt").read_text().strip()


# ------------------------------------------------------------------------------------------ schema
DRAFT7_KEYWORDS = {
    "$schema", "$id", "$ref", "$comment", "title", "description", "default", "examples", "definitions",
    "type", "enum", "const", "properties", "additionalProperties", "required", "propertyNames",
    "patternProperties", "minProperties", "maxProperties", "items", "additionalItems", "minItems",
    "maxItems", "uniqueItems", "contains", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "pattern", "format", "anyOf", "oneOf", "allOf", "not",
    "if", "then", "else", "dependencies", "readOnly", "writeOnly",
}  # fmt: skip
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


def resolve(ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), f"only local $ref: {ref}"
    node: Any = SCHEMA
    for part in ref[2:].split("/"):
        assert part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def walk_schema(node: Any, where: str) -> None:
    """Structural checks of a draft-07 schema node and its children (jsonschema is not a dependency)."""
    assert isinstance(node, dict), f"{where}: a schema is an object"
    assert set(node) <= DRAFT7_KEYWORDS, f"{where}: unknown keywords {set(node) - DRAFT7_KEYWORDS}"
    if "$ref" in node:
        resolve(node["$ref"])
    types = node.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        assert types and set(types) <= TYPES and len(set(types)) == len(types), f"{where}: type {types}"
    if "enum" in node:
        assert isinstance(node["enum"], list) and node["enum"], f"{where}: enum"
        assert len({json.dumps(v) for v in node["enum"]}) == len(node["enum"]), f"{where}: enum unique"
    if "pattern" in node:
        re.compile(node["pattern"])
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in node:
            assert isinstance(node[key], int | float) and not isinstance(node[key], bool), f"{where}: {key}"
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in node:
            assert isinstance(node[key], int) and node[key] >= 0, f"{where}: {key}"
    if "required" in node:
        assert set(node["required"]) <= set(node.get("properties", {})), f"{where}: required"
    for name, sub in node.get("properties", {}).items():
        walk_schema(sub, f"{where}.{name}")
    for name, sub in node.get("definitions", {}).items():
        walk_schema(sub, f"{where}#{name}")
    for key in ("additionalProperties", "items", "propertyNames", "not"):
        if isinstance(node.get(key), dict):
            walk_schema(node[key], f"{where}/{key}")
        else:
            assert key not in node or isinstance(node[key], bool), f"{where}: {key}"
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(key, [])):
            walk_schema(sub, f"{where}/{key}[{i}]")


def test_values_schema_is_a_valid_draft7_json_schema():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert SCHEMA["type"] == "object"
    walk_schema(SCHEMA, "values")


def closed_objects(node: dict[str, Any], where: str = "values") -> list[str]:
    """Objects with named properties that still accept unknown keys (a typo would pass silently)."""
    if "$ref" in node:
        node = resolve(node["$ref"])
    out = []
    if "properties" in node and node.get("additionalProperties") is not False:
        out.append(where)
    for name, sub in node.get("properties", {}).items():
        out += closed_objects(sub, f"{where}.{name}")
    return out


def test_every_object_with_named_values_rejects_unknown_keys():
    assert closed_objects(SCHEMA) == []


def is_type(value: Any, t: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[t]


def errors(value: Any, node: dict[str, Any], where: str = "") -> list[str]:
    """A small draft-07 validator for the keywords values.schema.json uses."""
    if "$ref" in node:
        return errors(value, resolve(node["$ref"]), where)
    out: list[str] = []
    if "type" in node:
        types = [node["type"]] if isinstance(node["type"], str) else node["type"]
        if not any(is_type(value, t) for t in types):
            return [f"{where or '/'}: {value!r} is not {types}"]
    if "enum" in node and value not in node["enum"]:
        out.append(f"{where}: {value!r} not in {node['enum']}")
    if isinstance(value, str):
        if "pattern" in node and not re.search(node["pattern"], value):
            out.append(f"{where}: {value!r} does not match {node['pattern']}")
        if len(value) < node.get("minLength", 0) or len(value) > node.get("maxLength", len(value)):
            out.append(f"{where}: length of {value!r}")
    if is_type(value, "number"):
        if "minimum" in node and value < node["minimum"]:
            out.append(f"{where}: {value} < {node['minimum']}")
        if "maximum" in node and value > node["maximum"]:
            out.append(f"{where}: {value} > {node['maximum']}")
        if "exclusiveMinimum" in node and value <= node["exclusiveMinimum"]:
            out.append(f"{where}: {value} <= {node['exclusiveMinimum']}")
    if isinstance(value, list):
        if node.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            out.append(f"{where}: items are not unique")
        for i, item in enumerate(value):
            out += errors(item, node.get("items", {}), f"{where}/{i}")
    if isinstance(value, dict):
        props = node.get("properties", {})
        out += [f"{where}: {key} is required" for key in node.get("required", []) if key not in value]
        for key, item in value.items():
            if "propertyNames" in node:
                out += errors(key, node["propertyNames"], f"{where}/{key}(name)")
            if key in props:
                out += errors(item, props[key], f"{where}/{key}")
            elif node.get("additionalProperties") is False:
                out.append(f"{where}: unknown key {key}")
            elif isinstance(node.get("additionalProperties"), dict):
                out += errors(item, node["additionalProperties"], f"{where}/{key}")
    if "anyOf" in node and all(errors(value, sub, where) for sub in node["anyOf"]):
        out.append(f"{where}: {value!r} matches none of anyOf")
    if "const" in node and value != node["const"]:
        out.append(f"{where}: {value!r} is not {node['const']!r}")
    if "not" in node and not errors(value, node["not"], where):
        out.append(f"{where}: {value!r} must not match {node['not']}")
    if "if" in node and not errors(value, node["if"], where):
        out += errors(value, node.get("then", {}), where)
    return out


def merged(**overrides: Any) -> dict[str, Any]:
    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **{k: merge(a.get(k), v) for k, v in b.items()}}
        return b

    return merge(VALUES, overrides)


def test_values_yaml_is_valid_against_the_schema():
    assert errors(VALUES, SCHEMA) == []


def test_documented_examples_are_valid():
    assert (
        errors(
            merged(
                rbac={"scope": "namespaced", "ownerReferencesPermissionEnforcement": True},
                watchNamespaces=["team-a", "team-b"],
                ha={"leaderElection": {"enabled": True}},
                metrics={"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}},
                cost={
                    "currency": "EUR",
                    "prices": {"NVIDIA-H100-80GB-HBM3": "4.50", "NVIDIA-L4": 0.8},
                    "default": "1.90",
                },
                replicaCount=3,
            ),
            SCHEMA,
        )
        == []
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"rbac": {"scope": "everything"}},
        {"rbac": {"scop": "cluster"}},
        {"watchNamespaces": ["Team_A"]},
        {"watchNamespaces": ["a", "a"]},
        {"cost": {"prices": {"NVIDIA-L4": "cheap"}}},
        {"cost": {"prices": {"NVIDIA-L4": -1}}},
        {"cost": {"currency": "EUR", "prices": {"NVIDIA-L4": "0.70"}}},
        {"cost": {"default": "free"}},
        {"operator": {"metricsPort": 70000}},
        {"operator": {"workers": 0}},
        {"operator": {"logFormat": "xml"}},
        {"prometheus": {"url": "prometheus:9090"}},
        {"image": {"digest": "latest"}},
        {"metrics": {"serviceMonitor": {"interval": "soon"}}},
        {"ha": {"leaderElection": {"enabled": "yes"}}},
        {"ha": {"peering": {"enabled": True}}},
        {"replicaCount": "two"},
    ],
)
def test_invalid_values_are_rejected_by_the_schema(overrides):
    assert errors(merged(**overrides), SCHEMA) != []


def leaf_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in leaf_paths(v, f"{prefix}.{k}" if prefix else k)]
    return [prefix]


def test_every_value_is_in_the_install_docs_table():
    docs = (REPO / "docs" / "install.md").read_text()
    missing = [p for p in leaf_paths(VALUES) if f"`{p}`" not in docs]
    assert missing == [], f"docs/install.md does not describe: {missing}"


# ------------------------------------------------------------------------------------------ RBAC
OPERATOR_VERBS = {"get", "list", "watch", "create", "patch", "delete"}
# slogate.controller.leader: get the Lease, create it when missing, renew/take over with a PUT.
LEASE_VERBS = {"get", "create", "update"}


def rbac_lists() -> list[tuple[str, str, list[str]]]:
    """Every `apiGroups:`/`resources:`/`verbs:` flow list in the templates."""
    out = []
    for path in sorted(TEMPLATES.glob("*")):
        for line in path.read_text().splitlines():
            m = re.match(r"\s*-?\s*(apiGroups|resources|verbs):\s*(\[.*\])\s*$", line)
            if m:
                out.append((path.name, m.group(1), yaml.safe_load(m.group(2))))
    return out


def test_rbac_templates_have_no_wildcards_and_only_the_verbs_the_operator_uses():
    lists = rbac_lists()
    assert len([x for x in lists if x[1] == "verbs"]) >= 15, "the rules are written as flow lists"
    for name, key, items in lists:
        assert all("*" not in item for item in items), f"{name}: wildcard in {key}: {items}"
    rules = re.findall(
        r"apiGroups:\s*(\[.*\])\s*\n\s*resources:\s*(\[.*\])\s*\n\s*verbs:\s*(\[.*\])",
        (TEMPLATES / "_helpers.tpl").read_text(),
    )
    assert rules, "rules are apiGroups, resources, verbs in this order"
    seen = set()
    for groups, resources, verbs in rules:
        groups, resources, verbs = yaml.safe_load(groups), yaml.safe_load(resources), yaml.safe_load(verbs)
        assert len(groups) == 1 and len(resources) == 1, "one API group and one resource per rule"
        assert len(set(verbs)) == len(verbs), f"{resources}: duplicate verbs"
        allowed = {
            "modeldeployments/finalizers": {"update"},
            "leases": LEASE_VERBS,
            # The quality suites, one GET when a run starts (adapters.evaluate.load_suite_from).
            "configmaps": {"get"},
        }.get(resources[0], OPERATOR_VERBS)
        assert set(verbs) <= allowed, f"{resources}: {verbs}"
        seen.add((groups[0], resources[0]))
    assert ("", "secrets") not in seen, "the operator reads no Secret"
    assert ("", "configmaps") in seen, "quality suites live in ConfigMaps"
    assert ("", "nodes") in seen and ("apps", "deployments/scale") in seen
    assert ("coordination.k8s.io", "leases") in seen


def test_the_lease_rule_is_exactly_what_leader_election_uses():
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    rules = re.findall(
        r"apiGroups:\s*(\[.*\])\s*\n\s*resources:\s*\[\"leases\"\]\s*\n\s*verbs:\s*(\[.*\])", helpers
    )
    assert [(yaml.safe_load(g), yaml.safe_load(v)) for g, v in rules] == [
        (["coordination.k8s.io"], ["get", "create", "update"])
    ]
    rbac = (TEMPLATES / "rbac.yaml").read_text()
    assert 'include "slogate.leaseRules"' in rbac and "if .Values.ha.leaderElection.enabled" in rbac


# ------------------------------------------------------------------------------------------ pod
def pod_template_skeleton() -> dict[str, Any]:
    """_pod.tpl with template actions removed (control lines dropped, inline actions as "X")."""
    text = re.sub(r"\{\{/\*.*?\*/\}\}", "", (TEMPLATES / "_pod.tpl").read_text(), flags=re.S)
    lines = [line for line in text.splitlines() if not re.fullmatch(r"\s*\{\{-?.*?-?\}\}\s*", line)]
    return yaml.safe_load(re.sub(r"\{\{.*?\}\}", "X", "\n".join(lines)))


def test_the_pod_meets_pod_security_restricted():
    pod = pod_template_skeleton()["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert c["command"] == ["slogate"] and c["args"][0] == "run"
    assert c["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    assert (
        c["livenessProbe"]["httpGet"]
        == c["readinessProbe"]["httpGet"]
        == {"path": "/healthz", "port": "health"}
    )
    assert [p["name"] for p in c["ports"]] == ["metrics", "health"]
    env = {e["name"]: e for e in c["env"]}
    assert {
        "SLOGATE_PROMETHEUS_URL",
        "SLOGATE_NAMESPACES",
        "SLOGATE_LEADER_ELECTION",
        "SLOGATE_METRICS_PORT",
    } <= set(env)
    assert env["SLOGATE_LEADER_ELECTION"]["value"] == "true"
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": field}}, name


def test_leader_election_is_on_by_default_with_two_replicas():
    assert VALUES["ha"] == {"leaderElection": {"enabled": True}}
    assert VALUES["replicaCount"] is None
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert "ternary 2 1 .Values.ha.leaderElection.enabled" in helpers
    deployment = (TEMPLATES / "deployment.yaml").read_text()
    assert "maxUnavailable: 0" in deployment and "maxSurge: 1" in deployment
