"""The GitOps integrations in deploy/gitops/, run for real.

- deploy/gitops/argocd-health.lua, Argo CD's health check for ModelDeployment, is executed on a
  realistic ModelDeployment in every phase (tests/fixtures/argocd/*.json) by two engines, which must
  give the same verdicts:

  - a stock Lua 5.4 interpreter (Debian's ``lua5.4``): each JSON object becomes a Lua table literal
    (``to_lua``) assigned to the global ``obj``, and a small runner loads the script with ``dofile``
    and prints ``hs.status`` and ``hs.message``;
  - Argo CD's own engine, gopher-lua at the version Argo CD pins, in Argo CD's sandbox
    (hack/gopherlua, built by hack/build-gopherlua.sh): only the libraries Argo CD opens, ``obj``
    converted from JSON as Argo CD converts it, the result read back as Argo CD reads it, with
    ``useOpenLibs`` as deploy/gitops/argocd-cm-patch.yaml sets it. A script that only works in Lua
    5.4 fails here (``test_the_sandbox_rejects_what_lua_5_4_accepts``).

  ``bash hack/ensure-lua.sh`` (``make lua``) installs the one and builds the other.
- The copy of the script embedded in deploy/gitops/argocd-cm-patch.yaml must equal the file.
- The Flux ``healthCheckExprs`` in deploy/gitops/flux/ are evaluated with cel-python on the same
  fixtures, following kustomize-controller's order (observedGeneration first, then inProgress,
  failed, current), and must agree with the Argo CD verdicts.

A missing ``lua5.4`` or gopher-lua runner fails these tests rather than skipping them: CI and
``make unit`` install and build them. tests/unit/test_argocd_actions.py does the same for the resource
actions in deploy/gitops/argocd-actions/.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from slogate.api.validation import validate_document
from slogate.dev.versions import cache_dir, versions

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "gitops" / "argocd-health.lua"
CM_PATCH = ROOT / "deploy" / "gitops" / "argocd-cm-patch.yaml"
FLUX_MODELS = ROOT / "deploy" / "gitops" / "flux" / "kustomization-models.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "argocd"
HEALTH_KEY = "resource.customizations.health.slogate.io_ModelDeployment"
OPEN_LIBS_KEY = "resource.customizations.useOpenLibs.slogate.io_ModelDeployment"
GOPHERLUA_SRC = ROOT / "hack" / "gopherlua"
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
    """A Lua table literal for a decoded JSON value: null → nil (an absent key, as in Argo CD; in an
    array the element is dropped, as Argo CD's conversion appends nothing for it), arrays →
    sequences (1-based), objects → tables keyed by string."""
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
        return "{" + ", ".join(to_lua(v) for v in value if v is not None) + "}"
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


def find_lua() -> str:
    """The ``lua5.4`` interpreter; fails the test when it is missing."""
    path = shutil.which("lua5.4")
    if path is None:
        pytest.fail(
            "lua5.4 is not installed: the Argo CD health check and actions are tested with a real Lua "
            "interpreter. Run `bash hack/ensure-lua.sh` (installs Debian's lua5.4 package; CI and "
            "`make unit`/`make test` do this).",
            pytrace=False,
        )
    return path


def gopherlua_digest() -> str:
    """The digest hack/build-gopherlua.sh records for the sources it built: sha256 of the
    ``sha256sum`` lines of every file of hack/gopherlua/, in C-locale order."""
    lines = "".join(
        f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}\n"
        for f in sorted(GOPHERLUA_SRC.iterdir(), key=lambda f: f.name.encode())
        if f.is_file()
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def find_gopherlua() -> str:
    """The gopher-lua runner (hack/gopherlua) built from the current sources with the gopher-lua
    version of hack/versions.env; fails the test when it is missing, stale or built with another
    version."""
    version = versions()["GOPHER_LUA_VERSION"]
    where = Path(os.environ.get("SLOGATE_GOPHERLUA_DIR") or cache_dir() / "bin" / f"gopherlua-{version}")
    binary = where / "gopherlua"
    build = (
        "Run `bash hack/build-gopherlua.sh` (CI, `make unit` and `make test` do this via hack/ensure-lua.sh)."
    )
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"the gopher-lua runner is not built ({binary}): the Argo CD health check and actions are "
            f"tested in Argo CD's own Lua engine. {build}",
            pytrace=False,
        )
    stamp = where / "source.sha256"
    if not stamp.is_file() or stamp.read_text().strip() != gopherlua_digest():
        pytest.fail(
            f"{binary} was built from other sources than hack/gopherlua/ has now. {build}", pytrace=False
        )
    built = json.loads(
        subprocess.run([binary, "-version"], capture_output=True, text=True, check=True).stdout
    )
    assert built["gopherLua"] == version, built
    return str(binary)


@dataclass(frozen=True)
class Engine:
    """A way to run an Argo CD Lua script: ``lua5.4`` or the gopher-lua runner."""

    name: str
    path: str

    @property
    def argo(self) -> bool:
        return self.name == "gopher-lua"


ENGINES = ("lua5.4", "gopher-lua")


def engine_of(name: str) -> Engine:
    return Engine(name, find_lua() if name == "lua5.4" else find_gopherlua())


@pytest.fixture(scope="module")
def lua() -> str:
    return find_lua()


@pytest.fixture(scope="module")
def gopherlua() -> str:
    return find_gopherlua()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each test that takes it runs once per engine."""
    return engine_of(request.param)


def cm_patch() -> dict[str, Any]:
    return yaml.safe_load(CM_PATCH.read_text())


def health_open_libs() -> bool:
    """``resource.customizations.useOpenLibs.slogate.io_ModelDeployment`` of the patch, parsed as Argo
    CD parses it (Go's strconv.ParseBool): the health check then gets every standard library."""
    value = cm_patch()["data"].get(OPEN_LIBS_KEY)
    if value is None:
        return False
    assert isinstance(value, str), f"{OPEN_LIBS_KEY}: ConfigMap data must be a string (quote it)"
    bools = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True}
    bools |= {"0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
    assert value in bools, f"Argo CD rejects {OPEN_LIBS_KEY}: {value!r}"
    return bools[value]


def run_gopherlua(
    path: str, mode: str, script: Path, obj: dict[str, Any], *, open_libs: bool = False
) -> subprocess.CompletedProcess[str]:
    """hack/gopherlua on ``script`` with ``obj`` (on stdin): its JSON result on stdout, or exit 1
    and the Lua error (or Argo CD's rejection of the result) on stderr."""
    args = [path, "-mode", mode, "-script", str(script), "-obj", "-"]
    if open_libs:
        args.append("-open-libs")
    return subprocess.run(
        args, input=json.dumps(obj), capture_output=True, text=True, timeout=30, check=False
    )


def health(engine: Engine, obj: dict[str, Any], script: Path = SCRIPT) -> tuple[str, str]:
    """(hs.status, hs.message) of ``script`` (deploy/gitops/argocd-health.lua) for ``obj``."""
    if engine.argo:
        proc = run_gopherlua(engine.path, "health", script, obj, open_libs=health_open_libs())
        assert proc.returncode == 0, f"gopher-lua (Argo CD's sandbox): {proc.stderr}"
        hs = json.loads(proc.stdout)
        return hs["status"], hs["message"]
    chunk = RUNNER.format(obj=to_lua(obj), script=_lua_string(str(script)))
    proc = subprocess.run(
        [engine.path, "-"], input=chunk, capture_output=True, text=True, timeout=30, check=False
    )
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
    # The states the resource actions need (tests/unit/test_argocd_actions.py): an aborted rollout
    # (canaryRevision kept, outcome Aborted), a person's pause on a live object as Argo CD reads it
    # (tracking annotation, managedFields), a rollout under way while traffic is on a fallback tier.
    ("aborted-by-person", "Degraded", "rolled back: aborted by a person", "Failed"),
    (
        "paused-by-person",
        "Suspended",
        "paused by a person: run `slogate resume` to continue",
        "InProgress",
    ),
    (
        "fallback-during-rollout",
        "Degraded",
        "traffic on fallback tier modelDeployment/llama-small: Primary unhealthy for 2m",
        "Failed",
    ),
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
def test_argocd_health(engine: Engine, name: str, status: str, message: str, _flux: str) -> None:
    got_status, got_message = health(engine, fixture(name))
    assert got_status in ARGO_STATUSES
    assert (got_status, message in got_message) == (status, True), got_message
    assert "\n" not in got_message and "\t" not in got_message


def test_paused_names_the_gate_not_the_progress_message(engine: Engine) -> None:
    status, message = health(engine, fixture("paused-manual-gate"))
    assert (status, message) == ("Suspended", "manual gate at step 4 of 4: run `slogate promote` to continue")


def test_rolled_back_falls_back_to_the_degraded_condition(engine: Engine) -> None:
    obj = fixture("rolled-back-ttft")
    del obj["status"]["rollout"]
    obj["status"]["message"] = None
    assert health(engine, obj) == ("Degraded", "rolled back: ttft p95 612ms > 500ms")


def test_progressing_without_status_message_uses_the_condition(engine: Engine) -> None:
    obj = fixture("progressing-canary-50")
    del obj["status"]["message"]
    status, message = health(engine, obj)
    assert status == "Progressing"
    assert message.endswith("revision 7d9f8c6b keeps serving until then")


def test_fallback_without_status_fallback_uses_the_condition(engine: Engine) -> None:
    obj = fixture("fallback-active")
    del obj["status"]["fallback"]
    status, message = health(engine, obj)
    assert status == "Degraded"
    assert message.startswith("traffic on fallback tier unknown: Primary unhealthy for 2m")


def test_invalid_spec_is_named(engine: Engine) -> None:
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
    assert health(engine, obj) == (
        "Degraded",
        "failed: InvalidSpec: spec.engine.tensorParallelSize: engine.tensorParallelSize must divide "
        "resources.gpu.count",
    )


def test_current_generation_without_phase_is_progressing(engine: Engine) -> None:
    obj = fixture("ready")
    del obj["status"]["phase"]
    del obj["status"]["message"]
    assert health(engine, obj) == ("Progressing", "Waiting for the operator to report a phase")


def test_unknown_phase_from_a_newer_operator(engine: Engine) -> None:
    obj = fixture("ready")
    obj["status"]["phase"] = "Hibernating"
    assert health(engine, obj) == (
        "Unknown",
        "unknown phase Hibernating: revision 7d9f8c6b serves with 2/2 replicas Ready",
    )


def test_numbers_as_floats(engine: Engine) -> None:
    """Argo CD's gopher-lua has one number type (float64); generation 8.0 still reads as 8."""
    obj = fixture("stale-generation")
    obj["metadata"]["generation"] = 8.0
    obj["status"]["observedGeneration"] = 7.0
    assert health(engine, obj) == ("Progressing", "Waiting for the operator to observe generation 8")
    obj["status"]["observedGeneration"] = 8.0
    assert health(engine, obj)[0] == "Healthy"


def test_status_without_observed_generation_waits(engine: Engine) -> None:
    obj = fixture("ready")
    del obj["status"]["observedGeneration"]
    assert health(engine, obj) == ("Progressing", "Waiting for the operator to observe generation 3")


# ------------------------------------------------------------------------- the two engines


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_both_engines_give_the_same_verdict(lua: str, gopherlua: str, name: str) -> None:
    """Lua 5.4 and Argo CD's gopher-lua, in Argo CD's sandbox, agree to the letter on every fixture."""
    obj = fixture(name)
    assert health(Engine("lua5.4", lua), obj) == health(Engine("gopher-lua", gopherlua), obj)


DUMP = """\
local function dump(v)
  if type(v) ~= "table" then
    return type(v) .. ":" .. tostring(v)
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local out = "{"
  for _, k in ipairs(keys) do
    out = out .. tostring(k) .. "=" .. dump(v[k]) .. ";"
  end
  return out .. "}"
end
return {status = "Healthy", message = dump(obj)}
"""


def test_both_engines_see_the_same_obj(lua: str, gopherlua: str, tmp_path: Path) -> None:
    """``to_lua`` gives Lua 5.4 the ``obj`` that Argo CD's conversion gives gopher-lua: keywords as
    keys, escapes, UTF-8, integers and fractions, null dropped from objects and from arrays, empty
    arrays and objects both as empty tables."""
    script = tmp_path / "dump.lua"
    script.write_text(DUMP)
    value = {
        "end": "a keyword as key",
        "b-c": ['say "hi"\n\ttab\\', 2.5, -3, True, False, "≤ ünïcode", None, "\x01", 1234567890123],
        "gone": None,
        "nested": {"emptyList": [], "emptyObject": {}, "neg": -0.25},
    }
    got = {e.name: health(e, value, script) for e in (Engine("lua5.4", lua), Engine("gopher-lua", gopherlua))}
    assert got["lua5.4"] == got["gopher-lua"]
    assert "7=string:\x01;8=number:1234567890123;}" in got["gopher-lua"][1]  # the null was dropped


# (what, a line Lua 5.4 runs, the error Argo CD's sandbox gives, fails with useOpenLibs too)
SANDBOX_CASES = [
    ("integer division (5.3)", "local x = 7 // 2", "syntax error", True),
    ("bitwise and (5.3)", "local x = 3 & 1", "Invalid token", True),
    ("bitwise xor (5.3)", "local x = 1 ~ 2", "Invalid '~' token", True),
    ("shift (5.3)", "local x = 1 << 2", "syntax error", True),
    ("variable attributes (5.4)", "local x <const> = 1", "syntax error", True),
    (
        "table.unpack (5.2)",
        "local a, b = table.unpack({1, 2})",
        "attempt to call a non-function object",
        True,
    ),
    ("utf8 library (5.3)", "local x = utf8.char(72)", "with key 'char'", True),
    ("load of a string (5.2)", 'local f = load("return 1")', "function expected, got string", True),
    ("io library", 'io.write("")', "with key 'write'", False),
    ("string library", 'local x = string.format("%d", 1)', "with key 'format'", False),
    ("string methods", 'local x = ("x"):upper()', "with key 'upper'", False),
    ("math library", "local x = math.floor(1.5)", "with key 'floor'", False),
    ("os.clock", "local x = os.clock()", "attempt to call a non-function object", False),
    ("os.getenv", 'local x = os.getenv("HOME")', "attempt to call a non-function object", False),
    ("debug library", "local x = debug.traceback()", "with key 'traceback'", False),
    ("coroutine library", "local co = coroutine.create(function() end)", "with key 'create'", False),
]


@pytest.mark.parametrize(
    ("what", "line", "error", "always"), SANDBOX_CASES, ids=[c[0] for c in SANDBOX_CASES]
)
def test_the_sandbox_rejects_what_lua_5_4_accepts(
    lua: str, gopherlua: str, tmp_path: Path, what: str, line: str, error: str, always: bool
) -> None:
    """The engine matters: a script that works in Lua 5.4 but uses syntax gopher-lua (Lua 5.1) does
    not parse, or a library Argo CD does not open for argocd-cm customizations, fails in the
    runner, so it fails these tests. Argo CD opens only base, table, package and os.time/os.date;
    ``useOpenLibs`` (health checks only) adds gopher-lua's standard set, still Lua 5.1's."""
    script = tmp_path / "snippet.lua"
    script.write_text(f'{line}\nreturn {{status = "Healthy", message = "ok"}}\n')
    assert health(Engine("lua5.4", lua), {}, script) == ("Healthy", "ok"), what
    proc = run_gopherlua(gopherlua, "health", script, {})
    assert proc.returncode == 1, f"{what} runs in Argo CD's sandbox: {proc.stdout}"
    assert error in proc.stderr, proc.stderr
    opened = run_gopherlua(gopherlua, "health", script, {}, open_libs=True)
    assert (opened.returncode == 1) is always, opened.stderr or opened.stdout


def test_gopher_lua_accepts_goto(lua: str, gopherlua: str, tmp_path: Path) -> None:
    """gopher-lua parses Lua 5.2's goto (test_script_is_lua_5_1_compatible forbids it anyway)."""
    script = tmp_path / "goto.lua"
    script.write_text('goto done\n::done::\nreturn {status = "Healthy", message = "ok"}\n')
    for engine in (Engine("lua5.4", lua), Engine("gopher-lua", gopherlua)):
        assert health(engine, {}, script) == ("Healthy", "ok")


def test_argo_cd_reads_the_result_its_own_way(gopherlua: str, tmp_path: Path) -> None:
    """What Argo CD makes of odd results: an unknown status, an empty table, a runaway script."""
    script = tmp_path / "odd.lua"
    for body, want in [
        (
            'return {status = "Fine", message = "x"}',
            {"status": "Unknown", "message": "Lua returned an invalid health status"},
        ),
        ("return {}", {"status": "", "message": ""}),
        ("return nil", {"status": "", "message": ""}),
    ]:
        script.write_text(body)
        proc = run_gopherlua(gopherlua, "health", script, {})
        assert (proc.returncode, json.loads(proc.stdout or "null")) == (0, want), proc.stderr
    script.write_text("return 5")
    assert (
        "expect table output from Lua script, not number"
        in run_gopherlua(gopherlua, "health", script, {}).stderr
    )
    script.write_text("while true do end")
    assert "context deadline exceeded" in run_gopherlua(gopherlua, "health", script, {}).stderr


def test_use_open_libs_only_while_the_health_check_needs_it(gopherlua: str) -> None:
    """argocd-cm-patch.yaml gives the health check Lua's standard libraries (``useOpenLibs``) only
    while it needs them: argocd-health.lua calls string.format and math.floor, which Argo CD's
    sandbox does not have otherwise. Once the script does without, drop the key (least privilege)."""
    if not health_open_libs():
        return  # every test above runs the health check without the standard libraries
    broken = [
        c[0] for c in CASES if run_gopherlua(gopherlua, "health", SCRIPT, fixture(c[0])).returncode != 0
    ]
    assert broken, (
        f"{SCRIPT.name} runs without Lua's standard libraries now: remove {OPEN_LIBS_KEY} from "
        f"{CM_PATCH.relative_to(ROOT)} (and its mention in docs/gitops.md)"
    )


def test_the_runner_is_argo_cds_gopher_lua(gopherlua: str) -> None:
    """The runner is built with the gopher-lua that hack/versions.env and hack/gopherlua/go.mod pin."""
    built = json.loads(
        subprocess.run([gopherlua, "-version"], capture_output=True, text=True, check=True).stdout
    )
    version = versions()["GOPHER_LUA_VERSION"]
    assert built["gopherLua"] == version
    assert f"github.com/yuin/gopher-lua {version}" in (GOPHERLUA_SRC / "go.mod").read_text()
    assert built["argoCD"] in (ROOT / "docs" / "gitops.md").read_text()


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
