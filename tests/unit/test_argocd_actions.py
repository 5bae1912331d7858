"""Argo CD resource actions for ModelDeployment (deploy/gitops/argocd-actions/), run for real.

Every action (promote, promote-full, pause, resume, abort, retry) and the discovery script run on
the ModelDeployments of tests/fixtures/argocd/ in two engines, as the health check does
(tests/unit/test_argocd_health.py): a stock Lua 5.4, and Argo CD's own gopher-lua in Argo CD's
sandbox (hack/gopherlua), where actions never get Lua's standard libraries. Lua 5.4's result is
read back the way the runner reads gopher-lua's (gopher-json's rules, Argo CD's clean-up of empty
objects, the JSON merge patch Argo CD's API server sends).

An action must change exactly one thing: ``metadata.annotations["slogate.io/command"]``, whose
value the operator's own parser (``slogate.core.plan.command_of``) reads as the action's verb and
a fresh id, the one ``slogate promote|...`` sets. The copies embedded in
deploy/gitops/argocd-cm-patch.yaml must equal the files.

A missing ``lua5.4`` or gopher-lua runner fails these tests rather than skipping them.
``python -m tests.unit.test_argocd_actions --write-cm-patch`` pastes the scripts into the patch.
"""

from __future__ import annotations

import calendar
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from slogate.cli.commands import VERBS as CLI_VERBS
from slogate.core import rollout as ro
from slogate.core.plan import ANNOTATION_COMMAND, command_of
from slogate.core.status import status_patch
from tests.unit.test_argocd_health import (
    CASES,
    CM_PATCH,
    ENGINES,
    ROOT,
    Engine,
    _lua_string,
    engine_of,
    find_gopherlua,
    find_lua,
    fixture,
    run_gopherlua,
    to_lua,
)

ACTIONS = ROOT / "deploy" / "gitops" / "argocd-actions"
DISCOVERY = ACTIONS / "discovery.lua"
ACTIONS_KEY = "resource.customizations.actions.slogate.io_ModelDeployment"
VERBS = ("promote", "promote-full", "pause", "resume", "abort", "retry")
"""The order of the definitions in the patch: the CLI's, with promote --full after promote."""
FIXTURE_NAMES = [c[0] for c in CASES]


def action_script(verb: str) -> Path:
    return ACTIONS / verb / "action.lua"


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return engine_of(request.param)


@pytest.fixture(scope="module")
def lua() -> str:
    return find_lua()


@pytest.fixture(scope="module")
def gopherlua() -> str:
    return find_gopherlua()


# ------------------------------------------------------------------- Lua 5.4, read as Argo CD


# Encodes the script's result as layeh.com/gopher-json does for Argo CD: an empty table is [], a
# table whose keys are 1..n an array, one with only string keys an object, anything else an error.
RUNNER = """\
obj = {obj}
actionParams = {{}}
local function quote(s)
  return '"' .. s:gsub('[%c"\\\\]', function(c)
    if c == '"' then return '\\\\"' end
    if c == "\\\\" then return "\\\\\\\\" end
    return string.format("\\\\u%04x", c:byte())
  end) .. '"'
end
local function encode(v)
  local t = type(v)
  if t == "nil" then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "string" then return quote(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then error("cannot encode " .. tostring(v)) end
    if math.type(v) == "integer" then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if t ~= "table" then error("cannot encode " .. t .. " to JSON") end
  local first = next(v)
  if first == nil then return "[]" end
  local out = {{}}
  if type(first) == "number" then
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    for i = 1, n do
      if v[i] == nil then error("cannot encode sparse array") end
      out[i] = encode(v[i])
    end
    return "[" .. table.concat(out, ",") .. "]"
  end
  local keys = {{}}
  for k in pairs(v) do
    if type(k) ~= "string" then error("cannot encode mixed or invalid key types") end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for i, k in ipairs(keys) do out[i] = quote(k) .. ":" .. encode(v[k]) end
  return "{{" .. table.concat(out, ",") .. "}}"
end
local ok, ret = pcall(dofile, {script})
if not ok then
  io.stderr:write("script error: ", tostring(ret), "\\n")
  os.exit(3)
end
io.write(encode(ret))
"""


