-- Remote reboot. The host takes a single-use rejoin ticket from the broker,
-- keeps it across the restart, tells both sides, and runs the configured
-- power backend; the agent service rejoins the session when it starts.
local M = {}

function M.run(command, args)
  if command ~= "reboot" then error("unknown command " .. command) end
  local reason = table.concat(args, " ")
  local done, err = lifeline.reboot(reason)
  if not done then error(err) end
  return done
end

return M
