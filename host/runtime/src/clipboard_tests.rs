//! `clipboard.text` as a plugin sees it (Lua): only during an open share,
//! refused before anything is asked without one, asked once in a call,
//! bounded, and "not on this host" where the screen has no clipboard.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::capability::Capability;
use crate::host::{HostError, Natives, SessionPort};
use crate::manifest::Manifest;
use crate::plugins::PluginHost;
use crate::screen::{MAX_CLIPBOARD_BYTES, ScreenAccess};
use crate::tests::unsigned_host;
use crate::wit;

/// A session whose screen keeps the clipboard in memory.
#[derive(Default)]
struct Desk {
    asked: Mutex<Vec<String>>,
    refuse: AtomicBool,
    screen: Arc<FakeScreen>,
}

#[derive(Default)]
struct FakeScreen {
    sharing: AtomicBool,
    /// `None`: this screen has no clipboard (the trait's defaults answer).
    clipboard: Option<Mutex<Option<String>>>,
}

impl SessionPort for Desk {
    fn consent(&self, _: &Manifest, cap: Capability) -> Result<(), String> {
        self.asked.lock().unwrap().push(cap.to_string());
        if self.refuse.load(Ordering::Relaxed) {
            return Err("denied by customer".into());
        }
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
    fn natives(&self) -> Option<&dyn Natives> {
        Some(self)
    }
}

impl Natives for Desk {
    fn screen(&self) -> Option<Arc<dyn ScreenAccess>> {
        Some(Arc::clone(&self.screen) as Arc<dyn ScreenAccess>)
    }
}

impl ScreenAccess for FakeScreen {
    fn open(&self, _: &str) -> Result<wit::ScreenInfo, HostError> {
        unreachable!("not opened in these tests")
    }
    fn sharing(&self, _: &str) -> bool {
        self.sharing.load(Ordering::Relaxed)
    }
    fn changes(&self, _: &str) -> Result<wit::ScreenChanges, HostError> {
        unreachable!()
    }
    fn read(&self, _: &str, _: &[wit::Rect], _: &mut Vec<u8>) -> Result<(), HostError> {
        unreachable!()
    }
    fn cursor(&self, _: &str) -> Result<wit::CursorState, HostError> {
        unreachable!()
    }
    fn close(&self, _: &str) {}
    fn input(&self, _: &str, _: &[wit::InputEvent]) -> Result<(), HostError> {
        unreachable!()
    }
    fn clipboard_read(&self, plugin: &str) -> Result<Option<String>, HostError> {
        match &self.clipboard {
            Some(c) => Ok(c.lock().unwrap().clone()),
            None => ScreenAccess::clipboard_read(&Bare, plugin),
        }
    }
    fn clipboard_write(&self, plugin: &str, text: &str) -> Result<(), HostError> {
        match &self.clipboard {
            Some(c) => {
                *c.lock().unwrap() = Some(text.to_string());
                Ok(())
            }
            None => ScreenAccess::clipboard_write(&Bare, plugin, text),
        }
    }
}

/// A screen without a clipboard: the trait's defaults.
struct Bare;

impl ScreenAccess for Bare {
    fn open(&self, _: &str) -> Result<wit::ScreenInfo, HostError> {
        unreachable!()
    }
    fn sharing(&self, _: &str) -> bool {
        true
    }
    fn changes(&self, _: &str) -> Result<wit::ScreenChanges, HostError> {
        unreachable!()
    }
    fn read(&self, _: &str, _: &[wit::Rect], _: &mut Vec<u8>) -> Result<(), HostError> {
        unreachable!()
    }
    fn cursor(&self, _: &str) -> Result<wit::CursorState, HostError> {
        unreachable!()
    }
    fn close(&self, _: &str) {}
    fn input(&self, _: &str, _: &[wit::InputEvent]) -> Result<(), HostError> {
        unreachable!()
    }
}

const CODE: &str = r#"
local M = {}
function M.run(command, args)
  if command == "paste" then
    local ok, err = lifeline.clipboard_write(args[1])
    if err then return "error: " .. err end
    local text, err2 = lifeline.clipboard_read()
    if err2 then return "error: " .. err2 end
    return "read " .. tostring(text)
  elseif command == "huge" then
    local ok, err = lifeline.clipboard_write(string.rep("x", tonumber(args[1])))
    return tostring(err)
  end
  local text, err = lifeline.clipboard_read()
  if err then return "error: " .. err end
  return "read " .. tostring(text)
end
return M
"#;

fn host(dir: &Path) -> PluginHost {
    let root = dir.join("plugins");
    let pdir = root.join("clip");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("main.lua"), CODE).unwrap();
    let mut manifest = String::from(
        "[plugin]\nid = \"clip\"\nversion = \"0.1.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\ndescription = \"clip\"\n[capabilities]\n\"clipboard.text\" = \"Read and replace the text on this computer's clipboard while the screen is shared\"\n",
    );
    for c in ["read", "paste", "huge"] {
        manifest.push_str(&format!(
            "[[commands]]\nname = \"{c}\"\ndescription = \"{c}\"\nargs = [{{ name = \"x\" }}]\n"
        ));
    }
    std::fs::write(pdir.join("plugin.toml"), manifest).unwrap();
    let host = unsigned_host(root, dir);
    assert!(host.load_all().is_empty());
    host
}

fn run(host: &PluginHost, desk: &Arc<Desk>, command: &str, arg: &str) -> String {
    host.call(
        "clip",
        command,
        &[arg.into()],
        Arc::clone(desk) as Arc<dyn SessionPort>,
    )
    .unwrap()
}

#[test]
fn the_clipboard_needs_an_open_share_and_is_asked_once_in_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let desk = Arc::new(Desk {
        screen: Arc::new(FakeScreen {
            clipboard: Some(Mutex::new(None)),
            ..FakeScreen::default()
        }),
        ..Desk::default()
    });
    let said = run(&host, &desk, "read", "");
    assert_eq!(
        said,
        "error: permission denied: the clipboard needs an open screen share (screen-open)"
    );
    assert!(desk.asked.lock().unwrap().is_empty(), "nothing asked");

    desk.screen.sharing.store(true, Ordering::Relaxed);
    assert_eq!(run(&host, &desk, "read", ""), "read nil");
    assert_eq!(run(&host, &desk, "paste", "hello"), "read hello");
    assert_eq!(
        desk.asked.lock().unwrap().as_slice(),
        ["clipboard.text", "clipboard.text"],
        "once in each call"
    );
    let limit = MAX_CLIPBOARD_BYTES + 1;
    let said = run(&host, &desk, "huge", &limit.to_string());
    assert!(
        said.starts_with("limit reached: clipboard text of"),
        "{said}"
    );
    assert_eq!(desk.asked.lock().unwrap().len(), 2, "a limit asks nothing");

    desk.refuse.store(true, Ordering::Relaxed);
    let said = run(&host, &desk, "paste", "no");
    assert!(
        said.contains("\"clipboard.text\" was not allowed: denied by customer"),
        "{said}"
    );
    assert_eq!(
        run(&host, &desk, "huge", "10"),
        "permission denied: \"clipboard.text\" was not allowed: denied by customer"
    );
}

#[test]
fn a_screen_without_a_clipboard_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let desk = Arc::new(Desk::default());
    desk.screen.sharing.store(true, Ordering::Relaxed);
    let said = run(&host, &desk, "read", "");
    assert!(
        said.contains("does not provide that feature: no clipboard"),
        "{said}"
    );
}
