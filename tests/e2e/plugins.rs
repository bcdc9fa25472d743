//! Plugins in a real session: listing, running, consent per capability,
//! streamed output, errors the operator can read, hot reload, bundles.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lifeline_agent::config::PluginsConfig;
use lifeline_protocol::SessionMessage;

use crate::support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the plugin folders (manifest, Lua, built WASM) under `root`.
pub fn install_plugins(root: &Path, plugins: &[&str]) {
    for p in plugins {
        let src = repo().join(p);
        let dst = root.join(src.file_name().unwrap());
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(&src).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".toml") || name.ends_with(".lua") || name.ends_with(".wasm") {
                std::fs::copy(e.path(), dst.join(&name)).unwrap();
            }
        }
    }
}

const WAIT_RUN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn operator_lists_and_runs_plugins_under_consent() {
    let tb = TestBroker::start().await;
    let op = tb.operator("alice").await;
    let root = tb.dir.path().join("plugins");
    install_plugins(
        &root,
        &[
            "plugins/hello-wasm",
            "plugins/hello-lua",
            "tests/plugins/hostile-wasm",
            "tests/plugins/hostile-lua",
            "plugins/sysinfo",
        ],
    );
    let mut cfg = tb.agent_config("agent", None, Duration::from_secs(20));
    cfg.plugins = Some(PluginsConfig {
        dirs: vec![root.clone()],
        trusted_keys: vec![],
        allow_unsigned: true,
        hot_reload: true,
        http_proxy: None,
        folders: Default::default(),
        settings: Default::default(),
        commands: Default::default(),
    });
    let (sid, mut agent) = connected_session(&tb, &op, cfg).await;

    let list = op.plugins(&sid, WAIT).await.unwrap();
    let ids: Vec<_> = list.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "hello-lua",
            "hello-wasm",
            "hostile-lua",
            "hostile-wasm",
            "sysinfo"
        ]
    );
    let wasm = list.iter().find(|p| p.id == "hello-wasm").unwrap();
    assert_eq!(wasm.runtime, "wasm");
    assert_eq!(wasm.commands[0].args, ["name?"]);
    assert!(wasm.capabilities.contains(&"system.info".to_string()));

    // Output streams back; the result comes at the end.
    let mut out = Vec::new();
    let r = op
        .run_plugin(
            &sid,
            "hello-lua",
            "greet",
            &["Mario".into()],
            WAIT_RUN,
            |s, t| out.push(format!("{s}:{t}")),
        )
        .await
        .unwrap();
    assert_eq!(r, Ok("greeted 1 times".into()));
    assert_eq!(out, ["output:Hello, Mario!"]);
    agent.sees("Alice Smith runs hello-lua greet Mario").await;

    // A capability that needs consent: the customer is asked and denies.
    let run = op.run_plugin(&sid, "hello-wasm", "os", &[], WAIT_RUN, |_, _| {});
    let answer = async {
        let prompt = agent.sees("Consent needed").await;
        assert!(
            prompt.contains("hello-wasm") && prompt.contains("system.info"),
            "{prompt}"
        );
        assert!(
            prompt.contains("Read the name and version of this computer's operating system"),
            "{prompt}"
        );
        agent.input.send("/deny".into()).await.unwrap();
    };
    let (r, ()) = tokio::join!(run, answer);
    let text = r.unwrap().unwrap();
    assert!(
        text.contains("did not allow") && text.contains("denied"),
        "{text}"
    );
    // Allowed for the session: asked once, then the grant answers.
    let run = op.run_plugin(&sid, "hello-wasm", "os", &[], WAIT_RUN, |_, _| {});
    let answer = async {
        agent.sees("Consent needed").await;
        agent.input.send("/allow-session".into()).await.unwrap();
    };
    let (r, ()) = tokio::join!(run, answer);
    assert!(r.unwrap().unwrap().contains("\"kernel\""));
    let r = op
        .run_plugin(&sid, "hello-wasm", "os", &[], WAIT_RUN, |_, _| {})
        .await
        .unwrap();
    assert!(r.unwrap().contains("\"kernel\""));

    // Without consent nothing is gathered: the call fails and shows nothing.
    let mut shown = Vec::new();
    let all = ["all".to_string()];
    let run = op.run_plugin(&sid, "sysinfo", "show", &all, WAIT_RUN, |s, t| {
        if s == "output" {
            shown.push(t.to_string())
        }
    });
    let answer = async {
        agent.sees("Consent needed").await;
        agent.input.send("/deny".into()).await.unwrap();
    };
    let (r, ()) = tokio::join!(run, answer);
    assert!(r.unwrap().unwrap_err().contains("did not allow"));
    assert!(shown.is_empty(), "{shown:?}");

    // Misbehaving plugins end their call with a reason the operator reads.
    let r = op
        .run_plugin(&sid, "hostile-lua", "spawn", &[], WAIT_RUN, |_, _| {})
        .await
        .unwrap();
    assert!(r.as_ref().unwrap_err().contains("process.spawn"), "{r:?}");
    let r = op
        .run_plugin(&sid, "hostile-wasm", "loop", &[], WAIT_RUN, |_, _| {})
        .await
        .unwrap();
    assert!(r.as_ref().unwrap_err().contains("time limit"), "{r:?}");
    let r = op
        .run_plugin(&sid, "nope", "x", &[], WAIT_RUN, |_, _| {})
        .await
        .unwrap();
    assert!(r.as_ref().unwrap_err().contains("not installed"), "{r:?}");
    // …and the session goes on.
    op.chat(&sid, "still here").await.unwrap();
    agent.sees("still here").await;

    // Hot reload while the session runs: the operator is told.
    let manifest = root.join("hello-lua/plugin.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"0.1.1\"");
    std::fs::write(&manifest, text).unwrap();
    let notice = operator_sees(&op, |m| matches!(m, SessionMessage::PluginNotice { .. })).await;
    assert!(
        matches!(notice, SessionMessage::PluginNotice { ref text } if text.contains("hello-lua reloaded: version 0.1.1")),
        "{notice:?}"
    );

    let events = op.report(&sid).await.unwrap().1;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "plugin_run",
        "plugin_output",
        "plugin_done",
        "consent",
        "plugin",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert!(
        events
            .iter()
            .any(|e| e.kind == "consent"
                && e.text.contains("system.info for plugin hello-wasm: deny"))
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == "plugin_output" && e.text.contains("Hello, Mario!"))
    );
}
