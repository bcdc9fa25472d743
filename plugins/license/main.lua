-- License auto-update, all of it: the About view, asking the back office
-- for a newer license, comparing it with the installed one, announcing it
-- to the customer, installing it per the admin's license mode, and, in the
-- background (the agent service between sessions), checking on the admin's
-- schedule. The agent only answers by name what its admin configured
-- ([remote_service] gives this plugin its settings, the "license" and
-- "license-downloads" folders, the "back-office" endpoint and the
-- "reload-license-server" command) and checks signatures against the
-- vendor keys. Delete this folder and there is no license update at all.
local M = {}

-- Shortest pause between two background checks, whatever the config says.
local MIN_INTERVAL_MS = 1000
-- Longest a timer may be set for (u32 milliseconds).
local MAX_INTERVAL_MS = 4000000000
-- The back office's license route.
local LICENSE_PATH = "/license/v1/licenses/"
local background = false

local function settings()
  local s, err = lifeline.plugin_settings()
  if not s then error(err, 0) end
  if not s["license-file"] then
    error("the agent has no [remote_service]: no license to update", 0)
  end
  return s
end

local function now()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

-- Records the last check for the About view and `lifeline agent status`.
local function record(ok, result)
  lifeline.kv_set("last_check", now())
  lifeline.kv_set("last_ok", ok and "true" or "false")
  lifeline.kv_set("last_result", result)
end

-- Days from today (UTC) to a YYYY-MM-DD date.
local function days_until(date)
  local y, m, d = string.match(date, "^(%d+)-(%d+)-(%d+)$")
  local t = os.date("!*t")
  local today = os.time({ year = t.year, month = t.month, day = t.day, hour = 12 })
  local that = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 })
  return math.floor((that - today) / 86400 + 0.5)
end

local function state(date)
  local left = days_until(date)
  if left < 0 then return " (ended)" end
  return " (" .. left .. " days left)"
end

local function about_box(l)
  local features = "-"
  if #l.features > 0 then features = table.concat(l.features, ", ") end
  return table.concat({
    "Serial number:    " .. l.serial,
    "Expires:          " .. l.expires .. state(l.expires),
    "Maintenance:      until " .. l.maintenance_end .. state(l.maintenance_end),
    "Customer:         " .. l.customer,
    "Product:          " .. l.product,
    "Users:            " .. l.users,
    "Features:         " .. features,
    "Issued:           " .. l.issued,
  }, "\n")
end

-- The installed license, signature checked.
local function installed(s)
  local bytes, err = lifeline.folder_read("license", s["license-file"])
  if not bytes then error("cannot read " .. s["license-path"] .. ": " .. err, 0) end
  local l, verr = lifeline.verify_document("license", s["license-path"], bytes)
  if not l then error(verr, 0) end
  return l, bytes
end

local function about()
  local s = settings()
  local l = installed(s)
  local text = about_box(l)
  local last = lifeline.kv_get("last_check")
  if last then
    local failed = lifeline.kv_get("last_ok") == "false" and "failed: " or ""
    text = text .. "\nLast check:       " .. last .. " — " .. failed .. (lifeline.kv_get("last_result") or "")
  end
  local enabled = s.enabled == "true" and "enabled" or "disabled"
  text = text .. "\nRemote service:   " .. enabled .. " (license mode " .. s.mode .. ")"
  lifeline.send_output(text)
  return text
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

-- What the candidate changes, one line each, in the customer's words.
local function changes(old, new)
  local out = {}
  if new.maintenance_end ~= old.maintenance_end then
    local verb = new.maintenance_end > old.maintenance_end and "extended" or "shortened"
    table.insert(out, "Maintenance " .. verb .. ": until " .. new.maintenance_end .. " (was " .. old.maintenance_end .. ")")
  end
  if new.expires ~= old.expires then
    table.insert(out, "License expiry date: " .. new.expires .. " (was " .. old.expires .. ")")
  end
  local added, removed = {}, {}
  for _, f in ipairs(new.features) do
    if not contains(old.features, f) then table.insert(added, f) end
  end
  for _, f in ipairs(old.features) do
    if not contains(new.features, f) then table.insert(removed, f) end
  end
  if #added > 0 then table.insert(out, "Added features: " .. table.concat(added, ", ")) end
  if #removed > 0 then table.insert(out, "Features no longer licensed: " .. table.concat(removed, ", ")) end
  if new.users ~= old.users then
    local verb = new.users > old.users and "added" or "removed"
    local diff = math.abs(new.users - old.users)
    table.insert(out, "Users: " .. new.users .. " (was " .. old.users .. "; " .. diff .. " " .. verb .. ")")
  end
  return out
end

-- Why a candidate is refused, or nil.
local function refusal(old, new)
  if new.serial ~= old.serial then
    return "the back office sent a license for serial " .. new.serial .. ", but this installation has serial " .. old.serial
  end
  if new.product ~= old.product then
    return string.format("the license is for the product %q, the installed one for %q", new.product, old.product)
  end
  if new.digest ~= old.digest and new.issued <= old.issued then
    return "the offered license (issued " .. new.issued .. ") is not newer than the installed one (issued " .. old.issued .. ")"
  end
  return nil
end

local function announcement(new, lines)
  local out = { "A new license is available for " .. new.product .. " (serial " .. new.serial .. "), issued " .. string.sub(new.issued, 1, 10) .. ":" }
  if #lines == 0 then table.insert(out, "  - re-issued with the same terms") end
  for _, l in ipairs(lines) do table.insert(out, "  - " .. l) end
  return table.concat(out, "\n")
