-- A long-lived plugin: logs start (with the reason and this file's
-- version), each session event and stop into state.kv, so a test can check
-- that none was lost across hot reloads and a reboot.
local VERSION = "v0"
local M = {}

local function log(line)
  local so_far = lifeline.kv_get("log") or ""
  local ok, err = lifeline.kv_set("log", so_far .. line .. "\n")
  if not ok then error(err) end
end

function M.start(reason)
  log("start " .. reason .. " " .. VERSION)
end

function M.on_event(ev)
  local detail = ev.operator or ev.user or ev.reason or ev.timer or ev.stream
  if detail ~= nil then
    log("event " .. ev.kind .. " " .. tostring(detail))
  else
    log("event " .. ev.kind)
  end
end

function M.stop()
  log("stop " .. VERSION)
end

function M.run(command, args)
  if command == "log" then
    return lifeline.kv_get("log") or ""
  end
  error("unknown command " .. tostring(command))
end

return M
