//! Regression tests of the sandbox and file findings (issue 10, 5–7): the
//! run-as temporary folder, containing spawned process trees, and loading
//! exactly what was verified (plugin files and the compiled-WASM cache).
//! They run as root (like the suite's CI), with real processes and files.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::capability::Capability;
use crate::host::{CallContext, HostEnv, HostError, SessionPort};
use crate::kv::KvStore;
use crate::manifest::Manifest;
use crate::plugins::{PluginHost, RuntimeConfig};
use crate::process::{self, Identity, Job};
use crate::tests::{copy_dir, repo};

/// The run-as user of these tests: `nobody`'s IDs (only numbers matter).
const USER_ID: u32 = 65534;

/// A session port that allows everything, logged in as [`USER_ID`], whose
/// session can be ended.
#[derive(Default)]
struct RunAsPort {
    ended: AtomicBool,
}

impl SessionPort for RunAsPort {
    fn consent(&self, _: &Manifest, _: Capability) -> Result<(), String> {
        Ok(())
    }
    fn output(&self, _: &str, _: &str) {}
    fn chat(&self, _: &str, _: &str) {}
    fn report(&self, _: &str, _: &str) {}
    fn natives(&self) -> Option<&dyn crate::host::Natives> {
        Some(self)
    }
    fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }
}

impl crate::host::Natives for RunAsPort {
    fn identity(&self) -> Option<Arc<Identity>> {
        Some(Arc::new(Identity {
            user: "nobody".into(),
            uid: USER_ID,
            gid: USER_ID,
            groups: vec![],
            home: PathBuf::from("/"),
            shell: PathBuf::from("/bin/sh"),
            env: vec![],
        }))
    }
}

fn assert_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests hand files to another user and need root (.ci/run runs as root)"
    );
}

fn context(dir: &Path, port: Arc<RunAsPort>) -> CallContext {
    let text = "[plugin]\nid = \"files\"\nversion = \"1.0.0\"\nruntime = \"lua\"\nentry = \"main.lua\"\ndescription = \"files\"\n\n[capabilities]\n\"fs.temp\" = \"Use a temporary folder\"\n\"process.spawn\" = \"Run programs\"\n\n[[commands]]\nname = \"x\"\ndescription = \"x\"\n";
    let manifest = Manifest::parse(&dir.join("plugin.toml"), text).unwrap();
    CallContext::new(
        Arc::new(manifest),
        port,
        Arc::new(KvStore::new(dir.join("kv.json"))),
        Arc::new(HostEnv {
            temp_root: dir.join("tmp"),
            proxy: None,
            folders: Default::default(),
        }),
    )
}

/// Finding 5: a link (or hard link) the run-as user plants in the folder
/// never makes the agent write, read or hand over a file outside it.
#[test]
fn run_as_folder_writes_never_follow_planted_links() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, "original").unwrap();
    let mut ctx = context(dir.path(), Arc::new(RunAsPort::default()));
    let temp = PathBuf::from(ctx.temp_dir().unwrap());
    assert_eq!(std::fs::metadata(&temp).unwrap().uid(), USER_ID);
    // What a process of the user can do in its own folder:
    std::os::unix::fs::symlink(&outside, temp.join("link")).unwrap();
    std::os::unix::fs::symlink(&victim, temp.join("out.txt")).unwrap();
    std::fs::hard_link(&victim, temp.join("hard.txt")).unwrap();

    // A folder link: the old code created the file outside and chowned it.
    let r = ctx.fs_write("link/planted.txt", b"evil");
    assert!(matches!(r, Err(HostError::Denied(_))), "{r:?}");
    assert!(!outside.join("planted.txt").exists(), "written outside");
    // A file link is refused or replaced, never written through.
    let _ = ctx.fs_write("out.txt", b"evil");
    // A hard link is replaced by a new file, never written through.
    ctx.fs_write("hard.txt", b"new").unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
    assert_eq!(std::fs::metadata(&victim).unwrap().uid(), 0, "chowned");
    assert_eq!(std::fs::metadata(&outside).unwrap().uid(), 0, "chowned");
    assert_eq!(ctx.fs_read("hard.txt").unwrap(), b"new");
    assert_eq!(
        std::fs::metadata(temp.join("hard.txt")).unwrap().uid(),
        USER_ID
    );

    // Reading through a link or a hard link to another file is refused.
    std::fs::hard_link(&victim, temp.join("hard2.txt")).unwrap();
    assert!(ctx.fs_read("hard2.txt").is_err());
    assert!(ctx.fs_read("link/victim").is_err());
    assert!(ctx.fs_read("out.txt").is_err());
    // Folders the agent creates are the user's, the content is written.
    ctx.fs_write("sub/dir/f.txt", b"ok").unwrap();
    assert_eq!(
        std::fs::metadata(temp.join("sub/dir")).unwrap().uid(),
        USER_ID
    );
    assert_eq!(std::fs::read(temp.join("sub/dir/f.txt")).unwrap(), b"ok");
    assert!(ctx.fs_write("../escape", b"x").is_err());
}

