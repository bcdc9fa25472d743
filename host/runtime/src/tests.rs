//! Runtime tests against the real example and hostile plugins (WASM built
//! from source by scripts/build-plugins, Lua as written).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capability::Capability;
use crate::engine::CallError;
use crate::host::{HostEnv, SessionPort};
use crate::manifest::Manifest;
use crate::plugins::{PluginHost, RuntimeConfig};

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Default)]
struct Port {
    deny: AtomicBool,
    asked: Mutex<Vec<String>>,
    output: AtomicUsize,
}

impl SessionPort for Port {
    fn consent(&self, plugin: &Manifest, cap: Capability) -> Result<(), String> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("{}:{cap}", plugin.id));
        if self.deny.load(Ordering::Relaxed) {
            Err("denied by the customer".into())
        } else {
            Ok(())
        }
    }
    fn output(&self, _plugin: &str, text: &str) {
        self.output.fetch_add(text.len(), Ordering::Relaxed);
    }
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
}

/// Copies plugin folders into a fresh plugin root and starts a host on it.
fn host_with(plugins: &[&str]) -> (tempfile::TempDir, Arc<PluginHost>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    for p in plugins {
        let src = repo().join(p);
        let name = src.file_name().unwrap().to_owned();
        copy_dir(&src, &root.join(name));
    }
    let host = PluginHost::new(RuntimeConfig {
        plugin_dirs: vec![root],
        state_dir: dir.path().join("state"),
        env: HostEnv {
            temp_root: dir.path().join("tmp"),
            proxy: None,
        },
        trusted_keys: vec![],
        allow_unsigned: true,
    })
    .unwrap();
    let errors = host.load_all();
    assert!(
        errors.is_empty(),
        "load errors: {errors:?} (WASM plugins are built by scripts/build-plugins)"
    );
    (dir, Arc::new(host))
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let s = name.to_string_lossy();
        if e.file_type().unwrap().is_file()
            && (s.ends_with(".toml") || s.ends_with(".lua") || s.ends_with(".wasm"))
        {
            std::fs::copy(e.path(), dst.join(&name)).unwrap();
        }
    }
}

/// Calls, waiting out a restart backoff (bounded).
fn call(host: &PluginHost, port: &Arc<Port>, id: &str, cmd: &str) -> Result<String, CallError> {
    let deadline = Instant::now() + WAIT;
    loop {
        match host.call(
            id,
            cmd,
            &["Ada".to_string()],
            Arc::clone(port) as Arc<dyn SessionPort>,
        ) {
            Err(CallError::Restarting(ms)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(ms + 10))
            }
            other => return other,
        }
    }
}

#[test]
fn example_plugins_greet_count_and_ask_consent() {
    let (_d, host) = host_with(&["plugins/hello-wasm", "plugins/hello-lua"]);
    let port = Arc::new(Port::default());
    for id in ["hello-wasm", "hello-lua"] {
        assert_eq!(call(&host, &port, id, "greet").unwrap(), "greeted 1 times");
        assert_eq!(call(&host, &port, id, "greet").unwrap(), "greeted 2 times");
        let err = call(&host, &port, id, "nope").unwrap_err();
        assert!(matches!(err, CallError::NoSuchCommand { .. }), "{err}");
    }
    assert_eq!(port.output.load(Ordering::Relaxed), "Hello, Ada!".len() * 4);
    // state.kv needs no consent; system.info does.
    assert!(port.asked.lock().unwrap().is_empty());
    let os = call(&host, &port, "hello-wasm", "os").unwrap();
    assert!(os.contains("\"kernel\""), "{os}");
    let mem = call(&host, &port, "hello-lua", "memory").unwrap();
    assert!(mem.contains("total_bytes"), "{mem}");
    assert_eq!(
        *port.asked.lock().unwrap(),
        ["hello-wasm:system.info", "hello-lua:system.info"]
    );
    port.deny.store(true, Ordering::Relaxed);
    let os = call(&host, &port, "hello-wasm", "os").unwrap();
    assert!(os.contains("did not allow"), "{os}");
    let mem = call(&host, &port, "hello-lua", "memory").unwrap();
    assert!(mem.contains("did not allow"), "{mem}");
}

#[test]
fn hostile_plugins_are_contained_and_the_host_goes_on() {
    let (dir, host) = host_with(&["tests/plugins/hostile-wasm", "tests/plugins/hostile-lua"]);
    let port = Arc::new(Port::default());
    for id in ["hostile-wasm", "hostile-lua"] {
        let cases: [(&str, fn(&CallError) -> bool, &str); 6] = [
            ("loop", |e| matches!(e, CallError::Limit(_)), "time limit"),
            (
                "alloc",
                |e| matches!(e, CallError::Limit(_)),
                "memory limit",
            ),
            (
                "read-outside",
                |e| matches!(e, CallError::Plugin(_)),
                "outside",
            ),
            (
                "spawn",
                |e| matches!(e, CallError::Plugin(_)),
                "process.spawn",
            ),
            (
                "flood",
                |e| matches!(e, CallError::Limit(_)),
                "output limit",
            ),
            (
                "panic",
                |e| matches!(e, CallError::Crashed(_) | CallError::Plugin(_)),
                "on purpose",
            ),
        ];
        for (cmd, kind, text) in cases {
            let err = call(&host, &port, id, cmd).unwrap_err();
            assert!(
                kind(&err) && err.to_string().contains(text),
                "{id} {cmd}: {err}"
            );
            // The host and the plugin go on.
            assert_eq!(
                call(&host, &port, id, "ok").unwrap(),
                "fine",
                "{id} after {cmd}"
            );
        }
        port.deny.store(true, Ordering::Relaxed);
        let handled = call(&host, &port, id, "denied").unwrap();
        assert!(handled.starts_with("handled the denial"), "{handled}");
        port.deny.store(false, Ordering::Relaxed);
    }
    assert_eq!(
        call(&host, &port, "hostile-lua", "escape").unwrap(),
        "contained"
    );
    let outside = call(&host, &port, "hostile-wasm", "read-outside")
        .unwrap_err()
        .to_string();
    assert!(
        !outside.contains("READ") && outside.contains("direct: Err"),
        "{outside}"
    );
    // No temporary folder is left behind by any call.
    let tmp = dir.path().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn repeated_crashes_pause_then_restart_the_plugin() {
    let (_d, host) = host_with(&["tests/plugins/hostile-lua"]);
    let port = Arc::new(Port::default());
    let dynport = Arc::clone(&port) as Arc<dyn SessionPort>;
    for _ in 0..crate::plugins::CRASHES_BEFORE_BACKOFF {
        let r = host.call("hostile-lua", "loop", &[], Arc::clone(&dynport));
        assert!(matches!(r, Err(CallError::Limit(_))), "{r:?}");
    }
    let r = host.call("hostile-lua", "ok", &[], Arc::clone(&dynport));
    assert!(matches!(r, Err(CallError::Restarting(_))), "{r:?}");
    assert_eq!(call(&host, &port, "hostile-lua", "ok").unwrap(), "fine");
}
