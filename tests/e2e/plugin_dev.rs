//! The integrator's loop through the built binary: `plugin new` writes a
//! plugin (Lua, Rust), `plugin test` runs its cases and single commands
//! against a fake session (consent from flags or a policy file), plays
//! session events to a long-lived plugin and saves its streams to files.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::processes::{output_text, p, write};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `lifeline ARGS` with Rust plugins built into the shared guest
/// target folder (wit-bindgen is compiled there by scripts/build-plugins,
/// so a build takes seconds); returns success and everything printed.
fn lifeline(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .args(args)
        .env_remove("LIFELINE_CONFIG")
        .env("RUST_LOG", "warn")
        .env("CARGO_TARGET_DIR", repo().join("target/wasm-guests"))
        .output()
        .unwrap();
    (out.status.success(), output_text(&out))
}

fn ok(args: &[&str]) -> String {
    let (success, out) = lifeline(args);
    assert!(success, "lifeline {args:?} failed:\n{out}");
    out
}

fn fails(args: &[&str]) -> String {
    let (success, out) = lifeline(args);
    assert!(!success, "lifeline {args:?} should fail:\n{out}");
    out
}

/// `plugin test` of a new plugin passes its cases; one command with an
/// argument prints the greeting, with the consent flags' answers.
fn new_plugin_passes(dir: &Path) {
    let out = ok(&["plugin", "test", p(dir)]);
    assert!(
        out.contains("PASS greets the operator by default")
            && out.contains("[output] Hello, operator!")
            && out.contains("3 passed, 0 failed"),
        "{out}"
    );
    let out = ok(&[
        "plugin",
        "test",
        p(dir),
        "hello",
        "Ada",
        "--allow",
        "system.info",
    ]);
    assert!(
        out.contains("[output] Hello, Ada!")
            && out.contains("[consent] system.info: allowed (--allow system.info was given)")
            && out.contains("ok: greeted 1 times on "),
        "{out}"
    );
}

#[test]
fn lua_plugin_from_new_to_test_with_consent_flags_and_policy() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(&[
        "plugin",
        "new",
        "--lang",
        "lua",
        "greeter",
        "--dir",
        p(d.path()),
    ]);
    assert!(
        out.contains("main.lua") && out.contains("plugin.test.toml"),
        "{out}"
    );
    let dir = d.path().join("greeter");
    new_plugin_passes(&dir);

    // Refused: a used folder, a name that is no plugin id.
    let out = fails(&[
        "plugin",
        "new",
        "--lang",
        "lua",
        "greeter",
        "--dir",
        p(d.path()),
    ]);
    assert!(
        out.contains("greeter already exists and is not empty"),
        "{out}"
    );
    let out = fails(&[
        "plugin",
        "new",
        "--lang",
        "rust",
        "Greeter!",
        "--dir",
        p(d.path()),
    ]);
    assert!(
        out.contains("\"Greeter!\" is not a valid plugin id"),
        "{out}"
    );

    // Denied by a flag, by a policy, and by default: the plugin reads why.
    let out = ok(&[
        "plugin",
        "test",
        p(&dir),
        "hello",
        "Ada",
        "--deny",
        "system.info",
    ]);
    assert!(
        out.contains("[consent] system.info: denied (--deny system.info was given)")
            && out.contains("ok: greeted 1 times (system information: permission denied"),
        "{out}"
    );
    let policy = d.path().join("policy.toml");
    write(
        &policy,
        "[policy]\ndefault = \"allow\"\n[policy.capabilities]\n\"system.info\" = \"deny\"\n",
    );
    let out = ok(&["plugin", "test", p(&dir), "hello", "--policy", p(&policy)]);
    assert!(
        out.contains("[consent] system.info: denied (the policy")
            && out.contains("policy.toml denies it)"),
        "{out}"
    );
    let out = ok(&["plugin", "test", p(&dir), "hello"]);
    assert!(
        out.contains("denied (nobody to ask in a test; allow it with --allow system.info"),
        "{out}"
    );

    // A case whose expectation the plugin does not meet fails the run.
    let cases = dir.join("plugin.test.toml");
    let text = std::fs::read_to_string(&cases).unwrap();
    write(&cases, &text.replace("Hello, Ada!", "Goodbye, Ada!"));
    let out = fails(&["plugin", "test", p(&dir)]);
    assert!(
        out.contains(
            "FAIL greets by name and counts in its state: \"[output] Goodbye, Ada!\" not found"
        ) && out.contains("2 passed, 1 failed"),
        "{out}"
    );
    let out = fails(&["plugin", "test", p(&dir), "nope"]);
    assert!(
        out.contains("error: plugin greeter has no command \"nope\""),
        "{out}"
    );
}

