-- Example Lua plugin. The entry file returns a table with run(command, args).
-- Host functions return their value, or nil and an error message.
local M = {}

function M.run(command, args)
  if command == "greet" then
    local who = args[1] or "operator"
    lifeline.log("info", "greeting " .. who)
    lifeline.send_output("Hello, " .. who .. "!")
    local n = tonumber(lifeline.kv_get("greetings") or "0") + 1
    lifeline.kv_set("greetings", tostring(n))
    return "greeted " .. n .. " times"
  elseif command == "memory" then
    local info, err = lifeline.system_info("memory")
    if not info then
      return "The customer did not allow reading system information (" .. err .. ")."
    end
    -- The memory record as a table: the operator sees its fields.
    return info
  end
  error("unknown command " .. command)
end

return M
