-- A hostile Lua plugin for the isolation tests: each command misbehaves.
local M = {}
-- Memory the module keeps between calls (the "hoard" command fills it).
local hoard = {}

function M.run(command, args)
  if command == "ok" then
    return "fine"
  elseif command == "small" then
    -- Allocates a little: works on a healthy plugin.
    local t = {}
    for i = 1, 100 do t[i] = string.rep("y", i) end
    return "fine " .. #t
  elseif command == "hoard" then
    -- Fills memory in small steps, up to the limit, and keeps it.
    while true do
      table.insert(hoard, string.rep("x", 1024) .. #hoard)
    end
  elseif command == "loop" then
    while true do end
  elseif command == "alloc" then
    local t = {}
    local s = "x"
    while true do
      s = s .. s
      table.insert(t, s)
    end
  elseif command == "read-outside" then
    local data, err = lifeline.fs_read("../../../../etc/passwd")
    local io_there = io ~= nil
    error("via host: " .. tostring(data) .. " / " .. tostring(err) .. "; io library present: " .. tostring(io_there))
  elseif command == "spawn" then
    local out, err = lifeline.spawn("sh", {"-c", "id"}, 1000)
    if out then return "ran: " .. out.stdout end
    error(err)
  elseif command == "denied" then
    local info, err = lifeline.system_info("os")
    if info then return "allowed" end
    return "handled the denial: " .. err
  elseif command == "flood" then
    local chunk = string.rep("x", 64 * 1024)
    for i = 1, 1600 do
      local ok, err = lifeline.send_output(chunk)
      if not ok then error(err) end
    end
    return "flooded"
  elseif command == "panic" then
    error("hostile plugin raised an error on purpose")
  elseif command == "escape" then
    local found = {}
    for _, name in ipairs({"os", "io", "debug", "load", "loadstring", "require", "dofile", "loadfile", "getfenv", "setfenv"}) do
      local v = _G[name]
      if v ~= nil then
        if name == "os" then
          -- Luau keeps a harmless os (clock, date, time); nothing that runs commands.
          if os.execute or os.remove or os.exit or os.getenv then table.insert(found, "os.dangerous") end
        else
          table.insert(found, name)
        end
      end
    end
    local ok = pcall(function() lifeline.send_output = function() end end)
    if ok then table.insert(found, "lifeline is writable") end
    if #found > 0 then return "ESCAPED: " .. table.concat(found, ", ") end
    return "contained"
  end
  error("unknown command " .. command)
end

return M
