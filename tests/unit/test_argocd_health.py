"""The GitOps integrations in deploy/gitops/, run for real.

- deploy/gitops/argocd-health.lua, Argo CD's health check for ModelDeployment, is executed by a real
  Lua interpreter (Debian's ``lua5.4``; ``bash hack/ensure-lua.sh`` installs it) on a realistic
  ModelDeployment in every phase (tests/fixtures/argocd/*.json). Each JSON object becomes a Lua table
  literal (``to_lua``) assigned to the global ``obj``, as Argo CD does, and a small runner loads the
  script with ``dofile`` and prints ``hs.status`` and ``hs.message``.
- The copy of the script embedded in deploy/gitops/argocd-cm-patch.yaml must equal the file.
- The Flux ``healthCheckExprs`` in deploy/gitops/flux/ are evaluated with cel-python on the same
  fixtures, following kustomize-controller's order (observedGeneration first, then inProgress,
  failed, current), and must agree with the Argo CD verdicts.

A missing ``lua5.4`` fails these tests rather than skipping them: CI installs it.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from slogate.api.validation import validate_document

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "gitops" / "argocd-health.lua"
CM_PATCH = ROOT / "deploy" / "gitops" / "argocd-cm-patch.yaml"
FLUX_MODELS = ROOT / "deploy" / "gitops" / "flux" / "kustomization-models.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "argocd"
HEALTH_KEY = "resource.customizations.health.slogate.io_ModelDeployment"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


# --------------------------------------------------------------------------------- JSON -> Lua


_LUA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _lua_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)  # UTF-8 bytes pass through: Lua strings are byte strings
    out.append('"')
    return "".join(out)


def to_lua(value: Any) -> str:
    """A Lua table literal for a decoded JSON value: null → nil (an absent key, as in Argo CD),
    arrays → sequences (1-based), objects → tables keyed by string."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "(0/0)"
        if math.isinf(value):
            return "math.huge" if value > 0 else "-math.huge"
        return repr(value)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            key = k if _LUA_NAME.match(k) and k not in _LUA_KEYWORDS else f"[{_lua_string(k)}]"
            items.append(f"{key} = {to_lua(v)}")
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


_LUA_KEYWORDS = frozenset(
    "and break do else elseif end false for function goto if in local nil not or repeat return then "
    "true until while".split()
)


# ----------------------------------------------------------------------------------- the runner


RUNNER = """\
obj = {obj}
local function run(path)
  return dofile(path)
end
local ok, hs = pcall(run, {script})
if not ok then
  io.stderr:write("health script error: ", tostring(hs), "\\n")
  os.exit(3)
end
if type(hs) ~= "table" then
  io.stderr:write("health script returned ", type(hs), ", not a table\\n")
  os.exit(4)
end
io.write(tostring(hs.status), "\\t", tostring(hs.message))
"""


@pytest.fixture(scope="module")
def lua() -> str:
    path = shutil.which("lua5.4")
    if path is None:
        pytest.fail(
            "lua5.4 is not installed: the Argo CD health check is tested with a real Lua interpreter. "
            "Run `bash hack/ensure-lua.sh` (installs Debian's lua5.4 package; CI and `make test` do this).",
            pytrace=False,
        )
    return path