#[test]
fn rust_plugin_from_new_to_test_builds_the_component() {
    let d = tempfile::tempdir().unwrap();
    ok(&[
        "plugin",
        "new",
        "--lang",
        "rust",
        "greeter-rs",
        "--dir",
        p(d.path()),
    ]);
    let dir = d.path().join("greeter-rs");
    assert_eq!(
        std::fs::read_to_string(dir.join("wit/lifeline-plugin.wit")).unwrap(),
        std::fs::read_to_string(repo().join("sdk/wit/lifeline-plugin.wit")).unwrap(),
        "the WIT copy is the current one"
    );
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let example = std::fs::read_to_string(repo().join("plugins/hello-wasm/Cargo.toml")).unwrap();
    let pin = example
        .lines()
        .find(|l| l.starts_with("wit-bindgen"))
        .unwrap();
    assert!(cargo.contains(pin), "{cargo}");
    // The first test builds plugin.wasm (scripts/build-plugins installs the target).
    new_plugin_passes(&dir);
    assert!(dir.join("plugin.wasm").is_file());
    let out = ok(&[
        "plugin",
        "test",
        p(&dir),
        "hello",
        "--deny",
        "system.info",
        "--no-build",
    ]);
    assert!(
        !out.contains("[build]")
            && out.contains("ok: greeted 1 times (system information: denied: "),
        "{out}"
    );
    // A compile error is told, with cargo's messages.
    let lib = dir.join("src/lib.rs");
    let code = std::fs::read_to_string(&lib).unwrap();
    write(&lib, &code.replace("fn hello(", "fn hello(oops "));
    let out = fails(&["plugin", "test", p(&dir)]);
    assert!(
        out.contains("error: building") && out.contains("failed") && out.contains("src/lib.rs"),
        "{out}"
    );
}

const SERVICE_TOML: &str = r#"
[plugin]
id = "watcher"
version = "0.1.0"
runtime = "lua"
entry = "main.lua"
description = "Counts session events; streams a status"

[capabilities]
"session.events" = ""
"session.stream" = ""
"state.kv" = "Count the session's events"
"chat.send" = "Greet the operator in the chat"

[[commands]]
name = "count"
description = "Events seen"

[[commands]]
name = "status"
description = "Send a status on a stream"
"#;

const SERVICE_LUA: &str = r#"
local M = {}
function M.start(reason) lifeline.send_output("start " .. reason) end
function M.on_event(e)
  lifeline.send_output("heard " .. e.kind .. " " .. (e.operator or e.reason or ""))
  lifeline.kv_set("n", tostring(tonumber(lifeline.kv_get("n") or "0") + 1))
  if e.kind == "operator-attached" then
    local ok, err = lifeline.send_chat("Welcome, " .. e.operator)
    if not ok then lifeline.send_output("no chat: " .. err) end
  end
end
function M.stop() lifeline.send_output("stopped") end
function M.run(command, args)
  if command == "count" then return "events: " .. (lifeline.kv_get("n") or "0") end
  local id = lifeline.stream_open("status", "text/plain", "queued")
  lifeline.stream_send(id, "all ")
  lifeline.stream_send(id, "good")
  return "sent"
end
return M
"#;