def run_lua54(lua: str, script: Path, obj: dict[str, Any]) -> Any:
    chunk = RUNNER.format(obj=to_lua(obj), script=_lua_string(str(script)))
    proc = subprocess.run([lua, "-"], input=chunk, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, f"lua exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def unmangle(result: Any, live: Any) -> Any:
    """Argo CD's clean-up of an action's result: an empty array where the live object has an object
    becomes {} again (Lua has one empty table); objects key by key, arrays as far as both go."""
    if isinstance(result, dict) and isinstance(live, dict):
        for key, before in live.items():
            if key not in result:
                continue
            after = result[key]
            if isinstance(after, list) and isinstance(before, dict):
                if not after:
                    result[key] = {}
            elif isinstance(after, (dict, list)):
                result[key] = unmangle(after, before)
    elif isinstance(result, list) and isinstance(live, list):
        for i in range(min(len(result), len(live))):
            if isinstance(result[i], (dict, list)) and type(result[i]) is type(live[i]):
                result[i] = unmangle(result[i], live[i])
    return result


def run_action(engine: Engine, verb: str, obj: dict[str, Any]) -> tuple[dict, dict]:
    """(the object Argo CD would patch, the merge patch it would send) for action ``verb`` on ``obj``."""
    script = action_script(verb)
    if engine.argo:
        proc = run_gopherlua(engine.path, "action", script, obj)
        assert proc.returncode == 0, f"gopher-lua (Argo CD's sandbox): {proc.stderr}"
        (impacted,) = json.loads(proc.stdout)
        assert impacted["operation"] == "patch"
        assert status_patch(obj, impacted["resource"]) == impacted["mergePatch"]
        return impacted["resource"], impacted["mergePatch"]
    result = run_lua54(engine.path, script, obj)
    assert isinstance(result, dict) and result.get("kind"), "an action returns the object (old-style)"
    result = unmangle(result, obj)
    return result, status_patch(obj, result)


def run_discovery(engine: Engine, obj: dict[str, Any], script: Path = DISCOVERY) -> dict[str, dict[str, Any]]:
    """name -> {"disabled", "displayName", "iconClass"} of the discovery script on ``obj``."""
    if engine.argo:
        proc = run_gopherlua(engine.path, "discovery", script, obj)
        assert proc.returncode == 0, f"gopher-lua (Argo CD's sandbox): {proc.stderr}"
        return {a.pop("name"): a for a in json.loads(proc.stdout)}
    table = run_lua54(engine.path, script, obj)
    if table == []:
        return {}
    out = {}
    for name, value in table.items():
        assert isinstance(value, dict), f"{name}: Argo CD reads an action's value as an object"
        out[name] = {k: value[k] for k in ("displayName", "iconClass") if k in value}
        out[name]["disabled"] = value.get("disabled") is True
    return out


def enabled(actions: dict[str, dict[str, Any]]) -> set[str]:
    return {name for name, a in actions.items() if not a["disabled"]}


# ------------------------------------------------------------------------------- the actions


def check_command(verb: str, obj: dict[str, Any], result: dict[str, Any], patch: dict[str, Any]) -> str:
    """The action set the command annotation, as the operator reads it, and changed nothing else."""
    value = result["metadata"]["annotations"][ANNOTATION_COMMAND]
    assert patch == {"metadata": {"annotations": {ANNOTATION_COMMAND: value}}}, "Argo CD would patch more"
    before = json.loads(json.dumps(obj))
    after = json.loads(json.dumps(result))
    del after["metadata"]["annotations"][ANNOTATION_COMMAND]
    if not after["metadata"]["annotations"] and "annotations" not in before["metadata"]:
        del after["metadata"]["annotations"]
    assert after == before, "the action changed more than the command annotation"
    command = command_of(result)
    assert command is not None, f"the operator ignores {value!r}"
    assert command.verb == verb
    last = ((obj.get("status") or {}).get("rollout") or {}).get("lastCommandId")
    assert command.id and command.id != last, f"{command.id!r} is the last applied command's id"
    return command.id


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_action_sets_the_command_and_nothing_else(engine: Engine, verb: str, name: str) -> None:
    obj = fixture(name)
    start = int(time.time())
    result, patch = run_action(engine, verb, obj)
    cid = check_command(verb, obj, result, patch)
    # argocd-<os.time()>-<resourceVersion>: seconds of this run, and the version the action saw.
    m = re.fullmatch(r"argocd-(\d+)-(\d+)", cid)
    assert m, cid
    assert start - 1 <= int(m[1]) <= time.time() + 1  # time(2) is the coarse clock: up to a tick behind
    assert m[2] == obj["metadata"]["resourceVersion"]
    others = {k: v for k, v in result["metadata"]["annotations"].items() if k != ANNOTATION_COMMAND}
    assert others == (obj["metadata"].get("annotations") or {})


def test_the_actions_are_the_operators_commands() -> None:
    """One action per verb the operator applies, and the CLI's verbs (promote --full is promote-full)."""
    assert set(VERBS) == set(ro.COMMANDS)
    assert set(VERBS) == set(CLI_VERBS) | {"promote-full"}
    assert sorted(p.parent.name for p in ACTIONS.glob("*/action.lua")) == sorted(VERBS)
    assert sorted(p.name for p in ACTIONS.iterdir()) == sorted([*VERBS, "discovery.lua"])


def test_a_second_command_in_the_same_second_is_applied(engine: Engine) -> None:
    """After the operator applied a command (id in lastCommandId, annotation removed: a new
    resourceVersion), the next action gets another id even within the same second."""
    obj = fixture("paused-manual-gate")
    result, _ = run_action(engine, "resume", obj)
    applied = command_of(result)
    assert applied is not None
    obj["status"]["rollout"]["lastCommandId"] = applied.id
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 2)
    result, patch = run_action(engine, "promote", obj)
    assert check_command("promote", obj, result, patch) != applied.id