def health(lua: str, obj: dict[str, Any]) -> tuple[str, str]:
    """(hs.status, hs.message) of deploy/gitops/argocd-health.lua for ``obj``, run by ``lua``."""
    chunk = RUNNER.format(obj=to_lua(obj), script=_lua_string(str(SCRIPT)))
    proc = subprocess.run([lua, "-"], input=chunk, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, f"lua exited {proc.returncode}: {proc.stderr}"
    status, _, message = proc.stdout.partition("\t")
    return status, message


def test_to_lua_round_trip(lua: str) -> None:
    value = {
        "end": "a keyword as key",
        "b-c": ['say "hi"\n\ttab\\', 2.5, -3, True, False, "≤ ünïcode", "\x01"],
        "gone": None,
        "nested": {"empty": []},
    }
    v = "v['b-c']"
    chunk = (
        f"local v = {to_lua(value)}\n"
        f"io.write(v['end'], '|', {v}[1], '|', tostring({v}[2]), '|', tostring({v}[3]), '|', "
        f"tostring({v}[4]), '|', tostring({v}[5]), '|', {v}[6], '|', string.byte({v}[7]), '|', "
        "tostring(v.gone), '|', #v.nested.empty)"
    )
    proc = subprocess.run([lua, "-"], input=chunk, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'a keyword as key|say "hi"\n\ttab\\|2.5|-3|true|false|≤ ünïcode|1|nil|0'


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# ------------------------------------------------------------------------------- the fixtures


# (fixture, Argo CD status, a substring of the message, Flux kstatus verdict)
CASES = [
    ("ready", "Healthy", "revision 7d9f8c6b serves with 2/2 replicas Ready", "Current"),
    (
        "progressing-canary-50",
        "Progressing",
        "canary 5e1a0b93 at weight 50%: revision 5e1a0b93: 2/2 replicas Ready",
        "InProgress",
    ),
    ("pending-first-replicas", "Progressing", "0 of 2 replicas of revision a41c07e2 are Ready", "InProgress"),
    (
        "paused-manual-gate",
        "Suspended",
        "manual gate at step 4 of 4: run `slogate promote` to continue",
        "InProgress",
    ),
    ("rolled-back-ttft", "Degraded", "rolled back: ttft p95 612ms > 500ms", "Failed"),
    (
        "degraded-insufficient-gpu",
        "Degraded",
        "InsufficientGPU: only 1 of 2 replicas fit: 6 free nvidia.com/gpu",
        "Failed",
    ),
    (
        "fallback-active",
        "Degraded",
        "traffic on fallback tier modelDeployment/llama-small: Primary unhealthy for 2m (ttft p95 1.4s > 500ms)",
        "Failed",
    ),
    (
        "failed-shape-unsatisfiable",
        "Degraded",
        "failed: GPUShapeUnsatisfiable: no node can ever hold one replica: it needs 8 nvidia.com/gpu",
        "Failed",
    ),
    ("no-status", "Progressing", "Waiting for the operator to observe generation 1", "Unknown"),
    ("stale-generation", "Progressing", "Waiting for the operator to observe generation 8", "InProgress"),
]


def test_every_fixture_is_covered() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(c[0] for c in CASES)


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_fixture_is_a_valid_model_deployment(name: str) -> None:
    """The fixtures are what the API accepts (``slogate validate``: types, bounds and the CRD's CEL
    rules) and the shape the operator writes, not free-form JSON."""
    obj = fixture(name)
    assert [str(p) for p in validate_document(obj)] == []
    assert obj["metadata"]["generation"] >= 1


@pytest.mark.parametrize(("name", "status", "message", "_flux"), CASES, ids=[c[0] for c in CASES])
def test_argocd_health(lua: str, name: str, status: str, message: str, _flux: str) -> None:
    got_status, got_message = health(lua, fixture(name))
    assert got_status in ARGO_STATUSES
    assert (got_status, message in got_message) == (status, True), got_message
    assert "\n" not in got_message and "\t" not in got_message


def test_paused_names_the_gate_not_the_progress_message(lua: str) -> None:
    status, message = health(lua, fixture("paused-manual-gate"))
    assert (status, message) == ("Suspended", "manual gate at step 4 of 4: run `slogate promote` to continue")


def test_rolled_back_falls_back_to_the_degraded_condition(lua: str) -> None:
    obj = fixture("rolled-back-ttft")
    del obj["status"]["rollout"]
    obj["status"]["message"] = None
    assert health(lua, obj) == ("Degraded", "rolled back: ttft p95 612ms > 500ms")


def test_progressing_without_status_message_uses_the_condition(lua: str) -> None:
    obj = fixture("progressing-canary-50")
    del obj["status"]["message"]
    status, message = health(lua, obj)
    assert status == "Progressing"
    assert message.endswith("revision 7d9f8c6b keeps serving until then")


def test_fallback_without_status_fallback_uses_the_condition(lua: str) -> None:
    obj = fixture("fallback-active")
    del obj["status"]["fallback"]
    status, message = health(lua, obj)
    assert status == "Degraded"
    assert message.startswith("traffic on fallback tier unknown: Primary unhealthy for 2m")


def test_invalid_spec_is_named(lua: str) -> None:
    obj = fixture("failed-shape-unsatisfiable")
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "InvalidSpec",
            "message": "spec.engine.tensorParallelSize: engine.tensorParallelSize must divide resources.gpu.count",
            "lastTransitionTime": "2025-05-14T09:10:00Z",
        }
    ]
    assert health(lua, obj) == (
        "Degraded",
        "failed: InvalidSpec: spec.engine.tensorParallelSize: engine.tensorParallelSize must divide "
        "resources.gpu.count",
    )


def test_current_generation_without_phase_is_progressing(lua: str) -> None:
    obj = fixture("ready")
    del obj["status"]["phase"]
    del obj["status"]["message"]
    assert health(lua, obj) == ("Progressing", "Waiting for the operator to report a phase")


def test_unknown_phase_from_a_newer_operator(lua: str) -> None:
    obj = fixture("ready")
    obj["status"]["phase"] = "Hibernating"
    assert health(lua, obj) == (
        "Unknown",
        "unknown phase Hibernating: revision 7d9f8c6b serves with 2/2 replicas Ready",
    )


