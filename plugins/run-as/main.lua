-- Log in as another user of the customer's computer.
--
-- The host does only what must be native (capability account.login): it
-- asks the operator for the password (this plugin never sees it), checks
-- it with PAM, opens the user's session and suspends the customer's input,
-- all in one step; from then on `spawn` runs as that user. The suspension
-- tells the customer itself (banner, terminal line). This plugin owns the
-- rest: what is checked before the customer is asked, and what the
-- operator reads.
local M = {}

-- The longest account name the agent accepts.
local MAX_USER = 64

-- Ends the call with `message` for the operator (a host error's "failed: "
-- left out: it is the whole story).
local function fail(message)
  error((string.gsub(message, "^failed: ", "")), 0)
end

-- Why `user` cannot be an account name, or nil.
local function bad_user(user)
  if user == nil or user == "" then
    return "name the account to log in as, e.g. `login administrator` or `login DOMAIN\\user`"
  end
  if #user > MAX_USER then
    return string.format("an account name has at most %d characters", MAX_USER)
  end
  if string.sub(user, 1, 1) == "-" then
    return string.format("%q is not an account name: it may not start with -", user)
  end
  if not string.match(user, "^[%w%.%_%-@\\]+$") then
    return string.format("%q is not an account name: use letters, digits and . _ - @ \\", user)
  end
  return nil
end

-- What the customer's suspension holds.
local function held(login)
  if login.display then
    return "keyboard and pointer grabbed on X display " .. login.display .. "; terminal input held"
  end
  return "terminal input held"
end

local function login(user)
  local why = bad_user(user)
  if why then fail(why) end
  -- Checked before the customer is asked: one login at a time.
  local current, err = lifeline.user_current()
  if err then fail(err) end
  if current then
    fail("you are already logged in as " .. current.user .. "; log out first (run-as logout)")
  end
  local l, lerr = lifeline.user_login(user)
  if not l then fail(lerr) end
  return string.format(
    "logged in as %s (uid %d, gid %d); processes now run as %s; the customer's access is suspended (%s)",
    l.user, l.uid, l.gid, l.user, held(l))
end

local function logout()
  local ended, err = lifeline.user_logout()
  if err then fail(err) end
  if not ended then return "not logged in as another user" end
  return "logged out of " .. ended.user .. "; the customer's access is restored"
end

local function status()
  local l, err = lifeline.user_current()
  if err then fail(err) end
  if not l then return "not logged in as another user" end
  return string.format("logged in as %s (uid %d, gid %d) since %s; the customer's access is suspended (%s)",
    l.user, l.uid, l.gid, l.since, held(l))
end

local function whoami()
  local out, err = lifeline.spawn("id", {}, 10000)
  if not out then fail(err) end
  return (string.gsub(out.stdout, "%s+$", ""))
end

function M.run(command, args)
  if command == "login" then
    return login(args[1])
  elseif command == "logout" then
    return logout()
  elseif command == "status" then
    return status()
  elseif command == "whoami" then
    return whoami()
  end
  fail("unknown command " .. command)
end

return M