end

-- Asks the back office; returns { status, text, changes, offer }.
local function ask(s)
  if s.enabled ~= "true" then
    error("the remote service is disabled (remote_service.enabled = false): no connection to the back office is made", 0)
  end
  local old = installed(s)
  local path = LICENSE_PATH .. old.serial
  local r, err = lifeline.endpoint_request("back-office", "GET", path)
  if not r then error(err, 0) end
  if r.status == 404 then
    return { status = "nothing-published", text = "The back office has no license for serial " .. old.serial .. ".",
             result = "no license published for serial " .. old.serial, changes = {} }
  end
  local new, verr = lifeline.verify_document("license", s["back-office"] .. path, r.body)
  if not new then error(verr, 0) end
  local why = refusal(old, new)
  if why then error("license refused: " .. why, 0) end
  if new.digest == old.digest then
    return { status = "up-to-date", text = "The installed license (serial " .. old.serial .. ") is up to date.",
             result = "up to date (serial " .. old.serial .. ")", changes = {} }
  end
  local lines = changes(old, new)
  return { status = "available", text = announcement(new, lines), changes = lines,
           result = "update available for serial " .. new.serial .. " (issued " .. new.issued .. ")",
           offer = { license = new, bytes = r.body } }
end

local function check()
  local s = settings()
  local ok, c = pcall(ask, s)
  if not ok then
    local msg = tostring(c)
    record(false, msg)
    error(msg, 0)
  end
  record(true, c.result)
  if c.offer then lifeline.notify_customer(c.text) end
  lifeline.send_output(c.text)
  return c
end

-- Writes `bytes` as `name` in `folder`, or fails naming where.
local function write(s, folder, name, bytes, where)
  local ok, err = lifeline.folder_write(folder, name, bytes)
  if not ok then
    error("cannot write the license into " .. where .. ": " .. err .. "; the previous license is kept", 0)
  end
end

local function folder_of(path)
  return string.match(path, "^(.*)/[^/]*$") or "."
end

-- Replaces the license file, keeping the previous one as NAME.bak.
local function replace(s, bytes)
  local name = s["license-file"]
  local where = folder_of(s["license-path"])
  local kept = ""
  local previous = lifeline.folder_read("license", name)
  if previous then
    write(s, "license", name .. ".bak", previous, where)
    kept = " (the previous license is kept as " .. s["license-path"] .. ".bak)"
  end
  write(s, "license", name, bytes, where)
  return kept
end

local function reload(s)
  local command = s["reload-command"]
  if not command then return "" end
  local out, err = lifeline.admin_command(command)
  if out and out.exit_code == 0 and not out.timed_out then
    return " The license server was reloaded."
  end
  local why = err
  if out and out.timed_out then
    why = "it did not finish in time and was stopped"
  elseif out then
    local text = string.gsub(out.stderr .. out.stdout, "%s+$", "")
    why = "exit code " .. out.exit_code .. (text ~= "" and ": " .. text or "")
  end
  return " Reloading the license server failed (" .. why .. "); restart it to use the new license."
end

-- Installs an offer per the admin's license mode; returns the message.
local function install(s, offer)
  local new = offer.license
  if s.mode == "manual" then
    local stamp = string.gsub(new.issued, "[-:]", "")
    local name = new.serial .. "-" .. stamp .. ".toml"
    write(s, "license-downloads", name, offer.bytes, s["download-folder"])
    return "The new license was downloaded to " .. s["download-folder"] .. "/" .. name .. ". Copy it to "
      .. s["license-path"] .. " on the license server and install it there."
  end
  local kept = replace(s, offer.bytes)
  if s.mode == "remote" then
    return "The new license is installed in the shared license folder of the remote license server: "
      .. s["license-path"] .. kept .. "."
  end
  return "The new license is installed on the local license server: " .. s["license-path"] .. kept .. "." .. reload(s)
end

-- Checks and installs what is offered; returns what happened and what
-- the check said.
local function update()
  local c = check()
  if c.status ~= "available" then
    return c.text, c.text
  end
  lifeline.report_line("license offered: " .. c.result)
  local s = settings()
  local ok, done = pcall(install, s, c.offer)
  if not ok then
    local msg = tostring(done)
    record(false, "install failed: " .. msg)
    lifeline.report_line("license not installed: " .. msg)
    error("the new license was not installed: " .. msg, 0)
  end
  record(true, done)
  lifeline.notify_customer(done)
  lifeline.send_output(done)
  lifeline.report_line("license update: " .. done)
  lifeline.send_output(about_box(c.offer.license))
  return done, c.text
end

local function first_line(s)
  return string.match(s, "^[^\n]*") or s
end

-- The next background check, after the admin's interval.
local function schedule()
  local ok, s = pcall(settings)
  local every = 86400 * 1000
  if ok and s["check-interval-secs"] then every = tonumber(s["check-interval-secs"]) * 1000 end
  every = math.max(MIN_INTERVAL_MS, math.min(every, MAX_INTERVAL_MS))
  local set, err = lifeline.timer_set(every)
  if not set then lifeline.log("warn", "no next license check: " .. tostring(err)) end
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
  error("unknown command " .. tostring(command) .. "; use about, check or update", 0)
end

return M