#[test]
fn events_reach_a_long_lived_plugin_and_streams_land_in_files() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("watcher");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir.join("plugin.toml"), SERVICE_TOML);
    write(&dir.join("main.lua"), SERVICE_LUA);
    let events = [
        "--event",
        "started",
        "--event",
        "operator-attached:Alice",
        "--event",
        "ending:fixed",
    ];
    let mut args = vec!["plugin", "test", p(&dir), "count"];
    args.extend(events);
    let out = ok(&args);
    for line in [
        "[event] operator-attached Alice",
        "[output] start session",
        "[output] heard started",
        "[output] heard operator-attached Alice",
        "[consent] chat.send: denied",
        "[output] no chat: permission denied",
        "[output] heard ending fixed",
        "[output] stopped",
        "ok: events: 3",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    let streams = d.path().join("streams");
    let out = ok(&[
        "plugin",
        "test",
        p(&dir),
        "status",
        "--streams-dir",
        p(&streams),
    ]);
    assert!(
        out.contains("[stream] opened 1 \"status\" (text/plain, queued), saved to")
            && out.contains("[stream] closed 1 \"status\": 2 frames, 8 bytes"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(streams.join("1-status.bin")).unwrap(),
        "all good"
    );
    let out = fails(&[
        "plugin",
        "test",
        p(&dir),
        "count",
        "--event",
        "ending:x",
        "--event",
        "started",
    ]);
    assert!(out.contains("comes last"), "{out}");
}

/// The SDK's five-minute walkthrough: a new plugin in the agent's plugin
/// folder runs in a live session; `plugin watch` and the agent's hot reload
/// both pick up a save, and the session runs the new code with the state
/// the old one left.
#[test]
fn new_plugin_runs_live_and_a_save_reloads_it_in_the_session() {
    use crate::processes::{Proc, client_configs, invite, join_ready, login, start_broker};
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("agent-plugins");
    ok(&[
        "plugin",
        "new",
        "--lang",
        "lua",
        "greeter",
        "--dir",
        p(&root),
    ]);
    let dir = root.join("greeter");
    let (_broker, addr, fp) = start_broker(d.path());
    let (op, agent_cfg) = client_configs(d.path(), &addr, &fp);
    write(
        &d.path().join("policy.toml"),
        "[policy]\ndefault = \"deny\"\n[policy.capabilities]\n\"system.info\" = \"allow\"\n",
    );
    let text = std::fs::read_to_string(&agent_cfg)
        .unwrap()
        .replace("[agent]\n", "[agent]\npolicy = \"policy.toml\"\n")
        + "[plugins]\ndirs = [\"agent-plugins\"]\nallow_unsigned = true\nhot_reload = true\n";
    write(Path::new(&agent_cfg), &text);
    login(&op);
    let (sid, inv) = invite(&op, "T-5");
    let agent = join_ready(
        &op,
        &agent_cfg,
        inv["connection_id"].as_str().unwrap(),
        &sid,
    );
    let run = [
        "operator", "run", "--config", &op, &sid, "greeter", "hello", "Ada",
    ];
    let out = crate::processes::ok(&run, None);
    assert!(
        out.contains("Hello, Ada!") && out.contains("greeted 1 times on "),
        "{out}"
    );

    let watch = Proc::spawn(&["plugin", "watch", p(&dir), "hello", "Ada"]);
    watch.wait_line("[watch] passed");
    let main = dir.join("main.lua");
    let code = std::fs::read_to_string(&main).unwrap();
    write(&main, &code.replace("\"Hello, \"", "\"Howdy, \""));
    watch.wait_line("[output] Howdy, Ada!");
    agent.wait_line("plugin greeter reloaded");
    let out = crate::processes::ok(&run, None);
    assert!(
        out.contains("Howdy, Ada!") && out.contains("greeted 2 times"),
        "the new code with the old state: {out}"
    );
    // Ctrl-C ends the watcher, which removes its temporary folder.
    let pid = nix::unistd::Pid::from_raw(watch.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let mut watch = watch;
    assert_eq!(watch.child.wait().unwrap().code(), Some(130));
}