def test_the_same_action_twice_on_the_same_version_patches_nothing_new(gopherlua: str) -> None:
    """A double click before the operator acted: the same second and version give the same value,
    so Argo CD's second merge patch is empty and the command is applied once."""
    obj = fixture("progressing-canary-50")
    engine = Engine("gopher-lua", gopherlua)
    for _ in range(3):
        first, _ = run_action(engine, "abort", obj)
        second, patch = run_action(engine, "abort", first)
        if first == second:  # not across a second boundary
            assert patch == {}
            return
    pytest.fail("three runs in a row crossed a second boundary")


def test_an_object_without_annotations_gets_them(engine: Engine) -> None:
    obj = fixture("progressing-canary-50")
    assert "annotations" not in obj["metadata"]
    result, patch = run_action(engine, "pause", obj)
    check_command("pause", obj, result, patch)


def test_an_odd_resource_version_is_left_out_of_the_id(engine: Engine) -> None:
    obj = fixture("progressing-canary-50")
    obj["metadata"]["resourceVersion"] = "not:a number"
    result, patch = run_action(engine, "abort", obj)
    assert re.fullmatch(r"argocd-\d+", check_command("abort", obj, result, patch))


def test_a_pending_command_is_replaced(engine: Engine) -> None:
    """As with ``slogate``, the last command given before the operator acts is the one it applies."""
    obj = fixture("paused-by-person")
    obj["metadata"]["annotations"][ANNOTATION_COMMAND] = "pause:0123456789ab"
    result, patch = run_action(engine, "resume", obj)
    value = result["metadata"]["annotations"][ANNOTATION_COMMAND]
    assert patch == {"metadata": {"annotations": {ANNOTATION_COMMAND: value}}}
    assert command_of(result).verb == "resume"


