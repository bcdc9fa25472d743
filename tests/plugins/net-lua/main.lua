-- GETs args[1] and returns "STATUS BODY" (or the host's refusal).
local M = {}
function M.run(command, args)
  local resp, err = lifeline.http_request("GET", args[1], {["x-plugin"] = "net-lua"}, nil)
  if not resp then error(err) end
  return resp.status .. " " .. resp.body
end
return M
