-- License auto-update. The host does the work natively (lifeline-license):
-- license_about / license_check / license_install return tables (the WIT
-- records); this plugin decides what to do and tells the operator.
-- Installing asks the customer (capability "license.update"); in the
-- background (the agent service between sessions) the agent's policy
-- decides. The schedule is this plugin's: without it, no periodic check.
local M = {}

-- Shortest pause between two background checks, whatever the config says.
local MIN_INTERVAL_MS = 1000
-- Longest a timer may be set for (u32 milliseconds).
local MAX_INTERVAL_MS = 4000000000
local background = false

local function about()
  local a, err = lifeline.license_about()
  if not a then error(err) end
  local text = a.about
  if a.last_check then
    text = text .. "\nLast check:       " .. a.last_check .. " — " .. (a.last_result or "")
  end
  text = text .. "\nRemote service:   " .. a.remote_service .. " (license mode " .. a.mode .. ")"
  lifeline.send_output(text)
  return text
end

local function check()
  local c, err = lifeline.license_check()
  if not c then error(err) end
  lifeline.send_output(c.text)
  return c
end

-- Checks and installs what is offered; returns what happened and what
-- the check said.
local function update()
  local c = check()
  if c.status ~= "available" then
    return c.text, c.text
  end
  lifeline.report_line("license offered: " .. c.text)
  local r, err = lifeline.license_install()
  if not r then
    lifeline.report_line("license not installed: " .. err)
    error("the new license was not installed: " .. err)
  end
  lifeline.send_output(r.message)
  lifeline.report_line("license update: " .. r.message)
  lifeline.send_output(r.about)
  return r.message, c.text
end

local function first_line(s)
  return string.match(s, "^[^\n]*") or s
end

-- The next background check, after the admin's interval.
local function schedule()
  local a = lifeline.license_about()
  local every = 86400 * 1000
  if a and a.check_interval_secs then every = a.check_interval_secs * 1000 end
  every = math.max(MIN_INTERVAL_MS, math.min(every, MAX_INTERVAL_MS))
  local ok, err = lifeline.timer_set(every)
  if not ok then lifeline.log("warn", "no next license check: " .. tostring(err)) end
end

function M.start(reason)
  -- A new version (reload) or a fresh instance (restart) goes on where the
  -- old one was: the mode is handed over in state.kv.
  if reason == "session" or reason == "background" then
    lifeline.kv_set("mode", reason)
  else
    reason = lifeline.kv_get("mode") or "session"
  end
  if reason == "background" then
    background = true
    -- The first check at once, then on the admin's schedule.
    lifeline.timer_set(0)
  end
end

function M.on_event(ev)
  if ev.kind ~= "timer" or not background then return end
  local ok, done, said = pcall(update)
  if not ok then
    lifeline.send_output("license check failed: " .. tostring(done))
  elseif done == said then
    lifeline.send_output("license check: " .. first_line(said))
  else
    lifeline.send_output("license check: " .. first_line(said) .. " — " .. first_line(done))
  end
  schedule()
end

function M.stop() end

function M.run(command, args)
  if command == "about" then
    return about()
  elseif command == "check" then
    return check().text
  elseif command == "update" then
    return (update())
  end
  error("unknown command " .. tostring(command) .. "; use about, check or update")
end

return M
