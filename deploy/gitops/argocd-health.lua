-- Argo CD health check for slogate.io/ModelDeployment.
--
-- Install it under the argocd-cm key resource.customizations.health.slogate.io_ModelDeployment
-- (deploy/gitops/argocd-cm-patch.yaml embeds this file; docs/gitops.md explains the mapping).
-- Argo CD sets the global `obj` to the live object and reads back `hs.status` and `hs.message`.
--
-- Written for Lua 5.1 (Argo CD's gopher-lua) and tested with Lua 5.4
-- (tests/unit/test_argocd_health.py): no goto, no integer division, no bitwise operators.
--
--   status missing, or status.observedGeneration < metadata.generation  -> Progressing
--   phase Ready                                                         -> Healthy
--   phase Pending, Progressing                                          -> Progressing
--   phase Paused (a manual gate, a person, inconclusive analysis)       -> Suspended
--   phase RolledBack, Degraded, Failed                                  -> Degraded
--   phase Fallback (traffic served by a fallback tier)                  -> Degraded
--   any other phase (a newer operator)                                  -> Unknown

local hs = {}

-- The first argument that is a non-empty string, or nil.
local function first(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" and v ~= "" then
      return v
    end
  end
  return nil
end

-- The condition of type `ctype`, or nil.
local function condition(status, ctype)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == ctype then
      return c
    end
  end
  return nil
end

-- The condition of type `ctype` when its status is "True", or nil.
local function true_condition(status, ctype)
  local c = condition(status, ctype)
  if c ~= nil and c.status == "True" then
    return c
  end
  return nil
end

-- "Reason: message" of a condition, or nil.
local function describe(c)
  if c == nil then
    return nil
  end
  local msg = first(c.message)
  local reason = first(c.reason)
  if msg ~= nil and reason ~= nil then
    return reason .. ": " .. msg
  end
  return first(msg, reason)
end

-- The message of a condition, or nil.
local function message_of(c)
  if c == nil then
    return nil
  end
  return first(c.message)
end

-- Argo CD runs health checks without the string and math libraries (unless useOpenLibs is set);
-- its tostring already prints 8.0 as "8", Lua 5.4's as "8.0", so format only where string exists.
local function number_text(n)
  if type(n) == "number" and n % 1 == 0 and string ~= nil then
    return string.format("%.0f", n)
  end
  return tostring(n)
end

local metadata = obj.metadata or {}
local generation = metadata.generation
local status = obj.status

-- 1. The operator has not seen this spec yet: whatever status says describes an older one.
if type(status) ~= "table" or status.observedGeneration == nil
    or (type(generation) == "number" and type(status.observedGeneration) == "number"
        and status.observedGeneration < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. number_text(generation)
  else
    hs.message = "Waiting for the operator to observe this ModelDeployment"
  end
  return hs
end

local phase = status.phase
local rollout = status.rollout
if type(rollout) ~= "table" then
  rollout = {}
end

-- 2. The phase, which the operator derives from the conditions.
if phase == "Ready" then
  hs.status = "Healthy"
  hs.message = first(status.message, message_of(condition(status, "Ready")), "Ready")
  return hs
end

if phase == "Progressing" or phase == "Pending" then
  hs.status = "Progressing"
  local msg = first(status.message, message_of(condition(status, "Progressing")),
    message_of(condition(status, "Ready")), phase)
  if first(status.canaryRevision) ~= nil and type(status.canaryWeight) == "number" then
    msg = "canary " .. status.canaryRevision .. " at weight " .. number_text(status.canaryWeight)
      .. "%: " .. msg
  end
  hs.message = msg
  return hs
end

if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = first(rollout.pausedReason, status.message, "rollout paused")
  return hs
end

if phase == "RolledBack" then
  hs.status = "Degraded"
  local why = first(rollout.outcomeMessage, message_of(true_condition(status, "Degraded")),
    status.message, "the last rollout was rolled back")
  hs.message = "rolled back: " .. why
  return hs
end

if phase == "Degraded" then
  hs.status = "Degraded"
  -- Too few GPUs is the root cause of unschedulable pods: name it first.
  hs.message = first(describe(true_condition(status, "InsufficientGPU")),
    describe(true_condition(status, "Degraded")), status.message, rollout.outcomeMessage,
    "degraded")
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  local why = nil
  -- An invalid spec can be reported on any condition; a GPU shape no node can hold on InsufficientGPU.
  if type(status.conditions) == "table" then
    for _, c in ipairs(status.conditions) do
      if type(c) == "table" and c.reason == "InvalidSpec" then
        why = describe(c)
        break
      end
    end
  end
  why = first(why, describe(true_condition(status, "InsufficientGPU")),
    describe(true_condition(status, "Degraded")), status.message, rollout.outcomeMessage,
    "the ModelDeployment cannot run")
  hs.message = "failed: " .. why
  return hs
end

if phase == "Fallback" then
  hs.status = "Degraded"
  local fb = status.fallback
  if type(fb) ~= "table" then
    fb = {}
  end
  local active = true_condition(status, "FallbackActive")
  local tier = first(fb.target, "unknown")
  local why = first(fb.reason, message_of(active), status.message, "the primary cannot serve")
  hs.message = "traffic on fallback tier " .. tier .. ": " .. why
  return hs
end

if phase == nil then
  hs.status = "Progressing"
  hs.message = first(status.message, "Waiting for the operator to report a phase")
  return hs
end

hs.status = "Unknown"
hs.message = "unknown phase " .. tostring(phase) .. ": " .. first(status.message, "no message")
return hs