# ------------------------------------------------------------------------------- discovery


# The actions discovery enables on each fixture (the others are there, disabled).
RUNNING = {"promote", "promote-full", "pause", "abort"}
PAUSED = {"promote", "promote-full", "resume", "abort"}
ENABLED = {
    "ready": set(),
    "progressing-canary-50": RUNNING,
    "pending-first-replicas": set(),
    "paused-manual-gate": PAUSED,
    "paused-by-person": PAUSED,
    "rolled-back-ttft": {"retry"},
    "aborted-by-person": {"retry"},  # canaryRevision is still set: the outcome decides
    "degraded-insufficient-gpu": set(),
    "fallback-active": set(),
    "fallback-during-rollout": RUNNING,  # phase Fallback, but a rollout is under way: abortable
    "failed-shape-unsatisfiable": set(),
    "no-status": set(),
    "stale-generation": set(),
}


def test_every_fixture_has_expected_actions() -> None:
    assert sorted(ENABLED) == sorted(FIXTURE_NAMES)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_discovery(engine: Engine, name: str) -> None:
    actions = run_discovery(engine, fixture(name))
    assert sorted(actions) == sorted(VERBS), "every action is listed, enabled or not"
    assert enabled(actions) == ENABLED[name]
    for a in actions.values():
        assert a["displayName"] and a["iconClass"].startswith("fa ")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_both_engines_discover_the_same_actions(lua: str, gopherlua: str, name: str) -> None:
    obj = fixture(name)
    assert run_discovery(Engine("lua5.4", lua), obj) == run_discovery(Engine("gopher-lua", gopherlua), obj)


def test_discovery_follows_the_rollout_not_the_phase(engine: Engine) -> None:
    """A paused rollout whose phase reads Fallback can still be resumed; an outcome wins over a
    pause left behind."""
    obj = fixture("paused-by-person")
    obj["status"]["phase"] = "Fallback"
    assert enabled(run_discovery(engine, obj)) == PAUSED
    obj["status"]["rollout"]["outcome"] = "RolledBack"
    assert enabled(run_discovery(engine, obj)) == {"retry"}
    obj["status"]["rollout"] = "not a table"
    obj["status"]["canaryRevision"] = ""
    assert enabled(run_discovery(engine, obj)) == set()


# ------------------------------------------------------------------- the scripts' packaging


def embedded_actions() -> dict[str, Any]:
    patch = yaml.safe_load(CM_PATCH.read_text())
    return yaml.safe_load(patch["data"][ACTIONS_KEY])


def test_argocd_cm_patch_embeds_the_actions_verbatim() -> None:
    actions = embedded_actions()
    fix = "run `python -m tests.unit.test_argocd_actions --write-cm-patch`"
    assert set(actions) == {"discovery.lua", "definitions"}, "no mergeBuiltinActions: there are none"
    assert actions["discovery.lua"] == DISCOVERY.read_text(), f"the patch embeds an old discovery.lua: {fix}"
    assert [d["name"] for d in actions["definitions"]] == list(VERBS)
    for d in actions["definitions"]:
        assert set(d) == {"name", "action.lua"}
        assert d["action.lua"] == action_script(d["name"]).read_text(), (
            f"the patch embeds an old {d['name']}/action.lua: {fix}"
        )


