-- Argo CD health of a JitAccessRequest (resource.customizations.health.azurejit.dev_JitAccessRequest).
-- From status.phase, which the operator derives from the conditions:
--   Pending          -> Progressing  (being checked, waiting for its policy or for its port)
--   Active           -> Healthy      (the port is open, as asked)
--   Expired, Revoked -> Healthy      (finished as intended: the port was closed again)
--   Denied, Failed   -> Degraded     (terminal: the request must be fixed or re-created)
local hs = { status = "Progressing", message = "Waiting for the operator to check the request" }
if obj.status == nil or obj.status.phase == nil then
  return hs
end

local phase = obj.status.phase
local message = obj.status.message or ""
local reason = ""
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      reason = condition.reason or ""
      if message == "" then
        message = condition.message or ""
      end
    end
  end
end
local function describe()
  if reason ~= "" then
    return phase .. " (" .. reason .. "): " .. message
  end
  return phase .. ": " .. message
end

if phase == "Pending" then
  hs.status = "Progressing"
elseif phase == "Active" then
  hs.status = "Healthy"
  if obj.status.expiresAt ~= nil then
    message = "open until " .. obj.status.expiresAt
  end
elseif phase == "Expired" or phase == "Revoked" then
  hs.status = "Healthy"
elseif phase == "Denied" or phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Unknown"
end
hs.message = describe()
return hs