/// Whether a process is still running (a zombie is not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn job<'a>(script: &'a [String], cwd: &'a Path, timeout: Duration) -> Job<'a> {
    Job {
        program: "sh",
        args: script,
        cwd,
        timeout,
        output_limit: 4096,
        identity: None,
    }
}

/// The PID a script printed first (`$!` of its `setsid` job).
fn escaped_pid(stdout: &[u8]) -> i32 {
    String::from_utf8_lossy(stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {:?}", String::from_utf8_lossy(stdout)))
}

/// Finding 6: a process that calls `setsid` neither holds the call past
/// its timeout nor outlives it.
#[test]
fn setsid_children_are_killed_with_their_call() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let bound = Duration::from_secs(15); // far below the children's 30 s
    for (script, timeout) in [
        // The shell exits at once; its setsid child keeps the pipe open.
        ("setsid sleep 30 & echo $!", Duration::from_secs(2)),
        // The shell itself runs past the timeout.
        (
            "setsid sleep 30 & echo $!; sleep 30",
            Duration::from_secs(1),
        ),
    ] {
        let args = ["-c".to_string(), script.to_string()];
        let t0 = Instant::now();
        let out =
            process::run_job(&job(&args, dir.path(), timeout), &mut |_, _| {}, &|| false).unwrap();
        assert!(
            t0.elapsed() < bound,
            "{script}: returned after {:?}",
            t0.elapsed()
        );
        let pid = escaped_pid(&out.stdout);
        assert!(!running(pid), "{script}: the setsid child {pid} still runs");
    }
}

/// Finding 6: when the session ends, the process tree of a call that is
/// still running is killed (the call's own timeout is an hour).
#[test]
fn session_end_kills_the_spawned_tree() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let port = Arc::new(RunAsPort::default());
    let mut ctx = context(dir.path(), Arc::clone(&port));
    let ender = {
        let port = Arc::clone(&port);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            port.ended.store(true, Ordering::Relaxed);
        })
    };
    let t0 = Instant::now();
    let out = ctx
        .spawn(
            "sh",
            &["-c".into(), "setsid sleep 30 & echo $!; sleep 30".into()],
            Duration::from_secs(3600),
        )
        .unwrap();
    ender.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(out.timed_out);
    let pid = escaped_pid(&out.stdout);
    assert!(!running(pid), "the setsid child {pid} outlived the session");
}

fn runtime(
    dir: &Path,
    plugins: &Path,
    trusted: Vec<ed25519_dalek::VerifyingKey>,
) -> Result<PluginHost, String> {
    PluginHost::new(RuntimeConfig {
        plugin_dirs: vec![plugins.to_owned()],
        state_dir: dir.join("state"),
        env: HostEnv {
            temp_root: dir.join("tmp"),
            proxy: None,
            folders: Default::default(),
        },
        allow_unsigned: trusted.is_empty(),
        trusted_keys: trusted,
    })
}

fn greet(host: &PluginHost, id: &str) -> Result<String, crate::CallError> {
    let port: Arc<dyn SessionPort> = Arc::new(RunAsPort::default());
    host.call(id, "greet", &["Ada".into()], port)
}

