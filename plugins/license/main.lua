-- License auto-update. The host does the work natively (lifeline-license):
-- license_about / license_check / license_install return tables (the WIT
-- records); this plugin decides what to do and tells the operator.
-- Installing asks the customer (capability "license.update").
local M = {}

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

local function update()
  local c = check()
  if c.status ~= "available" then
    return c.text
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
  return r.message
end

function M.run(command, args)
  if command == "about" then
    return about()
  elseif command == "check" then
    return check().text
  elseif command == "update" then
    return update()
  end
  error("unknown command " .. tostring(command) .. "; use about, check or update")
end

return M
