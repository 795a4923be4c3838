-- Argo CD health of a JitAccessSchedule (resource.customizations.health.azurejit.dev_JitAccessSchedule).
-- Healthy once the operator has seen this generation and schedules it (or it is suspended);
-- Degraded when it is Stalled (invalid spec, missing policy, template the policy denies, denied);
-- Progressing while it waits for approval or has not caught up with the latest spec.
local hs = { status = "Progressing", message = "Waiting for the operator to reconcile the schedule" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end

local generation = obj.metadata.generation
local function behind(observed)
  return generation ~= nil and observed ~= nil and observed < generation
end
if behind(obj.status.observedGeneration) then
  hs.message = "Waiting for the operator to see generation " .. generation
  return hs
end

local ready, stalled, reconciling
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Stalled" then
    stalled = condition
  elseif condition.type == "Reconciling" then
    reconciling = condition
  end
end
if ready == nil then
  return hs
end
if behind(ready.observedGeneration) then
  hs.message = "Waiting for the operator to see generation " .. generation
  return hs
end

local message = ready.message or ""
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (ready.reason or "Stalled") .. ": " .. (stalled.message or message)
else
  hs.status = "Progressing"
  if reconciling ~= nil and reconciling.status == "True" then
    message = reconciling.message or message
  end
  hs.message = (ready.reason or "Reconciling") .. ": " .. message
end
return hs
