-- Runs one library script: writes its execution file (and input file) into
-- the call's temporary folder, starts it with the interpreter its shebang
-- line names (or directly), and returns its exit code. Output lines stream
-- to the session while it runs; the folder is removed when the call ends.
local M = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local DEC = {}
for i = 1, 64 do
  DEC[string.byte(ALPHABET, i)] = i - 1
end

local function unbase64(s)
  local out, n = {}, 0
  local byte, char, floor = string.byte, string.char, math.floor
  for i = 1, #s, 4 do
    local a, b, c, d = DEC[byte(s, i)], DEC[byte(s, i + 1)], DEC[byte(s, i + 2)], DEC[byte(s, i + 3)]
    if a == nil or b == nil then error("file content is not base64") end
    local v = a * 262144 + b * 4096 + (c or 0) * 64 + (d or 0)
    n += 1
    if d then
      out[n] = char(floor(v / 65536) % 256, floor(v / 256) % 256, v % 256)
    elseif c then
      out[n] = char(floor(v / 65536) % 256, floor(v / 256) % 256)
    else
      out[n] = char(floor(v / 65536) % 256)
    end
  end
  return table.concat(out)
end

local function safe_name(name)
  return name ~= nil and name ~= "" and string.sub(name, 1, 1) ~= "." and string.match(name, "^[%w%._%-]+$") ~= nil
end

function M.run(command, args)
  if command ~= "run" then error("unknown command " .. command) end
  local exec_name, exec_b64, input_name, input_b64 = args[1], args[2], args[3], args[4]
  local timeout_ms = (tonumber(args[5]) or 300) * 1000
  if not safe_name(exec_name) then error("unsafe execution file name") end
  local exec = unbase64(exec_b64)
  local ok, err = lifeline.fs_write(exec_name, exec)
  if not ok then error(err) end
  if input_name ~= nil and input_name ~= "" then
    if not safe_name(input_name) then error("unsafe input file name") end
    ok, err = lifeline.fs_write(input_name, unbase64(input_b64 or ""))
    if not ok then error(err) end
  end
  local program, argv
  local shebang = string.match(exec, "^#!([^\n]*)")
  if shebang then
    argv = {}
    for word in string.gmatch(shebang, "%S+") do table.insert(argv, word) end
    program = table.remove(argv, 1)
    table.insert(argv, "./" .. exec_name)
  else
    program = "/bin/sh"
    argv = { "-c", "chmod 700 './" .. exec_name .. "' && exec './" .. exec_name .. "'" }
  end
  local out, serr = lifeline.spawn(program, argv, timeout_ms)
  if not out then error(serr) end
  return string.format('{"exit_code":%d,"timed_out":%s}', out.exit_code, tostring(out.timed_out))
end

return M
