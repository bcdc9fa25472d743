//! `account.login` and `power.restart` as a plugin sees them: typed records
//! (Lua tables), consent asked for the login and the restart only, and a
//! clear refusal where the host offers no such native part.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::capability::Capability;
use crate::host::{Natives, SessionPort};
use crate::manifest::Manifest;
use crate::plugins::PluginHost;
use crate::tests::unsigned_host;
use crate::wit::{LoginInfo, RestartInfo};

/// A host whose natives pretend: a login as "ada", a restart until noon.
#[derive(Default)]
struct Pretend {
    asked: Mutex<Vec<String>>,
    login: Mutex<Option<LoginInfo>>,
    /// Offers no natives at all (as `lifeline plugin test`).
    bare: bool,
}

impl SessionPort for Pretend {
    fn consent(&self, _: &Manifest, cap: Capability) -> Result<(), String> {
        self.asked.lock().unwrap().push(cap.to_string());
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
    fn natives(&self) -> Option<&dyn Natives> {
        (!self.bare).then_some(self as &dyn Natives)
    }
}

impl Natives for Pretend {
    fn login(&self) -> Option<LoginInfo> {
        self.login.lock().unwrap().clone()
    }
    fn user_login(&self, _: &str, user: &str) -> Result<LoginInfo, String> {
        let l = LoginInfo {
            user: user.into(),
            uid: 1001,
            gid: 1001,
            groups: vec![1001, 27],
            home: format!("/home/{user}"),
            since: "2026-12-02T12:00:00Z".into(),
            display: None,
        };
        *self.login.lock().unwrap() = Some(l.clone());
        Ok(l)
    }
    fn user_logout(&self, _: &str) -> Result<Option<LoginInfo>, String> {
        Ok(self.login.lock().unwrap().take())
    }
    fn power_restart(&self, _: &str, reason: &str) -> Result<RestartInfo, String> {
        Ok(RestartInfo {
            rejoin_until: format!("2026-12-02T12:15:00Z for {reason}"),
        })
    }
}

const CODE: &str = r#"
local M = {}
local function show(l)
  if not l then return "none" end
  return string.format("%s %d:%d groups=%d home=%s display=%s", l.user, l.uid, l.gid,
    #l.groups, l.home, tostring(l.display))
end
function M.run(command, args)
  local v, err
  if command == "login" then v, err = lifeline.user_login(args[1])
  elseif command == "current" then v, err = lifeline.user_current()
  elseif command == "logout" then v, err = lifeline.user_logout()
  elseif command == "restart" then
    v, err = lifeline.power_restart(args[1])
    if v then return v.rejoin_until end
  end
  if err then return "error: " .. err end
  return show(v)
end
return M
"#;

fn host(dir: &Path) -> PluginHost {
    let root = dir.join("plugins");
    let pdir = root.join("natives");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("main.lua"), CODE).unwrap();
    let mut manifest = String::from(
        "[plugin]\nid = \"natives\"\nversion = \"0.1.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\ndescription = \"natives\"\n[capabilities]\n\"account.login\" = \"Log in as another user\"\n\"power.restart\" = \"Restart\"\n",
    );
    for c in ["login", "current", "logout", "restart"] {
        manifest.push_str(&format!(
            "[[commands]]\nname = \"{c}\"\ndescription = \"{c}\"\nargs = [{{ name = \"x\" }}]\n"
        ));
    }
    std::fs::write(pdir.join("plugin.toml"), manifest).unwrap();
    let host = unsigned_host(root, dir);
    assert!(host.load_all().is_empty());
    host
}

fn run(host: &PluginHost, port: &Arc<Pretend>, command: &str, arg: &str) -> String {
    host.call(
        "natives",
        command,
        &[arg.into()],
        Arc::clone(port) as Arc<dyn SessionPort>,
    )
    .unwrap()
}

#[test]
fn login_and_restart_are_typed_records_and_only_acting_asks() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let port = Arc::new(Pretend::default());
    assert_eq!(run(&host, &port, "current", ""), "none");
    assert_eq!(run(&host, &port, "logout", ""), "none");
    assert!(port.asked.lock().unwrap().is_empty(), "looking never asks");
    let shown = "ada 1001:1001 groups=2 home=/home/ada display=nil";
    assert_eq!(run(&host, &port, "login", "ada"), shown);
    assert_eq!(run(&host, &port, "current", ""), shown);
    assert_eq!(run(&host, &port, "logout", ""), shown);
    assert_eq!(run(&host, &port, "current", ""), "none");
    assert_eq!(
        run(&host, &port, "restart", "updates"),
        "2026-12-02T12:15:00Z for updates"
    );
    assert_eq!(
        port.asked.lock().unwrap().as_slice(),
        ["account.login", "power.restart"]
    );

    // Without the native parts (a test session): said so, not a crash.
    let bare = Arc::new(Pretend {
        bare: true,
        ..Pretend::default()
    });
    assert_eq!(run(&host, &bare, "current", ""), "none");
    let said = run(&host, &bare, "login", "ada");
    assert!(said.contains("does not provide that feature"), "{said}");
    let said = run(&host, &bare, "restart", "x");
    assert!(said.contains("does not provide that feature"), "{said}");
}
