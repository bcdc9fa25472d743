//! `customer.notify`: a plugin's notice reaches the customer's screen
//! without a consent question, only when declared, bounded in length and
//! counted against the call's output.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::capability::Capability;
use crate::engine::CallError;
use crate::host::{MAX_NOTICE_CHARS, SessionPort};
use crate::manifest::Manifest;
use crate::plugins::PluginHost;
use crate::tests::unsigned_host;

/// Records what the customer was shown and what was asked.
#[derive(Default)]
struct Screen {
    notices: Mutex<Vec<(String, String)>>,
    asked: Mutex<Vec<String>>,
}

impl SessionPort for Screen {
    fn consent(&self, _: &Manifest, cap: Capability) -> Result<(), String> {
        self.asked.lock().unwrap().push(cap.to_string());
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
    fn notify(&self, plugin: &str, text: &str) {
        self.notices
            .lock()
            .unwrap()
            .push((plugin.to_string(), text.to_string()));
    }
}

const CODE: &str = r#"
local M = {}
function M.run(command, args)
  if command == "tell" then
    local ok, err = lifeline.notify_customer(args[1])
    if not ok then return "refused: " .. err end
    return "told"
  end
  error("unknown command " .. command)
end
return M
"#;

/// A plugin `id` whose manifest declares `caps` and whose `tell TEXT`
/// shows TEXT to the customer.
fn plugin(root: &Path, id: &str, caps: &str, output_kb: u32) {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.lua"), CODE).unwrap();
    let manifest = format!(
        "[plugin]\nid = \"{id}\"\nversion = \"0.1.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\ndescription = \"notices\"\n[limits]\noutput_kb = {output_kb}\n[capabilities]\n{caps}\n[[commands]]\nname = \"tell\"\ndescription = \"tell the customer\"\nargs = [{{ name = \"text\", required = true }}]\n"
    );
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
}

fn tell(host: &PluginHost, screen: &Arc<Screen>, id: &str, text: &str) -> String {
    host.call(
        id,
        "tell",
        &[text.into()],
        Arc::clone(screen) as Arc<dyn SessionPort>,
    )
    .unwrap()
}

#[test]
fn notices_reach_the_customer_unasked_declared_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    plugin(
        &root,
        "notice",
        "\"customer.notify\" = \"Tell you what happens\"",
        1,
    );
    plugin(&root, "mute", "", 1);
    let host = unsigned_host(root, dir.path());
    assert!(host.load_all().is_empty());
    let screen = Arc::new(Screen::default());

    assert_eq!(
        tell(
            &host,
            &screen,
            "notice",
            "Your computer restarts in a minute."
        ),
        "told"
    );
    assert_eq!(
        screen.notices.lock().unwrap().as_slice(),
        [(
            "notice".to_string(),
            "Your computer restarts in a minute.".to_string()
        )]
    );
    // It only informs: nobody is asked.
    assert!(screen.asked.lock().unwrap().is_empty());

    // Not declared: refused, nothing shown.
    let said = tell(&host, &screen, "mute", "hello");
    assert!(
        said.contains("capability not declared") && said.contains("customer.notify"),
        "{said}"
    );
    // Too long, or empty: refused, nothing shown.
    let long = "x".repeat(MAX_NOTICE_CHARS + 1);
    let said = tell(&host, &screen, "notice", &long);
    assert!(said.contains("limit reached"), "{said}");
    assert!(tell(&host, &screen, "notice", "  ").contains("empty notice"));
    assert_eq!(tell(&host, &screen, "notice", &long[1..]), "told");
    assert_eq!(screen.notices.lock().unwrap().len(), 2);

    // Notices count against the call's output (1 KiB here): the second one
    // of a call that already used most of it ends the call.
    let code = CODE.replace(
        "local ok, err = lifeline.notify_customer(args[1])",
        "lifeline.notify_customer(args[1]); local ok, err = lifeline.notify_customer(args[1])",
    );
    std::fs::write(dir.path().join("plugins/notice/main.lua"), code).unwrap();
    host.load_dir(&dir.path().join("plugins/notice")).unwrap();
    let r = host.call(
        "notice",
        "tell",
        &["y".repeat(700).into()],
        Arc::clone(&screen) as Arc<dyn SessionPort>,
    );
    assert!(
        matches!(&r, Err(CallError::Limit(m)) if m.contains("output limit")),
        "{r:?}"
    );
    assert_eq!(screen.notices.lock().unwrap().len(), 3);
}
