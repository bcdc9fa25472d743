-- License auto-update. The host does the work natively (lifeline-license):
-- license_about / license_check / license_install return JSON text; this
-- plugin decides what to do and tells the operator. Installing asks the
-- customer (capability "license.update").
local M = {}

-- A small JSON decoder: objects, arrays, strings, numbers, true/false/null.
local function decode(s)
  local pos = 1
  local value
  local function ws()
    pos = string.find(s, "[^ \t\r\n]", pos) or (#s + 1)
  end
  local escapes = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
  local function str()
    local out = {}
    pos += 1
    while true do
      local c = string.sub(s, pos, pos)
      if c == "" then error("unterminated string in host reply") end
      if c == '"' then pos += 1; break end
      if c == "\\" then
        local e = string.sub(s, pos + 1, pos + 1)
        if e == "u" then
          local code = tonumber(string.sub(s, pos + 2, pos + 5), 16) or 63
          table.insert(out, utf8.char(code))
          pos += 6
        else
          table.insert(out, escapes[e] or e)
          pos += 2
        end
      else
        table.insert(out, c)
        pos += 1
      end
    end
    return table.concat(out)
  end
  function value()
    ws()
    local c = string.sub(s, pos, pos)
    if c == "{" then
      local t = {}
      pos += 1; ws()
      if string.sub(s, pos, pos) == "}" then pos += 1; return t end
      while true do
        ws()
        local k = str()
        ws(); pos += 1 -- ':'
        t[k] = value()
        ws()
        local d = string.sub(s, pos, pos); pos += 1
        if d == "}" then return t end
      end
    elseif c == "[" then
      local t = {}
      pos += 1; ws()
      if string.sub(s, pos, pos) == "]" then pos += 1; return t end
      while true do
        table.insert(t, value())
        ws()
        local d = string.sub(s, pos, pos); pos += 1
        if d == "]" then return t end
      end
    elseif c == '"' then
      return str()
    elseif string.sub(s, pos, pos + 3) == "true" then pos += 4; return true
    elseif string.sub(s, pos, pos + 4) == "false" then pos += 5; return false
    elseif string.sub(s, pos, pos + 3) == "null" then pos += 4; return nil
    else
      local num = string.match(s, "^-?[%d.eE+-]+", pos)
      if not num then error("bad JSON from the host at " .. pos) end
      pos += #num
      return tonumber(num)
    end
  end
  return value()
end

local function about()
  local raw, err = lifeline.license_about()
  if not raw then error(err) end
  local a = decode(raw)
  local text = a.about
  if a.last_check then
    text = text .. "\nLast check:       " .. a.last_check .. " — " .. (a.last_result or "")
  end
  text = text .. "\nRemote service:   " .. a.remote_service .. " (license mode " .. a.mode .. ")"
  lifeline.send_output(text)
  return text
end

local function check()
  local raw, err = lifeline.license_check()
  if not raw then error(err) end
  local c = decode(raw)
  lifeline.send_output(c.text)
  return c
end

local function update()
  local c = check()
  if c.status ~= "available" then
    return c.text
  end
  lifeline.report_line("license offered: " .. c.text)
  local raw, err = lifeline.license_install()
  if not raw then
    lifeline.report_line("license not installed: " .. err)
    error("the new license was not installed: " .. err)
  end
  local r = decode(raw)
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
