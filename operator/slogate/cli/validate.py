"""``slogate validate PATH...``: ModelDeployment manifests checked offline with the CRD's own rules.

Files, directories (``*.yaml``, ``*.yml``, ``*.json``, recursively) and ``-`` (stdin); multi-document
YAML; other kinds are ignored. Exit 0 valid, 1 an invalid document, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


class Unreadable(Exception):
    """Input that cannot be read or parsed as YAML."""


def _iter_sources(paths: list[str]) -> Iterator[tuple[str, str]]:
    """Yield (name, text) for files, directories (``*.yaml``, ``*.yml``, ``*.json``, recursively) and ``-``."""
    for raw in paths:
        if raw == "-":
            yield "<stdin>", sys.stdin.read()
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
            )
            for f in files:
                try:
                    yield str(f), f.read_text()
                except (OSError, UnicodeDecodeError) as exc:
                    raise Unreadable(f"{f}: cannot read: {exc}") from exc
        elif path.is_file():
            try:
                yield str(path), path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise Unreadable(f"{path}: cannot read: {exc}") from exc
        else:
            raise Unreadable(f"{path}: no such file or directory")


def warnings_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(path, message)`` for a valid ModelDeployment that needs something in the cluster an
    offline check cannot see: the ``inferencePool`` router needs the InferencePool CRD and an
    Inference Gateway (without them the operator applies no route: ``Degraded`` ``RouterUnavailable``)."""
    traffic = (((doc.get("spec") or {}).get("rollout") or {}).get("traffic")) or {}
    if traffic.get("router") == "inferencePool":
        return [
            (
                "spec.rollout.traffic.router",
                "inferencePool needs the Gateway API Inference Extension in the cluster: the InferencePool CRD"
                " (`kubectl api-resources --api-group=inference.networking.k8s.io`) and a conformant Inference"
                " Gateway; without the CRD the operator applies no route and reports Degraded RouterUnavailable",
            )
        ]
    return []


def validate_paths(
    paths: list[str], warnings: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Validate every ModelDeployment in ``paths``. Returns (report entries, documents checked);
    what an offline check cannot confirm is appended to ``warnings`` (``warnings_of``)."""
    import yaml

    from slogate.api.validation import is_model_deployment, validate_document

    report: list[dict[str, Any]] = []
    checked = 0
    configmaps: dict[str, dict[str, Any]] = {}
    references: list[tuple[str, int, int, dict[str, Any]]] = []
    for name, text in _iter_sources(paths):
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise Unreadable(f"{name}: not valid YAML: {exc}") from exc
        for index, doc in enumerate(docs):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                configmaps[(doc.get("metadata") or {}).get("name", "")] = doc
            if is_suite_configmap(doc):
                checked += 1
                report += [
                    {"file": name, "document": index, "name": doc["metadata"].get("name"), **p}
                    for p in suite_configmap_problems(doc)
                ]
                continue
            if not is_model_deployment(doc):
                continue
            checked += 1
            problems = validate_document(doc)
            if not problems and warnings is not None:
                warnings += [
                    {"file": name, "document": index, "path": path, "message": message}
                    for path, message in warnings_of(doc)
                ]
            if not problems:
                quality = (doc.get("spec") or {}).get("quality") or {}
                references += [(name, index, i, ref) for i, ref in enumerate(quality.get("suites") or [])]
            for problem in problems:
                report.append(
                    {
                        "file": name,
                        "document": index,
                        "name": doc["metadata"].get("name")
                        if isinstance(doc.get("metadata"), dict)
                        else None,
                        "path": problem.path,
                        "message": problem.message,
                    }
                )
    report += _suite_references(references, configmaps, warnings)
    return report, checked


def _suite_references(
    references: list[tuple[str, int, int, dict[str, Any]]],
    configmaps: dict[str, dict[str, Any]],
    warnings: list[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Each ``spec.quality.suites[i]`` against the ConfigMaps among the files: a named ConfigMap
    without the key, or whose key is not a valid suite, is a problem; one not among the files is a
    warning (it must exist in the cluster: a missing suite makes every run Inconclusive)."""
    import yaml

    from slogate.api.suite import SUITE_KEY, suite_problems

    out: list[dict[str, Any]] = []
    for file, index, i, ref in references:
        key = ref.get("key") or SUITE_KEY
        path = f"spec.quality.suites[{i}].configMap"
        cm = configmaps.get(ref.get("configMap", ""))
        if cm is None:
            if warnings is not None:
                warnings.append(
                    {
                        "file": file,
                        "document": index,
                        "path": path,
                        "message": f"ConfigMap {ref.get('configMap')} is not among the files checked: it must"
                        f" exist in the namespace with key {key}, or every quality run is Inconclusive",
                    }
                )
            continue
        text = (cm.get("data") or {}).get(key)
        try:
            why = (
                [f"ConfigMap {ref['configMap']} has no key {key}"]
                if text is None
                else [
                    f"ConfigMap {ref['configMap']} key {key}: {p}"
                    for p in suite_problems(yaml.safe_load(text))
                ]
            )
        except yaml.YAMLError as exc:
            why = [f"ConfigMap {ref['configMap']} key {key} is not valid YAML: {exc}"]
        out += [{"file": file, "document": index, "name": None, "path": path, "message": w} for w in why]
    return out


def is_suite_configmap(doc: Any) -> bool:
    """A ConfigMap labelled ``slogate.io/suite: "true"``."""
    from slogate.api.suite import SUITE_LABEL

    if (
        not isinstance(doc, dict)
        or doc.get("kind") != "ConfigMap"
        or not isinstance(doc.get("metadata"), dict)
    ):
        return False
    return ((doc["metadata"].get("labels") or {}).get(SUITE_LABEL)) == "true"


def suite_configmap_problems(doc: dict[str, Any]) -> list[dict[str, str]]:
    """``{path, message}`` per problem of a suite ConfigMap: a missing ``suite.yaml`` key, YAML that
    does not parse, or the suite format's problems (case index and check named)."""
    import yaml

    from slogate.api.suite import SUITE_KEY, suite_problem_pairs

    text = (doc.get("data") or {}).get(SUITE_KEY)
    if text is None:
        return [{"path": f"data.{SUITE_KEY}", "message": "a suite ConfigMap holds the suite under this key"}]
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [{"path": f"data.{SUITE_KEY}", "message": f"not valid YAML: {exc}"}]
    return [{"path": f"data.{SUITE_KEY}: {where}", "message": why} for where, why in suite_problem_pairs(raw)]


def _cmd_validate(args: argparse.Namespace) -> int:
    warnings: list[dict[str, Any]] = []
    try:
        report, checked = validate_paths(args.paths, warnings)
    except Unreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.output == "json":
        json.dump(
            {"checked": checked, "valid": not report, "problems": report, "warnings": warnings},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for p in report:
            print(f"{p['file']}:{p['document']}: {p['path']}: {p['message']}")
        for w in warnings:
            print(f"warning: {w['file']}:{w['document']}: {w['path']}: {w['message']}", file=sys.stderr)
        bad = len({(p["file"], p["document"]) for p in report})
        print(f"{checked} ModelDeployment(s) and suite(s) checked, {bad} invalid", file=sys.stderr)
    return EXIT_INVALID if report else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``validate`` to the main parser."""
    p = sub.add_parser(
        "validate",
        help="validate ModelDeployment manifests offline with the CRD's own rules",
        description="Validate every ModelDeployment in files, directories or - (stdin). Multi-document "
        "YAML is supported; other kinds are ignored. Exit 1 on any invalid document, 2 on unreadable input.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd_validate)
