-- Argo CD action discovery for slogate.io/ModelDeployment: which of the six actions apply now.
--
-- Installed with the actions under the argocd-cm key
-- resource.customizations.actions.slogate.io_ModelDeployment (deploy/gitops/argocd-cm-patch.yaml
-- embeds this file and every <action>/action.lua verbatim; docs/gitops.md). Argo CD runs it on
-- the live object (the global `obj`) whenever it lists the resource's actions, and greys out
-- those with disabled = true.
--
-- Written for Argo CD's sandbox (gopher-lua, Lua 5.1, with only the base, table and package
-- libraries and os.time/os.date: no string, no math) and tested there and in Lua 5.4
-- (tests/unit/test_argocd_actions.py).
--
-- The state comes from status.rollout and status.canaryRevision, which the operator writes for
-- its rollout, rather than from status.phase: Failed and Fallback take precedence over a rollout's
-- phase, and a rollout under way must still be abortable then.
--
--   a rollout under way (canaryRevision, no outcome)  promote, promote-full, pause, abort
--   ... and paused (rollout.pausedReason)             promote, promote-full, resume, abort
--   the last rollout rolled back or aborted           retry
--   no rollout (Ready, no status yet...)              none

local actions = {}

local function text(v)
  return type(v) == "string" and v ~= ""
end

local status = obj.status
if type(status) ~= "table" then
  status = {}
end
local rollout = status.rollout
if type(rollout) ~= "table" then
  rollout = {}
end

-- RolledBack or Aborted: the operator holds the rejected revision until a retry or a spec change.
local ended = text(rollout.outcome)
local running = text(status.canaryRevision) and not ended
local paused = running and text(rollout.pausedReason)

actions["promote"] = {
  disabled = not running,
  displayName = "Promote: release the current gate or pause",
  iconClass = "fa fa-fw fa-forward",
}
actions["promote-full"] = {
  disabled = not running,
  displayName = "Promote full: skip the remaining steps",
  iconClass = "fa fa-fw fa-fast-forward",
}
actions["pause"] = {
  disabled = not running or paused,
  displayName = "Pause the rollout",
  iconClass = "fa fa-fw fa-pause-circle",
}
actions["resume"] = {
  disabled = not paused,
  displayName = "Resume the rollout",
  iconClass = "fa fa-fw fa-play-circle",
}
actions["abort"] = {
  disabled = not running,
  displayName = "Abort: roll the candidate back now",
  iconClass = "fa fa-fw fa-times-circle",
}
actions["retry"] = {
  disabled = not ended,
  displayName = "Retry the rejected revision",
  iconClass = "fa fa-fw fa-redo",
}

return actions