def test_numbers_as_floats(lua: str) -> None:
    """Argo CD's gopher-lua has one number type (float64); generation 8.0 still reads as 8."""
    obj = fixture("stale-generation")
    obj["metadata"]["generation"] = 8.0
    obj["status"]["observedGeneration"] = 7.0
    assert health(lua, obj) == ("Progressing", "Waiting for the operator to observe generation 8")
    obj["status"]["observedGeneration"] = 8.0
    assert health(lua, obj)[0] == "Healthy"


def test_status_without_observed_generation_waits(lua: str) -> None:
    obj = fixture("ready")
    del obj["status"]["observedGeneration"]
    assert health(lua, obj) == ("Progressing", "Waiting for the operator to observe generation 3")


# --------------------------------------------------------------------- the script's packaging


def test_argocd_cm_patch_embeds_the_script_verbatim() -> None:
    patch = yaml.safe_load(CM_PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert patch["data"][HEALTH_KEY] == SCRIPT.read_text(), (
        f"{CM_PATCH.relative_to(ROOT)} embeds an old copy of {SCRIPT.relative_to(ROOT)}: paste the file "
        "under the health key again (4-space indent)"
    )
    ignore = yaml.safe_load(
        patch["data"]["resource.customizations.ignoreDifferences.slogate.io_ModelDeployment"]
    )
    assert ignore == {"jsonPointers": ["/metadata/annotations/slogate.io~1command"]}


def test_script_is_lua_5_1_compatible() -> None:
    """Argo CD runs health checks in gopher-lua (Lua 5.1): no syntax or library from 5.2+."""
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.read_text().splitlines())
    forbidden = {
        r"\bgoto\b": "goto (5.2)",
        r"//": "integer division (5.3)",
        r"<\s*(const|close)\s*>": "attributes (5.4)",
        r"[&|]|<<|>>|(?<![~=<>])~(?!=)": "bitwise operators (5.3)",
        r"\btable\.unpack\b|\butf8\.|\bmath\.type\b|\bstring\.pack\b": "a 5.2+ library function",
    }
    for pattern, what in forbidden.items():
        assert not re.search(pattern, code), f"{SCRIPT.name} uses {what}"


# ------------------------------------------------------------------------------ Flux's CEL


def _flux_exprs() -> dict[str, str]:
    docs = [d for d in yaml.safe_load_all(FLUX_MODELS.read_text()) if d]
    (ks,) = [d for d in docs if d.get("kind") == "Kustomization"]
    (exprs,) = [e for e in ks["spec"]["healthCheckExprs"] if e["kind"] == "ModelDeployment"]
    assert exprs["apiVersion"] == "slogate.io/v1alpha1"
    return {k: exprs[k] for k in ("inProgress", "failed", "current")}


def flux_status(obj: dict[str, Any]) -> str:
    """kustomize-controller's verdict (fluxcd/pkg runtime/cel StatusEvaluator): InProgress when
    status.observedGeneration differs from metadata.generation, else the first of inProgress, failed,
    current that is true, else InProgress. An evaluation error (no ``status`` yet) is Unknown: the
    health check keeps polling until the Kustomization's timeout."""
    if "status" not in obj:
        # cel-go, which Flux uses, errors on any reference to an absent top-level field, even inside
        # has() (the Flux docs say so); cel-python's has() answers false there, so model it here.
        return "Unknown"
    observed = obj["status"].get("observedGeneration")
    if observed is not None and observed != obj["metadata"].get("generation"):
        return "InProgress"
    env = celpy.Environment()
    activation = {k: celpy.json_to_cel(v) for k, v in obj.items()}
    for key, verdict in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
        expr = _flux_exprs()[key]
        try:
            result = env.program(env.compile(expr)).evaluate(activation)
        except celpy.CELEvalError:
            return "Unknown"
        if isinstance(result, celpy.CELEvalError):
            return "Unknown"
        if result is True or result == celpy.celtypes.BoolType(True):
            return verdict
    return "InProgress"


@pytest.mark.parametrize(("name", "_status", "_message", "flux"), CASES, ids=[c[0] for c in CASES])
def test_flux_health_check_exprs(name: str, _status: str, _message: str, flux: str) -> None:
    assert flux_status(fixture(name)) == flux


def test_flux_and_argocd_agree_on_every_phase() -> None:
    """Healthy ⇔ Current, Degraded ⇔ Failed, Progressing and Suspended ⇔ InProgress."""
    same = {
        "Healthy": "Current",
        "Degraded": "Failed",
        "Progressing": "InProgress",
        "Suspended": "InProgress",
    }
    for name, status, _, flux in CASES:
        if name != "no-status":  # Argo CD says Progressing, Flux cannot evaluate without status
            assert same[status] == flux, name
