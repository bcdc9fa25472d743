-- Runs one library script: the agent hands over the execution file (and the
-- input file) as bytes; this writes them into the call's temporary folder,
-- starts the script with the interpreter its shebang line names (or
-- directly), and returns its exit code. Output lines stream to the session
-- while it runs; the folder is removed when the call ends.
local M = {}

local function safe_name(name)
  return name ~= nil and name ~= "" and string.sub(name, 1, 1) ~= "." and string.match(name, "^[%w%._%-]+$") ~= nil
end

function M.run(command, args)
  if command ~= "run" then error("unknown command " .. command) end
  local exec_name, exec, input_name, input = args[1], args[2], args[3], args[4]
  local timeout_ms = (tonumber(args[5]) or 300) * 1000
  if not safe_name(exec_name) then error("unsafe execution file name") end
  if exec == nil then error("no execution file") end
  local ok, err = lifeline.fs_write(exec_name, exec)
  if not ok then error(err) end
  if input_name ~= nil and input_name ~= "" then
    if not safe_name(input_name) then error("unsafe input file name") end
    ok, err = lifeline.fs_write(input_name, input or "")
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
  -- The agent reads exit_code and timed_out from this table.
  return { exit_code = out.exit_code, timed_out = out.timed_out }
end

return M
