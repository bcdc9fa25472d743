-- Collects log files: a sixth feature of the same kind as the built-in
-- ones, made of general capabilities only (fs.folder, http.request).
local M = {}

local function files()
  local entries, err = lifeline.folder_list("logs", "")
  if not entries then error(err) end
  local out = {}
  for _, e in ipairs(entries) do
    if not e.is_dir then table.insert(out, e) end
  end
  -- Newest first.
  table.sort(out, function(a, b) return a.modified_secs > b.modified_secs end)
  return out
end

local function list()
  local lines = {}
  for _, e in ipairs(files()) do
    table.insert(lines, string.format("%-32s %10d bytes", e.name, e.size))
  end
  if #lines == 0 then return "no log files" end
  return table.concat(lines, "\n")
end

local function collect(url, count)
  local parts = {}
  local chosen = files()
  local n = math.min(count, #chosen)
  for i = 1, n do
    local e = chosen[i]
    local data, err = lifeline.folder_read("logs", e.name)
    if not data then error(err) end
    table.insert(parts, "== " .. e.name .. " (" .. #data .. " bytes) ==\n" .. data)
  end
  local bundle = table.concat(parts, "\n")
  local name = "logs-bundle.txt"
  local ok, err = lifeline.folder_write("outbox", name, bundle)
  if not ok then error(err) end
  local resp, herr = lifeline.http_request("POST", url, { ["content-type"] = "text/plain" }, bundle)
  if not resp then error(herr) end
  if resp.status >= 300 then
    error("the support desk answered " .. resp.status)
  end
  lifeline.report_line("log bundle of " .. n .. " files (" .. #bundle .. " bytes) uploaded")
  return { files = n, bytes = #bundle, kept = "outbox/" .. name, status = resp.status }
end

function M.run(command, args)
  if command == "list" then
    return list()
  elseif command == "collect" then
    return collect(args[1], tonumber(args[2]) or 5)
  end
  error("unknown command " .. tostring(command))
end

return M
