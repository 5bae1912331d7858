"""Every ModelDeployment under ``examples/`` is valid, so the manifests users copy actually apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from slogate.api.validation import is_model_deployment, validate_document
from slogate.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MIN_MODEL_DEPLOYMENTS = 7


def _model_deployments() -> list[tuple[str, int, dict[str, Any]]]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        rel = path.relative_to(EXAMPLES).as_posix()
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if is_model_deployment(doc):
                found.append((rel, index, doc))
    return found


DEPLOYMENTS = _model_deployments()


def _id(rel: str, index: int, doc: dict[str, Any]) -> str:
    name = (doc.get("metadata") or {}).get("name", "?")
    return f"{rel}#{index}:{name}"


@pytest.mark.parametrize(
    "doc", [pytest.param(doc, id=_id(rel, index, doc)) for rel, index, doc in DEPLOYMENTS]
)
def test_example_validates_clean(doc: dict[str, Any]) -> None:
    problems = validate_document(doc)
    assert problems == [], "\n".join(str(p) for p in problems)


@pytest.mark.parametrize(
    "doc", [pytest.param(doc, id=_id(rel, index, doc)) for rel, index, doc in DEPLOYMENTS]
)
def test_example_is_a_spec_only_manifest(doc: dict[str, Any]) -> None:
    assert "status" not in doc, "examples are applied by users and GitOps tools: no status"
    assert len(doc["metadata"]["name"]) <= 53


def test_there_are_enough_examples() -> None:
    assert len(DEPLOYMENTS) >= MIN_MODEL_DEPLOYMENTS, (
        f"only {len(DEPLOYMENTS)} ModelDeployments in {EXAMPLES}"
    )


def test_example_names_do_not_collide() -> None:
    keys = [
        (doc["metadata"].get("namespace", "default"), doc["metadata"]["name"]) for _, _, doc in DEPLOYMENTS
    ]
    assert len(keys) == len(set(keys)), sorted(keys)


def test_fallback_model_deployments_exist_in_the_examples() -> None:
    defined = {
        (doc["metadata"].get("namespace", "default"), doc["metadata"]["name"]) for _, _, doc in DEPLOYMENTS
    }
    for rel, _, doc in DEPLOYMENTS:
        namespace = doc["metadata"].get("namespace", "default")
        for target in (doc["spec"].get("fallback") or {}).get("targets", []):
            if "modelDeployment" in target:
                assert (namespace, target["modelDeployment"]) in defined, f"{rel}: {target} is not an example"


def test_cli_validates_the_examples_directory(capsys) -> None:
    assert main(["validate", str(EXAMPLES)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    suites = len(list((EXAMPLES / "quality").glob("*.yaml")))  # suite ConfigMaps are checked too
    assert f"{len(DEPLOYMENTS) + suites} ModelDeployment(s) and suite(s) checked, 0 invalid" in err
