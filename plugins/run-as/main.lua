-- Log in as another user. The host does the work: it asks the operator for
-- the password (this plugin never sees it), checks it with PAM, opens the
-- user's session and suspends the customer's access. Commands and scripts
-- then run as that user until `logout` or the end of the session.
local M = {}

function M.run(command, args)
  if command == "login" then
    local done, err = lifeline.run_as_login(args[1])
    if not done then error(err) end
    return done
  elseif command == "logout" then
    local done, err = lifeline.run_as_logout()
    if not done then error(err) end
    return done
  elseif command == "status" then
    local user, err = lifeline.run_as_status()
    if err then error(err) end
    if user then return "logged in as " .. user end
    return "not logged in as another user"
  elseif command == "whoami" then
    local out, err = lifeline.spawn("id", {}, 10000)
    if not out then error(err) end
    return (string.gsub(out.stdout, "%s+$", ""))
  end
  error("unknown command " .. command)
end

return M
