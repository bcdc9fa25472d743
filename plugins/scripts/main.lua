-- Runs a batch of library scripts the customer consented to. The agent
-- received the files, checked their hashes and asked the customer; the
-- rest is this plugin's: the order, writing each script's files into a
-- fresh temporary folder, the interpreter its shebang line names (or the
-- file itself), running it, and whether the batch stops after a failure.
--
-- Arguments: stop_on_failure ("true"/"false"), timeout_secs, then five per
-- script in the batch's order: name, execution file name, execution file
-- (bytes), input file name ("" for none), input file (bytes).
--
-- Progress goes to the agent through send_output, one JSON object per
-- line: {"event":"start","script":N} before script N (1-based, batch
-- order) runs (the lines its process writes are its output), and
-- {"event":"done","script":N,...} with its result after. Any other line is
-- shown as output of the script running. run returns { results = { ... } }:
-- the results in the order the scripts ran; a script without one did not.
local M = {}

local function safe_name(name)
  return name ~= nil and name ~= "" and string.sub(name, 1, 1) ~= "." and string.match(name, "^[%w%._%-]+$") ~= nil
end

-- JSON text of a flat table of strings, numbers and booleans.
local function json(t)
  local parts = {}
  for k, v in pairs(t) do
    local value = tostring(v)
    if type(v) == "string" then
      value = '"' .. (string.gsub(v, '[%c"\\]', function(c)
        return string.format("\\u%04x", string.byte(c))
      end)) .. '"'
    end
    table.insert(parts, '"' .. k .. '":' .. value)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function report(event, n, result)
  local t = { event = event, script = n }
  for k, v in pairs(result or {}) do t[k] = v end
  lifeline.send_output(json(t))
end

-- The scripts of the batch, in its order.
local function batch(args)
  local scripts = {}
  for i = 3, #args, 5 do
    table.insert(scripts, {
      name = args[i], exec_name = args[i + 1], exec = args[i + 2],
      input_name = args[i + 3] or "", input = args[i + 4] or "",
    })
  end
  return scripts
end

-- The program and arguments that run the execution file.
local function command(s)
  local shebang = string.match(s.exec, "^#!([^\n]*)")
  if shebang then
    local argv = {}
    for word in string.gmatch(shebang, "%S+") do table.insert(argv, word) end
    local program = table.remove(argv, 1)
    if program == nil then return nil, "the shebang line names no interpreter" end
    table.insert(argv, "./" .. s.exec_name)
    return program, argv
  end
  local file = "'./" .. s.exec_name .. "'"
  return "/bin/sh", { "-c", "chmod 700 " .. file .. " && exec " .. file }
end

-- Runs one script in a fresh temporary folder (the previous script's is
-- removed with everything in it); returns its result.
local function run_one(s, timeout_ms)
  if not safe_name(s.exec_name) then return { error = "unsafe execution file name" } end
  if s.input_name ~= "" and not safe_name(s.input_name) then
    return { error = "unsafe input file name" }
  end
  local ok, err = lifeline.temp_renew()
  if not ok then return { error = err } end
  ok, err = lifeline.fs_write(s.exec_name, s.exec)
  if not ok then return { error = err } end
  if s.input_name ~= "" then
    ok, err = lifeline.fs_write(s.input_name, s.input)
    if not ok then return { error = err } end
  end
  local program, argv = command(s)
  if not program then return { error = argv } end
  local out, serr = lifeline.spawn(program, argv, timeout_ms)
  if not out then return { error = serr } end
  return { exit_code = out.exit_code, timed_out = out.timed_out }
end

local function failed(r)
  return r.error ~= nil or r.timed_out or r.exit_code ~= 0
end

function M.run(command_name, args)
  if command_name ~= "run" then error("unknown command " .. command_name) end
  local stop_on_failure = args[1] == "true"
  local timeout_ms = (tonumber(args[2]) or 300) * 1000
  local results = {}
  for n, s in ipairs(batch(args)) do
    report("start", n)
    local r = run_one(s, timeout_ms)
    report("done", n, r)
    r.script = n
    table.insert(results, r)
    if failed(r) and stop_on_failure then break end
  end
  return { results = results }
end

return M
