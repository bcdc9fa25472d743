//! Sandbox findings over a real session (issue 10, finding 6): what a
//! plugin call spawned — even a child that left its process group with
//! `setsid` — ends when the session ends, although the call's own timeout
//! is far away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline_core::consent::{Policy, Rule};

use crate::support::*;

const MANIFEST: &str = r#"[plugin]
id = "spawner"
version = "1.0.0"
runtime = "lua"
entry = "main.lua"
description = "Starts a long process tree"

[capabilities]
"fs.temp" = "Use a temporary folder"
"process.spawn" = "Run a long command"

[[commands]]
name = "run"
description = "Start a process that calls setsid, then wait"
"#;

/// Prints the PID of a `setsid` child, then waits (timeout: 10 minutes).
const MAIN: &str = r#"return { run = function()
  local out, err = lifeline.spawn("sh", {"-c", "setsid sleep 120 & echo $!; sleep 120"}, 600000)
  return out and "finished" or err
end }"#;

/// Whether a process is still running (a zombie is not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test]
async fn session_end_kills_what_a_plugin_spawned() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let root = tb.dir.path().join("plugins");
    std::fs::create_dir_all(root.join("spawner")).unwrap();
    std::fs::write(root.join("spawner/plugin.toml"), MANIFEST).unwrap();
    std::fs::write(root.join("spawner/main.lua"), MAIN).unwrap();
    let policy = Policy {
        default: Rule::Deny,
        rules: [
            ("process.spawn".to_string(), Rule::Allow),
            ("fs.temp".to_string(), Rule::Allow),
        ]
        .into(),
    };
    let mut cfg = tb.agent_config("agent", Some(policy), Duration::from_secs(20));
    cfg.plugins = Some(unsigned_plugins(root));
    let (sid, agent) = connected_session(&tb, &op, cfg).await;
    let pid = Arc::new(Mutex::new(None::<i32>));
    let run = op.run_plugin(&sid, "spawner", "run", &[], WAIT, {
        let pid = Arc::clone(&pid);
        move |_, line| {
            let mut p = pid.lock().unwrap();
            if p.is_none() {
                *p = line.trim().parse().ok();
            }
        }
    });
    let end = async {
        let deadline = tokio::time::Instant::now() + WAIT;
        while pid.lock().unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no PID streamed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        op.end(&sid, "done").await.unwrap();
    };
    let (_, ()) = tokio::join!(run, end);
    let pid = pid.lock().unwrap().expect("streamed above");
    let _ = agent.task.await;
    let deadline = std::time::Instant::now() + WAIT;
    while running(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!running(pid), "the setsid child {pid} outlived the session");
}