def test_the_actions_run_without_open_libs(gopherlua: str) -> None:
    """Argo CD never gives actions or discovery Lua's standard libraries (useOpenLibs is read for
    health checks only): the runner refuses to pretend otherwise."""
    proc = subprocess.run(
        [gopherlua, "-mode", "action", "-open-libs", "-script", str(DISCOVERY), "-obj", "-"],
        input="{}",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "health checks only" in proc.stderr


def test_argo_cd_rejects_what_an_action_must_not_return(gopherlua: str, tmp_path: Path) -> None:
    """The runner reads an action's result as Argo CD does: a table with a kind, or a list of
    impacted resources with operation create or patch."""
    script = tmp_path / "bad.lua"
    for body, error in [
        ("return nil", "expect table output from Lua script, not nil"),
        ("obj.kind = nil\nreturn obj", "Object 'Kind' is missing"),
        ('return {{operation = "delete", resource = obj}}', "unsupported operation"),
        ("local t = {}\nt.self = t\nreturn t", "cannot encode recursively nested tables"),
        ('obj.metadata.annotations = {1, x = "y"}\nreturn obj', "cannot encode mixed or invalid key types"),
    ]:
        script.write_text(body)
        proc = run_gopherlua(gopherlua, "action", script, fixture("ready"))
        assert proc.returncode == 1 and error in proc.stderr, (body, proc.stderr)
    script.write_text('return {{operation = "patch", resource = obj}}')
    (impacted,) = json.loads(run_gopherlua(gopherlua, "action", script, fixture("ready")).stdout)
    assert impacted["mergePatch"] == {}


def test_the_sandbox_os_is_argo_cds(gopherlua: str, tmp_path: Path) -> None:
    """The reduced os of Argo CD's sandbox: os.time and os.date (with gopher-lua's quirks, in UTC as
    in Argo CD's images), require("os") giving the same, and nothing else of the os library."""
    script = tmp_path / "os.lua"
    script.write_text(
        "local r = require('os')\n"
        "local t = os.date('*t', 86400)\n"
        "return {status = 'Healthy', message = table.concat({\n"
        "  os.time{year = 2025, month = 5, day = 14, hour = 9}, os.time{year = 2025, month = 5, day = 14},\n"
        "  os.date('!%Y-%m-%dT%XZ', 0), os.date('%a %x %% %q %', 0), t.wday .. '/' .. t.yday,\n"
        "  tostring(os.clock), tostring(os.getenv), tostring(os.exit), tostring(r.time == nil), type(os.time()),\n"
        "}, '|')}\n"
    )
    proc = run_gopherlua(gopherlua, "health", script, {})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["message"].split("|")
    assert got == [
        str(calendar.timegm((2025, 5, 14, 9, 0, 0))),
        str(calendar.timegm((2025, 5, 14, 12, 0, 0))),  # hour defaults to 12
        "1970-01-01T00:00:00Z",
        "mon 00/00/00 % %q %",  # sic: gopher-lua's %a and %x
        "6/0",  # 1970-01-02 was a Friday; yday is always 0
        "nil",
        "nil",
        "nil",
        "false",
        "number",
    ]


# ----------------------------------------------------------------------- --write-cm-patch


def _indent(text: str, n: int) -> str:
    return "".join(" " * n + line if line.strip() else "\n" for line in text.splitlines(keepends=True))


def actions_block() -> str:
    """The actions key of argocd-cm-patch.yaml, from the files."""
    out = f"  {ACTIONS_KEY}: |\n    discovery.lua: |\n" + _indent(DISCOVERY.read_text(), 6)
    out += "    definitions:\n"
    for verb in VERBS:
        out += f"      - name: {verb}\n        action.lua: |\n" + _indent(action_script(verb).read_text(), 10)
    return out


def write_cm_patch() -> None:
    """Replace the actions key of argocd-cm-patch.yaml (up to the next key of data) with the files."""
    lines = CM_PATCH.read_text().splitlines(keepends=True)
    start = lines.index(f"  {ACTIONS_KEY}: |\n")
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i]))
    CM_PATCH.write_text("".join(lines[:start]) + actions_block() + "".join(lines[end:]))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-cm-patch"]:
        sys.exit("usage: python -m tests.unit.test_argocd_actions --write-cm-patch")
    write_cm_patch()
    print(f"wrote the actions of {ACTIONS.relative_to(ROOT)} into {CM_PATCH.relative_to(ROOT)}")
