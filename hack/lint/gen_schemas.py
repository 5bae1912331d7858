"""Generate kubeconform's JSON schemas offline: Kubernetes types from swagger.json, CRDs from their YAML.

kubeconform normally downloads its schemas; `make lint` must not download anything but Go modules and
PyPI packages, so this writes them from what is already pinned and cached:

* every Kubernetes kind from ``k8s.io/kubernetes@$K8S_VERSION/api/openapi-spec/swagger.json`` in the Go
  module cache (the module the control-plane build already fetched);
* every CRD the operator works with, from their own Go modules (``slogate.dev.crds``: Gateway API,
  KEDA, prometheus-operator, at the versions of ``hack/versions.env``), and ours from ``crds/``.

The schemas are *strict*, like the API server with ``fieldValidation=Strict``: an object schema with
named properties gets ``additionalProperties: false`` unless it declares otherwise (for CRDs: unless
``x-kubernetes-preserve-unknown-fields``), so a misspelt or misplaced field is an error. Each file is
standalone: the definitions it refers to are copied into its own ``definitions`` (recursive types
such as ``JSONSchemaProps`` stay references). ``int-or-string`` becomes ``oneOf: [string, integer]``
and ``Quantity`` ``oneOf: [string, number]`` (manifests write ``cpu: 1``); a CRD's ``nullable`` adds
``null``; a custom resource's ``metadata`` is also checked against ``ObjectMeta``. Descriptions are
dropped (size). Draft 4 semantics, kubeconform's default.

Layout: ``OUT/<group>/<kind>_<version>.json``, lower-case, the core group written ``v1``: kubeconform's
``-schema-location 'OUT/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'``.

The output is cached: ``--cache-root DIR`` writes into ``DIR/<key>/`` where the key hashes this file,
the pinned versions and the CRD files, and prints that directory; a warm run only prints it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from slogate.dev import crds as crds_module
from slogate.dev.crds import OPTIONAL, optional_crds, our_crds
from slogate.dev.versions import REPO, go_module_dir, versions

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
REF_PREFIX = "#/definitions/"
# Keywords whose value is a schema, a list of schemas or a map of name -> schema.
ONE = ("additionalProperties", "items", "not", "additionalItems")
MANY = ("allOf", "anyOf", "oneOf")
MAP = ("properties", "patternProperties", "definitions")
DROP = ("description", "example", "externalDocs")


def transform(node: Any, *, crd: bool) -> Any:
    """A strict draft-4 copy of one schema node and everything under it (see the module docstring)."""
    if not isinstance(node, dict):
        return node
    if node.get("format") == "int-or-string" or (
        crd and node.get("x-kubernetes-int-or-string") and not any(k in node for k in MANY)
    ):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP or key.startswith("x-"):
            continue
        if key in ONE:
            out[key] = (
                [transform(v, crd=crd) for v in value]
                if isinstance(value, list)
                else transform(value, crd=crd)
            )
        elif key in MANY:
            out[key] = [transform(v, crd=crd) for v in value]
        elif key in MAP:
            out[key] = {name: transform(v, crd=crd) for name, v in value.items()}
        else:
            out[key] = value
    if crd and out.pop("nullable", False) and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    preserve = crd and node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def refs(node: Any) -> set[str]:
    """Names of the definitions a node refers to, directly."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX) :])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def closure(start: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """Every definition reachable from ``start``, by name."""
    todo, seen = list(refs(start)), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in definitions:
            raise SystemExit(f"gen_schemas: unresolvable $ref {name}")
        seen.add(name)
        todo += refs(definitions[name])
    return {name: definitions[name] for name in sorted(seen)}


def standalone(root: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    schema = dict(root)
    needed = closure(schema, definitions)
    if needed:
        schema["definitions"] = needed
    return schema


def path_for(out: Path, group: str, kind: str, version: str) -> Path:
    """kubeconform's ``{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json``."""
    return out / (group or version).lower() / f"{kind.lower()}_{version.lower()}.json"


def write(path: Path, schema: dict[str, Any], written: dict[Path, str], what: str) -> None:
    if path in written:
        raise SystemExit(f"gen_schemas: {what} and {written[path]} both map to {path}")
    written[path] = what
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))


def kubernetes_definitions(swagger: Path) -> dict[str, Any]:
    definitions = json.loads(swagger.read_text())["definitions"]
    fixed = {name: transform(node, crd=False) for name, node in definitions.items()}
    fixed[QUANTITY] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
    return fixed


def generate(out: Path, swagger: Path, crds: list[dict[str, Any]]) -> tuple[int, int]:
    """Write every schema into ``out``; returns (Kubernetes kinds, CRD versions) written."""
    raw = json.loads(swagger.read_text())["definitions"]
    definitions = kubernetes_definitions(swagger)
    written: dict[Path, str] = {}
    n_k8s = 0
    for name, node in sorted(raw.items()):
        gvks = node.get("x-kubernetes-group-version-kind", [])
        if len(gvks) != 1:
            continue  # not a kind of its own (DeleteOptions, WatchEvent are in every group)
        (gvk,) = gvks
        path = path_for(out, gvk["group"], gvk["kind"], gvk["version"])
        write(path, standalone(definitions[name], definitions), written, name)
        n_k8s += 1
    n_crd = 0
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = transform(copy.deepcopy(version["schema"]["openAPIV3Schema"]), crd=True)
            props = schema.setdefault("properties", {})
            meta = props.get("metadata") or {}
            ref = {"$ref": REF_PREFIX + OBJECT_META}
            # The CRD's own metadata rules (if any) and ObjectMeta, which the API server applies too.
            own = {k: v for k, v in meta.items() if k != "additionalProperties"}
            props["metadata"] = {"allOf": [own, ref]} if set(own) - {"type"} else ref
            schema.setdefault("additionalProperties", False)
            what = f"CRD {crd['metadata']['name']} {version['name']}"
            write(path_for(out, group, kind, version["name"]), standalone(schema, definitions), written, what)
            n_crd += 1
    return n_k8s, n_crd


def cache_key(crd_files: list[Path]) -> str:
    pins = versions()
    h = hashlib.sha256(Path(__file__).read_bytes() + Path(crds_module.__file__).read_bytes())
    for key in ("K8S_VERSION", *OPTIONAL):
        h.update(f"{key}={pins[key]}\n".encode())
    for path in crd_files:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="write the schemas into this directory")
    where.add_argument("--cache-root", type=Path, help="write into (or reuse) CACHE_ROOT/<key>/")
    args = parser.parse_args(argv)
    ours = sorted((REPO / "crds").glob("*.yaml"))
    out = args.out or args.cache_root / cache_key(ours)
    if args.cache_root and (out / ".complete").exists():
        print(out)
        return 0
    swagger = go_module_dir("k8s.io/kubernetes", versions()["K8S_VERSION"]) / "api/openapi-spec/swagger.json"
    crds = [*optional_crds(), *our_crds()]
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    n_k8s, n_crd = generate(tmp, swagger, crds)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    (out / ".complete").write_text(f"{n_k8s} Kubernetes kinds, {n_crd} CRD versions\n")
    print(f"gen_schemas: {n_k8s} Kubernetes kinds, {n_crd} CRD versions into {out}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
