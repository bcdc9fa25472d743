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

/// A hostile command, how its call must fail, and a word of the message.
type Case = (&'static str, fn(&CallError) -> bool, &'static str);

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn repo() -> PathBuf {
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

/// A host for the plugins under `root` (unsigned allowed), with its state
/// and temporary folders in `dir`.
pub(crate) fn unsigned_host(root: PathBuf, dir: &Path) -> PluginHost {
    unsigned_host_with(root, dir, Default::default())
}

/// [`unsigned_host`] with the admin's `folders` for `fs.folder`.
pub(crate) fn unsigned_host_with(
    root: PathBuf,
    dir: &Path,
    folders: crate::folder::Folders,
) -> PluginHost {
    PluginHost::new(RuntimeConfig {
        plugin_dirs: vec![root],
        state_dir: dir.join("state"),
        env: HostEnv {
            temp_root: dir.join("tmp"),
            proxy: None,
            folders,
        },
        trusted_keys: vec![],
        allow_unsigned: true,
    })
    .unwrap()
}

/// Copies plugin folders into a fresh plugin root and starts a host on it.
pub(crate) fn host_with(plugins: &[&str]) -> (tempfile::TempDir, Arc<PluginHost>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    for p in plugins {
        let src = repo().join(p);
        let name = src.file_name().unwrap().to_owned();
        copy_dir(&src, &root.join(name));
    }
    let host = unsigned_host(root, dir.path());
    let errors = host.load_all();
    assert!(
        errors.is_empty(),
        "load errors: {errors:?} (WASM plugins are built by scripts/build-plugins)"
    );
    (dir, Arc::new(host))
}

pub(crate) fn copy_dir(src: &Path, dst: &Path) {
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
            &["Ada".into()],
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
        let cases: [Case; 6] = [
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

/// After any limit (memory held by the module, time, output) the next call
/// behaves as on a fresh plugin, even one that allocates.
#[test]
fn a_plugin_that_hit_a_limit_is_healthy_on_its_next_call() {
    let (_d, host) = host_with(&["tests/plugins/hostile-lua", "tests/plugins/hostile-wasm"]);
    let port = Arc::new(Port::default());
    for cmd in ["hoard", "alloc", "loop", "flood", "hoard"] {
        let err = call(&host, &port, "hostile-lua", cmd).unwrap_err();
        assert!(matches!(err, CallError::Limit(_)), "{cmd}: {err}");
        assert_eq!(
            call(&host, &port, "hostile-lua", "small").unwrap(),
            "fine 100",
            "a small allocation after {cmd}"
        );
    }
    for cmd in ["alloc", "loop", "flood", "alloc"] {
        let err = call(&host, &port, "hostile-wasm", cmd).unwrap_err();
        assert!(matches!(err, CallError::Limit(_)), "{cmd}: {err}");
        assert_eq!(call(&host, &port, "hostile-wasm", "ok").unwrap(), "fine");
    }
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

/// Writes a file the way editors save: a temporary file, then a rename.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_version(host: &PluginHost, id: &str, version: &str) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if host
            .list()
            .iter()
            .any(|p| p.id == id && p.version == version)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("{id} {version} never went live");
}

#[test]
fn hot_reload_under_load_fails_no_call() {
    let (dir, host) = host_with(&["plugins/hello-lua"]);
    let pdir = dir.path().join("plugins/hello-lua");
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = Arc::clone(&events);
    let _watch = crate::watch::start(
        Arc::clone(&host),
        vec![dir.path().join("plugins")],
        move |e| ev.lock().unwrap().push(e),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(pdir.join("plugin.toml")).unwrap();
    let code = std::fs::read_to_string(pdir.join("main.lua")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (host, stop, calls, failures) = (
                Arc::clone(&host),
                Arc::clone(&stop),
                Arc::clone(&calls),
                Arc::clone(&failures),
            );
            std::thread::spawn(move || {
                let port: Arc<dyn SessionPort> = Arc::new(Port::default());
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match host.call("hello-lua", "greet", &[], Arc::clone(&port)) {
                        Ok(_) => {}
                        Err(e) => failures.lock().unwrap().push(e.to_string()),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for i in 1..=15 {
        let v = format!("0.1.{i}");
        save(
            &pdir.join("main.lua"),
            &code.replace("Hello, ", &format!("Hello v{i}, ")),
        );
        save(
            &pdir.join("plugin.toml"),
            &manifest.replace("version = \"0.1.0\"", &format!("version = \"{v}\"")),
        );
        wait_version(&host, "hello-lua", &v);
    }
    // A broken save: the running version stays and the error is reported.
    save(&pdir.join("main.lua"), "return {{{ this is not lua");
    save(
        &pdir.join("plugin.toml"),
        &manifest.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
    );
    let deadline = Instant::now() + WAIT;
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, crate::watch::ReloadEvent::Failed { .. }))
    {
        assert!(
            Instant::now() < deadline,
            "the failed reload was not reported"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(host.list().iter().any(|p| p.version == "0.1.15"));
    // The next good save is still picked up.
    save(&pdir.join("main.lua"), &code);
    save(
        &pdir.join("plugin.toml"),
        &manifest.replace("version = \"0.1.0\"", "version = \"0.2.1\""),
    );
    wait_version(&host, "hello-lua", "0.2.1");

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(calls.load(Ordering::Relaxed) > 0);
    assert!(
        failures.is_empty(),
        "{} failed calls: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

#[test]
fn a_deleted_plugin_folder_unloads_the_plugin() {
    let (dir, host) = host_with(&["plugins/hello-lua"]);
    let root = dir.path().join("plugins");
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = Arc::clone(&events);
    let _watch = crate::watch::start(Arc::clone(&host), vec![root.clone()], move |e| {
        ev.lock().unwrap().push(e)
    })
    .unwrap();
    let port = Arc::new(Port::default());
    assert!(call(&host, &port, "hello-lua", "greet").is_ok());
    std::fs::remove_dir_all(root.join("hello-lua")).unwrap();
    let removed = || {
        events.lock().unwrap().iter().any(
            |e| matches!(e, crate::watch::ReloadEvent::Removed { id, .. } if id == "hello-lua"),
        )
    };
    let deadline = Instant::now() + WAIT;
    while !removed() {
        assert!(Instant::now() < deadline, "the removal was never reported");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(host.manifest("hello-lua").is_none());
    let err = call(&host, &port, "hello-lua", "greet").unwrap_err();
    assert!(matches!(err, CallError::NoSuchPlugin(_)), "{err}");
    // Put back, it is loaded again.
    copy_dir(&repo().join("plugins/hello-lua"), &root.join("hello-lua"));
    wait_version(&host, "hello-lua", "0.1.0");
}

/// `temp-renew`: the old folder is gone with what it held, files and
/// processes use the new, empty one, which goes when the call ends.
#[test]
fn temp_renew_starts_a_fresh_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let pdir = dir.path().join("plugins/renew");
    std::fs::create_dir_all(&pdir).unwrap();
    let manifest = "[plugin]\nid = \"renew\"\nversion = \"1.0.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\ndescription = \"renew\"\n\n[capabilities]\n\"fs.temp\" = \"Use temporary folders\"\n\"process.spawn\" = \"Run programs\"\n\n[[commands]]\nname = \"x\"\ndescription = \"x\"\n";
    std::fs::write(pdir.join("plugin.toml"), manifest).unwrap();
    let code = r#"
local M = {}
function M.run()
  local first = lifeline.temp_dir()
  lifeline.fs_write("old.txt", "from the first job")
  local second = lifeline.temp_renew()
  local old, err = lifeline.fs_read("old.txt")
  local out = lifeline.spawn("/bin/sh", { "-c", "pwd; ls -A" }, 5000)
  return { first = first, second = second, old_gone = old == nil and err ~= nil, listing = out.stdout }
end
return M
"#;
    std::fs::write(pdir.join("main.lua"), code).unwrap();
    let host = unsigned_host(dir.path().join("plugins"), dir.path());
    assert!(host.load_all().is_empty());
    let port: Arc<dyn SessionPort> = Arc::new(Port::default());
    let out = host.call("renew", "x", &[], port).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (first, second) = (v["first"].as_str().unwrap(), v["second"].as_str().unwrap());
    assert_ne!(first, second);
    assert_eq!(v["old_gone"], true, "{out}");
    assert_eq!(
        v["listing"].as_str().unwrap(),
        format!("{second}\n"),
        "{out}"
    );
    assert!(!Path::new(first).exists() && !Path::new(second).exists());
}

#[test]
fn signatures_are_required_unless_the_development_switch_is_set() {
    use crate::bundle;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    let pdir = root.join("hello-lua");
    copy_dir(&repo().join("plugins/hello-lua"), &pdir);
    let key_file = dir.path().join("publisher.key");
    let public = bundle::keygen(&key_file).unwrap();
    let make = |trusted: Vec<ed25519_dalek::VerifyingKey>| {
        PluginHost::new(RuntimeConfig {
            plugin_dirs: vec![root.clone()],
            state_dir: dir.path().join("state"),
            env: HostEnv {
                temp_root: dir.path().join("tmp"),
                proxy: None,
                folders: Default::default(),
            },
            trusted_keys: trusted,
            allow_unsigned: false,
        })
        .unwrap()
    };
    let errors = make(vec![public]).load_all();
    assert!(errors[0].1.contains("not signed"), "{errors:?}");
    let mut files = bundle::read_dir_files(&pdir).unwrap();
    bundle::sign(&mut files, &bundle::load_signing_key(&key_file).unwrap());
    std::fs::write(
        pdir.join(bundle::SIGNATURE_FILE),
        &files[bundle::SIGNATURE_FILE],
    )
    .unwrap();
    let host = make(vec![public]);
    assert!(host.load_all().is_empty());
    assert_eq!(host.list()[0].id, "hello-lua");
    let other = bundle::keygen(&dir.path().join("other.key")).unwrap();
    assert!(
        make(vec![other]).load_all()[0]
            .1
            .contains("not among the agent's trusted")
    );
    std::fs::write(
        pdir.join("main.lua"),
        "return { run = function() return 'evil' end }",
    )
    .unwrap();
    assert!(
        make(vec![public]).load_all()[0]
            .1
            .contains("modified after signing")
    );
}

/// A one-request-at-a-time HTTP server on loopback that answers with the
/// request head it saw (bounded: serves `n` requests, then stops).
fn echo_server(n: usize) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let body = head.replace("\r\n", "|");
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, h)
}

/// Starts tinyproxy (installed by scripts/setup) on a free loopback port.
struct Tinyproxy(std::process::Child, u16, tempfile::TempDir);

impl Tinyproxy {
    fn start() -> Tinyproxy {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf, format!("Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\nMaxClients 10\nLogLevel Info\nLogFile \"{}\"\n", dir.path().join("proxy.log").display())).unwrap();
        let child = std::process::Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tinyproxy is installed by scripts/setup");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Tinyproxy(child, port, dir)
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http_goes_to_allowed_hosts_through_the_real_proxy() {
    let proxy = Tinyproxy::start();
    let (addr, server) = echo_server(1);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    copy_dir(&repo().join("tests/plugins/net-lua"), &root.join("net-lua"));
    let host = PluginHost::new(RuntimeConfig {
        plugin_dirs: vec![root],
        state_dir: dir.path().join("state"),
        env: HostEnv {
            temp_root: dir.path().join("tmp"),
            proxy: lifeline_core::proxy::parse_proxy_url(&format!("http://127.0.0.1:{}", proxy.1))
                .map(lifeline_core::proxy::ProxySetting::Manual),
            folders: Default::default(),
        },
        trusted_keys: vec![],
        allow_unsigned: true,
    })
    .unwrap();
    assert!(host.load_all().is_empty());
    let port: Arc<dyn SessionPort> = Arc::new(Port::default());
    let out = host
        .call(
            "net-lua",
            "get",
            &[format!("http://{addr}/hello").into()],
            Arc::clone(&port),
        )
        .unwrap();
    assert!(out.starts_with("200 get /hello"), "{out}");
    assert!(out.contains("x-plugin: net-lua"), "{out}");
    // A plain http:// request is forwarded by the proxy (an https:// one
    // would be tunnelled with CONNECT); the proxy's log shows it.
    let log = std::fs::read_to_string(proxy.2.path().join("proxy.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("GET http://{addr}/hello")),
        "went through the proxy: {log}"
    );
    server.join().unwrap();
    // A host the manifest does not allow is refused before any connection.
    let err = host
        .call("net-lua", "get", &["http://localhost:1/".into()], port)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not in the plugin's [http] allow_hosts"),
        "{err}"
    );
}

#[test]
fn http_limits_hold_with_the_shared_client() {
    let (addr, server) = echo_server(2);
    let allowed = ["127.0.0.1".to_string()];
    let url = format!("http://{addr}/limits");
    let get = |limit| crate::http::request(&allowed, None, "GET", &url, &[], &[], limit);
    // The echoed head is longer than 10 bytes: over the output limit.
    let err = get(10).unwrap_err();
    assert!(
        matches!(&err, crate::host::HostError::Limit(m) if m.contains("larger than 10 bytes")),
        "{err}"
    );
    let ok = get(4096).unwrap();
    assert_eq!(ok.status, 200);
    assert!(String::from_utf8_lossy(&ok.body).starts_with("get /limits http/1.1"));
    server.join().unwrap();
    // Too large a request body is refused before any connection.
    let big = vec![0u8; crate::http::MAX_REQUEST_BYTES + 1];
    let err = crate::http::request(&allowed, None, "POST", &url, &[], &big, 10).unwrap_err();
    assert!(matches!(err, crate::host::HostError::Limit(_)), "{err}");
    // Bad methods and header names are refused, not sent.
    for (method, header) in [("GE T", "x-a"), ("GET", "bad header")] {
        let err = crate::http::request(
            &allowed,
            None,
            method,
            &url,
            &[(header.to_string(), "v".to_string())],
            &[],
            10,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad request"), "{err}");
    }
}