/// Finding 7: a file swapped on disk between the signature check and the
/// load is never what runs: the plugin is read once and loaded from the
/// bytes that were verified.
#[test]
fn a_signed_plugin_runs_the_bytes_that_were_verified() {
    use crate::bundle;
    const ATTEMPTS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    let pdir = root.join("hello-lua");
    copy_dir(&repo().join("plugins/hello-lua"), &pdir);
    let key_file = dir.path().join("publisher.key");
    let public = bundle::keygen(&key_file).unwrap();
    let mut files = bundle::read_dir_files(&pdir).unwrap();
    bundle::sign(&mut files, &bundle::load_signing_key(&key_file).unwrap());
    std::fs::write(
        pdir.join(bundle::SIGNATURE_FILE),
        &files[bundle::SIGNATURE_FILE],
    )
    .unwrap();
    let host = runtime(dir.path(), &root, vec![public]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Someone who can write the plugin folder swaps the entry file back and
    // forth between the signed content and unsigned code, atomically.
    let swapper = {
        let (stop, pdir) = (Arc::clone(&stop), pdir.clone());
        let tmp = dir.path().join("swap.tmp");
        let good = files["main.lua"].clone();
        let evil = b"return { run = function() return 'evil' end }".to_vec();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for content in [&good, &evil] {
                    std::fs::write(&tmp, content).unwrap();
                    std::fs::rename(&tmp, pdir.join("main.lua")).unwrap();
                }
            }
            std::fs::write(pdir.join("main.lua"), &good).unwrap();
        })
    };
    let (mut loaded, mut refused) = (0, 0);
    for _ in 0..ATTEMPTS {
        match host.load_dir(&pdir) {
            Ok(_) => {
                loaded += 1;
                let out = greet(&host, "hello-lua").unwrap();
                assert!(out.starts_with("greeted"), "unsigned code ran: {out}");
            }
            Err(e) => {
                assert!(e.contains("modified after signing"), "{e}");
                refused += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        loaded > 0 && refused + loaded == ATTEMPTS,
        "{loaded} loaded, {refused} refused"
    );
}

/// The `.cwasm` entries of a cache folder.
fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    v.sort();
    v
}

/// Finding 7: a cache entry is native code for one verified source only:
/// another plugin's entry put in its place is not run.
#[test]
fn a_cache_entry_runs_only_for_the_source_it_was_compiled_from() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    for p in ["plugins/hello-wasm", "tests/plugins/hostile-wasm"] {
        let src = repo().join(p);
        copy_dir(&src, &root.join(src.file_name().unwrap()));
    }
    let cache = dir.path().join("state/wasm-cache");
    let host = runtime(dir.path(), &root, vec![]).unwrap();
    host.load_dir(&root.join("hello-wasm"))
        .expect("WASM plugins are built by scripts/build-plugins");
    let hello = entries(&cache);
    host.load_dir(&root.join("hostile-wasm")).unwrap();
    let hostile: Vec<_> = entries(&cache)
        .into_iter()
        .filter(|e| !hello.contains(e))
        .collect();
    assert_eq!((hello.len(), hostile.len()), (1, 1));
    drop(host);
    // The hostile plugin's compiled code under the hello plugin's name.
    std::fs::copy(&hostile[0], &hello[0]).unwrap();
    let host = runtime(dir.path(), &root, vec![]).unwrap();
    host.load_dir(&root.join("hello-wasm")).unwrap();
    let out = greet(&host, "hello-wasm").unwrap();
    assert!(out.starts_with("greeted"), "{out}");
}

/// Finding 7: the cache folder is created 0700, and one that others could
/// write or that belongs to another user is refused, naming the folder.
#[test]
fn the_wasm_cache_folder_is_private_or_refused() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("plugins");
    std::fs::create_dir(&root).unwrap();
    let cache = dir.path().join("state/wasm-cache");
    drop(runtime(dir.path(), &root, vec![]).unwrap());
    assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = runtime(dir.path(), &root, vec![]).err().expect("refused");
    assert!(
        err.contains(&cache.display().to_string()) && err.contains("group or others"),
        "{err}"
    );
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&cache, Some(USER_ID), Some(USER_ID)).unwrap();
    let err = runtime(dir.path(), &root, vec![]).err().expect("refused");
    assert!(
        err.contains(&cache.display().to_string()) && err.contains("owned by uid 65534"),
        "{err}"
    );
}

/// Finding 6: the process groups an agent that crashed left behind are
/// killed and removed when the next one starts its plugin runtime.
#[test]
fn groups_of_a_crashed_agent_are_swept() {
    assert_root();
    let Ok(group) = crate::cgroup::Group::create() else {
        eprintln!("no writable cgroup v2 here: nothing to sweep");
        return;
    };
    // A PID that is certainly gone: a child that already exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale =
        group
            .path()
            .with_file_name(format!("{}{}-0", crate::cgroup::GROUP_PREFIX, gone.id()));
    std::fs::create_dir(&stale).unwrap();
    let mut left = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(stale.join("cgroup.procs"), left.id().to_string()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    drop(runtime(dir.path(), dir.path(), vec![]).unwrap());
    assert!(!stale.exists(), "{} was not removed", stale.display());
    // Killed: the wait returns (bounded by the sweep having killed it).
    assert!(!left.wait().unwrap().success());
    drop(group);
}
