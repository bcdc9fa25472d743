-- Restart the customer's computer; the agent comes back as a service and
-- rejoins the same session by itself.
--
-- The host does only what must be native (capability power.restart): it
-- takes a single-use rejoin ticket for this session from the broker, keeps
-- it in an owner-only file and runs the admin's power backend. This plugin
-- owns the dialogue: what the customer is told before the computer goes
-- down (and when it does not), and what the operator reads.
local M = {}

-- The reason is shown to the customer: a line, not a letter.
local MAX_REASON = 200

local function fail(message)
  error(message, 0)
end

local function tell_customer(text)
  local ok, err = lifeline.notify_customer(text)
  if not ok then fail(err) end
end

function M.run(command, args)
  if command ~= "reboot" then fail("unknown command " .. command) end
  local reason = table.concat(args, " ")
  if #reason > MAX_REASON then
    fail(string.format("the reason is shown to the customer: keep it under %d characters", MAX_REASON))
  end
  local because = ""
  if reason ~= "" then because = " (" .. reason .. ")" end
  -- First, before the customer is asked and anything happens: what the
  -- restart means for them.
  tell_customer("Your operator wants to restart this computer" .. because .. ". Save your work first. "
    .. "When the computer is back, Lifeline reconnects to this session by itself; you do not need to type a code.")
  local done, err = lifeline.power_restart(reason)
  if not done then
    if string.find(err, "^permission denied") then
      fail("the customer did not allow the restart (" .. err .. ")")
    end
    local why = string.gsub(err, "^failed: ", "")
    tell_customer("The restart did not happen: " .. why .. ". The session goes on.")
    fail("the computer was not restarted: " .. why)
  end
  return "the computer is restarting; the agent rejoins the session by itself (rejoin ticket valid until "
    .. done.rejoin_until .. ")"
end

return M
