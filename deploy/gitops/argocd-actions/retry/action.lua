-- Argo CD resource action "retry" for slogate.io/ModelDeployment.
-- Rolls out the revision that was rolled back (or aborted) again. The same as `slogate retry
-- NAME`.
--
-- It sets the annotation the CLI sets, slogate.io/command: retry:ID, and changes nothing
-- else; Argo CD sends the difference as a JSON merge patch. The operator applies a command once
-- (it keeps the id in status.rollout.lastCommandId), then removes the annotation (docs/gitops.md).
--
-- The id must differ from the last applied command's: "argocd-", os.time() and the object's
-- resourceVersion, which changes with every write, including the operator's removal of the
-- previous command. Written for Argo CD's sandbox (gopher-lua, Lua 5.1; os.time but no string,
-- math or os.clock) and tested there and in Lua 5.4 (tests/unit/test_argocd_actions.py).

local verb = "retry"

local id = "argocd-" .. os.time()
local rv = obj.metadata.resourceVersion
if type(rv) == "string" and rv ~= "" and #rv <= 32 and tonumber(rv) ~= nil then
  id = id .. "-" .. rv
end

if type(obj.metadata.annotations) ~= "table" then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["slogate.io/command"] = verb .. ":" .. id
return obj
